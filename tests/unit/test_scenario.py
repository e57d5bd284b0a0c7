"""/proc/cgroups, script metrics and selftest TAP are parsed strictly: anything doubtful is an
error, never a number."""

import pytest

from harness.config import Expectation
from harness.core.errors import HarnessError
from harness.guest.measures import controller_count, parse_proc_cgroups
from harness.guest.runner import parse_metrics, parse_selftests
from harness.verdict.bounds import failed_expectations

PROC_CGROUPS = """#subsys_name\thierarchy\tnum_cgroups\tenabled
cpuset\t0\t1\t1
memory\t1\t501\t1
pids\t0\t1\t1
"""


def test_memory_row_is_read():
    assert controller_count(PROC_CGROUPS, "memory") == 501
    assert parse_proc_cgroups(PROC_CGROUPS)["pids"].hierarchy == 0


def test_missing_memory_row_is_an_error():
    text = PROC_CGROUPS.replace("memory\t1\t501\t1\n", "")
    with pytest.raises(HarnessError, match="no memory row"):
        controller_count(text, "memory")


def test_disabled_controller_is_an_error():
    with pytest.raises(HarnessError, match="disabled"):
        controller_count(PROC_CGROUPS.replace("memory\t1\t501\t1", "memory\t1\t501\t0"), "memory")


def test_unmounted_controller_is_an_error():
    with pytest.raises(HarnessError, match="not mounted"):
        controller_count(PROC_CGROUPS.replace("memory\t1\t501", "memory\t0\t501"), "memory")


def test_v2_controller_shows_hierarchy_zero_and_counts():
    assert controller_count(PROC_CGROUPS.replace("memory\t1\t501", "memory\t0\t501"), "memory", "v2") == 501


@pytest.mark.parametrize("text", [
    "",
    "garbage\n",
    PROC_CGROUPS.replace("501", "5O1"),
    PROC_CGROUPS.replace("memory\t1\t501\t1", "memory\t1\t501"),
    PROC_CGROUPS.replace("memory\t1\t501\t1", "memory\t1\t501\t1\textra"),
])
def test_garbage_is_an_error(text):
    with pytest.raises(HarnessError):
        controller_count(text, "memory")


def test_reproduced_needs_the_fraction_of_iterations():
    e = (Expectation(min_fraction=0.9),)
    assert not failed_expectations(e, {"delta": 450}, 500)
    assert failed_expectations(e, {"delta": 449}, 500) == ["delta >= 450 (got 449)"]


def test_fixed_allows_a_small_delta_only():
    e = (Expectation(max=5),)
    assert not failed_expectations(e, {"delta": 5}, 500) and not failed_expectations(e, {"delta": 0}, 500)
    assert failed_expectations(e, {"delta": 6}, 500)


def test_every_expectation_must_hold_and_each_failure_is_named():
    e = (Expectation(metric="pinned", min=1), Expectation(metric="after_close", max=0))
    assert failed_expectations(e, {"pinned": 0, "after_close": 1}, 1) == [
        "pinned >= 1 (got 0)", "after_close <= 0 (got 1)"]


OUT = "some text\nkharness-metric pinned 1\nkharness-metric after_close -1\n"


def test_declared_metrics_are_read():
    assert parse_metrics(OUT, ("pinned", "after_close"), "s.sh") == {"pinned": 1, "after_close": -1}


@pytest.mark.parametrize("text,declared,message", [
    (OUT, ("pinned", "after_close", "events"), "did not report metric events"),
    (OUT, ("pinned",), "not declared"),
    (OUT + "kharness-metric pinned 2\n", ("pinned", "after_close"), "twice"),
    ("kharness-metric pinned 1.5\nkharness-metric after_close 0\n", ("pinned", "after_close"), "not an integer"),
    ("kharness-metric pinned \nkharness-metric after_close 0\n", ("pinned", "after_close"), "not an integer"),
])
def test_doubtful_metrics_are_errors(text, declared, message):
    with pytest.raises(HarnessError, match=message):
        parse_metrics(text, declared, "s.sh")


TAP = """kharness-selftest test_core
TAP version 13
ok 1 test_cgcore_populated
ok 1 test_cgcore_populated
not ok 2 test_cgcore_lesser_ns_open
ok 3 test_cgcore_threads # SKIP no threads
kharness-selftest test_core exit 1
kharness-selftest test_kmem
not ok 1 test_kmem_basic
not ok 1 test_kmem_basic
ok 2 test_kmem_memcg_deletion
kharness-selftest test_kmem exit 1
"""


def test_selftest_results_per_program_with_repeats_counted_once():
    assert parse_selftests(TAP, ("test_core", "test_kmem"), "s.sh") == {
        "test_core:test_cgcore_populated": "pass", "test_core:test_cgcore_lesser_ns_open": "fail",
        "test_core:test_cgcore_threads": "skip", "test_kmem:test_kmem_basic": "fail",
        "test_kmem:test_kmem_memcg_deletion": "pass"}


def test_selftest_conflicting_repeat_is_an_error():
    with pytest.raises(HarnessError, match="both"):
        parse_selftests(TAP.replace("ok 2 test_kmem", "ok 1 test_kmem_basic\nok 2 test_kmem"),
                        ("test_core", "test_kmem"), "s.sh")


def test_selftest_program_that_did_not_run_or_reported_nothing_is_an_error():
    with pytest.raises(HarnessError, match="did not run selftest test_memcontrol"):
        parse_selftests(TAP, ("test_core", "test_kmem", "test_memcontrol"), "s.sh")
    silent = TAP + "kharness-selftest test_memcontrol\nSegmentation fault\nkharness-selftest test_memcontrol exit 139\n"
    with pytest.raises(HarnessError, match="test_memcontrol reported no result \\(exit 139\\)"):
        parse_selftests(silent, ("test_core", "test_kmem", "test_memcontrol"), "s.sh")


def test_a_selftest_program_of_which_no_test_passed_is_an_error_not_a_result():
    setup_failed = TAP + ("kharness-selftest mount-notify_test\n1..2\nnot ok 1 fanotify.bind\n"
                          "ok 2 fanotify.move # SKIP no mount namespace\nkharness-selftest mount-notify_test exit 1\n")
    with pytest.raises(HarnessError, match=r"^scenario: selftest mount-notify_test: no test passed in any "
                                           r"run \(1 fail, 1 skip, exit 1\)$"):
        parse_selftests(setup_failed, ("test_core", "test_kmem", "mount-notify_test"), "s.sh")


def test_selftest_runs_that_disagree_make_a_flaky_test():
    second = TAP.replace("ok 3 test_cgcore_threads # SKIP no threads\n", "").replace(
        "ok 1 test_cgcore_populated\nok 1", "not ok 1 test_cgcore_populated\nnot ok 1")
    tests = parse_selftests(TAP + second, ("test_core", "test_kmem"), "s.sh")
    assert tests["test_core:test_cgcore_populated"] == "flaky"
    assert tests["test_core:test_cgcore_threads"] == "flaky"          # missing from one run
    assert tests["test_core:test_cgcore_lesser_ns_open"] == "fail"     # failed in both
    assert tests["test_kmem:test_kmem_memcg_deletion"] == "pass"


def test_kselftest_skips_are_skips_each_under_its_own_name():
    # test_core on 5.10: ksft_test_result_skip() prints the test's name after "# SKIP"
    out = ("kharness-selftest test_core\nok 1 test_cgcore_internal_process_constraint\n"
           "ok 2 # SKIP test_cgcore_no_internal_process_constraint_on_threads\n"
           "ok 3 # SKIP test_cgcore_threads\nok 4 # SKIP\nnot ok 5 test_cgcore_lesser_euid_open\n"
           "kharness-selftest test_core exit 1\n")
    assert parse_selftests(out, ("test_core",), "s.sh") == {
        "test_core:test_cgcore_internal_process_constraint": "pass",
        "test_core:test_cgcore_no_internal_process_constraint_on_threads": "skip",
        "test_core:test_cgcore_threads": "skip", "test_core:#4": "skip",
        "test_core:test_cgcore_lesser_euid_open": "fail"}
