"""/proc/cgroups is parsed strictly: anything doubtful is an error, never a number."""

import pytest

from harness.config import Expectation
from harness.errors import HarnessError
from harness.scenario import controller_count, holds, parse_proc_cgroups

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
    e = Expectation(min_fraction=0.9)
    assert holds(e, 450, 500) and not holds(e, 449, 500)


def test_fixed_allows_a_small_delta_only():
    e = Expectation(max_delta=5)
    assert holds(e, 5, 500) and holds(e, 0, 500) and not holds(e, 6, 500)
