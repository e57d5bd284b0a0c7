"""Real kernel splats, provoked with the kernel's own LKDTM (the lkdtm profile: the default
kernel plus CONFIG_LKDTM), are an ERROR quoting the kernel's report, on both arches: a WARN in
the middle of a scenario whose numbers hold, and a BUG that kills the script's shell."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from harness.config import ScenarioConfig, from_dict, load_scenario
from harness.config.arches import all_arches
from harness.core.cache import cache_root
from harness.core.progress import Progress
from harness.run.plan import make_plan
from harness.run.session import Session
from harness.verdict.kinds import ERROR, result_verdict
from harness.verdict.results import KernelId

DIRECT = "/sys/kernel/debug/provoke-crash/DIRECT"


def session(arch: str, run_dir: Path) -> Session:
    plan = make_plan(kernel="linux-5.10", arches=arch, variants=("base",), profiles="lkdtm",
                     scenarios=["dying-memcg"], cache=cache_root(), progress=Progress(live=False))
    return Session(plan, cache_root(), run_dir, Progress(live=False))


def arches():
    return [pytest.param(a, marks=[pytest.mark.boot, pytest.mark.splats, getattr(pytest.mark, a)])
            for a in all_arches()]


@pytest.mark.parametrize("arch", arches())
def test_a_real_warn_during_a_scenario_whose_numbers_hold_is_an_error_quoting_it(arch, tmp_path):
    s = session(arch, tmp_path)
    kid = KernelId(arch, "base", "lkdtm")
    try:
        guest = s.booted(kid).guest
        guest.check(f"mount -t debugfs debugfs /sys/kernel/debug && test -w {DIRECT}")
        guest.check(f"( sleep 1; echo WARNING > {DIRECT} ) > /dev/null 2>&1 < /dev/null &")
        result = s.run_scenario(kid, replace(load_scenario("dying-memcg"), iterations=50))
    finally:
        s.close()
    assert result_verdict(result) == ERROR
    assert re.match(r"guest: kernel reported: WARNING: CPU: 0 PID: \d+ at drivers/misc/lkdtm/bugs\.c:\d+ "
                    r"lkdtm_WARNING", result.error), result.error
    # the script ran to its end and showed the bug: numbers that would have held
    counts = [int(line.split()[2]) for line in (tmp_path / f"{arch}-base-lkdtm/dying-memcg.out")
              .read_text().splitlines()]
    assert counts[-1] - counts[0] == 50


@pytest.mark.parametrize("arch", arches())
def test_a_real_bug_is_an_error_quoting_it_not_the_script_it_killed(arch, tmp_path):
    provoke = from_dict(ScenarioConfig, {
        "name": "provoke-bug", "script": "provoke-crash.sh", "kind": "invariant", "iterations": 1,
        "timeout": 60, "settle": 0, "env": {"CRASH": "BUG"}, "holds": [{"max": 1000}]}, Path(__file__))
    s = session(arch, tmp_path)
    try:
        result = s.run_scenario(KernelId(arch, "base", "lkdtm"), provoke)
    finally:
        s.close()
    assert result_verdict(result) == ERROR
    assert re.match(r"guest: kernel reported: kernel BUG at drivers/misc/lkdtm/bugs\.c:\d+!",
                    result.error), result.error
