"""The stages of a run, in order, for every kernel (arch, variant, profile) of a plan.

source -> tree -> kconfig -> build -> guest image -> boot -> scenarios -> verdict. Each stage
takes the previous stage's artifact; every failure becomes an ERROR record with the log that
explains it, and the run goes on with the next kernel.

Kernels are built one after another (a build takes every core); each kernel's guests run on a
thread of their own as soon as it is built, so a guest boots while the next kernel builds and,
with everything cached, the guests of several kernels run side by side (one vCPU each). The
scenarios that must not run beside a build (quiet_host: timing tests) are queued once the last
kernel is built, so no guest thread sits waiting for a build while others could run.
"""

from __future__ import annotations

import contextlib
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from harness.config.arches import Arch
from harness.core.errors import HarnessError
from harness.core.progress import Progress
from harness.run.plan import Plan
from harness.run.session import Session
from harness.verdict.results import KernelId, RunMeta, RunRecord


def default_jobs() -> int:
    """Guests at once: one per core (a guest has one vCPU)."""
    return max(1, os.cpu_count() or 1)


def run_plan(plan: Plan, cache: Path, run_dir: Path, progress: Progress,
             jobs: int = 1) -> tuple[RunMeta, list[RunRecord]]:
    """Every scenario on every kernel of the plan; returns report metadata and records.

    Kernels are built in the plan's order on this thread; each built kernel's scenarios then run
    on one of ``jobs`` guest threads, so up to ``jobs`` guests run at once, the next kernel
    building meanwhile. A kernel's scenarios run in the plan's order, those sharing a kernel
    command line on one guest, which is stopped once its last scenario is done; its quiet_host
    ones after every kernel is built."""
    started = time.time()
    session = Session(plan, cache, run_dir, progress)
    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="guest")
    try:
        futures = []
        with contextlib.suppress(HarnessError):  # remembered: every kernel's record says ERROR
            session.workspace()  # a source to build from first, else no guest is needed
            # during a build; a plan with no scenario (kharness build) boots nothing
            futures = [pool.submit(_image, session, arch) for arch in plan.arches if plan.scenarios]
        kids = [KernelId(arch.name, variant, profile)
                for arch in plan.arches for profile in plan.profiles for variant in plan.variants]
        first: dict[KernelId, Future] = {}
        for kid in kids:
            with contextlib.suppress(HarnessError):  # remembered: its scenarios say ERROR
                session.kernel(kid)
            first[kid] = pool.submit(_run_kernel, session, kid, False)
        futures += [*first.values(), *(pool.submit(_run_quiet, session, kid, first[kid]) for kid in kids)]
        for f in futures:
            f.result()  # a bug in a guest thread is raised here
        # selftests whose base and patched runs differ by less than chance rules out: run again
        for arch in plan.arches:
            for profile in plan.profiles:
                for scenario in plan.scenarios:
                    if plan.runs_on(scenario, profile):
                        session.confirm_selftests(arch.name, profile, scenario)
    finally:
        session.cancel()  # on an interrupt: stop the guests, which ends their threads' SSH waits
        try:
            session.close()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            session.close()  # a guest that was still booting when the first close ran
    meta = replace(session.meta, jobs=jobs, seconds=round(time.time() - started, 1))
    return meta, session.records()


def _image(session: Session, arch: Arch) -> None:
    with contextlib.suppress(HarnessError):  # remembered: the arch's guests say ERROR
        session.image(arch)


def _run_quiet(session: Session, kid: KernelId, before: Future) -> None:
    """The kernel's quiet_host scenarios once its others are done: the two share its guests, and
    each stops them all when it ends (on one kernel with two guest threads, the other scenarios'
    end stopped the guest a quiet one was staging on). ``before`` was queued first, so it is
    running or done: waiting for it never waits for a thread."""
    with contextlib.suppress(Exception):   # its own error is raised from its own future
        before.result()
    _run_kernel(session, kid, True)


def _run_kernel(session: Session, kid: KernelId, quiet: bool) -> None:
    """One kernel's scenarios that are (``quiet``) or are not quiet_host, in the plan's order,
    each guest stopped after its last one."""
    scenarios = [s for s in session.plan.scenarios if s.quiet_host == quiet]
    last = {s.cmdline: i for i, s in enumerate(scenarios)}
    try:
        for i, scenario in enumerate(scenarios):
            if session.plan.runs_on(scenario, kid.profile):
                session.run_scenario(kid, scenario)
            if last[scenario.cmdline] == i:
                session.release(kid, scenario.cmdline)
    finally:
        session.release(kid)
