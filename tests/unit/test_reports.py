"""report.json round-trips; junit.xml tells failures from errors; summary.md is a pasteable table."""

import os
import time
from xml.etree import ElementTree as ET

from harness.output.report import load, write
from harness.run.doctor import clean, list_configs
from harness.verdict.results import RunMeta, RunRecord, ScenarioResult


def result(variant, held=None, error=None, delta=None):
    return ScenarioResult(arch="arm64", variant=variant, scenario="dying-memcg", iterations=500,
                          expectation="delta <= 5", metrics={} if delta is None else {"before": 1, "after": 1 + delta, "delta": delta},
                          held=held, error=error)


META_JSON = {"kharness": "0", "kernel": {"version": "5.10.262", "origin": "test"},
             "series": {"name": "s", "title": "Use obj_cgroup APIs to charge kmem pages"}}
META = RunMeta.from_json(META_JSON)


def test_report_round_trips_and_renders(tmp_path):
    runs = [RunRecord("arm64", "base", timings={"boot": 1.5}, scenarios=(result("base", True, delta=500),)),
            RunRecord("arm64", "patched", scenarios=(result("patched", True, delta=0),))]
    write(tmp_path, META, runs)
    meta, loaded = load(tmp_path)
    assert loaded == runs and meta.kernel.version == "5.10.262" and meta == META
    md = (tmp_path / "summary.md").read_text()
    assert "| arm64 | dying-memcg | 1 -> 501 (+500) | 1 -> 1 (+0) | FIXED |" in md
    assert md.startswith("**Use obj_cgroup APIs to charge kmem pages** (`s`: 0 patches) on Linux 5.10.262")


def test_a_schema_1_report_still_renders(tmp_path):
    """Before schema 2 there was no profile, kind, metrics or tests: their defaults fill in;
    before schema 3 before, after and delta were fields of a result: they are its metrics."""
    import json
    base = {"arch": "arm64", "variant": "base", "scenario": "dying-memcg", "iterations": 500,
            "expectation": "delta >= 450", "before": 1, "after": 501, "delta": 500, "held": True,
            "settle_seconds": 2.0, "script_seconds": 13.0, "error": None, "log": None,
            "verdict": "REPRODUCED"}
    patched = {**base, "variant": "patched", "after": 1, "delta": 0, "verdict": "FIXED"}
    (tmp_path / "report.json").write_text(json.dumps({"schema": 1, **META_JSON, "profile": "default", "runs": [
        {"arch": "arm64", "variant": v["variant"], "timings": {}, "scenarios": [v]} for v in (base, patched)],
        "table": []}))
    meta, runs = load(tmp_path)
    assert [s.profile for r in runs for s in r.scenarios] == ["default", "default"]
    assert [s.metrics for r in runs for s in r.scenarios] == [{"before": 1, "after": 501, "delta": 500},
                                                              {"before": 1, "after": 1, "delta": 0}]
    table = write(tmp_path, meta, runs)
    assert [r.verdict for r in table] == ["FIXED"] and "1 -> 501 (+500)" in table[0].cell(table[0].base)
    again = json.loads((tmp_path / "report.json").read_text())
    assert again["schema"] == 3 and "delta" not in again["runs"][0]["scenarios"][0]


def junit_cases(tmp_path):
    top = ET.parse(tmp_path / "junit.xml").getroot()
    return top, [c for suite in top for c in suite.findall("testcase")]


def test_junit_has_a_testcase_per_row_and_tells_failure_from_error(tmp_path):
    v2 = dict(scenario="dying-memcg-v2", cmdline="cgroup_no_v1=memory")
    runs = [RunRecord("arm64", "base", accel="tcg", scenarios=(
                result("base", False, delta=0), ScenarioResult(**{**vars(result("base", True, delta=500)), **v2}))),
            RunRecord("arm64", "patched", scenarios=(
                result("patched", True, delta=0), ScenarioResult(**{**vars(result("patched", error="boot: deadline")), **v2})))]
    (tmp_path / "arm64-base").mkdir()
    (tmp_path / "arm64-base" / "dying-memcg.out").write_text("memory 1 1 1\n")
    write(tmp_path, RunMeta.from_json({**META_JSON, "series": {**META_JSON["series"], "sha256": "ab12"}}), runs)
    top, (fix, v2case) = junit_cases(tmp_path)
    assert (top.get("tests"), top.get("failures"), top.get("errors")) == ("2", "1", "1")
    props = {p.get("name"): p.get("value") for p in top.find("testsuite").find("properties")}
    assert props["accel"] == "tcg" and props["series.sha256"] == "ab12" and props["kernel.version"] == "5.10.262"
    assert (fix.get("classname"), fix.get("name")) == ("kharness.arm64", "dying-memcg")
    assert fix.find("failure").get("message") == "NOT-REPRODUCED: base 1 -> 1 (+0); patched 1 -> 1 (+0)"
    assert fix.find("system-out").text.startswith("== base: 1 -> 1 (+0) (expected delta <= 5)\nmemory 1 1 1")
    assert v2case.find("error").get("message") == "patched: boot: deadline"


def test_junit_attaches_the_console_of_the_guest_that_went_wrong(tmp_path):
    """A scenario with a kernel command line of its own runs on a guest of its own, whose
    console is console-<cmdline>.log: that one's tail goes with the testcase."""
    v2 = ScenarioResult(arch="arm64", variant="base", scenario="dying-memcg-v2", iterations=500,
                        expectation="", cmdline="cgroup_no_v1=memory", error="guest: kernel reported: BUG:")
    logs = tmp_path / "arm64-base"
    logs.mkdir()
    (logs / "console.log").write_text("the v1 guest's console\r\n")
    (logs / "console-cgroup_no_v1_memory.log").write_text("BUG: the v2 guest's console\r\n")
    write(tmp_path, META, [RunRecord("arm64", "base", scenarios=(v2, result("base", True, delta=500)))])
    _, cases = junit_cases(tmp_path)
    assert {c.get("name"): c.find("system-err").text for c in cases} == {
        "dying-memcg-v2": "BUG: the v2 guest's console", "dying-memcg": "the v1 guest's console"}


def test_junit_gives_each_selftest_a_testcase(tmp_path):
    def st(variant, tests):
        return ScenarioResult(arch="arm64", variant=variant, scenario="cgroup-selftests", iterations=3,
                              expectation="", kind="selftests", held=True, tests=tests)
    base = {"p:ok": "pass", "p:both": "fail", "p:worse": "pass", "p:flaky": "flaky", "p:fixed": "flaky"}
    patched = {**base, "p:worse": "fail", "p:fixed": "pass"}
    write(tmp_path, META, [RunRecord("arm64", "base", scenarios=(st("base", base),)),
                           RunRecord("arm64", "patched", scenarios=(st("patched", patched),))])
    _, cases = junit_cases(tmp_path)
    by = {c.get("name"): c for c in cases}
    assert by["cgroup-selftests"].find("failure").get("message").startswith("REGRESSED")
    assert by["p:worse"].find("failure").get("message") == "regressed: p:worse: pass on base, fail on patched"
    assert by["p:both"].find("skipped").get("message") == "not a pass on any kernel: base fail, patched fail"
    assert by["p:ok"].find("failure") is None and by["p:ok"].find("skipped") is None
    assert by["p:flaky"].find("failure").get("message").startswith("flaky: p:flaky: fail 1 of 2 runs on base")
    assert by["p:fixed"].find("failure") is None and by["p:fixed"].find("system-out").text == (
        "flaky: base flaky, patched pass")


def test_clean_removes_old_then_largest_oldest(tmp_path):
    for i, (top, age_days) in enumerate((("kernels", 40), ("images", 1), ("builds", 0))):
        d = tmp_path / top / f"entry{i}"
        d.mkdir(parents=True)
        (d / "blob").write_bytes(b"x" * 1000)
        t = time.time() - age_days * 86400
        os.utime(d, (t, t))
    (tmp_path / "kernels" / "k.lock").touch()
    clean(tmp_path, older_than_days=30, max_bytes=None, dry_run=False)
    assert not (tmp_path / "kernels/entry0").exists() and (tmp_path / "images/entry1").exists()
    assert (tmp_path / "kernels/k.lock").exists()
    clean(tmp_path, older_than_days=None, max_bytes=1500, dry_run=False)
    assert not (tmp_path / "images/entry1").exists() and (tmp_path / "builds/entry2").exists()


def test_clean_dry_run_removes_nothing(tmp_path):
    (tmp_path / "kernels/old").mkdir(parents=True)
    os.utime(tmp_path / "kernels/old", (0, 0))
    lines = clean(tmp_path, older_than_days=1, max_bytes=None, dry_run=True)
    assert lines[0].startswith("would remove") and (tmp_path / "kernels/old").exists()


def test_list_names_every_config_kind():
    text = list_configs()
    for section in ("arches:", "kernels:", "series:", "scenarios:"):
        assert section in text
    assert "x86_64" in text and "dying-memcg" in text


def test_report_json_says_started_in_rfc3339_and_null_for_what_a_directory_series_lacks(tmp_path):
    from datetime import datetime

    from harness.core.progress import Progress
    from harness.run.plan import make_plan
    from harness.run.session import _meta
    plan = make_plan(kernel="linux-5.10", arches="x86_64", cache=tmp_path, progress=Progress(live=False))
    meta = _meta(plan, tmp_path)
    assert datetime.fromisoformat(meta.started).utcoffset().total_seconds() == 0
    assert meta.started.endswith("+00:00")                          # RFC 3339, not strftime's +0000
    assert meta.series.origin.startswith("dir ") and meta.series.origin_sha256 is None
    assert meta.series.base_commit is None


def test_report_verb_prints_and_writes_only_when_asked(tmp_path, capsys):
    import shutil

    from harness import REPO_ROOT
    from harness.cli import main
    run = tmp_path / "run"
    shutil.copytree(REPO_ROOT / "tests" / "golden" / "run", run)
    assert main(["report", str(run)]) == 0
    out = capsys.readouterr().out
    # a test failing some runs on both kernels: FLAKY
    assert out.splitlines()[-1] == "Result: 9/10 rows as expected; not: x86_64 cgroup-selftests FLAKY"
    assert not (run / "summary.txt").exists()                       # printing writes nothing
    assert main(["report", str(run), "--format", "junit"]) == 0
    assert ET.fromstring(capsys.readouterr().out).get("tests") == "90"
    assert main(["report", str(run), "--format", "md", "--write"]) == 0
    assert capsys.readouterr().out == (run / "summary.md").read_text()
    assert (run / "summary.txt").is_file() and (run / "junit.xml").is_file()


def test_list_shows_a_first_sentence_whole_and_says_when_more_follows():
    from harness.run.doctor import first_sentence
    assert first_sentence("A task, moved out (guest-scripts/kstack-pin.c says why). More.") == (
        "A task, moved out (guest-scripts/kstack-pin.c says why) ...")
    assert first_sentence("One sentence only.") == "One sentence only"
    assert "(guest-scripts/kstack-pin.c says why)" in list_configs()


def _split_golden_run(tmp_path):
    """The fixed report.json of a real A/B (both arches) split as two CI jobs, one per arch,
    would have written it."""
    import json
    import shutil

    from harness import REPO_ROOT
    src = REPO_ROOT / "tests" / "golden" / "run"
    data = json.loads((src / "report.json").read_text())
    dirs = []
    for arch in ("x86_64", "arm64"):
        out = tmp_path / arch
        out.mkdir()
        runs = [r for r in data["runs"] if r["arch"] == arch]
        (out / "report.json").write_text(json.dumps({**data, "runs": runs}))
        for r in runs:
            if (src / f"{arch}-{r['variant']}").is_dir():
                shutil.copytree(src / f"{arch}-{r['variant']}", out / f"{arch}-{r['variant']}")
        dirs.append(out)
    return src, dirs


def test_merge_of_one_job_per_arch_is_the_table_of_one_run(tmp_path):
    from harness.output.report import merge
    from harness.verdict.table import rows
    src, dirs = _split_golden_run(tmp_path)
    meta, runs = merge(dirs, tmp_path / "merged")
    whole = load(src)[1]
    assert [(r.arch, r.scenario, r.verdict, r.cell(r.base), r.cell(r.patched)) for r in rows(runs)] == \
           [(r.arch, r.scenario, r.verdict, r.cell(r.base), r.cell(r.patched)) for r in rows(whole)]
    table = write(tmp_path / "merged", meta, runs)
    # the golden run's x86_64 test_memcg_sock failed some runs on both kernels: FLAKY, not a pass
    assert len(table) == 10 and [r.where for r in table if not r.ok] == ["x86_64 cgroup-selftests"]
    assert (tmp_path / "merged" / "arm64-base" / "dying-memcg.out").is_file()   # the logs came along
    assert "kharness merge" in meta.command


def test_merge_refuses_a_conflict_or_another_base_naming_both_runs(tmp_path):
    import json

    import pytest

    from harness.core.errors import HarnessError
    from harness.output.report import merge
    _, (x86, arm) = _split_golden_run(tmp_path)
    with pytest.raises(HarnessError, match=f"x86_64/base/default dying-memcg is in both {x86} and {x86}"):
        merge([x86, x86], tmp_path / "m1")
    data = json.loads((arm / "report.json").read_text())
    data["kernel"]["version"] = "5.10.263"
    (arm / "report.json").write_text(json.dumps(data))
    with pytest.raises(HarnessError, match=rf"{arm} tested linux-5.10 5.10.263 .*{x86} linux-5.10 5.10.262 .*not one A/B"):
        merge([x86, arm], tmp_path / "m2")


def test_a_rerun_replaces_its_scenarios_and_the_merged_command_says_so(tmp_path):
    import json

    from harness.output.report import merge
    from harness.verdict.table import rows
    _, (x86, arm) = _split_golden_run(tmp_path)
    again = tmp_path / "again"
    again.mkdir()
    data = json.loads((x86 / "report.json").read_text())
    for r in data["runs"]:
        r["scenarios"] = [s for s in r["scenarios"] if s["scenario"] == "dying-memcg"]
        for s in r["scenarios"]:
            s["metrics"] = {**s["metrics"], "after": s["metrics"]["after"] + 7}
    (again / "report.json").write_text(json.dumps(data))
    meta, runs = merge([x86, arm], tmp_path / "merged", reruns=(again,))
    seed = [r for r in rows(runs) if r.arch == "x86_64" and r.scenario == "dying-memcg"]
    assert len(seed) == 1   # replaced, not doubled
    before = [r for r in rows(merge([x86, arm], tmp_path / "m0")[1]) if r.arch == "x86_64" and r.scenario == "dying-memcg"]
    assert seed[0].patched.metrics["after"] == before[0].patched.metrics["after"] + 7
    assert meta.command.endswith(f"--rerun {again}")
