"""Scenario kinds: what a scenario shows, and so how its results become verdicts.

A kind owns everything that depends on it: which expectation sets a scenario of that kind must
declare, which of them judges each variant, the verdict of one variant and of the A/B pair, the
verdict a row must show for the run to pass, its table cell and its notes. A new kind is one
class here, registered in ``KINDS``; nothing else asks what kind a scenario is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from .config import Expectation, ScenarioConfig
    from .results import ScenarioResult

# Verdicts of one variant on its own, and of the A/B comparison.
REPRODUCED, NOT_REPRODUCED, FIXED, STILL_BROKEN, ERROR = (
    "REPRODUCED", "NOT-REPRODUCED", "FIXED", "STILL-BROKEN", "ERROR")
HOLDS, BROKEN = "HOLDS", "BROKEN"                                     # invariant scenarios
RAN, NO_REGRESSION, REGRESSED = "RAN", "NO-REGRESSION", "REGRESSED"   # selftests

BOTH = "both"   # what ran: "base", "patched" or both


# --- bounds --------------------------------------------------------------------------------------


def holds(e: Expectation, value: int, iterations: int) -> bool:
    if e.min_fraction is not None:
        return value >= e.min_fraction * iterations
    if e.min is not None:
        return value >= e.min
    assert e.max is not None
    return value <= e.max


def describe(e: Expectation, iterations: int) -> str:
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


# --- the kinds -----------------------------------------------------------------------------------


class Kind:
    name: ClassVar[str]
    needs: ClassVar[tuple[str, ...]]          # ScenarioConfig fields that must not be empty
    good: ClassVar[dict[str, str]]            # what ran -> the verdict the row must show
    failures: ClassVar[tuple[str, ...]] = ()  # variant verdicts that are a failed expectation

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
        return HOLDS if base.held and patched.held else BROKEN

    def cell(self, result: ScenarioResult) -> str:
        text = super().cell(result)
        return text + " [" + "; ".join(result.failed) + "]" if result.failed else text


TEST_RANK = {"pass": 2, "skip": 1, "fail": 0}   # a selftest's results, best first


def selftest_regressions(base: ScenarioResult, patched: ScenarioResult) -> list[str]:
    """The tests patched does worse on than base in every run (a test missing on patched
    counts as failed); a flaky test on either side is no regression but a note."""
    return [f"{t}: {r} -> {patched.tests.get(t, 'missing')}" for t, r in sorted(base.tests.items())
            if r != "flaky" and patched.tests.get(t) != "flaky"
            and TEST_RANK[patched.tests.get(t, "fail")] < TEST_RANK[r]]


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


KINDS: dict[str, Kind] = {k.name: k for k in (Fix(), Invariant(), Selftests())}


def kind(name: str) -> Kind:
    return KINDS[name]
