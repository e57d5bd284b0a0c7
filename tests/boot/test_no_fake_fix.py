"""A fix that works by no longer accounting must fail: a throwaway patch (tests/boot/data, never
part of a series) stops charging kernel stacks on 5.10, and kmem-charge, judged against the base
kernel's own numbers, calls it BROKEN although its absolute bounds still hold (the child's kmem
still grows by task_struct, mm and page tables), and kstack-charge-v2, which counts stacks alone,
fails outright. An incremental build: only kernel/fork.c."""

from __future__ import annotations

import pytest

from harness import REPO_ROOT
from harness.config import load_kernel, load_scenario
from harness.config.arches import load_arch
from harness.core.cache import cache_root
from harness.core.progress import Progress
from harness.run.plan import Plan
from harness.run.session import Session
from harness.series.patches import load_patch_dir
from harness.verdict.kinds import BROKEN
from harness.verdict.results import KernelId
from harness.verdict.table import rows

pytestmark = [pytest.mark.boot, pytest.mark.x86_64, pytest.mark.fake_fix]


def test_a_kernel_that_stops_charging_kernel_stacks_is_broken_not_fixed(tmp_path):
    series = load_patch_dir(REPO_ROOT / "tests" / "boot" / "data" / "no-kstack-charge")
    kmem = load_scenario("kmem-charge")
    plan = Plan(load_kernel("linux-5.10"), (load_arch("x86_64"),), ("base", "patched"), (kmem,), series=series)
    s = Session(plan, cache_root(), tmp_path, Progress(live=False))
    try:
        results = {v: s.run_scenario(KernelId("x86_64", v), kmem) for v in ("base", "patched")}
    finally:
        s.close()
    for v, r in results.items():
        assert r.error is None, f"{v}: {r.error} (log: {r.log})"
    base, fake = results["base"].metrics, results["patched"].metrics
    assert fake["charged_stacks"] >= 100 and results["patched"].held   # every absolute bound holds
    assert fake["charged_stacks"] < 0.9 * base["charged_stacks"]     # ... but a stack a task less
    (row,) = rows(s.records())
    assert row.verdict == BROKEN, row.notes()
    assert any("charged_stacks >= 0.9 x base" in n for n in row.notes()), row.notes()


def test_cgroup_v2s_own_kernel_stack_count_sees_the_stacks_go_uncharged(tmp_path):
    """kstack-charge-v2 measures stacks alone (memory.stat kernel_stack): with the throwaway
    patch its absolute bound fails by itself, on the patched kernel only."""
    series = load_patch_dir(REPO_ROOT / "tests" / "boot" / "data" / "no-kstack-charge")
    scenario = load_scenario("kstack-charge-v2")
    plan = Plan(load_kernel("linux-5.10"), (load_arch("x86_64"),), ("base", "patched"), (scenario,), series=series)
    s = Session(plan, cache_root(), tmp_path, Progress(live=False))
    try:
        results = {v: s.run_scenario(KernelId("x86_64", v), scenario) for v in ("base", "patched")}
    finally:
        s.close()
    for v, r in results.items():
        assert r.error is None, f"{v}: {r.error} (log: {r.log})"
    assert results["base"].held and results["base"].metrics["charged_stacks"] >= 95
    assert not results["patched"].held and results["patched"].metrics["charged_stacks"] < 5
    (row,) = rows(s.records())
    assert row.verdict == BROKEN, row.notes()


def test_a_series_that_changes_only_arm64_code_is_no_change_on_x86_64_and_booted_once(tmp_path):
    from harness.verdict.kinds import NO_CHANGE
    series = load_patch_dir(REPO_ROOT / "tests" / "boot" / "data" / "arm64-only")
    seed = load_scenario("dying-memcg")
    plan = Plan(load_kernel("linux-5.10"), (load_arch("x86_64"),), ("base", "patched"), (seed,), series=series)
    s = Session(plan, cache_root(), tmp_path, Progress(live=False))
    try:
        results = {v: s.run_scenario(KernelId("x86_64", v), seed) for v in ("base", "patched")}
    finally:
        s.close()
    assert results["base"].error is None and results["base"].held, results["base"].error
    records = {r.variant: r for r in s.records()}
    assert records["base"].kernel_key != records["patched"].kernel_key         # another tree ...
    assert records["base"].image_sha256 == records["patched"].image_sha256     # ... the same image
    assert results["patched"].unchanged and not (tmp_path / "x86_64-patched" / "console.log").exists()
    (row,) = rows(s.records())
    assert row.verdict == NO_CHANGE


def test_a_kernel_that_reclaims_at_only_every_other_memory_high_write_regresses_test_kmem_basic(tmp_path):
    """A throwaway patch (tests/boot/data/no-reclaim-every-other-high) leaves the cgroup's kernel
    memory charged at every other memory.high write: the kernel's test_kmem_basic fails about
    every other run on it and never on the base. Judged on all their runs (more on fresh boots
    until the difference is beyond chance), the row is REGRESSED naming the test, never
    NO-REGRESSION or FLAKY. An incremental build: only mm/memcontrol.c."""

    from harness.verdict.kinds import REGRESSED
    series = load_patch_dir(REPO_ROOT / "tests" / "boot" / "data" / "no-reclaim-every-other-high")
    scenario = load_scenario("kmem-selftests")
    plan = Plan(load_kernel("linux-5.10"), (load_arch("x86_64"),), ("base", "patched"), (scenario,), series=series)
    s = Session(plan, cache_root(), tmp_path, Progress(live=False))
    try:
        for v in ("base", "patched"):
            s.run_scenario(KernelId("x86_64", v), scenario)
        s.confirm_selftests("x86_64", "default", scenario)
    finally:
        s.close()
    (row,) = rows(s.records())
    assert row.base.error is None and row.patched.error is None, (row.base.error, row.patched.error)
    basic = "test_kmem:test_kmem_basic"
    assert "p" in row.patched.test_runs[basic] and "f" in row.patched.test_runs[basic]   # intermittent
    assert row.verdict == REGRESSED, row.notes()
    assert any(f"regressed {basic}:" in n for n in row.notes()), row.notes()
