"""The harness's SSH client: paramiko, the guest image's host key pinned, every wait bounded."""

from __future__ import annotations

import base64
import logging
import shlex
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paramiko

from harness.core.errors import CommandTimeout, ConnectionLost, HarnessError, HostKeyMismatch

# paramiko logs a traceback for every "Error reading SSH protocol banner" while the guest boots
# (QEMU's port forward accepts before the guest listens); those retries are expected.
logging.getLogger("paramiko").setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class CommandResult:
    command: str
    status: int
    stdout: str
    stderr: str
    seconds: float


def host_key_from_line(line: str) -> paramiko.PKey:
    kind, b64 = line.split()[:2]
    if kind != "ssh-ed25519":
        raise HarnessError("ssh", f"unsupported host key type {kind}")
    return paramiko.Ed25519Key(data=base64.b64decode(b64))


def _goes_down(transport: paramiko.Transport, within: float = 1.0) -> bool:
    """Whether the connection is gone (paramiko closes its channels just before it says so)."""
    deadline = time.monotonic() + within
    while transport.is_active() and time.monotonic() < deadline:
        time.sleep(0.01)
    return not transport.is_active()


class Guest:
    """A connected guest: ``run`` commands, ``put`` and ``read`` files over exec channels.

    dropbear has no SFTP subsystem, so files travel through ``cat``. A connection that dropped is
    replaced before the next command (none of that command was sent, so that is always safe), and
    ``read`` is retried once on a fresh connection; a command is never sent twice.
    """

    def __init__(self, client: paramiko.SSHClient,
                 dial: Callable[[], paramiko.SSHClient] | None = None):
        self.client = client
        self._dial = dial

    @classmethod
    def connect(cls, port: int, host_key: str, client_key: Path, timeout: float = 5.0,
                host: str = "127.0.0.1") -> "Guest":
        def dial() -> paramiko.SSHClient:
            client = paramiko.SSHClient()
            client.get_host_keys().add(f"[{host}]:{port}", "ssh-ed25519", host_key_from_line(host_key))
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
            try:
                client.connect(host, port=port, username="root",
                               pkey=paramiko.Ed25519Key.from_private_key_file(str(client_key)),
                               look_for_keys=False, allow_agent=False, timeout=timeout,
                               banner_timeout=timeout, auth_timeout=timeout)
            except paramiko.BadHostKeyException as e:
                client.close()
                raise HostKeyMismatch(f"guest presented a host key other than the image's: {e}")
            except BaseException:
                client.close()
                raise
            return client

        return cls(dial(), dial)

    def connected(self) -> bool:
        transport = self.client.get_transport()
        return transport is not None and transport.is_active()

    def _redial(self) -> None:
        self.client.close()
        if self._dial is None:
            raise ConnectionLost("connection to the guest is closed")
        try:
            self.client = self._dial()
        except HarnessError:
            raise
        except Exception as e:  # paramiko's and the socket's own errors
            raise ConnectionLost(f"connection to the guest was lost and a new one failed: "
                                 f"{e or type(e).__name__}")

    def run(self, command: str, timeout: float = 60.0, stdin: bytes | None = None,
            watch: Callable[[], None] | None = None) -> CommandResult:
        """Run ``command`` in the guest; a timeout or a dropped connection is a HarnessError.
        ``watch`` is called every half second while it runs: what it raises (the kernel's
        splat on the console) ends the wait at once, the command's channel closed."""
        start = time.monotonic()
        watched = start
        if not self.connected():
            self._redial()
        transport = self.client.get_transport()
        assert transport is not None
        try:
            chan = transport.open_session(timeout=timeout)
            # The whole deadline for the input: sendall blocks while the guest's window is full,
            # and a slow guest (KASAN under TCG) takes seconds to drain a helper binary. Output
            # is read only when ready, so no read blocks on this timeout.
            chan.settimeout(timeout)
            chan.exec_command(command)
            if stdin is not None:
                chan.sendall(stdin)
            chan.shutdown_write()
            out, err = bytearray(), bytearray()
            while True:
                if time.monotonic() - start > timeout:
                    chan.close()
                    raise CommandTimeout(f"`{command}` timed out after {timeout:.0f} s")
                got = False
                while chan.recv_ready():
                    out += chan.recv(65536)
                    got = True
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                    got = True
                if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                    if chan.eof_received or chan.closed:
                        break
                if not transport.is_active():
                    raise ConnectionLost(f"connection dropped while running `{command}`")
                if watch is not None and time.monotonic() - watched >= 0.5:
                    watched = time.monotonic()
                    try:
                        watch()
                    except BaseException:
                        chan.close()
                        raise
                if not got:
                    time.sleep(0.01)
            status = chan.recv_exit_status()
            chan.close()
            if status == -1 and _goes_down(transport):  # closed with no exit status: not the command's
                raise ConnectionLost(f"connection dropped while running `{command}`")
        except socket.timeout:   # the input did not go in within the deadline
            raise CommandTimeout(f"`{command}` timed out after {timeout:.0f} s sending its input")
        except (paramiko.SSHException, socket.error, EOFError) as e:
            raise ConnectionLost(f"connection failed while running `{command}`: {e or type(e).__name__}")
        return CommandResult(command, status, out.decode(errors="replace"),
                             err.decode(errors="replace"), time.monotonic() - start)

    def check(self, command: str, timeout: float = 60.0, stdin: bytes | None = None) -> str:
        """Run ``command``; a non-zero exit is a HarnessError quoting its stderr."""
        r = self.run(command, timeout, stdin)
        if r.status != 0:
            tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-10:])
            raise HarnessError("guest", f"`{command}` exited {r.status}: {tail}", excerpt=tail)
        return r.stdout

    def put(self, data: bytes, path: str, mode: str = "0644") -> None:
        """Write a file. Writing it whole is idempotent: a connection that drops is retried once."""
        q = shlex.quote(path)
        self._again(f"cat > {q} && chmod {shlex.quote(mode)} {q}", 60.0, data)

    def read(self, path: str, timeout: float = 60.0) -> str:
        """A file's text. Reading is idempotent: a connection that drops is retried once."""
        return self._again(f"cat {shlex.quote(path)}", timeout)

    def _again(self, command: str, timeout: float, stdin: bytes | None = None) -> str:
        """``check`` of an idempotent command, once more on a new connection if the first dropped."""
        try:
            return self.check(command, timeout, stdin)
        except (ConnectionLost, CommandTimeout):
            if self.connected():
                raise  # a timeout on a live connection: the command's own
        try:
            return self.check(command, timeout, stdin)
        except (ConnectionLost, CommandTimeout) as e:
            raise type(e)(f"{e.message} (retried once on a new connection)")

    def close(self) -> None:
        self._dial = None   # closed for good: no command reconnects
        self.client.close()
