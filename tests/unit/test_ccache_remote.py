"""A compiler cache shared between machines: ccache's remote storage as kbuild passes it, tested
for real on 127.0.0.1 (ccache's http backend against a GET/PUT server started here): one build
fills it, a second one with an empty local cache hits it."""

from __future__ import annotations

import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness.build.kbuild import CCACHE_REMOTE_VAR, ccache_env, without_credentials

pytestmark = pytest.mark.skipif(shutil.which("ccache") is None, reason="needs ccache (make deps)")


class Store(BaseHTTPRequestHandler):
    blobs: dict[str, bytes] = {}

    def do_GET(self):
        data = self.blobs.get(self.path)
        self.send_response(200 if data is not None else 404)
        self.send_header("Content-Length", str(len(data or b"")))
        self.end_headers()
        if data is not None and self.command == "GET":
            self.wfile.write(data)

    do_HEAD = do_GET

    def do_PUT(self):
        self.blobs[self.path] = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def store():
    Store.blobs = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), Store)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/ccache/", Store.blobs
    server.shutdown()


def compile_on(machine, tmp_path, source):
    env = {"PATH": "/usr/bin:/bin", **ccache_env(tmp_path / machine)}
    subprocess.run(["ccache", "gcc", "-O2", "-c", str(source), "-o", str(tmp_path / f"{machine}.o")],
                   env=env, check=True, cwd=tmp_path)
    stats = subprocess.run(["ccache", "--print-stats"], env=env, capture_output=True, text=True, check=True)
    return env, dict(line.split("\t") for line in stats.stdout.splitlines() if "\t" in line)


def test_a_second_machine_with_an_empty_local_cache_hits_the_remote_one(store, tmp_path, monkeypatch):
    url, blobs = store
    monkeypatch.setenv(CCACHE_REMOTE_VAR, url)
    monkeypatch.delenv("CCACHE_DIR", raising=False)
    source = tmp_path / "memcontrol.c"
    source.write_text("int memcg_charge(int n) { return n * 4096; }\n")
    env, first = compile_on("machine1", tmp_path, source)
    assert env["CCACHE_REMOTE_STORAGE"] == url and env["CCACHE_DIR"] == str(tmp_path / "machine1" / "ccache")
    assert int(first["cache_miss"]) == 1 and blobs, "the first build stored nothing remotely"
    _, second = compile_on("machine2", tmp_path, source)   # another machine: nothing local
    assert int(second["remote_storage_hit"]) == 1 and int(second["local_storage_hit"]) == 0
    assert (tmp_path / "machine1.o").read_bytes() == (tmp_path / "machine2.o").read_bytes()


def test_no_remote_unless_asked_and_credentials_stay_out_of_reports(monkeypatch, tmp_path):
    monkeypatch.delenv(CCACHE_REMOTE_VAR, raising=False)
    monkeypatch.delenv("CCACHE_DIR", raising=False)
    assert ccache_env(tmp_path) == {"CCACHE_DIR": str(tmp_path / "ccache")}
    assert without_credentials("redis://user:secret@cache.example:6379") == "redis://cache.example:6379"
    assert without_credentials("http://cache.example/ccache/") == "http://cache.example/ccache/"
