"""Guest programs: static binaries for the guest's arch, compiled on the host and cached.

A scenario's helpers are C files in guest-scripts/ (what busybox cannot do, e.g. pass a file
descriptor over a unix socket); the Debian -dev packages a kselftest collection links
(build/kselftest.py) are unpacked here too. Static, because the guest image has no C library;
keyed by source and compiler, so a rerun compiles nothing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from harness import REPO_ROOT
from harness.build.image import load_guest_config, resolve_packages
from harness.build.kbuild import toolchain_id
from harness.config.arches import Arch
from harness.core import proc
from harness.core.cache import atomic_dir, complete, digest, locked, sha256_file
from harness.core.errors import HarnessError
from harness.core.progress import Progress
from harness.sources.debian import PrivateApt

# make variables the caller's environment must not pass to a selftests build
BUILD_VARIABLES = ("CFLAGS", "CPPFLAGS", "LDFLAGS", "LDLIBS", "KHDR_INCLUDES", "OUTPUT", "CROSS_COMPILE", "ARCH")
COMPILE_TIMEOUT = 600
# the helpers' flags, part of their cache key; -Wshadow: a global flag shadowed by a parameter
# once made every inotify-pin group a socket
CFLAGS = ("-O2", "-Wall", "-Wextra", "-Wshadow", "-Werror", "-static")


def _compile(cmd: list[str], cwd: Path, log: Path, what: str, env: dict[str, str] | None = None) -> None:
    rc = proc.run(cmd, "programs", COMPILE_TIMEOUT, cwd=cwd, log=log, check=False, env=env,
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
            if not complete(final, (name,)):   # an entry without its binary: made again
                progress.info(f"programs {arch.name}: compiling {label}")
                run_dir.mkdir(parents=True, exist_ok=True)
                with atomic_dir(final, owned=True) as tmp:
                    _compile([cc, *CFLAGS, "-o", str(tmp / name), str(path)],
                             REPO_ROOT, run_dir / "programs.log", label)
        out[name] = (final / name).read_bytes()
    return out


def guest_libs(arch: Arch, packages: tuple[str, ...], cache: Path,
               progress: Progress) -> tuple[Path, tuple[str, ...]]:
    """Debian -dev packages of the guest's arch (the guest image's suite) unpacked under the
    cache, keyed by their versions: the headers and static libraries a selftest links that the
    (cross) toolchain lacks, e.g. libcap for tools/testing/selftests/filesystems. Returns the
    directory and the packages as name:arch=version."""
    config = load_guest_config()
    darch = arch.debian_arch
    apt = PrivateApt(cache, arch.guest_suite or config.suite, architectures=(darch,))
    apt.update()
    resolved = resolve_packages(apt, darch, packages, cache)
    final = cache / "programs" / arch.name / f"libs-{digest(resolved)[:24]}"
    with locked(final.with_suffix(".lock")):
        if not final.exists():
            progress.info(f"programs {arch.name}: unpacking {', '.join(resolved)}")
            with atomic_dir(final, owned=True) as tmp, tempfile.TemporaryDirectory(prefix="kharness-libs-") as debs:
                for deb in apt.download(list(resolved), Path(debs)):
                    proc.run(["dpkg-deb", "-x", str(deb), str(tmp)], "programs", 300,
                             what=f"dpkg-deb -x {deb.name}")
    return final, resolved
