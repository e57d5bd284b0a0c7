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


# What may be pasted into a guest's shell command: a value quoted (shlex.quote, or `q`, the
# name runner.py gives it) or a number; `assigns` is runner.py's VAR=value list, each value
# quoted where it is made (and each name checked at load: config.ScenarioConfig.validate).
QUOTING = {"quote", "q", "int"}
PRE_QUOTED = {"assigns"}


def _guest_command_pastes(path: Path) -> list[str]:
    """Each value pasted unquoted into a command string sent to a guest (``X.guest.run/check``,
    ``guest.run/check``, and in ssh.py ``self.run/check``), following names to their assignment
    in the same function, and into a quoted string that is a `-c` script (a shell parses it)."""
    tree = ast.parse(path.read_text(), str(path))
    offences = []

    def quoting(v: ast.expr) -> bool:
        return isinstance(v, ast.Call) and ast.unparse(v.func).split(".")[-1] in QUOTING

    def check(expr: ast.expr, assigned: dict[str, ast.expr], seen: set[str]) -> None:
        if isinstance(expr, ast.Name) and expr.id in assigned and expr.id not in seen:
            check(assigned[expr.id], assigned, seen | {expr.id})
        if not isinstance(expr, ast.JoinedStr):
            return
        before = ""
        for part in expr.values:
            if isinstance(part, ast.Constant):
                before = str(part.value)
                continue
            v = part.value
            if quoting(v) and before.rstrip().endswith("-c") and v.args:
                check(v.args[0], assigned, seen)   # a script: a shell parses what it holds
            elif not (quoting(v) or (isinstance(v, ast.Name) and (
                    v.id in PRE_QUOTED or quoting(assigned.get(v.id))))):
                offences.append(f"{path.name}:{part.lineno}: {{{ast.unparse(v)}}} pasted unquoted")
            before = ""

    for func in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
        assigned = {t.id: node.value for node in ast.walk(func) if isinstance(node, ast.Assign)
                    for t in node.targets if isinstance(t, ast.Name)}
        for call in (n for n in ast.walk(func) if isinstance(n, ast.Call)):
            f = call.func
            if not (isinstance(f, ast.Attribute) and f.attr in ("run", "check") and call.args):
                continue
            receiver = ast.unparse(f.value)
            if receiver.endswith("guest") or (path.name == "ssh.py" and receiver == "self"):
                check(call.args[0], assigned, set())
    return offences


def test_guest_commands_quote_every_value_they_paste():
    offences = [o for path in sorted((REPO_ROOT / "harness").glob("*.py")) for o in _guest_command_pastes(path)]
    assert offences == []


def test_the_check_above_would_see_an_unquoted_paste(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import shlex\ndef f(guest, name, n):\n    out = f'/tmp/{name}.out'\n"
                   "    cmd = f'run > {out} {shlex.quote(name)} {int(n)}'\n    guest.run(cmd)\n"
                   "    guest.check(f'ls {name}')\n")
    assert sorted(o.split(": ", 1)[1] for o in _guest_command_pastes(bad)) == \
        ["{name} pasted unquoted", "{out} pasted unquoted"]
    script = tmp_path / "script.py"
    script.write_text("import shlex\ndef f(guest, name):\n    job = f'kill $(cat {name})'\n"
                      "    guest.run(f'bash -c {shlex.quote(job)}')\n")
    assert [o.split(": ", 1)[1] for o in _guest_command_pastes(script)] == ["{name} pasted unquoted"]


def test_doctor_says_when_it_runs_as_root(tmp_path):
    proc = kharness("doctor", "--cache", str(tmp_path / "cache"))
    note = "info    running as root: kharness needs root only for `make deps` (apt)"
    assert (note in proc.stdout.splitlines()) == (os.geteuid() == 0), proc.stdout
