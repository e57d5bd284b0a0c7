"""Scenarios (configs/scenarios): a guest script, what is measured around it, and the bounds
each kernel's values are judged by."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import REPO_ROOT
from harness.config.loader import CONFIG_DIR, check_name, find, from_dict, known, load_yaml
from harness.config.tests import KUNIT_PREFIX, PREFIX, TARGET, Collection, load_tests
from harness.core.errors import ConfigError


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
# the kinds a scenario's YAML may name, with the fields each must not leave empty; what a kind
# does with them is harness/verdict/kinds.py's, which takes its ``needs`` from here
KIND_NEEDS = {"fix": ("reproduced", "fixed"), "invariant": ("holds",), "kselftest": ("kselftest",),
              "kunit": ("kunit",)}
# what the harness measures around a script, by name, with the metrics each gives (a scenario's
# ``measure:``; harness/guest/measures.py reads them): cgroups, the scenario's controller's
# cgroups live and dying (``controller``, ``hierarchy``) before the script and, settled, after
MEASURES: dict[str, tuple[str, ...]] = {"cgroups": ("before", "after", "delta")}


@dataclass(frozen=True)
class ScenarioConfig:
    """A guest script, what is measured around it, and what it must show on each kernel.

    The harness takes the scenario's ``measure`` itself, before and after the script (by
    default ``cgroups``: /proc/cgroups, ``before``, ``after``, ``delta``); a script may report
    more values, each declared in ``metrics`` and printed as ``kharness-metric NAME INT``.
    ``helpers`` are C programs under guest-scripts/ built static for the guest's arch, put in
    the guest next to the script (a kselftest collection's install beside them). ``cmdline`` is added to the kernel command line
    (such scenarios get a guest of their own). Each scenario starts on a guest no other
    scenario ran on (``guest: own``, the default: a reproducer's 500 dying cgroups and their
    sleeps are not the next scenario's starting point) unless it says ``guest: shared``.
    """

    name: str
    script: str
    description: str = ""
    kind: str = "fix"
    interpreter: str = "bash"
    measure: tuple[str, ...] = ("cgroups",)   # MEASURES the harness takes around the script
    controller: str = "memory"   # cgroups: the controller counted
    hierarchy: str = "v1"        # cgroups: v1, or v2 (cgroup.stat where the controller has no v1 row)
    cmdline: str = ""
    guest: str = "own"     # own: a freshly booted guest; shared: may run where others ran
    iterations: int = 500
    timeout: float = 600.0
    settle: float = 3.0
    metrics: tuple[str, ...] = ()
    show: tuple[str, ...] = ()   # the values the A/B table shows (default: delta, if measured)
    helpers: tuple[str, ...] = ()
    selftests: tuple[str, ...] = ()   # kselftest: the collection's programs that run (all, if none)
    # kselftest: a collection (TARGET) of the tree, installed by its Makefile and run by its
    # run_kselftest.sh (``selftests``, when given, the programs of it that run)
    kselftest: str = ""
    # kunit: a directory of the tree with a .kunitconfig, whose suites are built into the kernel
    # and run at its boot; their KTAP read from the kernel log by the tree's kunit.py parse
    kunit: str = ""
    kconfig: tuple[str, ...] = ()   # kselftest/kunit: options merged after the tree's fragment
    setup: str = ""   # kselftest: a guest script sourced before the runner (configs/tests.yaml)
    selftests_libs: tuple[str, ...] = ()   # Debian -dev packages (the guest's arch) they link statically
    since: str = ""     # the first release whose tree has what it runs: older bases leave it out
    # selftests: runs of a program per kernel at most when base and patched differ on one of its
    # tests by less than chance rules out (testruns.judge_test): more runs, ``iterations`` at a
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
    def measured(self) -> tuple[str, ...]:
        """The metrics the harness's own measures give."""
        return tuple(m for name in self.measure for m in MEASURES[name])

    @property
    def shown(self) -> tuple[str, ...]:
        """What the table shows of a result: ``show``, else the delta when cgroups are measured,
        else the script's metrics."""
        return self.show or (("delta",) if "delta" in self.measured else self.metrics)

    @property
    def tree_config(self) -> str | None:
        """The tree's fragment this scenario's tests need in the kernel: a kselftest
        collection's `config`, a KUnit directory's `.kunitconfig`."""
        if self.kselftest:
            return f"tools/testing/selftests/{self.kselftest}/config"
        return f"{self.kunit}/.kunitconfig" if self.kunit else None

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

    def validate(self, file: Path, where: str) -> None:
        check_name(file, "name", self.name)   # its output files' names, in the guest and here
        if self.timeout <= 0:
            raise ConfigError(file, "timeout", f"expected a positive number of seconds, got {self.timeout:g}")
        if self.settle < 0:
            raise ConfigError(file, "settle", f"expected 0 or more seconds, got {self.settle:g}")
        if self.guest not in ("own", "shared"):
            raise ConfigError(file, "guest", f"expected own or shared, got {self.guest!r}")
        for name, value in (("script", self.script), *(("helpers", h) for h in self.helpers),
                            *((("setup", self.setup),) if self.setup else ())):
            _guest_file(file, name, value)
        for h in self.helpers:
            if not h.endswith(".c"):
                raise ConfigError(file, "helpers", f"expected a C source (.c), got {h!r}")
        if self.kind not in KIND_NEEDS:
            raise ConfigError(file, "kind", f"expected one of {', '.join(KIND_NEEDS)}, got {self.kind!r}")
        for name in KIND_NEEDS[self.kind]:
            if not getattr(self, name):
                raise ConfigError(file, name, f"missing (required for a {self.kind} scenario)")
        if self.hierarchy not in HIERARCHIES:
            raise ConfigError(file, "hierarchy", f"expected v1 or v2, got {self.hierarchy!r}")
        if self.iterations < 1:
            raise ConfigError(file, "iterations", "expected a positive integer")
        if self.confirm_runs < 1:
            raise ConfigError(file, "confirm_runs", "expected a positive integer")
        for name in self.measure:
            if name not in MEASURES:
                raise ConfigError(file, "measure", f"expected one of {', '.join(MEASURES)}, got {name!r}")
        if len(set(self.measure)) != len(self.measure):
            raise ConfigError(file, "measure", "a measure named twice")
        declared = (*self.measured, *self.metrics)
        if len(set(declared)) != len(declared):
            raise ConfigError(file, "metrics", f"a metric of the harness's measures ({', '.join(self.measured)}) "
                              "declared again")
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
        if self.setup and not re.fullmatch(r"[\w.-]+", self.setup):
            raise ConfigError(file, "setup", f"expected a file name of guest-scripts/, got {self.setup!r}")
        if self.kunit and (not TARGET.fullmatch(self.kunit) or ".." in self.kunit):
            raise ConfigError(file, "kunit", f"expected a directory of the tree with a .kunitconfig, got {self.kunit!r}")
        if self.kselftest and (not TARGET.fullmatch(self.kselftest) or ".." in self.kselftest):
            raise ConfigError(file, "kselftest", "expected a collection, a directory under "
                              f"tools/testing/selftests (such as filesystems/mount-notify), got {self.kselftest!r}")
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


def load_scenario(name: str, config_dir: Path = CONFIG_DIR) -> ScenarioConfig:
    """A scenario by name (the search path) or by file, with where its scripts are;
    ``kselftest:TARGET`` a collection of the tree under test (kselftest_scenario)."""
    if name.startswith(PREFIX):
        return kselftest_scenario(name)
    if name.startswith(KUNIT_PREFIX):
        return kunit_scenario(name)
    path = find("scenarios", name, config_dir)
    data = load_yaml(path)
    if isinstance(data, dict) and data.get("kind") == "kselftest" and isinstance(data.get("kselftest"), str):
        # a collection's scenario of its own (some of its programs, say): what configs/tests.yaml
        # says the collection needs, unless the YAML says otherwise
        defaults = _collection_fields(data["kselftest"])
        if isinstance(data.get("env"), dict):   # the YAML's variables added to the collection's
            data = {**data, "env": {**defaults["env"], **data["env"]}}
        data = {**defaults, **data}
    config = from_dict(ScenarioConfig, data, path)
    return dataclasses.replace(config, script_dirs=tuple(map(str, script_dirs(path))))


def _collection_fields(target: str) -> dict[str, Any]:
    """A kselftest scenario's fields for collection ``target`` (configs/tests.yaml)."""
    c = load_tests().collections.get(target, Collection())
    env = {**({"KSELFTEST_TIMEOUT": str(c.test_timeout)} if c.test_timeout else {}), **c.env}
    return {"script": "kselftest.sh", "kind": "kselftest", "measure": [], "kselftest": target,
            "selftests_libs": list(c.libs), "cmdline": c.cmdline, "timeout": c.timeout,
            "iterations": c.iterations, "settle": 0, "quiet_host": c.quiet_host, "env": env,
            "kconfig": list(c.kconfig), "setup": c.setup, "helpers": list(c.helpers)}


def kselftest_scenario(name: str) -> ScenarioConfig:
    """The scenario that runs collection ``kselftest:TARGET`` with the tree's run_kselftest.sh,
    each test judged base against patched (the kselftest kind; configs/tests.yaml says what the
    collection needs)."""
    target = name[len(PREFIX):]
    if not TARGET.fullmatch(target) or ".." in target:
        raise ConfigError(CONFIG_DIR / "tests.yaml", name, "expected kselftest:DIR, a directory under "
                          "tools/testing/selftests (such as kselftest:filesystems/mount-notify)")
    data = {"name": "kselftest-" + re.sub(r"[^a-z0-9_-]", "-", target.lower()),
            "description": f"tools/testing/selftests/{target} of the tree under test, run by its run_kselftest.sh",
            **_collection_fields(target)}
    config = from_dict(ScenarioConfig, data, CONFIG_DIR / "tests.yaml", f"collections.{target}")
    return dataclasses.replace(config, script_dirs=(str(GUEST_SCRIPTS),))


def kunit_scenario(name: str) -> ScenarioConfig:
    """The scenario of ``kunit:DIR``: the suites DIR/.kunitconfig names, built into both kernels
    (CONFIG_KUNIT=y), run at boot; their KTAP read from the guest's kernel log by the tree's own
    kunit.py parse, each test judged base against patched."""
    directory = name[len(KUNIT_PREFIX):].strip("/")
    if not TARGET.fullmatch(directory) or ".." in directory:
        raise ConfigError(CONFIG_DIR / "tests.yaml", name, "expected kunit:DIR, a directory of the tree with "
                          "a .kunitconfig (such as kunit:lib/kunit)")
    return ScenarioConfig(
        name="kunit-" + re.sub(r"[^a-z0-9_-]", "-", directory.lower()), script="kunit.sh", kind="kunit",
        description=f"the KUnit suites of {directory}/.kunitconfig, run at boot", measure=(), kunit=directory,
        iterations=1, timeout=120.0, settle=0.0, script_dirs=(str(GUEST_SCRIPTS),),
        guest="shared",   # the suites ran at the guest's boot: any guest of the kernel has their results
        # KUnit's fault tests BUG() on purpose (its Kconfig: off where that conflicts with the test
        # infrastructure): a kernel report on the console is a splat here, every row's ERROR
        kconfig=("CONFIG_KUNIT_FAULT_TEST=n",
                 "CONFIG_PRINTK_TIME=y",    # each suite's time at boot, from the log's timestamps
                 "CONFIG_LOG_BUF_SHIFT=20"))   # 1 MiB of log: the suites' KTAP outlives a shared guest's later output
