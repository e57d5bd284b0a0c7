"""The configs of kernels and profiles (configs/kernels, configs/profiles, defaults.yaml)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from harness.config.loader import CONFIG_DIR, check_name, find, load, search_dirs
from harness.config.scenarios import load_scenario
from harness.core.errors import ConfigError

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
class KnownFailure(KnownFlaky):
    """A test known to fail on this base every run (a feature the small kernels leave out, a
    test broken upstream), as BPF CI's DENYLIST and LKFT's known issues list them: it still runs
    and is shown; the rows name it as known, and an entry whose test passed is reported stale.
    ``test`` is a kselftest program or program:subtest."""

    def validate(self, file: Path, where: str) -> None:
        if not re.fullmatch(r"\S+", self.test):
            raise ConfigError(file, f"{where}test", f"expected program or program:test, got {self.test!r}")
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", self.seen):
            raise ConfigError(file, f"{where}seen", f"expected a date YYYY-MM-DD, got {self.seen!r}")
        if not self.reason.strip():
            raise ConfigError(file, f"{where}reason", "say why it fails")


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
    known_failures: tuple[KnownFailure, ...] = ()   # tests that fail on this base every run: named, shown

    def validate(self, file: Path, where: str) -> None:
        check_name(file, "name", self.name)
        for i, k in enumerate(self.known_flaky):
            k.validate(file, f"known_flaky[{i}].")
        for i, f in enumerate(self.known_failures):
            f.validate(file, f"known_failures[{i}].")
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


