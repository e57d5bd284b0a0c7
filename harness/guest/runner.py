"""Scenarios: run a guest script between the readings of its measures (measures.py), and
collect its values.

The harness takes its measures itself (the memory controller's cgroups, before and after), with
its own parsers: ``delta`` never comes from the script. Values only the script can see (a
charge in the middle of its run, a count while a file descriptor is open) it reports as ``kharness-metric NAME INT`` lines, each
declared by the scenario and parsed strictly; upstream selftests report TAP. Anything that makes
a value doubtful (no memory controller, a script that failed, a declared metric missing or not
an integer, a selftest program that reported nothing) is an error, never a verdict.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.config import GUEST_SCRIPTS, ScenarioConfig
from harness.core.errors import HarnessError, KernelSplat
from harness.core.progress import Progress
from harness.guest.measures import measures
from harness.guest.ssh import Guest
from harness.verdict.repeat import missing, repeated, summarize_runs

GUEST_DIR = "/tmp/kharness"
LIB = GUEST_SCRIPTS / "kharness-lib.sh"


METRIC_LINE = re.compile(r"kharness-metric (\S+)\s*(.*)")
# a note a kselftest's setup or wrapper printed inside run_kselftest.sh's output has its "# "s
NOTE_LINE = re.compile(r"(?:# )*kharness-note (.+)")
# KTAP as run_kselftest.sh writes it: a result line, its description, an optional directive
KTAP_RESULT = re.compile(r"(not )?ok (\d+)\s*(?:- )?(.*?)\s*(?:#\s*(SKIP|XFAIL|TODO)\b\s*(.*))?")
KSFT_RUN = re.compile(r"kharness-kselftest run (\d+)(?: exit (-?\d+))?")
KSFT_PROGRAM = re.compile(r"selftests: (\S+): (\S+)")
# the runner's result for a program glued to a test's last line that had no newline (7.x's
# runner prints its TIMEOUT result without one first)
GLUED_RESULT = re.compile(r"(?<=\S)((?:not )?ok \d+ selftests: \S+: \S+.*)")


@dataclass(frozen=True)
class Measurement:
    settle_seconds: float     # how long after the script its measures waited to read
    script_seconds: float
    metrics: dict[str, int]   # the measures' (cgroups: before, after, delta) and the script's declared ones
    tests: dict[str, str]     # selftests: "program:test" -> pass, fail, skip or flaky
    notes: tuple[str, ...] = ()   # what the script says of this kernel (``kharness-note TEXT``)
    test_runs: dict[str, str] = field(default_factory=dict)   # "program:test" -> "ppf": each run


def parse_metrics(text: str, declared: tuple[str, ...], script: str) -> dict[str, int]:
    """The script's ``kharness-metric NAME INT`` lines: every declared one, once, an integer."""
    found: dict[str, int] = {}
    for line in text.splitlines():
        m = METRIC_LINE.fullmatch(line.strip())
        if not m:
            continue
        name, value = m.groups()
        if name not in declared:
            raise HarnessError("scenario", f"{script} reported metric {name!r}, not declared by the scenario")
        if name in found:
            raise HarnessError("scenario", f"{script} reported metric {name} twice")
        if not re.fullmatch(r"-?\d+", value.strip()):
            raise HarnessError("scenario", f"{script}: metric {name} is not an integer: {value!r}")
        found[name] = int(value)
    missing = [n for n in declared if n not in found]
    if missing:
        raise HarnessError("scenario", f"{script} did not report metric {', '.join(missing)}")
    return found


def parse_notes(text: str) -> tuple[str, ...]:
    """The script's ``kharness-note TEXT`` lines (e.g. a step this kernel refuses), each once."""
    return tuple(dict.fromkeys(m.group(1).strip() for line in text.splitlines()
                               if (m := NOTE_LINE.fullmatch(line.strip()))))


def _ktap(line: str) -> tuple[str, str] | None:
    """A KTAP result line as (description, outcome letter), None for any other line."""
    m = KTAP_RESULT.fullmatch(line)
    if not m:
        return None
    failed, number, name, directive, reason = m.groups()
    name = name.split(" # ")[0].strip()   # "not ok 3 ksm_tests -U # exit=127": the test, not the comment
    if directive == "SKIP":
        return (name or reason.strip() or f"#{number}"), "s"   # "ok 5 # SKIP what": what was skipped
    return name or f"#{number}", ("f" if failed and directive != "TODO" else "p")


def _nested(line: str) -> tuple[int, tuple[str, str]] | None:
    """A KTAP result line under DEPTH "# " prefixes (the runner prefixes a program's output,
    a program that runs others prefixes theirs again), as (depth, (description, letter))."""
    depth = 0
    while line.startswith("# "):
        line, depth = line[2:], depth + 1
        if (r := _ktap(line)) is not None:
            return depth, r
    return None


def parse_kselftest_runs(text: str, script: str, programs: tuple[str, ...] = ()) -> dict[str, str]:
    """run_kselftest.sh's KTAP, run by run: "PROGRAM" (the runner's own result for it: a
    non-zero exit, a timeout), "PROGRAM:SUBTEST" (its KTAP, one level in), and a nested
    subtest's results under their parent's name: "PROGRAM:PARENT:TEST" (mm's ksft_cow.sh runs
    the cow binary, whose 640 results precede the line that names it, as KTAP nests them) ->
    a letter a run. Results whose parent never reported (a program killed mid-way) are dropped:
    missing from that run, they count as failed there, as does any test missing from a run.

    Errors, never a verdict: a run whose runner printed no plan, or fewer results for programs
    than its plan says (the runner killed: a program that never ran compares nothing); a
    program of ``programs`` (the scenario's own) that did not pass a test in any run. (A
    collection of which no test passed on the base is judged: kinds.Kselftest.)"""
    runs: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    program, plan, reported = "", -1, 0
    pending: dict[int, list[tuple[str, str]]] = {}   # depth -> results awaiting their parent's line

    def record(key: str, letter: str) -> None:
        """A name a run reports again (two subtests of a program with one description) is a
        test of its own, "NAME#2": each compared with its namesake on the other kernel."""
        assert current is not None
        current[repeated(key, current)] = letter

    def ended(number: str, rc: str) -> None:
        if plan < 0:
            raise HarnessError("scenario", f"{script}: run_kselftest.sh printed no KTAP plan in run {number} "
                               f"(exit {rc})")
        if reported < plan:
            raise HarnessError("scenario", f"{script}: run_kselftest.sh reported {reported} of its {plan} "
                               f"programs in run {number} (exit {rc}): the rest never ran")

    for raw in text.splitlines():
        line = raw.rstrip()
        if m := KSFT_RUN.fullmatch(line.strip()):
            if m.group(2) is None:
                current, program, plan, reported = {}, "", -1, 0
                runs.append(current)
            elif current is not None:
                ended(m.group(1), m.group(2))
                current = None
            pending.clear()
            continue
        if current is None:
            continue
        if (n := re.fullmatch(r"1\.\.(\d+)", line)) and plan < 0:
            plan = int(n.group(1))
            continue
        if line.startswith("# ") and (g := GLUED_RESULT.search(line)):
            line = g.group(1)   # a test's unterminated last line, then the runner's result
        if line.startswith("# selftests: ") and (p := KSFT_PROGRAM.fullmatch(line[2:])):
            program = p.group(2)
            pending.clear()
        elif (r := _ktap(line)) is not None:   # the runner's result for a program
            p = KSFT_PROGRAM.fullmatch(r[0].split(" #")[0])
            if p:
                record(p.group(2), r[1])
                reported += 1
            pending.clear()
        elif program and (n2 := _nested(line)) is not None:
            depth, (name, letter) = n2
            results = [(name, letter), *((f"{name}:{child}", c) for child, c in pending.pop(depth + 1, []))]
            for d in [d for d in pending if d > depth]:   # deeper results no parent claimed
                del pending[d]
            if depth == 1:
                for key, value in results:
                    record(f"{program}:{key}", value)
            else:
                pending.setdefault(depth, []).extend(results)
    if not runs:
        raise HarnessError("scenario", f"{script} ran no kselftest")
    if current is not None:
        raise HarnessError("scenario", f"{script}: run {len(runs)} of run_kselftest.sh did not end")
    letters = {k: "".join(run.get(k, missing(k, run, 1)) for run in runs) for k in dict.fromkeys(k for run in runs for k in run)}
    if not letters:
        raise HarnessError("scenario", f"{script}: run_kselftest.sh reported no test")
    for name in programs:
        mine = [v for k, v in letters.items() if k == name or k.startswith(f"{name}:")]
        if not mine:
            raise HarnessError("scenario", f"{script}: run_kselftest.sh did not run {name}")
        if not any("p" in v for v in mine):   # its setup failed (a missing interface): nothing to compare
            results = "".join(mine)
            raise HarnessError("scenario", f"{script}: {name}: no test passed in any run ({results.count('f')} "
                               f"fail, {results.count('s')} skip)")
    return letters


def stage(guest: Guest, scenario: ScenarioConfig, programs: dict[str, bytes]) -> str:
    """The scenario's script, kharness-lib.sh and programs in the guest's GUEST_DIR; the
    script's path there."""
    remote = f"{GUEST_DIR}/{scenario.script}"
    guest.check(f"mkdir -p {shlex.quote(GUEST_DIR)}")
    guest.put(scenario.guest_path(scenario.script).read_bytes(), remote, mode="0755")
    # the functions every script may source (guest-scripts/kharness-lib.sh), next to it
    guest.put(LIB.read_bytes(), f"{GUEST_DIR}/{LIB.name}")
    if scenario.setup:   # a kselftest collection's setup, which its script sources
        guest.put(scenario.guest_path(scenario.setup).read_bytes(), f"{GUEST_DIR}/{scenario.setup}")
    for program, data in programs.items():
        guest.put(data, f"{GUEST_DIR}/{program}", mode="0755")
    return remote


def run_scenario(guest: Guest, scenario: ScenarioConfig, run_dir: Path, progress: Progress,
                 label: str = "", programs: dict[str, bytes] | None = None,
                 watch: Callable[[], None] | None = None,
                 parse: Callable[[str], tuple[dict[str, str], tuple[str, ...]]] | None = None) -> Measurement:
    """Put the script and its programs in the guest, run it with its output kept in files,
    measure around it. ``watch`` (the guest's console) may end the script's run at once: a
    kernel splat, say, that would otherwise be found only at the scenario's deadline. ``parse``
    reads the script's output as tests and notes (a KUnit kernel log, by the tree's own parser)."""
    name = label or scenario.name
    remote = stage(guest, scenario, programs or {})
    taken = {m.name: m.before(guest, scenario) for m in measures(scenario)}
    progress.info(f"scenario {name}: running {scenario.script} ({scenario.iterations} iterations)"
                  + "".join(f"; {k} before: {v}" for k, v in taken.items()))
    out, err = f"{GUEST_DIR}/{scenario.name}.out", f"{GUEST_DIR}/{scenario.name}.err"
    # The script's children (e.g. `sleep 3600 &`) keep their stdout open: with it in a file and
    # stdin from /dev/null, the SSH channel reaches EOF when the script itself exits. Under
    # `set -m` bash starts it as a job, in a process group of its own (its pid, the group's id,
    # in NAME.pid) that its children stay in: a script that does not finish is stopped with all
    # it started (the guest's busybox has no pkill). bash's own job messages go to /dev/null.
    env = {**scenario.env, **({"SELFTESTS": " ".join(scenario.selftests)} if scenario.selftests else {}),
           **({"KSELFTEST": scenario.kselftest} if scenario.kselftest else {}),
           **({"KSELFTEST_SETUP": scenario.setup} if scenario.setup else {})}
    assigns = "".join(f"{k}={shlex.quote(v)} " for k, v in env.items())
    pidfile = f"{GUEST_DIR}/{scenario.name}.pid"
    q = shlex.quote   # names are checked at load (config.NAME); quoted all the same
    job = f'exec > /dev/null 2>&1; set -m; "$@" > {q(out)} 2> {q(err)} < /dev/null & echo $! > {q(pidfile)}; wait $!'
    command = (f"cd {q(GUEST_DIR)} && ITERATIONS={int(scenario.iterations)} KHARNESS_DIR={q(GUEST_DIR)} {assigns}"
               f"bash -c {shlex.quote(job)} - {shlex.quote(scenario.interpreter)} {shlex.quote(remote)}")
    try:
        result = guest.run(command, timeout=scenario.timeout, watch=watch)
    except KernelSplat:
        raise   # the kernel's report is the error; the guest may answer nothing more
    except HarnessError as e:
        raise _unfinished(guest, scenario, e, pidfile, out, err, run_dir)
    stdout, stderr = guest.read(out), guest.read(err)
    (run_dir / f"{scenario.name}.out").write_text(stdout)
    (run_dir / f"{scenario.name}.err").write_text(stderr)
    if result.status != 0:
        tail = "\n".join(stderr.strip().splitlines()[-10:])
        raise HarnessError("scenario", f"{scenario.script} exited {result.status}: "
                           f"{tail.splitlines()[-1] if tail else 'no stderr'}",
                           run_dir / f"{scenario.name}.err", tail)
    try:
        metrics = parse_metrics(stdout, scenario.metrics, scenario.script)
        parsed_notes: tuple[str, ...] = ()
        if parse is not None:
            test_runs, parsed_notes = parse(stdout)
        else:
            test_runs = parse_kselftest_runs(stdout, scenario.script, scenario.selftests) if scenario.kselftest else {}
    except HarnessError as e:
        raise HarnessError(e.stage, e.message, run_dir / f"{scenario.name}.out")
    measured, waited, said = {}, 0.0, []
    for measure in measures(scenario):
        values, seconds = measure.after(guest, scenario, taken[measure.name])
        measured.update(values)
        waited += seconds
        said.append(measure.said(scenario, values) + (f" (settled {seconds:.1f} s)" if seconds else ""))
    m = Measurement(waited, result.seconds, {**measured, **metrics},
                    summarize_runs(test_runs), parse_notes(stdout) + parsed_notes, test_runs)
    said += [f"{k} {m.metrics[k]}" for k in scenario.shown if k not in measured]
    progress.info(f"scenario {name}: {', '.join(said + [f'script {result.seconds:.1f} s'])}")
    return m


def _unfinished(guest: Guest, scenario: ScenarioConfig, e: HarnessError, pidfile: str, out: str,
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
    # stopped, with every process it started, so that it cannot disturb what runs next here
    try:
        stopped = guest.run(f"bash -c {shlex.quote(f'kill -9 -- -$(cat {shlex.quote(pidfile)})')}", timeout=5)
        problem = (stopped.stderr.strip() or f"exit {stopped.status}") if stopped.status else None
    except HarnessError as again:
        problem = again.message
    if problem:
        return HarnessError("scenario", f"{scenario.script} did not finish within {scenario.timeout:g} s "
                            f"and could not be stopped ({problem}): {last}", run_dir / f"{scenario.name}.err", tail)
    return HarnessError("scenario", f"{scenario.script} did not finish within {scenario.timeout:g} s: "
                        f"{last}", run_dir / f"{scenario.name}.err", tail)


def host_load_note(scenario: ScenarioConfig) -> tuple[str, ...]:
    """A quiet_host scenario's note when the host was busy anyway (another kharness, say, whose
    guests the build lock does not keep off): more runnable tasks than cores over the last
    minute, so its timing tests may have measured the host."""
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0]
    if not scenario.quiet_host or load <= cores + 0.5:
        return ()
    return (f"host load average {load:.1f} on {cores} cores at its end: its timing tests may "
            "have measured the host, not the kernel",)
