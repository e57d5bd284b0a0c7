"""report.json round-trips; junit.xml tells failures from errors; summary.md is a pasteable table."""

import os
import time
from xml.etree import ElementTree as ET

from harness.doctor import clean, list_configs
from harness.report import load, write
from harness.results import RunMeta, RunRecord, ScenarioResult


def result(variant, held=None, error=None, delta=None):
    return ScenarioResult(arch="arm64", variant=variant, scenario="dying-memcg", iterations=500,
                          expectation="delta <= 5", before=1, after=1 + (delta or 0), delta=delta,
                          held=held, error=error)


META_JSON = {"kharness": "0", "kernel": {"version": "5.10.262", "origin": "test"},
             "series": {"title": "Use obj_cgroup APIs to charge kmem pages"}}
META = RunMeta.from_json(META_JSON)


def test_report_round_trips_and_renders(tmp_path):
    runs = [RunRecord("arm64", "base", timings={"boot": 1.5}, scenarios=(result("base", True, delta=500),)),
            RunRecord("arm64", "patched", scenarios=(result("patched", True, delta=0),))]
    write(tmp_path, META, runs)
    meta, loaded = load(tmp_path)
    assert loaded == runs and meta.kernel.version == "5.10.262" and meta == META
    md = (tmp_path / "summary.md").read_text()
    assert "| arm64 | dying-memcg | 1 -> 501 (+500) | 1 -> 1 (+0) | FIXED |" in md
    assert md.startswith("**Use obj_cgroup APIs to charge kmem pages** on Linux 5.10.262")


def test_a_schema_1_report_still_renders(tmp_path):
    """Before schema 2 there was no profile, kind, metrics or tests: their defaults fill in."""
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
    table = write(tmp_path, meta, runs)
    assert [r.verdict for r in table] == ["FIXED"]


def test_junit_distinguishes_failure_from_error(tmp_path):
    runs = [RunRecord("arm64", "base", scenarios=(result("base", False, delta=0),)),
            RunRecord("arm64", "patched", error="boot: deadline",
                      scenarios=(result("patched", error="boot: deadline"),))]
    (tmp_path / "arm64-base").mkdir()
    (tmp_path / "arm64-base" / "dying-memcg.out").write_text("memory 1 1 1\n")
    write(tmp_path, META, runs)
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "1")
    base, patched = suite.findall("testcase")
    assert base.find("failure").get("message").startswith("NOT-REPRODUCED")
    assert base.find("system-out").text == "memory 1 1 1"
    assert patched.find("error").get("message") == "boot: deadline"


def test_junit_attaches_the_console_of_the_guest_the_scenario_ran_on(tmp_path):
    """A scenario with a kernel command line of its own runs on a guest of its own, whose
    console is console-<cmdline>.log: that one's tail goes with the testcase."""
    v2 = ScenarioResult(arch="arm64", variant="base", scenario="dying-memcg-v2", iterations=500,
                        expectation="", cmdline="cgroup_no_v1=memory", error="guest: kernel reported: BUG:")
    logs = tmp_path / "arm64-base"
    logs.mkdir()
    (logs / "console.log").write_text("the v1 guest's console\n")
    (logs / "console-cgroup_no_v1_memory.log").write_text("BUG: the v2 guest's console\n")
    write(tmp_path, META, [RunRecord("arm64", "base", scenarios=(v2, result("base", True, delta=500)))])
    cases = ET.parse(tmp_path / "junit.xml").getroot().findall("testcase")
    assert [c.find("system-err").text for c in cases] == ["BUG: the v2 guest's console",
                                                          "the v1 guest's console"]


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
