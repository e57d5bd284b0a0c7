"""The console patterns against real kernel reports: each must be caught, by its first telling
line, and a clean boot's whole kernel log must not be.

tests/unit/splats/*.txt are consoles of Linux 5.10.262 guests (lkdtm profile) after LKDTM's WARNING
and BUG (tests/boot/test_splats.py provokes them); *.dmesg are the full logs of clean default
kernels, both arches.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.vm import find_splat

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
