"""Runs of one scenario on one kernel as one result: --repeat's boots (the median of each
number, FLAKY when they disagree), selftests' runs test by test, and a narrowed rerun's added."""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping
from dataclasses import replace

from harness.verdict.results import ScenarioResult

OUTCOME = {"pass": "p", "fail": "f", "skip": "s"}
OUTCOME_NAME = {v: k for k, v in OUTCOME.items()}


REPEAT = re.compile(r"(.+)#\d+")   # a name a run reported again: NAME#2 (guest.runner)


def namesake(test: str) -> str:
    """The name ``test`` repeats (NAME of NAME#2), else ``test``."""
    m = REPEAT.fullmatch(test)
    return m.group(1) if m else test


def repeated(name: str, taken: Mapping[str, str]) -> str:
    """``name``, or when ``taken`` has it (a run reported it again), the first free NAME#2, NAME#3."""
    n, unique = 1, name
    while unique in taken:
        n += 1
        unique = f"{name}#{n}"
    return unique


def missing(test: str, runs: Mapping[str, str], width: int) -> str:
    """``test``'s letters in ``width`` runs that did not report it: failed, unless those runs
    reported the name it repeats (a line printed twice in some runs only): its namesake's."""
    name = namesake(test)
    return runs[name] if name != test and name in runs else "f" * width


def summarize_runs(runs: dict[str, str]) -> dict[str, str]:
    """Each test's outcome over its runs: pass, fail or skip when every run agrees, else flaky."""
    return {t: OUTCOME_NAME[r[0]] if len(set(r)) == 1 else "flaky" for t, r in runs.items()}


def combine(results: list[ScenarioResult]) -> ScenarioResult:
    """N runs of one scenario on one kernel as one result: the median of each number, held only
    when every run held (runs that disagree: FLAKY), an error when any run had one; every run's
    own numbers kept in ``repeats``."""
    repeats = tuple({"held": r.held, "failed": list(r.failed), "metrics": dict(r.metrics),
                     "error": r.error, "script_seconds": r.script_seconds} for r in results)
    first = results[0]
    for i, r in enumerate(results, 1):
        if r.error is not None:
            return replace(r, error=f"run {i} of {len(results)}: {r.error}", repeats=repeats)

    def median(values: list[int | None]) -> int | None:
        known = [v for v in values if v is not None]
        return statistics.median_low(known) if known else None
    # each of the first run's metrics has a value there: never None
    metrics = {m: v for m in first.metrics if (v := median([r.metrics.get(m) for r in results])) is not None}
    return replace(first, metrics=metrics,
                   held=all(r.held for r in results),
                   failed=tuple(dict.fromkeys(f for r in results for f in r.failed)),
                   notes=tuple(dict.fromkeys(n for r in results for n in r.notes)),
                   script_seconds=round(sum(r.script_seconds or 0 for r in results), 2), repeats=repeats)


def combine_selftests(results: list[ScenarioResult]) -> ScenarioResult:
    """N boots' selftest runs on one kernel as one result: each test's runs, boot after boot (a
    test missing from a boot's runs failed there); an error when any boot had one."""
    for i, r in enumerate(results, 1):
        if r.error is not None:
            return replace(r, error=f"boot {i} of {len(results)}: {r.error}")
    runs: dict[str, str] = {}
    for r in results:
        width = len(next(iter(r.test_runs.values()), ""))
        done = len(next(iter(runs.values()), ""))
        for t in dict.fromkeys([*runs, *r.test_runs]):
            runs[t] = runs.get(t, missing(t, runs, done)) + r.test_runs.get(t, missing(t, r.test_runs, width))
    return replace(results[0], test_runs=runs, tests=summarize_runs(runs),
                   iterations=sum(r.iterations for r in results),
                   notes=tuple(dict.fromkeys(n for r in results for n in r.notes)),
                   script_seconds=round(sum(r.script_seconds or 0 for r in results), 2))


def with_runs(old: ScenarioResult, new: ScenarioResult, programs: tuple[str, ...],
               more: int) -> ScenarioResult:
    """``old`` with a narrowed rerun's runs of ``programs`` added (a test missing from the rerun
    failed in it); a rerun's error is the result's."""
    if new.error is not None:
        return replace(old, error=f"confirming {', '.join(programs)}: {new.error}", log=new.log)
    runs = dict(old.test_runs)
    for t in dict.fromkeys([*old.test_runs, *new.test_runs]):
        if t.split(":", 1)[0] in programs:
            prog = t.split(":", 1)[0]
            done = max((len(r) for k, r in old.test_runs.items() if k.split(":", 1)[0] == prog), default=0)
            runs[t] = old.test_runs.get(t, missing(t, old.test_runs, done)) + \
                new.test_runs.get(t, missing(t, new.test_runs, more))
    note = f"{', '.join(programs)} ran {more} more times on a fresh boot to settle a difference with the other kernel"
    return replace(old, test_runs=runs, tests=summarize_runs(runs), notes=(*old.notes, *new.notes, note),
                   script_seconds=round((old.script_seconds or 0) + (new.script_seconds or 0), 2))
