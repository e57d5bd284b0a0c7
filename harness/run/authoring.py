"""Fast verbs for authors of fragments and scenarios: the .config a plan's kernels get, in
seconds, without building them (``kharness kconfig``); a shell in a plan's guest with a
scenario's programs staged (``kharness shell``)."""

from __future__ import annotations

import os
import select
import sys
import termios
import tty
from dataclasses import dataclass
from pathlib import Path

from harness.build.kbuild import fragment_paths, make_config, parse_config
from harness.config import ScenarioConfig
from harness.core.errors import HarnessError
from harness.guest.runner import GUEST_DIR, stage
from harness.guest.ssh import Guest
from harness.run.session import Session
from harness.verdict.results import KernelId


@dataclass(frozen=True)
class Configured:
    arch: str
    config: Path              # the verified .config (in the cache)
    fragments: list[Path]     # merged on tinyconfig in this order


def kconfig(session: Session, variant: str, profile: str) -> list[Configured]:
    """Each arch's .config of the plan's ``variant`` kernel on ``profile``: tinyconfig, the
    fragments merged by the tree's merge_config.sh, olddefconfig, every requested option
    checked (an option the tree drops is an error naming it); cached like a build's."""
    plan, out = session.plan, []
    ws = session.workspace()
    commit = session.commit(variant)
    for arch in plan.arches:
        fragments = fragment_paths(arch, plan.fragments(arch, profile))
        log = session.run_dir / KernelId(arch.name, variant, profile).dir_name / "kconfig.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with ws.checkout(commit) as checkout:
            config = make_config(arch, checkout, fragments, session.cache, plan.kernel.make_flags, log)
        out.append(Configured(arch.name, config, fragments))
    return out


def values(config: Path, symbols: list[str]) -> dict[str, str]:
    """What the .config says of each symbol (CONFIG_ optional): its value, or n when unset."""
    have = parse_config(config.read_text())
    return {s: have.get(s if s.startswith("CONFIG_") else f"CONFIG_{s}", "n") for s in symbols}


def shell(session: Session, kid: KernelId, scenario: ScenarioConfig | None) -> int:
    """A shell in the kernel's guest (booted, or cached and booted), in the scenario's
    directory with its script, kharness-lib.sh and programs staged; on a terminal an
    interactive one, else the commands read from stdin. Its exit status."""
    booted = session.booted(kid, scenario.cmdline if scenario else "")
    guest = booted.guest
    if scenario is not None:
        programs = session.programs(next(a for a in session.plan.arches if a.name == kid.arch),
                                    kid.variant, scenario)
        stage(guest, scenario, programs)
    else:
        guest.check(f"mkdir -p {GUEST_DIR}")
    env = f"cd {GUEST_DIR} && export ITERATIONS={scenario.iterations if scenario else 1} KHARNESS_DIR={GUEST_DIR}"
    if not sys.stdin.isatty():
        result = guest.run(f"{env} && exec bash -s", timeout=3600, stdin=sys.stdin.buffer.read())
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        return result.status
    return _interactive(guest, env)


def _interactive(guest: Guest, env: str) -> int:
    transport = guest.client.get_transport()
    if transport is None:
        raise HarnessError("ssh", "no connection to the guest")
    chan = transport.open_session()
    size = os.get_terminal_size()
    chan.get_pty(os.environ.get("TERM", "vt100"), size.columns, size.lines)
    chan.exec_command(f"{env} && exec bash -i")
    saved = termios.tcgetattr(sys.stdin)
    try:
        tty.setraw(sys.stdin.fileno())
        while not chan.exit_status_ready() or chan.recv_ready():
            ready, _, _ = select.select([chan, sys.stdin], [], [], 0.5)
            if chan in ready:
                data = chan.recv(65536)
                if not data:
                    break
                os.write(sys.stdout.fileno(), data)
            if sys.stdin in ready:
                data = os.read(sys.stdin.fileno(), 1024)
                if not data:
                    break
                chan.sendall(data)
    finally:
        termios.tcsetattr(sys.stdin, termios.TCSADRAIN, saved)
    return chan.recv_exit_status()
