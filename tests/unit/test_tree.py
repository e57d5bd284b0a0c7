"""kharness run --tree: a developer's git checkout as base and series, never changed, no network
(real git on a copy of tests/fakelinux, real builds of the fake tree)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness import REPO_ROOT
from harness.core.errors import HarnessError
from harness.core.progress import Progress
from harness.run.plan import make_plan
from harness.run.session import Session
from harness.verdict.results import KernelId

FAKE = REPO_ROOT / "tests" / "fakelinux"
ENV = {"GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@example.org", "GIT_COMMITTER_NAME": "Dev",
       "GIT_COMMITTER_EMAIL": "dev@example.org", "PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}


def git(tree: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(tree), *args], env=ENV, check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture
def tree(tmp_path):
    """v5.10 tagged, then a branch of two commits on mm/memcontrol.c."""
    t = tmp_path / "linux"
    shutil.copytree(FAKE, t, symlinks=True)
    git(t, "init", "-q", "-b", "master")
    git(t, "add", "-A")
    git(t, "commit", "-q", "-m", "Linux 5.10")
    git(t, "tag", "v5.10")
    git(t, "checkout", "-q", "-b", "my-fix")
    for n in (2, 3):
        text = (t / "mm/memcontrol.c").read_text().replace(f"memcg_charge = {n - 1};", f"memcg_charge = {n};")
        (t / "mm/memcontrol.c").write_text(text)
        git(t, "commit", "-q", "-am", f"mm: memcontrol: charge {n}")
    return t


def state(t: Path) -> tuple[str, str, str]:
    return git(t, "rev-parse", "HEAD"), git(t, "status", "--porcelain"), git(t, "for-each-ref")


def plan(tree, tmp_path, **kw):
    return make_plan(tree=tree, arches="x86_64", cache=tmp_path / "cache", progress=Progress(live=False), **kw)


def test_the_branch_is_the_series_on_the_newest_release_tag_and_the_tree_is_untouched(tree, tmp_path):
    before = state(tree)
    p = plan(tree, tmp_path)
    assert [x.subject for x in p.series.patches] == ["mm: memcontrol: charge 2", "mm: memcontrol: charge 3"]
    assert p.series.name == "my-fix" and p.series.title == "v5.10..HEAD"
    assert p.kernel.name == "linux-5.10" and p.kernel.sources[0].path == str(tree)
    # no config: the tests its changed paths call for (mm/: the memcg scenarios; the fake tree
    # has no mm or cgroup selftests)
    assert [s.name for s in p.scenarios] == ["dying-memcg", "kmem-charge", "kmem-pgtables", "kmem-pipes"]
    s = Session(p, tmp_path / "cache", tmp_path / "run", Progress(live=False))
    base, patched = s.kernel(KernelId("x86_64", "base")), s.kernel(KernelId("x86_64", "patched"))
    assert b"memcg_charge = 1;" in base.image.read_bytes()
    assert b"memcg_charge = 3;" in patched.image.read_bytes()
    assert state(tree) == before          # no checkout, no ref, no file written in the tree


def test_a_range_and_a_base_of_ones_own(tree, tmp_path):
    first = git(tree, "rev-parse", "HEAD~1").strip()
    p = plan(tree, tmp_path, series="v5.10..HEAD~1")
    assert [x.subject for x in p.series.patches] == ["mm: memcontrol: charge 2"]
    p = plan(tree, tmp_path, base=first)
    assert [x.subject for x in p.series.patches] == ["mm: memcontrol: charge 3"]
    assert p.kernel.sources[0].ref == first


def test_a_dirty_tree_is_refused_unless_asked_and_then_is_a_last_patch(tree, tmp_path):
    (tree / "mm/memcontrol.c").write_text((tree / "mm/memcontrol.c").read_text() + "/* wip */\n")
    with pytest.raises(HarnessError, match=r"1 file\(s\) changed and not committed \(M mm/memcontrol.c, "
                                           r"\.\.\.\): commit them, or --dirty"):
        plan(tree, tmp_path)
    p = plan(tree, tmp_path, dirty=True)
    assert p.series.patches[-1].subject == "the work tree's uncommitted changes (--dirty)"
    assert p.series.title == "v5.10..HEAD + work tree"
    s = Session(p, tmp_path / "cache", tmp_path / "run", Progress(live=False))
    assert b"/* wip */" in s.kernel(KernelId("x86_64", "patched")).image.read_bytes()


@pytest.mark.parametrize("kw, message", [
    (dict(base="nosuch"), "--base 'nosuch': not a commit of"),
    (dict(base="HEAD"), "no commits between HEAD and HEAD: nothing to test"),
    (dict(series="my-fix"), "--series my-fix: with --tree, a revision range"),
])
def test_bad_tree_arguments_are_one_line_errors(tree, tmp_path, kw, message):
    with pytest.raises(HarnessError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan(tree, tmp_path, **kw)


def test_not_a_kernel_checkout_is_refused(tmp_path):
    with pytest.raises(HarnessError, match="not a kernel git checkout"):
        plan(tmp_path, tmp_path)


def test_the_base_alone_needs_no_commits(tree, tmp_path):
    p = plan(tree, tmp_path, base="HEAD", variants=("base",))
    assert p.series is None and p.kernel.sources[0].ref == git(tree, "rev-parse", "HEAD").strip()
