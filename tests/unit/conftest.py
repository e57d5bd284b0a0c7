"""The unit layer builds only fake kernels (tests/fakelinux): it takes a build lock of its own,
so that it neither waits for a real kernel build on the machine nor holds one up; and each test
has a cache of its own, so that none reads or changes the real one (a kernel another run is
using, a download half made)."""

import pytest


@pytest.fixture(autouse=True)
def own_build_lock(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("KHARNESS_BUILD_LOCK", str(tmp_path_factory.getbasetemp() / "build.lock"))


@pytest.fixture(autouse=True)
def own_cache(tmp_path_factory, monkeypatch):
    """$KHARNESS_CACHE (harness.core.cache.cache_root's first choice) under this test's temporary
    directory; a test that sets its own still may."""
    monkeypatch.setenv("KHARNESS_CACHE", str(tmp_path_factory.mktemp("cache")))
