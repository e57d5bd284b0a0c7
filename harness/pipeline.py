"""The stages of a run, in order, for every (arch, variant) of a plan.

source -> tree -> kconfig -> build -> guest image -> boot -> scenarios -> verdict. Each stage
takes the previous stage's artifact; every failure becomes an ERROR record with the log that
explains it, and the run goes on with the next (arch, variant).

Kernels are built one after another (a build takes every core); each kernel's guests run on a
thread of their own as soon as it is built, so a guest boots while the next kernel builds and,
with everything cached, the guests of several kernels run side by side (one vCPU each).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

from . import __version__
from .arches import Arch
from .config import KernelConfig, ScenarioConfig
from .errors import HarnessError, os_failure
from .guest_image import GuestImage, build_guest_image
from .kbuild import KernelBuild, build_kernel, cached_kernel
from .programs import build_helpers, build_selftests
from .progress import Progress
from .report import RunRecord, ScenarioResult, run_dir_name
from .scenario import describe_all, failed_expectations, run_scenario
from .series import Series, Workspace
from .source import fetch_source
from .ssh import Guest
from .vm import READY_MARK, SSHD_MARK, VM, Accel, choose_accel

VARIANTS = ("base", "patched")
DEFAULT_FRAGMENTS = ("guest.config", "memcg.config")
@dataclass(frozen=True)
class Profile:
    """A kernel config profile: fragments of configs/kconfig/ on top of tinyconfig ({arch}: the
    arch's), and how much slower its kernels run the scenarios."""

    fragments: tuple[str, ...]
    max_iterations: int | None = None
    timeout_scale: float = 1.0
    selftests: bool = True    # run selftests scenarios on its kernels


PROFILES = {
    "default": Profile(DEFAULT_FRAGMENTS),
    "no-memcg-kmem": Profile((*DEFAULT_FRAGMENTS, "no-memcg-kmem.config")),
    # KASAN, lockdep and debugobjects under emulation make a fork ~10x slower (arm64 TCG: the
    # 500-iteration reproducer passed 600 s): 100 iterations tell a pin from none as well. The
    # selftests' 50 MB allocations and OOM tests did not finish in 12 min on arm64: left out.
    "debug": Profile((*DEFAULT_FRAGMENTS, "debug.config", "debug-{arch}.config"),
                     max_iterations=100, timeout_scale=4.0, selftests=False),
}
CHECK_SERIES_PROFILES = ("default", "no-memcg-kmem")


def profile_fragments(profile: str, arch: Arch) -> tuple[str, ...]:
    return tuple(f.format(arch=arch.name) for f in PROFILES[profile].fragments)


def for_profile(scenario: ScenarioConfig, profile: str) -> ScenarioConfig:
    """The scenario as the profile's kernels run it: iterations capped, timeout stretched."""
    p = PROFILES[profile]
    iterations = min(scenario.iterations, p.max_iterations or scenario.iterations)
    return replace(scenario, iterations=iterations, timeout=scenario.timeout * p.timeout_scale)


@dataclass(frozen=True)
class Plan:
    kernel: KernelConfig
    arches: tuple[Arch, ...]
    variants: tuple[str, ...]
    scenarios: tuple[ScenarioConfig, ...]
    profiles: tuple[str, ...] = ("default",)
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
         progress: Progress, label: str, cmdline: str = "",
         starting: Callable[[VM], None] | None = None) -> Booted:
    """Start QEMU and wait until an SSH command runs; the caller stops the VM (and is given it
    by ``starting`` before the wait, to stop it from another thread)."""
    deadline = arch.boot_deadline_kvm if accel.name == "kvm" else arch.boot_deadline
    slug = re.sub(r"[^\w.-]+", "_", cmdline)
    console = f"console-{slug}.log" if cmdline else "console.log"
    vm = VM(arch, kernel, image.initramfs, accel, run_dir, progress, cmdline, console)
    if starting is not None:
        starting(vm)
    guest = None
    try:
        _start(vm, deadline)
        while True:
            try:
                guest = Guest.connect(vm.port, image.host_key, image.client_key, timeout=5)
                vm.wait_for(READY_MARK, deadline)  # /init's mounts, done during the handshake
                guest.check("true", timeout=10)
                break
            except Exception as e:  # paramiko's banner/connect errors while dropbear comes up
                if guest is not None:
                    guest.close()
                    guest = None
                if isinstance(e, HarnessError) and (
                        e.stage == "boot" or e.stage == "ssh" and "host key" in e.message):
                    raise
                last = e
            vm.check()
            if time.monotonic() - vm.started > deadline:
                raise HarnessError("boot", f"boot deadline ({deadline:.0f} s): SSH did not answer: "
                                   f"{last}", vm.console_log, vm.console.tail() if vm.console else "")
            time.sleep(0.05)
        seconds = time.monotonic() - vm.started
        progress.info(f"boot {label}: SSH ready in {seconds:.1f} s ({accel.name})")
        return Booted(vm, guest, seconds)
    except BaseException:
        if guest is not None:
            guest.close()
        vm.stop()
        raise


def _start(vm: VM, deadline: float) -> None:
    """Start QEMU and wait until dropbear listens; once more, on a new port, if another process
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


def _error_result(scenario: ScenarioConfig, arch: str, variant: str, profile: str,
                  e: HarnessError) -> ScenarioResult:
    return ScenarioResult(arch=arch, variant=variant, scenario=scenario.name,
                          iterations=scenario.iterations, kind=scenario.kind, profile=profile,
                          show=scenario.show,
                          expectation=describe_all(scenario.expectations(variant), scenario.iterations),
                          error=str(e), log=str(e.log) if e.log else None)


Key = tuple[str, str, str]   # (arch, variant, profile): one kernel


def _label(key: Key) -> str:
    """arch/variant, and /profile when not the default one."""
    return "/".join(key if key[2] != "default" else key[:2])


class Session:
    """One plan's shared work: the tree and its workspace, each variant's commit, each kernel
    (arch, variant, profile) and its booted guests (one per kernel command line), made on first
    use and reused after.

    Both front doors drive it: ``run_plan`` for the CLI, the pytest plugin for marker-selected
    tests, which thereby build and boot only what the selected tests need. Failures are
    remembered, so every scenario of a kernel that did not build or boot reports the same ERROR.
    """

    def __init__(self, plan: Plan, cache: Path, run_dir: Path, progress: Progress):
        self.plan, self.cache, self.run_dir, self.progress = plan, cache, run_dir, progress
        self.meta: dict = {"kharness": __version__, "kernel": {"name": plan.kernel.name},
                           "profiles": list(plan.profiles),
                           "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "run_dir": str(run_dir)}
        if plan.series is not None:
            self.meta["series"] = {
                "name": plan.series.name, "title": plan.series.title, "sha256": plan.series.digest,
                "origin": plan.series.origin, "origin_sha256": plan.series.origin_sha256,
                "base_commit": plan.series.base_commit,
                "patches": [{"file": p.path.name, "subject": p.subject, "sha256": p.sha256}
                            for p in plan.series.patches]}
        self._workspace: Workspace | HarnessError | None = None
        self._commits: dict[str, str | HarnessError] = {}
        self._records: dict[Key, RunRecord] = {}
        self._timers: dict[Key, Timer] = {}
        self._kernels: dict[Key, KernelBuild | HarnessError] = {}
        self._booted: dict[tuple[str, str, str, str], Booted | HarnessError] = {}
        self._programs: dict[tuple, dict[str, bytes] | HarnessError] = {}
        self._images: dict[str, GuestImage | HarnessError] = {}
        self._starting: dict[tuple[str, str, str, str], VM] = {}  # guests booting now
        # Guests run on threads of their own (run_plan): what they share is made under this lock,
        # and once the run is cancelled no new guest starts.
        self._shared = threading.RLock()
        self._stop_lock = threading.Lock()
        self._cancelled = threading.Event()

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

    def record(self, arch: Arch, variant: str, profile: str = "default") -> RunRecord:
        return self._records.setdefault((arch.name, variant, profile),
                                        RunRecord(arch=arch.name, variant=variant, profile=profile))

    def _update(self, key: Key, **fields) -> None:
        self._records[key] = replace(self._records[key], **fields)

    def _out(self, key: Key) -> Path:
        out = self.run_dir / run_dir_name(*key)
        out.mkdir(parents=True, exist_ok=True)
        return out

    def _remembered(self, store: dict, key, make, what: str, stage: str):
        """``store[key]``, made by ``make()`` on first use; a failure (an OSError as an ERROR of
        ``stage``) is kept and raised again."""
        if key not in store:
            try:
                try:
                    store[key] = make()
                except OSError as e:  # a full disk while compiling a helper, say
                    raise os_failure(stage, e) from e
            except HarnessError as e:
                self.progress.info(f"ERROR {what}: {e}")
                if key[:3] in self._records and not self._records[key[:3]].error:
                    self._update(key[:3], error=str(e), log=str(e.log) if e.log else None)
                store[key] = e
            finally:
                if key[:3] in self._timers:
                    self._update(key[:3], timings=dict(self._timers[key[:3]].timings))
        value = store[key]
        if isinstance(value, HarnessError):
            raise value
        return value

    def kernel(self, arch: Arch, variant: str, profile: str = "default") -> KernelBuild:
        """The (arch, variant, profile) kernel, built or taken from the cache: once per session."""
        key = (arch.name, variant, profile)
        self.record(arch, variant, profile)
        self._timers.setdefault(key, Timer())
        return self._remembered(self._kernels, key, lambda: self._build(arch, variant, profile),
                                "/".join(key), "build")

    def _build(self, arch: Arch, variant: str, profile: str) -> KernelBuild:
        key = (arch.name, variant, profile)
        label = _label(key)
        ws = self.workspace()
        commit = self.commit(variant)
        self._update(key, kernel_version=ws.tree.version, commit=commit)
        fragments = profile_fragments(profile, arch)
        with self._timers[key].stage("build"):
            kernel = cached_kernel(arch, ws.tree_id(commit, ""), fragments, self.cache,
                                   self.plan.kernel.make_flags, self._out(key) / "build.log")
            if kernel is not None:
                self.progress.info(f"build {label}: cached kernel {kernel.key[:12]} (no make needed)")
            else:
                with ws.checkout(commit) as checkout:
                    kernel = build_kernel(arch, checkout, fragments, self.cache, self._out(key),
                                          self.progress, self.plan.kernel.make_flags, label)
        self._update(key, kernel_key=kernel.key, config_sha256=kernel.config_sha256,
                     toolchain=kernel.toolchain, build_cached=kernel.cached,
                     objects_compiled=kernel.objects)
        return kernel

    def booted(self, arch: Arch, variant: str, profile: str = "default", cmdline: str = "") -> Booted:
        """The kernel's guest booted with ``cmdline``: built, imaged and booted once per session."""
        kernel = self.kernel(arch, variant, profile)
        key = (arch.name, variant, profile)
        return self._remembered(self._booted, (*key, cmdline),
                                lambda: self._boot(arch, key, kernel, cmdline), "/".join(key), "boot")

    def _boot(self, arch: Arch, key: Key, kernel: KernelBuild, cmdline: str) -> Booted:
        label = _label(key) + (f" [{cmdline}]" if cmdline else "")
        timer, out = self._timers[key], self._out(key)
        if self._cancelled.is_set():
            raise HarnessError("boot", "run interrupted before this guest booted")
        with timer.stage("image"):
            image = self.image(arch)
        self._update(key, image_key=image.key)
        with self._shared:  # once per kernel and host
            with timer.stage("accel"):
                accel = choose_accel(arch, kernel.image, image.initramfs, self.cache, out, self.progress)
        self.progress.info(f"boot {label}: {accel.reason}")
        self._update(key, accel=accel.name, accel_reason=accel.reason)
        with timer.stage("boot" + (f" [{cmdline}]" if cmdline else "")):
            try:
                booted = boot(arch, kernel.image, image, accel, out, self.progress, label, cmdline,
                              lambda vm: self._starting.__setitem__((*key, cmdline), vm))
            finally:
                self._starting.pop((*key, cmdline), None)
        self._update(key, boots={**self._records[key].boots, cmdline or "-": round(booted.seconds, 2)})
        return booted

    def image(self, arch: Arch) -> GuestImage:
        """The arch's guest image, made once (run_plan makes it while the first kernel builds)."""
        with self._shared:
            return self._remembered(self._images, (arch.name,),
                                    lambda: build_guest_image(arch, self.cache, self.progress),
                                    f"{arch.name} guest image", "guest-image")

    def programs(self, arch: Arch, variant: str, scenario: ScenarioConfig) -> dict[str, bytes]:
        """The scenario's helpers (per arch) and selftests (per arch and variant), compiled."""
        with self._shared:
            out = {}
            if scenario.helpers:
                out.update(self._remembered(
                    self._programs, (arch.name, "helpers", scenario.helpers),
                    lambda: build_helpers(arch, scenario.helpers, self.cache, self.run_dir, self.progress),
                    f"{arch.name} helpers", "programs"))
            if scenario.selftests:
                def make() -> dict[str, bytes]:
                    ws = self.workspace()
                    commit = self.commit(variant)
                    return build_selftests(arch, ws, commit, scenario.selftests, self.cache,
                                           self.run_dir, self.progress)
                out.update(self._remembered(self._programs, (arch.name, variant, scenario.selftests), make,
                                            f"{arch.name}/{variant} selftests", "programs"))
            return out

    def run_scenario(self, arch: Arch, variant: str, scenario: ScenarioConfig,
                     profile: str = "default") -> ScenarioResult:
        """Run one scenario on the kernel's guest; an ERROR result, never an exception."""
        key = (arch.name, variant, profile)
        self.record(arch, variant, profile)
        timer = self._timers.setdefault(key, Timer())
        scenario = for_profile(scenario, profile)
        try:
            booted = self.booted(arch, variant, profile, scenario.cmdline)
            programs = self.programs(arch, variant, scenario)
            if self._cancelled.is_set():
                raise HarnessError("scenario", "run interrupted before this scenario ran")
            with timer.stage(f"scenario {scenario.name}"):
                m = run_scenario(booted.guest, scenario, self._out(key), self.progress,
                                 _label(key), programs)
            booted.vm.check()  # a splat during the scenario voids its numbers
            failed = failed_expectations(scenario.expectations(variant), m.metrics, scenario.iterations)
            result = ScenarioResult(
                arch=arch.name, variant=variant, scenario=scenario.name, kind=scenario.kind,
                profile=profile, show=scenario.show, iterations=scenario.iterations,
                expectation=describe_all(scenario.expectations(variant), scenario.iterations),
                before=m.before, after=m.after, delta=m.delta, held=not failed, failed=tuple(failed),
                metrics=m.metrics, tests=m.tests, settle_seconds=round(m.settle_seconds, 2),
                script_seconds=round(m.script_seconds, 2))
        except HarnessError as e:
            if not self._records[key].error:
                self.progress.info(f"ERROR {'/'.join(key)} {scenario.name}: {e}")
            result = _error_result(scenario, arch.name, variant, profile, e)
        self._update(key, scenarios=(*self._records[key].scenarios, result), timings=dict(timer.timings))
        return result

    def release(self, arch: Arch, variant: str, profile: str = "default", cmdline: str | None = None) -> None:
        """Stop the kernel's guests (those booted with ``cmdline`` only, if given)."""
        for k, booted in list(self._booted.items()):
            if k[:3] == (arch.name, variant, profile) and cmdline in (None, k[3]):
                self._stop(k, booted)

    def cancel(self) -> None:
        """No guest boots from now on (those booting finish, and are stopped by ``close``)."""
        self._cancelled.set()

    def close(self) -> None:
        for vm in list(self._starting.values()):  # its boot then fails at once: QEMU is gone
            vm.cancel()
        for k, booted in list(self._booted.items()):
            self._stop(k, booted)

    def _stop(self, key: tuple[str, str, str, str], booted: Booted | HarnessError) -> None:
        """Keep the guest's kernel log with its console log, then stop it."""
        with self._stop_lock:  # a guest's own thread and an interrupted run's close() may meet here
            if self._booted.get(key) is not booted or not isinstance(booted, Booted):
                return
            del self._booted[key]  # a later scenario on this kernel and command line boots anew
            if booted.vm.child is None or not booted.vm.child.isalive():
                return
        with contextlib.suppress(HarnessError, OSError):
            name = booted.vm.console_log.name.replace("console", "dmesg", 1)
            (booted.vm.console_log.parent / name).write_text(booted.guest.run("dmesg", timeout=20).stdout)
        booted.guest.close()
        booted.vm.stop()

    def records(self) -> list[RunRecord]:
        return list(self._records.values())


def default_jobs() -> int:
    """Guests at once: one per core (a guest has one vCPU)."""
    return max(1, os.cpu_count() or 1)


def run_plan(plan: Plan, cache: Path, run_dir: Path, progress: Progress,
             jobs: int = 1) -> tuple[dict, list[RunRecord]]:
    """Every scenario on every kernel of the plan; returns report metadata and records.

    Kernels are built in the plan's order on this thread; each built kernel's scenarios then run
    on one of ``jobs`` guest threads, so up to ``jobs`` guests run at once, the next kernel
    building meanwhile. A kernel's scenarios run in the plan's order, those sharing a kernel
    command line on one guest, which is stopped once its last scenario is done."""
    started = time.time()
    session = Session(plan, cache, run_dir, progress)
    session.meta["jobs"] = jobs
    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="guest")
    try:
        futures = []
        with contextlib.suppress(HarnessError):  # remembered: every kernel's record says ERROR
            session.workspace()  # a source to build from first, else no guest is needed
            futures = [pool.submit(_image, session, arch) for arch in plan.arches]  # during a build
        for arch in plan.arches:
            for profile in plan.profiles:
                for variant in plan.variants:
                    with contextlib.suppress(HarnessError):  # remembered: its scenarios say ERROR
                        session.kernel(arch, variant, profile)
                    futures.append(pool.submit(_run_kernel, session, arch, variant, profile))
        for f in futures:
            f.result()  # a bug in a guest thread is raised here
    finally:
        session.cancel()  # on an interrupt: stop the guests, which ends their threads' SSH waits
        try:
            session.close()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            session.close()  # a guest that was still booting when the first close ran
    session.meta["seconds"] = round(time.time() - started, 1)
    return session.meta, session.records()


def _image(session: Session, arch: Arch) -> None:
    with contextlib.suppress(HarnessError):  # remembered: the arch's guests say ERROR
        session.image(arch)


def _run_kernel(session: Session, arch: Arch, variant: str, profile: str) -> None:
    """One kernel's scenarios, in the plan's order, each guest stopped after its last one."""
    scenarios = session.plan.scenarios
    last = {s.cmdline: i for i, s in enumerate(scenarios)}
    try:
        for i, scenario in enumerate(scenarios):
            if scenario.kind != "selftests" or PROFILES[profile].selftests:
                session.run_scenario(arch, variant, scenario, profile)
            if last[scenario.cmdline] == i:
                session.release(arch, variant, profile, scenario.cmdline)
    finally:
        session.release(arch, variant, profile)


# --- every prefix of a series builds --------------------------------------------------------------


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
                        k = build_kernel(arch, co, profile_fragments(profile, arch), cache, out, progress,
                                         plan.kernel.make_flags, label)
                    builds.append(PrefixBuild(arch.name, profile, n, patch.subject, True,
                                              round(time.monotonic() - start, 1), k.objects))
                except HarnessError as e:
                    progress.info(f"check-series {label}: FAILED {e}")
                    builds.append(PrefixBuild(arch.name, profile, n, patch.subject, False,
                                              round(time.monotonic() - start, 1), 0,
                                              e.excerpt or str(e), str(e.log) if e.log else None))
    return builds, checkpatch
