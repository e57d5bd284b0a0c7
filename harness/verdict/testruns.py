"""Selftests judged test by test, base against patched: each test's runs on each kernel, and
whether patched fails a test more often than chance explains (a one-sided exact test)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.verdict.repeat import namesake
from harness.verdict.results import ScenarioResult


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
    if value is None and namesake(test) != test:   # a line the other kernel printed twice: as its namesake
        return test_runs(result, namesake(test))
    return LEGACY_RUNS[value] if value is not None else None


def _runs_words(runs: str) -> str:
    if len(set(runs)) == 1:
        return {"p": "pass", "f": "fail", "s": "skip"}[runs[0]] + (f" in all {len(runs)} runs" if len(runs) > 1 else "")
    if "s" not in runs:
        return f"fail {runs.count('f')} of {len(runs)} runs"
    return ", ".join(f"{word} {runs.count(letter)}" for letter, word in (("f", "fail"), ("s", "skip"), ("p", "pass"))
                     if letter in runs) + f" of {len(runs)} runs"


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
    only a significant difference makes it REGRESSED. Of a test the base passed in some run, a
    skip is no pass: a test that passes in some runs and skips in others is FLAKY, one patched
    skips more often than base is judged as failing more often."""
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
    # patched worse by its failures, or (of a test the base passed in some run) by its runs
    # that did not pass: a skip is no pass, and a base's skip never cancels a patched failure
    counts = [(b.count("f"), p.count("f"))]
    if "p" in b:
        counts.append((len(b) - b.count("p"), len(p) - p.count("p")))
    for fb, fp in counts:
        if fp * len(b) > fb * len(p):   # patched fails more often
            chance = worse_by_chance(fp, len(p), fb, len(b))
            words += f" (p = {chance:.3f})"
            if chance <= ALPHA:
                return TestJudgement(test, "regressed", True, words + ", intermittent" * (fp < len(p)))
            # not significant yet: patched alone failing it is no pass; both failing it, flaky
            return TestJudgement(test, "regressed" if fb == 0 else "flaky", False, words + ", not significant")
    if "f" in p or ("p" in b and set(p) != {"p"}):   # both fail it (or, passed, miss it) some runs
        return TestJudgement(test, "flaky", True, words)
    # fixed: base failed it in some run, patched passed every run (skipping it fixes nothing)
    return TestJudgement(test, "fixed" if "f" in b and set(p) == {"p"} else "same", True, words)


def judge_tests(base: ScenarioResult, patched: ScenarioResult) -> list[TestJudgement]:
    """Every test either kernel reported, judged (``judge_test``)."""
    known = set(base.known_flaky) | set(patched.known_flaky)
    return [judge_test(t, test_runs(base, t), test_runs(patched, t),
                       namesake(t) in known or (_explained(base, t, known) and _explained(patched, t, known)))
            for t in sorted(base.tests.keys() | patched.tests.keys())]


def _explained(result: ScenarioResult, test: str, known: set[str]) -> bool:
    """Whether every run in which ``test`` failed is one in which a known-flaky test under it
    (a kselftest program's "PROGRAM:TEST") failed too: the program's own result then flakes
    with it, and is known as it is."""
    children = [test_runs(result, k) or "" for k in known if k.startswith(f"{test}:")]
    runs = test_runs(result, test) or ""
    return bool(children) and all(letter != "f" or any(i < len(c) and c[i] == "f" for c in children)
                                  for i, letter in enumerate(runs))


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


def stale_known(base: ScenarioResult, patched: ScenarioResult | None) -> list[str]:
    """The tests listed as known to flake on this base that passed every run on every kernel
    here: their entry may be stale (shown, never hidden; it still runs and is judged)."""
    results = [r for r in (base, patched) if r is not None]
    out = []
    for test in base.known_flaky:
        runs = [test_runs(r, test) for r in results]
        if all(x is not None and set(x) == {"p"} for x in runs):
            total = sum(len(x or "") for x in runs)
            out.append(f"{test} passed all {total} runs here: its known_flaky entry may be stale")
    return out
