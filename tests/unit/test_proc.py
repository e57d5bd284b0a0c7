"""One way to run a child: a deadline that fires even when the child is silent, its whole
process group gone afterwards, every failure a HarnessError of the stage that ran it."""

from __future__ import annotations

import ast
import os
import subprocess
import time
from pathlib import Path

import paramiko
import pytest

from harness import REPO_ROOT
from harness.build import kbuild
from harness.core import errors, proc
from harness.core.errors import CommandTimeout, ConnectionLost, HarnessError, HostKeyMismatch, KernelSplat, PortTaken
from harness.core.progress import Quiet
from harness.guest.boot import retryable
from harness.run import checkseries
from harness.series.patches import load_patch_dir
from harness.series.workspace import Workspace
from harness.sources.source import SourceTree

FAKE = REPO_ROOT / "tests" / "fakelinux"


def _alive(marker: str) -> list[str]:
    out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    return [p for p in out if int(p) != os.getpid()]


def test_a_silent_child_is_killed_at_its_deadline_with_its_children():
    start = time.monotonic()
    with pytest.raises(HarnessError) as e:
        proc.run(["sh", "-c", "sleep 61 & sleep 62"], "build", 0.5, what="the sleeper")
    assert time.monotonic() - start < 5
    assert (e.value.stage, e.value.message) == ("build", "the sleeper timed out after 0 s")
    assert _alive("sleep 6[12]") == []


def test_a_streamed_child_that_prints_nothing_still_times_out(tmp_path):
    lines = []
    with pytest.raises(HarnessError, match="exceeded 1 s"):
        proc.stream(["sleep", "63"], "build", 1.0, tmp_path / "log", lines.append)
    assert lines == [] and _alive("sleep 63") == []
    assert (tmp_path / "log").read_text().splitlines()[0] == "$ sleep 63"


def test_the_log_header_is_written_once_and_pastes_into_a_shell(tmp_path):
    proc.run(["echo", "a b", "c'd"], "build", 10, log=tmp_path / "log")
    assert (tmp_path / "log").read_text() == "$ echo 'a b' 'c'\"'\"'d'\na b c'd\n"


def test_a_missing_program_and_a_failure_are_errors_of_the_stage(tmp_path):
    with pytest.raises(HarnessError, match=r"^programs: no-such-tool not found: run `make deps`$"):
        proc.run(["no-such-tool"], "programs", 10)
    with pytest.raises(HarnessError, match=r"^apt: false failed \(exit 1\): no output$"):
        proc.run(["false"], "apt", 10, what="false")


# Every way Python starts a process, as a module imported or a call made.
CHILD_MODULES = {"subprocess", "multiprocessing", "pty", "asyncio.subprocess"}
CHILD_CALLS = {("pexpect", "spawn"), ("pexpect", "spawnu"), ("pexpect", "run"), ("pexpect", "runu"),
               ("pexpect", "popen_spawn"), ("os", "system"), ("os", "popen"), ("os", "fork"),
               ("os", "forkpty"), ("os", "posix_spawn"), ("os", "posix_spawnp"),
               *(("os", f) for f in ("execv", "execve", "execvp", "execvpe", "execl", "execle", "execlp",
                                     "execlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe", "spawnl",
                                     "spawnle", "spawnlp", "spawnlpe"))}
# The one child proc.py does not start: QEMU, whose console needs a pty (pexpect); vm.py kills
# and reaps it on every path (tests/faults/test_boot_faults.py).
ALLOWED = {("vm.py", "pexpect.spawn")}


def child_starts(path: Path) -> list[tuple[str, str]]:
    """(file name, what) for every import or call in ``path`` that can start a process."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if isinstance(node, ast.ImportFrom):   # from pexpect import spawn; from os import system
                found += [(path.name, f"{node.module}.{a.name}") for a in node.names
                          if (node.module, a.name) in CHILD_CALLS]
            found += [(path.name, f"imports {m}") for m in mods if m in CHILD_MODULES]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Name) and (node.func.value.id, node.func.attr) in CHILD_CALLS:
            found.append((path.name, f"{node.func.value.id}.{node.func.attr}"))
    return found


def test_no_other_module_starts_a_child_process():
    offences = [f for path in sorted((REPO_ROOT / "harness").glob("*.py")) if path.name != "proc.py"
                for f in child_starts(path) if f not in ALLOWED]
    assert offences == []


def test_the_check_above_sees_every_way_to_start_a_child(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import subprocess, os, pexpect\nfrom pexpect import spawn\nimport multiprocessing\n"
                   "pexpect.spawn('qemu', [])\nos.system('ls')\nos.execvp('ls', ['ls'])\nos.fork()\n")
    assert {what for _, what in child_starts(bad)} == {
        "imports subprocess", "pexpect.spawn", "imports multiprocessing", "os.system", "os.execvp", "os.fork"}


def test_every_error_names_a_known_stage():
    unknown = []
    for path in sorted((REPO_ROOT / "harness").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "HarnessError"
                    and node.args and isinstance(node.args[0], ast.Constant)
                    and node.args[0].value not in errors.STAGES):
                unknown.append(f"{path.name}:{node.lineno}: {node.args[0].value!r}")
    assert unknown == []


def test_a_toolchain_that_hangs_is_an_error_not_a_traceback(tmp_path, monkeypatch):
    (tmp_path / "hang-gcc").write_text("#!/bin/sh\nsleep 64\n")
    (tmp_path / "hang-gcc").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setattr(kbuild, "TOOL_TIMEOUT", 0.5)
    with pytest.raises(HarnessError, match=r"^build: hang-gcc --version timed out after 0 s$"):
        kbuild.toolchain_id("hang-")
    assert _alive("sleep 64") == []


def _workspace(tmp_path: Path) -> Workspace:
    tree = SourceTree(FAKE, "5.10.99", "path", str(FAKE), "f" * 64)
    return Workspace(tree, tmp_path / "cache")


def test_export_that_fails_is_an_error_of_the_series_stage(tmp_path):
    ws = _workspace(tmp_path)
    base = ws.base(Quiet())
    with pytest.raises(HarnessError) as e:
        ws.export(base, "mm", tmp_path / "no" / "such" / "dir")   # tar -x -C: no such directory
    assert e.value.stage == "series" and "tar -x of mm" in e.value.message
    with pytest.raises(HarnessError, match="^series: git archive"):
        ws.export(base, "no/such/path", tmp_path)


def test_checkpatch_that_hangs_is_an_error_not_a_traceback(tmp_path, monkeypatch):
    ws = _workspace(tmp_path)
    base = ws.base(Quiet())
    patches = tmp_path / "patches"
    patches.mkdir()
    (patches / "0001-x.patch").write_text("Subject: [PATCH] x\n\ndiff --git a/x b/x\n")
    monkeypatch.setattr(checkseries, "CHECKPATCH_TIMEOUT", 0.5)
    monkeypatch.setenv("FAKELINUX_HANG", "65")
    with pytest.raises(HarnessError, match=r"^series: checkpatch.pl 0001-x.patch timed out"):
        checkseries.run_checkpatch(ws, load_patch_dir(patches), base)
    monkeypatch.delenv("FAKELINUX_HANG")
    (result,) = checkseries.run_checkpatch(ws, load_patch_dir(patches), base)
    assert (result.errors, result.warnings) == (0, 1)


@pytest.mark.parametrize("error, retry", [
    (paramiko.SSHException("Error reading SSH protocol banner"), True),
    (EOFError(), True),
    (ConnectionLost("connection dropped while running `true`"), True),
    (CommandTimeout("`true` timed out after 10 s"), True),
    (HostKeyMismatch("the guest's key is another one"), False),   # whatever its words
    (KernelSplat("guest", "kernel reported: WARNING: at mm/memcontrol.c:1"), False),
    (PortTaken("QEMU exited (status 1)"), False),
    (HarnessError("boot", "QEMU exited (status 1): no console output"), False),
], ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v))
def test_boot_retries_a_guest_that_does_not_answer_yet_and_nothing_else(error, retry):
    assert retryable(error) is retry
