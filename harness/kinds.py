"""Scenario kinds: what a scenario shows, and so how its results become verdicts.

A kind owns everything that depends on it: which expectation sets a scenario of that kind must
declare, which of them judges each variant, the verdict of one variant and of the A/B pair, the
verdict a row must show for the run to pass, its table cell and its notes. A new kind is one
class here, registered in ``KINDS``; nothing else asks what kind a scenario is.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from .config import Expectation, ScenarioConfig
    from .results import ScenarioResult

# Verdicts of one variant on its own, and of the A/B comparison.
REPRODUCED, NOT_REPRODUCED, FIXED, STILL_BROKEN, ERROR = (
    "REPRODUCED", "NOT-REPRODUCED", "FIXED", "STILL-BROKEN", "ERROR")
HOLDS, BROKEN = "HOLDS", "BROKEN"                                     # invariant scenarios
RAN, NO_REGRESSION, REGRESSED = "RAN", "NO-REGRESSION", "REGRESSED"   # selftests
# the patched kernel's image is byte-identical to the base's: the series changes nothing built
# for that arch and profile, so nothing was booted for it and no row of it can be FIXED
NO_CHANGE = "NO-CHANGE"
# --repeat: the runs of one kernel disagree (some held, some did not): never a pass
FLAKY = "FLAKY"

BOTH = "both"   # what ran: "base", "patched" or both


# --- bounds --------------------------------------------------------------------------------------


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
        else:
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


# --- the kinds -----------------------------------------------------------------------------------


class Kind:
    name: ClassVar[str]
    needs: ClassVar[tuple[str, ...]]          # ScenarioConfig fields that must not be empty
    good: ClassVar[dict[str, str]]            # what ran -> the verdict the row must show
    failures: ClassVar[tuple[str, ...]] = ()  # variant verdicts that are a failed expectation
    declared: ClassVar[bool] = True           # a scenario's YAML may name it (else a kernel's does)

    def expectations(self, scenario: ScenarioConfig, variant: str) -> tuple[Expectation, ...]:
        return ()

    def variant_verdict(self, result: ScenarioResult) -> str:
        """The verdict of one variant that ran without error."""
        raise NotImplementedError

    def pair_verdict(self, base: ScenarioResult, patched: ScenarioResult) -> str:
        """The verdict of base and patched, both without error."""
        raise NotImplementedError

    def cell(self, result: ScenarioResult) -> str:
        """What the table shows of one variant that ran without error."""
        text = ", ".join(f"{result.before} -> {result.after} ({result.delta:+d})" if k == "delta"
                         else f"{k} {result.metrics.get(k, '?')}" for k in result.show)
        return text

    def notes(self, where: str, base: ScenarioResult | None, patched: ScenarioResult | None,
              ok: bool) -> list[str]:
        """What a verdict other than the good one rests on."""
        return failed_notes(where, base, patched, ok)


def failed_notes(where: str, base: ScenarioResult | None, patched: ScenarioResult | None,
                 ok: bool) -> list[str]:
    """The bounds that did not hold, when the row is not what it must be."""
    if ok:
        return []
    return [f"{where} {s.variant}: not held: {'; '.join(s.failed)}"
            for s in (base, patched) if s is not None and s.failed]


class Fix(Kind):
    """The bug is present on base (``reproduced``) and absent on patched (``fixed``)."""

    name, needs = "fix", ("reproduced", "fixed")
    good = {BOTH: FIXED, "base": REPRODUCED, "patched": FIXED}
    failures = (NOT_REPRODUCED, STILL_BROKEN)

    def expectations(self, scenario: ScenarioConfig, variant: str) -> tuple[Expectation, ...]:
        return scenario.reproduced if variant == "base" else scenario.fixed

    def variant_verdict(self, result: ScenarioResult) -> str:
        if result.variant == "base":
            return REPRODUCED if result.held else NOT_REPRODUCED
        return FIXED if result.held else STILL_BROKEN

    def pair_verdict(self, base: ScenarioResult, patched: ScenarioResult) -> str:
        """FIXED only when the base kernel reproduces the bug and the patched one does not."""
        if not base.held:
            return NOT_REPRODUCED
        return FIXED if patched.held else STILL_BROKEN


class FixedUpstream(Kind):
    """A fix scenario on a base that already has the fix (the kernel config's ``fixed_upstream``):
    every kernel is judged by the ``fixed`` bounds, and the bug showing anywhere is the finding.

    Only a bound of the bug's signature (``ScenarioResult.signature``: a ``fixed`` bound the
    ``reproduced`` set does not share, e.g. ``pinned <= 0``) failing is REPRODUCED; a bound both
    sets share failing (the pages were not all charged) says the scenario's premise broke, on a
    kernel that may well have the fix: BROKEN, never a bug claimed on a fixed kernel."""

    name, needs = "fixed-upstream", ("fixed",)
    good = {BOTH: NOT_REPRODUCED, "base": NOT_REPRODUCED, "patched": NOT_REPRODUCED}
    failures = (REPRODUCED, REGRESSED, BROKEN)
    declared = False

    def expectations(self, scenario: ScenarioConfig, variant: str) -> tuple[Expectation, ...]:
        return scenario.fixed

    def variant_verdict(self, result: ScenarioResult) -> str:
        if result.held:
            return NOT_REPRODUCED
        failed = {f.split(" ", 1)[0] for f in result.failed}
        return REPRODUCED if not result.signature or failed & set(result.signature) else BROKEN

    def pair_verdict(self, base: ScenarioResult, patched: ScenarioResult) -> str:
        """REPRODUCED when the base shows the bug after all (BROKEN when a side bound failed
        there), REGRESSED when only patched fails."""
        if not base.held:
            return self.variant_verdict(base)
        return NOT_REPRODUCED if patched.held else REGRESSED


class Invariant(Kind):
    """What must hold on every kernel (``holds``), e.g. memory is still charged."""

    name, needs = "invariant", ("holds",)
    good = {BOTH: HOLDS, "base": HOLDS, "patched": HOLDS}
    failures = (BROKEN,)

    def expectations(self, scenario: ScenarioConfig, variant: str) -> tuple[Expectation, ...]:
        return scenario.holds

    def variant_verdict(self, result: ScenarioResult) -> str:
        return HOLDS if result.held else BROKEN

    def pair_verdict(self, base: ScenarioResult, patched: ScenarioResult) -> str:
        relative = relative_failures(base, patched)
        return HOLDS if base.held and patched.held and not relative else BROKEN

    def notes(self, where: str, base: ScenarioResult | None, patched: ScenarioResult | None,
              ok: bool) -> list[str]:
        out = failed_notes(where, base, patched, ok)
        if base is not None and patched is not None:
            out += [f"{where} patched: not held: {x}"
                    for x in relative_failures(base, patched)]
        return out

    def cell(self, result: ScenarioResult) -> str:
        text = super().cell(result)
        return text + " [" + "; ".join(result.failed) + "]" if result.failed else text


TEST_RANK = {"pass": 2, "skip": 1, "fail": 0}   # a selftest's results, best first


def selftest_regressions(base: ScenarioResult, patched: ScenarioResult) -> list[str]:
    """The tests, of either kernel, patched does worse on than base in every run: a test
    missing on patched counts as failed, one only patched reports regresses when it fails
    there; a flaky test on either side is no regression but a note."""
    out = []
    for t in sorted(base.tests.keys() | patched.tests.keys()):
        b, p = base.tests.get(t), patched.tests.get(t)
        if "flaky" in (b, p):
            continue
        if (b is None and p == "fail") or (b is not None and TEST_RANK[p or "fail"] < TEST_RANK[b]):
            out.append(f"{t}: {b or 'missing'} -> {p or 'missing'}")
    return out


def selftest_flaky(base: ScenarioResult, patched: ScenarioResult | None) -> list[str]:
    both = [base] + ([patched] if patched else [])
    names = sorted({t for r in both for t, v in r.tests.items() if v == "flaky"})
    return [f"{t}: " + ", ".join(f"{r.variant} {r.tests.get(t, 'missing')}" for r in both) for t in names]


class Selftests(Kind):
    """Upstream selftests, each test's result compared: patched no worse than base."""

    name, needs = "selftests", ("selftests",)
    good = {BOTH: NO_REGRESSION, "base": RAN, "patched": RAN}

    def variant_verdict(self, result: ScenarioResult) -> str:
        return RAN

    def pair_verdict(self, base: ScenarioResult, patched: ScenarioResult) -> str:
        return REGRESSED if selftest_regressions(base, patched) else NO_REGRESSION

    def cell(self, result: ScenarioResult) -> str:
        counts = {k: sum(v == k for v in result.tests.values()) for k in ("pass", "fail", "skip", "flaky")}
        return (f"{counts['pass']} pass, {counts['fail']} fail, {counts['skip']} skip"
                + (f", {counts['flaky']} flaky" if counts["flaky"] else ""))

    def notes(self, where: str, base: ScenarioResult | None, patched: ScenarioResult | None,
              ok: bool) -> list[str]:
        out = []
        if base is not None and patched is not None:
            out += [f"{where}: regressed {x}" for x in selftest_regressions(base, patched)]
        first = base or patched
        if first is not None:
            out += [f"{where}: flaky {x}" for x in selftest_flaky(first, patched if base else None)]
        return out + failed_notes(where, base, patched, ok)


KINDS: dict[str, Kind] = {k.name: k for k in (Fix(), FixedUpstream(), Invariant(), Selftests())}


def kind(name: str) -> Kind:
    return KINDS[name]
