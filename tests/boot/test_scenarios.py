"""Every scenario of configs/scenarios/ on every (arch, variant): the plugin parametrizes it.

A fix scenario must show the bug on the base kernel (``reproduced``) and not on the patched one
(``fixed``); an invariant must hold on both; the selftests must run on both. Every patched test
also runs the base and judges the pair as the CLI's table does (table.Row): FIXED only when
the base reproduced, an invariant's bounds relative to the base, no selftest worse than base. An error on the way (build, boot, script,
parse) fails the test with its reason.
"""

from harness.verdict.table import Row


def test_scenario(kharness_case):
    result = kharness_case.run()
    assert result.error is None, f"{result.error} (log: {result.log})"
    where = f"{kharness_case.scenario} on {kharness_case.arch}/{kharness_case.variant}"
    # a guest of its own: no other scenario's dying cgroups or sleeps to start from
    assert result.fresh_guest and result.metrics["before"] == 1, f"{where}: started on a used guest ({result.metrics['before']} cgroups)"
    assert result.held, f"{where}: not held: {'; '.join(result.failed)} (expected {result.expectation})"
    if kharness_case.variant == "patched":
        # the patched kernel is judged against the base, by the CLI table's own code: FIXED
        # needs the base to show the bug, an invariant's bounds relative to base (a fix that
        # charges less) and the selftests' comparison need the base's numbers
        base, result = kharness_case.pair()
        assert base.error is None, f"base: {base.error} (log: {base.log})"
        assert result.error is None, f"{result.error} (log: {result.log})"
        row = Row(kharness_case.arch, kharness_case.scenario, base, result, result.profile)
        assert row.ok, f"{where}: {row.verdict} against the base: {'; '.join(row.notes())}"
