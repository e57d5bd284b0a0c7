"""Series: patches in order, the cover letter left out, and git am failures named precisely."""

import subprocess
from pathlib import Path

import pytest

from harness.core.errors import HarnessError
from harness.core.progress import Quiet
from harness.series.patches import load_patch_dir, patch_subject
from harness.series.workspace import Workspace, am_failure
from harness.sources.source import SourceTree

ENV = ["-c", "user.name=t", "-c", "user.email=t@t"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *ENV, *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


def make_series(tmp_path: Path) -> tuple[Path, Path]:
    """A tiny 'kernel' tree and a 3-patch series made from it with git format-patch."""
    tree = tmp_path / "linux-5.10.1"
    tree.mkdir()
    (tree / "Makefile").write_text("VERSION = 5\nPATCHLEVEL = 10\nSUBLEVEL = 1\n")
    (tree / "mm.c").write_text("".join(f"line {i}\n" for i in range(40)))
    dev = tmp_path / "dev"
    subprocess.run(["cp", "-a", str(tree), str(dev)], check=True)
    git(dev, "init", "-q")
    git(dev, "add", "-A")
    git(dev, "commit", "-qm", "base")
    for n, line in enumerate((3, 20, 35), 1):
        text = (dev / "mm.c").read_text().replace(f"line {line}\n", f"changed {line}\n")
        (dev / "mm.c").write_text(text)
        git(dev, "commit", "-qam", f"mm: change number {n} of a fairly long subject line that wraps")
    out = tmp_path / "patches"
    git(dev, "format-patch", "-q", "--cover-letter", "-3", "-o", str(out))
    return tree, out


def test_patches_are_ordered_and_the_cover_letter_is_left_out(tmp_path):
    _, patches = make_series(tmp_path)
    series = load_patch_dir(patches)
    assert [p.path.name[:4] for p in series.patches] == ["0001", "0002", "0003"]
    assert series.patches[1].subject == "mm: change number 2 of a fairly long subject line that wraps"


def test_folded_subject_is_unfolded_and_untagged(tmp_path):
    p = tmp_path / "x.patch"
    p.write_text("From 123 Mon Sep 17 00:00:00 2001\nSubject: [PATCH v2 3/5] mm: memcontrol: a\n"
                 " folded subject\n\ndiff --git a/x b/x\n")
    assert patch_subject(p) == "mm: memcontrol: a folded subject"


def test_a_gap_in_the_numbering_is_a_missing_patch_not_a_shorter_series(tmp_path):
    _, patches = make_series(tmp_path)
    next(patches.glob("0002-*.patch")).unlink()
    with pytest.raises(HarnessError, match=r"^series: .*patches: patch 0002 missing: the files are "
                                           r"numbered 0001, 0003$"):
        load_patch_dir(patches)


def test_a_file_that_is_not_a_patch_is_refused(tmp_path):
    _, patches = make_series(tmp_path)
    (patches / "notes.txt").write_text("v2: rebased\n")
    with pytest.raises(HarnessError, match=r"patches: not a patch: notes.txt \(a series directory"):
        load_patch_dir(patches)


def test_empty_directory_is_an_error(tmp_path):
    with pytest.raises(HarnessError, match="no patches"):
        load_patch_dir(tmp_path)


def test_am_failure_names_patch_and_file():
    out = ("Applying: mm: one\nerror: patch failed: mm/memcontrol.c:3094\n"
           "error: mm/memcontrol.c: patch does not apply\nPatch failed at 0002 mm: two\n")
    assert am_failure(out) == "patch 0002 'mm: two' does not apply (at mm/memcontrol.c:3094)"


def workspace(tmp_path: Path, tree: Path) -> Workspace:
    src = SourceTree(tree, "5.10.1", "path", str(tree), "f" * 64)
    return Workspace(src, tmp_path / "cache")


def test_series_applies_as_one_commit_per_patch_and_is_cached(tmp_path):
    tree, patches = make_series(tmp_path)
    ws = workspace(tmp_path, tree)
    series = load_patch_dir(patches)
    commits = ws.apply(series, Quiet(), tmp_path / "am.log")
    assert len(commits) == 3
    assert ws.apply(series, Quiet(), tmp_path / "am2.log") == commits
    assert not (tmp_path / "am2.log").exists()  # cached: git am did not run again
    with ws.checkout(commits[-1]) as co:
        assert "changed 35" in (co.path / "mm.c").read_text()
    with ws.checkout(ws.base(Quiet())) as co:
        assert "changed" not in (co.path / "mm.c").read_text()
    assert (tree / "mm.c").read_text().count("changed") == 0  # the extracted tree is untouched


def test_a_checkout_at_the_commit_already_checked_out_runs_no_git_checkout(tmp_path, monkeypatch):
    tree, patches = make_series(tmp_path)
    ws = workspace(tmp_path, tree)
    commits = ws.apply(load_patch_dir(patches), Quiet(), tmp_path / "am.log")
    with ws.checkout(commits[0]):
        pass
    ran = []
    real = ws._git
    monkeypatch.setattr(ws, "_git", lambda *a, **k: ran.append(a[0]) or real(*a, **k))
    with ws.checkout(commits[0]) as co:                      # still there: only the tree id
        assert "changed 3" in (co.path / "mm.c").read_text()
    assert ran == ["rev-parse"]
    with ws.checkout(commits[2]) as co:                      # elsewhere: checked out
        assert "changed 35" in (co.path / "mm.c").read_text()
    assert ran == ["rev-parse", "checkout", "rev-parse"]
    (ws.work / ".git" / "kharness-checkout").unlink()        # as after an interrupted checkout
    with ws.checkout(commits[2]):
        pass
    assert ran.count("checkout") == 2
    git(ws.work, "checkout", "-q", "--detach", commits[1])   # git moved the tree behind our back
    with ws.checkout(commits[2]) as co:
        assert "changed 35" in (co.path / "mm.c").read_text()
    assert ran.count("checkout") == 3


def test_patch_that_does_not_apply_is_named(tmp_path):
    tree, patches = make_series(tmp_path)
    (tree / "mm.c").write_text((tree / "mm.c").read_text().replace("line 20\n", "other 20\n"))
    with pytest.raises(HarnessError, match=r"patch 0002 'mm: change number 2.*' does not apply"):
        workspace(tmp_path, tree).apply(load_patch_dir(patches), Quiet(), tmp_path / "am.log")


def test_a_patch_directory_says_where_it_came_from(tmp_path):
    _, patches = make_series(tmp_path)
    series = load_patch_dir(patches)
    assert (series.origin, series.origin_sha256, series.base_commit) == (f"dir {patches}", "", "")
