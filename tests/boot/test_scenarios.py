"""Every scenario of configs/scenarios/ on every (arch, variant): the plugin parametrizes it.

A fix scenario must show the bug on the base kernel (``reproduced``) and not on the patched one
(``fixed``), and its patched test also needs the base to reproduce (the pair verdict, as the
CLI judges it); an invariant must hold on both; the selftests must run on both, and the patched
kernel must do no worse than the base on any test. An error on the way (build, boot, script,
parse) fails the test with its reason.
"""

from harness.kinds import FIXED, kind, selftest_regressions


def test_scenario(kharness_case):
    result = kharness_case.run()
    assert result.error is None, f"{result.error} (log: {result.log})"
    where = f"{kharness_case.scenario} on {kharness_case.arch}/{kharness_case.variant}"
    # a guest of its own: no other scenario's dying cgroups or sleeps to start from
    assert result.fresh_guest and result.before == 1, f"{where}: started on a used guest ({result.before} cgroups)"
    assert result.held, f"{where}: not held: {'; '.join(result.failed)} (expected {result.expectation})"
    if result.kind == "fix" and kharness_case.variant == "patched":
        # FIXED means the base shows the bug and the patched kernel does not: the same pair
        # verdict as the CLI's table, never the patched side alone
        base = kharness_case.run("base")
        assert base.error is None, f"base: {base.error} (log: {base.log})"
        assert kind(result.kind).pair_verdict(base, result) == FIXED, \
            f"{where}: the base kernel did not reproduce ({'; '.join(base.failed)}): FIXED proves nothing"
    if result.kind == "selftests" and kharness_case.variant == "patched":
        base = kharness_case.run("base")
        assert base.error is None, f"base: {base.error} (log: {base.log})"
        assert not selftest_regressions(base, result), f"{where}: regressed {selftest_regressions(base, result)}"
