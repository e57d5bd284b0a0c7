"""Scenario kinds: what a scenario shows, and so how its results become verdicts.

A kind owns everything that depends on it: which expectation sets a scenario of that kind must
declare, which of them judges each variant, the verdict of one variant and of the A/B pair, the
verdict a row must show for the run to pass, its table cell and its notes. A new kind is one
class here, registered in ``KINDS``; nothing else asks what kind a scenario is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from harness.config.scenarios import KIND_NEEDS, Expectation, ScenarioConfig
from harness.verdict.results import ScenarioResult

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
        m = result.metrics
        text = ", ".join(f"{m.get('before', '?')} -> {m.get('after', '?')} ({m['delta']:+d})"
                         if k == "delta" and "delta" in m
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

    name = "fix"
    needs = KIND_NEEDS[name]
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

    name = "invariant"
    needs = KIND_NEEDS[name]
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


TEST_RANK = {"p": 2, "s": 1, "f": 0}   # a selftest's outcomes in a run, best first
LEGACY_RUNS = {"pass": "p", "fail": "f", "skip": "s", "flaky": "pf"}   # a report.json without test_runs
# A test that fails more often on patched than on base is a regression when so large a share of
# the failures landing on patched is this unlikely by chance (one-sided Fisher exact test).
ALPHA = 0.05


def worse_by_chance(fp: int, np_: int, fb: int, nb: int) -> float:
    """The one-sided Fisher exact test's p: the chance that, of the fp + fb failures seen in
    np_ + nb runs, patched's np_ runs get fp or more when neither kernel fails more often."""
    k, total = fp + fb, np_ + nb
    return sum(math.comb(np_, x) * math.comb(nb, k - x) for x in range(fp, min(k, np_) + 1)) / math.comb(total, k)


def test_runs(result: ScenarioResult, test: str) -> str | None:
    """A test's outcome in each run of one kernel (``ScenarioResult.test_runs``), None when
    the kernel did not report it."""
    if test in result.test_runs:
        return result.test_runs[test]
    value = result.tests.get(test)
    return LEGACY_RUNS[value] if value is not None else None


def _runs_words(runs: str) -> str:
    if len(set(runs)) == 1:
        return {"p": "pass", "f": "fail", "s": "skip"}[runs[0]] + (f" in all {len(runs)} runs" if len(runs) > 1 else "")
    return f"fail {runs.count('f')} of {len(runs)} runs"


@dataclass(frozen=True)
class TestJudgement:
    """One selftest, base against patched: ``verdict`` same, regressed, flaky (both kernels fail
    it some of the time, patched no more often than chance allows), known (either of those,
    for a test known to flake on this base) or fixed (base fails it some of the time, patched
    never); ``decided`` False when more runs could still show the
    difference to be real or chance (the runs then say REGRESSED or FLAKY: never a pass)."""

    test: str
    verdict: str
    decided: bool
    words: str


def judge_test(test: str, b: str | None, p: str | None, known: bool = False) -> TestJudgement:
    """A test that fails on patched more often than on base is a regression when the difference
    is significant (``ALPHA``); an intermittent failure patched alone shows is a regression until
    runs show otherwise, and one both kernels show is FLAKY. A test ``known`` to flake on this
    base (the kernel config's ``known_flaky``) is then "known": shown, no failure of the row;
    only a significant difference makes it REGRESSED."""
    j = _judge_test(test, b, p)
    if known and j.verdict == "flaky":   # a failure only patched shows stays REGRESSED
        return TestJudgement(test, "known", j.decided, j.words + ", known to flake on this base")
    return j


def _judge_test(test: str, b: str | None, p: str | None) -> TestJudgement:
    if b is None:   # only patched reports it (a test the series adds): it must not fail
        verdict = "regressed" if p and "f" in p else "same"
        return TestJudgement(test, verdict, True, f"{test}: missing on base, {_runs_words(p or '')} on patched")
    if p is None:   # missing on patched: failed, if base ever passed it
        verdict = "regressed" if "p" in b else "same"
        return TestJudgement(test, verdict, True, f"{test}: {_runs_words(b)} on base, missing on patched")
    words = f"{test}: {_runs_words(b)} on base, {_runs_words(p)} on patched"
    if len(set(b)) == 1 and len(set(p)) == 1:   # each kernel always the same: its rank
        verdict = "regressed" if TEST_RANK[p[0]] < TEST_RANK[b[0]] else "same"
        return TestJudgement(test, verdict, True, words)
    fb, fp = b.count("f"), p.count("f")
    if set(b) == {"p"}:   # base always passed: a skip on patched is no pass either
        fp = len(p) - p.count("p")
    if fp * len(b) > fb * len(p):   # patched fails more often
        chance = worse_by_chance(fp, len(p), fb, len(b))
        words += f" (p = {chance:.3f})"
        if chance <= ALPHA:
            return TestJudgement(test, "regressed", True, words + ", intermittent" * (fp < len(p)))
        # not significant yet: patched alone failing it is no pass; both failing it, flaky
        return TestJudgement(test, "regressed" if fb == 0 else "flaky", False, words + ", not significant")
    if fp == 0:
        return TestJudgement(test, "fixed" if fb else "same", True, words)
    return TestJudgement(test, "flaky", True, words)


def judge_tests(base: ScenarioResult, patched: ScenarioResult) -> list[TestJudgement]:
    """Every test either kernel reported, judged (``judge_test``)."""
    known = set(base.known_flaky) | set(patched.known_flaky)
    return [judge_test(t, test_runs(base, t), test_runs(patched, t), t in known)
            for t in sorted(base.tests.keys() | patched.tests.keys())]


def selftest_regressions(base: ScenarioResult, patched: ScenarioResult) -> list[str]:
    return [j.words for j in judge_tests(base, patched) if j.verdict == "regressed"]


def undecided_programs(base: ScenarioResult, patched: ScenarioResult) -> tuple[str, ...]:
    """The selftest programs with a test whose difference more runs could still settle."""
    return tuple(dict.fromkeys(j.test.split(":", 1)[0] for j in judge_tests(base, patched) if not j.decided))


def selftest_flaky(base: ScenarioResult, patched: ScenarioResult | None) -> list[str]:
    """One kernel alone: the tests whose runs disagree."""
    both = [base] + ([patched] if patched else [])
    names = sorted({t for r in both for t, v in r.tests.items() if v == "flaky"})
    return [f"{t}: " + ", ".join(f"{r.variant} {_runs_words(test_runs(r, t) or '')}" for r in both) for t in names]


class Selftests(Kind):
    """Upstream selftests, each test's result compared: patched no worse than base."""

    name = "selftests"
    needs = KIND_NEEDS[name]
    good = {BOTH: NO_REGRESSION, "base": RAN, "patched": RAN}

    def variant_verdict(self, result: ScenarioResult) -> str:
        return RAN

    def pair_verdict(self, base: ScenarioResult, patched: ScenarioResult) -> str:
        """REGRESSED when a test regressed (``judge_test``), FLAKY when one fails on both
        kernels some of the time (never a pass), else NO-REGRESSION."""
        verdicts = {j.verdict for j in judge_tests(base, patched)}
        return REGRESSED if "regressed" in verdicts else FLAKY if "flaky" in verdicts else NO_REGRESSION

    def cell(self, result: ScenarioResult) -> str:
        counts = {k: sum(v == k for v in result.tests.values()) for k in ("pass", "fail", "skip", "flaky")}
        return (f"{counts['pass']} pass, {counts['fail']} fail, {counts['skip']} skip"
                + (f", {counts['flaky']} flaky" if counts["flaky"] else ""))

    def notes(self, where: str, base: ScenarioResult | None, patched: ScenarioResult | None,
              ok: bool) -> list[str]:
        out = []
        if base is not None and patched is not None:
            out += [f"{where}: {j.verdict} {j.words}" for j in judge_tests(base, patched) if j.verdict != "same"]
        elif (alone := base or patched) is not None:
            out += [f"{where}: flaky {x}" for x in selftest_flaky(alone, None)]
        return out + failed_notes(where, base, patched, ok)


KINDS: dict[str, Kind] = {k.name: k for k in (Fix(), FixedUpstream(), Invariant(), Selftests())}


def expectations(scenario: ScenarioConfig, variant: str) -> tuple[Expectation, ...]:
    """The bounds ``variant``'s result is judged by (the scenario's kind says which)."""
    return kind(scenario.kind).expectations(scenario, variant)


def result_verdict(result: ScenarioResult) -> str:
    """The verdict of one variant's result (its kind's, unless it erred, flaked or did not run)."""
    if result.unchanged and result.error is None:
        return NO_CHANGE
    if result.flaky and result.error is None:
        return FLAKY
    if result.error is not None or result.held is None:
        return ERROR
    return kind(result.kind).variant_verdict(result)


def kind(name: str) -> Kind:
    return KINDS[name]
