"""The kernel build lock: one build at a time for a user, in a directory only that user can
write, never opened through a symlink, and a wait that says who holds it and ends (issue 31)."""

from __future__ import annotations

import fcntl
import os

import pytest

from harness.build.kbuild import build_lock_path, build_lock_wait
from harness.core.cache import machine_lock
from harness.core.errors import HarnessError


def test_the_build_lock_is_in_the_users_runtime_directory(tmp_path, monkeypatch):
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.delenv("KHARNESS_BUILD_LOCK")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    assert build_lock_path() == runtime / "kharness-build.lock"


def test_a_runtime_directory_others_can_write_is_not_used(tmp_path, monkeypatch):
    runtime = tmp_path / "run"
    runtime.mkdir()
    runtime.chmod(0o777)
    monkeypatch.delenv("KHARNESS_BUILD_LOCK")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("KHARNESS_CACHE", str(tmp_path / "cache"))
    path = build_lock_path()
    assert path.parent != runtime and "/tmp/" not in str(path).replace(str(tmp_path), "")


def test_a_symlink_in_place_of_the_lock_is_refused_and_its_target_untouched(tmp_path):
    target = tmp_path / "precious"
    target.write_text("mine\n")
    (tmp_path / "build.lock").symlink_to(target)
    with pytest.raises(HarnessError, match="symlink"):
        with machine_lock(tmp_path / "build.lock"):
            pass
    assert target.read_text() == "mine\n"


def test_the_holder_says_who_it_is_in_the_lock_file(tmp_path):
    lock = tmp_path / "build.lock"
    with machine_lock(lock):
        assert lock.read_text().startswith(f"{os.getpid()} ")
    assert oct(lock.stat().st_mode & 0o777) == "0o600"


def test_a_wait_names_the_holder_and_gives_up_after_its_bound(tmp_path):
    lock = tmp_path / "build.lock"
    said = []
    with open(lock, "a") as other:   # another build, as `flock PATH make` holds it: writes nothing
        fcntl.flock(other, fcntl.LOCK_EX)
        with pytest.raises(HarnessError, match=rf"held by pid {os.getpid()} .*more than 0.2 s: gave up"):
            with machine_lock(lock, said.append, timeout=0.2):
                pytest.fail("took a lock another holds")
    assert len(said) == 1 and said[0].startswith(f"pid {os.getpid()} (")


@pytest.mark.parametrize("value", ["nan", "-1", "soon"])
def test_a_meaningless_wait_bound_is_refused(monkeypatch, value):
    monkeypatch.setenv("KHARNESS_BUILD_LOCK_WAIT", value)
    with pytest.raises(HarnessError, match="KHARNESS_BUILD_LOCK_WAIT"):
        build_lock_wait()
