"""--cpus 2 gives a guest two running CPUs on both arches, and a scenario runs on them: the
x86_64 kernels have no ACPI and count the processors of the MP table, one per socket, which
only `-smp 2,sockets=2` makes two (`-smp 2` alone boots on one; the boot check says so)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.config import load_scenario
from harness.config.arches import all_arches
from harness.core.cache import cache_root
from harness.core.progress import Progress
from harness.run.plan import GuestOptions, make_plan
from harness.run.session import Session
from harness.verdict.kinds import REPRODUCED, result_verdict
from harness.verdict.results import KernelId


@pytest.mark.parametrize("arch", [pytest.param(a, marks=[pytest.mark.boot, getattr(pytest.mark, a)])
                                  for a in all_arches()])
def test_two_vcpus_run_and_a_scenario_uses_them(arch, tmp_path):
    plan = make_plan(kernel="linux-5.10", arches=arch, variants=("base",), scenarios=["dying-memcg"],
                     cache=cache_root(), progress=Progress(live=False), guest=GuestOptions(cpus=2))
    s = Session(plan, cache_root(), tmp_path, Progress(live=False))
    kid = KernelId(arch, "base", "default")
    try:
        guest = s.booted(kid).guest
        assert guest.check("cat /sys/devices/system/cpu/online").strip() == "0-1"
        # both CPUs take work: a busy loop pinned to CPU 1 shows up in its /proc/stat line
        before = int(guest.check("awk '$1 == \"cpu1\" {print $2 + $4}' /proc/stat"))
        guest.check("taskset 2 sh -c 'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done'")
        after = int(guest.check("awk '$1 == \"cpu1\" {print $2 + $4}' /proc/stat"))
        result = s.run_scenario(kid, replace(load_scenario("dying-memcg"), iterations=100))
    finally:
        s.close()
    assert after > before
    assert result.error is None and result_verdict(result) == REPRODUCED, (result_verdict(result), result.error)
