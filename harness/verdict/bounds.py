"""Bounds: whether a value holds an expectation, the expectation in words, which failed, a
scenario whose bounds cannot tell the bug from its absence, and bounds relative to the base."""

from __future__ import annotations

import math

from harness.config.scenarios import Expectation, ScenarioConfig
from harness.verdict.results import ScenarioResult


def holds(e: Expectation, value: int, iterations: int) -> bool:
    """Whether one kernel's value meets the bound (a bound relative to base holds alone: it is
    judged with the pair, ``relative_failures``)."""
    if e.min_base_fraction is not None:
        return True
    if e.min_fraction is not None:
        return value >= e.min_fraction * iterations
    if e.min is not None:
        return value >= e.min
    assert e.max is not None
    return value <= e.max


def describe(e: Expectation, iterations: int) -> str:
    if e.min_base_fraction is not None:
        return f"{e.metric} >= {e.min_base_fraction:g} x base"
    if e.min_fraction is not None:
        return f"{e.metric} >= {e.min_fraction * iterations:g}"
    if e.min is not None:
        return f"{e.metric} >= {e.min}"
    return f"{e.metric} <= {e.max}"


def describe_all(expectations: tuple[Expectation, ...], iterations: int) -> str:
    return " and ".join(describe(e, iterations) for e in expectations)


def failed_expectations(expectations: tuple[Expectation, ...], values: dict[str, int],
                        iterations: int) -> list[str]:
    """The expectations that do not hold, each in words; empty when all hold."""
    return [describe(e, iterations) + f" (got {values[e.metric]})" for e in expectations
            if not holds(e, values[e.metric], iterations)]


def bounds_problem(scenario: ScenarioConfig) -> str | None:
    """Why the scenario's bounds cannot judge at its iteration count (the one that runs, after
    the command line and the profile's cap), or None.

    A ``min_fraction`` bound of 0 or less holds for a script that did nothing; a value that
    satisfies both ``reproduced`` and ``fixed`` makes a still-broken kernel FIXED (e.g. at most
    5 iterations, ``min_fraction 0.9`` and ``max 5``)."""
    it = scenario.iterations
    for name in ("reproduced", "fixed", "holds"):
        for e in getattr(scenario, name):
            if e.min_fraction is not None and e.min_fraction * it <= 0:
                return (f"{scenario.name}: at {it} iterations the {name} bound {e.metric} >= "
                        f"{e.min_fraction:g} x iterations holds for a script that did nothing")
    if not (scenario.reproduced and scenario.fixed):
        return None
    # each set is a box of integer intervals, one per metric: they overlap unless some metric's
    # intervals have nothing in common
    box: dict[str, tuple[float, float]] = {}
    for e in (*scenario.reproduced, *scenario.fixed):
        lo, hi = box.get(e.metric, (-math.inf, math.inf))
        if e.min_fraction is not None:
            lo = max(lo, math.ceil(e.min_fraction * it - 1e-9))
        elif e.min is not None:
            lo = max(lo, e.min)
        elif e.max is not None:
            hi = min(hi, e.max)
        box[e.metric] = (lo, hi)
    if all(lo <= hi for lo, hi in box.values()):
        both = ", ".join(f"{m} {lo:g}" if lo > -math.inf else f"{m} {hi:g}" for m, (lo, hi) in box.items())
        return (f"{scenario.name}: at {it} iterations one result ({both}) satisfies both "
                f"reproduced ({describe_all(scenario.reproduced, it)}) and fixed "
                f"({describe_all(scenario.fixed, it)}): a still-broken kernel would be FIXED; "
                "use more iterations")
    return None


def relative_failures(base: ScenarioResult, patched: ScenarioResult) -> list[str]:
    """The bounds relative to the base kernel's value (``ScenarioResult.relative``: metric ->
    fraction) that patched does not meet, in words."""
    return [f"{m} >= {f:g} x base {base.metrics[m]} (got {patched.metrics[m]})"
            for m, f in patched.relative.items() if patched.metrics[m] < f * base.metrics[m]]


