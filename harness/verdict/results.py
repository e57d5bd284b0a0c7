"""Results as data: what each scenario showed on each kernel, how each kernel was made, and the
run's metadata. Frozen, serialised to report.json as they are (report.py), judged by their kind
(kinds.py)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

DEFAULT_PROFILE = "default"


@dataclass(frozen=True, order=True)
class KernelId:
    """One kernel of a run: its arch, its variant (base or patched) and its config profile."""

    arch: str
    variant: str
    profile: str = DEFAULT_PROFILE

    @property
    def label(self) -> str:
        """arch/variant, and /profile when not the default one (progress lines, messages)."""
        parts = (self.arch, self.variant) + ((self.profile,) if self.profile != DEFAULT_PROFILE else ())
        return "/".join(parts)

    @property
    def dir_name(self) -> str:
        """The directory of this kernel's logs in a run directory."""
        return f"{self.arch}-{self.variant}" + ("" if self.profile == DEFAULT_PROFILE else f"-{self.profile}")


def run_dir_name(arch: str, variant: str, profile: str = DEFAULT_PROFILE) -> str:
    return KernelId(arch, variant, profile).dir_name


def console_name(cmdline: str) -> str:
    """The console log of a guest booted with ``cmdline`` added (each such guest has its own)."""
    slug = re.sub(r"[^\w.-]+", "_", cmdline)
    return f"console-{slug}.log" if cmdline else "console.log"


@dataclass(frozen=True)
class ScenarioResult:
    """What one scenario showed on one kernel; ``error`` set means no number is to be trusted."""

    arch: str
    variant: str
    scenario: str
    iterations: int
    expectation: str            # the bound this variant is judged by, in words
    held: bool | None = None    # the variant's expectation held (bug present on base, absent on patched)
    settle_seconds: float | None = None
    script_seconds: float | None = None
    error: str | None = None
    log: str | None = None
    kind: str = "fix"
    profile: str = DEFAULT_PROFILE
    show: tuple[str, ...] = ("delta",)                    # the metrics the table shows
    # the harness's measures (cgroups: before, after, delta) and the script's metrics; a
    # report.json of schema 1 or 2 had before, after and delta as fields of their own
    metrics: dict[str, int] = field(default_factory=dict)
    tests: dict[str, str] = field(default_factory=dict)   # selftests: "program:test" -> result
    # selftests: "program:test" -> its outcome in each run, a letter a run ("ppf": pass, pass,
    # fail; repeat.OUTCOME); empty in a report.json older than it (``tests`` alone then)
    test_runs: dict[str, str] = field(default_factory=dict)
    known_flaky: tuple[str, ...] = ()   # selftests known to flake on this base and arch (its config)
    known_failures: tuple[str, ...] = ()   # tests known to fail on this base and arch (its config)
    failed: tuple[str, ...] = ()                          # the expectations that did not hold
    cmdline: str = ""                                     # added to the guest's kernel command line
    fresh_guest: bool | None = None   # it ran on a guest no other scenario had run on (None: no guest)
    unchanged: bool = False   # patched, with the base's very image: not booted, nothing measured
    notes: tuple[str, ...] = ()                           # what the script said of this kernel
    relative: dict[str, float] = field(default_factory=dict)   # metric -> fraction of base's value
    signature: tuple[str, ...] = ()   # the metrics that tell the bug (ScenarioConfig.signature)
    # --repeat N: every run's own result (each on a fresh boot); the fields above are then their
    # median, and held only when all N held: runs that disagree make the result FLAKY
    repeats: tuple[dict[str, Any], ...] = ()

    @property
    def flaky(self) -> bool:
        return len({r.get("held") for r in self.repeats}) > 1

    @property
    def kernel(self) -> KernelId:
        return KernelId(self.arch, self.variant, self.profile)



@dataclass(frozen=True)
class RunRecord:
    """One booted kernel: how it was built and booted, and its scenarios."""

    arch: str
    variant: str
    profile: str = DEFAULT_PROFILE
    kernel_version: str | None = None
    commit: str | None = None
    kernel_key: str | None = None
    config_sha256: str | None = None
    toolchain: str | None = None
    build_cached: bool | None = None
    objects_compiled: int | None = None
    accel: str | None = None
    accel_reason: str | None = None
    vcpus: int | None = None
    image_sha256: str | None = None  # the booted image's: a patched kernel equal to its base is NO-CHANGE
    kernel_dir: str | None = None    # the cached kernel: image, config, System.map, vmlinux
    logs: dict[str, str] = field(default_factory=dict)   # file name -> path in the run directory
    image_key: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    scenarios: tuple[ScenarioResult, ...] = ()
    boots: dict[str, float] = field(default_factory=dict)   # seconds to SSH, per kernel command line
    error: str | None = None
    log: str | None = None
    # the series' changes this kernel's .config does not compile, each with the option that would
    not_built: tuple[str, ...] = ()

    @property
    def kernel(self) -> KernelId:
        return KernelId(self.arch, self.variant, self.profile)


@dataclass(frozen=True)
class KernelMeta:
    """The base tree a run used."""

    name: str
    version: str | None = None
    provider: str | None = None
    origin: str | None = None
    sha256: str | None = None
    fetch_seconds: float | None = None


@dataclass(frozen=True)
class PatchMeta:
    file: str
    subject: str
    sha256: str
    diff_sha256: str = ""   # its diff's (patches.diff_digest): b4-check tells a later version by it


@dataclass(frozen=True)
class SeriesMeta:
    """The series a run applied, and where it came from (which mail was tested)."""

    name: str = ""
    title: str = ""
    sha256: str = ""
    patches: tuple[PatchMeta, ...] = ()
    origin: str = ""
    origin_sha256: str | None = None   # the mbox or thread as fetched; None for a directory
    base_commit: str | None = None     # the cover letter's base-commit:, None when it has none


@dataclass(frozen=True)
class RunMeta:
    """What report.json says of the run as a whole."""

    kharness: str
    kernel: KernelMeta
    profiles: tuple[str, ...]
    started: str
    run_dir: str
    series: SeriesMeta | None = None
    jobs: int = 1
    seconds: float | None = None
    command: str | None = None
    ccache_remote: str | None = None   # the shared compiler cache the builds used, no credentials

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.series is None:
            del data["series"]
        data["profiles"] = list(self.profiles)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RunMeta":
        """From a report.json of any readable schema (fields it lacks take their defaults)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["kernel"] = _dataclass(KernelMeta, {"name": "?", **(data.get("kernel") or {})})
        series = data.get("series")
        if series:
            values["series"] = _dataclass(SeriesMeta, {
                **series, "patches": tuple(_dataclass(PatchMeta, p) for p in series.get("patches", ()))})
        values["profiles"] = tuple(data.get("profiles") or (DEFAULT_PROFILE,))
        values.setdefault("kharness", "?")
        values.setdefault("started", "")
        values.setdefault("run_dir", "")
        return cls(**values)


def _dataclass(cls, data: dict[str, Any]):
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})
