import pytest


@pytest.mark.boot
def test_memory_cgroup_v1_is_mounted(guest):
    # `guest` is booted once per (arch, variant) and shared by the session's tests.
    assert guest.run("test -f /sys/fs/cgroup/memory/memory.kmem.usage_in_bytes").status == 0
    assert "memory" in guest.read("/proc/cgroups")
