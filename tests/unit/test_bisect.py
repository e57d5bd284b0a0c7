"""kharness bisect: the per-patch matrix (pure logic on results as the session makes them), and
on the fake tree the prefix kernels: the commits they build and the keys check-series uses."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_orchestration import change_memcontrol, fake_plan, session

from harness.core.progress import Quiet
from harness.series.patches import load_patch_dir
from harness.verdict.bisect import BisectRow, matrix, passed, prefix_of, prefix_variants, render
from harness.verdict.kinds import ERROR, FIXED, HOLDS, NO_CHANGE, STILL_BROKEN
from harness.verdict.results import KernelId, RunRecord, ScenarioResult


def test_every_prefix_is_a_variant_and_the_last_one_is_patched():
    assert prefix_variants(3) == ("base", "patch-1", "patch-2", "patched")
    assert prefix_variants(1) == ("base", "patched")
    assert [prefix_of(v, 3) for v in prefix_variants(3)] == [0, 1, 2, 3]
    for bad in ("patch-0", "patch-4", "patch-x", "patched-2"):
        with pytest.raises(ValueError):
            prefix_of(bad, 3)


def fix(variant: str, delta: int, **kw) -> ScenarioResult:
    """A dying-memcg result: base holds when the bug shows (delta 500), the others when it is gone."""
    held = delta >= 450 if variant == "base" else delta <= 5
    return ScenarioResult("x86_64", variant, "dying-memcg", 500, "", held,
                          metrics={"before": 1, "after": 1 + delta, "delta": delta}, **kw)


def inv(variant: str, stacks: int, **kw) -> ScenarioResult:
    return ScenarioResult("x86_64", variant, "kmem-charge", 50, "", held=stacks >= 50, kind="invariant",
                          metrics={"stacks": stacks}, show=("stacks",), **kw)


def records(results: list[ScenarioResult]) -> list[RunRecord]:
    by: dict[str, list[ScenarioResult]] = {}
    for r in results:
        by.setdefault(r.variant, []).append(r)
    return [RunRecord("x86_64", v, scenarios=tuple(rs)) for v, rs in by.items()]


def test_a_fix_is_named_by_the_patch_that_brings_it_and_earlier_prefixes_may_still_be_broken():
    runs = records([fix("base", 500), fix("patch-1", 500), fix("patch-2", 0), fix("patched", 2),
                    inv("base", 60), inv("patch-1", 60), inv("patch-2", 61), inv("patched", 59)])
    rows = {r.scenario: r for r in matrix(runs, 3)}
    dm, kc = rows["dying-memcg"], rows["kmem-charge"]
    assert dm.verdicts == (STILL_BROKEN, FIXED, FIXED) and dm.first == 2 and dm.bad_prefixes == []
    assert dm.summary() == "FIXED from 2/3" and dm.cells[0] == "1 -> 501 (+500)"
    assert kc.verdicts == (HOLDS,) * 3 and kc.summary() == "HOLDS from 1/3"
    assert passed([dm, kc])
    text = render([dm, kc], ["one", "two", "three"]).splitlines()
    assert text[0].split() == ["arch", "scenario", "1/3", "2/3", "3/3", "first"]
    assert text[2].split() == ["x86_64", "dying-memcg", "STILL-BRK", "FIXED", "FIXED", "FIXED", "from", "2/3"]
    assert text[-3:] == ["1/3 one", "2/3 two", "3/3 three"]


def test_a_prefix_that_breaks_an_invariant_or_errors_fails_the_bisect_though_the_series_is_good():
    runs = records([inv("base", 60), inv("patch-1", 10), inv("patch-2", 60), inv("patched", 60)])
    (kc,) = matrix(runs, 3)
    assert kc.verdicts == ("BROKEN", HOLDS, HOLDS) and kc.first == 2 and kc.bad_prefixes == [1]
    assert kc.summary() == "HOLDS from 2/3; BROKEN at 1/3" and not passed([kc])
    runs = records([fix("base", 500), fix("patch-1", 0, error="boot: no SSH"), fix("patched", 0)])
    (dm,) = matrix(runs, 2)
    assert dm.verdicts == (ERROR, FIXED) and dm.bad_prefixes == [1] and not passed([dm])


def test_a_fix_that_comes_and_goes_is_named_where_it_reappears():
    runs = records([fix("base", 500), fix("patch-1", 0), fix("patch-2", 500), fix("patched", 0)])
    (dm,) = matrix(runs, 3)
    assert dm.first == 3 and dm.bad_prefixes == [2]
    assert dm.summary() == "FIXED from 3/3; STILL-BROKEN at 2/3"


def test_a_prefix_without_a_result_or_a_base_that_did_not_reproduce_is_no_pass():
    (dm,) = matrix(records([fix("base", 500), fix("patched", 0)]), 3)   # prefixes 1, 2 missing
    assert dm.verdicts == (ERROR, ERROR, FIXED) and not passed([dm])
    (dm,) = matrix(records([fix("base", 3), fix("patch-1", 0), fix("patched", 0)]), 2)
    assert dm.verdicts == ("NOT-REPRODUCED",) * 2 and dm.first is None and not passed([dm])
    assert dm.summary() == "NOT-REPRODUCED at 2/2"
    unchanged = replace(fix("patch-1", 0), unchanged=True, held=None)
    (dm,) = matrix(records([fix("base", 500), unchanged, fix("patched", 0)]), 2)
    assert dm.verdicts == (NO_CHANGE, FIXED) and dm.first == 2 and passed([dm])
    assert isinstance(dm, BisectRow) and not passed([])


def test_each_prefix_kernel_builds_its_own_commit_under_the_key_check_series_uses(tmp_path):
    from harness.run.checkseries import check_series

    plan = fake_plan(tmp_path, change_memcontrol("int memcg_charge = 2;"))
    patches = tmp_path / "patches"
    second = change_memcontrol("int memcg_charge = 3;").replace(
        "-int memcg_charge = 1;", "-int memcg_charge = 2;").replace("fake change", "again")
    (patches / "0002-mm-memcontrol-again.patch").write_text(second)
    plan = replace(plan, series=load_patch_dir(patches), variants=prefix_variants(2))
    builds, _ = check_series(plan, ("default",), tmp_path / "cache", tmp_path / "check", Quiet())
    assert [b.ok for b in builds] == [True, True]
    s = session(plan, tmp_path / "cache", tmp_path / "run")
    first, last = s.kernel(KernelId("x86_64", "patch-1")), s.kernel(KernelId("x86_64", "patched"))
    assert first.cached and last.cached, "bisect rebuilt what check-series had built"
    assert b"memcg_charge = 2" in first.image.read_bytes() and b"memcg_charge = 3" in last.image.read_bytes()
    base = s.kernel(KernelId("x86_64", "base"))
    assert len({base.key, first.key, last.key}) == 3
    assert not s.unchanged(KernelId("x86_64", "patch-1"))
    assert (tmp_path / "run/x86_64-patch-1/build.log").is_file()


def test_kharness_build_builds_the_plans_kernels_boots_nothing_and_its_run_exports(tmp_path, monkeypatch, capsys):
    """A CI build job: `kharness build`, then `kharness export` of its run directory."""
    import json

    from harness import cli, commands
    plan = fake_plan(tmp_path, change_memcontrol("int memcg_charge = 2;"))
    monkeypatch.setattr(commands, "_plan", lambda args, variants: plan)
    monkeypatch.setenv("KHARNESS_CACHE", str(tmp_path / "cache"))
    assert cli.main(["build", "--arch", "x86_64", "--results", str(tmp_path / "results")]) == 0
    out = capsys.readouterr().out
    assert "x86_64/base: kernel " in out and "x86_64/patched: kernel " in out and "(built)" in out
    (run_dir,) = (tmp_path / "results").iterdir()
    report = json.loads((run_dir / "report.json").read_text())
    assert [r["variant"] for r in report["runs"]] == ["base", "patched"] and not report["table"]
    assert all(r["kernel_key"] and not r["scenarios"] for r in report["runs"])
    assert not any(run_dir.glob("*/console*.log")), "a build job booted a guest"
    assert cli.main(["export", str(run_dir), "--to", str(tmp_path / "kernels")]) == 0
    assert {p.name for p in (tmp_path / "kernels").iterdir()} == {r["kernel_key"] for r in report["runs"]}
