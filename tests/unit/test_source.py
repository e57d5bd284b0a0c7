"""Kernel sources: fetched from the first source that works, verified, extracted safely and once."""

from __future__ import annotations

import hashlib
import io
import shutil
import socket
import subprocess
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.config import KernelConfig, SourceSpec, from_dict, load_kernel
from harness.core.errors import ConfigError, HarnessError
from harness.core.progress import Progress
from harness.sources.debian import compare_debian_versions, pick_debian_version
from harness.sources.source import fetch_source, read_version

TOP = "linux-5.10.99"
MAKEFILE = b"# SPDX\nVERSION = 5\nPATCHLEVEL = 10\nSUBLEVEL = 99\nEXTRAVERSION =\nNAME = Dare\n"


# --- helpers ------------------------------------------------------------------------------------

Member = tuple[tarfile.TarInfo, bytes]


def member(name: str, data: bytes = b"", **attrs) -> Member:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o755 if attrs.get("type") == tarfile.DIRTYPE else 0o644
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def kernel_members(top: str = TOP, makefile: bytes = MAKEFILE) -> list[Member]:
    """A tiny tree shaped like a kernel's, with a symlink and a hardlink that stay inside it."""
    return [
        member(top, type=tarfile.DIRTYPE),
        member(f"{top}/Makefile", makefile),
        member(f"{top}/mm", type=tarfile.DIRTYPE),
        member(f"{top}/mm/memcontrol.c", b"int memcg;\n"),
        member(f"{top}/include", type=tarfile.DIRTYPE),
        member(f"{top}/include/mm", type=tarfile.SYMTYPE, linkname="../mm"),
        member(f"{top}/mm/copy.c", type=tarfile.LNKTYPE, linkname=f"{top}/mm/memcontrol.c"),
    ]


def make_tarball(path: Path, members: list[Member]) -> Path:
    with tarfile.open(path, "w:xz", format=tarfile.PAX_FORMAT) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def kernel(*sources: SourceSpec) -> KernelConfig:
    return KernelConfig(name="linux-test", version="5.10", sources=sources, kconfig=(), profiles={})


def url_source(url: str, sha256: str) -> SourceSpec:
    return SourceSpec(type="url", url=url, sha256=sha256)


def path_source(path: Path) -> SourceSpec:
    return SourceSpec(type="path", path=str(path))


def git_source(repo: Path, ref: str) -> SourceSpec:
    return SourceSpec(type="git", repo=str(repo), ref=ref)


def git(*args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
                          check=True, capture_output=True, text=True, timeout=30).stdout.strip()


def under_final_keys(cache: Path) -> list[str]:
    """Everything in the cache except locks: what a later run could mistake for an artifact."""
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.suffix != ".lock"
                  and p.name not in ("downloads", "sources"))


class Handler(BaseHTTPRequestHandler):
    """Serves ``server.routes``: path -> (body, Content-Length to declare), then hangs up."""

    def do_GET(self) -> None:
        route = self.server.routes.get(self.path)  # type: ignore[attr-defined]
        if route is None:
            self.send_error(404)
            return
        body, declared = route
        self.send_response(200)
        self.send_header("Content-Length", str(declared))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args) -> None:
        pass


class Server:
    def __init__(self) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.routes = {}  # type: ignore[attr-defined]
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}/{name}"

    def serve(self, name: str, body: bytes, declared: int | None = None) -> str:
        routes = self.httpd.routes  # type: ignore[attr-defined]
        routes[f"/{name}"] = (body, len(body) if declared is None else declared)
        return self.url(name)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def progress() -> Progress:
    return Progress(stream=io.StringIO(), live=False)


@pytest.fixture
def fetch(cache: Path, progress: Progress):
    """fetch_source for a test kernel made of the given sources, in this test's own cache."""
    return lambda *sources: fetch_source(kernel(*sources), cache, progress)


@pytest.fixture
def tarball(tmp_path: Path) -> Path:
    return make_tarball(tmp_path / f"{TOP}.tar.xz", kernel_members())


# --- url ----------------------------------------------------------------------------------------


def test_url_download_is_verified_extracted_and_versioned(server, tarball, cache, fetch):
    url = server.serve(tarball.name, tarball.read_bytes())
    tree = fetch(url_source(url, sha(tarball)))
    assert tree.path == cache / "sources" / sha(tarball) / TOP
    assert (tree.version, tree.provider, tree.origin) == ("5.10.99", "url", url)
    assert tree.sha256 == sha(tarball)
    assert (cache / "downloads" / sha(tarball) / tarball.name).read_bytes() == tarball.read_bytes()
    assert (tree.path / "include/mm/memcontrol.c").read_bytes() == b"int memcg;\n"
    assert (tree.path / "mm/copy.c").stat().st_ino == (tree.path / "mm/memcontrol.c").stat().st_ino


def test_second_fetch_is_a_cache_hit_without_the_server(server, tarball, fetch):
    spec = url_source(server.serve(tarball.name, tarball.read_bytes()), sha(tarball))
    first = fetch(spec)
    server.stop()
    assert fetch(spec) == first


def test_sha_mismatch_is_refused_and_leaves_nothing_under_the_final_key(server, tarball, cache,
                                                                        fetch):
    wrong = "0" * 64
    url = server.serve(tarball.name, tarball.read_bytes())
    with pytest.raises(HarnessError, match=f"mismatch \\(expected {wrong}, got {sha(tarball)}"):
        fetch(url_source(url, wrong))
    assert not (cache / "downloads" / wrong).exists() and not (cache / "sources" / wrong).exists()
    assert under_final_keys(cache) == []


def test_truncated_download_is_refused(server, tarball, cache, fetch):
    url = server.serve(tarball.name, tarball.read_bytes(), declared=tarball.stat().st_size + 1000)
    with pytest.raises(HarnessError, match="truncated after"):
        fetch(url_source(url, sha(tarball)))
    assert under_final_keys(cache) == []


def test_http_404_is_refused(server, cache, fetch):
    with pytest.raises(HarnessError, match="missing.tar.xz: HTTP 404 Not Found"):
        fetch(url_source(server.url("missing.tar.xz"), "0" * 64))
    assert under_final_keys(cache) == []


def test_connection_refused_is_one_clear_line(fetch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(HarnessError) as e:
        fetch(url_source(f"http://127.0.0.1:{port}/x.tar.xz", "0" * 64))
    assert e.value.message.endswith("x.tar.xz: Connection refused") and "\n" not in e.value.message


# --- falling through ----------------------------------------------------------------------------


def test_falls_through_to_the_next_source_and_says_why(server, tarball, progress, fetch):
    missing = url_source(server.url("missing.tar.xz"), sha(tarball))
    tree = fetch(missing, path_source(tarball))
    assert tree.provider == "path" and tree.version == "5.10.99"
    assert "source 1/2 (url): " in progress.stream.getvalue()
    assert "HTTP 404 Not Found, trying next" in progress.stream.getvalue()


def test_all_sources_failing_lists_every_reason(tmp_path, fetch):
    with pytest.raises(HarnessError) as e:
        fetch(path_source(tmp_path / "a.tar"), path_source(tmp_path / "b"))
    assert e.value.stage == "source"
    assert "1/2 (path): " in e.value.message and "a.tar: no such file" in e.value.message
    assert "2/2 (path): " in e.value.message and "b: no such file" in e.value.message


def test_tree_of_another_series_is_rejected(tmp_path, fetch):
    makefile = MAKEFILE.replace(b"VERSION = 5\nPATCHLEVEL = 10", b"VERSION = 6\nPATCHLEVEL = 1")
    other = make_tarball(tmp_path / "linux-6.1.99.tar.xz", kernel_members(makefile=makefile))
    with pytest.raises(HarnessError, match="is Linux 6.1.99, expected 5.10.x"):
        fetch(path_source(other))


# --- extraction ---------------------------------------------------------------------------------


def test_existing_extraction_is_reused_not_redone(tarball, fetch):
    first = fetch(path_source(tarball))
    (first.path / "stamp").write_text("still here")
    assert fetch(path_source(tarball)).path == first.path
    assert (first.path / "stamp").read_text() == "still here"


def test_concurrent_fetches_share_one_extraction(tarball, cache):
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(fetch_source(
        kernel(path_source(tarball)), cache, Progress(stream=io.StringIO(), live=False))))
        for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and results[0] == results[1]
    left = sorted(p.name for p in (cache / "sources").iterdir())
    assert left == [sha(tarball), f"{sha(tarball)}.lock"]  # no second, abandoned extraction


def test_version_includes_extraversion(tmp_path):
    (tmp_path / "Makefile").write_bytes(MAKEFILE.replace(b"EXTRAVERSION =", b"EXTRAVERSION = -rc3"))
    assert read_version(tmp_path) == "5.10.99-rc3"


def test_a_file_that_is_not_a_tarball_is_refused_cleanly(tmp_path, cache, fetch):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar archive\n" * 100)
    with pytest.raises(HarnessError, match="junk.tar: not a readable tar archive"):
        fetch(path_source(junk))
    assert under_final_keys(cache) == []


def test_a_truncated_tarball_is_refused_cleanly(tmp_path, tarball, cache, fetch):
    cut = tmp_path / "cut.tar.xz"
    cut.write_bytes(tarball.read_bytes()[: tarball.stat().st_size // 2])
    with pytest.raises(HarnessError, match="cut.tar.xz: "):
        fetch(path_source(cut))
    assert under_final_keys(cache) == []


HOSTILE = {
    "dotdot": [member(f"{TOP}/../evil", b"x")],
    "absolute": [member("/tmp/kharness-evil", b"x")],
    "symlink-absolute": [member(f"{TOP}/passwd", type=tarfile.SYMTYPE, linkname="/etc/passwd")],
    "symlink-dotdot": [member(f"{TOP}/up", type=tarfile.SYMTYPE, linkname="../../x")],
    "hardlink-outside": [member(f"{TOP}/hl", type=tarfile.LNKTYPE, linkname="../x")],
    "hardlink-absolute": [member(f"{TOP}/hl", type=tarfile.LNKTYPE, linkname="/etc/passwd")],
    "device": [member(f"{TOP}/mem", type=tarfile.CHRTYPE, devmajor=1, devminor=1)],
    "fifo": [member(f"{TOP}/pipe", type=tarfile.FIFOTYPE)],
    # Each link alone stays inside; y resolves through d/z (defined later) to the tree's parent.
    "symlink-chain": [member(f"{TOP}/y", type=tarfile.SYMTYPE, linkname="d/z/../.."),
                      member(f"{TOP}/d", type=tarfile.DIRTYPE),
                      member(f"{TOP}/d/z", type=tarfile.SYMTYPE, linkname="..")],
    "write-through-symlink": [member(f"{TOP}/here", type=tarfile.SYMTYPE, linkname="mm"),
                              member(f"{TOP}/here/x.c", b"x")],
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_member_is_refused_and_leaves_nothing_under_the_final_key(case, tmp_path, cache,
                                                                          fetch):
    bad = make_tarball(tmp_path / "bad.tar.xz", kernel_members() + HOSTILE[case])
    with pytest.raises(HarnessError, match="bad.tar.xz: refusing member") as e:
        fetch(path_source(bad))
    assert repr(HOSTILE[case][-1][0].name) in e.value.message or case == "symlink-chain"
    assert under_final_keys(cache) == []
    # TOP/../evil would land beside the tree, in the cache (sources/evil), not in tmp_path itself
    assert list(tmp_path.rglob("evil")) == [] and not Path("/tmp/kharness-evil").exists()


# --- path and git -------------------------------------------------------------------------------


def test_path_directory_is_used_in_place(tmp_path, cache, fetch):
    (tmp_path / TOP).mkdir()
    (tmp_path / TOP / "Makefile").write_bytes(MAKEFILE)
    tree = fetch(path_source(tmp_path / TOP))
    assert (tree.path, tree.origin) == (tmp_path / TOP, str(tmp_path / TOP))
    assert tree.version == "5.10.99"
    assert not (cache / "sources").exists()


def test_path_directory_digest_follows_its_files(tmp_path, fetch):
    (tmp_path / TOP).mkdir()
    (tmp_path / TOP / "Makefile").write_bytes(MAKEFILE)
    before = fetch(path_source(tmp_path / TOP)).sha256
    assert fetch(path_source(tmp_path / TOP)).sha256 == before
    (tmp_path / TOP / "mm.c").write_text("changed")
    assert fetch(path_source(tmp_path / TOP)).sha256 != before


def test_git_checkout_digest_follows_edits_to_an_already_modified_file(tmp_path, fetch):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "Makefile").write_bytes(MAKEFILE)
    git("-C", str(repo), "init", "-q")
    git("-C", str(repo), "add", "Makefile")
    git("-C", str(repo), "commit", "-q", "-m", "base")
    clean = fetch(path_source(repo)).sha256
    (repo / "Makefile").write_bytes(MAKEFILE + b"# one\n")
    once = fetch(path_source(repo)).sha256
    (repo / "Makefile").write_bytes(MAKEFILE + b"# one, then two\n")
    assert len({clean, once, fetch(path_source(repo)).sha256}) == 3


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "linux.git"
    (repo / "mm").mkdir(parents=True)
    (repo / "Makefile").write_bytes(MAKEFILE)
    (repo / "mm/memcontrol.c").write_text("int memcg;\n")
    git("-C", str(repo), "init", "-q")
    git("-C", str(repo), "add", ".")
    git("-C", str(repo), "commit", "-q", "-m", "v5.10.99")
    git("-C", str(repo), "tag", "-a", "-m", "Linux 5.10.99", "v5.10.99")
    (repo / "Makefile").write_bytes(MAKEFILE.replace(b"SUBLEVEL = 99", b"SUBLEVEL = 100"))
    git("-C", str(repo), "commit", "-q", "-a", "-m", "v5.10.100")
    return repo


def test_git_tag_is_fetched_and_archived(repo, cache, fetch):
    commit = git("-C", str(repo), "rev-parse", "v5.10.99^{commit}")
    tree = fetch(git_source(repo, "v5.10.99"))
    assert (tree.version, tree.provider, tree.sha256) == ("5.10.99", "git", commit)
    assert tree.origin == f"{repo}@v5.10.99" and tree.path == cache / "sources" / f"git-{commit}"
    assert (tree.path / "mm/memcontrol.c").read_text() == "int memcg;\n"
    assert not (tree.path / ".git").exists()


def test_git_commit_id_is_fetched(repo, fetch):
    commit = git("-C", str(repo), "rev-parse", "HEAD~1")
    tree = fetch(git_source(repo, commit))
    assert (tree.version, tree.sha256) == ("5.10.99", commit)


def test_git_tree_already_extracted_needs_no_fetch(repo, fetch):
    commit = git("-C", str(repo), "rev-parse", "HEAD")
    spec = git_source(repo, commit)
    first = fetch(spec)
    shutil.rmtree(repo)
    assert fetch(spec) == first


def test_git_tree_fetched_by_tag_is_found_again_offline(repo, fetch, progress):
    first = fetch(git_source(repo, "v5.10.99"))
    shutil.rmtree(repo)  # ls-remote fails now, as it does without network
    assert fetch(git_source(repo, "v5.10.99")) == first
    assert f"using {first.sha256[:12]}, what v5.10.99 named last time" in progress.stream.getvalue()


def test_git_ref_never_fetched_fails_in_one_line_without_the_remote(tmp_path, fetch):
    with pytest.raises(HarnessError, match="no source of linux-test worked: 1/1 \\(git\\): git ls-remote"):
        fetch(git_source(tmp_path / "gone.git", "v5.10.99"))


# --- kernel.org ---------------------------------------------------------------------------------

SIGNED_HEAD = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n"
FAKE_SIGNATURE = "-----BEGIN PGP SIGNATURE-----\n\niHUEARYIAB0WIQQ=\n-----END PGP SIGNATURE-----\n"


def sums(*lines: str) -> str:
    """sha256sums.asc as kernel.org lays it out: other files around ours, clearsigned-looking."""
    return ("".join(f"{line}\n" for line in (f"{'1' * 64}  linux-5.10.98.tar.xz", *lines,
                                              f"{'2' * 64}  patch-5.10.99.xz")))


def kernelorg(server: Server, tarball: Path, sums_text: str, keyring: Path | None = None
              ) -> SourceSpec:
    server.serve(f"pub/linux/kernel/v5.x/{tarball.name}", tarball.read_bytes())
    server.serve("pub/linux/kernel/v5.x/sha256sums.asc", sums_text.encode())
    return SourceSpec(type="kernelorg", version="5.10.99", mirror=server.url("pub/linux/kernel"),
                      keyring=str(keyring) if keyring else None)


def test_kernelorg_takes_the_sha256_from_sha256sums_and_says_it_is_unverified(
        server, tarball, progress, fetch):
    spec = kernelorg(server, tarball, SIGNED_HEAD + sums(f"{sha(tarball)}  {tarball.name}")
                     + FAKE_SIGNATURE)
    tree = fetch(spec)
    assert (tree.provider, tree.sha256, tree.version) == ("kernelorg", sha(tarball), "5.10.99")
    assert tree.origin.startswith(server.url(f"pub/linux/kernel/v5.x/{tarball.name}"))
    assert "signature NOT verified (no keyring configured)" in tree.origin
    assert "signature NOT verified" in progress.stream.getvalue()


def test_kernelorg_second_fetch_is_a_cache_hit_without_the_server(server, tarball, fetch):
    spec = kernelorg(server, tarball, sums(f"{sha(tarball)}  {tarball.name}"))
    first = fetch(spec)
    server.stop()
    assert fetch(spec) == first


def test_kernelorg_tarball_not_matching_sha256sums_is_refused(server, tarball, cache, fetch):
    spec = kernelorg(server, tarball, sums(f"{'3' * 64}  {tarball.name}"))
    with pytest.raises(HarnessError, match=f"sha256 mismatch \\(expected {'3' * 64}, got {sha(tarball)}"):
        fetch(spec)
    assert under_final_keys(cache) == []


def test_kernelorg_release_missing_from_sha256sums_is_named(server, tarball, fetch):
    with pytest.raises(HarnessError, match="sha256sums.asc: no sha256 for linux-5.10.99.tar.xz"):
        fetch(kernelorg(server, tarball, sums()))


@pytest.fixture
def signer(tmp_path: Path):
    """A throwaway key in its own GNUPGHOME: (clearsign function, binary keyring, armored)."""
    if shutil.which("gpg") is None or shutil.which("gpgv") is None:
        pytest.skip("gpg and gpgv are not installed: the signed sha256sums case needs them")
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)

    def gpg(*args: str, data: bytes = b"") -> bytes:
        return subprocess.run(["gpg", "--homedir", str(home), "--batch", "--pinentry-mode",
                               "loopback", "--passphrase", "", *args], input=data, check=True,
                              capture_output=True, timeout=60).stdout

    gpg("--quick-gen-key", "Test Signer <signer@example.org>", "ed25519", "sign", "never")
    (tmp_path / "keyring.gpg").write_bytes(gpg("--export"))
    (tmp_path / "keyring.asc").write_bytes(gpg("--export", "--armor"))
    yield (lambda text: gpg("--clearsign", data=text.encode()).decode()), \
        tmp_path / "keyring.gpg", tmp_path / "keyring.asc"
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], timeout=30,
                   capture_output=True)


@pytest.mark.parametrize("armored", [False, True], ids=["binary-keyring", "armored-keyring"])
def test_kernelorg_signature_is_verified_with_the_keyring(server, tarball, signer, armored,
                                                          progress, fetch):
    clearsign, binary, asc = signer
    keyring = asc if armored else binary
    tree = fetch(kernelorg(server, tarball, clearsign(sums(f"{sha(tarball)}  {tarball.name}")),
                           keyring))
    assert tree.sha256 == sha(tarball)
    assert f"signature verified with {keyring}" in tree.origin
    assert "NOT verified" not in progress.stream.getvalue()


def test_kernelorg_tampered_sha256sums_is_refused(server, tarball, signer, cache, fetch):
    clearsign, keyring, _ = signer
    signed = clearsign(sums(f"{'3' * 64}  {tarball.name}")).replace("3" * 64, sha(tarball))
    with pytest.raises(HarnessError, match="signature not verified with .*keyring.gpg: .*BAD signature"):
        fetch(kernelorg(server, tarball, signed, keyring))
    assert under_final_keys(cache) == []


def test_kernelorg_lines_outside_the_signed_text_do_not_count(server, tarball, signer, fetch):
    clearsign, keyring, _ = signer
    forged = clearsign(sums()) + f"{sha(tarball)}  {tarball.name}\n"
    with pytest.raises(HarnessError, match="no sha256 for linux-5.10.99.tar.xz"):
        fetch(kernelorg(server, tarball, forged, keyring))


@pytest.mark.parametrize("fields, problem", [
    ({"version": "5.12-rc1"}, "version: expected a kernel.org release such as 5.10.262"),
    ({}, "version: missing \\(required for a kernelorg source\\)"),
    ({"version": "5.10.99", "keyring": "/nonexistent/keyring.gpg"}, "keyring: no such file"),
])
def test_kernelorg_config_is_validated(fields, problem):
    with pytest.raises(ConfigError, match=problem):
        from_dict(KernelConfig, {"name": "k", "version": "5.10",
                                 "sources": [{"type": "kernelorg", **fields}]}, Path("k.yaml"))


# --- debian -------------------------------------------------------------------------------------

BULLSEYE = ["5.10.13-1", "5.10.262-1", "6.1.176-1", "5.10.251-5", "5.10.28-1"]


def test_debian_picks_the_highest_matching_5_10_never_6_1():
    assert pick_debian_version(BULLSEYE, "5.10.*") == "5.10.262-1"


def test_debian_picks_an_exact_upstream_version_and_its_highest_revision():
    assert pick_debian_version([*BULLSEYE, "5.10.28-2", "5.10.28-1~bpo1"], "5.10.28") == "5.10.28-2"


def test_debian_without_a_match_picks_nothing():
    assert pick_debian_version(BULLSEYE, "4.19.*") is None


@pytest.mark.parametrize("a, b", [
    ("5.10.28-1", "5.10.262-1"), ("5.10.262-1~deb10u1", "5.10.262-1"), ("6.1~rc7-1", "6.1-1"),
    ("5.10.262-1", "1:4.19-1"), ("5.10.262-1", "5.10.262-1+b1"), ("1.0a", "1.0b"), ("1.0", "1.0.0"),
])
def test_debian_version_order_agrees_with_dpkg(a, b):
    assert compare_debian_versions(a, b) == -1 and compare_debian_versions(b, a) == 1
    if shutil.which("dpkg"):
        subprocess.run(["dpkg", "--compare-versions", a, "lt", b], check=True, timeout=10)


def test_the_linux_5_10_config_asks_debian_for_5_10():
    config = load_kernel("linux-5.10")
    assert config.version == "5.10"
    assert [(s.type, s.suite, s.version) for s in config.sources if s.type == "debian"] == [
        ("debian", "bullseye", "5.10.*")]


class ListsMoreThanServed:
    """A stand-in for the private apt (the real one is exercised by real runs): its index lists
    7.2.7-7.2.13, its pool serves only 7.2.8, as sid did on 2026-12-01."""

    listed = ["7.2.7-1", "7.2.8-1", "7.2.9-1", "7.2.13-1", "7.1.8-1"]
    tried: list[str] = []

    def __init__(self, cache: Path, suite: str, sources: bool = False):
        self.root = cache / "apt" / suite

    def update(self) -> None:
        pass

    def source_versions(self, package: str) -> list[str]:
        return self.listed

    def download_source(self, package: str, version: str, dest: Path) -> None:
        self.tried.append(version)
        if version != "7.2.8-1":
            raise HarnessError("apt", f"apt-get source failed: E: Failed to fetch "
                                      f"http://mirror.example/{package}_{version}.dsc  404  Not Found")
        makefile = b"VERSION = 7\nPATCHLEVEL = 2\nSUBLEVEL = 8\nEXTRAVERSION =\n"
        make_tarball(dest / "linux_7.2.8.orig.tar.xz",
                     [member("linux-7.2.8/", type=tarfile.DIRTYPE),
                      member("linux-7.2.8/Makefile", makefile)])


def test_debian_goes_down_the_listed_versions_the_pool_no_longer_serves(monkeypatch, cache, progress):
    monkeypatch.setattr("harness.sources.source.PrivateApt", ListsMoreThanServed)
    ListsMoreThanServed.tried = []
    k = KernelConfig(name="linux-7.2", version="7.2", kconfig=(), profiles={},
                     sources=(SourceSpec(type="debian", suite="sid", package="linux", version="7.2.*"),))
    tree = fetch_source(k, cache, progress)
    assert tree.version == "7.2.8"
    assert ListsMoreThanServed.tried == ["7.2.13-1", "7.2.9-1", "7.2.8-1"]   # highest first, 7.1 never
    assert tree.origin == ("debian sid linux 7.2.8-1 (linux_7.2.8.orig.tar.xz); skipped "
                           "7.2.13-1 (its files are not served (404)), 7.2.9-1 (its files are not served (404))")
    assert "lists linux 7.2.13-1 but its files are not served (404)" in progress.stream.getvalue()
    assert not [p for p in (cache / "downloads").iterdir() if p.name.startswith(".debian-")]
    # the next run does not ask the pool again for what it did not serve (for as long as the lists live)
    ListsMoreThanServed.tried = []
    again = fetch_source(k, cache, progress)
    assert (again.path, ListsMoreThanServed.tried) == (tree.path, [])
    assert "skipped 7.2.13-1 (its files are not served (404) on 20" in again.origin


def test_debian_none_served_is_one_error_naming_each_version(monkeypatch, cache, progress):
    monkeypatch.setattr(ListsMoreThanServed, "listed", ["7.2.13-1", "7.2.9-1"])
    monkeypatch.setattr("harness.sources.source.PrivateApt", ListsMoreThanServed)
    k = KernelConfig(name="linux-7.2", version="7.2", kconfig=(), profiles={},
                     sources=(SourceSpec(type="debian", suite="sid", package="linux", version="7.2.*"),))
    with pytest.raises(HarnessError, match=r"sid lists linux 7.2.13-1, 7.2.9-1 for 7.2.\*; none could "
                                           r"be downloaded: 7.2.13-1 \(its files.*7.2.9-1 \(its"):
        fetch_source(k, cache, progress)


def test_sid_has_no_updates_or_security_suite(tmp_path):
    from harness.sources.debian import Mirrors, PrivateApt
    mirrors = Mirrors("http://m.example/debian", "http://m.example/debian-security", None)
    sid = PrivateApt(tmp_path, "sid", sources=True, mirrors=mirrors).sources_text
    assert "Suites: sid\n" in sid and "-updates" not in sid and "-security" not in sid
    stable = PrivateApt(tmp_path, "bullseye", sources=True, mirrors=mirrors).sources_text
    assert "bullseye-updates" in stable and "bullseye-security" in stable


def test_a_series_base_commit_is_the_base_of_a_git_kernel_and_an_unknown_one_an_error(repo, fetch, progress):
    """A series from mail names its base (base-commit: in the cover letter): a kernel from git
    takes that commit; one its repository lacks is an error naming it; a kernel from release
    tarballs keeps its release and says the commit went unchecked."""
    from dataclasses import replace as with_

    from harness.run.plan import series_base
    from harness.series.patches import Series
    first = git("-C", str(repo), "rev-parse", "HEAD~1")
    k = kernel(git_source(repo, "v5.10.99"))
    series = Series("s", "t", (), "mbox s.mbox v1", base_commit=first)
    based = series_base(k, series, progress)
    assert based.sources[0].ref == first and fetch(*based.sources).sha256 == first
    with pytest.raises(HarnessError, match=f"has no commit {'0' * 40}"):
        fetch(*series_base(k, with_(series, base_commit="0" * 40), progress).sources)
    tarball_kernel = kernel(path_source(repo))
    assert series_base(tarball_kernel, series, progress) == tarball_kernel
    assert f"base-commit {first[:12]} not checked" in progress.stream.getvalue()
