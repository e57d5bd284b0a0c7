"""Linux 7.2, the mainline base, on x86_64 (`make test` boots every kernel base on at least one
arch; `make boot-test KERNEL=linux-7.2` runs both). The kmem half of the series is upstream
there since v5.13, so the seed reproducer and its v2 twin must not reproduce, kernel memory must
still be charged, and the fsnotify half, never merged, must still pin (inotify and fanotify): the truth of the base,
not a verdict tuned to it (a different outcome fails here and is a finding)."""

from __future__ import annotations

import pytest

from harness.config import load_kernel, load_scenario
from harness.core.cache import cache_root
from harness.core.progress import Progress
from harness.run.plan import make_plan
from harness.run.session import Session
from harness.verdict.kinds import HOLDS, NOT_REPRODUCED, RAN, REPRODUCED, result_verdict
from harness.verdict.results import KernelId

# The cgroup selftests row (RAN) is left to `make boot-test KERNEL=linux-7.2`: ~3 min of a cold
# make test that is at its budget; the fanotify selftests (fsnotify-selftests) take seconds.
EXPECTED = {"fsnotify-selftests": RAN, "dying-memcg": NOT_REPRODUCED, "kmem-charge": HOLDS, "inotify-pin": REPRODUCED,
            "fanotify-pin": REPRODUCED, "fsnotify-charge": HOLDS, "dying-memcg-v2": NOT_REPRODUCED,
            "kstack-charge-v2": HOLDS, "fanotify-charge": HOLDS, "socket-pin": HOLDS,
            "zombie-pin": HOLDS, "inotify-pin-v2": REPRODUCED, "fanotify-pin-v2": REPRODUCED,
            "fsnotify-charge-v2": HOLDS, "fanotify-charge-v2": HOLDS, "fanotify-events-charge": HOLDS,
            "fsnotify-lifecycle": HOLDS,
            "kmem-pgtables": NOT_REPRODUCED, "kmem-pipes": NOT_REPRODUCED, "kpagecgroup": HOLDS}
pytestmark = [pytest.mark.boot, pytest.mark.x86_64, pytest.mark.base, pytest.mark.mainline]


@pytest.fixture(scope="module")
def mainline(tmp_path_factory):
    plan = make_plan(kernel="linux-7.2", arches="x86_64", variants=("base",), scenarios=list(EXPECTED),
                     cache=cache_root(), progress=Progress(live=False))
    s = Session(plan, cache_root(), tmp_path_factory.mktemp("mainline"), Progress(live=False))
    yield s
    s.close()


def test_the_kernel_config_expects_what_this_test_asserts():
    assert set(load_kernel("linux-7.2").fixed_upstream) == {
        s for s, v in EXPECTED.items() if v == NOT_REPRODUCED}


@pytest.mark.parametrize("scenario", [pytest.param(s, marks=[getattr(pytest.mark, m) for m in load_scenario(s).markers])
                                      for s in EXPECTED])
def test_linux_7_2_base(mainline, scenario):
    plan_scenario = next(s for s in mainline.plan.scenarios if s.name == scenario)
    result = mainline.run_scenario(KernelId("x86_64", "base", "default"), plan_scenario)
    assert result.error is None, f"{result.error} (log: {result.log})"
    assert result_verdict(result) == EXPECTED[scenario], f"{scenario}: {result_verdict(result)}; {'; '.join(result.failed)}"
    if scenario == "fsnotify-selftests":   # the tree's mount-notify tests, each passing on its own base
        assert len(result.tests) >= 7 and set(result.tests.values()) == {"pass"}, result.tests
