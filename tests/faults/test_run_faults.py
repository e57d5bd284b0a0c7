"""Rows through `kharness run`, as a user runs it: a guest script that fails (exit status 2), a run
interrupted by SIGINT or SIGTERM while QEMU boots, two runs at once on one cache, an A/B run whose
two guests run side by side (--jobs 2), completed and interrupted.

With the cache warm no make runs; a changed config would start a build, which takes the
machine's build lock as any build does.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from harness.core.cache import cache_root
from harness.verdict.kinds import ERROR, FIXED, REPRODUCED

from .conftest import (
    descendants,
    half_written,
    kharness,
    our_qemus,
    report,
    start_kharness,
    stop,
    survivors,
    wait_until,
)

pytestmark = [pytest.mark.faults, pytest.mark.boot, pytest.mark.usefixtures("build_slot")]

RUN = ("run", "--arch", "x86_64", "--variant", "base")
RUN50 = (*RUN, "--iterations", "50")
# The A/B runs whose two guests must be up at once: the base runs the full 500 iterations (~25 s
# under TCG), so that it is still running when the patched kernel's guest comes up (the patched
# kernel's config and cache lookup take ~13 s: 50 iterations were over before).
AB_BOTH_UP = ("run", "--arch", "x86_64", "--scenario", "dying-memcg", "--jobs", "2")


def test_failing_guest_script_exits_2_with_its_stderr_in_the_report(checkout, tmp_path):
    (checkout / "guest-scripts/fails.sh").write_text(
        "#!/bin/sh\necho 'creating cgroups' >&2\n"
        "echo 'mkdir: cannot create directory kmem_test: Operation not permitted' >&2\nexit 7\n")
    (checkout / "configs/scenarios/fails.yaml").write_text(
        "name: fails\nscript: fails.sh\ninterpreter: sh\niterations: 50\n"
        "reproduced: [{min_fraction: 0.9}]\nfixed: [{max: 5}]\n")
    results = tmp_path / "results"
    proc = kharness(*RUN, "--scenario", "fails", "--results", str(results), cwd=checkout)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (run,) = report(results)["runs"]
    (result,) = run["scenarios"]
    err = next(results.iterdir()) / "x86_64-base" / "fails.err"
    assert result["verdict"] == ERROR and "delta" not in result["metrics"]
    assert result["error"] == ("scenario: fails.sh exited 7: mkdir: cannot create directory "
                               f"kmem_test: Operation not permitted (see {err})")
    assert err.read_text().startswith("creating cgroups\n")
    assert f"ERROR fails: {result['error']}" in " ".join(proc.stdout.split())   # wrapped at 80
    assert our_qemus() == []


def _rerun_gives_the_same_result(results: Path) -> None:
    """A warm-cache base run after the fault: the kernel reused, the bug reproduced as ever."""
    proc = kharness(*RUN50, "--results", str(results))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run,) = report(results)["runs"]
    (result,) = run["scenarios"]
    assert run["error"] is None and run["build_cached"] is True
    assert result["verdict"] == REPRODUCED and result["metrics"]["delta"] == 50


def _interrupt(proc, signum: int, log: Path) -> None:
    """``signum`` to a running kharness: it exits 130 within 30 s saying so, and every process
    it had started is gone 10 s later."""
    children = descendants(proc.pid)
    os.kill(proc.pid, signum)
    assert proc.wait(timeout=30) == 130
    assert log.read_text().rstrip().endswith("kharness: interrupted")
    assert wait_until(lambda: not survivors(children), 10), survivors(children)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_run_interrupted_while_qemu_boots_leaves_no_qemu_and_reruns_cleanly(signum, tmp_path):
    log, stale = tmp_path / "interrupted.log", half_written(cache_root())
    proc = start_kharness(*RUN50, "--results", str(tmp_path / "interrupted"), log=log)
    try:
        qemu = wait_until(lambda: [p for p in our_qemus() if p in descendants(proc.pid)], 120)
        assert qemu, f"QEMU never started: {log.read_text()}"
        # the guest is up: its console has more than QEMU's command line (SSH comes seconds later)
        console = lambda: [p for p in (tmp_path / "interrupted").glob("*/x86_64-base/console.log")  # noqa: E731
                           if len(p.read_text(errors="replace").splitlines()) > 1]
        assert wait_until(console, 60), f"the guest printed nothing: {log.read_text()}"
        _interrupt(proc, signum, log)
    finally:
        stop(proc)
    assert our_qemus() == []
    assert half_written(cache_root(), stale) == []
    _rerun_gives_the_same_result(tmp_path / "again")


@pytest.mark.slow
def test_two_runs_at_once_on_one_cache_both_complete_on_their_own_ports(tmp_path):
    names, stale = ("one", "two"), half_written(cache_root())
    procs = [start_kharness(*RUN50, "--results", str(tmp_path / n), log=tmp_path / f"{n}.log")
             for n in names]
    try:
        codes = [p.wait(timeout=600) for p in procs]
    finally:
        for p in procs:
            stop(p)
    assert codes == [0, 0], [(tmp_path / f"{n}.log").read_text() for n in names]
    reports = [report(tmp_path / n) for n in names]
    ports = []
    for data in reports:
        (run,) = data["runs"]
        assert run["scenarios"][0]["verdict"] == REPRODUCED
        console = (Path(data["run_dir"]) / "x86_64-base" / "console.log").read_text()
        ports.append(re.search(r"hostfwd=tcp:127\.0\.0\.1:(\d+)-:22", console).group(1))
    assert ports[0] != ports[1]
    one, two = (data["runs"][0] for data in reports)
    assert (one["kernel_key"], one["image_key"]) == (two["kernel_key"], two["image_key"])
    assert (cache_root() / "kernels" / one["kernel_key"] / "image").is_file()
    assert half_written(cache_root(), stale) == []
    assert our_qemus() == []


def _both_guests_up(proc) -> list[int]:
    return wait_until(lambda: len(q := [p for p in our_qemus() if p in descendants(proc.pid)]) >= 2 and q,
                      180)


@pytest.mark.slow
def test_ab_run_boots_base_and_patched_side_by_side(tmp_path):
    # both kernels built first: on a cold cache the patched build (minutes) outlasts the base's
    # guest, and what is asserted is the guests' concurrency, not the cache's state
    built = kharness("build", "--arch", "x86_64", "--results", str(tmp_path / "build"), timeout=1800)
    assert built.returncode == 0, built.stderr
    log = tmp_path / "ab.log"
    proc = start_kharness(*AB_BOTH_UP, "--results", str(tmp_path / "ab"), log=log)
    try:
        both = _both_guests_up(proc)
        code = proc.wait(timeout=600)
    finally:
        stop(proc)
    assert both, f"never two guests at once: {log.read_text()}"
    assert code == 0, log.read_text()
    data = report(tmp_path / "ab")
    assert data["jobs"] == 2
    assert [r["variant"] for r in data["runs"]] == ["base", "patched"]
    assert [row["verdict"] for row in data["table"]] == [FIXED]
    assert our_qemus() == []


@pytest.mark.slow
def test_ab_run_interrupted_with_two_guests_up_leaves_no_qemu(tmp_path):
    log = tmp_path / "ab.log"
    proc = start_kharness(*AB_BOTH_UP, "--results", str(tmp_path / "ab"), log=log)
    try:
        assert _both_guests_up(proc), f"never two guests at once: {log.read_text()}"
        _interrupt(proc, signal.SIGTERM, log)
    finally:
        stop(proc)
    assert our_qemus() == []
