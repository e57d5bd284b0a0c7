"""The cache directory and the two rules that keep it sound.

Artifacts are written under a temporary name and renamed into their final key only once complete,
so an interrupted run never leaves a half-written artifact where a later run would trust it; and
anything two concurrent runs could both produce is made under a file lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path


def cache_root() -> Path:
    """``$KHARNESS_CACHE``, else ``$XDG_CACHE_HOME/kharness``, else ``~/.cache/kharness``."""
    explicit = os.environ.get("KHARNESS_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "kharness"


def digest(parts: Iterable[str | bytes]) -> str:
    """A stable sha256 over an ordered list of parts (length-prefixed, so parts cannot merge)."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) for the duration of the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def held_by_an_ancestor(path: Path) -> bool:
    """Whether a process this one descends from holds the flock on ``path``."""
    try:
        st = os.stat(path)
        locks = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return False
    inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    holders = {int(f[4]) for f in map(str.split, locks) if len(f) > 5 and f[1] == "FLOCK" and f[5] == inode}
    pid = os.getppid()
    while pid > 1 and pid not in holders:
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return pid > 1


_HELD = threading.local()   # machine locks this thread holds (a nested take passes through)


def _held() -> set[str]:
    if not hasattr(_HELD, "paths"):
        _HELD.paths = set()
    return _HELD.paths


@contextlib.contextmanager
def machine_lock(path: Path, waiting: Callable[[], None] | None = None,
                 shared: bool = False) -> Iterator[None]:
    """Hold the flock on ``path`` (e.g. one that keeps two kernel builds off one machine), unless
    this thread or an ancestor process holds it, as `flock PATH make test` does: waiting for it
    would wait forever. ``waiting`` is called once if someone else holds it. ``shared``: beside
    other shared holders, never beside the exclusive one (a timing-sensitive guest keeps kernel
    builds off the machine while it runs, and any number of such guests run together). Per
    thread: a guest thread's shared hold and the build thread's exclusive one exclude each other
    as two processes' would."""
    if str(path) in _held() or held_by_an_ancestor(path):
        yield
        return
    try:
        f = open(path, "a")
    except PermissionError:  # someone else's file: a read-only descriptor can hold the lock too
        f = open(path)
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    with f:
        try:
            fcntl.flock(f, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting is not None:
                waiting()
            fcntl.flock(f, mode)
        _held().add(str(path))
        try:
            yield
        finally:
            _held().discard(str(path))
            fcntl.flock(f, fcntl.LOCK_UN)


def sweep(final: Path) -> list[Path]:
    """Remove the temporary siblings of ``final`` (``.<name>.*.tmp``) that a writer killed before
    it could clean up (SIGKILL, a machine that went away) left behind: a kernel tree or build of
    a gigabyte, never read. Only for a caller holding the lock that every writer of ``final``
    takes: then no live writer owns one of them."""
    swept = []
    for p in final.parent.glob(f".{glob.escape(final.name)}.*.tmp"):
        if not TEMP_NAME.fullmatch(p.name[len(final.name) + 1:]):
            continue   # another key's (a name with a dot in it), not one of final's
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                p.unlink()
        if not p.exists():
            swept.append(p)
    return swept


TEMP_NAME = re.compile(r"\.[a-z0-9_]{8}\.tmp")   # what follows .<name> in tempfile's names


@contextlib.contextmanager
def atomic_dir(final: Path, owned: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary directory beside ``final``; rename it to ``final`` on success.

    On any exception the temporary directory is removed and ``final`` is left untouched.
    ``owned``: the caller holds the lock every writer of ``final`` takes, so the temporary
    directories of earlier writers of it are stale and are swept first.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    if owned:
        sweep(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(final: Path, mode: str = "wb") -> Iterator:
    """Open a temporary file beside ``final``; it replaces ``final`` only if the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        os.replace(name, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise
