"""Guest helpers are compiled for real, static, for each arch's machine; a broken one is named."""

import subprocess

import pytest

from harness.build import programs
from harness.config.arches import load_arch
from harness.core.errors import HarnessError
from harness.core.progress import Progress

MACHINE = {"x86_64": "X86-64", "arm64": "AArch64"}


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_helpers_are_static_binaries_for_the_guest_and_cached(arch, tmp_path):
    out = programs.build_helpers(load_arch(arch), ("kstack-pin.c",), tmp_path, tmp_path / "run",
                                 Progress(live=False))
    binary = tmp_path / "kstack-pin"
    binary.write_bytes(out["kstack-pin"])
    header = subprocess.run(["readelf", "-h", "-d", str(binary)], capture_output=True, text=True).stdout
    assert MACHINE[arch] in header and "NEEDED" not in header   # the guest has no C library
    (log := tmp_path / "run" / "programs.log").unlink()
    again = programs.build_helpers(load_arch(arch), ("kstack-pin.c",), tmp_path, tmp_path / "run",
                                   Progress(live=False))
    assert again == out and not log.exists()                    # cached: no compiler ran


def test_a_helper_that_does_not_compile_is_an_error_naming_it(tmp_path, monkeypatch):
    (tmp_path / "guest-scripts").mkdir()
    (tmp_path / "guest-scripts" / "broken.c").write_text("int main(void) { return nope; }\n")
    monkeypatch.setattr(programs, "REPO_ROOT", tmp_path)
    with pytest.raises(HarnessError, match=r"building guest-scripts/broken.c failed \(exit 1\): .*nope"):
        programs.build_helpers(load_arch("x86_64"), ("broken.c",), tmp_path / "cache", tmp_path / "run",
                               Progress(live=False))
    assert not list((tmp_path / "cache" / "programs" / "x86_64").glob("broken-*[!k]"))  # nothing cached


@pytest.fixture(scope="module")
def ptyrun(tmp_path_factory):
    """guest-scripts/ptyrun.c as the harness builds it for an x86_64 guest (static: it runs here)."""
    if not load_arch("x86_64").native:
        pytest.skip("the x86_64 guest's helpers do not run on this host")
    tmp = tmp_path_factory.mktemp("ptyrun")
    binary = tmp / "ptyrun"
    binary.write_bytes(programs.build_helpers(load_arch("x86_64"), ("ptyrun.c",), tmp, tmp / "run",
                                              Progress(live=False))["ptyrun"])
    binary.chmod(0o755)
    return binary


def test_ptyrun_kills_a_stalled_tests_workload_and_the_program_goes_on(ptyrun):
    # a selftest program whose second test's child never ends (5.10's test_memcg_high)
    script = 'echo "ok 1 first"; sleep 600 & wait; echo "not ok 2 second"; echo "ok 3 third"'
    out = subprocess.run([str(ptyrun), "sh", "-c", script], env={"PTYRUN_STALL": "1", "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=60)
    lines = out.stdout.splitlines()
    assert lines[0] == "ok 1 first" and lines[-2:] == ["not ok 2 second", "ok 3 third"]
    assert ('kharness-note sh wrote nothing for 1 s after "ok 1 first": killed its children '
            "(the running test's workload)") in lines
    assert out.returncode == 0


def test_ptyrun_kills_a_stalled_program_without_children_and_keeps_its_status(ptyrun):
    out = subprocess.run([str(ptyrun), "sleep", "600"], env={"PTYRUN_STALL": "1", "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.splitlines() == ['kharness-note sleep wrote nothing for 1 s after "": killed it']
    assert out.returncode == 128 + 9
