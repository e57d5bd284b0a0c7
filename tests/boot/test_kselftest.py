"""A series no scenario of ours was written for, judged by its tree's own tests: the kselftest
kind, chosen by the series' paths, run by the tree's run_kselftest.sh in real guests, base
against patched. The series (tests/boot/data/fanotify-mnt-einval) breaks fanotify on purpose:
fanotify_mark() refuses FAN_MNT_DETACH, which the tree's mount-notify tests mark. The row must be
REGRESSED and name the tests; the tests the tiny kernels cannot run (USER_NS) fail on both
kernels and are named as known, never hidden. x86_64 in `make test` (the 7.2 base kernel is
test_mainline's; the patched one rebuilds one object); arm64 with `make test-extended`."""

from __future__ import annotations

import pytest

from harness import REPO_ROOT
from harness.core.cache import cache_root
from harness.core.progress import Progress
from harness.run.plan import make_plan
from harness.run.session import Session
from harness.verdict.kinds import REGRESSED
from harness.verdict.results import KernelId
from harness.verdict.table import rows

SERIES = REPO_ROOT / "tests" / "boot" / "data" / "fanotify-mnt-einval"
pytestmark = [pytest.mark.boot, pytest.mark.mainline, pytest.mark.base, pytest.mark.patched]


@pytest.mark.parametrize("arch", [pytest.param("x86_64", marks=pytest.mark.x86_64),
                                  pytest.param("arm64", marks=[pytest.mark.arm64, pytest.mark.extended])])
def test_a_series_that_breaks_fanotify_is_regressed_by_the_trees_own_tests(arch, tmp_path):
    plan = make_plan(series=str(SERIES), kernel="linux-7.2", arches=arch, cache=cache_root(),
                     progress=Progress(live=False))
    # chosen by its path (fs/notify/): the tree's fanotify tests, nothing of ours
    assert [(s.name, s.kind) for s in plan.scenarios] == [("kselftest-filesystems-mount-notify", "kselftest")]
    s = Session(plan, cache_root(), tmp_path, Progress(live=False))
    try:
        results = {v: s.run_scenario(KernelId(arch, v), plan.scenarios[0]) for v in ("base", "patched")}
    finally:
        s.close()
    base, patched = results["base"], results["patched"]
    assert base.error is None and patched.error is None, (base.error, patched.error)
    # the base passes the tests the series breaks: each program's own result and its subtests
    assert base.tests["mount-notify_test"] == "pass" and base.tests["mount-notify_test:fanotify.bind"] == "pass"
    assert patched.tests["mount-notify_test"] == "fail"
    (row,) = rows(s.records())
    assert row.verdict == REGRESSED
    notes = "\n".join(row.notes())
    assert f"{arch} kselftest-filesystems-mount-notify: regressed mount-notify_test:fanotify.bind: pass on base" in notes
    assert "known to fail on this base (its kernel config's known_failures): mount-notify_test_ns" in notes
