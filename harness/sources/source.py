"""Kernel sources: fetch from the first provider that works, verify, and extract once per content.

A tree is keyed by what it is (the tarball's sha256, the git commit), never by where it came from,
so two configs naming the same tarball share one extraction, and nothing is trusted before it has
been verified: a download is renamed into its key only once its sha256 matched, and an archive is
extracted only member by member as each one is checked.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.config import KernelConfig, SourceSpec
from harness.core.cache import atomic_dir, atomic_file, digest, locked, sha256_file
from harness.core.errors import HarnessError, os_failure
from harness.core.git import git_out
from harness.core.http import download
from harness.core.progress import Progress
from harness.core.tarsafe import untar_command, untar_file
from harness.sources.debian import PrivateApt, debian_candidates
from harness.sources.kernelorg import KERNEL_ORG, kernelorg_sha256

GIT_TIMEOUT = 1800.0
MAX_DEBIAN_TRIES = 12   # listed versions tried before giving up on a suite
DEBIAN_ABSENT_FOR = 24 * 3600.0   # a version the pool answered 404 for is not asked again before


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
    candidates = debian_candidates(versions, spec.version)
    if not candidates:
        raise HarnessError("source", f"no {spec.package} source in {spec.suite} matches "
                                     f"{spec.version} (have: {', '.join(versions) or 'none'})")
    # The index lists versions whose files may be gone from the pool (404): go down the list.
    skipped = []
    for version in candidates[:MAX_DEBIAN_TRIES]:
        # a 404 is remembered as long as the lists are, so each run does not ask again
        absent = cache / "downloads" / "debian" / f"{spec.package}_{version}.absent"
        try:
            if absent.is_file() and time.time() - absent.stat().st_mtime < DEBIAN_ABSENT_FOR:
                raise HarnessError("source", absent.read_text().strip())
            tarball = _debian_tarball(apt, spec.package, version, cache, progress)
        except HarnessError as e:
            reason = _not_served(e.message)
            if "404" in reason and not absent.is_file():
                with atomic_file(absent, "w") as f:
                    f.write(f"{reason} on {time.strftime('%Y-%m-%d %H:%M')}\n")
            skipped.append(f"{version} ({reason})")
            progress.info(f"source: {spec.suite} lists {spec.package} {version} but {reason}; "
                          "trying the next listed version")
            continue
        sha = tarball.parent.name
        origin = f"debian {spec.suite} {spec.package} {version} ({tarball.name})"
        if skipped:
            origin += f"; skipped {', '.join(skipped)}"
        return _tree(extract_tarball(tarball, sha, cache, progress), "debian", origin, sha)
    raise HarnessError("source", f"{spec.suite} lists {spec.package} {', '.join(candidates)} "
                       f"for {spec.version}; none could be downloaded: {'; '.join(skipped)}")


def _not_served(message: str) -> str:
    """apt's reason in a few words: the mirror's 404 says the file is gone, anything else is quoted."""
    if message.startswith("its files are not served"):
        return message
    if re.search(r"\b404\b", message):
        return "its files are not served (404)"
    return message.splitlines()[-1][-200:] if message else "the download failed"


def _from_path(spec: SourceSpec, cache: Path, progress: Progress) -> SourceTree:
    path = Path(spec.path or "").expanduser().absolute()
    if path.is_file():
        sha = sha256_file(path)
        return _tree(extract_tarball(path, sha, cache, progress), "path", str(path), sha)
    if path.is_dir():
        return _tree(_top_dir(path), "path", str(path), _dir_digest(path))
    raise HarnessError("source", f"{path}: no such file or directory")


def _from_tree(spec: SourceSpec, cache: Path, progress: Progress) -> SourceTree:
    """A commit of a git checkout on this machine (a developer's own tree, --tree): read in place
    with git archive, never fetched from, checked out or otherwise changed."""
    assert spec.path and spec.ref
    repo = Path(spec.path).expanduser().resolve()
    commit = _git("-C", str(repo), "rev-parse", "--verify", f"{spec.ref}^{{commit}}").strip()
    origin = f"{repo}@{spec.ref if spec.ref == commit else f'{spec.ref} ({commit[:12]})'}"
    if not (cache / "sources" / f"git-{commit}").is_dir():
        archive = ["git", "-C", str(repo), "archive", "--format=tar", commit]
        _extract(cache, f"git-{commit}", progress, f"git archive {commit[:12]} of {repo}",
                 lambda dest: untar_command(archive, dest, origin))
    return _tree(_top_dir(cache / "sources" / f"git-{commit}"), "git", origin, commit)


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
        try:
            _git("-C", str(work), "fetch", "-q", "--depth", "1", spec.repo, spec.ref)
        except HarnessError as e:
            if commit == spec.ref:   # a commit named (a series' base-commit:) that is not there
                raise HarnessError("source", f"{spec.repo} has no commit {spec.ref}: {e.message}") from None
            raise
        commit = _git("-C", str(work), "rev-parse", "FETCH_HEAD^{commit}").strip()
        archive = ["git", "-C", str(work), "archive", "--format=tar", commit]
        tree = _extract(cache, f"git-{commit}", progress, f"git archive {commit}",
                        lambda dest: untar_command(archive, dest, origin))
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
    "kernelorg": _from_kernelorg, "tree": _from_tree}


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


# --- debian -------------------------------------------------------------------------------------


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
    return _extract(cache, sha256, progress, tarball.name, lambda dest: untar_file(tarball, dest))


def _extract(cache: Path, key: str, progress: Progress, label: str,
             untar: Callable[[Path], None]) -> Path:
    """Extract once per key, even with concurrent runs; reuse a complete extraction as is."""
    final = cache / "sources" / key
    with locked(cache / "sources" / f"{key}.lock"):
        if not final.is_dir():
            progress.info(f"source: extracting {label}")
            start = time.monotonic()
            with atomic_dir(final, owned=True) as tmp:
                untar(tmp)
                _top_dir(tmp)
            progress.info(f"source: extracted {label} in {time.monotonic() - start:.0f} s")
    return _top_dir(final)


