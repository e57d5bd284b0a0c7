"""Series from mail: a thread from lore by message-id or URL, or an mbox file.

Kernel series live as mail threads, where one thread can hold several revisions of a series,
their cover letters and the review. What a test needs out of that is one revision's patches, in
order, with the trailers reviewers gave in replies, as files `git am` applies: the newest
revision unless another is asked for, a missing patch an error rather than a silently shorter
series. b4, the tool kernel developers fetch series with, does that part (revisions, partial
rerolls, trailers, attestation): kharness runs it on the thread like git, with no configuration
of the user's, and keeps to what b4 does not do: fetching with a cache that serves offline,
lore's bot check, and an mbox with no Message-IDs (`git format-patch --stdout`), which b4 cannot
thread and which kharness reads as one series in [n/m] order.
"""

from __future__ import annotations

import gzip
import hashlib
import mailbox
import os
import re
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

from harness.core import proc
from harness.core.cache import atomic_file, digest, locked
from harness.core.errors import HarnessError
from harness.core.http import http_get
from harness.core.progress import Progress

DEFAULT_LORE = "https://lore.kernel.org/all"
B4_TIMEOUT = 300.0


@dataclass(frozen=True)
class PatchMail:
    """One patch as a file for `git am`: its file name, subject (untagged) and bytes."""

    name: str
    subject: str
    data: bytes


@dataclass(frozen=True)
class MailSeries:
    version: int
    title: str        # the cover letter's subject, else the first patch's
    patches: tuple[PatchMail, ...]
    base_commit: str  # from `base-commit:` (git format-patch --base), "" when not given
    trailers: int     # how many trailers replies added


# --- where a thread is --------------------------------------------------------------------------


def parse_lore_arg(arg: str, lore_base: str = DEFAULT_LORE) -> tuple[str, str] | None:
    """(inbox base URL, message-id) for ``<id>``, ``id@host`` or a lore URL; None otherwise.

    A URL keeps its own server and inbox (a public-inbox other than lore works the same);
    lore's /r/ redirector stands for all/.
    """
    arg = arg.strip()
    if re.match(r"https?://", arg):
        parts = urlparse(arg).path.split("/")
        at = next((i for i, p in enumerate(parts) if "@" in unquote(p)), None)
        if at is None:
            return None
        inbox = "all" if parts[at - 1] == "r" else parts[at - 1]
        base = f"{urlparse(arg).scheme}://{urlparse(arg).netloc}{'/'.join(parts[:at - 1])}/{inbox}"
        return base.rstrip("/"), unquote(parts[at])
    msgid = arg[1:-1] if arg.startswith("<") and arg.endswith(">") else arg
    if re.fullmatch(r"[^\s<>/@]+@[^\s<>/@]+", msgid):
        return lore_base.rstrip("/"), msgid
    return None


def thread_page(base: str, msgid: str) -> str:
    return f"{base}/{quote(msgid, safe='@+=$!')}/"


def fetch_thread(base: str, msgid: str, cache: Path, progress: Progress) -> tuple[bytes, str]:
    """The thread as an mbox, and its sha256 (of the mbox, whatever gzip's header holds).

    The network comes first, as a thread grows (a new revision, new trailers); the copy fetched
    last serves when lore cannot be reached, so a second run works offline.
    """
    url = thread_page(base, msgid) + "t.mbox.gz"
    store, index = cache / "lore", cache / "lore" / "msgid" / digest([msgid])
    try:
        progress.verbose(f"series: fetching {url}")  # a failure says it, in one line
        data = download_thread(url, msgid)
    except HarnessError:
        sha = index.read_text().strip() if index.is_file() else ""
        if not sha or not (store / f"{sha}.mbox.gz").is_file():
            raise
        progress.info(f"series: cannot fetch {url}; using the copy fetched earlier "
                      f"(sha256 {sha[:16]})")
        return gzip.decompress((store / f"{sha}.mbox.gz").read_bytes()), sha
    sha = hashlib.sha256(data).hexdigest()  # what `zcat FILE | sha256sum` says
    with locked(store / "index.lock"):
        if not (store / f"{sha}.mbox.gz").is_file():
            with atomic_file(store / f"{sha}.mbox.gz") as f:
                f.write(gzip.compress(data, mtime=0))
        with atomic_file(index, "w") as f:
            f.write(sha + "\n")
    return data, sha


def download_thread(url: str, msgid: str) -> bytes:
    """lore answers some clients with an HTML page (a bot check) where the mbox should be; both
    that and no network end in how to get the mbox another way."""
    by_hand = (f"save the thread by hand (`b4 am {msgid}`, or the 'mbox.gz' link of "
               f"{url[:-len('t.mbox.gz')]} in a browser) and pass the file with --series FILE")
    try:
        r = http_get(url, "series", headers={"User-Agent": "kharness"})
    except HarnessError as e:
        raise HarnessError("series", f"cannot fetch {e.message}; {by_hand}")
    if "html" in r.headers.get("Content-Type", "").lower() or r.content.lstrip()[:1] == b"<":
        raise HarnessError("series", f"{url}: lore answered with a web page (an anti-bot check?)"
                                     f" instead of the mbox; {by_hand}")
    return gunzip(r.content, url)


def gunzip(data: bytes, label: str) -> bytes:
    if not data.startswith(b"\x1f\x8b"):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise HarnessError("series", f"{label}: not a readable gzip file: {e}")


# --- what the thread holds ----------------------------------------------------------------------


MAX_PATCHES = 999   # git format-patch numbers NNNN-; no series on a list has had more


def patch_tag(subject: str) -> tuple[int, int, int] | None:
    """(version, n, m) from ``[PATCH v2 3/5]``, ``[RFC PATCH net-next v2 03/10]``, ``[PATCHv2]``,
    ``[PATCH]``; None for a reply or anything else."""
    if re.match(r"\s*(re|aw|sv|fwd?)\s*:", subject, re.I):
        return None
    prefix = re.match(r"\s*((?:\[[^\]]*\]\s*)+)", subject)
    if not prefix or not re.search(r"patch", prefix.group(1), re.I):
        return None
    version = re.search(r"(?:\b|patch)v(\d+)\b", prefix.group(1), re.I)
    count = re.search(r"\b(\d+)/(\d+)\b", prefix.group(1))
    n, m = (int(count.group(1)), int(count.group(2))) if count else (1, 1)
    if not 1 <= m <= MAX_PATCHES or n > m:   # the missing ones are listed: never 10**11 of them
        raise HarnessError("series", f"{' '.join(subject.split())[:80]!r}: [{n}/{m}] is not a patch of "
                                     f"a series of 1 to {MAX_PATCHES}")
    return (int(version.group(1)) if version else 1, n, m)


def untagged(subject: str) -> str:
    return re.sub(r"^\s*(\[[^\]]*\]\s*)+", "", subject)


def read_mbox(data: bytes, label: str) -> list[Message]:
    if not data.startswith(b"From "):
        raise HarnessError("series", f"{label}: not an mbox (it does not start with 'From ')")
    with tempfile.NamedTemporaryFile(prefix="kharness-", suffix=".mbox") as f:
        f.write(data)
        f.flush()
        box = mailbox.mbox(f.name, create=False)
        try:
            raw = [box.get_bytes(key) for key in box.keys()]
        finally:
            box.close()
    return [BytesParser().parsebytes(r) for r in raw]


def header(msg: Message, name: str) -> str:
    """A header decoded (RFC 2047) and unfolded."""
    value = next((v for k, v in msg.raw_items() if k.lower() == name.lower()), "")
    value = value.encode("utf-8", "surrogateescape").decode(errors="replace")
    try:
        return " ".join(str(make_header(decode_header(value))).split())
    except (UnicodeError, LookupError, ValueError):
        return " ".join(value.split())


def series_from_mbox(data: bytes, label: str, version: int | None = None,
                     msgid: str | None = None) -> MailSeries:
    """One revision of the series in a thread (b4 am), or of an mbox without Message-IDs."""
    mails = read_mbox(data, label)
    if msgid is None and not any(header(m, "Message-ID") for m in mails):
        return plain_series(mails, label, version)
    return b4_am(data, label, version, msgid)


def b4_env(home: Path) -> dict[str, str]:
    """b4 as on a fresh machine: no user or system git or b4 configuration, its cache in ``home``
    (a run must not depend on the settings of whoever runs it); a committer for `b4 am`."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
            "XDG_CONFIG_HOME": str(home / "config"), "XDG_CACHE_HOME": str(home / "cache"),
            "XDG_DATA_HOME": str(home / "data"), "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_COUNT": "2",
            "GIT_CONFIG_KEY_0": "user.name", "GIT_CONFIG_VALUE_0": "kharness",
            "GIT_CONFIG_KEY_1": "user.email", "GIT_CONFIG_VALUE_1": "kharness@localhost"}


def b4_am(data: bytes, label: str, version: int | None, msgid: str | None) -> MailSeries:
    """`b4 am` on the thread: the revision (the newest, or ``version``), trailers from replies
    whose sender gave them, as one am-ready mbox, split here into a file per patch."""
    if shutil.which("b4") is None:
        raise HarnessError("series", f"{label}: reading a series from mail needs b4 "
                           "(`make deps`, or apt install b4)")
    with tempfile.TemporaryDirectory(prefix="kharness-b4-") as tmp:
        home = Path(tmp)
        (home / "thread.mbox").write_bytes(data)
        (home / "out").mkdir()
        cmd = ["b4", "am", "-t", "-m", "thread.mbox", "-o", "out", "-n", "series",
               *(["-v", str(version)] if version is not None else []), *([msgid] if msgid else [])]
        r = proc.run(cmd, "series", B4_TIMEOUT, cwd=home, env=b4_env(home), check=False,
                     what="b4 am")
        said = "\n".join(x for x in (str(r.stdout), str(r.stderr)) if x)
        am = home / "out" / "series.mbx"
        if r.returncode != 0 or not am.is_file():
            lines = [x.strip() for x in said.splitlines() if x.strip() and not x.startswith(("  ", "---"))]
            why = lines[-1] if lines else f"exit {r.returncode}, no output"
            raise HarnessError("series", f"{label}: b4 am found no series: {why}")
        patches = read_mbox(am.read_bytes(), f"{label} (b4 am)")
        cover = home / "out" / "series.cover"
        cover_text = cover.read_text(errors="replace") if cover.is_file() else ""
    tags = [patch_tag(header(m, "Subject")) for m in patches]
    chosen = next((t[0] for t in tags if t), version or 1)
    total = next((t[2] for t in tags if t), len(patches))
    have = sorted(t[1] for t in tags if t)
    missing = [f"{n}/{total}" for n in range(1, total + 1) if n not in have]
    if missing or "Thread incomplete" in said:
        raise HarnessError("series", f"{label}: v{chosen} is missing patch"
                                     f"{'es' if len(missing) > 1 else ''} {', '.join(missing) or '?'} "
                                     f"(it has {', '.join(f'{n}/{total}' for n in have) or 'none'})")
    title = header(BytesParser().parsebytes(cover_text.encode()), "Subject") if cover_text else ""
    texts = [cover_text] + [m.as_string() for m in patches]
    base = next((m.group(1) for t in texts
                 if (m := re.search(r"^base-commit: *([0-9a-f]{7,64}) *$", t, re.M))), "")
    trailers = len(re.findall(r"^ +\+ [A-Za-z-]+: ", said, re.M))
    return MailSeries(chosen, untagged(title or header(patches[0], "Subject")),
                      tuple(_patch_file(i, m) for i, m in enumerate(patches, 1)), base, trailers)


def plain_series(mails: list[Message], label: str, version: int | None) -> MailSeries:
    """Patches with no Message-IDs to thread them by (`git format-patch --stdout`, `cat
    *.patch`): one revision, its [n/m] tags in order, its cover letter's title and base-commit."""
    tagged = [(t, m) for m in mails if (t := patch_tag(header(m, "Subject"))) is not None]
    have = sorted({t[0] for t, _ in tagged})
    if not have:
        raise HarnessError("series", f"{label}: no [PATCH] mails among its {len(mails)} messages")
    chosen = version if version is not None else have[-1]
    if chosen not in have:
        raise HarnessError("series", f"{label}: no v{chosen} of the series in it (it has "
                                     f"{', '.join(f'v{v}' for v in have)})")
    rev = {t[1]: m for t, m in tagged if t[0] == chosen}
    total = max(t[2] for t, _ in tagged if t[0] == chosen)
    cover = rev.pop(0, None)
    missing = [f"{n}/{total}" for n in range(1, total + 1) if n not in rev]
    if missing:
        raise HarnessError("series", f"{label}: v{chosen} is missing patch{'es' if len(missing) > 1 else ''} "
                                     f"{', '.join(missing)} (it has {', '.join(f'{n}/{total}' for n in sorted(rev)) or 'none'})")
    patches = [rev[n] for n in sorted(rev)]
    base = next((m.group(1) for p in ([cover] if cover else []) + patches
                 if (m := re.search(r"^base-commit: *([0-9a-f]{7,64}) *$", p.as_string(), re.M))), "")
    return MailSeries(chosen, untagged(header(cover or patches[0], "Subject")),
                      tuple(_patch_file(i, m) for i, m in enumerate(patches, 1)), base, 0)


def _patch_file(n: int, msg: Message) -> PatchMail:
    """A single-message mbox for `git am` (which decodes MIME and RFC 2047 itself)."""
    subject = untagged(header(msg, "Subject"))
    slug = re.sub(r"[^A-Za-z0-9._]+", "-", subject).strip("-.")[:52].rstrip("-.") or "patch"
    body = msg.as_bytes(policy=msg.policy.clone(linesep="\n"))
    if not body.startswith(b"From "):
        body = b"From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n" + body
    return PatchMail(f"{n:04d}-{slug}.patch", subject, body)
