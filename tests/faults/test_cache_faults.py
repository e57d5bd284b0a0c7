"""Rows: a download that is not what its sha256 says, a cache on a full disk, a patch that does
not apply. Each is an ERROR with its reason, and nothing is left under a final cache key.

Covered already by the unit tests, and not repeated here: a sha256 mismatch, a truncated download
and an HTTP 404 in-process (tests/unit/test_source.py::test_sha_mismatch_is_refused_and_leaves_
nothing_under_the_final_key, ::test_truncated_download_is_refused, ::test_http_404_is_refused);
tarballs with `..`, absolute, device or symlink-out members (::test_hostile_member_is_refused_and_
leaves_nothing_under_the_final_key, 10 cases); a patch that does not apply to a small tree
(tests/unit/test_series.py::test_patch_that_does_not_apply_is_named, ::test_am_failure_names_
patch_and_file). The rows below add the command line's exit status, a real full disk, and the
real kernel tree.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from harness.config import KernelConfig, SourceSpec
from harness.core.cache import cache_root, locked
from harness.core.errors import HarnessError
from harness.core.progress import Progress
from harness.run.session import Session
from harness.series.patches import load_patch_dir
from harness.sources.source import fetch_source
from harness.verdict.kinds import ERROR, result_verdict
from harness.verdict.results import KernelId

from .conftest import artifacts, kharness, plan_for, session_for

pytestmark = pytest.mark.faults

RUN = ("run", "--arch", "x86_64", "--variant", "base")


def url_kernel(checkout: Path, url: str, sha256: str) -> None:
    """The checkout's linux-5.10 now comes from ``url`` only."""
    path = checkout / "configs/kernels/linux-5.10.yaml"
    config = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**config, "sources": [{"type": "url", "url": url, "sha256": sha256}]}))


def only_error(run_dir: Path) -> str:
    """The one scenario result of a run's report.json, which must be an ERROR: its text."""
    (record,) = json.loads((run_dir / "report.json").read_text())["runs"]
    (result,) = record["scenarios"]
    assert result["verdict"] == ERROR and "delta" not in result["metrics"]
    assert record["error"] == result["error"]
    return result["error"]


def test_download_with_the_wrong_sha256_is_an_error_and_exit_2(checkout, web, tmp_path):
    base, files = web
    files["/linux-5.10.99.tar.xz"] = b"not the tarball the config names\n"
    url_kernel(checkout, f"{base}/linux-5.10.99.tar.xz", "a" * 64)
    cache, results = tmp_path / "cache", tmp_path / "results"
    proc = kharness(*RUN, "--results", str(results), cwd=checkout, env={"KHARNESS_CACHE": str(cache)})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    got = hashlib.sha256(files["/linux-5.10.99.tar.xz"]).hexdigest()
    assert only_error(next(results.iterdir())) == (
        f"source: no source of linux-5.10 worked: 1/1 (url): {base}/linux-5.10.99.tar.xz: sha256 "
        f"mismatch (expected {'a' * 64}, got {got})")
    assert "ERROR" in proc.stdout
    # ... and says so when it runs as root, which it does not need
    assert ("kharness: running as root" in proc.stderr) == (os.geteuid() == 0)
    assert artifacts(cache) == []
    assert not list((cache / "downloads").glob(".*.part"))


def test_download_into_a_full_cache_is_an_error_saying_so_and_leaves_nothing(checkout, web,
                                                                             tiny_disk, tmp_path):
    base, files = web
    body = os.urandom(3 << 20)   # 3 MiB into 1 MiB
    files["/linux-5.10.99.tar.xz"] = body
    url_kernel(checkout, f"{base}/linux-5.10.99.tar.xz", hashlib.sha256(body).hexdigest())
    results = tmp_path / "results"
    proc = kharness(*RUN, "--results", str(results), cwd=checkout,
                    env={"KHARNESS_CACHE": str(tiny_disk)})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert only_error(next(results.iterdir())) == (
        "source: no source of linux-5.10 worked: 1/1 (url): No space left on device")
    assert artifacts(tiny_disk) == []
    assert not list((tiny_disk / "downloads").glob(".*.part"))


def _tarball(path: Path, size: int) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in (("linux-5.10.99/Makefile", b"VERSION = 5\nPATCHLEVEL = 10\nSUBLEVEL = 99\n"),
                           ("linux-5.10.99/big.bin", os.urandom(size))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_extraction_into_a_full_cache_is_an_error_saying_so_and_leaves_nothing(tiny_disk, tmp_path):
    tarball = _tarball(tmp_path / "linux-5.10.99.tar.gz", 2 << 20)
    kernel = KernelConfig("linux-test", "5.10", (SourceSpec(type="path", path=str(tarball)),), (), {})
    with pytest.raises(HarnessError) as e:
        fetch_source(kernel, tiny_disk, Progress(verbosity=0))
    assert e.value.stage == "source"
    assert e.value.message.startswith("no source of linux-test worked: 1/1 (path): "
                                      "linux-5.10.99.tar.gz: tar failed: tar: linux-5.10.99/big.bin: "
                                      "Wrote only ")
    assert e.value.message.endswith(f"(No space left on device: {tiny_disk / 'sources'})")
    assert artifacts(tiny_disk) == []


def test_workspace_on_a_full_disk_is_an_error_of_its_stage_not_a_traceback(tiny_disk, tmp_path, x86):
    tree = tmp_path / "linux-5.10.99"
    tree.mkdir()
    (tree / "Makefile").write_text("VERSION = 5\nPATCHLEVEL = 10\nSUBLEVEL = 99\n")
    (tree / "big.bin").write_bytes(os.urandom(2 << 20))
    plan = plan_for(x86)
    kernel = replace(plan.kernel, name="linux-test", sources=(SourceSpec(type="path", path=str(tree)),))
    session = Session(replace(plan, kernel=kernel), tiny_disk, tmp_path / "run", Progress(verbosity=0))
    result = session.run_scenario(KernelId(x86.name, "base"), plan.scenarios[0])
    assert result_verdict(result) == ERROR
    assert re.fullmatch(rf"series: No space left on device: {tiny_disk}/git/\.\w+\.\w+\.tmp/work/big.bin",
                        result.error), result.error
    assert session.records()[0].error == result.error
    assert artifacts(tiny_disk) == []   # the half-made workspace is gone


FAULTY_PATCH = """\
From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
From: Fault Injector <faults@localhost>
Date: Fri, 1 Jan 2021 00:00:00 +0000
Subject: [PATCH] mm: memcontrol: a hunk whose context is not there

---
 mm/memcontrol.c | 2 +-
 1 file changed, 1 insertion(+), 1 deletion(-)

diff --git a/mm/memcontrol.c b/mm/memcontrol.c
--- a/mm/memcontrol.c
+++ b/mm/memcontrol.c
@@ -3094,3 +3094,3 @@ static void drain_obj_stock(struct memcg_stock_pcp *stock)
 	struct obj_cgroup *old = kharness_fault_no_such_line;
-	kharness_fault_no_such_line_either();
+	kharness_fault_replaced();
 	kharness_fault_nor_this_one();
--
2.39.2
"""


@pytest.mark.boot   # the real kernel tree from the cache (no build, no boot)
def test_patch_that_does_not_apply_to_the_kernel_names_the_patch_and_the_hunk(tmp_path, x86):
    patches = tmp_path / "series"
    patches.mkdir()
    (patches / "0001-mm-memcontrol-a-hunk-whose-context-is-not-there.patch").write_text(FAULTY_PATCH)
    series = load_patch_dir(patches)
    with session_for(x86, tmp_path / "run", series=series, variants=("patched",)) as session:
        result = session.run_scenario(KernelId(x86.name, "patched"), plan_for(x86).scenarios[0])
    log = tmp_path / "run" / "series.log"
    assert result_verdict(result) == ERROR
    assert result.error == ("series: patch 0001 'mm: memcontrol: a hunk whose context is not there' "
                            f"does not apply (at mm/memcontrol.c:3094) (see {log})")
    assert "Patch failed at 0001" in log.read_text()
    # the workspace is left as it was: git am aborted, no ref for the series (it asserted on
    # git/x before, a path nothing creates); under each workspace's lock, as its writers take it
    for work in (cache_root() / "git").glob("*/work"):
        with locked(work.parent.parent / f"{work.parent.name}.lock"):
            assert not (work / ".git" / "rebase-apply").exists(), work
            assert not (work / ".git" / "refs" / "kharness" / "series" / series.digest[:32]).exists()
