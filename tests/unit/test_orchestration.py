"""The pipeline's orchestration on a fake kernel tree (tests/fakelinux: a Makefile with kbuild's
targets and output, no compiler): cache keys, rebuild decisions and error paths, in seconds, with
real git, real make and the real session code."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest

from harness import REPO_ROOT
from harness.build import kbuild
from harness.config import SourceSpec, load_kernel, load_scenario
from harness.config.arches import load_arch
from harness.core.errors import HarnessError
from harness.core.progress import Quiet
from harness.run.plan import Plan
from harness.run.session import Session
from harness.series.patches import load_patch_dir
from harness.verdict.results import KernelId

FAKE = REPO_ROOT / "tests" / "fakelinux"
BASE, PATCHED = KernelId("x86_64", "base"), KernelId("x86_64", "patched")


def fake_plan(tmp_path: Path, patch: str | None = None, **kernel_changes) -> Plan:
    tree = tmp_path / "linux"
    if not tree.exists():
        shutil.copytree(FAKE, tree, symlinks=True)
    kernel = replace(load_kernel("linux-5.10"), sources=(SourceSpec(type="path", path=str(tree)),),
                     **kernel_changes)
    series = None
    if patch is not None:
        patches = tmp_path / "patches"
        patches.mkdir(exist_ok=True)
        (patches / "0001-mm-memcontrol-fake.patch").write_text(patch)
        series = load_patch_dir(patches)
    return Plan(kernel, (load_arch("x86_64"),), ("base", "patched"), (load_scenario("dying-memcg"),),
                series=series)


def change_memcontrol(new_line: str) -> str:
    return f"""From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
From: Test <test@example.org>
Date: Thu, 1 Jan 1970 00:00:00 +0000
Subject: [PATCH] mm: memcontrol: fake change

---
 mm/memcontrol.c | 2 +-
 1 file changed, 1 insertion(+), 1 deletion(-)

diff --git a/mm/memcontrol.c b/mm/memcontrol.c
--- a/mm/memcontrol.c
+++ b/mm/memcontrol.c
@@ -1,2 +1,2 @@
 /* fake mm/memcontrol.c: a patch of the harness's tests changes this line */
-int memcg_charge = 1;
+{new_line}
--
2.39.5
"""


def session(plan: Plan, cache: Path, run: Path) -> Session:
    return Session(plan, cache, run, Quiet())


def test_a_rerun_finds_the_kernel_by_the_key_the_build_stored_it_under_and_runs_no_make(tmp_path):
    plan, cache = fake_plan(tmp_path), tmp_path / "cache"
    first = session(plan, cache, tmp_path / "run1")
    built = first.kernel(BASE)
    assert (built.cached, built.objects) == (False, 1) and built.image.read_bytes().startswith(b"CONFIG_")
    again = session(plan, cache, tmp_path / "run2")
    found = again.kernel(BASE)
    assert (found.cached, found.key, found.image) == (True, built.key, built.image)
    (record,) = again.records()
    assert (record.build_cached, record.objects_compiled, record.kernel_key) == (True, 0, built.key)
    assert "reused from the cache" in (tmp_path / "run2/x86_64-base/build.log").read_text()


def test_a_builds_progress_names_its_kernel_to_the_last_line(tmp_path):
    import io

    from harness.core.progress import Progress
    out = io.StringIO()
    Session(fake_plan(tmp_path), tmp_path / "cache", tmp_path / "run", Progress(out, live=False)).kernel(BASE)
    builds = [line.split("] ", 1)[1] for line in out.getvalue().splitlines() if "] build " in line]
    assert builds and all(b.startswith("build x86_64/base") for b in builds), builds
    assert builds[-1].startswith("build x86_64/base: done in "), builds


def test_the_run_directory_has_the_config_and_the_record_says_where_vmlinux_and_each_log_are(tmp_path):
    plan, cache = fake_plan(tmp_path), tmp_path / "cache"
    s = session(plan, cache, tmp_path / "run")
    built = s.kernel(BASE)
    (record,) = s.records()
    kernel_dir = Path(record.kernel_dir)
    assert kernel_dir == built.image.parent
    assert (kernel_dir / "vmlinux").read_text() == "fake vmlinux\n"      # for decode_stacktrace.sh
    assert (kernel_dir / "System.map").is_file()
    assert (tmp_path / "run/x86_64-base/kernel.config").read_text() == built.config.read_text()
    assert record.logs == {"build.log": "x86_64-base/build.log", "kernel.config": "x86_64-base/kernel.config"}


ADD_DOC = """From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
From: Test <test@example.org>
Date: Thu, 1 Jan 1970 00:00:00 +0000
Subject: [PATCH] Documentation: a note

---
 Documentation/note.txt | 1 +
 1 file changed, 1 insertion(+)
 create mode 100644 Documentation/note.txt

diff --git a/Documentation/note.txt b/Documentation/note.txt
new file mode 100644
--- /dev/null
+++ b/Documentation/note.txt
@@ -0,0 +1 @@
+nothing that is built
--
2.39.5
"""


def test_a_patched_kernel_with_the_bases_very_image_is_no_change_and_never_booted(tmp_path):
    from harness.verdict.kinds import NO_CHANGE, result_verdict
    from harness.verdict.table import passed, rows
    plan = fake_plan(tmp_path, ADD_DOC)
    s = session(plan, tmp_path / "cache", tmp_path / "run")
    base, patched = s.kernel(BASE), s.kernel(PATCHED)
    assert base.key != patched.key and base.image.read_bytes() == patched.image.read_bytes()
    result = s.run_scenario(PATCHED, plan.scenarios[0])   # the fake image could not boot
    assert result.unchanged and result_verdict(result) == NO_CHANGE and result.error is None
    assert not (tmp_path / "run" / "x86_64-patched" / "console.log").exists()
    records = {r.variant: r for r in s.records()}
    assert records["base"].image_sha256 == records["patched"].image_sha256
    booted_base = replace(result, variant="base", unchanged=False, held=True,
                          metrics={"before": 1, "after": 501, "delta": 500})
    (row,) = rows([replace(records["base"], scenarios=(booted_base,)), records["patched"]])
    assert row.verdict == NO_CHANGE and not passed([row])
    assert row.cell(row.patched) == "same image as base"
    assert "byte-identical to the base's" in row.notes()[0]


def test_base_and_patched_kernels_have_keys_of_their_own(tmp_path):
    plan = fake_plan(tmp_path, change_memcontrol("int memcg_charge = 2;"))
    s = session(plan, tmp_path / "cache", tmp_path / "run")
    base, patched = s.kernel(BASE), s.kernel(PATCHED)
    assert base.key != patched.key and base.config_sha256 == patched.config_sha256
    assert b"memcg_charge = 2" in patched.image.read_bytes()
    assert b"memcg_charge = 2" not in base.image.read_bytes()


@pytest.mark.parametrize("change", [
    {"kconfig": ("guest.config", "memcg.config", "memcg-5.x.config", "debug-x86_64.config")},
    {"make_flags": ("WERROR=0",)},
], ids=["fragment", "make-flag"])
def test_a_changed_fragment_or_make_flag_is_a_new_kernel(tmp_path, change):
    cache = tmp_path / "cache"
    before = session(fake_plan(tmp_path), cache, tmp_path / "run1").kernel(BASE)
    after = session(fake_plan(tmp_path, **change), cache, tmp_path / "run2").kernel(BASE)
    assert not after.cached and after.key != before.key


def test_a_build_error_is_an_error_quoting_it_and_leaves_no_kernel(tmp_path):
    plan = fake_plan(tmp_path, change_memcontrol("#error broken by the patch"))
    from harness.verdict.kinds import result_verdict
    cache = tmp_path / "cache"
    s = session(plan, cache, tmp_path / "run")
    result = s.run_scenario(PATCHED, plan.scenarios[0])
    assert result_verdict(result) == "ERROR"
    assert result.error.startswith("build: make failed (exit 2): ") and "mm/memcontrol.c:2:#error" in result.error
    assert s.records()[0].error == result.error
    assert not any((cache / "kernels").glob("*/image")), "a failed build left a kernel"


def test_a_build_that_hangs_silently_times_out_and_leaves_no_process(tmp_path, monkeypatch):
    monkeypatch.setattr(kbuild, "BUILD_TIMEOUT", 2.0)
    monkeypatch.setenv("FAKELINUX_HANG", "60")
    s = session(fake_plan(tmp_path), tmp_path / "cache", tmp_path / "run")
    start = time.monotonic()
    with pytest.raises(HarnessError) as e:
        s.kernel(BASE)
    assert time.monotonic() - start < 20
    assert (e.value.stage, e.value.message) == ("build", "make exceeded 2 s")
    leftover = subprocess.run(["pgrep", "-f", "sleep 60"], capture_output=True, text=True).stdout.split()
    assert [p for p in leftover if int(p) != os.getpid()] == []


def test_a_failure_is_remembered_not_retried(tmp_path):
    plan = fake_plan(tmp_path, change_memcontrol("#error broken by the patch"))
    s = session(plan, tmp_path / "cache", tmp_path / "run")
    with pytest.raises(HarnessError) as first:
        s.kernel(PATCHED)
    with pytest.raises(HarnessError) as second:
        s.kernel(PATCHED)
    assert second.value is first.value


def test_check_series_builds_every_prefix_per_profile_and_checkpatches_every_patch(tmp_path):
    """The matrix `make check-series` runs on the real series, here on the fake tree: a build
    per (profile, prefix), the first broken prefix named, checkpatch.pl of the tree per patch."""
    from harness.run.checkseries import check_series, series_matrix

    plan = fake_plan(tmp_path, change_memcontrol("int memcg_charge = 2;"))
    patches = tmp_path / "patches"
    second = change_memcontrol("#error broken by patch 2").replace(
        "-int memcg_charge = 1;", "-int memcg_charge = 2;").replace("fake change", "break it")
    (patches / "0002-mm-memcontrol-break-it.patch").write_text(second)
    plan = replace(plan, series=load_patch_dir(patches))
    builds, checkpatch = check_series(plan, ("default", "no-memcg-kmem"), tmp_path / "cache",
                                      tmp_path / "run", Quiet())
    assert [(b.profile, b.patch, b.ok) for b in builds] == [
        ("default", 1, True), ("default", 2, False), ("no-memcg-kmem", 1, True), ("no-memcg-kmem", 2, False)]
    assert "mm/memcontrol.c:2:#error" in builds[1].error
    assert [(c.patch, c.errors, c.warnings) for c in checkpatch] == [
        ("0001-mm-memcontrol-fake.patch", 0, 1), ("0002-mm-memcontrol-break-it.patch", 0, 1)]
    matrix = series_matrix(builds, checkpatch).splitlines()
    assert matrix[0].split() == ["patch", "x86_64/default", "x86_64/no-memcg-kmem", "checkpatch", "(E/W/C)"]
    assert matrix[2].split()[1::2][:2] == ["FAIL", "FAIL"]


def test_a_kernel_build_waits_for_another_one_on_the_machine_and_says_so(tmp_path, monkeypatch):
    import fcntl
    import threading

    from harness.core.cache import machine_lock
    lock = tmp_path / "build.lock"
    said = []
    with open(lock, "a") as other:   # another kharness's build, in another process's place
        fcntl.flock(other, fcntl.LOCK_EX)
        got = threading.Event()

        def build():
            with machine_lock(lock, lambda who: said.append(f"waiting for {who}")):
                got.set()
                with machine_lock(lock):   # nested in the same process: passes through
                    pass

        t = threading.Thread(target=build)
        t.start()
        assert not got.wait(0.5) and len(said) == 1, said
        assert said[0].startswith(f"waiting for pid {os.getpid()} ("), said   # who holds it
        fcntl.flock(other, fcntl.LOCK_UN)
        t.join(10)
    assert got.is_set()


def test_kernels_exported_by_one_machine_are_imported_verified_and_found_without_make(tmp_path):
    from harness.output.store import export_kernels, import_kernels
    plan = fake_plan(tmp_path, change_memcontrol("int memcg_charge = 2;"))
    builder = session(plan, tmp_path / "builder-cache", tmp_path / "run1")
    built = {k: builder.kernel(k) for k in (BASE, PATCHED)}
    lines = export_kernels(builder.records(), tmp_path / "builder-cache", tmp_path / "artifact")
    assert len(lines) == 2
    # a damaged artifact: refused, and nothing of it enters the cache
    broken = tmp_path / "broken"
    shutil.copytree(tmp_path / "artifact", broken)
    (broken / built[BASE].key / "image").write_bytes(b"not the image")
    with pytest.raises(HarnessError, match=r"image: missing or not the file its manifest names"):
        import_kernels(broken, tmp_path / "booter-cache")
    assert not (tmp_path / "booter-cache" / "kernels" / built[BASE].key).exists()
    assert len(import_kernels(tmp_path / "artifact", tmp_path / "booter-cache")) == 2
    booter = session(plan, tmp_path / "booter-cache", tmp_path / "run2")
    for k, b in built.items():
        found = booter.kernel(k)
        assert found.cached and found.key == b.key and found.image.read_bytes() == b.image.read_bytes()
    assert all(r.build_cached and r.objects_compiled == 0 for r in booter.records())   # no make ran


def test_selftest_runs_of_several_boots_add_up_and_a_missing_test_failed():
    from harness.verdict.repeat import combine_selftests
    from harness.verdict.repeat import with_runs as _with_runs
    from harness.verdict.results import ScenarioResult

    def st(runs, error=None):
        from harness.verdict.repeat import summarize_runs
        return ScenarioResult(arch="x86_64", variant="patched", scenario="cgroup-selftests", iterations=2,
                              expectation="", kind="selftests", held=True, tests=summarize_runs(runs),
                              test_runs=runs, error=error)
    both = combine_selftests([st({"k:a": "pp", "k:b": "pf"}), st({"k:a": "fp"})])
    assert both.test_runs == {"k:a": "ppfp", "k:b": "pfff"} and both.iterations == 4
    assert both.tests == {"k:a": "flaky", "k:b": "flaky"}
    assert combine_selftests([st({"k:a": "pp"}), st({}, error="boot: no SSH")]).error == "boot 2 of 2: boot: no SSH"
    # a narrowed rerun adds to its programs' tests only
    old = st({"k:a": "pf", "c:x": "pp"})
    new = _with_runs(old, st({"k:a": "ppp"}), ("k",), 3)
    assert new.test_runs == {"k:a": "pfppp", "c:x": "pp"} and "k ran 3 more times" in new.notes[-1]
    assert _with_runs(old, st({}, error="ssh: gone"), ("k",), 3).error == "confirming k: ssh: gone"


def test_selftests_that_differ_by_chance_run_again_until_decided_or_the_cap(tmp_path):
    """Session.confirm_selftests: only the undecided programs run again, on both kernels,
    ``iterations`` runs at a time, until the difference is significant or ``confirm_runs``."""
    from harness.verdict.repeat import summarize_runs
    from harness.verdict.results import ScenarioResult
    scenario = replace(load_scenario("cgroup-selftests"), iterations=3, confirm_runs=9)
    plan = replace(fake_plan(tmp_path), scenarios=(scenario,))

    def st(variant, runs):
        return ScenarioResult(arch="x86_64", variant=variant, scenario=scenario.name, iterations=3,
                              expectation="", kind="selftests", held=True, tests=summarize_runs(runs),
                              test_runs=runs)
    s = Session(plan, tmp_path / "cache", tmp_path / "run", Quiet())
    s.run(BASE).add(st("base", {"test_kmem:basic": "ppp", "test_core:x": "ppp"}))
    s.run(PATCHED).add(st("patched", {"test_kmem:basic": "fpp", "test_core:x": "fff"}))
    asked = []

    def rerun(kid, narrowed, expectations, common, fresh=False, programs_of=None):
        asked.append((kid.variant, narrowed.selftests, narrowed.iterations, fresh))
        return st(kid.variant, {"test_kmem:basic": "ppp" if kid.variant == "base" else "fpf"})
    s._run_once = rerun
    s.confirm_selftests("x86_64", "default", scenario)
    # 1 of 3, then 3 of 6 on patched: p = 0.09, not yet; 5 of 9 with base 0 of 9: p = 0.015
    assert sorted(asked) == [("base", ("test_kmem",), 3, True)] * 2 + [("patched", ("test_kmem",), 3, True)] * 2
    base, patched = (s.run(k).result(scenario.name) for k in (BASE, PATCHED))
    assert patched.test_runs == {"test_kmem:basic": "fppfpffpf", "test_core:x": "fff"}
    assert base.test_runs["test_kmem:basic"] == "p" * 9
    from harness.verdict.table import rows
    (row,) = rows(s.records())
    assert row.verdict == "REGRESSED"
    assert any("test_kmem:basic: pass in all 9 runs on base, fail 5 of 9 runs on patched (p = 0.015), "
               "intermittent" in n for n in row.notes())


def test_a_timing_sensitive_guest_keeps_builds_off_the_machine_and_beside_its_peers(tmp_path):
    """machine_lock(shared=True): shared holders run together (two threads), an exclusive
    taker (a build) waits for them, and a shared taker waits for a build."""
    import threading

    from harness.core.cache import machine_lock
    lock = tmp_path / "build.lock"
    inside = threading.Barrier(2, timeout=5)

    def guest():
        with machine_lock(lock, shared=True):
            inside.wait()              # both guests hold it at once
            build_may_start.wait(5)
    build_may_start = threading.Event()
    guests = [threading.Thread(target=guest) for _ in range(2)]
    for g in guests:
        g.start()
    said, built = [], threading.Event()

    def build():
        with machine_lock(lock, lambda who: said.append("waiting")):
            built.set()
    b = threading.Thread(target=build)
    time.sleep(0.2)
    b.start()
    assert not built.wait(0.5) and said == ["waiting"]   # the build waits for the guests
    build_may_start.set()
    for t in (*guests, b):
        t.join(10)
    assert built.is_set()


def test_kconfig_gives_each_arch_s_verified_config_without_a_build(tmp_path):
    """kharness kconfig: tinyconfig + the plan's fragments, merged and checked as a build's
    are, cached under the same key; nothing compiled."""
    from harness.run.authoring import kconfig, values
    plan, cache = fake_plan(tmp_path), tmp_path / "cache"
    (configured,) = kconfig(session(plan, cache, tmp_path / "run"), "base", "default")
    assert configured.arch == "x86_64" and configured.config.is_relative_to(cache / "configs")
    assert [f.name for f in configured.fragments][-1] == "x86_64.config"
    assert values(configured.config, ["CONFIG_MEMCG", "BUG", "NO_SUCH"]) == {
        "CONFIG_MEMCG": "y", "BUG": "y", "NO_SUCH": "n"}
    assert not (cache / "kernels").exists()   # no make of an image


NEW_OBJECT = """From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
From: Test <test@example.org>
Date: Thu, 1 Jan 1970 00:00:00 +0000
Subject: [PATCH] mm: an object only an option builds

---
 mm/Makefile | 1 +
 mm/extra.c  | 4 ++++
 2 files changed, 5 insertions(+)

diff --git a/mm/Makefile b/mm/Makefile
new file mode 100644
--- /dev/null
+++ b/mm/Makefile
@@ -0,0 +1 @@
+obj-$(CONFIG_FAKE_EXTRA) += extra.o
diff --git a/mm/extra.c b/mm/extra.c
new file mode 100644
--- /dev/null
+++ b/mm/extra.c
@@ -0,0 +1,4 @@
+int extra;
+#ifdef CONFIG_MEMCG
+int extra_memcg;
+#endif
--
2.39.5
"""


def test_the_changes_a_patched_kernels_config_does_not_compile_are_named_with_their_option(tmp_path):
    plan, cache = fake_plan(tmp_path, NEW_OBJECT), tmp_path / "cache"
    s = session(replace(plan, kconfig_auto=False), cache, tmp_path / "run")
    s.kernel(PATCHED)
    assert s.run(PATCHED).record.not_built == (
        "mm/extra.c is not built: CONFIG_FAKE_EXTRA is off (its Makefile's obj-$(CONFIG_FAKE_EXTRA))",)
    s.kernel(KernelId("x86_64", "base"))
    assert s.run(KernelId("x86_64", "base")).record.not_built == ()


def test_the_option_that_builds_a_changed_object_is_turned_on_in_both_kernels(tmp_path):
    plan, cache = fake_plan(tmp_path, NEW_OBJECT), tmp_path / "cache"
    s = session(plan, cache, tmp_path / "run")
    base, patched = s.kernel(KernelId("x86_64", "base")), s.kernel(PATCHED)
    said = ("CONFIG_FAKE_EXTRA=y turned on in both kernels: mm/extra.c needs it",)
    assert s.run(PATCHED).record.not_built == said and s.run(KernelId("x86_64", "base")).record.not_built == said
    assert "CONFIG_FAKE_EXTRA=y" in base.config.read_text() and base.config.read_text() == patched.config.read_text()


def test_a_profile_that_runs_no_selftests_takes_no_collection_s_config(tmp_path, monkeypatch):
    """The debug profile runs no selftests: its kernels keep their .config (and cache key) when a
    collection's config changes, and take no option only the selftests wanted."""
    plan = replace(fake_plan(tmp_path), scenarios=(load_scenario("dying-memcg"), load_scenario("cgroup-selftests")),
                   profiles=("default", "debug"))
    s = session(plan, tmp_path / "cache", tmp_path / "run")
    fragment = tmp_path / "cgroup.config"
    monkeypatch.setattr(s, "tree_configs", lambda: {"cgroup-selftests": fragment})
    assert s.tree_fragments("default") == (str(fragment),)
    assert s.tree_fragments("debug") == ()


def recorded_run(tmp_path, monkeypatch, plan, jobs: int, build_s: float = 0.0, scenario_s=None) -> list[tuple]:
    """run_plan with a session that only records what it is asked, in order, from every thread:
    ("build", variant), ("start"/"end", scenario, variant), ("release", cmdline)."""
    import threading

    from harness.run import pipeline
    events, lock = [], threading.Lock()

    def record(*event):
        with lock:
            events.append(event)

    class RecordingSession:
        def __init__(self, plan, *args):
            self.plan, self.meta = plan, pipeline.RunMeta("0", None, ("default",), "", "")

        def workspace(self, *args):
            pass

        image = confirm_selftests = cancel = close = workspace

        def kernel(self, kid):
            time.sleep(build_s)   # a guest thread meanwhile runs what it may
            record("build", kid.variant)

        def run_scenario(self, kid, scenario):
            record("start", scenario.name, kid.variant)
            time.sleep((scenario_s or {}).get(scenario.name, 0.0))
            record("end", scenario.name, kid.variant)

        def release(self, kid, cmdline=None):
            record("release", cmdline)

        def records(self):
            return []
    monkeypatch.setattr(pipeline, "Session", RecordingSession)
    pipeline.run_plan(plan, tmp_path / "cache", tmp_path / "run", Quiet(), jobs=jobs)
    return events


def test_timing_sensitive_scenarios_are_queued_once_every_kernel_is_built(tmp_path, monkeypatch):
    """A quiet_host scenario waits for the builds: queued behind them, no guest thread sits
    idle on the build lock while another kernel's other scenarios could run."""
    rate, dying = replace(load_scenario("dying-memcg"), name="rate", quiet_host=True), load_scenario("dying-memcg")
    plan = replace(fake_plan(tmp_path), scenarios=(rate, dying))
    events = [e[1:] if e[0] == "start" else e
              for e in recorded_run(tmp_path, monkeypatch, plan, jobs=1, build_s=0.2) if e[0] in ("build", "start")]
    assert events[:2] == [("build", "base"), ("dying-memcg", "base")]   # beside the patched build
    last_build = events.index(("build", "patched"))
    assert {e for e in events[last_build + 1:]} == {("dying-memcg", "patched"), ("rate", "base"), ("rate", "patched")}


def test_a_kernels_quiet_scenarios_start_once_its_others_and_their_guests_are_done(tmp_path, monkeypatch):
    """With two guest threads and one kernel, its quiet_host scenarios ran beside its others,
    whose pass then stopped every guest of the kernel: a collection lost its guest while its
    programs went in (the tree's-tests bench, arm64 and riscv64, 2026-12-06)."""
    rate, dying = replace(load_scenario("dying-memcg"), name="rate", quiet_host=True), load_scenario("dying-memcg")
    plan = replace(fake_plan(tmp_path), scenarios=(rate, dying), variants=("base",))
    events = recorded_run(tmp_path, monkeypatch, plan, jobs=2, scenario_s={"dying-memcg": 0.3, "rate": 0.05})
    # the other pass ends (its last release: every guest of the kernel) before the quiet one starts
    assert events.index(("start", "rate", "base")) > events.index(("end", "dying-memcg", "base"))
    assert events.index(("start", "rate", "base")) > events.index(("release", None))
