"""What kharness hands to QEMU, make and the guest, and what it renders for people and CI,
compared with reference files under tests/golden/ (as tuxrun does with its LAVA definitions).

A change to any of them shows up here as a diff to read, not as a surprise in a run. After a
deliberate change, `KHARNESS_REGOLD=1 pytest tests/unit/test_golden.py` writes the files anew;
the diff then goes into the commit.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

import pytest

from harness import REPO_ROOT
from harness.build.image import INIT_SCRIPT
from harness.build.kbuild import build_command, make_args
# the arches of every run (--arch all): an arch that runs only when named is data alone, its
# command lines its YAML's
from harness.config.arches import default_arches, load_arch
from harness.guest.vm import qemu_command
from harness.output.formats import render
from harness.output.report import load

GOLDEN = REPO_ROOT / "tests" / "golden"
REGOLD = os.environ.get("KHARNESS_REGOLD") == "1"
KERNEL, INITRAMFS = Path("/cache/kernels/KEY/image"), Path("/cache/images/KEY/initramfs.cpio.gz")


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if REGOLD:   # written, not compared: a skip, so that a run that wrote files never reads as passed
        path.write_text(text)
        pytest.skip(f"{name}: written anew (KHARNESS_REGOLD=1): read the diff before committing it")
    assert path.is_file(), f"{path} is missing: KHARNESS_REGOLD=1 writes it"
    assert text == path.read_text(), f"{name} differs from {path} (KHARNESS_REGOLD=1 to accept)"


@pytest.mark.parametrize("arch", default_arches())
@pytest.mark.parametrize("accel", ["tcg", "kvm"])
def test_qemu_command_line(arch, accel):
    a = load_arch(arch)
    lines = [shlex.join(qemu_command(a, KERNEL, INITRAMFS, accel, 2222)),
             shlex.join(qemu_command(a, KERNEL, INITRAMFS, accel, 2222, "cgroup_no_v1=memory"))]
    golden(f"qemu-{arch}-{accel}.txt", "\n".join(lines) + "\n")


@pytest.mark.parametrize("arch", default_arches())
def test_make_command_lines(arch):
    a = load_arch(arch)
    src, out = Path("/cache/git/TREE/work"), Path("/cache/builds/arch/SLOT")
    lines = [shlex.join(make_args(a, src, out, ("tinyconfig",))),
             shlex.join(make_args(a, src, out, ("olddefconfig",))),
             shlex.join(build_command(a, src, out, (), True, 2)),
             shlex.join(build_command(a, src, out, ("WERROR=0",), False, 8))]
    golden(f"make-{arch}.txt", "\n".join(lines) + "\n")


def test_guest_init_script():
    golden("init.sh", INIT_SCRIPT)


@pytest.mark.parametrize("name", ["summary.txt", "summary.md", "junit.xml"])
def test_reports_rendered_from_a_fixed_report_json(tmp_path, name):
    """report.json of a real A/B run (both arches, the series' five scenarios), with the logs
    junit.xml attaches."""
    shutil.copytree(GOLDEN / "run", tmp_path / "run")
    meta, runs = load(tmp_path / "run")
    render(tmp_path / "run", meta, runs)
    golden(name, (tmp_path / "run" / name).read_text())
