"""/proc/cgroups, script metrics and selftest TAP are parsed strictly: anything doubtful is an
error, never a number."""

import pytest

from harness.config import Expectation
from harness.core.errors import HarnessError
from harness.guest.measures import controller_count, parse_proc_cgroups
from harness.guest.runner import parse_metrics
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
