"""pytest front door: scenarios as marker-selected tests, guests as fixtures.

Every scenario in configs/scenarios/ becomes a test per (arch, variant), marked ``boot``, its
arch, its variant and its scenario (``dying-memcg`` -> ``dying_memcg``), so ``-m "arm64 and
dying_memcg"`` selects exactly that. Kernels are built and guests booted by the same pipeline the
CLI runs, lazily: a selection boots only the guests its tests use, each once per session.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.config import known, load_scenario
from harness.config.arches import all_arches, arch_name, default_arches
from harness.core.cache import cache_root
from harness.core.progress import Progress
from harness.guest.ssh import CommandResult, Guest
from harness.output.report import write
from harness.run.plan import VARIANTS, make_plan, names
from harness.run.session import Session
from harness.verdict.results import KernelId, ScenarioResult


def _scenario_names() -> list[str]:
    return known("scenarios")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kharness", "kharness: build and boot kernels for tests")
    group.addoption("--kharness-arch", default="all", help="arches to boot: a comma list or all")
    group.addoption("--kharness-series", default=None,
                    help="series: a config in configs/series/, a directory of patches, an mbox, a lore "
                         "message-id (default: configs/defaults.yaml's)")
    group.addoption("--kharness-kernel", default=None, choices=known("kernels"),
                    help="base kernel (default: the series'); without --kharness-series only the "
                         "base kernel's tests run")
    group.addoption("--kharness-profile", default="default", choices=known("profiles"),
                    help="kernel config profile")
    group.addoption("--kharness-tree", default=None,
                    help="a kernel git checkout: its commits after --kharness-base are the series")
    group.addoption("--kharness-base", default=None, help="with --kharness-tree: the base commit")
    group.addoption("--kharness-results", default="results",
                    help="where the session's run directory goes")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "boot: boots a real kernel under QEMU")
    for name in all_arches():
        config.addinivalue_line("markers", f"{name}: runs a {name} guest")
    for variant in VARIANTS:
        config.addinivalue_line("markers", f"{variant}: runs the {variant} kernel")
    for name in _scenario_names():
        config.addinivalue_line("markers", f"{name.replace('-', '_')}: the {name} scenario")
    for marker in sorted({m for name in _scenario_names() for m in load_scenario(name).markers}):
        config.addinivalue_line("markers", f"{marker}: a scenario marker (configs/scenarios/*.yaml markers:)")


def _selected_arches(config: pytest.Config) -> list[str]:
    return names(config.getoption("--kharness-arch"), all_arches(), "arch", arch_name, default_arches())


def _variants(config: pytest.Config) -> tuple[str, ...]:
    """Both variants, or only base when a kernel is named without a series (the default series
    belongs to another base)."""
    if config.getoption("--kharness-kernel") and not config.getoption("--kharness-series") \
            and not config.getoption("--kharness-tree"):
        return ("base",)
    return VARIANTS


def _param(arch: str, variant: str, *extra: str) -> pytest.param:
    marks = [pytest.mark.boot, getattr(pytest.mark, arch), getattr(pytest.mark, variant)]
    marks += [getattr(pytest.mark, m.replace("-", "_")) for m in extra]
    marks += [getattr(pytest.mark, m) for s in extra for m in load_scenario(s).markers]
    return pytest.param((arch, variant, *extra), marks=marks, id="-".join((arch, variant, *extra)))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    arches = _selected_arches(metafunc.config)
    if "kharness_case" in metafunc.fixturenames:
        metafunc.parametrize("kharness_case", [
            _param(a, v, s) for s in _scenario_names() for a in arches for v in _variants(metafunc.config)],
            indirect=True)
    elif "guest" in metafunc.fixturenames:
        metafunc.parametrize("guest", [_param(a, v) for a in arches for v in _variants(metafunc.config)],
                             indirect=True)


@pytest.fixture(scope="session")
def kharness_session(request: pytest.FixtureRequest):
    """The session's pipeline: kernels and guests made on first use, all stopped at the end."""
    config = request.config
    plan = make_plan(series=config.getoption("--kharness-series"), arches=_selected_arches(config),
                     kernel=config.getoption("--kharness-kernel"), variants=_variants(config),
                     scenarios=_scenario_names(), profiles=config.getoption("--kharness-profile"),
                     cache=cache_root(), progress=Progress(),
                     tree=Path(t) if (t := config.getoption("--kharness-tree")) else None,
                     base=config.getoption("--kharness-base"))
    run_dir = Path(config.getoption("--kharness-results")) / f"pytest-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir.mkdir(parents=True, exist_ok=True)
    session = Session(plan, cache_root(), run_dir, Progress())
    yield session
    session.close()
    if session.records():
        write(run_dir, session.meta, session.records())


@dataclass
class GuestHandle:
    """A booted guest for a test: run commands, read and write files."""

    arch: str
    variant: str
    ssh: Guest
    console_log: Path

    def run(self, command: str, timeout: float = 60.0) -> CommandResult:
        return self.ssh.run(command, timeout)

    def check(self, command: str, timeout: float = 60.0) -> str:
        return self.ssh.check(command, timeout)

    def read(self, path: str) -> str:
        return self.ssh.read(path)

    def put(self, data: bytes, path: str, mode: str = "0644") -> None:
        self.ssh.put(data, path, mode)


@pytest.fixture
def guest(request: pytest.FixtureRequest, kharness_session: Session) -> GuestHandle:
    """The booted guest of the test's (arch, variant); a build or boot failure is a test error."""
    arch, variant = request.param[:2]
    booted = kharness_session.booted(KernelId(arch, variant, kharness_session.plan.profiles[0]))
    return GuestHandle(arch, variant, booted.guest, booted.vm.console_log)


@dataclass
class Case:
    arch: str
    variant: str
    scenario: str
    session: Session
    results: dict          # the session's results so far, by (arch, variant, scenario)

    def run(self, variant: str | None = None) -> ScenarioResult:
        """The scenario's result on this case's kernel (or ``variant``'s), run once a session."""
        variant = variant or self.variant
        results = self.results
        key = (self.arch, variant, self.scenario)
        if key not in results:
            kid = KernelId(self.arch, variant, self.session.plan.profiles[0])
            # the plan's scenario: as the kernel base judges it (e.g. 7.2's fixed_upstream)
            scenario = next((s for s in self.session.plan.scenarios if s.name == self.scenario), None)
            if scenario is None:   # the plan left it out: its `since` is later than the base
                kernel = self.session.plan.kernel
                pytest.skip(f"{self.scenario} needs Linux {load_scenario(self.scenario).since} or later "
                            f"({kernel.name} is {kernel.version})")
            results[key] = self.session.run_scenario(kid, scenario)
        return results[key]

    def pair(self) -> tuple[ScenarioResult, ScenarioResult]:
        """Base's and patched's results, selftests run again where they differ by less than
        chance rules out (``Session.confirm_selftests``): what the CLI's table judges."""
        self.run("base"), self.run("patched")
        profile = self.session.plan.profiles[0]
        scenario = next(s for s in self.session.plan.scenarios if s.name == self.scenario)
        self.session.confirm_selftests(self.arch, profile, scenario)
        got = [self.session.run(KernelId(self.arch, v, profile)).result(self.scenario) for v in ("base", "patched")]
        for v, r in zip(("base", "patched"), got):
            self.results[(self.arch, v, self.scenario)] = r
        return got[0], got[1]


@pytest.fixture(scope="session")
def kharness_results() -> dict:
    return {}


@pytest.fixture
def kharness_case(request: pytest.FixtureRequest, kharness_session: Session, kharness_results: dict) -> Case:
    arch_name, variant, scenario = request.param
    return Case(arch_name, variant, scenario, kharness_session, kharness_results)
