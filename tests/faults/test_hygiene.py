"""Properties of the harness itself: no shell strings, and it says so when it runs as root.

(The other two doors are tested on a booted guest in test_guest_faults.py: the guest is reachable
on 127.0.0.1 only, and the client refuses any host key but the image's.)
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from harness import REPO_ROOT

from .conftest import kharness

pytestmark = pytest.mark.faults

# Calls that hand a string to a shell (or, for pexpect, split one with its own rules).
SHELL_CALLS = {("os", "system"), ("os", "popen"), ("subprocess", "getoutput"),
               ("subprocess", "getstatusoutput"), ("pexpect", "run"), ("pexpect", "runu")}


def _calls(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            yield node, owner, name


def test_no_subprocess_is_handed_a_shell_string():
    offences = []
    for path in sorted((REPO_ROOT / "harness").glob("*.py")):
        for node, owner, name in _calls(path):
            where = f"{path.relative_to(REPO_ROOT)}:{node.lineno}"
            if (owner, name) in SHELL_CALLS:
                offences.append(f"{where}: {owner}.{name}()")
            for kw in node.keywords:
                if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                    offences.append(f"{where}: shell={ast.unparse(kw.value)}")
            if (owner, name) == ("pexpect", "spawn") and len(node.args) < 2:
                offences.append(f"{where}: pexpect.spawn with one string (it splits it itself)")
    assert offences == []


def test_the_check_above_would_see_an_offence(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os, subprocess\nos.system('ls')\nsubprocess.run('ls', shell=True)\n")
    found = [(o, n) for _, o, n in _calls(bad)]
    assert ("os", "system") in found
    assert any(kw.arg == "shell" for node, _, _ in _calls(bad) for kw in node.keywords)


def test_doctor_says_when_it_runs_as_root(tmp_path):
    proc = kharness("doctor", "--cache", str(tmp_path / "cache"))
    note = "info    running as root: kharness needs root only for `make deps` (apt)"
    assert (note in proc.stdout.splitlines()) == (os.geteuid() == 0), proc.stdout
