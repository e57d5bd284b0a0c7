"""Rows: the guest never boots, the kernel panics at boot, SSH never answers.

The real cached base kernel and guest image boot under real QEMU; the fault is in what QEMU is
told: the kernel command line (QEMU keeps the last ``-append``) or the network card.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.core.errors import HarnessError

from .conftest import boot, our_qemus, session_for

pytestmark = [pytest.mark.faults, pytest.mark.boot, pytest.mark.usefixtures("build_slot")]


def with_cmdline(arch, cmdline: str, **changes):
    """``arch`` booting with this kernel command line instead of the harness's."""
    append = f"console={arch.console} panic=-1 {cmdline}"
    return replace(arch, qemu_args=(*arch.qemu_args, "-append", append), **changes)


def boot_error(arch, tmp_path) -> tuple[HarnessError, dict, str | None]:
    """Boot ``arch``; the error, the stage timings and the error the run record keeps."""
    with session_for(arch, tmp_path) as session:
        with pytest.raises(HarnessError) as e:
            boot(session, arch)
        record = session.records()[0]
    return e.value, record.timings, record.error


def test_init_that_hangs_is_an_error_at_the_boot_deadline_quoting_the_console(x86, tmp_path):
    arch = with_cmdline(x86, "rdinit=/bin/sh", boot_deadline=8)  # a shell on the console, forever
    e, timings, recorded = boot_error(arch, tmp_path)
    assert e.stage == "boot"
    assert e.message.startswith("boot deadline (8 s) passed before 'Not backgrounding'")
    assert "/bin/sh: can't access tty" in e.excerpt          # the console tail is quoted
    assert "console tail:" in e.message and "/bin/sh" in e.message
    assert e.log == tmp_path / "x86_64-base" / "console.log" and e.log.is_file()
    # at this deadline, not the arch's own (x86.boot_deadline, 90 s): no wall-clock window
    assert 8 <= timings["boot"] < x86.boot_deadline
    assert recorded == str(e)
    assert our_qemus() == []


def test_kernel_panic_at_boot_is_an_error_quoting_the_panic_within_seconds(x86, tmp_path):
    arch = with_cmdline(x86, "rdinit=/bin/true")                 # init exits: the kernel panics
    assert arch.boot_deadline >= 60
    e, timings, recorded = boot_error(arch, tmp_path)
    assert e.stage == "boot"
    assert e.message == ("kernel reported: Kernel panic - not syncing: Attempted to kill init! "
                         "exitcode=0x00000000")
    assert e.excerpt.startswith("Kernel panic - not syncing: Attempted to kill init!")
    assert e.log == tmp_path / "x86_64-base" / "console.log"
    assert "Kernel panic" in e.log.read_text()
    # the panic ended the boot, not the deadline (whose error would say so, and come later)
    assert timings["boot"] < arch.boot_deadline, "a panic must end the boot at once, not at the deadline"
    assert recorded == str(e)
    assert our_qemus() == []


def test_ssh_that_never_answers_is_an_error_at_the_boot_deadline(x86, tmp_path):
    # An e1000 card the guest kernel has no driver for: /init starts dropbear, which says so, and
    # QEMU's port forward accepts every connection, but nothing ever reaches the guest.
    arch = replace(x86, nic="e1000", boot_deadline=12)
    e, timings, recorded = boot_error(arch, tmp_path)
    assert e.stage == "boot"
    assert e.message.startswith("boot deadline (12 s): SSH did not answer: ")
    assert "Not backgrounding" in e.excerpt and "kharness-init: ready" in e.excerpt  # that far
    assert e.log == tmp_path / "x86_64-base" / "console.log"
    assert 12 <= timings["boot"] < x86.boot_deadline   # this deadline, not the arch's own
    assert recorded == str(e)
    assert our_qemus() == []
