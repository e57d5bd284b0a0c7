"""Verdicts: an error is never a result, and FIXED needs both sides."""

from harness.report import (ERROR, FIXED, NOT_REPRODUCED, REPRODUCED, STILL_BROKEN, RunRecord,
                            ScenarioResult, ab_verdict, rows, summary)


def result(variant, held=None, error=None, delta=None):
    return ScenarioResult(arch="x86_64", variant=variant, scenario="dying-memcg", iterations=500,
                          expectation="", before=1, after=1 + (delta or 0), delta=delta,
                          held=held, error=error)


def test_base_alone():
    assert result("base", held=True, delta=500).verdict == REPRODUCED
    assert result("base", held=False, delta=3).verdict == NOT_REPRODUCED


def test_error_is_never_a_verdict():
    assert result("base", error="boot: deadline").verdict == ERROR
    assert result("base").verdict == ERROR  # no judgement made at all


def test_ab_fixed_needs_reproduction_on_base():
    assert ab_verdict(result("base", True, delta=500), result("patched", True, delta=0)) == FIXED
    assert ab_verdict(result("base", False, delta=0), result("patched", True, delta=0)) == NOT_REPRODUCED
    assert ab_verdict(result("base", True, delta=500), result("patched", False, delta=500)) == STILL_BROKEN


def test_ab_error_on_either_side_is_error():
    assert ab_verdict(result("base", True, delta=500), result("patched", error="ssh")) == ERROR
    assert ab_verdict(result("base", error="build"), result("patched", True, delta=0)) == ERROR


def test_table_pairs_variants_and_summary_shows_values():
    runs = [RunRecord("x86_64", "base", scenarios=(result("base", True, delta=500),)),
            RunRecord("x86_64", "patched", scenarios=(result("patched", True, delta=0),))]
    table = rows(runs)
    assert len(table) == 1 and table[0].verdict == FIXED
    text = summary(table, runs)
    assert "1 -> 501 (+500)" in text and "FIXED" in text
