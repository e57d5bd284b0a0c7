"""Series from mail: a thread from lore by message-id, or an mbox file, read the way b4 reads it.

Kernel series live as mail threads, where one thread can hold several revisions of a series,
their cover letters and the review. What a test needs out of that is one revision's patches, in
order, with the trailers reviewers gave in replies, as files `git am` applies: the newest
revision unless another is asked for, a missing patch an error rather than a silently shorter
series.
"""

from __future__ import annotations

import gzip
import hashlib
import mailbox
import re
import tempfile
import zlib
from collections import Counter
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

from .cache import atomic_file, digest, locked
from .errors import HarnessError
from .progress import Progress
from .http import http_get

DEFAULT_LORE = "https://lore.kernel.org/all"
TRAILERS = {t.lower(): t for t in ("Reviewed-by", "Acked-by", "Tested-by")}


@dataclass(frozen=True)
class Mail:
    msgid: str
    parents: tuple[str, ...]  # In-Reply-To, then References from the nearest: the way up
    subject: str              # decoded and unfolded
    tag: tuple[int, int, int] | None  # (version, n, m) of a [PATCH vN n/m]; None for a reply
    date: float
    message: Message


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


def read_mbox(data: bytes, label: str) -> list[Mail]:
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
    return [_mail(BytesParser().parsebytes(r), i) for i, r in enumerate(raw)]


def raw_header(msg: Message, name: str) -> bytes | None:
    """A header's bytes as sent (8-bit, RFC 2047 and folding untouched)."""
    value = next((v for k, v in msg.raw_items() if k.lower() == name.lower()), None)
    return None if value is None else value.replace("\r\n", "\n").encode("utf-8", "surrogateescape")


def _mail(msg: Message, index: int) -> Mail:
    def text(name: str) -> str:
        value = (raw_header(msg, name) or b"").decode(errors="replace")
        try:
            return " ".join(str(make_header(decode_header(value))).split())
        except (UnicodeError, LookupError, ValueError):
            return " ".join(value.split())

    def ids(name: str) -> list[str]:
        return re.findall(r"<([^<>\s]+)>", text(name))

    try:
        date = parsedate_to_datetime(text("Date")).timestamp()
    except (TypeError, ValueError, IndexError):
        date = 0.0
    return Mail((ids("Message-ID") or [f"kharness-no-message-id-{index}"])[0],
                tuple(ids("In-Reply-To") + ids("References")[::-1]), text("Subject"),
                patch_tag(text("Subject")), date, msg)


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
    return (int(version.group(1)) if version else 1,
            *((int(count.group(1)), int(count.group(2))) if count else (1, 1)))


def untagged(subject: str) -> str:
    return re.sub(r"^\s*(\[[^\]]*\]\s*)+", "", subject)


def body_text(msg: Message) -> str:
    """The first text/plain part, decoded, with mboxrd's '>From ' quoting undone."""
    part = next((p for p in msg.walk() if not p.is_multipart()
                 and p.get_content_type() == "text/plain"), None)
    if part is None:
        return ""
    payload = part.get_payload(decode=True) or b""
    try:
        text = payload.decode(part.get_content_charset() or "utf-8", errors="replace")
    except LookupError:
        text = payload.decode("utf-8", errors="replace")
    return re.sub(r"^>(>*From )", r"\1", text.replace("\r\n", "\n"), flags=re.M)


def has_diff(text: str) -> bool:
    return re.search(r"^(diff --git |--- a/|Index: )", text, re.M) is not None


# --- choosing one revision ----------------------------------------------------------------------


def series_from_mbox(data: bytes, label: str, version: int | None = None) -> MailSeries:
    """One revision of the series in an mbox. A revision's size is what most of its mails say:
    a reviewer's "[PATCH] fixup" sent into the thread is not patch 1 of the series."""
    mails = read_mbox(data, label)
    sizes = Counter((m.tag[0], m.tag[2]) for m in mails if m.tag is not None)
    totals = {v: t for (v, t), _ in sorted(sizes.items(), key=lambda vt: vt[1])}  # most said
    revisions: dict[int, dict[int, Mail]] = {}
    for mail in sorted(mails, key=lambda m: m.date):  # a resend replaces what it resends
        if mail.tag is not None and mail.tag[2] == totals[mail.tag[0]]:
            revisions.setdefault(mail.tag[0], {})[mail.tag[1]] = mail
    have = sorted(v for v, r in revisions.items() if any(n > 0 for n in r))
    if not have:
        raise HarnessError("series", f"{label}: no [PATCH] mails among its {len(mails)} messages")
    chosen = version if version is not None else have[-1]
    if chosen not in have:
        raise HarnessError("series", f"{label}: no v{chosen} of the series in it (it has "
                                     f"{', '.join(f'v{v}' for v in have)})")
    rev, total = dict(revisions[chosen]), totals[chosen]
    cover = rev.pop(0, None)
    missing = [f"{n}/{total}" for n in range(1, total + 1) if n not in rev]
    if missing:
        present = ", ".join(f"{n}/{total}" for n in sorted(rev)) or "none"
        raise HarnessError("series", f"{label}: v{chosen} is missing patch"
                                     f"{'es' if len(missing) > 1 else ''} {', '.join(missing)} "
                                     f"(it has {present})")
    patches = [rev[n] for n in sorted(rev)]
    for n, p in enumerate(patches, 1):
        if not has_diff(body_text(p.message)):
            raise HarnessError("series", f"{label}: v{chosen} {n}/{total} '{untagged(p.subject)}'"
                                         " has no diff")
    given = collect_trailers(mails, cover, patches)
    base = next((m.group(1) for p in ([cover] if cover else []) + patches
                 if (m := re.search(r"^base-commit: *([0-9a-f]{7,64}) *$", body_text(p.message),
                                    re.M))), "")
    return MailSeries(chosen, untagged((cover or patches[0]).subject),
                      tuple(_patch_file(i, p, given[p.msgid]) for i, p in enumerate(patches, 1)),
                      base, sum(len(t) for t in given.values()))


def collect_trailers(mails: list[Mail], cover: Mail | None, patches: list[Mail]
                     ) -> dict[str, list[str]]:
    """Trailers given in replies, per patch message-id: a reply counts for the patch it answers
    (directly or through other replies), or for every patch when it answers the cover letter."""
    by_id = {m.msgid: m for m in mails}
    given: dict[str, list[str]] = {p.msgid: [] for p in patches}
    for reply in sorted((m for m in mails if m.tag is None), key=lambda m: m.date):
        target = _answered(reply, by_id)
        if target in given:
            targets = [target]
        elif cover is not None and target == cover.msgid:
            targets = list(given)
        else:
            continue
        for line in body_text(reply.message).splitlines():
            m = re.match(r"\s*([A-Za-z-]+):\s*(\S.*?)\s*$", line)  # quoted ('> ...') lines never
            if m and m.group(1).lower() in TRAILERS:
                trailer = f"{TRAILERS[m.group(1).lower()]}: {m.group(2)}"
                for msgid in targets:
                    if trailer not in given[msgid]:
                        given[msgid].append(trailer)
    return given


def _answered(reply: Mail, by_id: dict[str, Mail]) -> str | None:
    """The [PATCH] mail (patch or cover letter) a reply is about, up through other replies;
    a parent missing from the mbox is skipped for the next one the References name."""
    mail, seen = reply, set()
    while mail.msgid not in seen:
        seen.add(mail.msgid)
        parent = next((by_id[p] for p in mail.parents if p in by_id), None)
        if parent is None or parent.tag is not None:
            return parent.msgid if parent else None
        mail = parent
    return None


def _patch_file(n: int, mail: Mail, trailers: list[str]) -> PatchMail:
    """A single-message mbox as `git format-patch` writes it: the headers `git am` reads kept
    as sent, the body decoded to UTF-8 8bit with the collected trailers in the commit message."""
    head = [b"From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001"]
    for name in ("From", "Date", "Subject", "Message-ID"):
        value = raw_header(mail.message, name)
        if value is not None:
            head.append(name.encode() + b": " + value)
    head += [b"MIME-Version: 1.0", b"Content-Type: text/plain; charset=UTF-8",
             b"Content-Transfer-Encoding: 8bit"]
    body = add_trailers(body_text(mail.message), trailers)
    subject = untagged(mail.subject)
    slug = re.sub(r"[^A-Za-z0-9._]+", "-", subject).strip("-.")[:52].rstrip("-.") or "patch"
    return PatchMail(f"{n:04d}-{slug}.patch", subject,
                     b"\n".join(head) + b"\n\n" + body.encode("utf-8", "surrogateescape"))


def add_trailers(body: str, trailers: list[str]) -> str:
    """Trailers go at the end of the commit message: before the '---' line (or the diff)."""
    cut = re.search(r"^---$|^diff --git ", body, re.M)
    end = cut.start() if cut else len(body)
    message = body[:end].rstrip("\n")
    new = [t for t in trailers if t not in message.splitlines()]
    if not new:
        return body
    sep = "\n" if re.match(r"[A-Za-z0-9-]+: ", message.rsplit("\n", 1)[-1]) else "\n\n"
    return message + sep + "\n".join(new) + "\n" + body[end:]
