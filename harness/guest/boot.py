"""From a built kernel and a guest image to a guest that answers SSH."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.build.image import GuestImage
from harness.config.arches import Arch
from harness.core.errors import CommandTimeout, ConnectionLost, HarnessError, KernelSplat, PortTaken
from harness.core.progress import Progress
from harness.guest.ssh import Guest
from harness.guest.vm import READY_MARK, SSHD_MARK, VM, Accel
from harness.verdict.results import console_name


@dataclass
class Booted:
    """A guest that answers SSH, with what it took to get there."""

    vm: VM
    guest: Guest
    seconds: float


def boot(arch: Arch, kernel: Path, image: GuestImage, accel: Accel, run_dir: Path,
         progress: Progress, label: str, cmdline: str = "",
         starting: Callable[[VM], None] | None = None) -> Booted:
    """Start QEMU and wait until an SSH command runs; the caller stops the VM (and is given it
    by ``starting`` before the wait, to stop it from another thread).

    Only a connection that is not there yet is retried (paramiko's banner and connect errors
    while dropbear comes up, a connection lost, a first command that timed out); any HarnessError of another kind (the guest
    died, a splat, a host key that is not the image's) ends the boot."""
    deadline = arch.boot_deadline_kvm if accel.name == "kvm" else arch.boot_deadline
    vm = VM(arch, kernel, image.initramfs, accel, run_dir, progress, cmdline, console_name(cmdline))
    if starting is not None:
        starting(vm)
    guest = None
    try:
        _start(vm, deadline)
        while True:
            try:
                guest = Guest.connect(vm.port, image.host_key, image.client_key, timeout=5)
                vm.wait_for(READY_MARK, deadline)  # /init's mounts, done during the handshake
                guest.check("true", timeout=10)
                break
            except Exception as e:
                if guest is not None:
                    guest.close()
                    guest = None
                if not retryable(e):
                    raise
                last = e
            vm.check()
            if time.monotonic() - vm.started > deadline:
                raise HarnessError("boot", f"boot deadline ({deadline:.0f} s): SSH did not answer: "
                                   f"{last}", vm.console_log, vm.console.tail() if vm.console else "")
            time.sleep(0.05)
        seconds = time.monotonic() - vm.started
        progress.info(f"boot {label}: SSH ready in {seconds:.1f} s ({accel.name})")
        return Booted(vm, guest, seconds)
    except BaseException:
        if guest is not None:
            guest.close()
        vm.stop()
        raise


def retryable(e: Exception) -> bool:
    """Whether a failure to reach the guest may be the guest not answering yet: by its type,
    never its text."""
    return not isinstance(e, HarnessError) or isinstance(e, (ConnectionLost, CommandTimeout))


def _start(vm: VM, deadline: float) -> None:
    """Start QEMU and wait until dropbear listens; once more, on a new port, if another process
    took the port between free_port() and QEMU's bind (two runs starting at once)."""
    vm.start()
    try:
        vm.wait_for(SSHD_MARK, deadline)
    except PortTaken:
        vm.progress.info(f"boot: port {vm.port} was taken before QEMU could bind it; another port")
        vm.stop()
        vm.start()
        vm.wait_for(SSHD_MARK, deadline)


def splat_first(booted: Booted | None, e: HarnessError) -> HarnessError:
    """A kernel splat explains a failed scenario better than what the script saw of it (a task
    killed by BUG(), a read that failed): the console's report becomes the error."""
    if booted is None or isinstance(e, KernelSplat):
        return e
    try:
        booted.vm.check()
    except KernelSplat as splat:
        return splat
    except HarnessError:
        pass
    return e
