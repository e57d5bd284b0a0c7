"""A kselftest collection of the tree under test, built and installed the kernel's own way.

`make headers` of the tree gives the uapi headers its selftests include (lib.mk's KHDR_INCLUDES,
top_srcdir/usr/include); `make -C tools/testing/selftests TARGETS=... install` builds the
collection for the guest's arch (static: the guest image has no C library beyond dropbear's)
and installs it with the tree's own runner (run_kselftest.sh, kselftest/runner.sh, the
collection's settings). Built with make -i: a test that does not build for this arch (a
library the toolchain lacks) is left out of the list and named, never run as a failure. The
install is cached as a tarball, keyed by git's ids of what the build reads (`reads`): a series
that changes none of it (fs/, mm/, include/linux/) runs the base's build of the collection.
"""

from __future__ import annotations

import os
import posixpath
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.build.kbuild import make_args, toolchain_id
from harness.build.programs import BUILD_VARIABLES, COMPILE_TIMEOUT, guest_libs
from harness.config.arches import Arch
from harness.core import proc
from harness.core.cache import atomic_dir, complete, digest, locked
from harness.core.errors import HarnessError
from harness.core.progress import Progress

if TYPE_CHECKING:
    from harness.series.workspace import Workspace

SELFTESTS = "tools/testing/selftests"
RECIPE = "kselftest-4: make headers; make -i TARGETS install; LDFLAGS -static; list of what built"   # part of the key
TARBALL = "kselftest.tar"
LIST = "kselftest-list.txt"
NOT_BUILT = "not-built.txt"   # beside the tarball: the listed tests whose file was not installed
# What `make headers` (the top Makefile, scripts/, arch/, the uapi headers) and the selftests'
# Makefiles (tools/) read of a tree, besides what a collection's own files name outside tools/.
READS = ("scripts", "tools", "arch", "include/uapi", "usr")
# a path a collection's file names: $(top_srcdir)/PATH, or ../PATH from that file's directory
NAMED = r"\$[({]top_srcdir[)}]/?[A-Za-z0-9_./+-]*|(\.\./)+[A-Za-z0-9_./+-]*"


def src_arch(arch: Arch) -> str:
    """The kernel's SRCARCH: its directory under arch/."""
    return {"x86_64": "x86", "i386": "x86"}.get(arch.kernel_arch, arch.kernel_arch)


@dataclass(frozen=True)
class KselftestInstall:
    """An installed collection: the tarball the guest unpacks (its kselftest-list.txt names only
    what built), and the tests that did not build (COLLECTION:TEST, left out)."""

    tarball: Path
    not_built: tuple[str, ...]
    log: Path


def build_kselftest(arch: Arch, workspace: Workspace, commit: str, target: str, libs: tuple[str, ...],
                    cache: Path, run_dir: Path, progress: Progress) -> KselftestInstall:
    """``target`` (tools/testing/selftests/<target>) of ``commit``, installed for ``arch``."""
    if not workspace.has(commit, f"{SELFTESTS}/{target}/Makefile"):
        raise HarnessError("programs", f"{SELFTESTS}/{target} is not a kselftest collection in the tree "
                           f"at {commit[:12]} (no Makefile)")
    sysroot, resolved = guest_libs(arch, libs, cache, progress) if libs else (None, ())
    key = digest([RECIPE, arch.name, toolchain_id(arch.make_cross), target, *resolved,
                  inputs(workspace, commit, target)])
    final = cache / "programs" / arch.name / f"kselftest-{key[:24]}"
    log = run_dir / f"kselftest-{target.replace('/', '-')}-{arch.name}.log"
    with locked(final.with_suffix(".lock")):
        if complete(final, (TARBALL, "build.log", NOT_BUILT)):
            progress.info(f"programs {arch.name}: kselftest {target} cached (built before from the same "
                          "files it reads)")
        else:
            progress.info(f"programs {arch.name}: building kselftest {target} (make headers, make install)")
            with atomic_dir(final, owned=True) as tmp, tempfile.TemporaryDirectory(prefix="kharness-ksft-") as src:
                try:
                    _build(arch, workspace, commit, target, sysroot, Path(src), tmp)
                except HarnessError as e:   # its log outlives the entry it was written in
                    run_dir.mkdir(parents=True, exist_ok=True)
                    if (tmp / "build.log").is_file():
                        log.write_bytes((tmp / "build.log").read_bytes())
                    raise HarnessError(e.stage, e.message, log)
        run_dir.mkdir(parents=True, exist_ok=True)
        log.write_bytes((final / "build.log").read_bytes())
    return KselftestInstall(final / TARBALL, tuple((final / NOT_BUILT).read_text().split()), log)


def reads(workspace: Workspace, commit: str, target: str) -> tuple[str, ...]:
    """The paths of the tree at ``commit`` that building ``target`` reads: READS, each path
    outside tools/ that its files name (mm's tests: mm/gup_test.h), or that the files of tools/
    they name name in turn (drivers/net's ../../net/ynl.mk: Documentation/netlink/specs), and
    the target of each symlink of tools/ that points out of it (tools/include/linux/pci_ids.h);
    ("",), the whole tree, when one names the tree's top (mm's test module: KDIR ?=
    ../../../..; timers' -I $(top_srcdir)) or a path above it. The framework's own files
    (lib.mk, kselftest.h: top_srcdir = $(selfdir)/../../..) read what READS covers."""
    named, todo, seen = set(), [f"{SELFTESTS}/{target}"], set()
    while todo:
        where = todo.pop()
        seen.add(where)
        for path, text in workspace.matches(commit, NAMED, where):
            if posixpath.dirname(path) == SELFTESTS:
                continue
            if text.startswith("$"):
                rel = posixpath.normpath(text.partition("/")[2] or ".")
            else:
                rel = posixpath.normpath(posixpath.join(posixpath.dirname(path), text))
            if rel == "." or rel == ".." or rel.startswith("../"):
                return ("",)
            if not rel.startswith("tools/"):
                named.add(rel)
            elif posixpath.dirname(rel) != SELFTESTS and not any(rel == s or rel.startswith(f"{s}/") for s in seen):
                todo.append(rel)
    for link, dest in workspace.symlinks(commit, "tools").items():
        rel = posixpath.normpath(posixpath.join(posixpath.dirname(link), dest))
        if not rel.startswith("tools/"):
            named.add(rel)
    return (*READS, *sorted(n for n in named if not any(n == r or n.startswith(f"{r}/") for r in READS)))


def inputs(workspace: Workspace, commit: str, target: str) -> str:
    """What of the tree at ``commit`` keys ``target``'s build: git's ids of what it reads."""
    paths = reads(workspace, commit, target)
    return workspace.tree_id(commit, "") if paths == ("",) else workspace.entries(commit, paths)


def _build(arch: Arch, workspace: Workspace, commit: str, target: str, sysroot: Path | None,
           src: Path, out: Path) -> None:
    workspace.export(commit, "", src)
    log = out / "build.log"
    env = {k: v for k, v in os.environ.items() if k not in BUILD_VARIABLES}
    with tempfile.TemporaryDirectory(prefix="kharness-hdr-") as hdr:
        r = proc.run(make_args(arch, src, Path(hdr), ("headers",)), "programs", COMPILE_TIMEOUT,
                     cwd=src, log=log, check=False, env=env, what=f"make headers ({arch.name})")
        if r.returncode != 0:
            raise HarnessError("programs", f"make headers for {arch.name} failed (exit {r.returncode})", log)
        proc.run(["cp", "-a", f"{hdr}/usr/include", str(src / "usr")], "programs", 120, what="copying headers")
    install = src / "kselftest_install"
    flags = [f"-I{sysroot}/usr/include"] if sysroot else []
    ldflags = ["-static", *(f"-L{d}" for d in sorted((sysroot / "usr" / "lib").glob("*-linux-gnu*")))] if sysroot \
        else ["-static"]
    cmd = ["make", "-i", "-C", str(src / SELFTESTS), f"TARGETS={target}", f"ARCH={arch.kernel_arch}",
           *([f"CROSS_COMPILE={arch.make_cross}"] if arch.make_cross else []),
           f"LDFLAGS={' '.join(ldflags)}", f"KSFT_INSTALL_PATH={install}", f"-j{os.cpu_count() or 1}", "install"]
    # a test that does not build for this arch (a header or library the toolchain lacks) is
    # no reason to run none: -i installs the rest, and leave_out takes it off the list, named
    proc.run(cmd, "programs", COMPILE_TIMEOUT * 3, cwd=src, log=log, check=False,
             env={**env, **({"CFLAGS": " ".join(flags)} if flags else {})}, what=f"kselftest {target} ({arch.name})")
    if (install / "run_kselftest.sh").is_file() and not (install / LIST).is_file():
        # a test that did not build fails the collection's install rule, and the top Makefile
        # then stops before it lists the collection's tests: listed as it would have (emit_tests)
        r = proc.run(["make", "-s", "--no-print-directory", f"COLLECTION={target}", f"ARCH={arch.kernel_arch}",
                      "-C", str(src / SELFTESTS / target), "emit_tests"], "programs", 120, cwd=src, env=env,
                     check=False, what=f"emit_tests of {target}")
        if r.returncode == 0:
            (install / LIST).write_text(r.stdout)
    if not (install / "run_kselftest.sh").is_file() or not (install / LIST).is_file():
        errors = [line for line in log.read_text(errors="replace").splitlines() if "error" in line.lower()]
        raise HarnessError("programs", f"kselftest {target} ({arch.name}) did not install: "
                           f"{errors[0] if errors else 'see log'}", log)
    tests, missing = leave_out(install)
    if not tests:
        raise HarnessError("programs", f"kselftest {target} ({arch.name}): no test built "
                           f"({len(missing)} in its list did not build)", log)
    (out / NOT_BUILT).write_text("".join(f"{m}\n" for m in missing))
    with tarfile.open(out / TARBALL, "w") as tar:
        tar.add(install, arcname="kselftest")


def leave_out(install: Path) -> tuple[list[str], list[str]]:
    """kselftest-list.txt of the install directory, rewritten without the tests whose file was
    not installed: (those kept, those left out)."""
    tests, missing = [], []
    for line in (install / LIST).read_text().splitlines():
        if ":" in line:
            collection, test = line.split(":", 1)
            (tests if (install / collection / test).exists() else missing).append(line)
    (install / LIST).write_text("".join(f"{t}\n" for t in tests))
    return tests, missing
