"""Scenario kinds: what a scenario shows, and so how its results become verdicts.

A kind owns everything that depends on it: which expectation sets a scenario of that kind must
declare, which of them judges each variant, the verdict of one variant and of the A/B pair, the
verdict a row must show for the run to pass, its table cell and its notes. A new kind is one
class here, registered in ``KINDS``; nothing else asks what kind a scenario is.
"""

from __future__ import annotations

from typing import ClassVar

from harness.config.scenarios import KIND_NEEDS, Expectation, ScenarioConfig
from harness.verdict.bounds import relative_failures
from harness.verdict.repeat import combine, combine_selftests, namesake
from harness.verdict.results import ScenarioResult
from harness.verdict.testruns import judge_tests, selftest_flaky, stale_known

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


# --- the kinds -----------------------------------------------------------------------------------


class Kind:
    name: ClassVar[str]
    needs: ClassVar[tuple[str, ...]]          # ScenarioConfig fields that must not be empty
    good: ClassVar[dict[str, str]]            # what ran -> the verdict the row must show
    failures: ClassVar[tuple[str, ...]] = ()  # variant verdicts that are a failed expectation
    declared: ClassVar[bool] = True           # a scenario's YAML may name it (else a kernel's does)
    # its results are tests, each judged base against patched (a profile may run none of them,
    # reruns may settle a difference, junit shows each as a testcase)
    has_tests: ClassVar[bool] = False

    def expectations(self, scenario: ScenarioConfig, variant: str) -> tuple[Expectation, ...]:
        return ()

    def combine(self, results: list[ScenarioResult]) -> ScenarioResult:
        """--repeat's runs of one kernel, each on a fresh boot, as one result."""
        return combine(results)

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


class Selftests(Kind):
    """Upstream selftests, each test's result compared: patched no worse than base. No YAML
    names it now (the kselftest kind took its rows); it judges the reports written before."""

    name = "selftests"
    needs: ClassVar[tuple[str, ...]] = ("selftests",)
    declared = False
    good = {BOTH: NO_REGRESSION, "base": RAN, "patched": RAN}
    has_tests = True

    def variant_verdict(self, result: ScenarioResult) -> str:
        return RAN

    def combine(self, results: list[ScenarioResult]) -> ScenarioResult:
        """Every run of every boot, test by test."""
        return combine_selftests(results)

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
        if (first := base or patched) is not None:
            out += [f"{where}: {x}" for x in stale_known(first, patched if base is not None else None)]
        return out + failed_notes(where, base, patched, ok)


class Kselftest(Selftests):
    """A kselftest collection of the tree under test, run by its own run_kselftest.sh: each
    program's result and each of its subtests judged as selftests are."""

    name = "kselftest"
    needs = KIND_NEEDS[name]
    declared = True

    def pair_verdict(self, base: ScenarioResult, patched: ScenarioResult) -> str:
        """As selftests; a collection of which no test passed on the base compares nothing
        (the kernels cannot run it): ERROR, never NO-REGRESSION."""
        if "pass" not in base.tests.values():
            return ERROR
        return super().pair_verdict(base, patched)

    def notes(self, where: str, base: ScenarioResult | None, patched: ScenarioResult | None,
              ok: bool) -> list[str]:
        """Its own notes, and the tests that fail on both kernels: the base's failures, shown
        (a test the kernels cannot run, a known failure), never hidden behind NO-REGRESSION."""
        out = super().notes(where, base, patched, ok)
        if base is not None and patched is not None:
            both = [t for t, v in base.tests.items() if v == "fail" and patched.tests.get(t) == "fail"]
            known = [t for t in both if any(namesake(t) == k or t.startswith((f"{k}:", f"{k}."))
                                            for k in base.known_failures)]
            for words, tests in (("known to fail on this base (its kernel config's known_failures)", known),
                                 ("not listed as known", [t for t in both if t not in known])):
                if tests:
                    out.append(f"{where}: {len(tests)} fail on both kernels, {words}: {', '.join(tests[:12])}"
                               + (f" and {len(tests) - 12} more" if len(tests) > 12 else ""))
        if base is not None:
            stale = [t for t in base.known_failures if base.tests.get(t) == "pass"]
            out += [f"{where}: {t} passed on the base: its known_failures entry may be stale" for t in stale]
        return out


class Kunit(Kselftest):
    """KUnit suites of the tree, built into the kernel and run at its boot: each test judged
    as a kselftest's (a crash mid-suite is the row's ERROR, naming the test)."""

    name = "kunit"
    needs = KIND_NEEDS[name]


class Unclaimed(Kind):
    """A fix scenario the series does not claim to fix: it must not regress. Both kernels are
    judged by the ``reproduced`` bounds (the bug shows); NO-REGRESSION unless the patched kernel
    shows a bug the base does not (REGRESSED). A base bug that patched no longer shows is no
    failure of a series that never claimed it (a note says so)."""

    name, needs = "unclaimed", ("reproduced",)
    good = {BOTH: NO_REGRESSION, "base": REPRODUCED, "patched": REPRODUCED}
    failures = (REGRESSED,)
    declared = False

    def expectations(self, scenario: ScenarioConfig, variant: str) -> tuple[Expectation, ...]:
        return scenario.reproduced

    def variant_verdict(self, result: ScenarioResult) -> str:
        return REPRODUCED if result.held else NOT_REPRODUCED

    def pair_verdict(self, base: ScenarioResult, patched: ScenarioResult) -> str:
        return REGRESSED if patched.held and not base.held else NO_REGRESSION

    def notes(self, where: str, base: ScenarioResult | None, patched: ScenarioResult | None,
              ok: bool) -> list[str]:
        if base is None or patched is None:
            return failed_notes(where, base, patched, ok)
        if patched.held and not base.held:
            return [f"{where}: patched shows what the base does not (the base: not held: "
                    f"{'; '.join(base.failed)})"]
        if base.held and not patched.held:
            return [f"{where}: patched no longer shows what the base does, which the series does "
                    "not claim to fix (its config's fixes:, --fixes)"]
        return []


KINDS: dict[str, Kind] = {k.name: k for k in (Fix(), FixedUpstream(), Invariant(), Selftests(), Kselftest(), Kunit(), Unclaimed())}


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
