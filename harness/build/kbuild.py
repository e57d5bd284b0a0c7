"""Kernel configuration and build: tinyconfig + fragments, verified; make O= with ccache.

The merged .config is cached by what determines it (tree, arch, fragments, toolchain) and the
built kernel by the .config and tree it came from, so a rerun with nothing changed runs no make
at all, and a build that is interrupted never leaves an image under its final key.
"""

from __future__ import annotations

import functools
import math
import os
import re
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.config import CONFIG_DIR, kconfig_fragment
from harness.config.arches import Arch
from harness.core import proc
from harness.core.cache import atomic_dir, atomic_file, cache_root, complete, digest, locked, machine_lock, remove_entry
from harness.core.errors import HarnessError
from harness.core.progress import Progress

if TYPE_CHECKING:
    from harness.series.workspace import Checkout

# Pinned so two builds of the same tree and .config are byte-identical and hit ccache, and a
# series that changes nothing built for an arch gives the base's very image (NO-CHANGE): the
# link counter (#N in the version string) would differ at every link.
REPRODUCIBLE_ENV = {
    "KBUILD_BUILD_TIMESTAMP": "@0",
    "KBUILD_BUILD_VERSION": "1",
    "KBUILD_BUILD_USER": "kharness",
    "KBUILD_BUILD_HOST": "kharness",
    "LC_ALL": "C",
}
CONFIG_TIMEOUT = 300
BUILD_TIMEOUT = 3 * 3600
TOOL_TIMEOUT = 30.0   # `gcc --version` and the like


@dataclass(frozen=True)
class KernelBuild:
    """A built kernel in the cache: what booted it and what it was built from."""

    image: Path
    config: Path
    build_log: Path
    key: str
    config_sha256: str
    toolchain: str
    cached: bool          # True when no make ran in this invocation
    seconds: float        # wall time of this invocation's config + build work
    objects: int          # objects compiled in this invocation (CC lines)


def fragment_paths(arch: Arch, fragments: tuple[str, ...], config_dir: Path = CONFIG_DIR) -> list[Path]:
    paths = []
    for name in (*fragments, *arch.kconfig):
        p = kconfig_fragment(name, config_dir)
        if p is None:
            raise HarnessError("kconfig", f"no such kconfig fragment: {config_dir / 'kconfig' / name}")
        paths.append(p)
    return paths


def parse_config(text: str) -> dict[str, str]:
    """CONFIG_X=v lines and '# CONFIG_X is not set' (as 'n') from a .config or fragment."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        m = re.fullmatch(r"(CONFIG_\w+)=(.*)", line)
        if m:
            values[m.group(1)] = m.group(2)
            continue
        m = re.fullmatch(r"# (CONFIG_\w+) is not set", line)
        if m:
            values[m.group(1)] = "n"
    return values


def dropped_options(requested: dict[str, str], final: dict[str, str]) -> list[str]:
    """Options a fragment asked for that the final .config does not hold with that value."""
    dropped = []
    for name, want in requested.items():
        have = final.get(name, "n")
        if have != want:
            dropped.append(f"{name}={want} (got {'not set' if have == 'n' else have})")
    return dropped


@functools.cache
def toolchain_id(cross: str) -> str:
    """The compiler and linker versions: part of every build key."""
    lines = []
    for tool in (f"{cross}gcc", f"{cross}ld"):
        out = str(proc.run([tool, "--version"], "build", TOOL_TIMEOUT, what=f"{tool} --version").stdout)
        lines.append(out.splitlines()[0] if out else tool)
    return "; ".join(lines)


def make_args(arch: Arch, src: Path, out: Path, extra: tuple[str, ...] = ()) -> list[str]:
    cross = arch.make_cross
    args = ["make", "-C", str(src), f"O={out}", f"ARCH={arch.kernel_arch}"]
    if cross:
        args.append(f"CROSS_COMPILE={cross}")
    return args + list(extra)


def build_command(arch: Arch, src: Path, out: Path, make_flags: tuple[str, ...], ccache: bool,
                  jobs: int) -> list[str]:
    """make of the arch's boot image, through ccache when there is one."""
    cc = [f"CC=ccache {arch.make_cross}gcc", "HOSTCC=ccache gcc"] if ccache else []
    return make_args(arch, src, out, (*make_flags, *cc, f"-j{jobs}", Path(arch.image).name))


def _env() -> dict[str, str]:
    env = dict(os.environ, **REPRODUCIBLE_ENV)
    return env


CCACHE_REMOTE_VAR = "KHARNESS_CCACHE_REMOTE"   # --ccache-remote sets it for the whole run


def ccache_env(cache: Path) -> dict[str, str]:
    """ccache's settings for a kernel build: the local cache under the kharness cache (unless
    $CCACHE_DIR says otherwise), and a shared remote storage when one is given (ccache >= 4.7:
    redis://HOST[:PORT], http://HOST/PATH/, ...; see ccache's remote_storage), which a build on
    another machine filled."""
    env = {"CCACHE_DIR": os.environ.get("CCACHE_DIR") or str(cache / "ccache")}
    remote = os.environ.get(CCACHE_REMOTE_VAR)
    if remote:
        env["CCACHE_REMOTE_STORAGE"] = remote
    return env


def without_credentials(url: str) -> str:
    """A remote storage URL as report.json may show it: user and password left out."""
    return re.sub(r"^([a-z+]+://)[^/@]*@", r"\1", url)


def config_path(arch: Arch, tree_id: str, fragments: list[Path], cache: Path,
                 make_flags: tuple[str, ...]) -> Path:
    cross = arch.make_cross
    key = digest([tree_id, arch.kernel_arch, cross, toolchain_id(cross), *make_flags,
                  *(p.read_text() for p in fragments)])
    return cache / "configs" / f"{key}.config"


def _kernel_key(arch: Arch, tree_id: str, config_text: str, make_flags: tuple[str, ...]) -> str:
    return digest([tree_id, arch.name, arch.image, config_text, toolchain_id(arch.make_cross), *make_flags])


def cached_kernel(arch: Arch, tree_id: str, fragments: tuple[str, ...], cache: Path,
                  make_flags: tuple[str, ...] = (), log_path: Path | None = None) -> KernelBuild | None:
    """The kernel of this tree and config when the cache has it, found without the tree itself
    (so a rerun needs no checkout, and waits for no build of another tree); its build log is
    appended to ``log_path``, as build_kernel does on a cache hit."""
    config = config_path(arch, tree_id, fragment_paths(arch, fragments), cache, make_flags)
    if not config.exists():
        return None
    config_text = config.read_text()
    key = _kernel_key(arch, tree_id, config_text, make_flags)
    final = cache / "kernels" / key
    if not (final / "image").exists():
        return None
    os.utime(final)  # most recently used, for `kharness clean`
    if log_path is not None:
        _append_cached_log(log_path, final)
    return _result(final, key, digest([config_text]), toolchain_id(arch.make_cross), True, 0.0, 0)


def make_config(arch: Arch, tree: Checkout, fragments: list[Path], cache: Path,
                make_flags: tuple[str, ...], log_path: Path, lenient: tuple[str, ...] = ()) -> Path:
    """tinyconfig + fragments merged by the tree's merge_config.sh, then verified; cached.
    ``lenient`` fragments (a kselftest collection's config) are merged but not verified: what
    they ask that the kernel cannot take is the caller's to name."""
    final = config_path(arch, tree.tree_id, fragments, cache, make_flags)
    if final.exists():
        return final
    requested: dict[str, str] = {}
    for p in fragments:
        if str(p) not in lenient:
            requested.update(parse_config(p.read_text()))
    with tempfile.TemporaryDirectory(prefix="kharness-config-") as tmp:
        out = Path(tmp)
        steps = [
            make_args(arch, tree.path, out, (*make_flags, "tinyconfig")),
            [str(tree.path / "scripts/kconfig/merge_config.sh"), "-m", "-O", str(out),
             str(out / ".config"), *map(str, fragments)],
            make_args(arch, tree.path, out, (*make_flags, "olddefconfig")),
        ]
        for cmd in steps:
            proc.run(cmd, "kconfig", CONFIG_TIMEOUT, cwd=out, env=_env(), log=log_path,
                     what=f"`{cmd[-1] if cmd[0] == 'make' else 'merge_config.sh'}`")
        text = (out / ".config").read_text()
    dropped = dropped_options(requested, parse_config(text))
    if dropped:
        raise HarnessError("kconfig", "options dropped from the final .config: " + ", ".join(dropped),
                           log_path)
    with atomic_file(final, "w") as f:
        f.write(text)
    return final


def first_errors(log_text: str, limit: int = 6) -> str:
    """The first compiler/linker error lines of a build log, for the error message."""
    pat = re.compile(r"(error:|Error \d|undefined reference|fatal error|No rule to make target)")
    hits = [line for line in log_text.splitlines() if pat.search(line)]
    return "\n".join(hits[:limit])


def build_kernel(arch: Arch, tree: Checkout, fragments: tuple[str, ...], cache: Path,
                 run_dir: Path, progress: Progress, make_flags: tuple[str, ...] = (),
                 label: str = "", lenient: tuple[str, ...] = ()) -> KernelBuild:
    """Configure and build ``tree`` for ``arch``; reuse the cached kernel when nothing changed."""
    start = time.monotonic()
    log_path = run_dir / "build.log"
    run_dir.mkdir(parents=True, exist_ok=True)
    frags = fragment_paths(arch, fragments)
    cross = arch.make_cross
    tool = toolchain_id(cross)
    config = make_config(arch, tree, frags, cache, make_flags, log_path, lenient)
    config_text = config.read_text()
    config_sha = digest([config_text])
    key = _kernel_key(arch, tree.tree_id, config_text, make_flags)
    final = cache / "kernels" / key
    name = label or arch.name
    with locked(cache / "kernels" / f"{key}.lock"):
        if final.exists() and not complete(final, KERNEL_FILES):
            progress.info(f"build {name}: cached kernel {key[:12]} lacks one of "
                          f"{', '.join(KERNEL_FILES)}: built again")
            remove_entry(final)
        if complete(final, KERNEL_FILES):
            progress.info(f"build {name}: cached kernel {key[:12]} (no make needed)")
            _append_cached_log(log_path, final)
            os.utime(final)  # most recently used, for `kharness clean`
            return _result(final, key, config_sha, tool, True, time.monotonic() - start, 0)
        # One build directory per workspace and .config: the base and the patched kernel share it,
        # so the patched build recompiles only what the series touches.
        out = cache / "builds" / arch.name / f"{tree.slot}-{config_sha[:16]}"
        out.mkdir(parents=True, exist_ok=True)
        if not (out / ".config").exists() or (out / ".config").read_text() != config_text:
            shutil.copyfile(config, out / ".config")
        # one kernel build per machine, whichever kharness (or cache) it comes from: each takes
        # every core, and two at once take twice as long and skew every build time
        with machine_lock(build_lock_path(), lambda who: progress.info(
                f"build {name}: waiting for another kernel build ({who}; {build_lock_path()})"),
                build_lock_wait()):
            objects = _make(arch, tree, out, cache, make_flags, log_path, progress, name)
        with atomic_dir(final, owned=True) as tmp:
            shutil.copyfile(out / arch.image, tmp / "image")
            shutil.copyfile(out / ".config", tmp / "config")
            # what decode_stacktrace.sh and gdb need for this kernel's reports: the build
            # directory is shared with the next kernel of this tree and .config, and moves on
            for extra in ("System.map", "vmlinux"):
                if (out / extra).exists():
                    shutil.copyfile(out / extra, tmp / extra)
            shutil.copyfile(log_path, tmp / "build.log")
    seconds = time.monotonic() - start
    progress.info(f"build {name}: done in {seconds:.0f} s, {objects} objects compiled")
    return _result(final, key, config_sha, tool, False, seconds, objects)


# What a kernels/<key> entry holds whatever else it has (System.map, vmlinux): its readers open
# them, so an entry without one is made again (cache.complete)
KERNEL_FILES = ("image", "config", "build.log")


def build_lock_path() -> Path:
    """The kernel build lock (bench/bench.py and `flock` in scripts take the same): one build at a
    time for this user. ``$KHARNESS_BUILD_LOCK``, else in the user's runtime directory
    (``$XDG_RUNTIME_DIR``, or /run/user/UID when it is this user's, as it is where logind made
    it), else in the default cache: never a fixed name in a directory every user can write."""
    explicit = os.environ.get("KHARNESS_BUILD_LOCK")
    if explicit:
        return Path(explicit)
    for runtime in (os.environ.get("XDG_RUNTIME_DIR"), f"/run/user/{os.getuid()}"):
        if runtime and _own_private_dir(Path(runtime)):
            return Path(runtime) / "kharness-build.lock"
    return cache_root() / "build.lock"


def _own_private_dir(path: Path) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o022


BUILD_LOCK_WAIT = 3 * 3600   # seconds: longer than any one build, or `make test` holding it throughout


def build_lock_wait() -> float:
    """How long a build waits for the build lock before it gives up (``$KHARNESS_BUILD_LOCK_WAIT``)."""
    try:
        wait = float(os.environ.get("KHARNESS_BUILD_LOCK_WAIT", BUILD_LOCK_WAIT))
    except ValueError:
        wait = -1.0
    if not math.isfinite(wait) or wait < 0:
        raise HarnessError("build", f"KHARNESS_BUILD_LOCK_WAIT={os.environ['KHARNESS_BUILD_LOCK_WAIT']}: "
                           "expected a number of seconds")
    return wait


def _result(final: Path, key: str, config_sha: str, tool: str, cached: bool, seconds: float,
            objects: int) -> KernelBuild:
    return KernelBuild(image=final / "image", config=final / "config",
                       build_log=final / "build.log", key=key, config_sha256=config_sha,
                       toolchain=tool, cached=cached, seconds=seconds, objects=objects)


def _append_cached_log(log_path: Path, final: Path) -> None:
    with open(log_path, "a") as log:
        log.write(f"kharness: kernel reused from the cache ({final}); its build log follows\n")
        log.write((final / "build.log").read_text(errors="replace"))


def _make(arch: Arch, tree: Checkout, out: Path, cache: Path, make_flags: tuple[str, ...],
          log_path: Path, progress: Progress, name: str) -> int:
    env = {**_env(), **ccache_env(cache)}
    cmd = build_command(arch, tree.path, out, make_flags, bool(shutil.which("ccache")), os.cpu_count() or 1)
    started = time.monotonic()
    objects = 0

    def line(raw: bytes) -> None:
        nonlocal objects
        text = raw.decode(errors="replace")
        if text.startswith("  CC ") or text.startswith("  AS "):
            objects += 1
        progress.verbose(text)
        progress.update(f"build {name}: {objects} objects, {time.monotonic() - started:.0f} s")

    rc = proc.stream(cmd, "build", BUILD_TIMEOUT, log_path, line, env=env, what="make")
    if rc != 0:
        excerpt = first_errors(log_path.read_text(errors="replace"))
        raise HarnessError("build", f"make failed (exit {rc}): {excerpt.splitlines()[0] if excerpt else 'see log'}",
                           log_path, excerpt)
    return objects
