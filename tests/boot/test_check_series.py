"""Every prefix of the series builds, with each of the kernel base's check profiles (on 5.10:
with and without MEMCG_KMEM); checkpatch finds no error.

CI runs the x86_64 matrix; `make check-series` runs it for every arch.
"""

import pytest

from harness.core.cache import cache_root
from harness.core.progress import Progress
from harness.run.checkseries import check_series
from harness.run.plan import make_plan


@pytest.mark.boot
@pytest.mark.x86_64
@pytest.mark.check_series
def test_every_prefix_builds_and_checkpatch_is_clean(tmp_path):
    plan = make_plan(series="obj-cgroup-kmem", arches="x86_64", variants=("patched",),
                     scenarios=["dying-memcg"], cache=cache_root(), progress=Progress())
    profiles = plan.kernel.check_profiles
    builds, checkpatch = check_series(plan, profiles, cache_root(), tmp_path, Progress())
    assert len(builds) == len(profiles) * len(plan.series.patches)
    broken = [(b.patch, b.profile, b.error) for b in builds if not b.ok]
    assert not broken, broken
    errors = [(c.patch, [f for f in c.findings if ": ERROR:" in f]) for c in checkpatch if c.errors]
    assert not errors, errors
