"""Every prefix of the series builds, with and without MEMCG_KMEM; checkpatch finds no error.

CI runs the x86_64 matrix; `make check-series` runs it for every arch.
"""

import pytest

from harness.arches import load_arch
from harness.cache import cache_root
from harness.config import load_kernel
from harness.pipeline import CHECK_SERIES_PROFILES, Plan, check_series
from harness.progress import Progress
from harness.series import load_series, load_series_config


@pytest.mark.boot
@pytest.mark.x86_64
@pytest.mark.check_series
def test_every_prefix_builds_and_checkpatch_is_clean(tmp_path):
    config = load_series_config("obj-cgroup-kmem")
    plan = Plan(kernel=load_kernel(config.kernel), arches=(load_arch("x86_64"),),
                variants=("patched",), scenarios=(), series=load_series(config))
    builds, checkpatch = check_series(plan, CHECK_SERIES_PROFILES, cache_root(), tmp_path, Progress())
    assert len(builds) == len(CHECK_SERIES_PROFILES) * len(plan.series.patches)
    broken = [(b.patch, b.profile, b.error) for b in builds if not b.ok]
    assert not broken, broken
    errors = [(c.patch, [f for f in c.findings if ": ERROR:" in f]) for c in checkpatch if c.errors]
    assert not errors, errors
