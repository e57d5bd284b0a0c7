"""The stages of a run, in order, for every (arch, variant) of a plan.

source -> tree -> kconfig -> build -> guest image -> boot -> scenarios -> verdict. Each stage
takes the previous stage's artifact; every failure becomes an ERROR record with the log that
explains it, and the run goes on with the next (arch, variant).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

from . import __version__
from .arches import Arch
from .config import KernelConfig, ScenarioConfig
from .errors import HarnessError
from .guest_image import GuestImage, build_guest_image
from .kbuild import KernelBuild, build_kernel
from .progress import Progress
from .report import RunRecord, ScenarioResult
from .scenario import describe, holds, run_scenario
from .source import SourceTree, fetch_source  # noqa
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


class Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
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
    vm.start()
    try:
        vm.wait_for(SSHD_MARK, deadline)
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


def _expectation(scenario: ScenarioConfig, variant: str):
    return scenario.reproduced if variant == "base" else scenario.fixed


def run_variant(plan: Plan, arch: Arch, variant: str, tree: SourceTree, cache: Path,
                run_dir: Path, progress: Progress) -> RunRecord:
    """Build, boot and run every scenario for one (arch, variant); never raises HarnessError."""
    label = f"{arch.name}/{variant}"
    out = run_dir / f"{arch.name}-{variant}"
    out.mkdir(parents=True, exist_ok=True)
    timer = Timer()
    record = RunRecord(arch=arch.name, variant=variant, kernel_version=tree.version)
    results: list[ScenarioResult] = []
    try:
        with timer.stage("build"):
            kernel: KernelBuild = build_kernel(arch, tree, plan.fragments, cache, out, progress,
                                               plan.kernel.make_flags, label)
        record = replace(record, kernel_key=kernel.key, config_sha256=kernel.config_sha256,
                         toolchain=kernel.toolchain, build_cached=kernel.cached,
                         objects_compiled=kernel.objects)
        with timer.stage("image"):
            image = build_guest_image(arch, cache, progress)
        record = replace(record, image_key=image.key)
        with timer.stage("accel"):
            accel = choose_accel(arch, kernel.image, image.initramfs, cache, out, progress)
        progress.info(f"boot {label}: {accel.reason}")
        record = replace(record, accel=accel.name, accel_reason=accel.reason)
        with timer.stage("boot"):
            booted = boot(arch, kernel.image, image, accel, out, progress, label)
        try:
            for scenario in plan.scenarios:
                results.append(_run_one(booted, scenario, arch, variant, out, progress, timer))
        finally:
            booted.guest.close()
            booted.vm.stop()
    except HarnessError as e:
        progress.info(f"ERROR {label}: {e}")
        done = {r.scenario for r in results}
        results += [_error_result(s, arch, variant, e) for s in plan.scenarios if s.name not in done]
        record = replace(record, error=str(e), log=str(e.log) if e.log else None)
    return replace(record, timings=timer.timings, scenarios=tuple(results))


def _run_one(booted: Booted, scenario: ScenarioConfig, arch: Arch, variant: str, out: Path,
             progress: Progress, timer: Timer) -> ScenarioResult:
    expectation = _expectation(scenario, variant)
    base = dict(arch=arch.name, variant=variant, scenario=scenario.name,
                iterations=scenario.iterations,
                expectation=describe(expectation, scenario.iterations))
    try:
        with timer.stage(f"scenario {scenario.name}"):
            m = run_scenario(booted.guest, scenario, out, progress, f"{arch.name}/{variant}")
        booted.vm.check()  # a splat during the scenario voids its numbers
    except HarnessError as e:
        progress.info(f"ERROR {arch.name}/{variant} {scenario.name}: {e}")
        return ScenarioResult(**base, error=str(e), log=str(e.log) if e.log else None)
    return ScenarioResult(**base, before=m.before, after=m.after, delta=m.delta,
                          held=holds(expectation, m.delta, scenario.iterations),
                          settle_seconds=round(m.settle_seconds, 2),
                          script_seconds=round(m.script_seconds, 2))


def _error_result(scenario: ScenarioConfig, arch: Arch, variant: str, e: HarnessError) -> ScenarioResult:
    return ScenarioResult(arch=arch.name, variant=variant, scenario=scenario.name,
                          iterations=scenario.iterations,
                          expectation=describe(_expectation(scenario, variant), scenario.iterations),
                          error=str(e), log=str(e.log) if e.log else None)


def run_plan(plan: Plan, cache: Path, run_dir: Path, progress: Progress) -> tuple[dict, list[RunRecord]]:
    """Run every (arch, variant) of the plan; returns report metadata and the run records."""
    started = time.time()
    meta: dict = {"kharness": __version__, "kernel": {"name": plan.kernel.name},
                  "profile": plan.profile, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  "run_dir": str(run_dir)}
    records: list[RunRecord] = []
    try:
        t0 = time.monotonic()
        tree = fetch_source(plan.kernel, cache, progress)
        meta["kernel"].update(version=tree.version, provider=tree.provider, origin=tree.origin,
                              sha256=tree.sha256, fetch_seconds=round(time.monotonic() - t0, 2))
    except HarnessError as e:
        progress.info(f"ERROR source: {e}")
        for arch in plan.arches:
            for variant in plan.variants:
                records.append(RunRecord(arch=arch.name, variant=variant, error=str(e),
                                         scenarios=tuple(_error_result(s, arch, variant, e)
                                                         for s in plan.scenarios)))
        return meta, records
    for arch in plan.arches:
        for variant in plan.variants:
            if variant != "base":
                e = HarnessError("series", f"variant {variant!r} needs a series; none is configured yet")
                records.append(RunRecord(arch=arch.name, variant=variant, error=str(e),
                                         scenarios=tuple(_error_result(s, arch, variant, e)
                                                         for s in plan.scenarios)))
                continue
            records.append(run_variant(plan, arch, variant, tree, cache, run_dir, progress))
    meta["seconds"] = round(time.time() - started, 1)
    return meta, records
