"""ssh.Guest against a real dropbear on 127.0.0.1 (the guest's SSH server, run on the host): run,
put, read, timeouts, a dropped connection, host key pinning, without QEMU.

dropbear reads the user's ~/.ssh/authorized_keys and has no option for another file, so it runs
in a mount namespace of its own with a scratch directory bound over root's home: the host's
own ~/.ssh is never read or written. That needs root (CI and `make test` here run as root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harness.build.image import dropbear_private_key, openssh_private_key, openssh_public_key
from harness.core.errors import CommandTimeout, ConnectionLost, HarnessError, HostKeyMismatch
from harness.guest.ssh import Guest
from harness.guest.vm import free_port

DROPBEAR = shutil.which("dropbear") or "/usr/sbin/dropbear"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not Path(DROPBEAR).exists() or not shutil.which("unshare"),
    reason="needs root, dropbear (make deps) and unshare for a dropbear of its own")


class Server:
    def __init__(self, tmp: Path):
        host, client = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
        home = tmp / "home"
        (home / ".ssh").mkdir(parents=True, mode=0o700)
        home.chmod(0o700)
        (home / ".ssh" / "authorized_keys").write_text(openssh_public_key(client) + "\n")
        (home / ".ssh" / "authorized_keys").chmod(0o600)
        (tmp / "host_key").write_bytes(dropbear_private_key(host))
        (tmp / "host_key").chmod(0o600)
        self.client_key = tmp / "client_key"
        self.client_key.write_bytes(openssh_private_key(client))
        self.client_key.chmod(0o600)
        self.host_key = openssh_public_key(host)
        self.port = free_port()
        root_home = pwd.getpwuid(0).pw_dir
        script = (f"mount --bind {home} {root_home} && exec {DROPBEAR} -F -E -s -m "
                  f"-p 127.0.0.1:{self.port} -r {tmp / 'host_key'} -P {tmp / 'dropbear.pid'}")
        self.log = open(tmp / "dropbear.log", "wb")
        self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:   # listening: dropbear writes its pid file once bound
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            assert self.proc.poll() is None, (tmp / "dropbear.log").read_text()
            assert time.monotonic() < deadline, "dropbear did not listen within 20 s"
            time.sleep(0.05)

    def guest(self, host_key: str | None = None) -> Guest:
        return Guest.connect(self.port, host_key or self.host_key, self.client_key)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.log.close()


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path)
    yield s
    s.stop()


def test_run_gives_status_and_both_streams(server):
    g = server.guest()
    r = g.run("echo out; echo err >&2; exit 3")
    assert (r.status, r.stdout, r.stderr) == (3, "out\n", "err\n")
    with pytest.raises(HarnessError, match=r"exited 3: err"):
        g.check("echo err >&2; exit 3")
    g.close()


def test_put_and_read_round_trip_bytes_and_mode(server, tmp_path):
    g = server.guest()
    data = bytes(range(256)) * 4096   # 1 MiB, every byte value: more than one SSH window
    g.put(data, str(tmp_path / "blob"), mode="0750")
    assert (tmp_path / "blob").read_bytes() == data
    assert oct((tmp_path / "blob").stat().st_mode & 0o777) == "0o750"
    (tmp_path / "text").write_text("kharness-metric x 1\n")
    assert g.read(str(tmp_path / "text")) == "kharness-metric x 1\n"
    with pytest.raises(HarnessError, match="No such file"):
        g.read(str(tmp_path / "missing"))
    g.close()


def test_a_command_that_outlives_its_timeout_is_a_timeout_not_a_result(server):
    g = server.guest()
    start = time.monotonic()
    with pytest.raises(CommandTimeout, match=r"`sleep 30` timed out after 1 s"):
        g.run("sleep 30", timeout=1)
    assert time.monotonic() - start < 25       # the 30 s sleep was not waited out
    assert g.run("echo again").stdout == "again\n"   # the connection is still usable
    g.close()


def test_what_the_watch_raises_ends_the_wait_at_once(server):
    """A script's run is watched (the guest's console, for a splat): what the watch raises ends
    it then, not at the scenario's deadline."""
    g = server.guest()
    start = time.monotonic()

    def watch():
        if time.monotonic() - start > 1:
            raise HarnessError("guest", "kernel reported: BUG: KASAN: slab-use-after-free")
    with pytest.raises(HarnessError, match="KASAN"):
        g.run("sleep 30", timeout=600, watch=watch)
    assert time.monotonic() - start < 5
    assert g.run("echo again").stdout == "again\n"
    g.close()


def test_a_dropped_connection_is_an_ssh_error_and_the_next_command_reconnects(server):
    g = server.guest()
    # kill the session's own dropbear process (the listener, its parent, stays)
    with pytest.raises(ConnectionLost):
        g.run("kill -9 $PPID; sleep 5", timeout=20)
    assert g.run("echo back").stdout == "back\n"
    g.close()


def test_a_host_key_other_than_the_pinned_one_is_refused(server):
    other = openssh_public_key(Ed25519PrivateKey.generate())
    with pytest.raises(HostKeyMismatch, match="host key other than the image's"):
        server.guest(host_key=other)
