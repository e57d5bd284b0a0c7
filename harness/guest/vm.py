"""QEMU: the guest process and its serial console (accel.py decides between KVM and TCG).

The console is read through pexpect on a thread of its own, written to console.log as it comes,
and scanned for kernel splats, so a panic ends the wait at once instead of at the deadline.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pexpect

from harness.config.arches import Arch
from harness.core import proc
from harness.core.errors import HarnessError, KernelSplat, PortTaken
from harness.core.progress import Progress

INIT_MARK = "kharness-init: start"
# dropbear (2019.78 and later) logs this once its socket listens: the first connection can go.
SSHD_MARK = "Not backgrounding"
# /init has mounted everything (dropbear starts first, see guest_image.INIT_SCRIPT).
READY_MARK = "kharness-init: ready"
# What QEMU prints when the forwarded port was bound by another process first (hostfwd, 7.2).
PORT_TAKEN = "Could not set up host forwarding rule"

# Lines the kernel prints when something went wrong; any of them on a console is an ERROR.
# tests/unit/test_splat_patterns.py holds real reports each must catch (and boot lines none may).
SPLAT = re.compile("|".join((
    r"Kernel panic - not syncing", r"Oops[:\s]", r"BUG:", r"kernel BUG at ", r"WARNING:",
    r"invalid opcode:",                      # x86's BUG() (ud2): "invalid opcode: 0000 [#1]"
    r"general protection fault", r"Unable to handle kernel", r"Internal error:",   # arm64
    r"KASAN:", r"UBSAN:", r"refcount_t:", r"percpu ref", r"list_(add|del) corruption",
    r"ODEBUG:", r"possible circular locking", r"possible recursive locking",
    r"inconsistent lock state", r"suspicious RCU usage", r"INFO: task .* blocked",
    r"INFO: rcu_(sched|preempt) (self-)?detected stall", r"KVM internal error",
)))


@dataclass(frozen=True)
class Accel:
    name: str      # "kvm" or "tcg"
    reason: str    # why this one: shown to the user and kept in the report


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smp(cpus: int) -> str:
    """-smp for ``cpus`` vCPUs, one socket each: given N alone, QEMU makes one socket of N cores,
    and the MP table SeaBIOS writes for it lists one processor, so a kernel without ACPI (the
    x86_64 tinyconfig kernels) brings up one CPU (measured: 1 of 2; with sockets=2, 2 of 2)."""
    return str(cpus) if cpus == 1 else f"{cpus},sockets={cpus}"


def qemu_command(arch: Arch, kernel: Path, initramfs: Path, accel: str, port: int,
                 cmdline: str = "") -> list[str]:
    cpu = arch.cpu_kvm if accel == "kvm" else arch.cpu_tcg
    # quiet keeps the boot's info messages off the slow emulated serial line; loglevel=5 keeps
    # warnings on it (quiet alone hides KERN_WARNING: WARN_ON, lockdep, refcount_t, percpu_ref)
    append = " ".join(x for x in (f"console={arch.console} panic=-1 quiet loglevel=5", arch.cmdline, cmdline) if x)
    return [
        arch.qemu, "-M", arch.machine, "-accel", accel, "-cpu", cpu, "-m", arch.memory,
        "-smp", smp(arch.cpus), "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
        "-no-reboot", "-kernel", str(kernel), "-initrd", str(initramfs), "-append", append,
        # The guest is reachable only on the loopback address, on a port chosen per run.
        "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22",
        "-device", f"{arch.nic},netdev=n0", *arch.qemu_args,
    ]


# Where a report ends: a WARNING, BUG or Oops with "---[ end trace", a panic with "---[ end
# Kernel panic", a KASAN, KFENCE or UBSAN report with the line of '=' that also opened it. A
# lockdep report has no end line: its end is the console going quiet (Console.await_report).
REPORT_END = re.compile(r"^.*---\[ end .*$|^={40,}[ \t]*$", re.M)
REPORT_LINES = 80   # at most this much of a report is quoted (the console log has all of it)


def _splat_at(text: str) -> int | None:
    m = SPLAT.search(text)
    return None if m is None else text.rfind("\n", 0, m.start()) + 1


def _report_end(text: str, start: int) -> int | None:
    """Where the report that starts at ``start`` ends (after its end line), or None."""
    first = text.find("\n", start)
    m = None if first < 0 else REPORT_END.search(text, first + 1)
    return None if m is None else m.end()


def find_splat(text: str, lines: int = REPORT_LINES) -> str | None:
    """The first line of ``text`` that reports a splat, with the rest of its report (to its end
    line, at most ``lines`` lines; what has arrived of it when it has not ended); or None."""
    start = _splat_at(text)
    if start is None:
        return None
    end = _report_end(text, start)
    return "\n".join(text[start:end].splitlines()[:lines])


def report_ended(text: str) -> bool:
    """Whether the first splat on ``text`` has printed its end line (False without a splat)."""
    start = _splat_at(text)
    return start is not None and _report_end(text, start) is not None


class Console:
    """Collects a child's output into a log file and a buffer, from a reader thread."""

    def __init__(self, child: pexpect.spawn, log_path: Path, progress: Progress):
        self.child = child
        self.log = open(log_path, "ab")
        self.progress = progress
        self.text = ""
        self.eof = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        pending = ""
        while True:
            try:
                data = self.child.read_nonblocking(65536, timeout=0.1)
            except pexpect.TIMEOUT:
                continue
            except (pexpect.EOF, OSError, ValueError):
                break
            self.log.write(data)
            self.log.flush()
            chunk = data.decode(errors="replace").replace("\r", "")
            with self._lock:
                self.text += chunk
            pending += chunk
            *lines, pending = pending.split("\n")
            for line in lines:
                self.progress.verbose("console: " + line)
        self.eof = True

    def splat(self) -> str | None:
        """The first splat on the console with the lines after it, or None."""
        with self._lock:
            text = self.text
        return find_splat(text)

    def await_report(self, quiet: float = 3.0, limit: float = 20.0) -> None:
        """Wait for the report of a splat already seen to end: its end line, or the console
        quiet for ``quiet`` seconds (the guest stopped printing), or QEMU gone, or ``limit``."""
        deadline = time.monotonic() + limit
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline and not self.eof:
            with self._lock:
                text = self.text
            if report_ended(text):
                return
            if len(text) != last:
                last, since = len(text), time.monotonic()
            elif time.monotonic() - since >= quiet:
                return
            time.sleep(0.1)

    def tail(self, lines: int = 15) -> str:
        with self._lock:
            return "\n".join(self.text.strip().splitlines()[-lines:])

    def has(self, mark: str) -> bool:
        with self._lock:
            return mark in self.text

    def drain(self, timeout: float) -> None:
        """Wait until the reader has read everything the child wrote (its EOF), or ``timeout``."""
        self._thread.join(timeout=timeout)

    def close(self) -> None:
        self._thread.join(timeout=2)
        self.log.close()


class VM:
    """A running guest. Use as a context manager: QEMU is killed and reaped on every exit path."""

    def __init__(self, arch: Arch, kernel: Path, initramfs: Path, accel: Accel, run_dir: Path,
                 progress: Progress, cmdline: str = "", console_name: str = "console.log"):
        self.arch = arch
        self.kernel = kernel
        self.initramfs = initramfs
        self.accel = accel
        self.console_log = run_dir / console_name
        self.progress = progress
        self.cmdline = cmdline
        self.port = 0
        self.child: pexpect.spawn | None = None
        self.console: Console | None = None
        self.started = 0.0
        self._lock = threading.Lock()   # start() against cancel() from another thread
        self._cancelled = False

    def __enter__(self) -> "VM":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self.console_log.parent.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        cmd = qemu_command(self.arch, self.kernel, self.initramfs, self.accel.name, self.port,
                           self.cmdline)
        with open(self.console_log, "ab") as f:
            f.write(f"$ {proc.quoted(cmd)}\n".encode())
        self.started = time.monotonic()
        with self._lock:
            if self._cancelled:
                raise HarnessError("boot", "run interrupted before QEMU started")
            try:
                self.child = pexpect.spawn(cmd[0], cmd[1:], timeout=None, echo=False)
            except pexpect.ExceptionPexpect as e:
                raise HarnessError("boot", f"cannot start {cmd[0]}: {e} (run `make deps`)")
            self.console = Console(self.child, self.console_log, self.progress)

    def cancel(self) -> None:
        """From another thread: stop QEMU, and never start it again; whoever waits for this guest
        gets an error at once (it sees QEMU gone)."""
        with self._lock:
            self._cancelled = True
            self.stop()

    def alive(self) -> bool:
        return self.child is not None and self.child.isalive()

    def check(self) -> None:
        """Raise if the guest died or printed a splat."""
        assert self.console is not None
        alive = self.alive()
        if not alive:  # QEMU's last lines (a panic, say) may still be on their way to the buffer
            self.console.drain(timeout=2.0)
        splat = self.console.splat()
        if splat:
            # the guest goes on printing the report (the access, the stack, the object): stop it
            # at the report's end, so the ERROR quotes all of it and the console log keeps it
            self.console.await_report()
            splat = self.console.splat() or splat
            first = splat.splitlines()[0].strip()
            raise KernelSplat("boot" if "panic" in first else "guest",
                              f"kernel reported: {first}", self.console_log, splat)
        if not alive:
            tail = self.console.tail()
            message = (f"QEMU exited (status {self.exit_status()}): "
                       f"{tail.splitlines()[-1] if tail else 'no console output'}")
            if PORT_TAKEN in tail:
                raise PortTaken(message, self.console_log, tail)
            raise HarnessError("boot", message, self.console_log, tail)

    def exit_status(self) -> int | None:
        if self.child is None:
            return None
        with contextlib.suppress(Exception):
            self.child.wait() if not self.child.isalive() else None
        return self.child.exitstatus if self.child.exitstatus is not None else self.child.signalstatus

    def wait_for(self, mark: str, deadline: float) -> float:
        """Wait until ``mark`` appears on the console; seconds since QEMU started."""
        assert self.console is not None
        while not self.console.has(mark):
            self.check()
            if time.monotonic() - self.started > deadline:
                raise HarnessError("boot", f"boot deadline ({deadline:.0f} s) passed before "
                                   f"{mark!r}; console tail:\n{self.console.tail()}",
                                   self.console_log, self.console.tail())
            time.sleep(0.02)
        return time.monotonic() - self.started

    def stop(self) -> None:
        if self.child is not None:
            with contextlib.suppress(Exception):
                if self.child.isalive():
                    self.child.terminate(force=True)
            with contextlib.suppress(Exception):
                self.child.wait()
            with contextlib.suppress(Exception):
                self.child.close(force=True)
        if self.console is not None:
            self.console.close()


# --- KVM or TCG ----------------------------------------------------------------------------------
