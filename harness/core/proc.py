"""Every child process the harness starts (make, git, apt, dpkg, gcc, checkpatch, tar, gpgv, QEMU's
helpers) goes through here: an argument list, a deadline that fires even when the child is
silent, the child's whole process group killed and reaped on every exit path, the `$ cmd` log
header written once, and every failure a HarnessError of the stage that ran it.

(QEMU itself runs under pexpect, for its console: harness/guest/vm.py.)
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from harness.core.errors import HarnessError

PIPE, DEVNULL, STDOUT = subprocess.PIPE, subprocess.DEVNULL, subprocess.STDOUT


@dataclass(frozen=True)
class Completed:
    args: tuple[str, ...]
    returncode: int
    stdout: str | bytes
    stderr: str | bytes


def quoted(cmd: list[str] | tuple[str, ...]) -> str:
    """The command as it pastes into a shell."""
    return shlex.join(cmd)


def log_header(log: IO[bytes], cmd: list[str] | tuple[str, ...]) -> None:
    log.write(f"$ {quoted(cmd)}\n".encode())
    log.flush()


class Child:
    """A started child in its own process group, killed at ``timeout`` by a watchdog thread."""

    def __init__(self, popen: subprocess.Popen, timeout: float):
        self.popen = popen
        self.timed_out = False
        self._timer = threading.Timer(timeout, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        self.timed_out = True
        self.kill()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def finish(self) -> None:
        """Stop the watchdog; a child still running is terminated (then killed), always reaped."""
        self._timer.cancel()
        if self.popen.poll() is None:
            self.kill(signal.SIGTERM)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
                self.popen.wait()
        for pipe in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            with contextlib.suppress(OSError):
                if pipe:
                    pipe.close()


@contextlib.contextmanager
def child(cmd: list[str], stage: str, timeout: float, **popen: Any) -> Iterator[Child]:
    """Start ``cmd`` (stdin from /dev/null unless given); on leaving the block it is reaped, and
    killed first if it still runs. The caller checks ``timed_out`` and the exit status."""
    popen.setdefault("stdin", DEVNULL)
    try:
        p = subprocess.Popen(cmd, start_new_session=True, **popen)
    except FileNotFoundError:
        raise HarnessError(stage, f"{cmd[0]} not found: run `make deps`")
    c = Child(p, timeout)
    try:
        yield c
    finally:
        c.finish()


def _last_line(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return (text.strip().splitlines() or ["no output"])[-1]


def run(cmd: list[str], stage: str, timeout: float, *, cwd: Path | None = None,
        env: dict[str, str] | None = None, input: bytes | str | None = None,
        log: Path | None = None, check: bool = True, text: bool = True,
        what: str | None = None) -> Completed:
    """Run ``cmd`` to completion within ``timeout`` seconds.

    With ``log``, the `$ cmd` header and the child's stdout and stderr (interleaved) are appended
    to that file and the result carries no output; otherwise both are captured. A timeout, a
    missing program and (with ``check``) a non-zero exit raise a HarnessError of ``stage``.
    """
    what = what or quoted(cmd[:3])
    data = input.encode() if isinstance(input, str) else input
    logf = open(log, "ab") if log is not None else None
    try:
        if logf is not None:
            log_header(logf, cmd)
        streams = dict(stdout=logf, stderr=STDOUT) if logf is not None else dict(stdout=PIPE, stderr=PIPE)
        with child(cmd, stage, timeout, cwd=cwd, env=env, stdin=PIPE if data is not None else DEVNULL,
                   **streams) as c:
            out, err = c.popen.communicate(data)
            rc = c.popen.returncode
            timed_out = c.timed_out
    finally:
        if logf is not None:
            logf.close()
    out, err = out or b"", err or b""
    if text:
        out, err = out.decode(errors="replace"), err.decode(errors="replace")
    if timed_out:
        raise HarnessError(stage, f"{what} timed out after {timeout:.0f} s", log)
    if check and rc != 0:
        why = "see log" if log is not None else _last_line(err or out)
        raise HarnessError(stage, f"{what} failed (exit {rc}): {why}", log)
    return Completed(tuple(cmd), rc, out, err)


def stream(cmd: list[str], stage: str, timeout: float, log: Path, on_line: Callable[[bytes], None],
           *, cwd: Path | None = None, env: dict[str, str] | None = None,
           what: str | None = None) -> int:
    """Run ``cmd`` with its output appended to ``log`` and each line handed to ``on_line`` as it
    comes (make: progress and object counts); returns the exit status. The deadline fires
    whether or not the child prints."""
    what = what or quoted(cmd[:3])
    with open(log, "ab") as logf:
        log_header(logf, cmd)
        with child(cmd, stage, timeout, cwd=cwd, env=env, stdout=PIPE, stderr=STDOUT) as c:
            assert c.popen.stdout is not None
            for raw in c.popen.stdout:
                logf.write(raw)
                on_line(raw)
            rc = c.popen.wait()
            if c.timed_out:
                logf.write(f"kharness: killed after {timeout:.0f} s\n".encode())
                raise HarnessError(stage, f"{what} exceeded {timeout:.0f} s", log)
    return rc


def first_line(cmd: list[str], timeout: float = 30.0) -> str | None:
    """The first line a ``--version``-style command prints; None when it cannot run."""
    try:
        r = run(cmd, "doctor", timeout, check=False)
    except HarnessError:
        return None
    out = str(r.stdout or r.stderr or "").strip()
    return out.splitlines()[0] if out else None
