"""The KVM probe's answer is cached per host, but not forever, and its log outlives the run."""

import json
import time

from harness.config.arches import load_arch
from harness.core.progress import Quiet
from harness.guest import accel as vm

TIMEOUT = "the guest printed nothing within 15 s under KVM (log: /r/kvm-probe.log)"
KVM_ERROR = "KVM internal error. Suberror: 1 (log: /r/kvm-probe.log)"


def entry(failure, age):
    return {"failure": failure, "when": "then", "epoch": time.time() - age}


def test_a_probe_that_met_a_busy_machine_is_asked_again_after_an_hour(monkeypatch):
    monkeypatch.delenv("KHARNESS_KVM_REPROBE", raising=False)
    assert not vm._stale(entry(TIMEOUT, 600)) and vm._stale(entry(TIMEOUT, 4000))
    assert not vm._stale(entry(KVM_ERROR, 4000)) and vm._stale(entry(KVM_ERROR, 8 * 86400))
    assert not vm._stale(entry(None, 86400))
    assert vm._stale({"failure": KVM_ERROR, "when": "before epochs were kept"})
    monkeypatch.setenv("KHARNESS_KVM_REPROBE", "1")
    assert vm._stale(entry(None, 0))


def test_a_failed_probe_cites_a_log_kept_in_the_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("KHARNESS_KVM_REPROBE", raising=False)
    run_dir, cache = tmp_path / "run", tmp_path / "cache"
    run_dir.mkdir(), cache.mkdir()
    probes = []

    def probe(arch, kernel, initramfs, run_dir, progress):
        probes.append(arch.name)
        (run_dir / "kvm-probe.log").write_text("KVM internal error. Suberror: 1\n")
        return f"KVM internal error. Suberror: 1 (log: {run_dir / 'kvm-probe.log'})"

    monkeypatch.setattr(vm, "probe_kvm", probe)
    arch = load_arch("x86_64")
    first = vm._cached_probe(arch, tmp_path / "bzImage", tmp_path / "initrd", cache, run_dir, Quiet())
    assert first == f"KVM internal error. Suberror: 1 (log: {cache / 'kvm-probe-x86_64.log'})"
    assert (cache / "kvm-probe-x86_64.log").read_text().startswith("KVM internal error")
    again = vm._cached_probe(arch, tmp_path / "bzImage", tmp_path / "initrd", cache, tmp_path, Quiet())
    assert again == first and probes == ["x86_64"]


def test_doctor_shows_each_cached_probe_with_its_date_and_reprobe_forgets_them(tmp_path):
    from harness.run.doctor import kvm_verdicts
    (tmp_path / "kvm-probe.json").write_text(json.dumps({
        "x86_64: host 6.1 cpu qemu 7.2": {"failure": "QEMU exited (status 6)", "when": "2026-12-01T13:55:20"},
        "arm64: host 6.1 cpu qemu 7.2": {"failure": None, "when": "2026-11-30T09:00:00"}}))
    assert kvm_verdicts(tmp_path) == [
        "info    arm64 KVM probe of 2026-11-30T09:00:00: boots under KVM",
        "info    x86_64 KVM probe of 2026-12-01T13:55:20: failed: QEMU exited (status 6)"]
    assert kvm_verdicts(tmp_path, reprobe=True)[-1] == (
        "info    forgot 2 cached KVM probe answer(s): the next run probes again")
    assert not (tmp_path / "kvm-probe.json").exists() and kvm_verdicts(tmp_path) == []
