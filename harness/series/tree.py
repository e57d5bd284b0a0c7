"""A kernel developer's own tree: the base is a commit of it, the series its commits after that.

Nothing in the tree is changed: every read is a git command on it (rev-parse, format-patch,
archive, status, diff); the base is exported into the cache with `git archive` and the commits
become a patch series there, applied with `git am` as any series is. No network.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from pathlib import Path

from harness.config import KernelConfig, SourceSpec, known, load_kernel
from harness.core.cache import atomic_dir, locked
from harness.core.errors import HarnessError
from harness.core.git import git, git_out
from harness.core.progress import Progress
from harness.series.patches import Series, load_patch_dir
from harness.sources.source import read_version


def _git(tree: Path, *args: str) -> str:
    return git_out("-C", str(tree), *args, stage="tree")


def is_kernel_checkout(path: Path) -> bool:
    """A git work tree whose top Makefile says VERSION = (the kernel's)."""
    try:
        return (path / ".git").exists() and bool(re.search(r"^VERSION\s*=\s*\d", (path / "Makefile").read_text(
            errors="replace"), re.M))
    except OSError:
        return False


def _commit(tree: Path, rev: str, what: str) -> str:
    done = git("-C", str(tree), "rev-parse", "--verify", "-q", f"{rev}^{{commit}}", stage="tree", check=False)
    if done.returncode != 0:
        raise HarnessError("tree", f"{what} {rev!r}: not a commit of {tree}")
    return str(done.stdout).strip()


def _default_base(tree: Path, head: str) -> tuple[str, str]:
    """The newest release tag (v5.10.262, v7.2) reachable from HEAD: what a branch is based on."""
    done = git("-C", str(tree), "describe", "--tags", "--abbrev=0", "--match", "v[0-9]*", head,
               stage="tree", check=False)
    if done.returncode != 0:
        raise HarnessError("tree", f"{tree}: no release tag (v*) below {head[:12]}: say --base REV")
    tag = str(done.stdout).strip()
    return _commit(tree, tag, "base"), tag


def kernel_for(version: str, progress: Progress) -> KernelConfig:
    """The kernel config whose version is the tree's (5.10 for 5.10.262); else the nearest one,
    saying so."""
    def number(v: str) -> tuple[int, int]:
        m = re.match(r"(\d+)\.(\d+)", v)
        return (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    configs = [load_kernel(name) for name in known("kernels")]
    mine = number(version)
    exact = [k for k in configs if number(k.version) == mine and not re.search(r"-rc", k.version)]
    if exact:
        return exact[0]
    nearest = min(configs, key=lambda k: (abs((number(k.version)[0] - mine[0]) * 100 + number(k.version)[1] - mine[1]),
                                          "-rc" in k.version))
    progress.info(f"tree: no kernel config for Linux {version}; using the nearest, {nearest.name} "
                  f"({nearest.version}), for its kconfig fragments and profiles")
    return nearest


def from_tree(tree: Path, base: str | None, series_range: str | None, dirty: bool, cache: Path,
              progress: Progress, series_needed: bool = True) -> tuple[KernelConfig, Series | None]:
    """The kernel config (sources: the base commit of ``tree``) and the series (its commits up
    to the range's end, HEAD by default; with ``dirty``, the work tree's changes as a last patch;
    None when only the base is to run)."""
    tree = Path(tree).expanduser().resolve()
    if not is_kernel_checkout(tree):
        raise HarnessError("tree", f"{tree}: not a kernel git checkout (no .git, or no VERSION in its Makefile)")
    start, _, end = (series_range or "").partition("..")
    head_rev = end or "HEAD"
    head = _commit(tree, head_rev, "series end")
    if base:
        base_commit, base_name = _commit(tree, base, "--base"), base
    elif start:
        base_commit, base_name = _commit(tree, start, "series start"), start
    else:
        base_commit, base_name = _default_base(tree, head)
        progress.info(f"tree: base {base_name} ({base_commit[:12]}), the newest release tag below "
                      f"{head_rev}; --base REV to say otherwise")
    version = read_version(tree)   # the work tree's Makefile: the branch's version
    kernel = kernel_for(version, progress)
    major_minor = ".".join(re.findall(r"\d+", version)[:2])
    kernel = replace(kernel, version=major_minor,
                     sources=(SourceSpec(type="tree", path=str(tree), ref=base_commit),))
    if not series_needed:
        return kernel, None
    changed = _git(tree, "status", "--porcelain", "--untracked-files=no").splitlines()
    diff = ""
    if changed and end == "":
        if not dirty:
            raise HarnessError("tree", f"{tree}: {len(changed)} file(s) changed and not committed "
                               f"({changed[0].strip()}, ...): commit them, or --dirty to test them as a last patch")
        diff = _git(tree, "diff", "--binary", "HEAD")
    if _git(tree, "merge-base", base_commit, head).strip() != base_commit:
        raise HarnessError("tree", f"base {base_name} is not an ancestor of {head_rev}")
    count = int(_git(tree, "rev-list", "--count", f"{base_commit}..{head}").strip())
    if count == 0 and not diff:
        raise HarnessError("tree", f"no commits between {base_name} and {head_rev}: nothing to test "
                           "(--variant base runs the base alone)")
    key = hashlib.sha256(f"{base_commit} {head} {diff}".encode()).hexdigest()[:32]
    out = cache / "tree-series" / key
    with locked(cache / "tree-series" / f"{key}.lock"):
        if not out.is_dir():
            with atomic_dir(out, owned=True) as tmp:
                if count:
                    git("-C", str(tree), "format-patch", "-q", "--no-signature", "-o", str(tmp),
                        f"{base_commit}..{head}", stage="tree")
                if diff:
                    (tmp / f"{count + 1:04d}-work-tree.patch").write_text(
                        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
                        "From: kharness <kharness@localhost>\nDate: Thu, 1 Jan 1970 00:00:00 +0000\n"
                        "Subject: [PATCH] the work tree's uncommitted changes (--dirty)\n\n---\n" + diff)
    branch = git("-C", str(tree), "symbolic-ref", "-q", "--short", "HEAD", stage="tree", check=False)
    name = (str(branch.stdout).strip() if branch.returncode == 0 and not end else head_rev).replace("/", "-")
    series = load_patch_dir(out, name, f"{base_name}..{head_rev}" + (" + work tree" if diff else ""))
    progress.info(f"tree: {len(series.patches)} patch(es) of {tree} on {base_name} ({base_commit[:12]}), "
                  f"kernel config {kernel.name}")
    return kernel, series
