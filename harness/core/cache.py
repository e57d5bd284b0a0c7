"""The cache directory and the two rules that keep it sound.

Artifacts are written under a temporary name and renamed into their final key only once complete,
so an interrupted run never leaves a half-written artifact where a later run would trust it; and
anything two concurrent runs could both produce is made under a file lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import hashlib
import os
import re
import shlex
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from harness.core.errors import HarnessError


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


def flock_holders(path: Path) -> set[int]:
    """The pids /proc/locks says hold a flock on ``path``'s inode (empty when unknown)."""
    try:
        st = os.stat(path, follow_symlinks=False)
        locks = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return set()
    inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    return {int(f[4]) for f in map(str.split, locks) if len(f) > 5 and f[1] == "FLOCK" and f[5] == inode
            and f[4].isdigit()}


def held_by_an_ancestor(path: Path) -> bool:
    """Whether a process this one descends from holds the flock on ``path``."""
    holders = flock_holders(path)
    if not holders:
        return False
    pid = os.getppid()
    while pid > 1 and pid not in holders:
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return pid > 1


def lock_holder(path: Path, said: str = "") -> str:
    """Who holds the lock on ``path``, in words: the pid and command line /proc/locks and /proc
    give (a `flock PATH make test` writes nothing), else what the holder wrote into the file."""
    for pid in sorted(flock_holders(path)):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            cmd = ""
        return f"pid {pid}" + (f" ({cmd[:120]})" if cmd else "")
    return said.strip()[:160] or "another process"


_HELD = threading.local()   # machine locks this thread holds (a nested take passes through)
LOCK_POLL = 1.0           # seconds between two tries of a machine lock another process holds


def _open_lock(path: Path, stage: str = "build") -> int:
    """The lock file, created 0600 if needed, never through a symlink (O_NOFOLLOW): a lock in a
    directory others can write must not let them point it at a file of ours."""
    flags = os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(path, os.O_RDWR | flags, 0o600)
    except PermissionError:   # someone else's file: a read-only descriptor can hold the lock too
        return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise HarnessError(stage, f"{path}: cannot open the lock ({e.strerror}"
                           f"{'; a symlink there is refused' if e.errno == errno.ELOOP else ''})")


def _held() -> set[str]:
    if not hasattr(_HELD, "paths"):
        _HELD.paths = set()
    return _HELD.paths


@contextlib.contextmanager
def machine_lock(path: Path, waiting: Callable[[str], None] | None = None,
                 timeout: float | None = None, shared: bool = False) -> Iterator[None]:
    """Hold the flock on ``path`` (e.g. one that keeps two kernel builds off one machine), unless
    this thread or an ancestor process holds it, as `flock PATH make test` does: waiting for it
    would wait forever. ``waiting`` is called once, with who holds it, if someone else does;
    after ``timeout`` seconds of waiting (None: forever) it gives up with an error naming the
    holder. The holder writes its pid and command line into the file, for the next one's
    message. ``shared``: beside other shared holders, never beside the exclusive one (a
    timing-sensitive guest keeps kernel builds off the machine while it runs, and such guests
    run together). Nesting is per thread: a guest thread's shared hold and the build thread's
    exclusive one exclude each other as two processes' would."""
    if str(path) in _held() or held_by_an_ancestor(path):
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _open_lock(path)
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                who = lock_holder(path, _read_small(fd))
                if not told and waiting is not None:
                    waiting(who)
                told = True
                if deadline is not None and time.monotonic() >= deadline:
                    raise HarnessError("build", f"{path}: held by {who} for more than {timeout:g} s: "
                                       "gave up waiting (stop it, or raise KHARNESS_BUILD_LOCK_WAIT)")
                time.sleep(LOCK_POLL if deadline is None else max(0.0, min(LOCK_POLL, deadline - time.monotonic())))
        with contextlib.suppress(OSError):   # for whoever waits next; read-only: nothing said
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {shlex.join(sys.argv)}\n".encode(), 0)
        _held().add(str(path))
        try:
            yield
        finally:
            _held().discard(str(path))
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def try_locked(path: Path, stage: str = "clean") -> Iterator[bool]:
    """The lock ``locked`` takes on ``path`` if no one holds it now: yields whether it is held
    here (for whoever must not wait, such as `kharness clean`, which skips what is in use)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _open_lock(path, stage)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read_small(fd: int) -> str:
    try:
        return os.pread(fd, 512, 0).decode(errors="replace")
    except OSError:
        return ""


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


def remove_entry(final: Path) -> None:
    """Remove the cache entry ``final`` so that no one ever finds half of it under its name: it
    is renamed to a temporary sibling first (what ``sweep`` removes, should this be killed
    before the end), then deleted. Only for a caller holding the entry's lock."""
    if final.is_symlink() or (final.exists() and not final.is_dir()):
        final.unlink()
        return
    if not final.exists():
        return
    gone = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    os.rename(final, gone)   # onto the empty directory just made: one step, never half of it
    shutil.rmtree(gone, ignore_errors=True)


def complete(final: Path, files: Iterable[str]) -> bool:
    """Whether the cache entry ``final`` holds each of ``files`` (what its readers open): an
    entry without one (half deleted by an older `kharness clean` killed mid-way, or by hand) is
    not trusted; its writer removes it and makes it again."""
    return final.is_dir() and not final.is_symlink() and all((final / f).is_file() for f in files)


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
        remove_entry(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _umask() -> int:
    """This process's umask, read without setting it (os.umask would, for every thread)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


@contextlib.contextmanager
def atomic_file(final: Path, mode: str = "wb") -> Iterator:
    """Open a temporary file beside ``final``; it replaces ``final`` only if the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.fchmod(fd, 0o666 & ~_umask())   # the mode open() would give (mkstemp's is 0600)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        os.replace(name, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise
