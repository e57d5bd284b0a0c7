"""git as a subprocess: argument lists, a timeout, and failures as one-line HarnessErrors."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .errors import HarnessError

GIT_TIMEOUT = 1800.0
# Commits the harness makes (the base tree, applied patches) must not depend on who runs it.
IDENTITY = {"GIT_AUTHOR_NAME": "kharness", "GIT_AUTHOR_EMAIL": "kharness@localhost",
            "GIT_COMMITTER_NAME": "kharness", "GIT_COMMITTER_EMAIL": "kharness@localhost",
            "GIT_AUTHOR_DATE": "@0 +0000", "GIT_COMMITTER_DATE": "@0 +0000"}


def git(*args: str, cwd: Path | None = None, stage: str = "git", timeout: float = GIT_TIMEOUT,
        check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})}  # fail, never prompt
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, env=full_env)
    except subprocess.TimeoutExpired:
        raise HarnessError(stage, f"git {' '.join(args)} timed out after {timeout:.0f} s")
    if check and proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise HarnessError(stage, f"git {' '.join(args)} failed: {last}")
    return proc


def git_out(*args: str, cwd: Path | None = None, stage: str = "git", timeout: float = GIT_TIMEOUT) -> str:
    return git(*args, cwd=cwd, stage=stage, timeout=timeout).stdout
