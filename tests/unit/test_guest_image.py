"""The guest image's parts, checked by the tools that read them: cpio, dropbearkey, paramiko."""

from __future__ import annotations

import base64
import io
import os
import shutil
import stat
import subprocess
from pathlib import Path

import paramiko
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harness.build.image import (
    HOST_KEY_PATH,
    INIT_SCRIPT,
    Entry,
    GuestConfig,
    busybox_applets,
    directory,
    dropbear_private_key,
    library_closure,
    load_guest_config,
    openssh_private_key,
    openssh_public_key,
    parse_candidates,
    regular,
    resolve_in_tree,
    symlink,
    write_cpio,
)
from harness.core.errors import HarnessError
from harness.guest.vm import READY_MARK

needs_cpio = pytest.mark.skipif(shutil.which("cpio") is None, reason="cpio not installed")


def cpio_bytes(entries: dict[str, Entry]) -> bytes:
    out = io.BytesIO()
    write_cpio(entries, out)
    return out.getvalue()


def run(cmd: list[str], data: bytes = b"", cwd: Path | None = None) -> str:
    proc = subprocess.run(cmd, input=data, capture_output=True, cwd=cwd, timeout=30, check=True)
    return proc.stdout.decode()


# --- cpio -----------------------------------------------------------------------------------

@needs_cpio
def test_cpio_lists_a_console_character_device_owned_by_root():
    archive = cpio_bytes({"dev/console": Entry(stat.S_IFCHR | 0o600, rdev=(5, 1))})
    listing = run(["cpio", "-t", "-v", "--numeric-uid-gid"], archive)
    (line,) = [l for l in listing.splitlines() if l.endswith("dev/console")]
    assert line.startswith("crw-------")
    assert line.split()[2:5] == ["0", "0", "5,"]


@needs_cpio
def test_cpio_extracts_files_with_their_modes_and_symlinks_with_their_targets(tmp_path):
    archive = cpio_bytes({
        "bin/tool": regular(b"#!/bin/sh\necho odd length", 0o750),
        "bin/sh": symlink("tool"),
        "tmp": directory(0o1777),
    })
    run(["cpio", "-i", "-d", "--quiet"], archive, cwd=tmp_path)
    assert (tmp_path / "bin/tool").read_bytes() == b"#!/bin/sh\necho odd length"
    assert stat.S_IMODE((tmp_path / "bin/tool").stat().st_mode) == 0o750
    assert os.readlink(tmp_path / "bin/sh") == "tool"
    assert stat.S_IMODE((tmp_path / "tmp").stat().st_mode) == 0o1777


@needs_cpio
def test_cpio_writes_missing_parent_directories_before_their_children():
    archive = cpio_bytes({"usr/lib/x/libz.so.1": regular(b"z"), "bin/busybox": regular(b"b")})
    names = run(["cpio", "-t", "--quiet"], archive).split()
    assert names == ["bin", "bin/busybox", "usr", "usr/lib", "usr/lib/x", "usr/lib/x/libz.so.1"]


# --- the unpacked packages ------------------------------------------------------------------

def test_absolute_symlink_resolves_inside_the_tree_not_on_the_host(tmp_path):
    (tmp_path / "lib/x86_64").mkdir(parents=True)
    (tmp_path / "lib/x86_64/ld.so").write_bytes(b"the guest's loader")
    (tmp_path / "lib64").mkdir()
    (tmp_path / "lib64/ld.so").symlink_to("/lib/x86_64/ld.so")
    assert resolve_in_tree(tmp_path, "/lib64/ld.so") == tmp_path / "lib/x86_64/ld.so"


def test_dotdot_symlinks_stop_at_the_tree_root(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib/escape").symlink_to("../../../../etc/passwd")
    assert resolve_in_tree(tmp_path, "lib/escape") == tmp_path / "etc/passwd"


def test_symlinked_directories_resolve_inside_the_tree(tmp_path):
    (tmp_path / "usr/lib").mkdir(parents=True)
    (tmp_path / "usr/lib/libz.so.1").write_bytes(b"z")
    (tmp_path / "lib").symlink_to("/usr/lib")
    assert resolve_in_tree(tmp_path, "/lib/libz.so.1") == tmp_path / "usr/lib/libz.so.1"


def test_symlink_loops_are_an_error(tmp_path):
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("/a")
    with pytest.raises(HarnessError, match="too many levels"):
        resolve_in_tree(tmp_path, "a")


HOST_LOADER = Path("/lib64/ld-linux-x86-64.so.2")
HOST_LIBC = Path("/lib/x86_64-linux-gnu/libc.so.6")
needs_host_glibc = pytest.mark.skipif(not (HOST_LOADER.exists() and HOST_LIBC.exists()
                                           and shutil.which("readelf")),
                                      reason="needs an x86_64 Debian host and readelf")


def fake_libc_tree(root: Path, with_libc: bool = True) -> Path:
    """A tree laid out like libc6's package, with real ELF files copied from the host."""
    (root / "bin").mkdir()
    shutil.copy(shutil.which("true"), root / "bin/true")
    (root / "lib/x86_64-linux-gnu").mkdir(parents=True)
    shutil.copy(HOST_LOADER.resolve(), root / "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    if with_libc:
        shutil.copy(HOST_LIBC.resolve(), root / "lib/x86_64-linux-gnu/libc.so.6")
    (root / "lib64").mkdir()
    (root / "lib64/ld-linux-x86-64.so.2").symlink_to("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    return root / "bin/true"


@needs_host_glibc
def test_library_closure_takes_the_loader_and_libraries_from_the_tree(tmp_path):
    binary = fake_libc_tree(tmp_path)
    assert library_closure(tmp_path, [binary]) == {
        "lib64/ld-linux-x86-64.so.2": tmp_path / "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        "lib/x86_64-linux-gnu/libc.so.6": tmp_path / "lib/x86_64-linux-gnu/libc.so.6",
    }


@needs_host_glibc
def test_a_library_missing_from_the_packages_is_an_error_naming_it(tmp_path):
    binary = fake_libc_tree(tmp_path, with_libc=False)
    with pytest.raises(HarnessError, match="libc.so.6 is needed but in no package"):
        library_closure(tmp_path, [binary])


def test_busybox_applets_are_read_from_its_name_table():
    binary = b"\x7fELF junk\0usage\0[\0[[\0ash\0ip\0mount\0sh\0\0more junk"
    assert busybox_applets(binary) == ["[", "[[", "ash", "ip", "mount", "sh"]
    # trixie's riscv64 busybox: no NUL before the table; a "[" elsewhere that is no table
    riscv = b"\x7fELF [\0[[\0x\0\0 data\xae [\0[[\0ash\0ip\0mount\0sh\0\0junk"
    assert busybox_applets(riscv) == ["[", "[[", "ash", "ip", "mount", "sh"]


def test_a_busybox_without_a_name_table_is_an_error():
    with pytest.raises(HarnessError, match="applet name table"):
        busybox_applets(b"\x7fELF nothing here\0\0")


# --- keys -----------------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("dropbearkey") is None, reason="dropbearkey not installed")
def test_dropbear_reads_the_host_key_and_derives_the_same_public_key(tmp_path):
    key = Ed25519PrivateKey.generate()
    (tmp_path / "host_key").write_bytes(dropbear_private_key(key))
    out = run(["dropbearkey", "-y", "-f", str(tmp_path / "host_key")])
    (line,) = [l for l in out.splitlines() if l.startswith("ssh-ed25519 ")]
    assert line.split()[:2] == openssh_public_key(key).split()


def test_paramiko_loads_the_client_key_that_authorized_keys_names(tmp_path):
    key = Ed25519PrivateKey.generate()
    (tmp_path / "client_key").write_bytes(openssh_private_key(key))
    loaded = paramiko.Ed25519Key.from_private_key_file(str(tmp_path / "client_key"))
    kind, b64 = openssh_public_key(key).split()
    assert (loaded.get_name(), loaded.get_base64()) == (kind, b64)
    assert base64.b64decode(b64) == loaded.asbytes()


# --- /init and config -----------------------------------------------------------------------

def test_init_prints_its_start_marker_before_doing_anything_else():
    lines = INIT_SCRIPT.splitlines()
    assert lines[0] == "#!/bin/sh"
    assert lines[1] == 'echo "kharness-init: start"'


def test_init_starts_dropbear_first_and_says_ready_after_every_mount():
    lines = INIT_SCRIPT.splitlines()
    (dropbear,) = [i for i, l in enumerate(lines) if l.startswith("dropbear ")]
    assert f"-r /{HOST_KEY_PATH}" in lines[dropbear] and " -s " in lines[dropbear]
    assert lines[dropbear].endswith("&") and " -E " in lines[dropbear]   # logs SSHD_MARK on the console
    before = [l.split()[-1] for l in lines[:dropbear] if l.startswith("mount ")]
    assert before == ["/dev", "/proc", "/tmp"]                              # what dropbear needs
    ready = lines.index(f'echo "{READY_MARK}"')
    setup = [i for i, l in enumerate(lines) if l.lstrip("*) ").startswith(("mount ", "ip ", "mkdir "))]
    assert max(setup) < ready and ready == len(lines) - 2
    assert max(i for i, l in enumerate(lines) if l.startswith("ip ")) < dropbear  # it can answer


# /init itself run by the host's sh, every command it calls a shell function that logs its
# arguments (functions come before PATH; its PATH line points nowhere, so that a command not
# stubbed is an error, never the host's own): what it does, not what its text says.
STUBS = """
log() { echo "$*" >> "$TRACE"; }
mount() { log mount "$@"; }
ip() { log ip "$@"; }
mkdir() { log mkdir "$@"; }
rmdir() { log rmdir "$@"; }
ln() { log ln "$@"; }
dropbear() { log dropbear "$@"; }
cat() { echo "$CMDLINE"; }
sleep() { log sleep "$@"; n=$((${n:-0} + 1)); [ "$n" -lt 3 ] || exit 0; }
"""


def run_init(tmp_path, cmdline: str) -> list[str]:
    import subprocess
    path = "export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root"
    assert path in INIT_SCRIPT.splitlines()   # kept from the host: a command not stubbed fails
    (tmp_path / "init").write_text(INIT_SCRIPT.replace(path, "export PATH=/nonexistent HOME=/nonexistent"))
    trace = tmp_path / "trace"
    out = subprocess.run(["/bin/sh", "-c", STUBS + '. "$1"', "sh", str(tmp_path / "init")], capture_output=True,
                         text=True, timeout=30, env={"TRACE": str(trace), "CMDLINE": cmdline, "PATH": "/nonexistent"})
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert out.stdout.splitlines() == ["kharness-init: start", f"{READY_MARK}"]
    return [line for line in trace.read_text().splitlines() if not line.startswith("dropbear ")]


@pytest.mark.parametrize("cmdline, memory", [
    ("console=ttyS0", "mount -t cgroup -o memory memory /sys/fs/cgroup/memory"),
    ("console=ttyS0 cgroup_no_v1=memory", "rmdir /sys/fs/cgroup/memory")])
def test_init_run_mounts_what_the_guest_needs_and_the_v1_memory_hierarchy_unless_told(tmp_path, cmdline, memory):
    trace = run_init(tmp_path, cmdline)
    mounts = [line.split()[-1] for line in trace if line.startswith("mount ")]
    assert mounts[:3] == ["/dev", "/proc", "/tmp"]   # what dropbear needs first
    assert {"/sys", "/dev/pts", "/sys/fs/cgroup", "/sys/fs/cgroup/unified"} <= set(mounts)
    assert memory in trace and ("/sys/fs/cgroup/memory" in mounts) == ("cgroup_no_v1" not in cmdline)
    for line in ("mount -t proc proc /proc", "mount -t sysfs sysfs /sys", "mount -t devtmpfs devtmpfs /dev",
                 "mount -t tmpfs tmpfs /tmp", "mount -t tmpfs cgroup /sys/fs/cgroup",
                 "mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified", "ip addr add 10.0.2.15/24 dev eth0",
                 "ip route add default via 10.0.2.2"):
        assert line in trace
    assert trace[-3:] == ["sleep 86400"] * 3   # after ready, it sleeps for ever: never exits


def test_candidate_versions_are_read_from_apt_cache_policy():
    policy = ("busybox-static:\n  Installed: (none)\n  Candidate: 1:1.35.0-4+b3\n"
              "  Version table:\n     1:1.35.0-4+b3 500\n"
              "zlib1g:arm64:\n  Installed: (none)\n  Candidate: 1:1.2.13.dfsg-1\n"
              "gone:\n  Installed: (none)\n  Candidate: (none)\n")
    assert parse_candidates(policy) == {"busybox-static": "1:1.35.0-4+b3",
                                        "zlib1g": "1:1.2.13.dfsg-1"}


def test_the_guest_config_names_busybox_bash_and_dropbear():
    config = load_guest_config()
    assert isinstance(config, GuestConfig)
    assert {"busybox-static", "bash-static", "dropbear-bin"} <= set(config.packages)
    assert {"bin/busybox", "bin/bash", "bin/dropbear"} <= set(config.binaries.values())
