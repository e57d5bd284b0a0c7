"""Safe extraction of kernel tarballs: Python checks each member while GNU tar extracts, and tar
never sees a member (an absolute path, a '..', a device, a link out of the tree) before its check
passed."""

from __future__ import annotations

import os
import tarfile
import tempfile
from contextlib import suppress
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO

from harness.core import proc
from harness.core.errors import HarnessError

EXTRACT_TIMEOUT = 1800.0
DECOMPRESSORS = {b"\xfd7zXZ\x00": "xz", b"\x1f\x8b": "gzip", b"BZh": "bzip2",
                 b"\x28\xb5\x2f\xfd": "zstd"}


def untar_file(tarball: Path, dest: Path) -> None:
    """Extract a tarball, compressed or not, checked member by member."""
    with tarball.open("rb") as f:
        head = f.read(6)
    tool = next((t for magic, t in DECOMPRESSORS.items() if head.startswith(magic)), None)
    if tool is None:
        with tarball.open("rb") as f:
            untar_stream(f, dest, tarball.name)
    else:
        untar_command([tool, "-dc", str(tarball)], dest, tarball.name)


def untar_command(cmd: list[str], dest: Path, label: str) -> None:
    """Extract the tar stream a command writes (a decompressor, ``git archive``)."""
    with tempfile.TemporaryFile() as err:
        with proc.child(cmd, "source", EXTRACT_TIMEOUT, stdout=proc.PIPE, stderr=err) as producer:
            assert producer.popen.stdout
            untar_stream(producer.popen.stdout, dest, label)
            rc = producer.popen.wait()
            if producer.timed_out:
                raise HarnessError("source", f"{label}: {cmd[0]} killed after {EXTRACT_TIMEOUT:.0f} s")
            if rc != 0:
                raise HarnessError("source", f"{label}: {cmd[0]} failed: {_tail(err)}")


def untar_stream(src: IO[bytes], dest: Path, label: str) -> None:
    """Check members in Python while GNU tar extracts them, in parallel; tar never sees a header
    before its check passed.

    Measured on 2 cores with the 122 MB 5.10 tarball into tmpfs: tar -x 12-14 s, this pipeline
    16-17 s, tarfile.extractall(filter="data") 20-24 s (on disk, writeback adds 0-20 s to each).
    """
    with tempfile.TemporaryFile() as err:
        with proc.child(["tar", "-x", "-f", "-", "-C", str(dest), "--no-same-owner",
                         "--no-same-permissions"], "source", EXTRACT_TIMEOUT, stdin=proc.PIPE,
                        stdout=proc.DEVNULL, stderr=err) as tar:
            stdin = tar.popen.stdin
            assert stdin
            try:
                _check_members(_Gate(src, stdin), label)
                stdin.write(bytes(1024))  # end-of-archive: tar sees only checked members
                stdin.close()
                broken = False
            except BrokenPipeError:
                broken = True
            if tar.popen.wait() != 0 or broken or tar.timed_out:
                raise HarnessError("source", f"{label}: tar failed: {_tail(err) or 'it exited'}"
                                   f"{_disk_full(dest)}")


def _disk_full(dest: Path) -> str:
    """tar reports a full disk as a short write ("Wrote only 1536 of 10240 bytes"): say it."""
    with suppress(OSError):
        st = os.statvfs(dest)
        if st.f_bavail * st.f_frsize < 256 << 10:
            return f" (No space left on device: {dest.parent})"
    return ""


def _tail(log: BinaryIO) -> str:
    log.seek(0)
    return log.read().decode(errors="replace").strip()[-300:]


class _Gate:
    """A reader for tarfile that passes bytes on to tar only up to the last checked member."""

    def __init__(self, src: IO[bytes], sink: IO[bytes]):
        self.src, self.sink = src, sink
        self.held, self.start, self.allowed = bytearray(), 0, 0

    def read(self, n: int = -1) -> bytes:
        data = self.src.read(n)
        self.held += data
        self.allow(self.allowed)
        return data

    def allow(self, upto: int) -> None:
        self.allowed = upto
        k = min(upto - self.start, len(self.held))
        if k > 0:
            self.sink.write(self.held[:k])
            del self.held[:k]
            self.start += k

    def rest_is_padding(self) -> bool:
        """Read to the end (a decompressor checks its CRC there): only zeros may follow."""
        if bytes(self.held[self.allowed - self.start:]).strip(b"\0"):
            return False
        while chunk := self.src.read(1 << 20):
            if chunk.strip(b"\0"):
                return False
        return True


def _check_members(gate: _Gate, label: str) -> None:
    links: dict[str, str] = {}
    try:
        with tarfile.open(fileobj=gate, mode="r|", bufsize=1 << 16) as tf:  # type: ignore
            for member in tf:
                _check_member(member, links, label)
                gate.allow(tf.offset)
    except tarfile.TarError as e:
        raise HarnessError("source", f"{label}: not a readable tar archive: {e}")
    for name, target in links.items():  # again, now that later links are known too
        if _resolve(f"{name.rpartition('/')[0]}/{target}", links) is None:
            raise _refused(label, name, f"is a symlink to {target!r}, outside the tree")
    if not gate.rest_is_padding():
        raise HarnessError("source", f"{label}: unreadable data after byte {gate.allowed}")


def _check_member(m: tarfile.TarInfo, links: dict[str, str], label: str) -> None:
    """Everything tar could be made to write must stay inside the tree (cf. the 'data' filter)."""
    if m.name.startswith("/"):
        raise _refused(label, m.name, "has an absolute path")
    parts = PurePosixPath(m.name).parts
    if ".." in parts:
        raise _refused(label, m.name, "has a '..' component")
    if not (m.isreg() or m.isdir() or m.issym() or m.islnk()):
        raise _refused(label, m.name, "is a device, fifo or other special file")
    if not parts and not m.isdir():
        raise _refused(label, m.name, "would replace the tree's root")
    if any("/".join(parts[:i]) in links for i in range(1, len(parts))):
        raise _refused(label, m.name, "would be written through a symlink")
    if m.issym():
        target = _resolve("/".join([*parts[:-1], m.linkname]), links)
        if m.linkname.startswith("/") or target is None:
            raise _refused(label, m.name, f"is a symlink to {m.linkname!r}, outside the tree")
        links["/".join(parts)] = m.linkname
    if m.islnk():
        if m.linkname.startswith("/") or _resolve(m.linkname, links) in (None, ""):
            raise _refused(label, m.name, f"is a hardlink to {m.linkname!r}, outside the tree")


def _resolve(path: str, links: dict[str, str]) -> str | None:
    """Follow the archive's own symlinks without touching the disk; None if the path escapes."""
    pending, hops = path.split("/"), 0
    out: list[str] = []
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not out:
                return None
            out.pop()
            continue
        out.append(part)
        target = links.get("/".join(out))
        if target is not None:
            hops += 1
            if hops > 64 or target.startswith("/"):
                return None
            out.pop()
            pending[:0] = target.split("/")
    return "/".join(out)


def _refused(label: str, member: str, why: str) -> HarnessError:
    return HarnessError("source", f"{label}: refusing member {member!r}: it {why}")
