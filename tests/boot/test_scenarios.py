"""Every scenario of configs/scenarios/ on every (arch, variant): the plugin parametrizes it.

A fix scenario must show the bug on the base kernel (``reproduced``) and not on the patched one
(``fixed``); an invariant must hold on both; the selftests must run on both, and the patched
kernel must do no worse than the base on any test. An error on the way (build, boot, script,
parse) fails the test with its reason.
"""

from harness.kinds import selftest_regressions


def test_scenario(kharness_case):
    result = kharness_case.run()
    assert result.error is None, f"{result.error} (log: {result.log})"
    where = f"{kharness_case.scenario} on {kharness_case.arch}/{kharness_case.variant}"
    assert result.held, f"{where}: not held: {'; '.join(result.failed)} (expected {result.expectation})"
    if result.kind == "selftests" and kharness_case.variant == "patched":
        base = kharness_case.run("base")
        assert base.error is None, f"base: {base.error} (log: {base.log})"
        assert not selftest_regressions(base, result), f"{where}: regressed {selftest_regressions(base, result)}"
