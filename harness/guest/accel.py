"""KVM or TCG: KVM when the host has it and a probe boot shows it runs this kernel (a nested
KVM can fail where real hardware works), else TCG, with the reason said once and recorded."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import time
from pathlib import Path

from harness.config.arches import Arch
from harness.core import proc
from harness.core.cache import atomic_file, locked
from harness.core.errors import HarnessError
from harness.core.progress import Progress
from harness.guest.vm import INIT_MARK, VM, Accel


def _qemu_version(binary: str) -> str:
    out = str(proc.run([binary, "--version"], "accel", 30, what=f"{binary} --version").stdout)
    return out.splitlines()[0] if out else binary


def kvm_precondition(arch: Arch) -> str | None:
    """Why KVM cannot even be tried for this guest on this host, or None."""
    if not arch.native:
        return f"host is {platform.machine()}, guest is {arch.name}: KVM needs the host's architecture"
    if not os.path.exists("/dev/kvm"):
        return "/dev/kvm does not exist"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "/dev/kvm is not readable and writable by this user"
    return None


def choose_accel(arch: Arch, kernel: Path, initramfs: Path, cache: Path, run_dir: Path,
                 progress: Progress) -> Accel:
    """The first accelerator of ``arch.accel`` that works; KVM only after a real boot probe.

    A /dev/kvm that opens is not proof: a nested KVM may kill the guest at its first cmpxchg16b
    ("KVM internal error ... emulation failure"). So the probe boots the real kernel under KVM to
    /init's first line; its answer is cached per host, QEMU version and arch.
    """
    reasons = []
    for accel in arch.accel:
        if accel == "tcg":
            why = "; ".join(reasons) if reasons else "first of the accelerators allowed (the arch's accel, or --accel)"
            return Accel("tcg", f"TCG: {why}")
        why = kvm_precondition(arch)
        if why is None:
            why = _cached_probe(arch, kernel, initramfs, cache, run_dir, progress)
        if why is None:
            return Accel("kvm", "KVM: boot probe passed")
        reasons.append(f"KVM unusable: {why}")
    raise HarnessError("boot", f"no usable accelerator for {arch.name}: {'; '.join(reasons)}")


def _cached_probe(arch: Arch, kernel: Path, initramfs: Path, cache: Path, run_dir: Path,
                  progress: Progress) -> str | None:
    path = cache / "kvm-probe.json"
    host = f"{platform.node()} {platform.release()} {_cpu_model()} {_qemu_version(arch.qemu)}"
    key = f"{arch.name}: {host}"
    with locked(cache / "kvm-probe.lock"):
        known = json.loads(path.read_text()) if path.exists() else {}
        entry = known.get(key)
        if entry is not None and not _stale(entry):
            return entry["failure"]
        why = "asked to (KHARNESS_KVM_REPROBE)" if entry and os.environ.get("KHARNESS_KVM_REPROBE") \
            else f"the cached answer of {entry['when']} is stale" if entry else "cached per host afterwards"
        progress.info(f"boot {arch.name}: probing KVM ({why})")
        failure = probe_kvm(arch, kernel, initramfs, run_dir, progress)
        if failure is not None:   # the log outlives the run directory it was written in
            kept = cache / f"kvm-probe-{arch.name}.log"
            with contextlib.suppress(OSError):
                shutil.copyfile(run_dir / "kvm-probe.log", kept)
            failure = re.sub(r"\(log: [^)]*\)$", f"(log: {kept})", failure)
        known[key] = {"failure": failure, "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
                      "epoch": time.time()}
        with atomic_file(path, "w") as f:
            json.dump(known, f, indent=1)
    return failure


# How long a probe's answer is trusted: a guest that printed nothing in time may have met a busy
# machine (a kernel build on every core), so that answer is asked again after an hour; a KVM
# error or a QEMU that failed is the host's, trusted for a week. KHARNESS_KVM_REPROBE=1 asks now.
PROBE_TRUST = {"timeout": 3600.0, "failure": 7 * 86400.0, "success": 7 * 86400.0}


def _stale(entry: dict) -> bool:
    if os.environ.get("KHARNESS_KVM_REPROBE"):
        return True
    failure = entry.get("failure")
    trust = PROBE_TRUST["success" if failure is None else
                        "timeout" if "printed nothing within" in failure else "failure"]
    return time.time() - entry.get("epoch", 0.0) > trust


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "CPU part")):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def probe_kvm(arch: Arch, kernel: Path, initramfs: Path, run_dir: Path, progress: Progress,
              deadline: float = 15.0) -> str | None:
    """Boot under KVM until /init's first line; None if it got there, else what went wrong."""
    vm = VM(arch, kernel, initramfs, Accel("kvm", "probe"), run_dir, progress,
            console_name="kvm-probe.log")
    try:
        with vm:
            vm.wait_for(INIT_MARK, deadline)
        return None
    except HarnessError as e:
        # QEMU's own "terminating on signal" line comes from our kill, not from the guest.
        text = "\n".join(line for line in (vm.console.text if vm.console else "").splitlines()
                         if "terminating on signal" not in line)
        m = re.search(r"KVM internal error.*|emulation failure.*|failed to initialize kvm.*", text, re.I)
        if m:
            why = m.group(0).strip()
        elif not text.strip():
            why = f"the guest printed nothing within {deadline:.0f} s under KVM"
        else:
            why = e.message.splitlines()[0]
        return f"{why} (log: {vm.console_log})"
