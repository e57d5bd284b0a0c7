"""The console patterns against real kernel reports: each must be caught, by its first telling
line, and a clean boot's whole kernel log must not be.

tests/unit/splats/*.txt are consoles of Linux 5.10.262 guests (lkdtm profile) after LKDTM's WARNING
and BUG (tests/boot/test_splats.py provokes them); *.dmesg are the full logs of clean default
kernels, both arches.
"""

from __future__ import annotations

import time
from pathlib import Path

import pexpect
import pytest

from harness.core.progress import Quiet
from harness.guest.vm import Console, find_splat, report_ended

SPLATS = Path(__file__).parent / "splats"


@pytest.mark.parametrize("name, first", [
    ("warn-5.10-arm64", "WARNING: CPU: 0 PID: 45 at drivers/misc/lkdtm/bugs.c:83 lkdtm_WARNING+0x14/0x1c"),
    ("warn-5.10-x86_64", "WARNING: CPU: 0 PID: 40 at drivers/misc/lkdtm/bugs.c:83 lkdtm_WARNING+0x8/0xb"),
    ("bug-5.10-arm64", "kernel BUG at drivers/misc/lkdtm/bugs.c:76!"),
    ("bug-5.10-x86_64", "kernel BUG at drivers/misc/lkdtm/bugs.c:76!"),
])
def test_a_real_report_is_caught_by_its_first_line(name, first):
    found = find_splat("kharness-init: ready\n" + (SPLATS / f"{name}.txt").read_text())
    assert found is not None and found.splitlines()[0] == first


@pytest.mark.parametrize("line", [
    "invalid opcode: 0000 [#1] SMP",                                  # x86 BUG() without its header
    "Internal error: Oops - BUG: 00000000f2000800 [#1] SMP",          # arm64
    "Unable to handle kernel NULL pointer dereference at virtual address 0000000000000008",
    "BUG: KASAN: use-after-free in mem_cgroup_css_free+0x1c/0x40",
    "UBSAN: shift-out-of-bounds in mm/memcontrol.c:1234:5",
    "list_add corruption. next->prev should be prev (ffff88800a1b2c00), but was 0000000000000000.",
    "list_del corruption, ffff88800a1b2c00->next is LIST_POISON1 (dead000000000100)",
    "refcount_t: underflow; use-after-free.",
    "percpu ref (obj_cgroup_release) <= 0 (-1) after switching to atomic",
    "ODEBUG: free active (active state 0) object type: percpu_counter hint: 0x0",
    "WARNING: possible circular locking dependency detected",
    "WARNING: suspicious RCU usage",
    "BUG: sleeping function called from invalid context at mm/slab.h:497",
    "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009",
    "general protection fault, probably for non-canonical address 0xdead000000000100: 0000 [#1] SMP",
])
def test_each_kind_of_report_header_is_caught(line):
    assert find_splat(f"kharness-init: ready\n{line}\nmore\n").splitlines()[0] == line


@pytest.mark.parametrize("log", sorted(p.name for p in SPLATS.glob("*.dmesg")))
def test_a_clean_boot_log_has_no_splat(log):
    assert find_splat((SPLATS / log).read_text()) is None


# A KASAN report as mm/kasan/report.c prints it: between two lines of '=' (the first one before
# the line the patterns catch), its stack trace and the object's history in between.
KASAN = """\
==================================================================
BUG: KASAN: wild-memory-access in rcu_is_watching+0x1c/0x38
Read of size 4 at addr ff1100003562dd60 by task swapper/0/1

CPU: 0 UID: 0 PID: 1 Comm: swapper/0 Not tainted 7.2.8 #1 PREEMPT(voluntary)
Call Trace:
 <TASK>
 dump_stack_lvl+0x4b/0x70
 kasan_report+0xc9/0x100
 rcu_is_watching+0x1c/0x38
 </TASK>
==================================================================
Disabling lock debugging due to kernel taint
kharness-init: ready
"""


def test_a_kasan_report_is_quoted_to_its_closing_line():
    found = find_splat("kharness-init: mounting\n" + KASAN)
    assert found.splitlines()[0].startswith("BUG: KASAN: wild-memory-access")
    assert " rcu_is_watching+0x1c/0x38" in found.splitlines()        # the stack is in it
    assert found.splitlines()[-1].startswith("=====") and "Disabling" not in found
    assert report_ended(KASAN)


def test_a_report_still_printing_is_quoted_as_far_as_it_came_and_has_not_ended():
    partial = KASAN[:KASAN.index(" kasan_report")]
    assert find_splat(partial).splitlines()[-1] == " dump_stack_lvl+0x4b/0x70"
    assert not report_ended(partial) and not report_ended("kharness-init: ready\n")


@pytest.mark.parametrize("name", ["warn-5.10-x86_64", "bug-5.10-arm64"])
def test_a_warning_or_bug_ends_at_its_end_trace_line(name):
    found = find_splat((SPLATS / f"{name}.txt").read_text())
    assert found.splitlines()[-1].startswith("---[ end trace ")


def _console(tmp_path, script):
    child = pexpect.spawn("sh", ["-c", script], timeout=None, echo=False)
    return child, Console(child, tmp_path / "console.log", Quiet())


def test_the_console_waits_for_the_rest_of_a_report(tmp_path):
    """The guest prints the report's first half, then the rest a second later: the wait ends
    with the end line, before the guest's later output and well before the limit."""
    head, rest = KASAN[:KASAN.index(" kasan_report")], KASAN[KASAN.index(" kasan_report"):]
    child, console = _console(tmp_path, f"printf '%s' '{head}'; sleep 1; printf '%s' '{rest}'; sleep 30")
    try:
        while console.splat() is None:
            time.sleep(0.05)
        t = time.monotonic()
        console.await_report(quiet=5, limit=20)
        assert time.monotonic() - t < 5
        assert " rcu_is_watching+0x1c/0x38" in console.splat().splitlines()
    finally:
        child.terminate(force=True)
        console.close()


def test_a_report_without_an_end_line_waits_only_until_the_console_is_quiet(tmp_path):
    child, console = _console(tmp_path, "printf 'WARNING: possible circular locking dependency detected\\n"
                                        "7.2.8 #1 Not tainted\\n'; sleep 30")
    try:
        while console.splat() is None:
            time.sleep(0.05)
        t = time.monotonic()
        console.await_report(quiet=0.5, limit=20)
        assert 0.4 < time.monotonic() - t < 3
    finally:
        child.terminate(force=True)
        console.close()
