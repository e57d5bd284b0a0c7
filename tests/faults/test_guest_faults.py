"""Rows on a booted guest: the scenario's script fails or hangs, the connection drops or the guest
stops answering, /proc/cgroups lacks the row, the kernel prints a splat; and the guest's doors:
loopback only, the image's host key only.

Faults are made in the guest itself. The scenario's ``interpreter`` is data, so a test puts a
small script in the guest and names it as the interpreter: the harness runs it exactly as it runs
the seed reproducer (``ITERATIONS=n ... <interpreter> <script> > out 2> err``, as a job of its own).
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import subprocess
import threading
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harness.build.image import build_guest_image, openssh_public_key
from harness.config import load_scenario
from harness.core.cache import cache_root
from harness.core.errors import HarnessError
from harness.core.progress import Progress
from harness.guest import vm as vm_module
from harness.guest.ssh import Guest
from harness.verdict.kinds import ERROR, result_verdict
from harness.verdict.results import KernelId

from .conftest import alive, boot, our_qemus, session_for, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.boot, pytest.mark.usefixtures("build_slot")]

# `shared`: these rows run one after the other on the guest the module booted (its scripts are there)
SEED = replace(load_scenario("dying-memcg"), guest="shared")
# Kill every dropbear but the listener: the connections in progress drop, new ones work.
DROP_SESSIONS = ('listener=$(cat /tmp/dropbear.pid); '
                 'for p in $(pidof dropbear); do [ "$p" = "$listener" ] || kill -9 "$p"; done')


def interpreter(guest: Guest, name: str, body: str) -> str:
    """Put a script in the guest; its path, to be a scenario's interpreter."""
    path = f"/tmp/kharness/{name}"
    guest.check("mkdir -p /tmp/kharness")
    guest.put(f"#!/bin/sh\n{body}\n".encode(), path, mode="0755")
    return path


@pytest.fixture(scope="module")
def shared(build_slot, x86, tmp_path_factory):
    """One base guest for the rows that leave it usable."""
    run_dir = tmp_path_factory.mktemp("shared")
    with session_for(x86, run_dir) as session:
        yield session, boot(session, x86), run_dir / "x86_64-base"
    assert our_qemus() == []


# --- the scenario's script ------------------------------------------------------------------------


def test_script_that_exits_non_zero_is_an_error_with_its_stderr_tail(shared, x86):
    session, booted, out = shared
    fails = interpreter(booted.guest, "fails.sh", 'echo "set up 1 cgroup" >&2\n'
                        "echo \"mkdir: can't create directory 'kmem_test': Too many links\" >&2\n"
                        "exit 3")
    result = session.run_scenario(KernelId(x86.name, "base"), replace(SEED, interpreter=fails))
    assert result_verdict(result) == ERROR and result.held is None and "delta" not in result.metrics
    assert result.error == (f"scenario: dying-memcg.sh exited 3: mkdir: can't create directory "
                            f"'kmem_test': Too many links (see {out / 'dying-memcg.err'})")
    assert result.log == str(out / "dying-memcg.err")
    assert (out / "dying-memcg.err").read_text().startswith("set up 1 cgroup\n")


def test_script_that_times_out_is_an_error_with_its_stderr_tail_and_is_stopped(shared, x86):
    session, booted, out = shared
    hangs = interpreter(booted.guest, "hangs.sh", 'echo "iteration 1 of 500" >&2\nsleep 3600')
    result = session.run_scenario(KernelId(x86.name, "base"), replace(SEED, interpreter=hangs, timeout=3))
    assert result_verdict(result) == ERROR
    assert result.error == ("scenario: dying-memcg.sh did not finish within 3 s: iteration 1 of 500 "
                            f"(see {out / 'dying-memcg.err'})")
    assert result.log == str(out / "dying-memcg.err")
    # stopped with what it started (its sleep), so it cannot disturb what runs next on this guest;
    # the guest has no pgrep: ps lists every process
    ps = booted.guest.run("ps -o pid,args")
    assert ps.status == 0 and "PID" in ps.stdout
    assert "hangs.sh" not in ps.stdout and "sleep 3600" not in ps.stdout, ps.stdout


def test_proc_cgroups_without_the_controller_row_is_an_error_never_a_verdict(shared, x86):
    session, booted, out = shared
    result = session.run_scenario(KernelId(x86.name, "base"), replace(SEED, controller="nosuch", iterations=5))
    assert result_verdict(result) == ERROR and "before" not in result.metrics
    assert result.error == "scenario: /proc/cgroups has no nosuch row: is CONFIG_MEMCG set?"
    # the seed scenario still runs on this guest: the error did not come from the guest
    assert session.run_scenario(KernelId(x86.name, "base"), replace(SEED, iterations=50)).held is True


# --- the connection -------------------------------------------------------------------------------


def test_connection_dropped_mid_script_is_an_ssh_error_and_the_guest_stays_usable(shared, x86):
    session, booted, out = shared
    drops = interpreter(booted.guest, "drops.sh", f'echo "dropping the connection" >&2\n'
                        f"{DROP_SESSIONS}\nsleep 30")
    result = session.run_scenario(KernelId(x86.name, "base"), replace(SEED, interpreter=drops))
    assert result_verdict(result) == ERROR
    assert re.fullmatch(r"ssh: connection (dropped|failed) while running `cd /tmp/kharness && "
                        r"ITERATIONS=500 KHARNESS_DIR=/tmp/kharness bash -c .* - /tmp/kharness/drops.sh /tmp/kharness/dying-memcg.sh`.*; dying-memcg.sh "
                        r"stderr so far: dropping the connection \(see .*dying-memcg.err\)",
                        result.error), result.error
    # The next scenario gets a new connection: nothing of it was sent on the dead one.
    assert session.run_scenario(KernelId(x86.name, "base"), replace(SEED, iterations=50)).held is True


def test_read_that_loses_its_connection_is_retried_once_on_a_new_one(x86, tmp_path):
    with session_for(x86, tmp_path) as session:
        booted = boot(session, x86)
        guest = booted.guest
        # The first `cat` of the fifo gets its connection killed under it; the second reads.
        # The first is killed too, and gone, before the writer opens the fifo again: an orphan
        # still holding the read end would take the line meant for the second (2 vCPUs do race).
        guest.check("mkfifo /tmp/kh.fifo && "
                    f"( exec 3> /tmp/kh.fifo; first=$(pidof cat); {DROP_SESSIONS}; "
                    'kill -9 $first; n=0; while [ -d /proc/$first ] && [ $n -lt 100 ]; '
                    "do sleep 0.1; n=$((n + 1)); done; exec 3>&-; "
                    "echo second reader > /tmp/kh.fifo ) > /dev/null 2>&1 < /dev/null &")
        assert guest.read("/tmp/kh.fifo") == "second reader\n"
        # With the listener gone too, the retry fails, and says it was one.
        guest.check(f"( sleep 1; kill -9 $(cat /tmp/dropbear.pid); {DROP_SESSIONS} ) "
                    "> /dev/null 2>&1 < /dev/null &")
        with pytest.raises(HarnessError) as e:
            guest.run("sleep 10")
        assert e.value.stage == "ssh"
        with pytest.raises(HarnessError) as e:
            guest.read("/proc/cgroups")
        assert e.value.stage == "ssh"
        assert e.value.message.startswith("connection to the guest was lost and a new one failed")
        assert e.value.message.endswith("(retried once on a new connection)")
    assert not alive(booted.vm.child.pid)


def test_a_file_put_whose_connection_drops_is_written_again_on_a_new_one(x86, tmp_path):
    # a program staged while the host built the next one lost its connection once (arm64 under
    # TCG, 2026-12-06): writing a whole file is idempotent, so it is sent again
    with session_for(x86, tmp_path) as session:
        guest = boot(session, x86).guest
        guest.check(f"( while ! pidof cat; do sleep 0.02; done; {DROP_SESSIONS}; touch /tmp/kh.dropped ) "
                    "> /dev/null 2>&1 < /dev/null &")
        data = bytes(range(256)) * (32 << 12)   # 32 MiB: still going in when its session is dropped
        guest.put(data, "/tmp/kh.put")
        assert guest.check("ls /tmp/kh.dropped && sha256sum < /tmp/kh.put").split()[1] == hashlib.sha256(data).hexdigest()


def test_guest_that_stops_answering_mid_script_is_an_ssh_error(x86, tmp_path):
    with session_for(x86, tmp_path) as session:
        booted = boot(session, x86)
        # The script tells the console when it runs; QEMU is then frozen (SIGSTOP) under it.
        freeze = interpreter(booted.guest, "freeze.sh",
                             'echo "kharness-fault: freeze me" > /dev/console\nsleep 60')
        pid = booted.vm.child.pid

        def stop_qemu() -> None:
            if wait_until(lambda: booted.vm.console.has("kharness-fault: freeze me"), 30):
                os.kill(pid, signal.SIGSTOP)

        threading.Thread(target=stop_qemu, daemon=True).start()
        result = session.run_scenario(KernelId(x86.name, "base"), replace(SEED, interpreter=freeze, timeout=4))
        assert result_verdict(result) == ERROR
        assert result.error.startswith("ssh: `cd /tmp/kharness && ITERATIONS=500 KHARNESS_DIR=/tmp/kharness "
                                       "bash -c ")
        assert " - /tmp/kharness/freeze.sh /tmp/kharness/dying-memcg.sh`" in result.error
        assert "timed out after 4 s; then the guest did not answer: " in result.error
        assert open(f"/proc/{pid}/stat").read().split(") ")[1][0] == "T"   # it was the freeze
    assert not alive(pid)


# --- the guest's doors ----------------------------------------------------------------------------


def test_client_refuses_a_host_key_other_than_the_images(shared, x86):
    session, booted, out = shared
    image = build_guest_image(x86, cache_root(), Progress(verbosity=0))
    other = openssh_public_key(Ed25519PrivateKey.generate())
    with pytest.raises(HarnessError) as e:
        Guest.connect(booted.vm.port, other, image.client_key)
    assert e.value.stage == "ssh"
    assert e.value.message.startswith("guest presented a host key other than the image's")
    Guest.connect(booted.vm.port, image.host_key, image.client_key).close()  # the pinned one works


def _global_addresses() -> list[str]:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                         capture_output=True, text=True, timeout=10).stdout
    return re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", out)


def test_guest_is_reachable_on_the_loopback_address_only(shared):
    session, booted, out = shared
    argv = open(f"/proc/{booted.vm.child.pid}/cmdline", "rb").read().split(b"\0")
    forwards = [a.decode() for a in argv if b"hostfwd=" in a]
    assert forwards == [f"user,id=n0,hostfwd=tcp:127.0.0.1:{booted.vm.port}-:22"]
    addresses = _global_addresses()
    if not addresses:
        pytest.skip("this machine has no non-loopback IPv4 address to try")
    for address in addresses:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((address, booted.vm.port), timeout=5).close()
    socket.create_connection(("127.0.0.1", booted.vm.port), timeout=5).close()


def test_port_taken_before_qemu_binds_it_is_retried_on_another_port(x86, tmp_path, monkeypatch):
    # The race of two runs starting at once, made certain: the first port the harness picks is
    # already taken when QEMU binds it. (The one monkeypatch of the suite: the pick itself.)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    picks = [taken.getsockname()[1]]
    real_pick = vm_module.free_port
    monkeypatch.setattr(vm_module, "free_port", lambda: picks.pop() if picks else real_pick())
    with taken, session_for(x86, tmp_path) as session:
        booted = boot(session, x86)
        assert booted.vm.port != taken.getsockname()[1]
        assert booted.guest.check("echo up") == "up\n"
        console = booted.vm.console_log.read_text()
    assert console.count("Could not set up host forwarding rule") == 1
    assert not alive(booted.vm.child.pid)
