"""kharness kcidb: a run as KCIDB data that KernelCI's own schema package accepts."""

from __future__ import annotations

import json
import shutil
import subprocess

import kcidb_io
import pytest

from harness import REPO_ROOT
from harness.cli import main
from harness.core.errors import HarnessError
from harness.core.progress import Progress
from harness.output.kcidb import kcidb, patchset_hash
from harness.output.report import load
from harness.output.runreport import RunReport
from harness.run.plan import make_plan
from harness.run.session import _meta

GOLDEN = REPO_ROOT / "tests" / "golden" / "run"


def test_a_real_ab_run_validates_against_kcidb_v5_3(tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(GOLDEN, run)
    assert main(["kcidb", str(run), "--origin", "my_ci"]) == 0
    data = json.loads(capsys.readouterr().out)
    kcidb_io.schema.V5_3.validate(data)                       # raises on anything invalid
    assert data["version"] == {"major": 5, "minor": 3}
    base, patched = data["checkouts"]
    assert base["patchset_hash"] == "" and len(patched["patchset_hash"]) == 64
    assert {b["architecture"] for b in data["builds"]} == {"x86_64", "arm64"} and len(data["builds"]) == 4
    fix = [t for t in data["tests"] if t["path"] == "kharness.dying-memcg"]
    assert sorted((t["misc"]["variant"], t["status"], t["misc"]["row_verdict"]) for t in fix) == [
        ("base", "PASS", "FIXED"), ("base", "PASS", "FIXED"), ("patched", "PASS", "FIXED"), ("patched", "PASS", "FIXED")]
    selftests = [t for t in data["tests"] if t["path"].startswith("kharness.cgroup-selftests.")]
    assert selftests and all(t["status"] in ("PASS", "FAIL", "SKIP", "DONE") for t in selftests)
    # the collection itself on a kernel: FAIL when any of its tests failed there (a parent test's
    # status never says PASS over a failed child)
    for parent in (t for t in data["tests"] if t["path"] == "kharness.cgroup-selftests"):
        children = [t["status"] for t in selftests if t["build_id"] == parent["build_id"]]
        assert parent["status"] == ("FAIL" if "FAIL" in children else "PASS"), parent
    assert all(t["id"].startswith("my_ci:") for t in data["tests"])
    assert len({t["id"] for t in data["tests"]}) == len(data["tests"])


def test_patchset_hash_is_kcidbs_shell_recipe_over_the_patch_files(tmp_path):
    """'sha256sum *.patch | cut -c-64 | sha256sum | cut -c-64', as KCIDB's schema defines it."""
    plan = make_plan(kernel="linux-5.10", arches="x86_64", cache=tmp_path, progress=Progress(live=False))
    meta = _meta(plan, tmp_path)
    patches = REPO_ROOT / "kernel-patches" / "obj-cgroup-kmem"
    recipe = subprocess.run("sha256sum 000[1-9]*.patch | cut -c-64 | sha256sum | cut -c-64", shell=True,
                            cwd=patches, capture_output=True, text=True, check=True).stdout.strip()
    assert patchset_hash(meta) == recipe


def test_an_origin_kcidb_would_refuse_is_an_error():
    meta, runs = load(GOLDEN)
    with pytest.raises(HarnessError, match="--origin 'My CI': KCIDB origins are lower-case"):
        kcidb(RunReport.of(GOLDEN, meta, runs, origin="My CI"))
