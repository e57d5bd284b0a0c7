"""Where reviewers look: b4's external check JSON for a run, found from the mail b4 hands over,
and a Tested-by: block in summary.txt when every row is as it must be."""

from __future__ import annotations

import io
import json
import os
import shutil
import sys

from harness import REPO_ROOT
from harness.cli import main
from harness.output.b4check import subject_of
from harness.output.render import summary
from harness.output.report import load
from harness.output.runreport import RunReport

GOLDEN_RUN = REPO_ROOT / "tests" / "golden" / "run"
MAIL = (b"From: Dev <dev@example.org>\nMessage-Id: <1@example.org>\nSubject: [PATCH v3 2/5]\n"
        b" mm: memcontrol: make page_memcg{_rcu} only applicable for non-kmem page\n\nbody\n")


def b4_check(monkeypatch, capsys, results, mail: bytes) -> list:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(mail)))
    assert main(["b4-check", "--results", str(results)]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_patch_of_a_tested_series_gets_its_runs_verdict_and_an_unknown_one_nothing(tmp_path, monkeypatch, capsys):
    assert subject_of(MAIL) == "mm: memcontrol: make page_memcg{_rcu} only applicable for non-kmem page"
    shutil.copytree(GOLDEN_RUN, tmp_path / "20261201-000000")
    (result,) = b4_check(monkeypatch, capsys, tmp_path, MAIL)
    # the golden run's one row that is not as it must be is FLAKY: inconclusive, never a pass
    assert result["tool"] == "kharness" and result["status"] == "warn"
    assert result["summary"].startswith("9/10 rows as expected") and "FLAKY" in result["summary"]
    assert "dying-memcg" in result["details"]
    cover = MAIL.replace(b"[PATCH v3 2/5]\n mm: memcontrol: make page_memcg{_rcu} only applicable for non-kmem page",
                         b"[PATCH v3 0/5] Use obj_cgroup APIs to charge kmem pages")
    assert b4_check(monkeypatch, capsys, tmp_path, cover)[0]["status"] == "warn"
    other = MAIL.replace(b"mm: memcontrol: make page_memcg", b"net: something else")
    assert b4_check(monkeypatch, capsys, tmp_path, other) == []


def test_every_row_as_expected_gives_a_tested_by_block_and_one_that_is_not_none(monkeypatch):
    meta, runs = load(GOLDEN_RUN)
    rr = RunReport.of(GOLDEN_RUN, meta, runs)
    assert "Tested-by:" not in summary(rr)   # a FLAKY row
    good = RunReport([r for r in rr.table if r.ok], runs, meta, GOLDEN_RUN)
    monkeypatch.setenv("KHARNESS_TESTED_BY", "A Tester <tester@example.org>")
    text = summary(good)
    assert "\nTested-by: A Tester <tester@example.org>\n" in text
    assert f"sha256 {meta.series.sha256[:16]}" in text.replace("\n  ", " ")


def test_no_tested_by_and_no_pass_for_a_kernel_that_failed_or_a_variant_judged_alone(monkeypatch):
    from dataclasses import replace

    from harness.output.b4check import b4_check as check
    meta, runs = load(GOLDEN_RUN)
    rr = RunReport.of(GOLDEN_RUN, meta, runs)
    good = [r for r in rr.table if r.ok]
    assert json.loads(check(RunReport(good, runs, meta, GOLDEN_RUN)))[0]["status"] == "pass"
    # a kernel of the run failed to build, with no row of its own (a profile that runs nothing)
    failed = [*runs, replace(runs[0], profile="debug", error="build: make exited 2")]
    rr_failed = RunReport(good, failed, meta, GOLDEN_RUN)
    assert "Tested-by:" not in summary(rr_failed)
    result = json.loads(check(rr_failed))[0]
    assert result["status"] == "fail" and "build: make exited 2" in result["summary"]
    # the patched kernel alone: nothing compared, never a pass
    alone = [replace(r, base=None) for r in good]
    assert "Tested-by:" not in summary(RunReport(alone, runs, meta, GOLDEN_RUN))
    result = json.loads(check(RunReport(alone, runs, meta, GOLDEN_RUN)))[0]
    assert result["status"] == "warn" and "nothing compared" in result["summary"]


def test_a_later_version_of_a_tested_patch_under_the_same_subject_is_not_given_its_verdict(tmp_path, monkeypatch, capsys):
    from harness.series.patches import diff_digest
    patch = REPO_ROOT / "kernel-patches" / "obj-cgroup-kmem" / "0002-mm-memcontrol-make-page_memcg-_rcu-only-applicable-f.patch"
    run = tmp_path / "20261201-000000"
    shutil.copytree(GOLDEN_RUN, run)
    report = json.loads((run / "report.json").read_text())
    report["series"]["patches"][1]["diff_sha256"] = diff_digest(patch.read_bytes())
    (run / "report.json").write_text(json.dumps(report))
    same = patch.read_bytes()   # the tested patch as a list would send it: the same diff
    assert diff_digest(same.replace(b"\n-- \n", b"\n-- \nA list's footer\n")) == diff_digest(same)
    from email.message import EmailMessage
    for encoding in ("quoted-printable", "base64"):   # as a list may re-encode it
        mail = EmailMessage()
        mail["Subject"] = "[PATCH v3 2/5] x"
        mail.set_content(same.decode().split("\n\n", 1)[1], cte=encoding)
        assert diff_digest(bytes(mail)) == diff_digest(same)
    assert b4_check(monkeypatch, capsys, tmp_path, same)[0]["status"] == "warn"   # the run's own verdict
    v2 = same.replace(b"\n+", b"\n+ ", 1)
    (result,) = b4_check(monkeypatch, capsys, tmp_path, v2)
    assert result["status"] == "warn" and result["summary"].startswith("not tested: the run")
    assert "another version of this mail's series" in result["summary"]
    assert b4_check(monkeypatch, capsys, tmp_path, MAIL)[0]["summary"].startswith("9/10 rows")   # no diff: by subject
    # an older run that tested exactly v2 answers for it
    older = tmp_path / "20261101-000000"
    shutil.copytree(run, older)
    report["series"]["patches"][1]["diff_sha256"] = diff_digest(v2)
    (older / "report.json").write_text(json.dumps(report))
    os.utime(older / "report.json", (1, 1))
    assert b4_check(monkeypatch, capsys, tmp_path, v2)[0]["summary"].startswith("9/10 rows")
    # a cover letter of another version than the run's series (from mail: "mbox PATH v1")
    report["series"]["origin"] = "mbox /tmp/series.mbox v1"
    (run / "report.json").write_text(json.dumps(report))
    (older / "report.json").unlink()
    cover = MAIL.replace(b"[PATCH v3 2/5]\n mm: memcontrol: make page_memcg{_rcu} only applicable for non-kmem page",
                         b"[PATCH v2 0/5] Use obj_cgroup APIs to charge kmem pages")
    assert b4_check(monkeypatch, capsys, tmp_path, cover)[0]["summary"].startswith("not tested")
    assert b4_check(monkeypatch, capsys, tmp_path, cover.replace(b"v2 0/5", b"0/5"))[0]["summary"].startswith("9/10")


def test_a_diff_line_that_reads_like_a_signature_is_part_of_the_diff():
    from harness.series.patches import diff_digest
    patch = (b"Subject: [PATCH] doc\n\nbody\n---\ndiff --git a/d.rst b/d.rst\n--- a/d.rst\n+++ b/d.rst\n"
             b"@@ -1,3 +1,2 @@\n a\n-- \n b\n-- \n2.39.2\n")
    other = patch.replace(b" b\n-- \n2.39", b" c\n-- \n2.39").replace(b"@@ -1,3 +1,2 @@\n a\n-- \n b", b"@@ -1,3 +1,2 @@\n a\n-- \n c")
    assert diff_digest(patch) and diff_digest(patch) != diff_digest(other)   # the "-- " removed is a line of it
    assert diff_digest(patch) == diff_digest(patch.replace(b"2.39.2\n", b"2.47.0\n"))   # the signature is not
