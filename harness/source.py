"""Kernel sources: fetch from the first provider that works, verify, and extract once per content.

A tree is keyed by what it is (the tarball's sha256, the git commit), never by where it came from,
so two configs naming the same tarball share one extraction, and nothing is trusted before it has
been verified: a download is renamed into its key only once its sha256 matched, and an archive is
extracted only member by member as each one is checked.
"""

from __future__ import annotations

import base64
import fnmatch
import functools
import hashlib
import itertools
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from urllib.parse import urlparse

import requests

from .cache import atomic_dir, atomic_file, digest, locked, sha256_file
from .config import KernelConfig, SourceSpec
from .debian import PrivateApt
from .errors import HarnessError, os_failure
from .git import git_out
from .progress import Progress

HTTP_TIMEOUT = (15.0, 60.0)  # connect, read (between bytes)
EXTRACT_TIMEOUT = 1800.0
GIT_TIMEOUT = 1800.0
GPG_TIMEOUT = 60.0
KERNEL_ORG = "https://cdn.kernel.org/pub/linux/kernel"
DECOMPRESSORS = {b"\xfd7zXZ\x00": "xz", b"\x1f\x8b": "gzip", b"BZh": "bzip2",
                 b"\x28\xb5\x2f\xfd": "zstd"}


@dataclass(frozen=True)
class SourceTree:
    path: Path  # extracted kernel tree (dir containing the top Makefile), read-only by convention
    version: str  # exact kernel version from the tree's Makefile, e.g. "5.10.262"
    provider: str  # "url" | "kernelorg" | "debian" | "path" | "git"
    origin: str  # human-readable: URL, debian suite/package/version, path, "repo@ref"
    sha256: str  # sha256 of the tarball; commit id for git; for a directory, a digest


def fetch_source(kernel: KernelConfig, cache: Path, progress: Progress) -> SourceTree:
    """Try each source in order: a mirror being down must not stop a run another one can serve."""
    reasons = []
    total = len(kernel.sources)
    for i, spec in enumerate(kernel.sources, 1):
        try:
            tree = PROVIDERS[spec.type](spec, cache, progress)
            _check_series(tree, kernel.version)
        except (HarnessError, OSError) as e:
            reason = (e if isinstance(e, HarnessError) else os_failure("source", e)).message
            reasons.append(f"{i}/{total} ({spec.type}): {reason}")
            progress.info(f"source {i}/{total} ({spec.type}): {reason}"
                          + (", trying next" if i < total else ""))
            continue
        progress.info(f"source: Linux {tree.version} from {tree.origin} at {tree.path}")
        return tree
    raise HarnessError("source", f"no source of {kernel.name} worked: " + "; ".join(reasons))


def _check_series(tree: SourceTree, series: str) -> None:
    """A source that yields another kernel series is a wrong config, not a usable fallback."""
    if tree.version != series and not tree.version.startswith(series + "."):
        raise HarnessError("source", f"{tree.origin} is Linux {tree.version}, expected {series}.x")


# --- providers ----------------------------------------------------------------------------------


def _from_url(spec: SourceSpec, cache: Path, progress: Progress) -> SourceTree:
    assert spec.url and spec.sha256
    tarball = download(spec.url, spec.sha256, cache, progress)
    tree = extract_tarball(tarball, spec.sha256, cache, progress)
    return _tree(tree, "url", spec.url, spec.sha256)


def _from_debian(spec: SourceSpec, cache: Path, progress: Progress) -> SourceTree:
    assert spec.suite and spec.version
    apt = PrivateApt(cache, spec.suite, sources=True)
    progress.info(f"source: {spec.suite} package lists (private apt under {apt.root})")
    try:
        apt.update()
    except HarnessError as e:  # offline: lists from an earlier update still name the versions
        if not any((apt.root / "state/lists").glob("*_Sources*")):
            raise
        progress.info(f"source: {e.message}; using the package lists of an earlier update")
    versions = apt.source_versions(spec.package)
    version = pick_debian_version(versions, spec.version)
    if version is None:
        raise HarnessError("source", f"no {spec.package} source in {spec.suite} matches "
                                     f"{spec.version} (have: {', '.join(versions) or 'none'})")
    tarball = _debian_tarball(apt, spec.package, version, cache, progress)
    sha = tarball.parent.name
    origin = f"debian {spec.suite} {spec.package} {version} ({tarball.name})"
    return _tree(extract_tarball(tarball, sha, cache, progress), "debian", origin, sha)


def _from_path(spec: SourceSpec, cache: Path, progress: Progress) -> SourceTree:
    path = Path(spec.path or "").expanduser().absolute()
    if path.is_file():
        sha = sha256_file(path)
        return _tree(extract_tarball(path, sha, cache, progress), "path", str(path), sha)
    if path.is_dir():
        return _tree(_top_dir(path), "path", str(path), _dir_digest(path))
    raise HarnessError("source", f"{path}: no such file or directory")


def _from_git(spec: SourceSpec, cache: Path, progress: Progress) -> SourceTree:
    """Ask the remote for the commit first, so a tree already extracted costs no fetch."""
    assert spec.repo and spec.ref
    origin = f"{spec.repo}@{spec.ref}"
    memo = cache / "git" / "refs" / digest([spec.repo, spec.ref])
    try:
        commit = _remote_commit(spec.repo, spec.ref)
    except HarnessError as e:  # offline: what the ref named at the last fetch, if still extracted
        commit = memo.read_text().strip() if memo.is_file() else None
        if not commit or not (cache / "sources" / f"git-{commit}").is_dir():
            raise
        progress.info(f"source: {e.message}; using {commit[:12]}, what {spec.ref} named last time")
    if commit and (cache / "sources" / f"git-{commit}").is_dir():
        return _tree(_top_dir(cache / "sources" / f"git-{commit}"), "git", origin, commit)
    (cache / "git").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".fetch-", dir=cache / "git"))
    try:
        progress.info(f"source: git fetch --depth 1 {spec.repo} {spec.ref}")
        _git("init", "-q", str(work))
        _git("-C", str(work), "fetch", "-q", "--depth", "1", spec.repo, spec.ref)
        commit = _git("-C", str(work), "rev-parse", "FETCH_HEAD^{commit}").strip()
        archive = ["git", "-C", str(work), "archive", "--format=tar", commit]
        tree = _extract(cache, f"git-{commit}", progress, f"git archive {commit}",
                        lambda dest: _untar_command(archive, dest, origin))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with atomic_file(memo, "w") as f:
        f.write(commit + "\n")
    return _tree(tree, "git", origin, commit)


def _from_kernelorg(spec: SourceSpec, cache: Path, progress: Progress) -> SourceTree:
    """A config names only the release: kernel.org publishes every tarball's sha256 in its
    directory's clearsigned sha256sums.asc, so the sha256 is taken from there."""
    assert spec.version
    directory = f"{(spec.mirror or KERNEL_ORG).rstrip('/')}/v{spec.version.split('.')[0]}.x"
    name = f"linux-{spec.version}.tar.xz"
    memo = cache / "downloads" / "kernelorg" / digest([directory, name, spec.keyring or ""])
    if memo.is_file():  # a release never changes: a second run needs no network
        sha, _, trust = memo.read_text().strip().partition(" ")
    else:
        sha, trust = kernelorg_sha256(directory, name, spec.keyring)
    progress.info(f"source: {name}: {trust}")
    tarball = download(f"{directory}/{name}", sha, cache, progress)
    if not memo.is_file():
        with atomic_file(memo, "w") as f:
            f.write(f"{sha} {trust}\n")
    return _tree(extract_tarball(tarball, sha, cache, progress), "kernelorg",
                 f"{directory}/{name} ({trust})", sha)


PROVIDERS: dict[str, Callable[[SourceSpec, Path, Progress], SourceTree]] = {
    "url": _from_url, "debian": _from_debian, "path": _from_path, "git": _from_git,
    "kernelorg": _from_kernelorg}


def _tree(path: Path, provider: str, origin: str, sha: str) -> SourceTree:
    return SourceTree(path, read_version(path), provider, origin, sha)


def read_version(tree: Path) -> str:
    """The version the way the kernel's own Makefile composes KERNELVERSION."""
    try:
        text = (tree / "Makefile").read_text(errors="replace")
    except OSError as e:
        raise HarnessError("source", f"{tree}: cannot read Makefile: {e.strerror}")
    f = dict(re.findall(r"^(VERSION|PATCHLEVEL|SUBLEVEL|EXTRAVERSION)[ \t]*=[ \t]*(\S*)", text,
                        re.M))
    if not f.get("VERSION"):
        raise HarnessError("source", f"{tree}/Makefile has no VERSION: not a kernel tree")
    version = f["VERSION"]
    if f.get("PATCHLEVEL"):
        version += f".{f['PATCHLEVEL']}" + (f".{f['SUBLEVEL']}" if f.get("SUBLEVEL") else "")
    return version + f.get("EXTRAVERSION", "")


def _top_dir(root: Path) -> Path:
    """Tarballs carry one top directory (linux-5.10.N/); accept a bare tree too."""
    if (root / "Makefile").is_file():
        return root
    children = [p for p in root.iterdir() if not p.name.startswith(".")]
    if len(children) == 1 and (children[0] / "Makefile").is_file():
        return children[0]
    raise HarnessError("source", f"{root}: no top-level Makefile, not a kernel tree")


def _dir_digest(path: Path) -> str:
    """Cheap content id for a tree used in place: git's own view if it is a checkout.

    Status lines alone would not change when an already modified file is edited again, so the
    size and mtime of every file git lists as changed go in too.
    """
    try:
        head, top = _git("-C", str(path), "rev-parse", "HEAD", "--show-toplevel",
                         timeout=60).splitlines()
        status = _git("-C", str(path), "status", "--porcelain", "-z", "--untracked-files=all",
                      timeout=600)
        changed = [e for e in status.split("\0") if e]
        return digest(["git", head, *changed, *(_stat_id(Path(top) / e[3:]) for e in changed)])
    except HarnessError:
        parts: list[str] = ["files"]
        for dirpath, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d != ".git")
            for name in sorted(files):
                file = Path(dirpath, name)
                parts.append(f"{file.relative_to(path)} {_stat_id(file)}")
        return digest(parts)


def _stat_id(file: Path) -> str:
    try:
        st = file.lstat()
    except OSError:
        return "-"
    return f"{st.st_size} {st.st_mtime_ns}"


# --- url ----------------------------------------------------------------------------------------


def download(url: str, sha256: str, cache: Path, progress: Progress) -> Path:
    """``cache/downloads/<sha256>/<basename>``; only a verified file ever gets that name."""
    downloads = cache / "downloads"
    name = os.path.basename(urlparse(url).path)
    final = downloads / sha256 / (name if name not in ("", ".", "..") else "download")
    with locked(downloads / f"{sha256}.lock"):
        if final.is_file():
            return final
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=downloads)
        try:
            with os.fdopen(fd, "wb") as out:
                got = _stream(url, out, final.name, progress)
            if got != sha256:
                raise HarnessError("source",
                                   f"{url}: sha256 mismatch (expected {sha256}, got {got})")
            final.parent.mkdir(exist_ok=True)
            os.replace(tmp, final)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return final


def _stream(url: str, out: BinaryIO, name: str, progress: Progress) -> str:
    """Write the body to ``out`` and return its sha256; any short or failed transfer raises."""
    h, done, shown = hashlib.sha256(), 0, 0.0
    try:
        # identity: the sha256 is of the file as published, not of a transfer encoding of it
        with requests.get(url, stream=True, timeout=HTTP_TIMEOUT,
                          headers={"Accept-Encoding": "identity"}) as r:
            r.raise_for_status()
            total = int(r.headers.get("Content-Length") or 0) or None
            for chunk in r.iter_content(1 << 16):
                out.write(chunk)
                h.update(chunk)
                done += len(chunk)
                if time.monotonic() - shown > 0.5:
                    shown = time.monotonic()
                    progress.download(name, done, total)
        progress.download(name, done, total)
    except requests.HTTPError as e:
        raise HarnessError("source", f"{url}: HTTP {e.response.status_code} {e.response.reason}")
    except requests.RequestException as e:
        raise HarnessError("source", f"{url}: {request_failure(e, done)}")
    if total is not None and done < total:
        raise HarnessError("source", f"{url}: truncated after {done} of {total} bytes")
    return h.hexdigest()


def request_failure(e: requests.RequestException, done: int = 0) -> str:
    """One line out of requests' nested exception text."""
    text = str(e)
    if isinstance(e, requests.Timeout):
        return f"timed out after {done} bytes"
    if "IncompleteRead" in text or "Connection broken" in text:
        return f"truncated after {done} bytes (connection closed early)"
    errno = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    return errno.group(1).strip() if errno else type(e).__name__


def http_get(url: str, stage: str = "source", headers: dict[str, str] | None = None
             ) -> requests.Response:
    """A small body in one piece (a checksum file, a mail thread); any failure is one line."""
    try:
        r = requests.get(url, timeout=HTTP_TIMEOUT, headers=headers)
        r.raise_for_status()
        return r
    except requests.HTTPError as e:
        raise HarnessError(stage, f"{url}: HTTP {e.response.status_code} {e.response.reason}")
    except requests.RequestException as e:
        raise HarnessError(stage, f"{url}: {request_failure(e)}")


# --- kernel.org ---------------------------------------------------------------------------------


def kernelorg_sha256(directory: str, name: str, keyring: str | None) -> tuple[str, str]:
    """The sha256 the directory's sha256sums.asc gives ``name``, and how far it is trusted."""
    url = f"{directory}/sha256sums.asc"
    signed = http_get(url).content
    if keyring:
        text = gpg_verified(signed, Path(keyring).expanduser().absolute(), url)
        trust = f"sha256 from sha256sums.asc, signature verified with {keyring}"
    else:
        text = clearsigned_text(signed.decode(errors="replace"))
        trust = "sha256 from sha256sums.asc, signature NOT verified (no keyring configured)"
    sha = next((line.split()[0] for line in text.splitlines()
                if line.split()[1:] == [name] and re.fullmatch(r"[0-9a-f]{64}", line.split()[0])),
               None)
    if sha is None:
        raise HarnessError("source", f"{url}: no sha256 for {name} (not released there?)")
    return sha, trust


def clearsigned_text(text: str) -> str:
    """The signed body of an OpenPGP clearsigned text (RFC 4880 7), dash-escaping undone; a plain
    text as it is. Only for the unverified case: a verified body comes from gpgv itself."""
    m = re.search(r"^-----BEGIN PGP SIGNED MESSAGE-----\r?\n(?:.+\r?\n)*?\r?\n(.*?)\r?\n"
                  r"-----BEGIN PGP SIGNATURE-----", text, re.M | re.S)
    return re.sub(r"^- ", "", m.group(1), flags=re.M) if m else text


def gpg_verified(signed: bytes, keyring: Path, url: str) -> str:
    """What the signature covers, and only that: text outside the signed part never counts."""
    with tempfile.TemporaryDirectory(prefix="kharness-gpg-") as home:
        (Path(home) / "sums.asc").write_bytes(signed)
        try:
            key = keyring.read_bytes()
        except OSError as e:
            raise HarnessError("source", f"{keyring}: cannot read the keyring: {e.strerror}")
        if key.lstrip().startswith(b"-----BEGIN PGP"):  # gpgv reads binary keyrings only
            keyring = Path(home) / "keyring.gpg"
            keyring.write_bytes(dearmor(key.decode(errors="replace")))
        try:  # GNUPGHOME: gpgv must not read, or create, the user's own keyrings
            proc = subprocess.run(["gpgv", "--keyring", str(keyring), "--output", "-",
                                   str(Path(home) / "sums.asc")], capture_output=True,
                                  timeout=GPG_TIMEOUT, stdin=subprocess.DEVNULL,
                                  env={**os.environ, "GNUPGHOME": home})
        except FileNotFoundError:
            raise HarnessError("source", "gpgv not found: install gpgv, or drop the keyring")
        except subprocess.TimeoutExpired:
            raise HarnessError("source", f"gpgv timed out after {GPG_TIMEOUT:.0f} s")
    if proc.returncode != 0:
        why = (proc.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise HarnessError("source", f"{url}: signature not verified with {keyring}: {why}")
    return proc.stdout.decode(errors="replace")


def dearmor(text: str) -> bytes:
    """ASCII-armored key blocks (RFC 4880 6.2) as the binary packets they carry."""
    blocks = re.findall(r"^-----BEGIN PGP PUBLIC KEY BLOCK-----\r?\n(?:.+\r?\n)*?\r?\n(.*?)"
                        r"^(?:=.{4}\r?\n)?-----END PGP PUBLIC KEY BLOCK-----", text, re.M | re.S)
    try:
        return b"".join(base64.b64decode("".join(b.split()), validate=True) for b in blocks)
    except ValueError as e:
        raise HarnessError("source", f"unreadable armored keyring: {e}")


# --- debian -------------------------------------------------------------------------------------


def pick_debian_version(versions: list[str], pattern: str) -> str | None:
    """The highest Debian version whose upstream part matches ``pattern`` (fnmatch: 5.10.*)."""
    matching = [v for v in versions if fnmatch.fnmatchcase(upstream_version(v), pattern)]
    return max(matching, key=functools.cmp_to_key(compare_debian_versions), default=None)


def upstream_version(version: str) -> str:
    """``1:5.10.262-1~deb11u1`` -> ``5.10.262``: drop the epoch and the Debian revision."""
    return version.split(":", 1)[-1].rsplit("-", 1)[0]


def compare_debian_versions(a: str, b: str) -> int:
    """dpkg's ordering (deb-version(7)): epoch, then upstream, then revision, '~' before all."""
    ea, _, ra = a.partition(":") if ":" in a else ("0", "", a)
    eb, _, rb = b.partition(":") if ":" in b else ("0", "", b)
    if int(ea) != int(eb):
        return -1 if int(ea) < int(eb) else 1
    ua, _, va = ra.rpartition("-") if "-" in ra else (ra, "", "")
    ub, _, vb = rb.rpartition("-") if "-" in rb else (rb, "", "")
    return _verrevcmp(ua, ub) or _verrevcmp(va, vb)


def _verrevcmp(a: str, b: str) -> int:
    def order(c: str) -> int:
        return -1 if c == "~" else ord(c) if c.isalpha() else ord(c) + 256

    # Alternating non-digit and digit runs; the trailing empty match is dropped.
    runs_a, runs_b = re.findall(r"(\D*)(\d*)", a)[:-1], re.findall(r"(\D*)(\d*)", b)[:-1]
    for (ta, na), (tb, nb) in itertools.zip_longest(runs_a, runs_b, fillvalue=("", "")):
        ka, kb = [order(c) for c in ta] + [0], [order(c) for c in tb] + [0]
        if ka != kb:
            return -1 if ka < kb else 1
        if int(na or 0) != int(nb or 0):
            return -1 if int(na or 0) < int(nb or 0) else 1
    return 0


def _debian_tarball(apt: PrivateApt, package: str, version: str, cache: Path,
                    progress: Progress) -> Path:
    """The pristine upstream tarball (.orig.tar.*) of one source version; apt checked its hash."""
    downloads = cache / "downloads"
    marker = downloads / "debian" / f"{package}_{version}"
    with locked(marker.parent / f"{marker.name}.lock"):
        if marker.is_file():
            sha, name = marker.read_text().split()
            if (downloads / sha / name).is_file():
                return downloads / sha / name
        tmp = Path(tempfile.mkdtemp(prefix=".debian-", dir=downloads))
        try:
            progress.info(f"source: apt-get source --download-only {package}={version}")
            apt.download_source(package, version, tmp)
            origs = sorted((p for p in tmp.glob("*.orig.tar.*") if p.suffix in
                            (".xz", ".gz", ".bz2", ".zst")), key=lambda p: p.suffix != ".xz")
            if not origs:
                raise HarnessError("source", f"{package} {version}: no .orig tarball among "
                                             f"{', '.join(p.name for p in tmp.iterdir())}")
            sha = sha256_file(origs[0])
            (downloads / sha).mkdir(exist_ok=True)
            os.replace(origs[0], downloads / sha / origs[0].name)
            with atomic_file(marker, "w") as f:
                f.write(f"{sha} {origs[0].name}\n")
            return downloads / sha / origs[0].name
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


# --- git ----------------------------------------------------------------------------------------


def _git(*args: str, timeout: float = GIT_TIMEOUT) -> str:
    return git_out(*args, stage="source", timeout=timeout)


def _remote_commit(repo: str, ref: str) -> str | None:
    """The commit ``ref`` names on the remote, in git's own order (tags before branches)."""
    if re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", ref):
        return ref
    listing = _git("ls-remote", repo, ref, timeout=120).splitlines()
    refs = {name: sha for sha, _, name in (line.partition("\t") for line in listing)}
    for name in (f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}", f"refs/heads/{ref}", ref):
        if name in refs:
            return refs[name]
    return None


# --- extraction ---------------------------------------------------------------------------------


def extract_tarball(tarball: Path, sha256: str, cache: Path, progress: Progress) -> Path:
    with tarball.open("rb") as f:
        head = f.read(6)
    tool = next((t for magic, t in DECOMPRESSORS.items() if head.startswith(magic)), None)

    def untar(dest: Path) -> None:
        if tool is None:
            with tarball.open("rb") as f:
                _untar_stream(f, dest, tarball.name)
        else:
            _untar_command([tool, "-dc", str(tarball)], dest, tarball.name)

    return _extract(cache, sha256, progress, tarball.name, untar)


def _extract(cache: Path, key: str, progress: Progress, label: str,
             untar: Callable[[Path], None]) -> Path:
    """Extract once per key, even with concurrent runs; reuse a complete extraction as is."""
    final = cache / "sources" / key
    with locked(cache / "sources" / f"{key}.lock"):
        if not final.is_dir():
            progress.info(f"source: extracting {label}")
            start = time.monotonic()
            with atomic_dir(final) as tmp:
                untar(tmp)
                _top_dir(tmp)
            progress.info(f"source: extracted {label} in {time.monotonic() - start:.0f} s")
    return _top_dir(final)


@contextmanager
def _watchdog(*procs: subprocess.Popen) -> Iterator[None]:
    """Pipes cannot time out, so a hung child is killed and its pipe reads end."""
    def kill() -> None:
        for p in procs:
            p.kill()

    timer = threading.Timer(EXTRACT_TIMEOUT, kill)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=60)
            for pipe in (p.stdin, p.stdout):
                with suppress(OSError):
                    if pipe:
                        pipe.close()


def _untar_command(cmd: list[str], dest: Path, label: str) -> None:
    """Extract the tar stream a command writes (a decompressor, ``git archive``)."""
    with tempfile.TemporaryFile() as err:
        producer = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err,
                                    stdin=subprocess.DEVNULL)
        with _watchdog(producer):
            assert producer.stdout
            _untar_stream(producer.stdout, dest, label)
            if producer.wait(timeout=60) != 0:
                raise HarnessError("source", f"{label}: {cmd[0]} failed: {_tail(err)}")


def _untar_stream(src: BinaryIO, dest: Path, label: str) -> None:
    """Check members in Python while GNU tar extracts them, in parallel; tar never sees a header
    before its check passed.

    Measured on 2 cores with the 122 MB 5.10 tarball into tmpfs: tar -x 12-14 s, this pipeline
    16-17 s, tarfile.extractall(filter="data") 20-24 s (on disk, writeback adds 0-20 s to each).
    """
    with tempfile.TemporaryFile() as err:
        tar = subprocess.Popen(["tar", "-x", "-f", "-", "-C", str(dest), "--no-same-owner",
                                "--no-same-permissions"], stdin=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, stderr=err)
        assert tar.stdin
        with _watchdog(tar):
            try:
                _check_members(_Gate(src, tar.stdin), label)
                tar.stdin.write(bytes(1024))  # end-of-archive: tar sees only checked members
                tar.stdin.close()
                broken = False
            except BrokenPipeError:
                broken = True
            if tar.wait(timeout=EXTRACT_TIMEOUT) != 0 or broken:
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

    def __init__(self, src: BinaryIO, sink: BinaryIO):
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
    pending, out, hops = path.split("/"), [], 0
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
