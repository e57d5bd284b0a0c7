"""YAML configs to frozen dataclasses, validated field by field.

Every error names the file, the field and what was expected, in one line, because a kernel
developer editing a config wants to know where to look, not read a traceback.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from harness import REPO_ROOT
from harness.core.errors import ConfigError
from harness.verdict.kinds import KINDS

T = TypeVar("T")

CONFIG_DIR = REPO_ROOT / "configs"

# A config's name becomes directory and file names (run directories, the cache) and words of the
# guest's shell commands: lower-case letters, digits and . _ -, never a leading dot or dash.
NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")


def check_name(file: Path, where: str, value: str) -> None:
    """``value`` as a name (NAME), else an error naming the file and field."""
    if not NAME.fullmatch(value):
        raise ConfigError(file, where, f"expected a name of a-z, 0-9, '.', '_', '-' (not "
                          f"starting with '.', '_' or '-'), got {value[:60]!r}")


def load_yaml(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(path, "", f"cannot read: {e.strerror}")
    except UnicodeDecodeError as e:
        raise ConfigError(path, "", f"not text (a byte {e.object[e.start]:#04x} at offset {e.start} is not UTF-8)")
    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(path, "", "nested too deep")
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(path, where, f"invalid YAML: {problem}")


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _convert(tp: Any, value: Any, file: Path, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, file, where)
            except ConfigError as e:
                errors.append(e)
        raise ConfigError(file, where, f"expected {_type_name(tp)}, got {value!r}")
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(file, where, f"expected {_type_name(tp)}, got {value!r}")
        (item,) = typing.get_args(tp)[:1]
        return tuple(_convert(item, v, file, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(file, where, f"expected a mapping, got {value!r}")
        kt, vt = typing.get_args(tp)
        return {
            _convert(kt, k, file, f"{where}.{k}"): _convert(vt, v, file, f"{where}.{k}")
            for k, v in value.items()
        }
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, file, where)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > 1e300:
            raise ConfigError(file, where, f"expected a finite number, got {str(value)[:20]}...")
        return float(value)
    if tp is float and isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(file, where, f"expected a finite number, got {value!r}")
    if tp is Any:
        return value
    if tp in (str, int, float, bool) and (type(value) is not tp):
        raise ConfigError(file, where, f"expected {_type_name(tp)}, got {value!r}")
    return value


def from_dict(cls: type[T], data: Any, file: Path, where: str = "") -> T:
    """Build dataclass ``cls`` from a YAML mapping, rejecting unknown and missing fields."""
    if not isinstance(data, dict):
        raise ConfigError(file, where or "(top level)", f"expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    prefix = f"{where}." if where else ""
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            file, prefix + str(unknown[0]), f"unknown field (expected one of: {', '.join(fields)})"
        )
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], file, prefix + name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(file, prefix + name, f"missing (expected {_type_name(hints[name])})")
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if check is not None:
        check(file, where)
    return obj


def load(cls: type[T], path: Path) -> T:
    return from_dict(cls, load_yaml(path), path)


def search_dirs(config_dir: Path = CONFIG_DIR) -> list[Path]:
    """Where configs are looked up, the first match winning: the directories of
    $KHARNESS_CONFIG_PATH (colon-separated), the current directory's .kharness/ (a kernel tree's
    own scenarios, series and kernels), then kharness's configs/. Each holds scenarios/,
    kernels/, series/, profiles/, kconfig/ as configs/ does. A config_dir of its own (the
    tests') is searched alone."""
    if config_dir != CONFIG_DIR:
        return [config_dir]
    extra = [Path(p).expanduser() for p in os.environ.get("KHARNESS_CONFIG_PATH", "").split(":") if p]
    local = Path.cwd() / ".kharness"
    return [*extra, *([local] if local.is_dir() else []), CONFIG_DIR]


def known(kind: str, config_dir: Path = CONFIG_DIR) -> list[str]:
    """The names of ``<kind>/*.yaml`` in the search path."""
    return sorted({p.stem for d in search_dirs(config_dir) for p in (d / kind).glob("*.yaml")})


def is_path(name: str) -> bool:
    """A name that is a file of the user's (``my.yaml``, ``dir/x``) rather than a config's name."""
    return name.endswith((".yaml", ".yml")) or "/" in name


def find(kind: str, name: str, config_dir: Path = CONFIG_DIR, file: Path | None = None,
         field: str | None = None) -> Path:
    """The file ``<kind>/<name>.yaml`` in the search path, or ``name`` itself when it is a path
    (relative to the config that names it, else to the current directory); else an error
    listing what exists (naming ``file`` and ``field`` when the name came from another config)."""
    singular = {"arches": "arch", "kernels": "kernel", "scenarios": "scenario",
                "profiles": "profile"}.get(kind, kind)
    if is_path(name):
        path = (file.parent if file is not None else Path.cwd()) / Path(name).expanduser()
        if not path.is_file():
            raise ConfigError(file or path, field or "", f"no such {singular} file: {path}")
        return path
    for d in search_dirs(config_dir):
        path = d / kind / f"{name}.yaml"
        if path.is_file():
            return path
    names = ", ".join(known(kind, config_dir)) or "none"
    if file is not None:
        raise ConfigError(file, field or "", f"unknown {singular} {name!r} (known: {names})")
    raise ConfigError(config_dir / kind, name, f"unknown {singular} (known: {names})")


# --- the configs that are not per-architecture --------------------------------------------------


@dataclass(frozen=True)
class SourceSpec:
    """One place a base kernel can come from: a url, a kernel.org release, a Debian source
    package, a local path or a git ref; ``type`` says which, and so which fields count."""

    type: str
    url: str | None = None
    sha256: str | None = None
    suite: str | None = None
    package: str = "linux"
    version: str | None = None      # debian: a pattern (5.10.*); kernelorg: a release (5.10.262)
    path: str | None = None
    repo: str | None = None
    ref: str | None = None
    mirror: str | None = None       # kernelorg: base URL, default kernelorg.KERNEL_ORG
    keyring: str | None = None      # kernelorg: OpenPGP keyring that verifies sha256sums.asc

    REQUIRED = {"url": ("url", "sha256"), "kernelorg": ("version",), "debian": ("suite", "version"),
                "path": ("path",), "git": ("repo", "ref"), "tree": ("path", "ref")}

    def validate(self, file: Path, where: str) -> None:
        if self.type not in self.REQUIRED:
            raise ConfigError(file, f"{where}.type",
                              f"unknown source type {self.type!r} (expected one of: {', '.join(self.REQUIRED)})")
        for name in self.REQUIRED[self.type]:
            if getattr(self, name) is None:
                raise ConfigError(file, f"{where}.{name}", f"missing (required for a {self.type} source)")
        if self.sha256 is not None and (len(self.sha256) != 64 or
                                        not all(c in "0123456789abcdef" for c in self.sha256)):
            raise ConfigError(file, f"{where}.sha256", "expected 64 lowercase hex digits")
        if self.type == "kernelorg" and not re.fullmatch(r"\d+\.\d+(\.\d+)?", self.version or ""):
            raise ConfigError(file, f"{where}.version", "expected a kernel.org release such as "
                              "5.10.262 (-rc tarballs have no entry in sha256sums.asc)")
        if self.keyring is not None and not Path(self.keyring).expanduser().is_file():
            raise ConfigError(file, f"{where}.keyring", f"no such file: {self.keyring}")


@dataclass(frozen=True)
class KernelProfile:
    """What one kernel base adds to a profile it supports: fragments only it needs (e.g. Linux
    5.10's arm64 has no KASAN_VMALLOC, so its debug kernels keep kernel stacks unmapped)."""

    kconfig: tuple[str, ...] = ()
    arch_kconfig: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # scenarios this base's kernels of the profile cannot measure, each with the reason (5.10's
    # SLUB uncharges a KASAN-quarantined object only when it leaves the quarantine): left out,
    # and the plan says why
    skip: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class KnownFlaky:
    """A selftest known to fail some runs on this base with no kernel change (a timing test
    under emulation): it still runs and is shown, and both kernels failing it some of the time
    is no failure of the row; patched failing it significantly more often still is REGRESSED."""

    test: str                       # "program:test", as the selftests rows name it
    reason: str
    seen: str                       # the date it was last seen failing on the base (YYYY-MM-DD)
    arches: tuple[str, ...] = ()    # empty: every arch
    link: str = ""

    def validate(self, file: Path, where: str) -> None:
        if ":" not in self.test:
            raise ConfigError(file, f"{where}test", f"expected program:test, got {self.test!r}")
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", self.seen):
            raise ConfigError(file, f"{where}seen", f"expected a date YYYY-MM-DD, got {self.seen!r}")
        if not self.reason.strip():
            raise ConfigError(file, f"{where}reason", "say why it is known to flake")


@dataclass(frozen=True)
class KernelConfig:
    """A base kernel: a name, the version series it belongs to, where to get it, and what its
    kernels need: kconfig fragments on top of tinyconfig (the guest's, the memcg facts of this
    version), and the config profiles it supports with what it adds to each."""

    name: str
    version: str
    sources: tuple[SourceSpec, ...]
    kconfig: tuple[str, ...]
    profiles: dict[str, KernelProfile]
    check_profiles: tuple[str, ...] = ("default",)   # what `check-series` builds every prefix with
    arch_kconfig: dict[str, tuple[str, ...]] = field(default_factory=dict)
    description: str = ""
    make_flags: tuple[str, ...] = ()
    # fix scenarios whose bug this base no longer has, with the release that fixed it: on this
    # base they are judged by their `fixed` bounds on every kernel (kinds.FixedUpstream)
    fixed_upstream: dict[str, str] = field(default_factory=dict)
    scenarios: tuple[str, ...] = ()   # what a run on this base without a series runs by default
    known_flaky: tuple[KnownFlaky, ...] = ()   # selftests that flake on this base: shown, not failed

    def validate(self, file: Path, where: str) -> None:
        check_name(file, "name", self.name)
        for i, k in enumerate(self.known_flaky):
            k.validate(file, f"known_flaky[{i}].")
        if not self.sources:
            raise ConfigError(file, "sources", "expected at least one source")
        fragments(file, "", self.kconfig, self.arch_kconfig)
        if "default" not in self.profiles:
            raise ConfigError(file, "profiles", "expected the default profile among them")
        for name, p in self.profiles.items():
            find("profiles", name, file=file, field=f"profiles.{name}")
            fragments(file, f"profiles.{name}.", p.kconfig, p.arch_kconfig)
            for scenario, reason in p.skip.items():
                find("scenarios", scenario, file=file, field=f"profiles.{name}.skip.{scenario}")
                if not isinstance(reason, str) or not reason.strip():
                    raise ConfigError(file, f"profiles.{name}.skip.{scenario}", "expected the reason, a text")
        for i, name in enumerate(self.scenarios):
            find("scenarios", name, file=file, field=f"scenarios[{i}]")
        for name in self.fixed_upstream:
            if find("scenarios", name, file=file, field=f"fixed_upstream.{name}") and \
                    load_scenario(name).kind != "fix":
                raise ConfigError(file, f"fixed_upstream.{name}", "expected a fix scenario")
        for name in self.check_profiles:
            if name not in self.profiles:
                raise ConfigError(file, "check_profiles", f"{name!r} is not among this kernel's "
                                  f"profiles ({', '.join(self.profiles)})")


@dataclass(frozen=True)
class ProfileConfig:
    """configs/profiles/<name>.yaml: a kernel config profile (a column of the table): fragments
    on top of the kernel's, and how much slower its kernels run the scenarios. A kernel base
    lists the profiles it supports; a profile applies to those kernels."""

    name: str
    description: str
    kconfig: tuple[str, ...] = ()
    arch_kconfig: dict[str, tuple[str, ...]] = field(default_factory=dict)
    max_iterations: int | None = None
    timeout_scale: float = 1.0
    selftests: bool = True    # run selftests scenarios on its kernels
    in_all: bool = True       # `--profile all` includes it (a profile for kharness's own tests does not)

    def validate(self, file: Path, where: str) -> None:
        check_name(file, "name", self.name)
        fragments(file, "", self.kconfig, self.arch_kconfig)
        if self.max_iterations is not None and self.max_iterations < 1:
            raise ConfigError(file, "max_iterations", "expected a positive integer")
        if self.timeout_scale <= 0:
            raise ConfigError(file, "timeout_scale", "expected a positive number")


@dataclass(frozen=True)
class Defaults:
    """configs/defaults.yaml: what a run tests when the command line does not say."""

    series: str                     # configs/series/<series>.yaml
    kernel: str                     # a base for a series that names none (a directory, an mbox)
    scenarios: tuple[str, ...]      # for a series that names none


def fragments(file: Path, prefix: str, common: tuple[str, ...],
              per_arch: dict[str, tuple[str, ...]]) -> None:
    """Every fragment named (in ``{prefix}kconfig`` and ``{prefix}arch_kconfig``) must exist
    under kconfig/ of the search path."""
    named = [(f"{prefix}kconfig", f) for f in common]
    named += [(f"{prefix}arch_kconfig.{a}", f) for a, fs in per_arch.items() for f in fs]
    for where, name in named:
        if kconfig_fragment(name) is None:
            raise ConfigError(file, where, f"no such kconfig fragment: configs/kconfig/{name}")


def kconfig_fragment(name: str, config_dir: Path = CONFIG_DIR) -> Path | None:
    """kconfig/NAME in the search path (a file path is itself)."""
    if Path(name).is_absolute():
        return Path(name) if Path(name).is_file() else None
    return next((d / "kconfig" / name for d in search_dirs(config_dir) if (d / "kconfig" / name).is_file()), None)


@dataclass(frozen=True)
class Expectation:
    """A bound on one value a scenario measured: ``metric`` (by default ``delta``, the harness's
    own num_cgroups reading after minus before) at least ``min`` or ``min_fraction`` of the
    iterations, or at most ``max``."""

    metric: str = "delta"
    min: int | None = None
    max: int | None = None
    min_fraction: float | None = None
    # patched at least this fraction of the base kernel's value (judged when both ran): a fix
    # must not work by accounting less than the kernel it changes
    min_base_fraction: float | None = None

    def validate(self, file: Path, where: str) -> None:
        if sum(b is not None for b in (self.min, self.max, self.min_fraction, self.min_base_fraction)) != 1:
            raise ConfigError(file, where, "expected exactly one of min, max, min_fraction, min_base_fraction")


HIERARCHIES = ("v1", "v2")
BUILTIN_METRICS = ("delta", "before", "after")


@dataclass(frozen=True)
class ScenarioConfig:
    """A guest script, how to measure around it, and what it must show on each kernel.

    The harness reads /proc/cgroups itself before and after the script (``delta``); a script may
    report more values, each declared in ``metrics`` and printed as ``kharness-metric NAME INT``.
    ``helpers`` are C programs under guest-scripts/ built static for the guest's arch,
    ``selftests`` programs of the tree's tools/testing/selftests/<selftests_dir> built the same
    way; both are put in the guest next to the script. ``cmdline`` is added to the kernel command line
    (such scenarios get a guest of their own). Each scenario starts on a guest no other
    scenario ran on (``guest: own``, the default: a reproducer's 500 dying cgroups and their
    sleeps are not the next scenario's starting point) unless it says ``guest: shared``.
    """

    name: str
    script: str
    description: str = ""
    kind: str = "fix"
    interpreter: str = "bash"
    controller: str = "memory"
    hierarchy: str = "v1"
    cmdline: str = ""
    guest: str = "own"     # own: a freshly booted guest; shared: may run where others ran
    iterations: int = 500
    timeout: float = 600.0
    settle: float = 3.0
    metrics: tuple[str, ...] = ()
    show: tuple[str, ...] = ("delta",)   # the values the A/B table shows
    helpers: tuple[str, ...] = ()
    selftests: tuple[str, ...] = ()
    selftests_dir: str = "cgroup"          # where they are, under tools/testing/selftests
    selftests_uapi: bool = False           # built with the tree's include/uapi before the toolchain's
    selftests_libs: tuple[str, ...] = ()   # Debian -dev packages (the guest's arch) they link statically
    since: str = ""     # the first release whose tree has what it runs: older bases leave it out
    # selftests: runs of a program per kernel at most when base and patched differ on one of its
    # tests by less than chance rules out (kinds.judge_test): more runs, ``iterations`` at a
    # time, for at most ``confirm_seconds`` of script time per kernel
    confirm_runs: int = 30
    confirm_seconds: float = 900.0
    # its script never runs beside a kernel build (the machine's build lock, held shared): what
    # it times measures the host's load, not the kernel (test_kmem_basic's race with RCU frees)
    quiet_host: bool = False
    env: dict[str, str] = field(default_factory=dict)   # more environment for the script
    markers: tuple[str, ...] = ()   # more pytest markers for its tests (make test leaves out `extended`)
    not_on: tuple[str, ...] = ()    # profiles whose kernels do not run it (the YAML says why)
    # iterations on a profile's kernels, instead of the profile's cap (max_iterations): what a
    # debug kernel can bear when the cap's count is too few to measure (the YAML says why)
    iterations_on: dict[str, int] = field(default_factory=dict)
    reproduced: tuple[Expectation, ...] = ()
    fixed: tuple[Expectation, ...] = ()
    holds: tuple[Expectation, ...] = ()
    script_dirs: tuple[str, ...] = ()   # set by load_scenario: where script and helpers are

    def guest_path(self, name: str) -> Path:
        """The script's or a helper's file (config.script_dirs: beside the YAML, then guest-scripts/)."""
        dirs = tuple(map(Path, self.script_dirs)) or (GUEST_SCRIPTS,)
        path = guest_file(dirs, name)
        if path is None:
            raise ConfigError(Path(self.script_dirs[0] if self.script_dirs else GUEST_SCRIPTS), name,
                              "no such guest script")
        return path

    @property
    def marker(self) -> str:
        return self.name.replace("-", "_")

    @property
    def signature(self) -> tuple[str, ...]:
        """The metrics whose ``fixed`` bound is not also a ``reproduced`` one: what tells the bug
        from its absence; the other bounds (the work was done, the memory came back) hold either way."""
        return tuple(dict.fromkeys(e.metric for e in self.fixed if e not in self.reproduced))

    def in_release(self, version: str) -> bool:
        """Whether a base of ``version`` (5.10, 7.2) has what this scenario runs (``since``)."""
        def release(v: str) -> tuple[int, ...]:
            return tuple(int(x) for x in re.findall(r"\d+", v)[:2])
        return not self.since or release(version) >= release(self.since)

    def expectations(self, variant: str) -> tuple[Expectation, ...]:
        """The bounds ``variant``'s result is judged by (the kind says which)."""
        return KINDS[self.kind].expectations(self, variant)

    def validate(self, file: Path, where: str) -> None:
        check_name(file, "name", self.name)   # its output files' names, in the guest and here
        if self.timeout <= 0:
            raise ConfigError(file, "timeout", f"expected a positive number of seconds, got {self.timeout:g}")
        if self.settle < 0:
            raise ConfigError(file, "settle", f"expected 0 or more seconds, got {self.settle:g}")
        if self.guest not in ("own", "shared"):
            raise ConfigError(file, "guest", f"expected own or shared, got {self.guest!r}")
        for name, value in (("script", self.script), *(("helpers", h) for h in self.helpers)):
            _guest_file(file, name, value)
        for h in self.helpers:
            if not h.endswith(".c"):
                raise ConfigError(file, "helpers", f"expected a C source (.c), got {h!r}")
        declarable = [k for k, v in KINDS.items() if v.declared]
        if self.kind not in declarable:
            raise ConfigError(file, "kind", f"expected one of {', '.join(declarable)}, got {self.kind!r}")
        for name in KINDS[self.kind].needs:
            if not getattr(self, name):
                raise ConfigError(file, name, f"missing (required for a {self.kind} scenario)")
        if self.hierarchy not in HIERARCHIES:
            raise ConfigError(file, "hierarchy", f"expected v1 or v2, got {self.hierarchy!r}")
        if self.iterations < 1:
            raise ConfigError(file, "iterations", "expected a positive integer")
        if self.confirm_runs < 1:
            raise ConfigError(file, "confirm_runs", "expected a positive integer")
        declared = (*BUILTIN_METRICS, *self.metrics)
        for name in ("reproduced", "fixed", "holds"):
            for i, e in enumerate(getattr(self, name)):
                if e.metric not in declared:
                    raise ConfigError(file, f"{name}[{i}].metric", f"{e.metric!r} is not declared "
                                      f"in metrics (known: {', '.join(declared)})")
        for name in self.show:
            if name not in declared:
                raise ConfigError(file, "show", f"{name!r} is not declared in metrics")
        profiles = known("profiles")
        for name in self.not_on:
            if name not in profiles:
                raise ConfigError(file, "not_on", f"no profile {name!r} (known: {', '.join(profiles)})")
        for name, count in self.iterations_on.items():
            if name not in profiles:
                raise ConfigError(file, f"iterations_on.{name}", f"no profile {name!r} (known: {', '.join(profiles)})")
            if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                raise ConfigError(file, f"iterations_on.{name}", f"expected a positive integer, got {count!r}")
        for m in self.markers:
            if not re.fullmatch(r"[a-z][a-z0-9_]*", m):
                raise ConfigError(file, "markers", f"expected a pytest marker name (a-z, 0-9, _), got {m!r}")
        for t in self.selftests:
            if not re.fullmatch(r"[\w-]+", t):
                raise ConfigError(file, "selftests", f"expected a program name, got {t!r}")
        if not re.fullmatch(r"\w[\w-]*(/\w[\w-]*)*", self.selftests_dir):
            raise ConfigError(file, "selftests_dir", "expected a directory under tools/testing/selftests "
                              f"(such as filesystems/mount-notify), got {self.selftests_dir!r}")
        for lib in self.selftests_libs:
            if not re.fullmatch(r"[a-z0-9][a-z0-9+.-]*-dev", lib):
                raise ConfigError(file, "selftests_libs", f"expected a Debian -dev package name, got {lib!r}")
        if self.since and not re.fullmatch(r"\d+\.\d+", self.since):
            raise ConfigError(file, "since", f"expected a release such as 6.15, got {self.since!r}")
        for name in self.env:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name in ("ITERATIONS", "KHARNESS_DIR"):
                raise ConfigError(file, f"env.{name}", "expected a variable name of its own "
                                  "(ITERATIONS and KHARNESS_DIR are the harness's)")


GUEST_SCRIPTS = REPO_ROOT / "guest-scripts"


def script_dirs(file: Path) -> tuple[Path, ...]:
    """Where a scenario's script and helpers are looked for: beside its YAML file when it is not
    one of kharness's own (a kernel tree's .kharness/ keeps its scripts with it), then in
    kharness's guest-scripts/ (whose scripts any scenario may use)."""
    here = file.resolve().parent
    own = here.is_relative_to(CONFIG_DIR.resolve())
    return (GUEST_SCRIPTS,) if own else (here, GUEST_SCRIPTS)


def guest_file(dirs: tuple[Path, ...], value: str) -> Path | None:
    """``value`` in the first of ``dirs`` that has it; never a file outside them (it is copied
    into the guest and run there)."""
    for d in dirs:
        path = (d / value).resolve()
        if path.is_relative_to(d.resolve()) and path.is_file():
            return path
    return None


def _guest_file(file: Path, field_name: str, value: str) -> None:
    dirs = script_dirs(file)
    if not any((d / value).resolve().is_relative_to(d.resolve()) for d in dirs):
        raise ConfigError(file, field_name, f"expected a file under guest-scripts/, got {value!r}")
    if guest_file(dirs, value) is None:
        where = " or ".join(("guest-scripts/" if d == GUEST_SCRIPTS else f"{d}/") for d in dirs)
        raise ConfigError(file, field_name, f"no such guest script: {value} (looked in {where})")


def load_kernel(name: str, config_dir: Path = CONFIG_DIR) -> KernelConfig:
    return load(KernelConfig, find("kernels", name, config_dir))


def load_profile(name: str, config_dir: Path = CONFIG_DIR) -> ProfileConfig:
    profile = load(ProfileConfig, find("profiles", name, config_dir))
    if profile.name != name:
        raise ConfigError(find("profiles", name, config_dir), "name",
                          f"expected {name!r} (the file's name), got {profile.name!r}")
    return profile


def load_defaults(config_dir: Path = CONFIG_DIR) -> Defaults:
    return load(Defaults, config_dir / "defaults.yaml")


def load_scenario(name: str, config_dir: Path = CONFIG_DIR) -> ScenarioConfig:
    """A scenario by name (the search path) or by file, with where its scripts are."""
    path = find("scenarios", name, config_dir)
    return dataclasses.replace(load(ScenarioConfig, path), script_dirs=tuple(map(str, script_dirs(path))))
