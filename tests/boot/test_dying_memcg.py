"""The seed reproducer on a real 5.10 kernel under QEMU: the leak shows on the base kernel."""

import pytest

from harness.arches import all_arches, load_arch
from harness.cache import cache_root
from harness.config import load_kernel, load_scenario
from harness.pipeline import Plan, run_plan
from harness.progress import Progress

ARCHES = [pytest.param(name, marks=getattr(pytest.mark, name), id=name) for name in all_arches()]


@pytest.mark.boot
@pytest.mark.base
@pytest.mark.dying_memcg
@pytest.mark.parametrize("arch", ARCHES)
def test_base_kernel_leaves_dying_memory_cgroups(arch, tmp_path):
    scenario = load_scenario("dying-memcg")
    plan = Plan(kernel=load_kernel("linux-5.10"), arches=(load_arch(arch),),
                variants=("base",), scenarios=(scenario,))
    meta, records = run_plan(plan, cache_root(), tmp_path, Progress())
    (record,) = records
    assert record.error is None, record.error
    (result,) = record.scenarios
    assert result.error is None, result.error
    assert result.delta >= 0.9 * scenario.iterations, result
