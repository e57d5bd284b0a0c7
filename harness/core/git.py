"""git as a child process: argument lists, a timeout, and failures as one-line HarnessErrors."""

from __future__ import annotations

import os
from pathlib import Path

from harness.core import proc

GIT_TIMEOUT = 1800.0
# Commits the harness makes (the base tree, applied patches) must not depend on who runs it.
IDENTITY = {"GIT_AUTHOR_NAME": "kharness", "GIT_AUTHOR_EMAIL": "kharness@localhost",
            "GIT_COMMITTER_NAME": "kharness", "GIT_COMMITTER_EMAIL": "kharness@localhost",
            "GIT_AUTHOR_DATE": "@0 +0000", "GIT_COMMITTER_DATE": "@0 +0000"}


def git(*args: str, cwd: Path | None = None, stage: str = "series", timeout: float = GIT_TIMEOUT,
        check: bool = True, env: dict[str, str] | None = None, text: bool = True,
        input: str | None = None) -> proc.Completed:
    full_env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})}  # fail, never prompt
    return proc.run(["git", *args], stage, timeout, cwd=cwd, env=full_env, check=check, text=text,
                    input=input, what=f"git {' '.join(args)}")


def git_out(*args: str, cwd: Path | None = None, stage: str = "series", timeout: float = GIT_TIMEOUT) -> str:
    out = git(*args, cwd=cwd, stage=stage, timeout=timeout).stdout
    assert isinstance(out, str)
    return out
