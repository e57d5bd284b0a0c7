"""The fsnotify series' scenarios must fail the ways it could be written wrong. Each fixture under
tests/boot/data/fsnotify-* is the real series plus one throwaway patch that breaks it on purpose
(never part of a series); on both arches, the scenario named for it must give a row that does
not pass. Incremental builds: each fixture changes one or two files under fs/notify.

| fixture         | the breakage                                   | caught by                         |
|-----------------|------------------------------------------------|-----------------------------------|
| no-objcg        | the group's obj_cgroup left NULL               | fsnotify-charge: x_charged        |
| no-account      | events allocated without __GFP_ACCOUNT         | fsnotify-charge, fanotify-charge  |
| css-leak        | each event's memcg reference never dropped     | inotify-pin: after_close          |
| objcg-leak      | the group's obj_cgroup never put               | fsnotify-lifecycle: memcg_objects_left |
| objcg-noref     | the obj_cgroup stored without a reference      | fsnotify-lifecycle on debug: KASAN|
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness import REPO_ROOT
from harness.config import load_kernel, load_scenario
from harness.config.arches import load_arch
from harness.core.cache import cache_root
from harness.core.progress import Progress
from harness.run.plan import Plan
from harness.run.session import Session
from harness.series.patches import load_patch_dir, load_series, load_series_config
from harness.verdict.kinds import BROKEN, ERROR, FIXED, HOLDS
from harness.verdict.results import KernelId
from harness.verdict.table import rows

pytestmark = [pytest.mark.boot, pytest.mark.fake_fix]
DATA = REPO_ROOT / "tests" / "boot" / "data"
ARCHES = [pytest.param(a, marks=getattr(pytest.mark, a)) for a in ("x86_64", "arm64")]


def broken_series(fixture: str):
    """The fsnotify series with the fixture's patch on top."""
    real = load_series(load_series_config("fsnotify-objcg"))
    extra = load_patch_dir(DATA / f"fsnotify-{fixture}")
    return replace(real, name=f"fsnotify-{fixture}", title=f"fsnotify-objcg + {fixture}",
                   patches=real.patches + extra.patches)


def ab(tmp_path, fixture: str, arch: str, scenario: str, profile: str = "default"):
    """The A/B row of one scenario: the base against the broken series."""
    s_cfg = load_scenario(scenario)
    plan = Plan(load_kernel("linux-7.2"), (load_arch(arch),), ("base", "patched"), (s_cfg,),
                series=broken_series(fixture), profiles=(profile,))
    s = Session(plan, cache_root(), tmp_path, Progress(live=False))
    try:
        results = {v: s.run_scenario(KernelId(arch, v, profile), s_cfg) for v in ("base", "patched")}
    finally:
        s.close()
    (row,) = rows(s.records())
    print(f"{arch} {scenario} ({profile}) {fixture}: {row.verdict}; base {results['base'].metrics}"
          f" {results['base'].error or ''}; patched {results['patched'].metrics} {results['patched'].error or ''}")
    return results, row


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("fixture,scenario", [("no-objcg", "fsnotify-charge"),
                                              ("no-account", "fsnotify-charge"),
                                              ("no-account", "fanotify-charge")])
def test_events_charged_to_no_one_break_the_charge_invariant(tmp_path, arch, fixture, scenario):
    results, row = ab(tmp_path, fixture, arch, scenario)
    assert results["base"].error is None and results["base"].held, results["base"].error
    assert results["patched"].error is None, results["patched"].error
    assert results["patched"].metrics["x_charged"] < 24, results["patched"].metrics
    assert row.verdict == BROKEN, row.notes()


@pytest.mark.parametrize("arch", ARCHES)
def test_a_memcg_reference_left_by_every_event_keeps_the_cgroup_dying(tmp_path, arch):
    results, row = ab(tmp_path, "css-leak", arch, "inotify-pin")
    assert results["base"].error is None and results["patched"].error is None
    m = results["patched"].metrics
    assert m["pinned"] >= 1 and m["after_close"] >= 1, m   # X pinned by its event's reference
    assert row.verdict not in (FIXED, ERROR), row.notes()


@pytest.mark.parametrize("arch", ARCHES)
def test_an_obj_cgroup_never_put_shows_in_the_slab_allocation_traces(tmp_path, arch):
    results, row = ab(tmp_path, "objcg-leak", arch, "fsnotify-lifecycle")
    assert results["base"].error is None and results["base"].held, results["base"].metrics
    assert results["patched"].error is None, results["patched"].error
    m = results["patched"].metrics
    assert m["cgroups_left"] == 0 and m["memcg_objects_left"] >= 20, m   # cgroup counts see nothing
    assert row.verdict == BROKEN, row.notes()


@pytest.mark.parametrize("arch", ARCHES)
def test_an_obj_cgroup_stored_without_a_reference_is_a_use_after_free(tmp_path, arch):
    results, row = ab(tmp_path, "objcg-noref", arch, "fsnotify-lifecycle", profile="debug")
    assert results["base"].error is None and results["base"].held, results["base"].metrics
    assert results["patched"].error is not None, results["patched"].metrics
    assert row.verdict not in (HOLDS,), row.notes()
