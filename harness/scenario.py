"""Scenarios: run a guest script between two readings of /proc/cgroups, and judge the delta.

The harness reads /proc/cgroups itself, before and after, with its own parser: the script's own
output is kept as evidence but never trusted for the number. Anything that makes the number
doubtful (no memory controller, a script that failed, text that does not parse) is an error.
"""

from __future__ import annotations

import contextlib
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from . import REPO_ROOT
from .config import Expectation, ScenarioConfig
from .errors import HarnessError
from .progress import Progress
from .ssh import Guest

GUEST_DIR = "/tmp/kharness"


@dataclass(frozen=True)
class CgroupRow:
    subsys: str
    hierarchy: int
    num_cgroups: int
    enabled: bool


@dataclass(frozen=True)
class Measurement:
    before: int
    after: int
    settle_seconds: float     # how long after the script the second reading was taken
    script_seconds: float

    @property
    def delta(self) -> int:
        return self.after - self.before


def parse_proc_cgroups(text: str) -> dict[str, CgroupRow]:
    """Parse /proc/cgroups ("#subsys_name hierarchy num_cgroups enabled" and one row each)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("#subsys_name"):
        raise HarnessError("scenario", f"/proc/cgroups has no header line: {text[:80]!r}")
    rows = {}
    for line in lines[1:]:
        fields = line.split()
        if len(fields) != 4 or not all(f.isdigit() for f in fields[1:]) or fields[3] not in "01":
            raise HarnessError("scenario", f"/proc/cgroups: unparsable row {line!r}")
        rows[fields[0]] = CgroupRow(fields[0], int(fields[1]), int(fields[2]), fields[3] == "1")
    return rows


def controller_count(text: str, controller: str) -> int:
    """num_cgroups of ``controller``, which must exist, be enabled and be mounted (v1)."""
    rows = parse_proc_cgroups(text)
    row = rows.get(controller)
    if row is None:
        raise HarnessError("scenario", f"/proc/cgroups has no {controller} row: is CONFIG_MEMCG set?")
    if not row.enabled:
        raise HarnessError("scenario", f"the {controller} controller is disabled (cgroup_disable=?)")
    if row.hierarchy == 0:
        raise HarnessError("scenario", f"the {controller} controller is not mounted on a v1 hierarchy")
    return row.num_cgroups


def holds(expectation: Expectation, delta: int, iterations: int) -> bool:
    if expectation.min_fraction is not None:
        return delta >= expectation.min_fraction * iterations
    assert expectation.max_delta is not None
    return delta <= expectation.max_delta


def describe(expectation: Expectation, iterations: int) -> str:
    if expectation.min_fraction is not None:
        return f"delta >= {expectation.min_fraction * iterations:g}"
    return f"delta <= {expectation.max_delta}"


def run_scenario(guest: Guest, scenario: ScenarioConfig, run_dir: Path, progress: Progress,
                 label: str = "") -> Measurement:
    """Put the script in the guest, run it with its output kept in files, measure around it."""
    name = label or scenario.name
    script = (REPO_ROOT / "guest-scripts" / scenario.script).read_bytes()
    remote = f"{GUEST_DIR}/{scenario.script}"
    guest.check(f"mkdir -p {GUEST_DIR}")
    guest.put(script, remote, mode="0755")
    before = controller_count(guest.read("/proc/cgroups"), scenario.controller)
    progress.info(f"scenario {name}: {scenario.controller} num_cgroups before = {before}, "
                  f"running {scenario.script} ({scenario.iterations} iterations)")
    out, err = f"{GUEST_DIR}/{scenario.name}.out", f"{GUEST_DIR}/{scenario.name}.err"
    # The script's children (e.g. `sleep 3600 &`) keep their stdout open: with it in a file and
    # stdin from /dev/null, the SSH channel reaches EOF when the script itself exits.
    command = (f"ITERATIONS={scenario.iterations} {shlex.quote(scenario.interpreter)} "
               f"{shlex.quote(remote)} > {out} 2> {err} < /dev/null")
    try:
        result = guest.run(command, timeout=scenario.timeout)
    except HarnessError as e:
        raise _unfinished(guest, scenario, e, remote, out, err, run_dir)
    stdout, stderr = guest.read(out), guest.read(err)
    (run_dir / f"{scenario.name}.out").write_text(stdout)
    (run_dir / f"{scenario.name}.err").write_text(stderr)
    if result.status != 0:
        tail = "\n".join(stderr.strip().splitlines()[-10:])
        raise HarnessError("scenario", f"{scenario.script} exited {result.status}: "
                           f"{tail.splitlines()[-1] if tail else 'no stderr'}",
                           run_dir / f"{scenario.name}.err", tail)
    after, waited = _settled_count(guest, scenario, before)
    m = Measurement(before, after, waited, result.seconds)
    progress.info(f"scenario {name}: after = {after} (settled {waited:.1f} s), delta = {m.delta}, "
                  f"script {result.seconds:.1f} s")
    return m


def _unfinished(guest: Guest, scenario: ScenarioConfig, e: HarnessError, remote: str, out: str,
                err: str, run_dir: Path) -> HarnessError:
    """The error for a script that timed out or lost its connection, with what it wrote so far.

    Briefly: the guest itself may be why the script did not finish.
    """
    timed_out = guest.connected()
    try:
        stderr, stdout = guest.read(err, timeout=5), guest.read(out, timeout=5)
    except HarnessError as again:
        return HarnessError("ssh", f"{e.message}; then the guest did not answer: {again.message}")
    (run_dir / f"{scenario.name}.out").write_text(stdout)
    (run_dir / f"{scenario.name}.err").write_text(stderr)
    tail = "\n".join(stderr.strip().splitlines()[-10:])
    last = tail.splitlines()[-1] if tail else "no stderr"
    if not timed_out:
        return HarnessError(e.stage, f"{e.message}; {scenario.script} stderr so far: {last}",
                            run_dir / f"{scenario.name}.err", tail)
    with contextlib.suppress(HarnessError):  # so that it cannot disturb what runs next here
        guest.run(f"pkill -f {shlex.quote(remote)}", timeout=5)
    return HarnessError("scenario", f"{scenario.script} did not finish within {scenario.timeout:g} s: "
                        f"{last}", run_dir / f"{scenario.name}.err", tail)


def _settled_count(guest: Guest, scenario: ScenarioConfig, before: int,
                   stable: float = 2.0) -> tuple[int, float]:
    """Read the count until it is back to ``before``, has not moved for ``stable`` seconds, or
    ``settle`` seconds have passed.

    A removed cgroup is freed a moment after its last reference goes (RCU, workqueues), so an
    immediate reading can count cgroups that are about to go; a count that stays put is not
    going anywhere (the base kernel's pinned cgroups).
    """
    start = time.monotonic()
    last, since = None, start
    while True:
        count = controller_count(guest.read("/proc/cgroups"), scenario.controller)
        now = time.monotonic()
        if count != last:
            last, since = count, now
        if count <= before or now - since >= stable or now - start >= scenario.settle:
            return count, now - start
        time.sleep(0.25)