"""The run's guests: one per kernel and command line, booted on first use and reused by the
scenarios that may share it, stopped (their kernel log kept) when released, and none started
once the run is cancelled."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path

from harness.build.image import GuestImage
from harness.build.kbuild import KernelBuild
from harness.config.arches import Arch
from harness.core.errors import HarnessError
from harness.core.memo import Memo
from harness.core.progress import Progress
from harness.guest.accel import choose_accel
from harness.guest.boot import Booted, boot
from harness.guest.vm import VM
from harness.run.kernelrun import KernelRun
from harness.verdict.results import KernelId

GuestKey = tuple[KernelId, str]   # the kernel and the command line it booted with


def online_cpus(text: str) -> int:
    """How many CPUs a /sys/devices/system/cpu/online list names ("0", "0-1", "0-3,6")."""
    count = 0
    for part in text.strip().split(","):
        first, _, last = part.partition("-")
        count += int(last or first) - int(first) + 1
    return count


class GuestPool:
    def __init__(self, cache: Path, progress: Progress, image: Callable[[Arch], GuestImage],
                 shared: threading.RLock):
        self.cache, self.progress, self._image = cache, progress, image
        self._booted = Memo()
        self._used: set[GuestKey] = set()               # guests a scenario has run on
        self._starting: dict[GuestKey, VM] = {}         # guests booting now
        self._accels_said: set[tuple[str, str]] = set()   # (arch, why): said once a run
        self._shared = shared                           # the session's: what guests share is made under it
        self._stop_lock = threading.Lock()
        self._cancelled = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def booted(self, run: KernelRun, arch: Arch, kernel: KernelBuild, cmdline: str = "") -> Booted:
        """The kernel's guest booted with ``cmdline``, once until released; a failure is kept."""
        def failed(e: HarnessError) -> None:
            self.progress.info(f"ERROR {run.id.label}: {e}")
            run.fail(e)
        return self._booted.get((run.id, cmdline), lambda: self._boot(run, arch, kernel, cmdline),
                                "boot", failed)

    def use(self, key: GuestKey, fresh: bool) -> bool:
        """The guest of ``key`` is for a scenario now: whether no scenario ran on it before. One
        that wants a ``fresh`` guest where another ran gets it booted anew (released here)."""
        if fresh and key in self._used:
            self.release(*key)
        first = key not in self._used
        self._used.add(key)
        return first

    def _boot(self, run: KernelRun, arch: Arch, kernel: KernelBuild, cmdline: str) -> Booted:
        kid = run.id
        label = kid.label + (f" [{cmdline}]" if cmdline else "")
        if self.cancelled:
            raise HarnessError("boot", "run interrupted before this guest booted")
        with run.stage("image", "guest-image"):
            image = self._image(arch)
        run.update(image_key=image.key)
        with self._shared:  # once per kernel and host
            with run.stage("accel", "accel"):
                accel = choose_accel(arch, kernel.image, image.initramfs, self.cache, run.logs(),
                                     self.progress)
                said = (arch.name, accel.reason) in self._accels_said
                self._accels_said.add((arch.name, accel.reason))
        if not said:   # every later guest of the arch: the same reason, in the report only
            self.progress.info(f"boot {label}: {accel.reason}")
        run.update(accel=accel.name, accel_reason=accel.reason, vcpus=arch.cpus)
        with run.stage("boot" + (f" [{cmdline}]" if cmdline else ""), "boot"):
            try:
                booted = boot(arch, kernel.image, image, accel, run.logs(), self.progress, label, cmdline,
                              lambda vm: self._starting.__setitem__((kid, cmdline), vm))
            finally:
                self._starting.pop((kid, cmdline), None)
        run.boot_took(cmdline, booted.seconds)
        self._check_cpus(arch, booted)
        return booted

    def _check_cpus(self, arch: Arch, booted: Booted) -> None:
        """The guest runs every vCPU QEMU gave it, or the run says it did not: a report that
        claims 2 vCPUs for a kernel that brought up 1 would be false (vm.smp() says how it can happen)."""
        try:
            online = booted.guest.check("cat /sys/devices/system/cpu/online", timeout=20).strip()
            n = online_cpus(online)
        except (HarnessError, ValueError) as e:
            booted.guest.close()
            booted.vm.stop()
            raise HarnessError("boot", f"cannot tell how many CPUs the guest runs: {e}")
        if n != arch.cpus:
            booted.guest.close()
            booted.vm.stop()
            raise HarnessError("boot", f"the guest's kernel brought up {n} of the {arch.cpus} vCPUs QEMU gave it "
                               f"(/sys/devices/system/cpu/online: {online})", booted.vm.console_log)

    def release(self, kid: KernelId, cmdline: str | None = None) -> None:
        """Stop the kernel's guests (those booted with ``cmdline`` only, if given)."""
        for key, booted in self._booted.items():
            if key[0] == kid and cmdline in (None, key[1]):
                self._stop(key, booted)

    def cancel(self) -> None:
        """No guest boots from now on (those booting finish, and are stopped by ``close``)."""
        self._cancelled.set()

    def close(self) -> None:
        for vm in list(self._starting.values()):  # its boot then fails at once: QEMU is gone
            vm.cancel()
        for key, booted in self._booted.items():
            self._stop(key, booted)

    def _stop(self, key: GuestKey, booted: Booted | HarnessError) -> None:
        """Keep the guest's kernel log with its console log, then stop it."""
        with self._stop_lock:  # a guest's own thread and an interrupted run's close() may meet here
            if self._booted.peek(key) is not booted or not isinstance(booted, Booted):
                return
            self._booted.forget(key)  # a later scenario on this kernel and command line boots anew
            self._used.discard(key)
            if booted.vm.child is None or not booted.vm.child.isalive():
                return
        with contextlib.suppress(HarnessError, OSError):   # each guest's, after the ones before it
            name = booted.vm.console_log.name.replace("console", "dmesg", 1)
            text = booted.guest.run("dmesg", timeout=20).stdout
            with open(booted.vm.console_log.parent / name, "a") as f:
                f.write(f"$ dmesg  # read over SSH just before this guest was stopped\n{text}")
        booted.guest.close()
        booted.vm.stop()
