"""Every scenario of configs/scenarios/ on every (arch, variant): the plugin parametrizes it.

On the base kernel the bug must show (``reproduced``), on the patched kernel it must not
(``fixed``); an error on the way (build, boot, script, parse) fails the test with its reason.
"""


def test_scenario(kharness_case):
    result = kharness_case.run()
    assert result.error is None, f"{result.error} (log: {result.log})"
    assert result.held, (f"{kharness_case.scenario} on {kharness_case.arch}/{kharness_case.variant}: "
                         f"{result.before} -> {result.after} (delta {result.delta}), expected "
                         f"{result.expectation}")
