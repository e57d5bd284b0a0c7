"""The unit layer builds only fake kernels (tests/fakelinux): it takes a build lock of its own,
so that it neither waits for a real kernel build on the machine nor holds one up."""

import pytest


@pytest.fixture(autouse=True)
def own_build_lock(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("KHARNESS_BUILD_LOCK", str(tmp_path_factory.getbasetemp() / "build.lock"))
