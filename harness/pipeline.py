"""The stages of a run, in order, for every (arch, variant) of a plan.

source -> tree -> kconfig -> build -> guest image -> boot -> scenarios -> verdict. Each stage
takes the previous stage's artifact; every failure becomes an ERROR record with the log that
explains it, and the run goes on with the next (arch, variant).
"""

from __future__ import annotations

import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

from . import __version__
from .arches import Arch
from .config import KernelConfig, ScenarioConfig
from .errors import HarnessError, os_failure
from .guest_image import GuestImage, build_guest_image
from .kbuild import KernelBuild, build_kernel
from .progress import Progress
from .report import RunRecord, ScenarioResult
from .scenario import describe, holds, run_scenario
from .series import Series, Workspace
from .source import fetch_source
from .ssh import Guest
from .vm import SSHD_MARK, VM, Accel, choose_accel

VARIANTS = ("base", "patched")
DEFAULT_FRAGMENTS = ("guest.config", "memcg.config")


@dataclass(frozen=True)
class Plan:
    kernel: KernelConfig
    arches: tuple[Arch, ...]
    variants: tuple[str, ...]
    scenarios: tuple[ScenarioConfig, ...]
    fragments: tuple[str, ...] = DEFAULT_FRAGMENTS
    profile: str = "default"
    series: Series | None = None


class Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        except OSError as e:  # a full disk is an ERROR of the stage it stopped, like any other
            raise os_failure(name, e) from e
        finally:
            self.timings[name] = round(time.monotonic() - start, 2)


@dataclass
class Booted:
    """A guest that answers SSH, with what it took to get there."""

    vm: VM
    guest: Guest
    seconds: float


def boot(arch: Arch, kernel: Path, image: GuestImage, accel: Accel, run_dir: Path,
         progress: Progress, label: str) -> Booted:
    """Start QEMU and wait until an SSH command runs; the caller stops the VM."""
    deadline = arch.boot_deadline_kvm if accel.name == "kvm" else arch.boot_deadline
    vm = VM(arch, kernel, image.initramfs, accel, run_dir, progress)
    try:
        _start(vm, deadline)
        while True:
            try:
                guest = Guest.connect(vm.port, image.host_key, image.client_key, timeout=5)
                guest.check("true", timeout=10)
                break
            except HarnessError as e:
                if e.stage == "ssh" and "host key" in e.message:
                    raise
                last = e
            except Exception as e:  # paramiko's banner/connect errors while dropbear comes up
                last = e
            vm.check()
            if time.monotonic() - vm.started > deadline:
                raise HarnessError("boot", f"boot deadline ({deadline:.0f} s): SSH did not answer: "
                                   f"{last}", vm.console_log, vm.console.tail() if vm.console else "")
            time.sleep(0.1)
        seconds = time.monotonic() - vm.started
        progress.info(f"boot {label}: SSH ready in {seconds:.1f} s ({accel.name})")
        return Booted(vm, guest, seconds)
    except BaseException:
        vm.stop()
        raise


def _start(vm: VM, deadline: float) -> None:
    """Start QEMU and wait for /init's sshd line; once more, on a new port, if another process
    took the port between free_port() and QEMU's bind (two runs starting at once)."""
    vm.start()
    try:
        vm.wait_for(SSHD_MARK, deadline)
    except HarnessError as e:
        if "Could not set up host forwarding rule" not in e.message:
            raise
        vm.progress.info(f"boot: port {vm.port} was taken before QEMU could bind it; another port")
        vm.stop()
        vm.start()
        vm.wait_for(SSHD_MARK, deadline)


def _expectation(scenario: ScenarioConfig, variant: str):
    return scenario.reproduced if variant == "base" else scenario.fixed


def _error_result(scenario: ScenarioConfig, arch: str, variant: str, e: HarnessError) -> ScenarioResult:
    return ScenarioResult(arch=arch, variant=variant, scenario=scenario.name,
                          iterations=scenario.iterations,
                          expectation=describe(_expectation(scenario, variant), scenario.iterations),
                          error=str(e), log=str(e.log) if e.log else None)


class Session:
    """One plan's shared work: the tree and its workspace, each variant's commit, each
    (arch, variant)'s kernel and booted guest, made on first use and reused after.

    Both front doors drive it: ``run_plan`` for the CLI, the pytest plugin for marker-selected
    tests, which thereby build and boot only what the selected tests need. Failures are
    remembered, so every scenario of a kernel that did not boot reports the same ERROR.
    """

    def __init__(self, plan: Plan, cache: Path, run_dir: Path, progress: Progress):
        self.plan, self.cache, self.run_dir, self.progress = plan, cache, run_dir, progress
        self.meta: dict = {"kharness": __version__, "kernel": {"name": plan.kernel.name},
                           "profile": plan.profile, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                           "run_dir": str(run_dir)}
        if plan.series is not None:
            self.meta["series"] = {
                "name": plan.series.name, "title": plan.series.title, "sha256": plan.series.digest,
                "origin": plan.series.origin, "origin_sha256": plan.series.origin_sha256,
                "base_commit": plan.series.base_commit,
                "patches": [{"file": p.path.name, "subject": p.subject, "sha256": p.sha256}
                            for p in plan.series.patches]}
        self._workspace: Workspace | HarnessError | None = None
        self._commits: dict[str, str | HarnessError] = {}
        self._records: dict[tuple[str, str], RunRecord] = {}
        self._timers: dict[tuple[str, str], Timer] = {}
        self._booted: dict[tuple[str, str], Booted | HarnessError] = {}

    # each step returns its artifact or raises the (remembered) HarnessError
    def workspace(self) -> Workspace:
        if self._workspace is None:
            try:
                t0 = time.monotonic()
                tree = fetch_source(self.plan.kernel, self.cache, self.progress)
                self.meta["kernel"].update(version=tree.version, provider=tree.provider,
                                           origin=tree.origin, sha256=tree.sha256,
                                           fetch_seconds=round(time.monotonic() - t0, 2))
                ws = Workspace(tree, self.cache)
                try:
                    ws.base(self.progress)
                except OSError as e:
                    raise os_failure("series", e) from e
                self._workspace = ws
            except HarnessError as e:
                self.progress.info(f"ERROR source: {e}")
                self._workspace = e
        if isinstance(self._workspace, HarnessError):
            raise self._workspace
        return self._workspace

    def commit(self, variant: str) -> str:
        if variant not in self._commits:
            try:
                ws = self.workspace()
                if variant == "base":
                    self._commits[variant] = ws.base(self.progress)
                elif self.plan.series is None:
                    raise HarnessError("series", "the patched variant needs a series (--series)")
                else:
                    self._commits[variant] = ws.apply(self.plan.series, self.progress,
                                                      self.run_dir / "series.log")[-1]
            except HarnessError as e:
                self._commits[variant] = e
        commit = self._commits[variant]
        if isinstance(commit, HarnessError):
            raise commit
        return commit

    def record(self, arch: Arch, variant: str) -> RunRecord:
        return self._records.setdefault((arch.name, variant), RunRecord(arch=arch.name, variant=variant))

    def _update(self, arch: Arch, variant: str, **fields) -> None:
        self._records[(arch.name, variant)] = replace(self.record(arch, variant), **fields)

    def booted(self, arch: Arch, variant: str) -> Booted:
        """Build the kernel and the image, choose the accelerator, boot: once per (arch, variant)."""
        key = (arch.name, variant)
        if key not in self._booted:
            timer = self._timers.setdefault(key, Timer())
            try:
                self._booted[key] = self._boot(arch, variant, timer)
            except HarnessError as e:
                self.progress.info(f"ERROR {arch.name}/{variant}: {e}")
                self._update(arch, variant, error=str(e), log=str(e.log) if e.log else None)
                self._booted[key] = e
            finally:
                self._update(arch, variant, timings=dict(timer.timings))
        booted = self._booted[key]
        if isinstance(booted, HarnessError):
            raise booted
        return booted

    def _boot(self, arch: Arch, variant: str, timer: Timer) -> Booted:
        label = f"{arch.name}/{variant}"
        out = self.run_dir / f"{arch.name}-{variant}"
        out.mkdir(parents=True, exist_ok=True)
        ws = self.workspace()
        commit = self.commit(variant)
        self._update(arch, variant, kernel_version=ws.tree.version, commit=commit)
        with timer.stage("build"), ws.checkout(commit) as checkout:
            kernel: KernelBuild = build_kernel(arch, checkout, self.plan.fragments, self.cache, out,
                                               self.progress, self.plan.kernel.make_flags, label)
        self._update(arch, variant, kernel_key=kernel.key, config_sha256=kernel.config_sha256,
                     toolchain=kernel.toolchain, build_cached=kernel.cached,
                     objects_compiled=kernel.objects)
        with timer.stage("image"):
            image = build_guest_image(arch, self.cache, self.progress)
        self._update(arch, variant, image_key=image.key)
        with timer.stage("accel"):
            accel = choose_accel(arch, kernel.image, image.initramfs, self.cache, out, self.progress)
        self.progress.info(f"boot {label}: {accel.reason}")
        self._update(arch, variant, accel=accel.name, accel_reason=accel.reason)
        with timer.stage("boot"):
            return boot(arch, kernel.image, image, accel, out, self.progress, label)

    def run_scenario(self, arch: Arch, variant: str, scenario: ScenarioConfig) -> ScenarioResult:
        """Run one scenario on the (arch, variant) guest; an ERROR result, never an exception."""
        expectation = _expectation(scenario, variant)
        try:
            booted = self.booted(arch, variant)
            out = self.run_dir / f"{arch.name}-{variant}"
            with self._timers[(arch.name, variant)].stage(f"scenario {scenario.name}"):
                m = run_scenario(booted.guest, scenario, out, self.progress, f"{arch.name}/{variant}")
            booted.vm.check()  # a splat during the scenario voids its numbers
            result = ScenarioResult(
                arch=arch.name, variant=variant, scenario=scenario.name,
                iterations=scenario.iterations,
                expectation=describe(expectation, scenario.iterations), before=m.before,
                after=m.after, delta=m.delta, held=holds(expectation, m.delta, scenario.iterations),
                settle_seconds=round(m.settle_seconds, 2), script_seconds=round(m.script_seconds, 2))
        except HarnessError as e:
            if (arch.name, variant) in self._booted and not isinstance(self._booted[(arch.name, variant)], HarnessError):
                self.progress.info(f"ERROR {arch.name}/{variant} {scenario.name}: {e}")
            result = _error_result(scenario, arch.name, variant, e)
        rec = self.record(arch, variant)
        timings = self._timers.get((arch.name, variant), Timer()).timings
        self._update(arch, variant, scenarios=(*rec.scenarios, result), timings=dict(timings))
        return result

    def release(self, arch: Arch, variant: str) -> None:
        """Stop the (arch, variant) guest: QEMU gone, the port free."""
        booted = self._booted.get((arch.name, variant))
        if isinstance(booted, Booted):
            booted.guest.close()
            booted.vm.stop()

    def close(self) -> None:
        for arch_name, variant in list(self._booted):
            booted = self._booted[(arch_name, variant)]
            if isinstance(booted, Booted):
                booted.guest.close()
                booted.vm.stop()

    def records(self) -> list[RunRecord]:
        return list(self._records.values())


def run_plan(plan: Plan, cache: Path, run_dir: Path, progress: Progress) -> tuple[dict, list[RunRecord]]:
    """Every scenario on every (arch, variant) of the plan; returns report metadata and records."""
    started = time.time()
    session = Session(plan, cache, run_dir, progress)
    try:
        for arch in plan.arches:
            for variant in plan.variants:
                for scenario in plan.scenarios:
                    session.run_scenario(arch, variant, scenario)
                session.release(arch, variant)
    finally:
        session.close()
    session.meta["seconds"] = round(time.time() - started, 1)
    return session.meta, session.records()


# --- every prefix of a series builds --------------------------------------------------------------

PROFILES = {"default": DEFAULT_FRAGMENTS, "no-memcg-kmem": (*DEFAULT_FRAGMENTS, "no-memcg-kmem.config")}


@dataclass(frozen=True)
class PrefixBuild:
    arch: str
    profile: str
    patch: int            # the build has patches 1..patch applied
    subject: str
    ok: bool
    seconds: float
    objects: int
    error: str | None = None
    log: str | None = None


@dataclass(frozen=True)
class CheckpatchResult:
    patch: str
    errors: int
    warnings: int
    checks: int
    findings: tuple[str, ...]


def run_checkpatch(workspace: Workspace, series: Series, base: str) -> list[CheckpatchResult]:
    """The tree's own scripts/checkpatch.pl on each patch file."""
    results = []
    with workspace.checkout(base) as co:
        for p in series.patches:
            proc = subprocess.run(["perl", str(co.path / "scripts/checkpatch.pl"), "--terse",
                                   "--no-summary", "--show-types", str(p.path)],
                                  cwd=co.path, capture_output=True, text=True, timeout=300,
                                  stdin=subprocess.DEVNULL)
            lines = tuple(line for line in proc.stdout.splitlines() if line.strip())
            count = lambda kind: sum(f": {kind}:" in line for line in lines)  # noqa: E731
            results.append(CheckpatchResult(p.path.name, count("ERROR"), count("WARNING"),
                                            count("CHECK"), lines))
    return results


def check_series(plan: Plan, profiles: tuple[str, ...], cache: Path, run_dir: Path,
                 progress: Progress) -> tuple[list[PrefixBuild], list[CheckpatchResult]]:
    """Build the kernel after each patch, per arch and config profile; checkpatch each patch."""
    assert plan.series is not None
    tree = fetch_source(plan.kernel, cache, progress)
    workspace = Workspace(tree, cache)
    base = workspace.base(progress)
    commits = workspace.apply(plan.series, progress, run_dir / "series.log")
    checkpatch = run_checkpatch(workspace, plan.series, base)
    builds = []
    for arch in plan.arches:
        for profile in profiles:
            for n, (commit, patch) in enumerate(zip(commits, plan.series.patches), 1):
                label = f"{arch.name} {profile} {n}/{len(commits)}"
                out = run_dir / "builds" / f"{arch.name}-{profile}-{n:04d}"
                start = time.monotonic()
                try:
                    with workspace.checkout(commit) as co:
                        k = build_kernel(arch, co, PROFILES[profile], cache, out, progress,
                                         plan.kernel.make_flags, label)
                    builds.append(PrefixBuild(arch.name, profile, n, patch.subject, True,
                                              round(time.monotonic() - start, 1), k.objects))
                except HarnessError as e:
                    progress.info(f"check-series {label}: FAILED {e}")
                    builds.append(PrefixBuild(arch.name, profile, n, patch.subject, False,
                                              round(time.monotonic() - start, 1), 0,
                                              e.excerpt or str(e), str(e.log) if e.log else None))
    return builds, checkpatch
