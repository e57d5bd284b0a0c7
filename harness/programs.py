"""Guest programs: static binaries for the guest's arch, compiled on the host and cached.

A scenario's helpers are C files in guest-scripts/ (what busybox cannot do, e.g. pass a file
descriptor over a unix socket); its selftests come from the kernel tree under test
(tools/testing/selftests/cgroup), so base and patched each run the tests of their own tree.
Static, because the guest image has no C library; keyed by source and compiler, so a rerun
compiles nothing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from . import REPO_ROOT, proc
from .arches import Arch
from .cache import atomic_dir, digest, locked, sha256_file
from .errors import HarnessError
from .kbuild import toolchain_id
from .progress import Progress

if TYPE_CHECKING:
    from .series import Workspace

SELFTESTS = "tools/testing/selftests"
COMPILE_TIMEOUT = 600
# the helpers' flags, part of their cache key; -Wshadow: a global flag shadowed by a parameter
# once made every inotify-pin group a socket
CFLAGS = ("-O2", "-Wall", "-Wextra", "-Wshadow", "-Werror", "-static")


def _compile(cmd: list[str], cwd: Path, log: Path, what: str) -> None:
    rc = proc.run(cmd, "programs", COMPILE_TIMEOUT, cwd=cwd, log=log, check=False,
                  what=f"building {what}").returncode
    if rc != 0:
        errors = [line for line in log.read_text(errors="replace").splitlines() if "error:" in line]
        raise HarnessError("programs", f"building {what} failed (exit {rc}): "
                           f"{errors[0] if errors else 'see log'}", log, "\n".join(errors[:6]))


def build_helpers(arch: Arch, sources: tuple[str | Path, ...], cache: Path, run_dir: Path,
                  progress: Progress) -> dict[str, bytes]:
    """guest-scripts/NAME.c (a name) or any NAME.c (a path) -> NAME, static for ``arch``."""
    cc = f"{arch.make_cross}gcc"
    out: dict[str, bytes] = {}
    for source in sources:
        path = source if isinstance(source, Path) else REPO_ROOT / "guest-scripts" / source
        label = str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)
        name = path.stem
        key = digest([arch.name, toolchain_id(arch.make_cross), *CFLAGS, sha256_file(path)])
        final = cache / "programs" / arch.name / f"{name}-{key[:24]}"
        with locked(final.with_suffix(".lock")):
            if not final.exists():
                progress.info(f"programs {arch.name}: compiling {label}")
                run_dir.mkdir(parents=True, exist_ok=True)
                with atomic_dir(final, owned=True) as tmp:
                    _compile([cc, *CFLAGS, "-o", str(tmp / name), str(path)],
                             REPO_ROOT, run_dir / "programs.log", label)
        out[name] = (final / name).read_bytes()
    return out


def build_selftests(arch: Arch, workspace: Workspace, commit: str, programs: tuple[str, ...],
                    cache: Path, run_dir: Path, progress: Progress) -> dict[str, bytes]:
    """The cgroup selftests of ``commit``, static for ``arch``, built from an export of its
    tools/testing/selftests (all that lib.mk and the tests include), keyed by git's id of it."""
    tree_id = workspace.tree_id(commit, SELFTESTS)
    key = digest([arch.name, toolchain_id(arch.make_cross), tree_id, *programs])
    final = cache / "programs" / arch.name / f"selftests-{key[:24]}"
    with locked(final.with_suffix(".lock")):
        if not final.exists():
            progress.info(f"programs {arch.name}: building {SELFTESTS}/cgroup ({', '.join(programs)})")
            run_dir.mkdir(parents=True, exist_ok=True)
            with atomic_dir(final, owned=True) as tmp, tempfile.TemporaryDirectory(prefix="kharness-st-") as src:
                workspace.export(commit, SELFTESTS, Path(src))
                _compile(["make", "-C", str(Path(src) / SELFTESTS / "cgroup"), f"OUTPUT={tmp}",
                          f"CC={arch.make_cross}gcc", "LDFLAGS=-static",
                          *(str(tmp / p) for p in programs)],
                         Path(src), run_dir / "programs.log", f"{SELFTESTS}/cgroup ({arch.name})")
                for p in programs:
                    if not (tmp / p).is_file():
                        raise HarnessError("programs", f"{SELFTESTS}/cgroup has no program {p}",
                                           run_dir / "programs.log")
    return {p: (final / p).read_bytes() for p in programs}
