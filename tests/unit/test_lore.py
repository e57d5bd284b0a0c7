"""Series from mail: a lore thread (served on 127.0.0.1) or an mbox file, read the way b4 does."""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import re
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.cli import main
from harness.config import load_kernel
from harness.core.errors import ConfigError, HarnessError
from harness.core.progress import Progress, Quiet
from harness.series.patches import load_series_config, resolve_series
from harness.series.workspace import Workspace
from harness.sources.lore import parse_lore_arg, patch_tag
from harness.sources.source import SourceTree

MSGID = "v2-0-cover@example.org"
V1 = "v1-0-cover@example.org"
ENV = {"GIT_AUTHOR_DATE": "@1614556800 +0000", "GIT_COMMITTER_DATE": "@1614556800 +0000"}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=Muchun", "-c", "user.email=m@example.org",
                           *args], cwd=cwd, check=True, capture_output=True, text=True,
                          timeout=30, env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), **ENV}
                          ).stdout.strip()


# --- the thread: a tiny tree, two revisions of a series, review replies -------------------------


@pytest.fixture(scope="module")
def dev(tmp_path_factory) -> Path:
    """A tree with v1 (2 patches) and v2 (3 patches) of a series as format-patch directories."""
    root = tmp_path_factory.mktemp("dev")
    tree = root / "tree"
    tree.mkdir()
    (tree / "Makefile").write_text("VERSION = 5\nPATCHLEVEL = 12\nSUBLEVEL = 0\n")
    (tree / "mm.c").write_text("".join(f"line {i}\n" for i in range(40)))
    git(tree, "init", "-q")
    git(tree, "add", "-A")
    git(tree, "commit", "-qm", "base")
    git(tree, "tag", "base")
    for version, lines in ((1, (3, 20)), (2, (3, 20, 35))):
        git(tree, "checkout", "-q", "-b", f"v{version}", "base")
        for n, line in enumerate(lines, 1):
            text = (tree / "mm.c").read_text().replace(f"line {line}\n", f"v{version} {line}\n")
            (tree / "mm.c").write_text(text)
            git(tree, "commit", "-qam", f"mm: change {n} of v{version}\n\nWhy it matters.\n\n"
                                        f"Signed-off-by: Muchun <m@example.org>")
        reroll = [f"-v{version}"] if version > 1 else []  # a v1 says no version: [PATCH 1/2]
        git(tree, "format-patch", "-q", "--cover-letter", *reroll, "--base=base",
            "-o", str(root / f"v{version}"), "base")
    git(tree, "checkout", "-q", "base")
    return root


def mail(text: str, msgid: str, date: str, parent: str | None = None) -> str:
    """A format-patch file or a reply as lore stores it: mboxrd From line, ids, a date."""
    text = re.sub(r"\AFrom [0-9a-f]+ Mon Sep 17 00:00:00 2001\n", "", text)
    text = re.sub(r"^Date: .*\n", "", text, count=1, flags=re.M)
    ids = f"Message-Id: <{msgid}>\nDate: {date}\n"
    if parent:
        ids += f"In-Reply-To: <{parent}>\nReferences: <{parent}>\n"
    return f"From mboxrd@z Thu Jan  1 00:00:00 1970\n{ids}{text.rstrip()}\n\n"


QUOTED = "> Signed-off-by: Muchun <m@example.org>\n> Reviewed-by: Quoted Only <q@example.org>\n"
REPLIES = {  # message-id: (the mail it answers, day in March, sender, subject, body)
    "r1": ("v2-2-patch", 9, "Rev One <rev1@example.org>", "[PATCH v2 2/3] mm: change 2 of v2",
           f"{QUOTED}\nReviewed-by: Rev One <rev1@example.org>\n"),
    "r2": ("r1", 10, "Tess Ter <tess@example.org>", "[PATCH v2 2/3] mm: change 2 of v2",
           "Works here.\n\nTested-by: Tess Ter <tess@example.org>\n"),
    "r3": ("v2-0-cover", 11, "Ack Er <ack@example.org>", "[PATCH v2 0/3] Series, take 2",
           "For the series:\n\nAcked-by: Ack Er <ack@example.org>\n"),
    "r4": ("v1-1-patch", 2, "Old Timer <old@example.org>", "[PATCH 1/2] mm: change 1 of v1",
           "Reviewed-by: Old Timer <old@example.org>\n"),
    # b4 takes a trailer from its sender only: this one, given for someone else, is not applied
    "r5": ("v2-3-patch", 12, "Reviewer <r@example.org>", "[PATCH v2 3/3] mm: change 3 of v2",
           "Reviewed-by: Some One Else <else@example.org>\n"),
}
FIXUP = ("From: Reviewer <r@example.org>\nSubject: [PATCH] mm: a reviewer's fixup\n\nLike this?\n"
         "---\ndiff --git a/mm.c b/mm.c\n--- a/mm.c\n+++ b/mm.c\n@@ -1 +1 @@\n-line 0\n+fixup 0\n")


def thread_mails(dev: Path) -> dict[str, str]:
    mails = {}
    for v, day in ((1, 1), (2, 8)):
        for f in sorted((dev / f"v{v}").glob("*.patch")):
            n = int(re.search(r"(\d{4})-", f.name).group(1))  # type: ignore[union-attr]
            text = f.read_text().replace("*** SUBJECT HERE ***", f"Series, take {v}")
            parent = f"v{v}-0-cover@example.org" if n else None
            mails[f"v{v}-{n}"] = mail(text, f"v{v}-{n}-{'patch' if n else 'cover'}@example.org",
                                      f"Mon, {day:02d} Mar 2021 06:22:{27 + n:02d} +0000", parent)
    for key, (to, day, sender, subject, body) in REPLIES.items():
        mails[key] = mail(f"From: {sender}\nSubject: Re: {subject}\n\n{body}",
                          f"{key}@example.org", f"Tue, {day:02d} Mar 2021 10:00:00 +0000",
                          f"{to}@example.org")
    # a patch sent into the thread by a reviewer: [PATCH] reads as 1/1 of v1, not part of it
    mails["fixup"] = mail(FIXUP, "fixup@example.org", "Sat, 13 Mar 2021 10:00:00 +0000",
                          "v1-2-patch@example.org")
    return mails


def mbox(mails: dict[str, str], drop: tuple[str, ...] = ()) -> bytes:
    """The thread in a shuffled order: nothing may depend on the order mails arrive in."""
    chosen = [m for k, m in mails.items() if k not in drop]
    random.Random(6).shuffle(chosen)
    return "".join(chosen).encode()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        route = self.server.routes.get(self.path)  # type: ignore[attr-defined]
        if route is None:
            self.send_error(404)
            return
        body, content_type = route
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class Lore:
    """A public-inbox on 127.0.0.1 that serves the threads a test puts in it."""

    def __init__(self) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.routes = {}  # type: ignore[attr-defined]
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        self.base = f"http://127.0.0.1:{self.httpd.server_port}/all"

    def thread(self, msgid: str, data: bytes, content_type: str = "application/gzip") -> None:
        routes = self.httpd.routes  # type: ignore[attr-defined]
        routes[f"/all/{msgid}/t.mbox.gz"] = (data, content_type)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def lore(dev):
    server = Lore()
    server.thread(MSGID, gzip.compress(mbox(thread_mails(dev))))
    server.thread(V1, gzip.compress(mbox(thread_mails(dev))))   # as lore: both, by either id
    yield server
    server.stop()


@pytest.fixture
def progress() -> Progress:
    return Progress(stream=io.StringIO(), live=False)


def fetch(lore: Lore, tmp_path: Path, progress: Progress, arg: str = f"<{MSGID}>", **kw):
    series, config = resolve_series(arg, tmp_path / "cache", progress, lore_base=lore.base, **kw)
    assert config is None
    return series


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- choosing the revision ----------------------------------------------------------------------


def test_newest_revision_is_picked_in_order_without_cover_letter_or_replies(lore, tmp_path,
                                                                            progress, dev):
    series = fetch(lore, tmp_path, progress)
    assert [p.subject for p in series.patches] == [f"mm: change {n} of v2" for n in (1, 2, 3)]
    assert [p.path.name for p in series.patches] == [
        f"000{n}-mm-change-{n}-of-v2.patch" for n in (1, 2, 3)]
    assert series.title == "Series, take 2"
    assert series.base_commit == git(dev / "tree", "rev-parse", "base")
    assert series.origin == f"lore {lore.base}/{MSGID}/ v2"
    assert series.origin_sha256 == hashlib.sha256(mbox(thread_mails(dev))).hexdigest()
    assert "v2 of 'Series, take 2': 3 patches, 5 trailers from replies" in \
        progress.stream.getvalue()


def test_version_asked_for_is_picked(lore, tmp_path, progress):
    series = fetch(lore, tmp_path, progress, f"<{V1}>", version=1)
    assert [p.subject for p in series.patches] == ["mm: change 1 of v1", "mm: change 2 of v1"]
    assert "fixup" not in series.patches[0].path.read_text()  # the reviewer's [PATCH] (1/1)
    assert "Reviewed-by: Old Timer <old@example.org>" in series.patches[0].path.read_text()
    assert "Acked-by" not in series.patches[0].path.read_text()  # given to v2's cover letter


def test_version_not_in_the_thread_is_named(lore, tmp_path, progress):
    with pytest.raises(HarnessError, match=r"b4 am found no series: Unable to find revision 3$"):
        fetch(lore, tmp_path, progress, version=3)


def test_trailers_from_replies_land_on_the_right_patches(lore, tmp_path, progress):
    texts = [p.path.read_text() for p in fetch(lore, tmp_path, progress).patches]
    acked = "Acked-by: Ack Er <ack@example.org>"
    assert all(acked in t for t in texts)  # a reply to the cover letter counts for every patch
    assert "Reviewed-by: Rev One <rev1@example.org>" in texts[1]
    assert "Tested-by: Tess Ter <tess@example.org>" in texts[1]  # a reply to the review
    assert not any("Rev One" in t for t in (texts[0], texts[2]))
    assert not any("Old Timer" in t or "Quoted Only" in t for t in texts)  # v1's; quoted
    assert not any("Some One Else" in t for t in texts)   # given by a sender not its own (b4)
    assert all(t.count("Signed-off-by: Muchun") == 1 for t in texts)


def workspace(dev: Path, tmp_path: Path) -> Workspace:
    """The workspace a run applies series in, on the base the series was made from."""
    tree = tmp_path / "linux-5.12"
    subprocess.run(["git", "-C", str(dev / "tree"), "archive", "--prefix=linux-5.12/", "-o",
                    str(tmp_path / "base.tar"), "base"], check=True, timeout=30)
    subprocess.run(["tar", "-xf", str(tmp_path / "base.tar"), "-C", str(tmp_path)], check=True,
                   timeout=30)
    return Workspace(SourceTree(tree, "5.12.0", "path", str(tree), "e" * 64), tmp_path / "cache")


def test_patches_apply_with_git_am_and_carry_the_trailers(lore, tmp_path, progress, dev):
    ws = workspace(dev, tmp_path)
    commits = ws.apply(fetch(lore, tmp_path, progress), Quiet(), tmp_path / "am.log")
    message = subprocess.run(["git", "-C", str(ws.work), "log", "-1", "--format=%B", commits[1]],
                             capture_output=True, text=True, check=True).stdout
    assert message.strip().splitlines()[-4:] == [
        "Signed-off-by: Muchun <m@example.org>", "Reviewed-by: Rev One <rev1@example.org>",
        "Tested-by: Tess Ter <tess@example.org>", "Acked-by: Ack Er <ack@example.org>"]
    with ws.checkout(commits[-1]) as co:
        assert "v2 35" in (co.path / "mm.c").read_text()


def test_missing_patch_is_named(lore, tmp_path, progress, dev):
    lore.thread(MSGID, gzip.compress(mbox(thread_mails(dev), drop=("v2-2",))))
    with pytest.raises(HarnessError, match=r"v2 is missing patch 2/3 \(it has 1/3, 3/3\)"):
        fetch(lore, tmp_path, progress)


def test_without_b4_a_thread_is_one_line_saying_how_to_get_it(lore, tmp_path, progress, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(HarnessError) as e:
        fetch(lore, tmp_path, progress)
    assert e.value.message.endswith("reading a series from mail needs b4 (`make deps`, or apt install b4)")
    assert "\n" not in e.value.message


# --- fetching -----------------------------------------------------------------------------------


def test_challenge_page_is_detected_and_says_how_to_save_the_mbox(lore, tmp_path, progress):
    page = b"<!DOCTYPE html><html><body>Making sure you are not a bot!</body></html>"
    lore.thread(MSGID, page, "text/html; charset=utf-8")
    with pytest.raises(HarnessError) as e:
        fetch(lore, tmp_path, progress)
    assert "lore answered with a web page" in e.value.message and "\n" not in e.value.message
    assert f"`b4 am {MSGID}`" in e.value.message and "--series FILE" in e.value.message


def test_challenge_page_without_html_content_type_is_detected(lore, tmp_path, progress):
    lore.thread(MSGID, b"<html><title>One moment</title></html>", "application/octet-stream")
    with pytest.raises(HarnessError, match="answered with a web page"):
        fetch(lore, tmp_path, progress)


def test_second_fetch_is_a_cache_hit_without_the_server(lore, tmp_path, progress):
    first = fetch(lore, tmp_path, progress)
    assert list((tmp_path / "cache/lore").glob("*.mbox.gz")) == [
        tmp_path / "cache/lore" / f"{first.origin_sha256}.mbox.gz"]
    lore.stop()
    again = fetch(lore, tmp_path, progress)
    assert again == first
    assert f"using the copy fetched earlier (sha256 {first.origin_sha256[:16]})" in \
        progress.stream.getvalue()


def test_no_network_is_one_line_that_says_what_to_do(tmp_path, progress):
    base = f"http://127.0.0.1:{closed_port()}/all"
    with pytest.raises(HarnessError) as e:
        resolve_series(MSGID, tmp_path / "cache", progress, lore_base=base)
    assert e.value.message.startswith(f"cannot fetch {base}/{MSGID}/t.mbox.gz: Connection refused")
    assert "--series FILE" in e.value.message and "\n" not in e.value.message


def test_cli_without_network_exits_2_with_one_line(tmp_path, capsys):
    base = f"http://127.0.0.1:{closed_port()}/all"
    status = main(["run", "--series", MSGID, "--lore-base", base, "--arch", "x86_64",
                   "--cache", str(tmp_path / "cache"), "--results", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("kharness: series: cannot fetch ") and err.count("\n") == 1
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("arg, expected", [
    (f"<{MSGID}>", ("https://lore.kernel.org/all", MSGID)),
    (MSGID, ("https://lore.kernel.org/all", MSGID)),
    (f"https://lore.kernel.org/all/{MSGID}/", ("https://lore.kernel.org/all", MSGID)),
    (f"https://lore.kernel.org/linux-mm/{MSGID}/T/#u", ("https://lore.kernel.org/linux-mm", MSGID)),
    (f"https://lore.kernel.org/r/{MSGID}", ("https://lore.kernel.org/all", MSGID)),
    ("https://lore.kernel.org/all/a%2Fb@x/t.mbox.gz", ("https://lore.kernel.org/all", "a/b@x")),
    ("obj-cgroup-kmem", None),
    ("patches/", None),
])
def test_message_ids_and_lore_urls_are_recognised(arg, expected):
    assert parse_lore_arg(arg) == expected


@pytest.mark.parametrize("subject, tag", [
    ("[PATCH v2 3/5] mm: x", (2, 3, 5)),
    ("[RFC PATCH net-next v3 03/10] net: x", (3, 3, 10)),
    ("[PATCHv4 0/2] x", (4, 0, 2)),
    ("[PATCH] x", (1, 1, 1)),
    ("[RFC][PATCH 2/2] x", (1, 2, 2)),
    ("Re: [PATCH v2 3/5] mm: x", None),
    ("mm: no tag", None),
])
def test_patch_tags_are_read_like_b4(subject, tag):
    assert patch_tag(subject) == tag


def test_encoded_headers_and_bodies_are_decoded_for_git_am(tmp_path, progress):
    """Mailers send quoted-printable and RFC 2047; `git am` gets plain UTF-8 8bit."""
    box = tmp_path / "one.mbox"
    box.write_text(
        "From mboxrd@z Thu Jan  1 00:00:00 1970\nFrom: =?UTF-8?q?J=C3=B6rg?= <j@example.org>\n"
        "Subject: =?UTF-8?q?=5BPATCH=5D_mm=3A_f=C3=BCr_alle?=\nDate: Mon, 01 Mar 2021 06:22:27 +0000\n"
        "Message-Id: <qp@example.org>\nContent-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: quoted-printable\n\nSch=C3=B6n.\n\nSigned-off-by: J=C3=B6rg <j@exa=\n"
        "mple.org>\n---\ndiff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b=3Dc\n")
    (patch,) = resolve_series(str(box), tmp_path / "cache", progress)[0].patches
    assert patch.subject == "mm: für alle"
    text = patch.path.read_text()
    assert "Schön.\n\nSigned-off-by: Jörg <j@example.org>\n---\n" in text and "+b=c\n" in text
    assert "Content-Transfer-Encoding: 8bit" in text


# --- mbox files and configs ---------------------------------------------------------------------


def diffs(series) -> list[str]:
    return [p.path.read_text().split("\ndiff --git ", 1)[1].rstrip("\n") for p in series.patches]


def test_mbox_file_gives_the_same_patches_as_its_directory(dev, tmp_path, progress):
    """`cat *.patch > series.mbox` (what `git format-patch --stdout` or a mail client saves)."""
    box = tmp_path / "series.mbox"
    box.write_bytes(b"".join(p.read_bytes() for p in sorted((dev / "v2").glob("*.patch"))))
    from_dir, _ = resolve_series(str(dev / "v2"), tmp_path / "cache", progress)
    from_mbox, _ = resolve_series(str(box), tmp_path / "cache", progress)
    assert [p.subject for p in from_mbox.patches] == [p.subject for p in from_dir.patches]
    assert diffs(from_mbox) == diffs(from_dir)
    assert from_mbox.origin == f"mbox {box} v2" and from_mbox.base_commit
    gz = tmp_path / "series.mbox.gz"
    gz.write_bytes(gzip.compress(box.read_bytes()))
    assert diffs(resolve_series(str(gz), tmp_path / "cache", progress)[0]) == diffs(from_dir)
    ws = workspace(dev, tmp_path)  # what gets built: the same tree either way
    trees = [git(ws.work, "rev-parse", f"{ws.apply(s, Quiet(), tmp_path / 'am.log')[-1]}^{{tree}}")
             for s in (from_dir, from_mbox)]
    assert trees[0] == trees[1]


def test_a_file_that_is_not_an_mbox_is_refused(tmp_path, progress):
    (tmp_path / "notes.txt").write_text("hello\n")
    with pytest.raises(HarnessError, match="notes.txt: not an mbox"):
        resolve_series(str(tmp_path / "notes.txt"), tmp_path / "cache", progress)


def test_unknown_series_argument_lists_what_it_could_be(tmp_path, progress):
    with pytest.raises(ConfigError, match="neither a series config .*nor a directory, an mbox"):
        resolve_series("no-such-series", tmp_path / "cache", progress)


def series_config(tmp_path: Path, **fields) -> Path:
    d = tmp_path / "configs/series"
    d.mkdir(parents=True, exist_ok=True)
    lines = [f"{k}: {v}" for k, v in {"name": "t", "title": "T", "kernel": "linux-5.12-rc1",
                                     "scenarios": "[dying-memcg]", **fields}.items()]
    (d / "t.yaml").write_text("\n".join(lines) + "\n")
    return tmp_path / "configs"


def test_config_naming_a_lore_thread_and_a_version(lore, tmp_path, progress):
    configs = series_config(tmp_path, lore=V1, version=1)
    series, config = resolve_series("t", tmp_path / "cache", progress, lore_base=lore.base,
                                    config_dir=configs)
    assert config is not None and config.kernel == "linux-5.12-rc1"
    assert (series.name, series.title, len(series.patches)) == ("t", "T", 2)


@pytest.mark.parametrize("fields, problem", [
    ({"patches": "kernel-patches/x", "lore": MSGID}, "got patches, lore"),
    ({}, "got none"),
    ({"lore": "not a message id"}, "not a message-id or lore URL"),
])
def test_config_needs_exactly_one_usable_patch_source(tmp_path, fields, problem):
    with pytest.raises(ConfigError, match=problem):
        load_series_config("t", series_config(tmp_path, **fields))


def test_the_upstream_v1_config_and_its_kernel_load():
    config = load_series_config("obj-cgroup-kmem-v1-lore")
    assert (config.lore, config.version) == ("20210301062227.59292-1-songmuchun@bytedance.com", 1)
    kernel = load_kernel(config.kernel)
    assert kernel.version == "5.12" and kernel.sources[0].ref == "v5.12-rc1"
