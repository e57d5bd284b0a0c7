"""Patch series: their configs (configs/series), and the patches from a directory, an mbox or a
lore thread (the workspace that applies them: workspace.py)."""

from __future__ import annotations

import email
import email.message
import email.policy
import hashlib
import re
from dataclasses import dataclass, replace
from email.parser import HeaderParser
from pathlib import Path

from harness import REPO_ROOT
from harness.config import CONFIG_DIR, check_name, find, is_path, known, load
from harness.core.cache import atomic_dir, cache_root, digest, locked, sha256_file
from harness.core.errors import ConfigError, HarnessError
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
from harness.series.workspace import Patch, Series


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
    # turn on the options that build the series' changed code the kernels leave out (its files'
    # obj-$(CONFIG_X), its hunks' #ifdef CONFIG_X) with their dependencies; false keeps the
    # kernel's fragments as they are (a series whose configuration is chosen)
    kconfig_auto: bool = True
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
            if not name.startswith("kselftest:"):   # a collection of the tree: configs/tests.yaml
                find("scenarios", name, file=file, field=f"scenarios[{i}]")
        for i, name in enumerate(self.fixes):
            if name not in self.scenarios:
                raise ConfigError(file, f"fixes[{i}]", f"{name!r} is not among the series' scenarios")


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


def diff_digest(raw: bytes) -> str:
    """The sha256 of a patch's diff, from its first `diff --git` line to the signature's `-- `,
    whatever carries it (a format-patch file, the mail as a list sent it: quoted-printable,
    base64): two versions of a patch with one subject differ here. '' when it has no diff."""
    text = ""
    try:
        body = email.message_from_bytes(raw, policy=email.policy.default).get_body(preferencelist=("plain",))
        text = body.get_content() if isinstance(body, email.message.EmailMessage) else ""
    except (KeyError, LookupError, ValueError):   # an unknown charset or encoding: the bytes as they are
        pass
    if not re.search(r"^diff --git ", text, re.M):
        text = raw.decode(errors="replace")
    m = re.search(r"^diff --git ", text, re.M)
    if m is None:
        return ""
    lines, left = [], 0   # left: the lines of the current hunk still to come (a "-- " among them is a diff line)
    for line in text[m.start():].splitlines():
        if left <= 0 and line == "-- ":
            break
        lines.append(line)
        if h := HUNK.match(line):
            left = int(h.group(1) or 1) + int(h.group(2) or 1)
        elif left > 0 and not line.startswith("\\"):   # "\ No newline at end of file" is no line of it
            left -= 1 if line.startswith(("+", "-")) else 2   # a context line counts on both sides
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


HUNK = re.compile(r"@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")


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
    path = Path(arg).expanduser().absolute()   # git am runs in the workspace, not here
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
