"""The cache's write rules: a writer killed with SIGKILL leaves its temporary directory, and the
next writer of that key, holding the key's lock, sweeps it; nobody else's is touched."""

from __future__ import annotations

import fcntl
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.core.cache import atomic_dir, locked, sweep

WRITER = """
import sys, time
from pathlib import Path
from harness.core.cache import atomic_dir, locked
final = Path(sys.argv[1])
with locked(final.parent / (final.name + ".lock")), atomic_dir(final, owned=True) as tmp:
    (tmp / "half").write_text("x" * 4096)
    print(tmp, flush=True)
    time.sleep(600)
"""


def _writer(final: Path) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(final)], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    return proc, Path(proc.stdout.readline().strip())


def test_a_killed_writers_directory_is_swept_by_the_next_owner_of_the_key(tmp_path):
    final = tmp_path / "kernels" / "k1"
    proc, tmp = _writer(final)
    try:
        assert tmp.parent == final.parent and tmp.name.startswith(".k1.") and (tmp / "half").is_file()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert tmp.is_dir() and not final.exists()   # what SIGKILL leaves: no handler ran
    other = tmp_path / "kernels" / ".k10.abc.tmp"   # another key's (k10), not k1's
    other.mkdir()
    with locked(final.parent / "k1.lock"), atomic_dir(final, owned=True) as new:
        assert not tmp.exists()
        (new / "image").write_text("done")
    assert (final / "image").read_text() == "done"
    assert other.is_dir() and sorted(p.name for p in final.parent.iterdir()) == [".k10.abc.tmp", "k1", "k1.lock"]


def test_a_live_writer_keeps_its_directory_while_another_key_is_written(tmp_path):
    final = tmp_path / "kernels" / "k1"
    proc, tmp = _writer(final)
    try:
        with atomic_dir(tmp_path / "kernels" / "k2", owned=True):
            pass
        with atomic_dir(final):   # not the key's owner: sweeps nothing
            pass
        assert (tmp / "half").is_file()
        # and the next owner of k1 cannot take the key's lock while the writer lives
        with open(final.parent / "k1.lock") as f:
            with pytest.raises(BlockingIOError):
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_sweep_takes_files_and_directories_of_that_key_only(tmp_path):
    final = tmp_path / "k"
    names = (".k.a1b2c3d4.tmp", ".k.x_9y8z7w.tmp", ".kk.a1b2c3d4.tmp", ".k.x.a1b2c3d4.tmp", ".k.a1b2c3d4.part", "k")
    for name in names:   # the third and fourth: keys kk and k.x; the fifth: not a temporary name
        (tmp_path / name).mkdir() if name.startswith(".k.a1") else (tmp_path / name).write_text("")
    assert sorted(p.name for p in sweep(final)) == [".k.a1b2c3d4.tmp", ".k.x_9y8z7w.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".k.a1b2c3d4.part", ".k.x.a1b2c3d4.tmp",
                                                          ".kk.a1b2c3d4.tmp", "k"]


def test_each_unit_test_has_a_cache_of_its_own(tmp_path_factory):
    from harness.core.cache import cache_root
    assert cache_root().is_relative_to(tmp_path_factory.getbasetemp())


CLEANER = """
import os, shutil, signal, sys
from pathlib import Path
import harness.core.cache
from harness.run.doctor import clean
real = shutil.rmtree
def rmtree_then_die(path, *a, **k):   # one file gone, then SIGKILL: no handler, no finally
    first = sorted(Path(path).rglob("*"))[0]
    first.unlink()
    print(path, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
harness.core.cache.shutil.rmtree = rmtree_then_die
clean(Path(sys.argv[1]), 0, None, False)
"""


def _exported_kernel(tmp_path: Path) -> tuple[Path, str]:
    """An export directory holding one kernel, as `kharness export` writes it."""
    import json

    from harness.core.cache import sha256_file
    key = "ab" * 32
    entry = tmp_path / "export" / key
    entry.mkdir(parents=True)
    for name in ("image", "config", "build.log"):
        (entry / name).write_text(name)
    files = {name: sha256_file(entry / name) for name in ("image", "config", "build.log")}
    (entry / "MANIFEST.json").write_text(json.dumps({"key": key, "files": files}))
    return tmp_path / "export", key


def test_a_clean_killed_mid_way_never_leaves_half_an_entry_under_its_key(tmp_path):
    from harness.output.store import import_kernels
    src, key = _exported_kernel(tmp_path)
    cache = tmp_path / "cache"
    import_kernels(src, cache)
    final = cache / "kernels" / key
    proc = subprocess.run([sys.executable, "-c", CLEANER, str(cache)], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    half = Path(proc.stdout.strip())
    assert not final.exists()   # renamed away whole before the first file went
    assert half.parent == final.parent and half.name.startswith(f".{key}.") and half.is_dir()
    assert import_kernels(src, cache)[0].startswith("imported")   # made again; the half swept
    assert not half.exists() and sorted(p.name for p in final.iterdir()) == ["build.log", "config", "image"]


def test_a_kernel_entry_missing_a_file_is_made_again_not_trusted(tmp_path):
    from harness.output.store import import_kernels
    src, key = _exported_kernel(tmp_path)
    final = tmp_path / "cache" / "kernels" / key
    final.mkdir(parents=True)
    (final / "image").write_text("image")   # half deleted by hand, or by an older clean
    assert import_kernels(src, tmp_path / "cache")[0].startswith("imported")
    assert sorted(p.name for p in final.iterdir()) == ["build.log", "config", "image"]
    assert import_kernels(src, tmp_path / "cache")[0].endswith("already in the cache")


def test_a_file_written_atomically_has_the_mode_a_plain_write_gives(tmp_path):
    from harness.core.cache import atomic_file
    (tmp_path / "plain").write_text("x")
    with atomic_file(tmp_path / "atomic", "w") as f:
        f.write("x")
    assert (tmp_path / "atomic").stat().st_mode == (tmp_path / "plain").stat().st_mode
