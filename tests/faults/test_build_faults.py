"""Rows: a build error, and a build interrupted by SIGTERM. Real make, on the real tree.

Each uses a one-line patch to mm/memcontrol.c, so the build in the shared build directory
recompiles that file (and what the work tree's previous checkout left different) and links:
seconds, not a kernel build from scratch, each under the machine's build lock as any build.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
from pathlib import Path

import pytest

from harness.config import load_scenario
from harness.core.cache import cache_root, locked
from harness.series.patches import load_patch_dir
from harness.verdict.kinds import ERROR, STILL_BROKEN, result_verdict
from harness.verdict.results import KernelId

from .conftest import (
    artifacts,
    descendants,
    half_written,
    kharness,
    report,
    session_for,
    start_kharness,
    stop,
    survivors,
    wait_until,
)

pytestmark = [pytest.mark.faults, pytest.mark.boot, pytest.mark.slow,
              pytest.mark.usefixtures("build_slot")]


def one_line_patch(directory: Path, subject: str, line: str) -> Path:
    """A series of one patch adding ``line`` as line 2 of mm/memcontrol.c."""
    directory.mkdir()
    (directory / "0001-mm-memcontrol-fault.patch").write_text(f"""\
From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
From: Fault Injector <faults@localhost>
Date: Fri, 1 Jan 2021 00:00:00 +0000
Subject: [PATCH] {subject}

---
 mm/memcontrol.c | 1 +
 1 file changed, 1 insertion(+)

diff --git a/mm/memcontrol.c b/mm/memcontrol.c
--- a/mm/memcontrol.c
+++ b/mm/memcontrol.c
@@ -1,3 +1,4 @@
 // SPDX-License-Identifier: GPL-2.0-or-later
+{line}
 /* memcontrol.c - Memory Controller
  *
--
2.39.2
""")
    return directory


def kernels(cache: Path) -> list[str]:
    return [a for a in artifacts(cache) if a.startswith("kernels/")]


def test_build_error_is_an_error_quoting_the_first_compiler_error(tmp_path, x86):
    series = load_patch_dir(one_line_patch(tmp_path / "series", "mm: memcontrol: does not compile",
                                           "int kharness_fault = ;"))
    before, stale = kernels(cache_root()), half_written(cache_root())
    with session_for(x86, tmp_path / "run", series=series, variants=("patched",)) as session:
        result = session.run_scenario(KernelId(x86.name, "patched"), load_scenario("dying-memcg"))
        (record,) = session.records()
    log = tmp_path / "run" / "x86_64-patched" / "build.log"
    assert result_verdict(result) == ERROR
    # the first error of the log, not the cascade after it (gcc quotes with ‘’ in UTF-8 locales)
    assert re.fullmatch(r"build: make failed \(exit 2\): \S*/mm/memcontrol\.c:2:22: error: expected "
                        rf"expression before [‘']?;[’']? token \(see {re.escape(str(log))}\)",
                        result.error), result.error
    assert result.log == str(log) and record.error == result.error
    assert "mm/memcontrol.c:2:22: error: expected expression" in log.read_text()
    assert kernels(cache_root()) == before          # nothing under a final kernel key
    assert half_written(cache_root(), stale) == []


def test_build_interrupted_by_sigterm_leaves_no_make_and_no_kernel_then_builds_cleanly(tmp_path):
    patches = one_line_patch(tmp_path / "series", "mm: memcontrol: a comment",
                             "/* kharness fault matrix: a build interrupted half-way */")
    # the series claims the bug (--fixes): a comment leaves it, so the rebuilt kernel is judged
    # STILL-BROKEN (a directory of patches claims nothing by itself: must not regress)
    run = ("run", "--arch", "x86_64", "--variant", "patched", "--series", str(patches), "--scenario", "dying-memcg",
           "--iterations", "50", "--fixes", "dying-memcg")
    cache = cache_root()
    before, stale = kernels(cache), half_written(cache)
    log = tmp_path / "interrupted.log"
    proc = start_kharness(*run, "--results", str(tmp_path / "interrupted"), log=log)
    try:
        def compiling() -> bool:
            names = [Path(_argv0(p)).name for p in descendants(proc.pid)]
            return "make" in names and any(n in ("cc1", "ld", "objcopy") for n in names)

        assert wait_until(compiling, 300, interval=0.05), f"make never compiled: {log.read_text()}"
        children = descendants(proc.pid)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=90) == 130
    finally:
        stop(proc)
    assert log.read_text().rstrip().endswith("kharness: interrupted")
    assert wait_until(lambda: not survivors(children), 30), survivors(children)
    assert kernels(cache) == before and half_written(cache, stale) == []

    proc = kharness(*run, "--results", str(tmp_path / "again"))
    record: dict = {}
    try:
        (record,) = report(tmp_path / "again")["runs"]
        # A comment changes nothing the bug depends on: "still broken" (exit 1), not an ERROR.
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert record["error"] is None and record["build_cached"] is False
        assert record["objects_compiled"] >= 1
        assert record["scenarios"][0]["verdict"] == STILL_BROKEN
        assert record["scenarios"][0]["metrics"]["delta"] == 50
        assert (cache / "kernels" / record["kernel_key"] / "image").is_file()
    finally:  # the kernel is this test's own: the next suite run must build it again
        if record.get("kernel_key") and f"kernels/{record['kernel_key']}" not in before:
            with locked(cache / "kernels" / f"{record['kernel_key']}.lock"):   # as every writer
                shutil.rmtree(cache / "kernels" / record["kernel_key"], ignore_errors=True)


def _argv0(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0", 1)[0].decode(errors="replace")
    except OSError:
        return ""
