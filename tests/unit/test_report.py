"""Verdicts: an error is never a result, and FIXED needs both sides."""

from dataclasses import replace

import pytest

from harness.output.render import summary
from harness.output.runreport import RunReport
from harness.verdict.kinds import BROKEN, ERROR, FIXED, FLAKY, HOLDS, NO_REGRESSION, NOT_REPRODUCED, RAN, REGRESSED, REPRODUCED, STILL_BROKEN, result_verdict
from harness.verdict.results import KernelMeta, RunMeta, RunRecord, ScenarioResult
from harness.verdict.table import Row, passed, rows


def ab_verdict(base, patched):
    return Row("x86_64", "dying-memcg", base, patched).verdict


def meta(**fields):
    return RunMeta(**{"kharness": "test", "kernel": KernelMeta("linux-5.10"), "profiles": ("default",),
                      "started": "", "run_dir": "", **fields})


def result(variant, held=None, error=None, delta=None):
    return ScenarioResult(arch="x86_64", variant=variant, scenario="dying-memcg", iterations=500,
                          expectation="", metrics={} if delta is None else {"before": 1, "after": 1 + delta, "delta": delta},
                          held=held, error=error)


def test_base_alone():
    assert result_verdict(result("base", held=True, delta=500)) == REPRODUCED
    assert result_verdict(result("base", held=False, delta=3)) == NOT_REPRODUCED


def test_error_is_never_a_verdict():
    assert result_verdict(result("base", error="boot: deadline")) == ERROR
    assert result_verdict(result("base")) == ERROR  # no judgement made at all


def test_ab_fixed_needs_reproduction_on_base():
    assert ab_verdict(result("base", True, delta=500), result("patched", True, delta=0)) == FIXED
    assert ab_verdict(result("base", False, delta=0), result("patched", True, delta=0)) == NOT_REPRODUCED
    assert ab_verdict(result("base", True, delta=500), result("patched", False, delta=500)) == STILL_BROKEN


def test_ab_error_on_either_side_is_error():
    assert ab_verdict(result("base", True, delta=500), result("patched", error="ssh")) == ERROR
    assert ab_verdict(result("base", error="build"), result("patched", True, delta=0)) == ERROR


def test_table_pairs_variants_and_summary_shows_values():
    runs = [RunRecord("x86_64", "base", scenarios=(result("base", True, delta=500),)),
            RunRecord("x86_64", "patched", scenarios=(result("patched", True, delta=0),))]
    table = rows(runs)
    assert len(table) == 1 and table[0].verdict == FIXED
    text = summary(RunReport(table, runs))
    assert "1 -> 501 (+500)" in text and "FIXED" in text


def invariant(variant, held, profile="default"):
    return ScenarioResult(arch="arm64", variant=variant, scenario="kmem-charge", iterations=100,
                          expectation="", kind="invariant", profile=profile, held=held,
                          show=("kept_stacks",), metrics={"kept_stacks": 100 if held else 3},
                          failed=() if held else ("kept_stacks >= 100 (got 3)",))


def selftests(variant, tests):
    return ScenarioResult(arch="x86_64", variant=variant, scenario="cgroup-selftests", iterations=1,
                          expectation="", kind="selftests", held=True, tests=tests)


def test_invariant_must_hold_on_both_kernels():
    runs = [RunRecord("arm64", "base", scenarios=(invariant("base", True),)),
            RunRecord("arm64", "patched", scenarios=(invariant("patched", False),))]
    (row,) = rows(runs)
    assert row.verdict == BROKEN and not passed([row])
    assert "not held: kept_stacks >= 100 (got 3)" in summary(RunReport([row], runs))
    runs[1] = RunRecord("arm64", "patched", scenarios=(invariant("patched", True),))
    assert rows(runs)[0].verdict == HOLDS and passed(rows(runs))


def test_selftests_patched_no_worse_than_base():
    base = {"t:a": "pass", "t:b": "fail", "t:c": "skip"}
    same = rows([RunRecord("x86_64", "base", scenarios=(selftests("base", base),)),
                 RunRecord("x86_64", "patched", scenarios=(selftests("patched", {**base, "t:b": "pass"}),))])
    assert same[0].verdict == NO_REGRESSION and passed(same)
    text = summary(RunReport(same, []))
    assert "1 pass, 1 fail, 1 skip" in text and "2 pass, 0 fail, 1 skip" in text
    for worse in ({**base, "t:a": "fail"}, {**base, "t:c": "fail"}, {"t:b": "fail", "t:c": "skip"}):
        table = rows([RunRecord("x86_64", "base", scenarios=(selftests("base", base),)),
                      RunRecord("x86_64", "patched", scenarios=(selftests("patched", worse),))])
        assert table[0].verdict == REGRESSED and not passed(table)
        assert "regressed t:" in summary(RunReport(table, []))
    # failing in some runs of patched only is no pass (test_selftest_judgement has the numbers)
    flaky = rows([RunRecord("x86_64", "base", scenarios=(selftests("base", base),)),
                  RunRecord("x86_64", "patched", scenarios=(selftests("patched", {**base, "t:a": "flaky"}),))])
    assert flaky[0].verdict == REGRESSED
    assert ("x86_64 cgroup-selftests: regressed t:a: pass on base, fail 1 of 2 runs on patched "
            "(p = 0.667), not significant") in flaky[0].notes()
    alone = rows([RunRecord("x86_64", "base", scenarios=(selftests("base", base),))])
    assert alone[0].verdict == RAN and passed(alone)


def test_a_test_only_patched_reports_is_compared_too():
    base = {"t:a": "pass"}
    table = rows([RunRecord("x86_64", "base", scenarios=(selftests("base", base),)),
                  RunRecord("x86_64", "patched", scenarios=(selftests("patched", {**base, "t:new": "fail"}),))])
    assert table[0].verdict == REGRESSED and "regressed t:new: missing on base, fail on patched" in summary(RunReport(table, []))
    passing = rows([RunRecord("x86_64", "base", scenarios=(selftests("base", base),)),
                    RunRecord("x86_64", "patched", scenarios=(selftests("patched", {**base, "t:new": "pass"}),))])
    assert passing[0].verdict == NO_REGRESSION


def test_two_results_for_one_kernel_are_an_error_never_the_last_one():
    error = result("base", error="scenario: dying-memcg.sh exited 1")
    for first, second in ((error, result("base", True, delta=500)), (result("base", True, delta=500),) * 2):
        table = rows([RunRecord("x86_64", "base", scenarios=(first, second)),
                      RunRecord("x86_64", "patched", scenarios=(result("patched", True, delta=0),))])
        assert table[0].verdict == ERROR and not passed(table)
        assert "x86_64 dying-memcg: base has more than one result" in summary(RunReport(table, []))


def test_fixed_upstream_wants_the_bug_nowhere():
    def up(variant, held):
        return ScenarioResult(arch="x86_64", variant=variant, scenario="dying-memcg", iterations=500,
                              expectation="", metrics={"before": 1, "after": 1, "delta": 0}, held=held,
                              kind="fixed-upstream")
    assert result_verdict(up("base", True)) == NOT_REPRODUCED and passed(rows([RunRecord("x86_64", "base",
                                                                                 scenarios=(up("base", True),))]))
    assert result_verdict(up("base", False)) == REPRODUCED
    assert ab_verdict(up("base", True), up("patched", True)) == NOT_REPRODUCED
    assert ab_verdict(up("base", False), up("patched", True)) == REPRODUCED
    assert ab_verdict(up("base", True), up("patched", False)) == REGRESSED
    assert not passed(rows([RunRecord("x86_64", "base", scenarios=(up("base", False),))]))


def test_a_fixed_upstream_side_bound_failing_is_broken_not_the_bug():
    """kmem-pgtables on a 7.2 debug kernel kept 98 of 100 pages, pinned 0: no bug shown, so
    not REPRODUCED; but not a pass either. pinned failing is the bug, whatever else failed."""
    def up(variant, failed):
        return ScenarioResult(arch="x86_64", variant=variant, scenario="kmem-pgtables", iterations=100,
                              expectation="", held=not failed, failed=failed, kind="fixed-upstream",
                              signature=("pinned",))
    side = up("base", ("kept >= 100 (got 98)",))
    assert result_verdict(side) == BROKEN and ab_verdict(side, up("patched", ())) == BROKEN
    assert not passed(rows([RunRecord("x86_64", "base", scenarios=(side,))]))
    bug = up("base", ("pinned <= 0 (got 1)", "kept >= 100 (got 98)"))
    assert result_verdict(bug) == REPRODUCED and ab_verdict(bug, up("patched", ())) == REPRODUCED
    assert ab_verdict(up("base", ()), up("patched", ("kept >= 100 (got 98)",))) == REGRESSED


def test_an_invariant_is_judged_against_the_base_value_too():
    def charge(variant, stacks):
        return ScenarioResult(arch="x86_64", variant=variant, scenario="kmem-charge", iterations=100,
                              expectation="", held=True, kind="invariant",
                              metrics={"before": 1, "after": 1, "delta": 0, "charged_stacks": stacks}, relative={"charged_stacks": 0.9})
    same = rows([RunRecord("x86_64", "base", scenarios=(charge("base", 492),)),
                 RunRecord("x86_64", "patched", scenarios=(charge("patched", 480),))])
    assert same[0].verdict == HOLDS and passed(same)
    # four stacks' worth per task on base, one on patched: every absolute bound still holds
    less = rows([RunRecord("x86_64", "base", scenarios=(charge("base", 492),)),
                 RunRecord("x86_64", "patched", scenarios=(charge("patched", 100),))])
    assert less[0].verdict == BROKEN and not passed(less)
    assert "patched: not held: charged_stacks >= 0.9 x base 492 (got 100)" in summary(RunReport(less, []))


def test_one_variant_alone_passes_with_its_own_verdict():
    assert passed(rows([RunRecord("x86_64", "base", scenarios=(result("base", True, delta=500),))]))
    assert not passed(rows([RunRecord("x86_64", "patched", scenarios=(result("patched", False, delta=500),))]))


def test_profiles_get_a_row_each_and_a_verdict_column_each():
    runs = [RunRecord("arm64", v, p, scenarios=(invariant(v, True, p),))
            for p in ("default", "debug") for v in ("base", "patched")]
    table = rows(runs)
    assert [(r.profile, r.verdict) for r in table] == [("default", HOLDS), ("debug", HOLDS)]
    lines = summary(RunReport(table, runs)).splitlines()
    assert lines[0].split() == ["arm64", "kmem-charge", "default", HOLDS]
    assert ["arm64", "kmem-charge", "debug", HOLDS] in [line.split() for line in lines]
    assert ["arch", "scenario", "default", "debug"] in [line.split() for line in lines]


def test_summary_gives_the_total_and_says_when_stage_times_overlap():
    runs = [RunRecord("x86_64", v, scenarios=(result(v, True, delta=d),))
            for v, d in (("base", 500), ("patched", 0))]
    table = rows(runs)
    assert "total 42.0 s\n" in summary(RunReport(table, runs, meta(seconds=42.0, jobs=1))) + "\n"
    both = summary(RunReport(table, runs, meta(seconds=42.0, jobs=2)))
    assert "total 42.0 s; up to 2 guests at once, so the stage times below overlap" in both
    assert "total" not in summary(RunReport(table, runs))


def test_summary_is_a_mail_what_ran_a_block_per_row_and_the_result():
    from harness.verdict.results import PatchMeta, SeriesMeta
    long = ScenarioResult(arch="x86_64", variant="base", scenario="kmem-charge", iterations=100,
                          expectation="", kind="invariant", held=True, metrics={f"metric_{i}": i for i in range(12)},
                          show=tuple(f"metric_{i}" for i in range(12)))
    runs = [RunRecord("x86_64", "base", accel="tcg", vcpus=1, timings={f"stage {i}": 1.5 for i in range(9)},
                      scenarios=(result("base", True, delta=500), long)),
            RunRecord("x86_64", "patched", accel="tcg", vcpus=1,
                      scenarios=(result("patched", False, delta=500), replace(long, variant="patched")))]
    series = SeriesMeta(name="s", title="A series", sha256="ab" * 32,
                        patches=(PatchMeta("0001-x.patch", "x", ""), PatchMeta("0002-y.patch", "y", "")))
    m = meta(series=series, seconds=9.0, kernel=KernelMeta("linux-5.10", "5.10.262", origin="debian bullseye"))
    text = summary(RunReport(rows(runs), runs, m))
    lines = text.splitlines()
    assert all(len(line) <= 80 and line == line.rstrip() for line in lines), text
    assert lines[:5] == ["kharness test: A series", "series   s, 2 patches, sha256 abababababababab",
                         "base     linux-5.10: Linux 5.10.262, debian bullseye", "profile  default",
                         "guests   x86_64 tcg, 1 vCPU"]
    block = lines[lines.index("x86_64  dying-memcg  STILL-BROKEN"):][:3]
    assert block == ["x86_64  dying-memcg  STILL-BROKEN", "    base     1 -> 501 (+500)",
                     "    patched  1 -> 501 (+500)"]
    assert any(line.startswith("A -> B (+N): ") for line in lines)
    assert lines[-1] == "Result: 1/2 rows as expected; not: x86_64 dying-memcg STILL-BROKEN"
    assert "stage 3 1.5 s" in text.replace("\n  ", " ") and "stage\n" not in text   # a stage stays whole


def test_summary_of_nothing_says_so():
    assert summary(RunReport([], [])).splitlines()[-1] == "Result: nothing ran"


def test_repeats_are_the_median_with_each_run_kept_and_runs_that_disagree_are_flaky(tmp_path):
    from harness.output.report import load, write
    from harness.verdict.kinds import FLAKY, result_verdict
    from harness.verdict.repeat import combine

    def run(variant, held, delta):
        return replace(result(variant, held, delta=delta), metrics={"before": 1, "after": 1 + delta, "delta": delta})
    base = combine([run("base", True, d) for d in (500, 498, 500, 499, 500)])
    assert (base.metrics["delta"], base.held, result_verdict(base)) == (500, True, REPRODUCED)
    assert [x["metrics"]["delta"] for x in base.repeats] == [500, 498, 500, 499, 500]
    steady = combine([run("patched", True, d) for d in (0, 1, 0)])
    (row,) = rows([RunRecord("x86_64", "base", scenarios=(base,)), RunRecord("x86_64", "patched", scenarios=(steady,))])
    assert row.verdict == FIXED
    assert row.cell(row.base) == "1 -> 501 (+500) (median of 5 runs; delta 498..500)"
    wobbly = combine([run("patched", True, 0), run("patched", False, 500), run("patched", True, 1)])
    assert result_verdict(wobbly) == FLAKY and not wobbly.held
    (row,) = rows([RunRecord("x86_64", "base", scenarios=(base,)), RunRecord("x86_64", "patched", scenarios=(wobbly,))])
    assert row.verdict == FLAKY and not passed([row])
    assert row.notes()[1] == "x86_64 dying-memcg: patched run 2: not held (delta 500)"
    errs = combine([run("patched", True, 0), replace(result("patched", error="ssh: gone"), metrics={})])
    assert result_verdict(errs) == ERROR and errs.error == "run 2 of 2: ssh: gone"
    write(tmp_path, meta(), [RunRecord("x86_64", "patched", scenarios=(wobbly,))])
    assert load(tmp_path)[1][0].scenarios[0] == wobbly          # every run survives report.json


def test_repeat_below_one_is_refused(tmp_path):
    import pytest

    from harness.core.errors import HarnessError
    from harness.core.progress import Progress
    from harness.run.plan import make_plan
    with pytest.raises(HarnessError, match="--repeat 0: expected a positive number of runs"):
        make_plan(kernel="linux-5.10", variants=("base",), cache=tmp_path, progress=Progress(live=False), repeat=0)


def test_online_cpu_lists_are_counted():
    from harness.run.guests import online_cpus
    assert [online_cpus(t) for t in ("0", "0-1", "0-3,6", "0,2-3\n")] == [1, 2, 5, 3]


def runs_of(variant, runs):
    """A selftests result from each test's outcome per run ("ppf": pass, pass, fail)."""
    from harness.verdict.repeat import summarize_runs
    return ScenarioResult(arch="x86_64", variant=variant, scenario="cgroup-selftests", iterations=len(
        next(iter(runs.values()))), expectation="", kind="selftests", held=True,
        tests=summarize_runs(runs), test_runs=runs)


def verdict_of(base_runs, patched_runs):
    return rows([RunRecord("x86_64", "base", scenarios=(runs_of("base", {"t:a": base_runs}),)),
                 RunRecord("x86_64", "patched", scenarios=(runs_of("patched", {"t:a": patched_runs}),))])[0]


def test_the_fisher_test_of_patched_failing_more_often():
    from harness.verdict.testruns import worse_by_chance
    assert worse_by_chance(3, 3, 0, 3) == pytest.approx(1 / 20)     # C(3,3) / C(6,3)
    assert worse_by_chance(1, 3, 0, 3) == pytest.approx(0.5)        # one failure: either kernel's
    assert worse_by_chance(4, 12, 0, 12) == pytest.approx(495 / 10626)
    assert worse_by_chance(0, 3, 0, 3) == 1.0


def test_a_test_that_patched_alone_fails_is_regressed_whether_or_not_significant():
    from harness.verdict.testruns import judge_test
    always = judge_test("t:a", "ppp", "fff")
    assert (always.verdict, always.decided) == ("regressed", True)
    sometimes = judge_test("t:a", "ppp", "fpp")     # 1 of 3: chance could do it; more runs decide
    assert (sometimes.verdict, sometimes.decided) == ("regressed", False)
    assert "not significant" in sometimes.words
    confirmed = judge_test("t:a", "p" * 12, "fpfpppffpppp")
    assert (confirmed.verdict, confirmed.decided) == ("regressed", True)
    assert confirmed.words == ("t:a: pass in all 12 runs on base, fail 4 of 12 runs on patched "
                               "(p = 0.047), intermittent")
    row = verdict_of("ppp", "fpp")
    assert row.verdict == REGRESSED and not row.ok


def test_a_test_both_kernels_fail_sometimes_is_flaky_never_a_pass():
    from harness.verdict.testruns import judge_test
    assert judge_test("t:a", "pfp", "ppf").verdict == "flaky"
    row = verdict_of("pfp", "pfp")
    assert row.verdict == FLAKY and not row.ok
    assert "flaky t:a: fail 1 of 3 runs on base, fail 1 of 3 runs on patched" in row.notes()[0]
    # failing far more often on patched, significantly: a regression although base flakes too
    assert judge_test("t:a", "f" + "p" * 11, "ffffffffffpp").verdict == "regressed"


def test_a_test_only_base_fails_sometimes_is_fixed_intermittently_no_regression():
    row = verdict_of("pfp", "ppp")
    assert row.verdict == NO_REGRESSION and row.ok
    assert row.notes() == ["x86_64 cgroup-selftests: fixed t:a: fail 1 of 3 runs on base, pass in all 3 runs on patched"]
    from harness.verdict.testruns import judge_test
    assert judge_test("t:a", "pfp", "ppp").verdict == "fixed"


def test_the_programs_more_runs_could_decide():
    from harness.verdict.testruns import undecided_programs
    base = runs_of("base", {"a:x": "ppp", "b:y": "ppp", "c:z": "ppp"})
    patched = runs_of("patched", {"a:x": "fpp", "b:y": "fff", "c:z": "ppp"})
    assert undecided_programs(base, patched) == ("a",)


def test_a_test_known_to_flake_on_the_base_is_shown_not_failed_unless_significantly_worse():
    from dataclasses import replace as with_

    from harness.verdict.testruns import judge_test
    assert judge_test("t:a", "ppfpp", "pfppp", known=True).verdict == "known"      # both flake
    assert judge_test("t:a", "ppppp", "pfppp", known=True).verdict == "regressed"  # only patched fails
    assert judge_test("t:a", "ppp", "fff", known=True).verdict == "regressed"      # p = 0.05
    row = verdict_of("ppfpp", "pfppp")
    assert row.verdict == FLAKY
    base, patched = (with_(r, known_flaky=("t:a",)) for r in (row.base, row.patched))
    known = Row(row.arch, row.scenario, base, patched)
    assert known.verdict == NO_REGRESSION and known.ok
    assert "known to flake on this base" in known.notes()[0]
    # an entry whose test passed every run on both kernels is shown as maybe stale, still judged
    calm = verdict_of("ppppp", "pppp")
    base, patched = (with_(r, known_flaky=("t:a",)) for r in (calm.base, calm.patched))
    stale = Row(calm.arch, calm.scenario, base, patched)
    assert stale.verdict == NO_REGRESSION and stale.ok
    assert stale.notes() == ["x86_64 cgroup-selftests: t:a passed all 9 runs here: its known_flaky entry may be stale"]


def test_a_known_flaky_entry_names_a_test_a_reason_and_a_date(tmp_path):
    from harness.config import KnownFlaky
    from harness.core.errors import ConfigError
    KnownFlaky("test_kmem:test_kmem_basic", "a race with RCU", "2026-12-05").validate(tmp_path, "")
    for bad, field in ((KnownFlaky("test_kmem_basic", "r", "2026-12-05"), "test"),
                       (KnownFlaky("p:t", "r", "yesterday"), "seen"), (KnownFlaky("p:t", " ", "2026-12-05"), "reason")):
        with pytest.raises(ConfigError, match=field):
            bad.validate(tmp_path, "")


def test_a_bug_the_series_does_not_claim_must_not_regress_and_is_never_still_broken():
    """A foreign series that leaves the base's bug as it is: NO-REGRESSION (exit 0), never
    STILL-BROKEN; one that brings a bug the base does not show: REGRESSED."""
    def unclaimed(variant, held):
        return replace(result(variant, held, delta=500 if held else 0), kind="unclaimed")
    same = rows([RunRecord("x86_64", v, scenarios=(unclaimed(v, True),)) for v in ("base", "patched")])
    assert same[0].verdict == NO_REGRESSION and passed(same) and same[0].notes() == []
    brought = rows([RunRecord("x86_64", "base", scenarios=(unclaimed("base", False),)),
                    RunRecord("x86_64", "patched", scenarios=(unclaimed("patched", True),))])
    assert brought[0].verdict == REGRESSED and not passed(brought)
    assert "patched shows what the base does not" in brought[0].notes()[0]
    gone = rows([RunRecord("x86_64", "base", scenarios=(unclaimed("base", True),)),
                 RunRecord("x86_64", "patched", scenarios=(unclaimed("patched", False),))])
    assert gone[0].verdict == NO_REGRESSION and passed(gone) and "does not claim" in gone[0].notes()[0]


def test_a_skip_of_a_test_the_base_passed_is_no_pass():
    from harness.verdict.testruns import judge_test
    assert judge_test("t:a", "ps", "ps").verdict == "flaky"          # passes and skips: never a pass
    worse = judge_test("t:a", "ppps", "ssss")                        # patched never passes
    assert (worse.verdict, worse.decided) == ("flaky", False)
    assert worse.words.startswith("t:a: skip 1, pass 3 of 4 runs on base, skip in all 4 runs on patched")
    assert judge_test("t:a", "pf", "ss").verdict != "fixed"           # skipping is no fix
    assert judge_test("t:a", "sf", "ss").verdict == "same"
    assert judge_test("t:a", "sf", "pp").verdict == "fixed"
    assert verdict_of("ps", "ps").verdict == FLAKY
    # a base's skip never cancels a failure patched alone shows
    assert judge_test("t:a", "ps", "pf").verdict == "regressed"
    assert judge_test("t:a", "ppps", "ffff").verdict == "regressed"    # p = 0.014
    assert judge_test("t:a", "ps", "pp").verdict == "same"              # a skip on base fixed nothing
