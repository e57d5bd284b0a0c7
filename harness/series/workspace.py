"""The git workspace where the base tree and the series become commits, and what a series is.

The base tree is committed once into a repository in the cache; a series is applied there with
`git am -3`, one commit per patch, and remembered under a ref named by the series' content. A
build checks out a commit in the workspace's one work tree, so going from the base to the patched
kernel rewrites only the files the series touches, and make recompiles only what depends on them.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.core import proc
from harness.core.cache import atomic_dir, digest, locked, sweep
from harness.core.errors import HarnessError
from harness.core.git import IDENTITY, git, git_out
from harness.core.proc import Completed
from harness.core.progress import Progress
from harness.sources.source import SourceTree


@dataclass(frozen=True)
class Patch:
    path: Path
    subject: str        # without the [PATCH n/m] prefix
    sha256: str


@dataclass(frozen=True)
class Series:
    """The patches to apply, and where they came from (for the report: which mail was tested)."""

    name: str
    title: str
    patches: tuple[Patch, ...]
    origin: str = ""         # "dir PATH", "mbox PATH v2", "lore URL v2"
    origin_sha256: str = ""  # sha256 of the mbox file or of the lore thread as fetched
    base_commit: str = ""    # the cover letter's base-commit:, when it has one

    @property
    def digest(self) -> str:
        return digest([p.sha256 for p in self.patches])

    def changed_paths(self) -> list[str]:
        """The files its patches change (both sides of a rename), in order, each once."""
        paths: dict[str, None] = {}
        for p in self.patches:
            for line in p.path.read_text(errors="replace").splitlines():
                if line.startswith(("--- a/", "+++ b/")):
                    paths[line[6:].split("\t")[0].strip()] = None
        return list(paths)


@dataclass(frozen=True)
class Checkout:
    """A tree ready to build: where it is and what it contains."""

    path: Path
    tree_id: str     # git's tree id: the content, whatever the commit metadata
    slot: str        # names the build directories shared by every checkout of one workspace



def am_failure(output: str) -> str:
    """Which patch failed and where, from `git am` output."""
    patch = re.search(r"Patch failed at (\d+) (.*)", output)
    where = re.search(r"error: patch failed: (\S+)|error: (\S+): (?:patch does not apply|does not exist in index)", output)
    text = f"patch {patch.group(1)} '{patch.group(2).strip()}' does not apply" if patch else "git am failed"
    if where:
        text += f" (at {where.group(1) or where.group(2)})"
    return text


class Workspace:
    """The base tree as a git repository under the cache, with one work tree for builds."""

    def __init__(self, tree: SourceTree, cache: Path):
        self.tree = tree
        self.root = cache / "git" / tree.sha256[:32]
        self.work = self.root / "work"
        self.lock = cache / "git" / f"{tree.sha256[:32]}.lock"
        self.slot = tree.sha256[:16]

    def _git(self, *args: str, check: bool = True, input: str | None = None) -> Completed:
        return git(*args, cwd=self.work, stage="series", env=IDENTITY, check=check, input=input)

    def base(self, progress: Progress) -> str:
        """The base commit, creating the repository from the extracted tree on first use."""
        if (self.work / ".git").exists():   # renamed into place complete: a read, no lock
            return git_out("rev-parse", "base", cwd=self.work, stage="series").strip()
        with locked(self.lock):
            if not (self.work / ".git").exists():
                progress.info(f"series: committing Linux {self.tree.version} as the base (once)")
                with atomic_dir(self.root, owned=True) as tmp:
                    work = tmp / "work"
                    shutil.copytree(self.tree.path, work, symlinks=True)
                    # gc.auto=0: an automatic repack of the ~70k fresh objects would run in the
                    # background and compete with the first kernel build for the cores.
                    for args in (("init", "-q"), ("config", "gc.auto", "0"), ("add", "-A", "-f"),
                                 ("commit", "-q", "-m", f"Linux {self.tree.version} ({self.tree.origin})"),
                                 ("branch", "-f", "base")):
                        git(*args, cwd=work, stage="series", env=IDENTITY)
            return git_out("rev-parse", "base", cwd=self.work, stage="series").strip()

    def apply(self, series: Series, progress: Progress, log: Path) -> list[str]:
        """Commits of the series on the base, one per patch (cached by the series' content)."""
        base = self.base(progress)
        ref = f"refs/kharness/series/{series.digest[:32]}"
        if self._git("rev-parse", "--verify", "-q", ref, check=False).returncode == 0:
            return self._commits(base, ref, series, log)   # applied before: a read, no lock
        with locked(self.lock):
            sweep(self.root)   # a copy of the base a killed run left (the lock is every writer's)
            known = self._git("rev-parse", "--verify", "-q", ref, check=False)
            if known.returncode != 0:
                progress.info(f"series: applying {len(series.patches)} patches of {series.name} with git am -3")
                self._mark.unlink(missing_ok=True)
                self._git("checkout", "-q", "-f", "--detach", base)
                am = self._git("am", "-3", "--keep-cr", *map(str, (p.path for p in series.patches)),
                               check=False)
                output = am.stdout + am.stderr
                if am.returncode != 0:
                    output += self._failed_hunk(series, output)
                    self._git("am", "--abort", check=False)
                log.parent.mkdir(parents=True, exist_ok=True)
                log.write_text(output)
                if am.returncode != 0:
                    raise HarnessError("series", am_failure(output), log, output[-2000:])
                self._git("update-ref", ref, "HEAD")
        return self._commits(base, ref, series, log)

    def _commits(self, base: str, ref: str, series: Series, log: Path) -> list[str]:
        commits = self._git("rev-list", "--reverse", f"{base}..{ref}").stdout.split()
        if len(commits) != len(series.patches):
            raise HarnessError("series", f"expected {len(series.patches)} commits, found {len(commits)}"
                               " (an empty patch?)", log)
        return commits

    def _failed_hunk(self, series: Series, output: str) -> str:
        """With -3, git am does not say which hunk failed to apply; git apply does, on the tree the
        patch met (HEAD, once the failed merge's conflict markers are gone)."""
        failed = re.search(r"Patch failed at (\d+)", output)
        if not failed or not 0 < int(failed.group(1)) <= len(series.patches):
            return ""
        self._git("reset", "-q", "--hard", "HEAD", check=False)
        patch = series.patches[int(failed.group(1)) - 1].path
        return self._git("apply", "--check", str(patch), check=False).stderr

    def tree_id(self, commit: str, path: str) -> str:
        """git's id of ``path`` in ``commit``: what a build from that directory depends on."""
        return self._git("rev-parse", f"{commit}:{path}").stdout.strip()

    def diff(self, old: str, new: str) -> str:
        """`git diff -U0` from ``old`` to ``new``: every changed line, no context."""
        return self._git("diff", "-U0", "--no-color", old, new).stdout

    def show(self, commit: str, path: str) -> str | None:
        """``path`` as ``commit`` has it, None when it has no such file."""
        r = self._git("show", f"{commit}:{path}", check=False)
        return r.stdout if r.returncode == 0 else None

    def kconfig_block(self, commit: str, symbol: str) -> tuple[str, str] | None:
        """The Kconfig file that defines ``symbol`` at ``commit`` (its first definition) and
        its `config SYMBOL` block, up to the next entry; None when no Kconfig defines it."""
        r = self._git("grep", "-n", "-E", f"^[[:space:]]*(menu)?config[[:space:]]+{symbol}[[:space:]]*$", commit,
                      "--", "*Kconfig*", check=False)
        if r.returncode != 0 or not r.stdout:
            return None
        _, path, number, _ = r.stdout.splitlines()[0].split(":", 3)
        lines = (self.show(commit, path) or "").splitlines()
        block = lines[int(number) - 1:int(number)]
        for entry in lines[int(number):]:
            if re.match(r"^\s*(config|menuconfig|choice|endchoice|menu|endmenu|if|endif|source|comment)\b", entry):
                break
            block.append(entry)
        return path, "\n".join(block)

    def grep(self, commit: str, pattern: str, path: str) -> list[str]:
        """The files under ``path`` at ``commit`` with a line matching ``pattern`` (extended regex)."""
        r = self._git("grep", "-l", "-E", pattern, commit, "--", path, check=False)
        return [line.split(":", 1)[1] for line in r.stdout.splitlines() if ":" in line]

    def matches(self, commit: str, pattern: str, path: str) -> list[tuple[str, str]]:
        """Each match of ``pattern`` (extended regex) in the files under ``path`` at ``commit``:
        (the file, the text matched)."""
        r = self._git("grep", "-o", "-I", "-E", pattern, commit, "--", path, check=False)
        if r.returncode > 1:
            raise HarnessError("series", f"git grep in {path} at {commit[:12]} failed: {r.stderr.strip()}")
        return [(found[1], found[2]) for line in r.stdout.splitlines() if len(found := line.split(":", 2)) == 3]

    def symlinks(self, commit: str, path: str) -> dict[str, str]:
        """Each symlink under ``path`` at ``commit``: its path, and what it points to."""
        links = [line.split("\t", 1) for line in self._git("ls-tree", "-r", commit, "--", path).stdout.splitlines()
                 if line.startswith("120000 ")]
        if not links:
            return {}
        ids = "".join(f"{meta.split()[2]}\n" for meta, _ in links)
        out = self._git("cat-file", "--batch", input=ids).stdout.split("\n")
        # each: "<id> blob <size>", then the target on a line of its own
        return {name: out[2 * i + 1] for i, (_, name) in enumerate(links)}

    def entries(self, commit: str, paths: tuple[str, ...]) -> str:
        """`git ls-tree` of ``paths`` at ``commit`` and of its top-level files: each one's mode, id
        and path (a path it lacks is left out)."""
        top = [line for line in self._git("ls-tree", commit).stdout.splitlines() if " blob " in line]
        return "\n".join([*top, *self._git("ls-tree", commit, "--", *paths).stdout.splitlines()])

    def has(self, commit: str, path: str) -> bool:
        """Whether ``path`` exists in ``commit``."""
        return self._git("cat-file", "-e", f"{commit}:{path}", check=False).returncode == 0

    def export(self, commit: str, path: str, dest: Path) -> None:
        """Write ``path`` of ``commit`` ("": all of it) under ``dest`` (same relative path),
        leaving the work tree alone: no lock, no wait for a build."""
        # streamed: the whole tree ("") is ~1.8 GB
        proc.run(["bash", "-o", "pipefail", "-c", 'git archive --format=tar "$1" ${2:+"$2"} | tar -x -C "$3"', "-",
                  commit, path, str(dest)], "series", 600, cwd=self.work,
                 what=f"git archive | tar -x of {path or 'the tree'} at {commit[:12]}")

    @contextmanager
    def checkout(self, commit: str) -> Iterator[Checkout]:
        """Hold the work tree at ``commit`` for the duration of the block (a build)."""
        with locked(self.lock):
            if self._checked_out() != self._state(commit):  # a forced checkout stats ~70k files
                self._mark.unlink(missing_ok=True)
                self._git("checkout", "-q", "-f", "--detach", commit)
                self._mark.write_text(self._state(commit))
            tree_id = self._git("rev-parse", f"{commit}^{{tree}}").stdout.strip()
            yield Checkout(self.work, tree_id, self.slot)

    @property
    def _mark(self) -> Path:
        """What the work tree was when last checked out here, cleanly: the commit, HEAD and the
        index's identity. Removed before git am or a checkout changes the tree (an interrupted one
        is redone); any other git command that moved HEAD or rewrote the index makes it stale.
        Builds write only under O=."""
        return self.work / ".git" / "kharness-checkout"

    def _state(self, commit: str) -> str:
        head = (self.work / ".git" / "HEAD").read_text().strip()
        try:
            st = (self.work / ".git" / "index").stat()
        except FileNotFoundError:
            return ""
        return f"{commit} {head} {st.st_ino} {st.st_mtime_ns} {st.st_size}\n"

    def _checked_out(self) -> str | None:
        try:
            return self._mark.read_text()
        except FileNotFoundError:
            return None
