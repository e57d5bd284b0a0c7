"""The guest's userspace: an initramfs built from Debian packages of the target architecture.

Built without root and without running any guest binary (the target may be a foreign
architecture): packages are unpacked with ``dpkg-deb -x``, libraries are found from ELF headers
with the host's ``readelf``, and the cpio archive is written here, so ownership and device nodes
are whatever we say. Each image has its own SSH host key and client key; the harness pins the one
and logs in with the other.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from harness.config import CONFIG_DIR, load
from harness.config.arches import Arch
from harness.core import proc
from harness.core.cache import atomic_dir, atomic_file, complete, digest, locked
from harness.core.errors import ConfigError, HarnessError
from harness.core.progress import Progress, human_size
from harness.sources.debian import PrivateApt

STAGE = "guest-image"
FORMAT_VERSION = "guest-image-2"   # bump when the layout or anything written below changes
HOST_KEY_PATH = "etc/dropbear/dropbear_ed25519_host_key"

# PID 1 must never exit (the kernel panics), so nothing here uses `set -e` or `exec`s away.
# The kernel's DEVTMPFS_MOUNT does not apply to an initramfs: /dev is mounted here.
# sshd as early as it can answer (/dev, /proc, /tmp and the network): dropbear's start (loading
# its libraries, its host key) and the harness's key exchange then overlap the cgroup setup.
# (The network after dropbear measured slower: the first connections found no route.)
# dropbear logs "Not backgrounding" once it listens; "ready" says every mount is done, and the
# harness runs no command before it has seen both (vm.SSHD_MARK, vm.READY_MARK).
INIT_SCRIPT = f"""\
#!/bin/sh
echo "kharness-init: start"
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t devtmpfs devtmpfs /dev
# what udev would link: kselftest's runner appends to /dev/stdout (devtmpfs has none: the
# append would make a file of that name)
ln -s /proc/self/fd /dev/fd; ln -s fd/0 /dev/stdin; ln -s fd/1 /dev/stdout; ln -s fd/2 /dev/stderr
mount -t proc proc /proc
mount -t tmpfs tmpfs /tmp
ip link set lo up
ip addr add 10.0.2.15/24 dev eth0
ip link set eth0 up
ip route add default via 10.0.2.2
# dropbear 2022.83: -F foreground, -E log to the console, -s no password logins
dropbear -F -E -s -m -p 22 -P /tmp/dropbear.pid -r /{HOST_KEY_PATH} &
mount -t sysfs sysfs /sys
mkdir -p /dev/pts
mount -t devpts -o mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs cgroup /sys/fs/cgroup
# v1 memory hierarchy, unless the command line keeps memory for v2 (cgroup_no_v1=memory)
mkdir -p /sys/fs/cgroup/memory /sys/fs/cgroup/unified
case " $(cat /proc/cmdline) " in
*" cgroup_no_v1="*) rmdir /sys/fs/cgroup/memory ;;
*) mount -t cgroup -o memory memory /sys/fs/cgroup/memory ;;
esac
mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified
echo "kharness-init: ready"
while :; do sleep 86400; done
"""


@dataclass(frozen=True)
class GuestConfig:
    suite: str
    packages: tuple[str, ...]
    binaries: dict[str, str]       # path in the extracted packages -> path in the image
    busybox: str = "bin/busybox"   # image path of busybox; its applets get links beside it
    gzip_level: int = 9            # 0: a plain cpio archive

    def validate(self, file: Path, where: str) -> None:
        if self.busybox not in self.binaries.values():
            raise ConfigError(file, "busybox", f"{self.busybox!r} is not a destination in binaries")
        if not 0 <= self.gzip_level <= 9:
            raise ConfigError(file, "gzip_level", "expected 0 (no compression) to 9")

    @property
    def initramfs_name(self) -> str:
        return "initramfs.cpio.gz" if self.gzip_level else "initramfs.cpio"


@dataclass(frozen=True)
class GuestImage:
    initramfs: Path
    host_key: str
    client_key: Path
    key: str
    packages: tuple[str, ...]


def load_guest_config(path: Path = CONFIG_DIR / "guest.yaml") -> GuestConfig:
    return load(GuestConfig, path)


# --- cpio -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    mode: int                    # st_mode, type bits included
    data: bytes = b""            # file contents, or a symlink's target
    rdev: tuple[int, int] = (0, 0)


def directory(perm: int = 0o755) -> Entry:
    return Entry(stat.S_IFDIR | perm)


def regular(data: bytes, perm: int = 0o644) -> Entry:
    return Entry(stat.S_IFREG | perm, data)


def symlink(target: str) -> Entry:
    return Entry(stat.S_IFLNK | 0o777, target.encode())


def write_cpio(entries: Mapping[str, Entry], out: BinaryIO) -> None:
    """newc, uid/gid 0, mtime 0; missing parents added and written before their children,
    because the kernel's unpacker creates each entry as it reads it."""
    full = dict(entries)
    for name in entries:
        for parent in PurePosixPath(name).parents[:-1]:
            full.setdefault(str(parent), directory())
    for ino, name in enumerate(sorted(full, key=lambda n: n.split("/")), start=1):
        _write_member(out, name, full[name], ino)
    _write_member(out, "TRAILER!!!", Entry(0), 0)


def _write_member(out: BinaryIO, name: str, e: Entry, ino: int) -> None:
    raw = name.encode() + b"\0"
    nlink = 2 if stat.S_ISDIR(e.mode) else 1
    fields = (ino, e.mode, 0, 0, nlink, 0, len(e.data), 0, 0, *e.rdev, len(raw), 0)
    head = b"070701" + b"".join(b"%08X" % f for f in fields) + raw
    out.write(head + b"\0" * (-len(head) % 4))
    out.write(e.data + b"\0" * (-len(e.data) % 4))


# --- keys -----------------------------------------------------------------------------------

def _ssh_string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def dropbear_private_key(key: Ed25519PrivateKey) -> bytes:
    """dropbear 2022.83 loads host keys only in its own format (buf_put_ed25519_priv_key):
    string "ssh-ed25519", then one string holding the 32-byte seed and the 32-byte public key."""
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return _ssh_string(b"ssh-ed25519") + _ssh_string(seed + public)


def openssh_public_key(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()


def openssh_private_key(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption())


# --- the unpacked packages ------------------------------------------------------------------

def resolve_in_tree(root: Path, path: str, max_links: int = 40) -> Path:
    """Follow symlinks as if ``root`` were ``/``: libc6's /lib64/ld-linux-x86-64.so.2 is an
    absolute link, and following it on the host would pick the host's loader."""
    pending = [p for p in PurePosixPath(path).parts if p != "/"]
    done: list[str] = []
    links = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        here = root.joinpath(*done, part)
        if not here.is_symlink():
            done.append(part)
            continue
        links += 1
        if links > max_links:
            raise HarnessError(STAGE, f"too many levels of symlinks resolving {path} in {root}")
        target = os.readlink(here)
        if target.startswith("/"):
            done = []
        pending = [p for p in PurePosixPath(target).parts if p != "/"] + pending
    return root.joinpath(*done)


def elf_dependencies(path: Path) -> tuple[str | None, list[str]]:
    """(program interpreter, NEEDED sonames); the host's readelf reads any architecture's ELF."""
    out = _run(["readelf", "-W", "-d", "-l", str(path)])
    interp = re.search(r"Requesting program interpreter: ([^\]]+)\]", out)
    return (interp.group(1) if interp else None,
            re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out))


def _run(cmd: list[str], timeout: float = 300) -> str:
    return str(proc.run(cmd, STAGE, timeout, what=proc.quoted(cmd)).stdout)


def library_closure(root: Path, binaries: list[Path]) -> dict[str, Path]:
    """Image path -> unpacked file, for the loader and every library the binaries need,
    transitively. A library keeps its package's path, which Debian's loader searches without
    an ld.so.cache."""
    index: dict[str, str] = {}   # file name -> its shallowest path in the tree
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            rel = os.path.relpath(os.path.join(dirpath, name), root)
            index[name] = min(index.get(name, rel), rel, key=lambda r: (r.count("/"), r))
    found: dict[str, Path] = {}
    queue, seen = list(binaries), set()
    while queue:
        interp, needed = elf_dependencies(queue.pop(0))
        wanted = [(interp.lstrip("/"), interp)] if interp else []
        for soname in needed:
            if soname not in seen:
                seen.add(soname)
                if soname not in index:
                    raise HarnessError(STAGE, f"{soname} is needed but in no package: add its "
                                              "package to configs/guest.yaml")
                wanted.append((index[soname], index[soname]))
        for dest, src in wanted:
            if dest not in found:
                found[dest] = _unpacked_file(root, src)
                queue.append(found[dest])
    return found


def _unpacked_file(root: Path, path: str) -> Path:
    """``path`` in the unpacked packages, or under usr/ where a suite with a merged /usr
    (trixie) ships what older ones put in /bin and /sbin."""
    for candidate in (path, f"usr/{path}"):
        real = resolve_in_tree(root, candidate)
        if real.is_file():
            return real
    raise HarnessError(STAGE, f"{path} is not a file in the unpacked packages (nor usr/{path})")


def busybox_applets(binary: bytes) -> list[str]:
    """The applet names, read from busybox's own sorted, NUL-separated name table: the target's
    busybox cannot run on the host to print ``--list``."""
    # it starts with the applets "[" and "[[" (what comes before it differs between builds:
    # bookworm's has a NUL there, trixie's riscv64 a byte of other data)
    start = binary.find(b"[\0[[\0")
    while start >= 0:
        end = binary.find(b"\0\0", start)
        names = [n.decode("ascii", "replace") for n in binary[start:end].split(b"\0")]
        if "sh" in names and names == sorted(names):
            return names
        start = binary.find(b"[\0[[\0", start + 1)
    raise HarnessError(STAGE, "cannot find the applet name table in busybox")


def assemble(root: Path, config: GuestConfig, host_key: bytes,
             client_public: str) -> dict[str, Entry]:
    """The image's entries. /sbin, /usr/bin and /usr/sbin link to /bin, so every applet is on
    any PATH and `#!/usr/bin/env bash` works."""
    entries = {
        "dev/console": Entry(stat.S_IFCHR | 0o600, rdev=(5, 1)),  # opened before /init runs
        "proc": directory(), "sys": directory(), "tmp": directory(0o1777),
        "sbin": symlink("bin"), "usr/bin": symlink("../bin"), "usr/sbin": symlink("../bin"),
        "init": regular(INIT_SCRIPT.encode(), 0o755),
        "etc/passwd": regular(b"root:x:0:0:root:/root:/bin/sh\n"),
        "etc/group": regular(b"root:x:0:\n"),
        "etc/shells": regular(b"/bin/sh\n/bin/bash\n"),
        HOST_KEY_PATH: regular(host_key, 0o600),
        "root": directory(0o700), "root/.ssh": directory(0o700),
        "root/.ssh/authorized_keys": regular(client_public.encode() + b"\n", 0o600),
    }
    binaries = [_unpacked_file(root, src) for src in config.binaries]
    files = dict(zip(config.binaries.values(), binaries)) | library_closure(root, binaries)
    for dest, real in files.items():
        entries[dest] = regular(real.read_bytes(), stat.S_IMODE(real.stat().st_mode))
    busybox = PurePosixPath(config.busybox)
    for applet in busybox_applets(entries[config.busybox].data):
        entries.setdefault(str(busybox.parent / applet), symlink(busybox.name))
    return entries


# --- apt ------------------------------------------------------------------------------------

def parse_candidates(policy: str) -> dict[str, str]:
    """Package name -> candidate version, from `apt-cache policy p1 p2 ...` output."""
    versions: dict[str, str] = {}
    current = None
    for line in policy.splitlines():
        if line and not line[0].isspace() and line.endswith(":"):
            current = line[:-1].split(":")[0]
        elif current and (m := re.match(r"\s+Candidate: (\S+)", line)) and m.group(1) != "(none)":
            versions[current] = m.group(1)
    return versions


def resolve_packages(apt: PrivateApt, arch: str, packages: tuple[str, ...],
                     cache: Path) -> tuple[str, ...]:
    """Each package as name:arch=version. Remembered per state of the apt lists, because
    apt-cache parses ~19 MB of lists on every call (~0.5 s here) for an answer that changes
    only when the lists do."""
    specs = [f"{p}:{arch}" for p in packages]
    lists = sorted((apt.root / "state" / "lists").glob("*_*"))
    fingerprint = digest(f"{p.name} {p.stat().st_size} {p.stat().st_mtime_ns}" for p in lists)
    memo = cache / "images" / ".versions" / f"{digest([apt.suite, *specs])[:20]}.json"
    try:
        saved = json.loads(memo.read_text())
        if saved["lists"] == fingerprint:
            return tuple(saved["packages"])
    except (OSError, ValueError, KeyError):
        pass
    versions = parse_candidates(apt.run("apt-cache", ["policy", *specs], timeout=300))
    missing = [p for p in packages if p not in versions]
    if missing:
        raise HarnessError(STAGE, f"not in Debian {apt.suite} for {arch}: {', '.join(missing)}")
    resolved = tuple(f"{p}:{arch}={versions[p]}" for p in packages)
    with atomic_file(memo, "w") as f:
        json.dump({"lists": fingerprint, "packages": resolved}, f)
    return resolved


# --- the stage ------------------------------------------------------------------------------

def build_guest_image(arch: Arch, cache: Path, progress: Progress) -> GuestImage:
    """The cached image for ``arch``, built on first use; only version resolution runs on a hit."""
    config = load_guest_config()
    darch = arch.debian_arch
    suite = arch.guest_suite or config.suite
    apt = PrivateApt(cache, suite, architectures=(darch,))
    start = time.monotonic()
    apt.update()
    packages = resolve_packages(apt, darch, config.packages, cache)
    progress.info(f"guest image {darch}: {len(packages)} packages from {suite} resolved "
                  f"in {time.monotonic() - start:.1f} s")
    key = digest([FORMAT_VERSION, darch, *packages, INIT_SCRIPT, config.busybox,
                  json.dumps(config.binaries, sort_keys=True), str(config.gzip_level)])[:20]
    final = cache / "images" / key
    with locked(cache / "images" / ".locks" / key):
        # what a boot opens: an entry without one of them is made again (cache.complete)
        if complete(final, (config.initramfs_name, "host_key.pub", "client_key")):
            progress.info(f"guest image {darch}: cached {final}")
            os.utime(final)  # most recently used, for `kharness clean`
        else:
            with atomic_dir(final, owned=True) as out, tempfile.TemporaryDirectory(prefix="kh-guest-") as tmp:
                _build(apt, config, packages, Path(tmp), out, darch, progress)
            written = (final / config.initramfs_name).stat().st_size
            progress.info(f"guest image {darch}: written {human_size(written)} to {final}")
    return GuestImage(initramfs=final / config.initramfs_name,
                      host_key=(final / "host_key.pub").read_text().strip(),
                      client_key=final / "client_key", key=key, packages=packages)


def _build(apt: PrivateApt, config: GuestConfig, packages: tuple[str, ...], tmp: Path, out: Path,
           darch: str, progress: Progress) -> None:
    progress.info(f"guest image {darch}: downloading {len(packages)} packages")
    debs = apt.download(list(packages), tmp / "debs")
    progress.info(f"guest image {darch}: downloaded {len(debs)} .debs, "
                  f"{human_size(sum(d.stat().st_size for d in debs))}")
    root = tmp / "root"
    for deb in debs:
        _run(["dpkg-deb", "-x", str(deb), str(root)])
    host, client = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    entries = assemble(root, config, dropbear_private_key(host), openssh_public_key(client))
    size = sum(len(e.data) for e in entries.values())
    progress.info(f"guest image {darch}: assembled {len(entries)} entries, {human_size(size)}")
    with open(out / config.initramfs_name, "wb") as raw:
        if config.gzip_level:
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=config.gzip_level, mtime=0) as gz:
                write_cpio(entries, gz)
        else:
            write_cpio(entries, raw)
    (out / "host_key.pub").write_text(openssh_public_key(host) + "\n")
    (out / "client_key").write_bytes(openssh_private_key(client))
    (out / "client_key").chmod(0o600)
    (out / "client_key.pub").write_text(openssh_public_key(client) + "\n")
    (out / "packages.txt").write_text("".join(p + "\n" for p in packages))
    (out / "init").write_text(INIT_SCRIPT)
