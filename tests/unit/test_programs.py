"""Guest helpers are compiled for real, static, for each arch's machine; a broken one is named."""

import subprocess

import pytest

from harness import programs
from harness.arches import load_arch
from harness.errors import HarnessError
from harness.progress import Progress

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
