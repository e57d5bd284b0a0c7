"""Patch series, and the git workspace where the base tree and the series become commits.

The base tree is committed once into a repository in the cache; a series is applied there with
`git am -3`, one commit per patch, and remembered under a ref named by the series' content. A
build checks out a commit in the workspace's one work tree, so going from the base to the patched
kernel rewrites only the files the series touches, and make recompiles only what depends on them.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from email.parser import HeaderParser
from pathlib import Path

from harness import REPO_ROOT
from harness.config import CONFIG_DIR, check_name, find, is_path, known, load
from harness.core import proc
from harness.core.cache import atomic_dir, cache_root, digest, locked, sha256_file, sweep
from harness.core.errors import ConfigError, HarnessError
from harness.core.git import IDENTITY, git, git_out
from harness.core.proc import Completed
from harness.core.progress import Progress, Quiet
from harness.sources.lore import (
    DEFAULT_LORE,
    MailSeries,
    fetch_thread,
    gunzip,
    parse_lore_arg,
    series_from_mbox,
    thread_page,
)
from harness.sources.source import SourceTree


@dataclass(frozen=True)
class SeriesConfig:
    """configs/series/<name>.yaml: a series, its base kernel and the scenarios that judge it.

    The patches come from exactly one of: a directory of ours, an mbox file, or a lore thread
    (``version`` picks a revision in a thread or mbox; the newest by default)."""

    name: str
    title: str
    kernel: str                      # configs/kernels/<kernel>.yaml
    scenarios: tuple[str, ...]
    # the fix scenarios whose bug the series claims to fix (judged FIXED); every other scenario
    # must not regress (the patched kernel shows what the base shows)
    fixes: tuple[str, ...] = ()
    patches: str | None = None       # directory of git format-patch files (relative: see base)
    mbox: str | None = None          # mbox file (relative: see base)
    lore: str | None = None          # message-id or lore URL of the thread
    version: int | None = None
    description: str = ""
    base: str = ""   # what patches: and mbox: are relative to: the repo for kharness's own
                     # series, the YAML file's directory for one from elsewhere (set when loaded)

    def path(self, value: str) -> Path:
        return Path(self.base or REPO_ROOT) / value

    def validate(self, file: Path, where: str) -> None:
        check_name(file, "name", self.name)
        given = [f for f in ("patches", "mbox", "lore") if getattr(self, f) is not None]
        if len(given) != 1:
            raise ConfigError(file, "patches", "expected exactly one of patches (a directory), mbox"
                              f" (a file), lore (a message-id); got {', '.join(given) or 'none'}")
        base = series_base(file)
        if self.patches is not None and not (base / self.patches).is_dir():
            raise ConfigError(file, "patches", f"no such directory: {self.patches}")
        if self.mbox is not None and not (base / self.mbox).is_file():
            raise ConfigError(file, "mbox", f"no such file: {self.mbox}")
        if self.lore is not None and parse_lore_arg(self.lore) is None:
            raise ConfigError(file, "lore", f"not a message-id or lore URL: {self.lore!r}")
        if self.version is not None and self.version < 1:
            raise ConfigError(file, "version", "expected a revision number, 1 or more")
        if not self.scenarios:
            raise ConfigError(file, "scenarios", "expected at least one scenario")
        find("kernels", self.kernel, file=file, field="kernel")
        for i, name in enumerate(self.scenarios):
            find("scenarios", name, file=file, field=f"scenarios[{i}]")
        for i, name in enumerate(self.fixes):
            if name not in self.scenarios:
                raise ConfigError(file, f"fixes[{i}]", f"{name!r} is not among the series' scenarios")


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


@dataclass(frozen=True)
class Checkout:
    """A tree ready to build: where it is and what it contains."""

    path: Path
    tree_id: str     # git's tree id: the content, whatever the commit metadata
    slot: str        # names the build directories shared by every checkout of one workspace


def series_base(file: Path) -> Path:
    """kharness's own series name their patches from the repo's root; any other series config
    from its own directory."""
    here = file.resolve().parent
    return REPO_ROOT if here.is_relative_to(CONFIG_DIR.resolve()) else here


def load_series_config(name: str, config_dir: Path = CONFIG_DIR) -> SeriesConfig:
    path = find("series", name, config_dir)
    config = load(SeriesConfig, path)

    def here(value: str) -> str:   # a kernel or scenario named by file: relative to this one
        return str(path.parent / value) if is_path(value) else value
    return replace(config, base=str(series_base(path)), kernel=here(config.kernel),
                   scenarios=tuple(map(here, config.scenarios)))


def patch_subject(path: Path) -> str:
    """The Subject of a format-patch file, unfolded, without its [PATCH ...] tag."""
    head = path.read_text(errors="replace").split("\n\n", 1)[0]
    headers = HeaderParser().parsestr(head.split("\n", 1)[1] if head.startswith("From ") else head)
    subject = " ".join((headers.get("Subject") or "").split())
    if not subject:
        raise HarnessError("series", f"{path}: not a patch (no Subject header)")
    return re.sub(r"^\[[^\]]*PATCH[^\]]*\]\s*", "", subject)


def is_cover_letter(path: Path) -> bool:
    text = path.read_text(errors="replace")
    return path.name.startswith("0000-") or ("\ndiff --git " not in text and "\n--- a/" not in text)


def load_patch_dir(directory: Path, name: str = "", title: str = "") -> Series:
    """Every *.patch in name order, the cover letter left out. Numbered files (git
    format-patch's NNNN-) must run 1..N without a gap, and nothing but patches may be there:
    a patch lost on the way is an error, as in a mail thread, never a shorter series."""
    if not directory.is_dir():
        raise HarnessError("series", f"{directory}: no such directory")
    stray = sorted(p.name + ("/" if p.is_dir() else "") for p in directory.iterdir()
                   if not p.name.startswith(".") and (p.suffix not in (".patch", ".diff") or not p.is_file())
                   and (p.is_file() or p.suffix in (".patch", ".diff")))
    if stray:
        raise HarnessError("series", f"{directory}: not a patch: {', '.join(stray)} "
                                     "(a series directory holds NNNN-*.patch files only)")
    files = sorted(p for p in directory.glob("*.patch") if not is_cover_letter(p))
    if not files:
        raise HarnessError("series", f"{directory}: no patches (*.patch with a diff)")
    numbers = [int(m.group(1)) for p in files if (m := re.match(r"(\d{4})-", p.name))]
    if numbers and numbers != list(range(1, len(files) + 1)):
        missing = sorted(set(range(1, max(numbers) + 1)) - set(numbers))
        raise HarnessError("series", f"{directory}: patch {', '.join(f'{n:04d}' for n in missing) or 'numbering'} "
                                     f"missing: the files are numbered {', '.join(f'{n:04d}' for n in numbers)}")
    patches = tuple(Patch(p, patch_subject(p), sha256_file(p)) for p in files)
    return Series(name or directory.name, title or directory.name, patches, f"dir {directory}")


def load_series(config: SeriesConfig, cache: Path | None = None, progress: Progress | None = None,
                version: int | None = None, lore_base: str = DEFAULT_LORE) -> Series:
    """``version`` (the command line's) overrides the config's."""
    version = version if version is not None else config.version
    cache, progress = cache or cache_root(), progress or Quiet()
    if config.mbox is not None:
        return load_mbox(config.path(config.mbox), cache, progress, version, config.name,
                         config.title)
    if config.lore is not None:
        base, msgid = parse_lore_arg(config.lore, lore_base) or (lore_base, config.lore)
        return load_lore(base, msgid, cache, progress, version, config.name, config.title)
    return load_patch_dir(config.path(config.patches or ""), config.name, config.title)


def names_config(arg: str, config_dir: Path = CONFIG_DIR) -> bool:
    """Whether a --series argument names a series config (configs/series/, or a YAML file)."""
    return arg.endswith((".yaml", ".yml")) or (not is_path(arg) and arg in known("series", config_dir))


def resolve_series(arg: str, cache: Path, progress: Progress, version: int | None = None,
                   lore_base: str = DEFAULT_LORE, config_dir: Path = CONFIG_DIR
                   ) -> tuple[Series, SeriesConfig | None]:
    """A series from whatever a kernel developer has at hand: a config name, a directory of
    patches, an mbox file, or a message-id/lore URL; with its config when it came from one."""
    if names_config(arg, config_dir):
        config = load_series_config(arg, config_dir)
        return load_series(config, cache, progress, version, lore_base), config
    path = Path(arg).expanduser()
    if path.is_dir():
        return load_patch_dir(path), None
    if path.is_file():
        return load_mbox(path, cache, progress, version), None
    lore = parse_lore_arg(arg, lore_base)
    if lore is not None:
        return load_lore(*lore, cache, progress, version), None
    names = ", ".join(known("series", config_dir))
    raise ConfigError("--series", arg, f"neither a series config (known: {names}) nor a "
                                       "directory, an mbox file or a message-id")


def load_mbox(path: Path, cache: Path, progress: Progress, version: int | None = None,
              name: str = "", title: str = "") -> Series:
    """An mbox as a mail client, `b4 mbox`, `b4 am` or `git format-patch --stdout` saves it
    (gzipped or not)."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise HarnessError("series", f"{path}: cannot read: {e.strerror}")
    mail = series_from_mbox(gunzip(raw, str(path)), str(path), version)
    return _mail_series(mail, cache, progress, name or path.name, title,
                        f"mbox {path} v{mail.version}", hashlib.sha256(raw).hexdigest())


def load_lore(base: str, msgid: str, cache: Path, progress: Progress, version: int | None = None,
              name: str = "", title: str = "") -> Series:
    data, sha = fetch_thread(base, msgid, cache, progress)
    mail = series_from_mbox(data, f"thread {msgid}", version, msgid)
    return _mail_series(mail, cache, progress, name or msgid, title,
                        f"lore {thread_page(base, msgid)} v{mail.version}", sha)


def _mail_series(mail: MailSeries, cache: Path, progress: Progress, name: str, title: str,
                 origin: str, sha: str) -> Series:
    """The chosen patches as files under ``cache/series/<content>/``, which Workspace.apply
    hands to `git am` like any directory of patches."""
    key = digest([part for p in mail.patches for part in (p.name, p.data)])
    final = cache / "series" / key
    with locked(cache / "series" / f"{key}.lock"):
        if not final.is_dir():
            with atomic_dir(final, owned=True) as tmp:
                for p in mail.patches:
                    (tmp / p.name).write_bytes(p.data)
    progress.info(f"series: v{mail.version} of '{mail.title}': {len(mail.patches)} patches, "
                  f"{mail.trailers} trailers from replies"
                  + (f", base-commit {mail.base_commit[:12]}" if mail.base_commit else ""))
    patches = tuple(Patch(final / p.name, p.subject, hashlib.sha256(p.data).hexdigest())
                    for p in mail.patches)
    return Series(name, title or mail.title, patches, origin, sha, mail.base_commit)


# --- the workspace -------------------------------------------------------------------------------


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

    def _git(self, *args: str, check: bool = True) -> Completed:
        return git(*args, cwd=self.work, stage="series", env=IDENTITY, check=check)

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

    def has(self, commit: str, path: str) -> bool:
        """Whether ``path`` exists in ``commit``."""
        return self._git("cat-file", "-e", f"{commit}:{path}", check=False).returncode == 0

    def export(self, commit: str, path: str, dest: Path) -> None:
        """Write ``path`` of ``commit`` under ``dest`` (same relative path), leaving the work
        tree alone: no lock, no wait for a build."""
        archive = git("archive", "--format=tar", commit, path, cwd=self.work, timeout=300, text=False)
        proc.run(["tar", "-x", "-C", str(dest)], "series", 300, input=archive.stdout,
                 what=f"tar -x of {path} at {commit[:12]}")

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
