"""The fault matrix's shared parts: QEMU accounting, the build lock, and guests from the real cache.

Every QEMU this suite starts, in-process or through a `kharness` subprocess, inherits
``KHARNESS_FAULTS_RUN`` in its environment; that is how the suite finds its own QEMU processes
among anyone else's on the machine, and proves at the end that none of them survived.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness import REPO_ROOT
from harness.config import load_kernel, load_scenario
from harness.config.arches import Arch, load_arch
from harness.core.cache import cache_root
from harness.core.progress import Progress
from harness.guest.boot import Booted
from harness.run.plan import Plan
from harness.run.session import Session
from harness.verdict.results import KernelId

RUN_MARK = uuid.uuid4().hex[:12]

@pytest.fixture(scope="session")
def build_slot() -> Iterator[None]:
    """Formerly the build lock, held from the first test that may build to the end of the
    session. Not any more: a kharness build takes its tree's workspace lock and then the build
    lock, and a session holding the build lock while its tests take workspace locks deadlocked
    against another kharness building on the machine (each held what the other waited for).
    Every build the tests start takes the build lock itself, in kharness's order."""
    yield


# --- processes ------------------------------------------------------------------------------------


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    stat = _read(f"/proc/{pid}/stat")
    return bool(stat) and stat.rsplit(b")", 1)[-1].split()[0] != b"Z"


def our_qemus() -> list[int]:
    """Live QEMU processes started by this test session."""
    mark = f"KHARNESS_FAULTS_RUN={RUN_MARK}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        argv0 = _read(f"/proc/{entry}/cmdline").split(b"\0", 1)[0]
        if b"qemu-system" in argv0 and mark in _read(f"/proc/{entry}/environ").split(b"\0") \
                and alive(int(entry)):
            found.append(int(entry))
    return found


def descendants(pid: int) -> dict[int, bytes]:
    """Every live descendant of ``pid``: pid -> its start time (so a reused pid is told apart)."""
    children: dict[int, list[int]] = {}
    starts: dict[int, bytes] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _read(f"/proc/{entry}/stat")
            if stat:
                fields = stat.rsplit(b")", 1)[-1].split()
                children.setdefault(int(fields[1]), []).append(int(entry))
                starts[int(entry)] = fields[19]
    found, queue = {}, [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found[child] = starts[child]
            queue.append(child)
    return found


def survivors(processes: dict[int, bytes]) -> list[str]:
    """Those of ``processes`` (from ``descendants``) still alive, as 'pid command' lines."""
    left = []
    for pid, start in processes.items():
        stat = _read(f"/proc/{pid}/stat")
        if stat and stat.rsplit(b")", 1)[-1].split()[19] == start and alive(pid):
            command = _read(f"/proc/{pid}/cmdline").replace(b"\0", b" ")[:120]
            left.append(f"{pid} {command.decode(errors='replace')}")
    return left


def wait_until(predicate, timeout: float, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


@pytest.fixture(scope="session", autouse=True)
def no_qemu_survives():
    """After the whole fault suite, no QEMU it started is still running.

    From here on every child (QEMU, kharness, make) inherits the mark; guests the pytest plugin
    booted earlier in the same session (tests/boot) do not, and stay the plugin's business."""
    os.environ["KHARNESS_FAULTS_RUN"] = RUN_MARK
    yield
    wait_until(lambda: not our_qemus(), timeout=10)
    assert our_qemus() == [], "QEMU processes started by the fault suite survived it"


# --- the CLI --------------------------------------------------------------------------------------


def kharness(*args: str, cwd: Path = REPO_ROOT, env: dict[str, str] | None = None,
             timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m harness.cli ...` from ``cwd``: the harness of that checkout, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def start_kharness(*args: str, cwd: Path = REPO_ROOT, env: dict[str, str] | None = None,
                   log: Path) -> subprocess.Popen:
    """Started with SIGINT at its default: a test job of a non-interactive shell inherits it
    ignored (POSIX), and kharness, like make, respects an inherited SIG_IGN."""
    out = open(log, "wb")
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=cwd,
                            env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def stop(proc: subprocess.Popen) -> None:
    """Last resort for a test that failed half-way: the child and everything under it."""
    if proc.poll() is None:
        for pid in [*descendants(proc.pid), proc.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=30)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of the harness checkout whose configs and guest scripts a test may break."""
    root = tmp_path / "checkout"
    root.mkdir()
    for name in ("harness", "configs", "guest-scripts", "kernel-patches"):
        subprocess.run(["cp", "-a", str(REPO_ROOT / name), str(root / name)], check=True)
    return root


# --- guests from the real cache -------------------------------------------------------------------


def tcg(arch: Arch, **changes) -> Arch:
    """``arch`` under TCG only: a fault test must never write a KVM probe result to the cache."""
    return replace(arch, accel=("tcg",), **changes)


@pytest.fixture(scope="session")
def x86() -> Arch:
    return tcg(load_arch("x86_64"))


def plan_for(arch: Arch, series=None, variants=("base",)) -> Plan:
    return Plan(kernel=load_kernel("linux-5.10"), arches=(arch,), variants=variants,
                scenarios=(load_scenario("dying-memcg"),), series=series)


@contextlib.contextmanager
def session_for(arch: Arch, run_dir: Path, series=None, variants=("base",)) -> Iterator[Session]:
    """A pipeline session on the real cache (the base kernel and image are cache hits)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    session = Session(plan_for(arch, series, variants), cache_root(), run_dir, Progress(live=False))
    try:
        yield session
    finally:
        session.close()


def boot(session: Session, arch: Arch, variant: str = "base") -> Booted:
    """Build (a cache hit with the cache warm) and boot."""
    return session.booted(KernelId(arch.name, variant))


# --- a web server and a small disk ----------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = self.server.files.get(self.path)  # type: ignore[attr-defined]
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def web() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A local HTTP server: (base URL, path -> body to serve)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files = {}  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd.files  # type: ignore[attr-defined]
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: a cache on it fills up for real (ENOSPC).

    Mounted here when running as root; otherwise ``KHARNESS_FAULTS_TINY_DISK`` may name an empty
    small filesystem the user can write (root mounts it once), which is emptied after each test.
    """
    given = os.environ.get("KHARNESS_FAULTS_TINY_DISK")
    if given:
        disk = Path(given)
        assert not any(disk.iterdir()), f"{disk} must start empty"
        try:
            yield disk
        finally:
            for p in disk.iterdir():
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        return
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (or set KHARNESS_FAULTS_TINY_DISK)")
    mount = tmp_path / "tiny-disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "kharness-faults",
                    str(mount)], check=True, timeout=30)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True, timeout=30)


def artifacts(cache: Path) -> list[str]:
    """What a later run could take for a finished artifact, or a half-written one left behind:
    every entry of the cache's artifact directories but lock files (``downloads/<sha256>/file``,
    ``sources/<key>``, ``kernels/<key>``, and any ``.<key>.*.tmp``)."""
    found = []
    for top in ("downloads", "sources", "git", "configs", "kernels", "images"):
        for p in sorted((cache / top).iterdir()) if (cache / top).is_dir() else []:
            if p.suffix != ".lock" and p.name not in ("debian", ".locks", ".versions"):
                found.append(str(p.relative_to(cache)))
                if p.is_dir() and top == "downloads":
                    found += [str(q.relative_to(cache)) for q in sorted(p.iterdir())]
    return found


def half_written(cache: Path, before: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Temporary names (atomic_dir, atomic_file, downloads) in the cache's artifact directories,
    but those ``before`` the test: a shared cache may hold what an earlier run killed with
    SIGKILL left (a later writer of that key sweeps it), and that is not this test's doing."""
    return [a for a in artifacts(cache) if a.rsplit("/", 1)[-1].startswith(".") and a not in before]


def report(results: Path) -> dict:
    """The report.json of the one run directory under ``results``."""
    (run_dir,) = list(results.iterdir())
    return json.loads((run_dir / "report.json").read_text())
