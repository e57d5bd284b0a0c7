"""A series no scenario of ours was written for, judged by its tree's own tests, base against
patched in real guests: the kselftest kind (chosen by the series' paths, run by the tree's
run_kselftest.sh) and the KUnit kind (lib/kunit's suites at boot, read by the tree's kunit.py).
The series (tests/boot/data/fanotify-mnt-einval) breaks fanotify on purpose: fanotify_mark()
refuses FAN_MNT_DETACH, which the tree's mount-notify tests mark. Their row must be REGRESSED
and name the tests; the tests the tiny kernels cannot run (USER_NS) fail on both kernels and are
named as known, never hidden; KUnit's own suites, which the series does not touch, must show
no regression. x86_64 in `make test` (one kernel of its own: 7.2 with KUnit, mostly ccache hits
after test_mainline's; the patched one rebuilds one object); arm64 with `make test-extended`."""

from __future__ import annotations

import pytest

from harness import REPO_ROOT
from harness.core.cache import cache_root
from harness.core.progress import Progress
from harness.run.plan import make_plan
from harness.run.session import Session
from harness.verdict.kinds import NO_REGRESSION, REGRESSED
from harness.verdict.results import KernelId
from harness.verdict.table import rows

SERIES = REPO_ROOT / "tests" / "boot" / "data" / "fanotify-mnt-einval"
pytestmark = [pytest.mark.boot, pytest.mark.mainline, pytest.mark.base, pytest.mark.patched]


@pytest.mark.parametrize("arch", [pytest.param("x86_64", marks=pytest.mark.x86_64),
                                  pytest.param("arm64", marks=[pytest.mark.arm64, pytest.mark.extended])])
def test_a_series_that_breaks_fanotify_is_regressed_by_the_trees_own_tests(arch, tmp_path):
    plan = make_plan(series=str(SERIES), kernel="linux-7.2", arches=arch, cache=cache_root(),
                     progress=Progress(live=False), tests=["auto,kunit:lib/kunit,kunit:kernel/time"])
    # chosen by its path (fs/notify/): the tree's fanotify tests, nothing of ours
    assert [(s.name, s.kind) for s in plan.scenarios] == [("kselftest-filesystems-mount-notify", "kselftest"),
                                                          ("kunit-lib-kunit", "kunit"), ("kunit-kernel-time", "kunit")]
    s = Session(plan, cache_root(), tmp_path, Progress(live=False))
    try:
        results = {(v, sc.name): s.run_scenario(KernelId(arch, v), sc) for sc in plan.scenarios for v in ("base", "patched")}
    finally:
        s.close()
    base, patched = results["base", "kselftest-filesystems-mount-notify"], results["patched", "kselftest-filesystems-mount-notify"]
    assert base.error is None and patched.error is None, (base.error, patched.error)
    # the base passes the tests the series breaks: each program's own result and its subtests
    assert base.tests["mount-notify_test"] == "pass" and base.tests["mount-notify_test:fanotify.bind"] == "pass"
    assert patched.tests["mount-notify_test"] == "fail"
    table = {r.scenario: r for r in rows(s.records())}
    kselftest = table["kselftest-filesystems-mount-notify"]
    assert kselftest.verdict == REGRESSED
    notes = "\n".join(kselftest.notes())
    assert f"{arch} kselftest-filesystems-mount-notify: regressed mount-notify_test:fanotify.bind: pass on base" in notes
    assert "known to fail on this base (its kernel config's known_failures): mount-notify_test_ns" in notes
    # KUnit's own suites and the time suite, built in, run at boot, parsed by the tree's kunit.py
    for name in ("kunit-lib-kunit", "kunit-kernel-time"):
        kbase, kpatched = results["base", name], results["patched", name]
        assert kbase.error is None and kpatched.error is None, (kbase.error, kpatched.error)
        assert "pass" in kbase.tests.values() and kbase.tests == kpatched.tests, (kbase.tests, kpatched.tests)
        assert table[name].verdict == NO_REGRESSION, table[name].notes()
    assert results["base", "kunit-lib-kunit"].tests["example.example_simple_test"] == "pass"
