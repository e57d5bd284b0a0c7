"""One plan's shared work: the tree and its workspace, each variant's commit, each kernel and its
booted guests (one per kernel command line), made on first use and reused after.

Both front doors drive it: ``pipeline.run_plan`` for the CLI, the pytest plugin for
marker-selected tests, which thereby build and boot only what the selected tests need. Failures
are remembered, so every scenario of a kernel that did not build or boot reports the same ERROR.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness import __version__
from harness.build.image import GuestImage, build_guest_image
from harness.build.coverage import not_built
from harness.build.kbuild import (
    CCACHE_REMOTE_VAR,
    KernelBuild,
    build_kernel,
    build_lock_path,
    cached_kernel,
    fragment_paths,
    parse_config,
    without_credentials,
)
from harness.build.kselftest import TARBALL, KselftestInstall, build_kselftest
from harness.build.kunit import boot_note, kunit_tool, parse_kunit, suites_of
from harness.build.programs import build_helpers
from harness.config import ScenarioConfig
from harness.config.arches import Arch
from harness.core.cache import machine_lock, sha256_file
from harness.core.errors import HarnessError, os_failure
from harness.core.memo import Memo
from harness.core.progress import Progress
from harness.guest.boot import Booted, splat_first
from harness.guest.runner import host_load_note, run_scenario
from harness.run.guests import GuestPool
from harness.run.kconfigs import auto_fragment, auto_said, tree_config_notes, tree_configs
from harness.run.kernelrun import KernelRun
from harness.run.plan import Plan
from harness.series.patches import diff_digest
from harness.series.workspace import Workspace
from harness.sources.source import fetch_source
from harness.verdict.bisect import prefix_of
from harness.verdict.bounds import describe_all, failed_expectations
from harness.verdict.testruns import undecided_programs
from harness.verdict.kinds import expectations as kind_expectations
from harness.verdict.kinds import kind
from harness.verdict.repeat import with_runs
from harness.verdict.results import KernelId, KernelMeta, PatchMeta, RunMeta, RunRecord, ScenarioResult, SeriesMeta


def _meta(plan: Plan, run_dir: Path) -> RunMeta:
    series = None
    if plan.series is not None:
        s = plan.series
        series = SeriesMeta(name=s.name, title=s.title, sha256=s.digest, origin=s.origin,
                            origin_sha256=s.origin_sha256 or None, base_commit=s.base_commit or None,
                            patches=tuple(PatchMeta(p.path.name, p.subject, p.sha256, diff_digest(p.path.read_bytes()))
                                          for p in s.patches))
    remote = os.environ.get(CCACHE_REMOTE_VAR)
    return RunMeta(kharness=__version__, kernel=KernelMeta(plan.kernel.name), profiles=plan.profiles,
                   ccache_remote=without_credentials(remote) if remote else None,
                   started=datetime.now(timezone.utc).isoformat(timespec="seconds"), run_dir=str(run_dir), series=series)


class Session:
    def __init__(self, plan: Plan, cache: Path, run_dir: Path, progress: Progress):
        self.plan, self.cache, self.run_dir, self.progress = plan, cache, run_dir, progress
        self.meta = _meta(plan, run_dir)
        self._runs: dict[KernelId, KernelRun] = {}
        self._memo = Memo()
        self._same: dict[KernelId, bool] = {}            # patched kernels with the base's image
        # Guests run on threads of their own (run_plan): what they share is made under this lock,
        # and once the run is cancelled no new guest starts.
        self._shared = threading.RLock()
        self.guests = GuestPool(cache, progress, self.image, self._shared)

    def run(self, kid: KernelId) -> KernelRun:
        with self._shared:
            return self._runs.setdefault(kid, KernelRun(kid, self.run_dir))

    def _once(self, key: Hashable, make: Callable[[], Any], what: str, stage: str,
              run: KernelRun | None = None) -> Any:
        def failed(e: HarnessError) -> None:
            self.progress.info(f"ERROR {what}: {e}")
            if run is not None:
                run.fail(e)
        return self._memo.get(key, make, stage, failed)

    # each step returns its artifact or raises the (remembered) HarnessError
    def workspace(self) -> Workspace:
        def make() -> Workspace:
            t0 = time.monotonic()
            tree = fetch_source(self.plan.kernel, self.cache, self.progress)
            self.meta = replace(self.meta, kernel=KernelMeta(
                self.plan.kernel.name, tree.version, tree.provider, tree.origin, tree.sha256,
                round(time.monotonic() - t0, 2)))
            ws = Workspace(tree, self.cache)
            try:
                ws.base(self.progress)
            except OSError as e:
                raise os_failure("series", e) from e
            return ws
        return self._once("workspace", make, "source", "source")

    def commit(self, variant: str) -> str:
        """The commit a variant builds: the base, the whole series (patched), or the series'
        first K patches (patch-K, kharness bisect)."""
        if variant == "base":
            return self._memo.get(("commit", "base"), lambda: self.workspace().base(self.progress), "series")

        def make() -> list[str]:
            if self.plan.series is None:
                raise HarnessError("series", "the patched variant needs a series (--series)")
            return self.workspace().apply(self.plan.series, self.progress, self.run_dir / "series.log")
        commits = self._memo.get(("commits",), make, "series")
        return commits[prefix_of(variant, len(commits)) - 1]

    def kernel(self, kid: KernelId) -> KernelBuild:
        """The kernel, built or taken from the cache: once per session."""
        run = self.run(kid)
        return self._once(("kernel", kid), lambda: self._build(run), kid.label, "build", run)

    def _build(self, run: KernelRun) -> KernelBuild:
        kid, arch = run.id, self._arch(run.id.arch)
        ws = self.workspace()
        commit = self.commit(kid.variant)
        run.update(kernel_version=ws.tree.version, commit=commit)
        lenient = self.tree_fragments(kid.profile)
        auto, asked = self.kconfig_auto(arch, kid.profile)
        lenient += (str(auto),) if auto else ()
        fragments = (*lenient, *self.plan.fragments(arch, kid.profile))
        flags = self.plan.kernel.make_flags
        with run.stage("build", "build"):
            kernel = cached_kernel(arch, ws.tree_id(commit, ""), fragments, self.cache, flags,
                                   run.logs() / "build.log")
            if kernel is not None:
                self.progress.info(f"build {kid.label}: cached kernel {kernel.key[:12]} (no make needed)")
            else:
                with ws.checkout(commit) as checkout:
                    kernel = build_kernel(arch, checkout, fragments, self.cache, run.logs(),
                                          self.progress, flags, kid.label, lenient)
        run.update(kernel_key=kernel.key, config_sha256=kernel.config_sha256, toolchain=kernel.toolchain,
                   build_cached=kernel.cached, objects_compiled=kernel.objects,
                   kernel_dir=str(kernel.image.parent), image_sha256=sha256_file(kernel.image))
        shutil.copyfile(kernel.config, run.logs() / "kernel.config")   # the .config that booted
        if kid.variant != "base":   # the series' changes this .config leaves out, and why
            # the diff and the files it reads are the commit's: made once for all its kernels
            diff = self._memo.get(("diff", commit), lambda: ws.diff(self.commit("base"), commit), "series")
            missing = not_built(lambda path: self._memo.get(("show", commit, path),
                                                            lambda: ws.show(commit, path), "series"),
                                diff, parse_config(kernel.config.read_text()))
            for line in missing:
                self.progress.info(f"build {kid.label}: {line}")
            run.update(not_built=tuple(missing))
        if asked:   # what of the series the fragments left out, turned on (or not taken)
            run.update(not_built=(*auto_said(asked, kernel.config.read_text()), *run.record.not_built))
        return kernel

    def kconfig_auto(self, arch: Arch, profile: str) -> tuple[Path | None, dict[str, str]]:
        """kconfigs.auto_fragment for this plan's series on ``arch``'s ``profile`` kernels, once."""
        def make() -> tuple[Path | None, dict[str, str]]:
            if not self.plan.kconfig_auto or self.plan.series is None or self.plan.variants == ("base",):
                return None, {}
            ws, base, head = self.workspace(), self.commit("base"), self.commit("patched")
            lenient = self.tree_fragments(profile)
            frags = fragment_paths(arch, (*lenient, *self.plan.fragments(arch, profile)))
            diff = self._memo.get(("diff", head), lambda: ws.diff(base, head), "series")
            return auto_fragment(arch, frags, lenient, ws, base, head, diff, self.cache, self.plan.kernel.make_flags,
                                 self.run_dir / f"kconfig-{arch.name}-{profile}.log", self.progress)
        return self._memo.get(("kconfig-auto", arch.name, profile), make, "kconfig")

    def tree_configs(self) -> dict[str, Path]:
        """kconfigs.tree_configs of the plan's kselftest collections and KUnit directories, once."""
        def make() -> dict[str, Path]:
            if not any(s.tree_config for s in self.plan.scenarios):
                return {}
            return tree_configs(self.plan.scenarios, self.workspace(), self.commit("base"), self.cache)
        return self._memo.get(("tree-configs",), make, "kconfig")

    def tree_fragments(self, profile: str) -> tuple[str, ...]:
        """The tree fragments of the scenarios ``profile``'s kernels run: a debug kernel that runs
        no selftests does not take their options (nor change with their collection's config)."""
        configs = self.tree_configs()
        return tuple(str(configs[s.name]) for s in self.plan.scenarios
                     if s.name in configs and self.plan.runs_on(s, profile))

    def _kselftest_notes(self, kid: KernelId, scenario: ScenarioConfig) -> tuple[str, ...]:
        if not scenario.tree_config:
            return ()
        install = self._memo.peek(("kselftest", kid.arch, kid.variant, scenario.kselftest))   # programs() built it
        return tree_config_notes(scenario, self.tree_configs().get(scenario.name),
                                 self.kernel(kid).config.read_text(),
                                 install if isinstance(install, KselftestInstall) else None, kid.arch)

    def _parser(self, kid: KernelId, scenario: ScenarioConfig) -> Callable[[str], tuple[dict[str, str], tuple[str, ...]]] | None:
        """How a KUnit scenario's output (the kernel log) is read: the variant's tree's kunit.py,
        and each suite's time at boot."""
        if not scenario.kunit:
            return None
        tool = self._memo.get(("kunit-tool", kid.variant),
                              lambda: kunit_tool(self.workspace(), self.commit(kid.variant), self.cache), "programs")
        suites = self._memo.get(("kunit-suites", kid.variant, scenario.kunit),
                                lambda: suites_of(self.workspace(), self.commit(kid.variant), scenario.kunit), "programs")

        def parse(log: str) -> tuple[dict[str, str], tuple[str, ...]]:
            tests = parse_kunit(tool, log, f"{kid.label} {scenario.name}")
            own = {t: v for t, v in tests.items() if t.split(".", 1)[0] in suites}
            if suites and not own:
                raise HarnessError("scenario", f"{kid.label} {scenario.name}: none of its suites "
                                   f"({', '.join(suites)}) reported in the kernel log")
            reported = {t.split(".", 1)[0] for t in own}
            silent = [x for x in suites if x not in reported]   # not built (its option off), or its log lost
            return (own if suites else tests), boot_note(log, suites) + (
                (f"suites of {scenario.kunit} with no result in this kernel's log (not built, or the "
                 f"log lost them): {', '.join(silent)}",) if silent and own else ())
        return parse

    def _arch(self, name: str) -> Arch:
        return next(a for a in self.plan.arches if a.name == name)

    def booted(self, kid: KernelId, cmdline: str = "") -> Booted:
        """The kernel's guest booted with ``cmdline``: built, imaged and booted once per session."""
        kernel = self.kernel(kid)
        return self.guests.booted(self.run(kid), self._arch(kid.arch), kernel, cmdline)

    def image(self, arch: Arch) -> GuestImage:
        """The arch's guest image, made once (run_plan makes it while the first kernel builds)."""
        with self._shared:
            return self._once(("image", arch.name), lambda: build_guest_image(arch, self.cache, self.progress),
                              f"{arch.name} guest image", "guest-image")

    def programs(self, arch: Arch, variant: str, scenario: ScenarioConfig) -> dict[str, bytes]:
        """The scenario's helpers (per arch) and kselftest collection (per arch and variant), built."""
        with self._shared:
            out = {}
            if scenario.helpers:
                sources = tuple(scenario.guest_path(h) for h in scenario.helpers)
                out.update(self._once(
                    ("helpers", arch.name, sources),
                    lambda: build_helpers(arch, sources, self.cache, self.run_dir, self.progress),
                    f"{arch.name} helpers", "programs"))
            if scenario.kselftest:
                install = self._once(("kselftest", arch.name, variant, scenario.kselftest),
                                     lambda: build_kselftest(arch, self.workspace(), self.commit(variant),
                                                             scenario.kselftest, scenario.selftests_libs,
                                                             self.cache, self.run_dir, self.progress),
                                     f"{arch.name}/{variant} kselftest {scenario.kselftest}", "programs")
                out[TARBALL] = install.tarball.read_bytes()
            return out

    def run_scenario(self, kid: KernelId, scenario: ScenarioConfig) -> ScenarioResult:
        """Run one scenario on the kernel's guest; an ERROR result, never an exception."""
        run = self.run(kid)
        scenario = self.plan.scenario_for(scenario, kid.profile)
        expectations = kind_expectations(scenario, kid.variant)
        common = dict(arch=kid.arch, variant=kid.variant, profile=kid.profile, scenario=scenario.name,
                      kind=scenario.kind, show=scenario.shown, iterations=scenario.iterations,
                      cmdline=scenario.cmdline, signature=scenario.signature,
                      known_flaky=self._known_flaky(kid, scenario),
                      known_failures=tuple(k.test for k in self.plan.kernel.known_failures
                                           if (not k.arches or kid.arch in k.arches)
                                           and (scenario.kselftest or scenario.kunit)),
                      expectation=describe_all(expectations, scenario.iterations),
                      relative={e.metric: e.min_base_fraction for e in expectations
                                if e.min_base_fraction is not None})
        if self.unchanged(kid):   # the base's very image: what it shows is the base's
            result = ScenarioResult(**common, unchanged=True, notes=run.record.not_built)
        elif self.plan.repeat > 1:   # each run on a fresh boot, combined as the kind does
            result = kind(scenario.kind).combine([self._run_once(kid, scenario, expectations, common, fresh=True)
                                                  for _ in range(self.plan.repeat)])
        else:
            result = self._run_once(kid, scenario, expectations, common)
        run.add(result)
        return result

    def _known_flaky(self, kid: KernelId, scenario: ScenarioConfig) -> tuple[str, ...]:
        if not kind(scenario.kind).has_tests:
            return ()
        return tuple(k.test for k in self.plan.kernel.known_flaky if not k.arches or kid.arch in k.arches)

    def confirm_selftests(self, arch: str, profile: str, scenario: ScenarioConfig) -> None:
        """Run again, on fresh boots of both kernels, the selftest programs with a test whose
        difference between base and patched is not yet beyond chance (testruns.judge_test: patched
        failing it more often, not significantly), ``iterations`` more runs at a time, until
        every difference is decided, a program has run ``confirm_runs`` times on a kernel, or the
        reruns have taken ``confirm_seconds`` of script time.
        Each kernel's result then holds every run (``test_runs``) and says how many were added."""
        kids = [KernelId(arch, v, profile) for v in ("base", "patched")]
        if not kind(scenario.kind).has_tests or any(k not in self._runs for k in kids):
            return
        scenario = self.plan.scenario_for(scenario, profile)
        spent = 0.0   # script seconds of the reruns, the slower kernel's
        while True:
            results = [self._runs[k].result(scenario.name) for k in kids]
            if any(r is None or r.error is not None or r.unchanged for r in results):
                return
            base, patched = results
            programs = undecided_programs(base, patched)
            done = min(len(runs) for r in results for t, runs in r.test_runs.items()
                       if t.split(":", 1)[0] in programs) if programs else 0
            if not programs or done >= scenario.confirm_runs or spent >= scenario.confirm_seconds:
                return
            more = min(scenario.iterations, scenario.confirm_runs - done)
            self.progress.info(f"confirm {arch} {scenario.name}: {', '.join(programs)} differ by less "
                               f"than chance rules out after {done} runs: {more} more on each kernel")
            narrowed = replace(scenario, selftests=programs, iterations=more)
            with ThreadPoolExecutor(max_workers=2, thread_name_prefix="confirm") as pool:
                again = list(pool.map(lambda k, n=narrowed: self._confirm_once(k, scenario, n), kids))
            for kid, old, new in zip(kids, results, again):
                self._runs[kid].replace_result(old, with_runs(old, new, programs, more))
            spent += max(r.script_seconds or 0.0 for r in again)

    def _confirm_once(self, kid: KernelId, scenario: ScenarioConfig, narrowed: ScenarioConfig) -> ScenarioResult:
        common = dict(arch=kid.arch, variant=kid.variant, profile=kid.profile, scenario=scenario.name,
                      kind=scenario.kind, show=scenario.shown, iterations=narrowed.iterations,
                      cmdline=scenario.cmdline, expectation="", known_flaky=self._known_flaky(kid, scenario))
        try:
            return self._run_once(kid, narrowed, (), common, fresh=True, programs_of=scenario)
        finally:
            self.release(kid, scenario.cmdline)

    def _run_once(self, kid: KernelId, scenario: ScenarioConfig, expectations: tuple,
                  common: dict, fresh: bool = False,
                  programs_of: ScenarioConfig | None = None) -> ScenarioResult:
        run, arch = self.run(kid), self._arch(kid.arch)
        booted, key, common = None, (kid, scenario.cmdline), dict(common)
        try:
            common["fresh_guest"] = self.guests.use(key, fresh or scenario.guest == "own")
            booted = self.booted(kid, scenario.cmdline)
            programs = self.programs(arch, kid.variant, programs_of or scenario)
            if programs_of is not None:   # a narrowed rerun: the programs it runs, built as the whole
                programs = {k: v for k, v in programs.items() if k not in programs_of.selftests
                            or k in scenario.selftests}
            if self.guests.cancelled:
                raise HarnessError("scenario", "run interrupted before this scenario ran")
            with run.stage(f"scenario {scenario.name}", "scenario"), self._quiet(kid, scenario):
                m = run_scenario(booted.guest, scenario, run.logs(), self.progress, kid.label, programs,
                                 watch=booted.vm.check, parse=self._parser(kid, scenario))
            booted.vm.check()  # a splat during the scenario voids its numbers
            failed = failed_expectations(expectations, m.metrics, scenario.iterations)
            result = ScenarioResult(
                **common, held=not failed,
                failed=tuple(failed), metrics=m.metrics, tests=m.tests, test_runs=m.test_runs,
                notes=m.notes + self._kselftest_notes(kid, scenario) + host_load_note(scenario),
                settle_seconds=round(m.settle_seconds, 2), script_seconds=round(m.script_seconds, 2))
        except HarnessError as e:
            e = splat_first(booted, e)
            if not run.record.error:
                self.progress.info(f"ERROR {kid.label} {scenario.name}: {e}")
            result = ScenarioResult(**common, error=str(e), log=str(e.log) if e.log else None)
        return result

    def _quiet(self, kid: KernelId, scenario: ScenarioConfig) -> contextlib.AbstractContextManager:
        """A ``quiet_host`` scenario's script runs while no kernel build does (the build lock,
        held shared: such scripts run side by side, builds wait for them)."""
        if not scenario.quiet_host:
            return contextlib.nullcontext()
        return machine_lock(build_lock_path(), lambda who: self.progress.info(
            f"scenario {kid.label} {scenario.name}: waiting for the kernel build on this machine "
            f"to end ({who}): its timing tests must not measure the host's load"), shared=True)

    def unchanged(self, kid: KernelId) -> bool:
        """A patched kernel (or a prefix of the series) whose image is byte-identical to its
        base's (both in this plan)."""
        if kid.variant == "base" or "base" not in self.plan.variants:
            return False
        if kid not in self._same:
            try:
                patched = self.kernel(kid)   # first: a patched kernel that fails builds no base
                base = self.kernel(replace(kid, variant="base"))
            except HarnessError:
                return False   # the error is the row's, from the kernel that failed
            self._same[kid] = sha256_file(base.image) == sha256_file(patched.image)
        return self._same[kid]

    def release(self, kid: KernelId, cmdline: str | None = None) -> None:
        self.guests.release(kid, cmdline)

    def cancel(self) -> None:
        """No guest boots from now on (those booting finish, and are stopped by ``close``)."""
        self.guests.cancel()

    def close(self) -> None:
        self.guests.close()

    def records(self) -> list[RunRecord]:
        return [r.record for r in self._runs.values()]
