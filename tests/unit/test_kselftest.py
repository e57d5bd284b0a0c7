"""The kselftest kind's logic: run_kselftest.sh's KTAP read run by run, collections as scenarios,
the tests a series' paths call for (configs/tests.yaml, MAINTAINERS), and the options that build
a series' changed code. The real thing (a collection built from a tree, run in a guest, judged
base against patched) is tests/boot/test_trees_own_tests.py."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from harness.build.coverage import not_built, wanted, with_dependencies
from harness.build.kselftest import leave_out
from harness.build.kunit import boot_note, parse_kunit, suite_seconds, suites_of
from harness.config import load_scenario
from harness.config.tests import PathRule, SuiteMap, choose, load_tests, maintainers_rules
from harness.core.errors import ConfigError, HarnessError
from harness.guest.runner import parse_kselftest_runs
from harness.verdict.kinds import ERROR, REGRESSED, kind
from harness.verdict.results import ScenarioResult

RUN = """\
kharness-kselftest run {n}
TAP version 13
1..2
# timeout set to 45
# selftests: filesystems/mount-notify: mount-notify_test
# TAP version 13
# 1..3
# # Starting 3 tests from 1 test cases.
# ok 1 fanotify.bind
# {move} 2 fanotify.move
# ok 3 fanotify.rmdir # SKIP no mount namespace
# # Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0
{prog} 1 selftests: filesystems/mount-notify: mount-notify_test{exit}
# selftests: filesystems/mount-notify: slow_test
# not ok 1 ksm_tests -U # exit=127
not ok 2 selftests: filesystems/mount-notify: slow_test # TIMEOUT 45 seconds
kharness-kselftest run {n} exit 1
"""


def run(n: int, move_ok: bool = True) -> str:
    return RUN.format(n=n, move="ok" if move_ok else "not ok", prog="ok" if move_ok else "not ok",
                      exit="" if move_ok else " # exit=1")


def test_each_program_and_each_of_its_subtests_is_read_run_by_run():
    runs = parse_kselftest_runs(run(1) + run(2, move_ok=False), "kselftest.sh")
    assert runs == {"mount-notify_test:fanotify.bind": "pp", "mount-notify_test:fanotify.move": "pf",
                    "mount-notify_test:fanotify.rmdir": "ss", "mount-notify_test": "pf", "slow_test:ksm_tests -U": "ff",
                    "slow_test": "ff"}


def test_a_test_missing_from_a_run_failed_in_it_and_a_repeated_name_is_a_test_of_its_own():
    second = run(2).replace("# ok 1 fanotify.bind\n", "").replace("# ok 3 fanotify.rmdir # SKIP no mount namespace",
                                                                   "# ok 3 fanotify.rmdir\n# not ok 3 fanotify.rmdir")
    runs = parse_kselftest_runs(run(1) + second, "kselftest.sh")
    assert runs["mount-notify_test:fanotify.bind"] == "pf"
    # rmdir's line printed twice in run 2 alone: the repeat, in run 1, is what its namesake was
    assert runs["mount-notify_test:fanotify.rmdir"] == "sp" and runs["mount-notify_test:fanotify.rmdir#2"] == "sf"


def test_a_line_printed_twice_in_some_runs_only_is_no_regression():
    from harness.verdict.testruns import judge_tests
    twice = run(2).replace("# ok 1 fanotify.bind\n", "# ok 1 fanotify.bind\n# ok 1 fanotify.bind\n")
    base = parse_kselftest_runs(run(1) + twice, "s")
    patched = parse_kselftest_runs(run(1) + run(2), "s")
    assert base["mount-notify_test:fanotify.bind#2"] == "pp"
    from harness.verdict.repeat import summarize_runs
    judged = judge_tests(*(replace(_result(v, {}), tests=summarize_runs(r), test_runs=r)
                           for v, r in (("base", base), ("patched", patched))))
    assert {j.verdict for j in judged} == {"same"}, [j.words for j in judged if j.verdict != "same"]


def test_two_subtests_of_one_name_are_each_compared_never_merged():
    # base: the first fails, the second passes; patched: the other way round. Merged by name,
    # both kernels would show one failing test and hide that the second one broke.
    from harness.verdict.testruns import judge_test
    def program(first: str, second: str) -> str:
        return ("kharness-kselftest run 1\n1..1\n# selftests: mm: t\n"
                f"# {first} 1 mmap\n# {second} 2 mmap\nnot ok 1 selftests: mm: t # exit=1\n"
                "kharness-kselftest run 1 exit 1\n")
    base, patched = parse_kselftest_runs(program("not ok", "ok"), "s"), parse_kselftest_runs(program("ok", "not ok"), "s")
    assert (base["t:mmap"], base["t:mmap#2"], patched["t:mmap"], patched["t:mmap#2"]) == ("f", "p", "p", "f")
    assert judge_test("t:mmap#2", base["t:mmap#2"], patched["t:mmap#2"]).verdict == "regressed"


def test_skips_are_skips_each_under_its_own_name():
    # 5.10's test_core: ksft_test_result_skip() prints what it skipped after "# SKIP"
    out = ("kharness-kselftest run 1\n1..1\n# selftests: cgroup: test_core\n"
           "# ok 1 test_cgcore_internal_process_constraint\n"
           "# ok 2 # SKIP test_cgcore_no_internal_process_constraint_on_threads\n"
           "# ok 3 # SKIP test_cgcore_threads\n# not ok 4 test_cgcore_lesser_euid_open\n"
           "not ok 1 selftests: cgroup: test_core # exit=1\nkharness-kselftest run 1 exit 1\n")
    assert parse_kselftest_runs(out, "kselftest.sh") == {
        "test_core:test_cgcore_internal_process_constraint": "p",
        "test_core:test_cgcore_no_internal_process_constraint_on_threads": "s",
        "test_core:test_cgcore_threads": "s", "test_core:test_cgcore_lesser_euid_open": "f", "test_core": "f"}


NESTED = """\
kharness-kselftest run 1
1..2
# selftests: mm: ksft_cow.sh
# # running ./cow
# # TAP version 13
# # 1..2
# # # [RUN] Basic COW after fork() ... with base page
# # ok 1 Basic COW after fork() ... with base page
# # not ok 2 Basic COW after fork() ... with swapped out base page
# # # Totals: pass:1 fail:1
# not ok 1 cow # exit=1
# # running ./gup_test
# # # TAP version 13
# # # ok 1 R/O pin
# # ok 1 pin test
# ok 2 gup_test -a
# ok 3 gup_test -b
not ok 1 selftests: mm: ksft_cow.sh # exit=1
# selftests: mm: ksft_hmm.sh
# # ok 1 orphan, its program killed before it named its parent
not ok 2 selftests: mm: ksft_hmm.sh # TIMEOUT 120 seconds
kharness-kselftest run 1 exit 1
"""


def test_nested_results_are_named_by_the_parent_line_that_follows_them():
    """KTAP nests a subtest's results before its parent's own line: mm's ksft_*.sh scripts run
    run_vmtests.sh, which runs each binary; a result whose parent never reported is dropped."""
    assert parse_kselftest_runs(NESTED, "kselftest.sh") == {
        "ksft_cow.sh:cow": "f", "ksft_cow.sh:cow:Basic COW after fork() ... with base page": "p",
        "ksft_cow.sh:cow:Basic COW after fork() ... with swapped out base page": "f",
        "ksft_cow.sh:gup_test -a": "p", "ksft_cow.sh:gup_test -a:pin test": "p",
        "ksft_cow.sh:gup_test -a:pin test:R/O pin": "p", "ksft_cow.sh:gup_test -b": "p",
        "ksft_cow.sh": "f", "ksft_hmm.sh": "f"}


def test_a_timeout_result_glued_to_a_tests_unterminated_line_is_read():
    # 7.x's runner prints "not ok ... # TIMEOUT" with no newline before it
    out = ("kharness-kselftest run 1\n1..1\n# selftests: cgroup: test_kmem\n# ok 1 test_kmem_basic\n"
           "# waiting fornot ok 1 selftests: cgroup: test_kmem # TIMEOUT 45 seconds\n"
           "kharness-kselftest run 1 exit 1\n")
    assert parse_kselftest_runs(out, "kselftest.sh") == {"test_kmem:test_kmem_basic": "p", "test_kmem": "f"}


@pytest.mark.parametrize("text, programs, message", [
    # the runner killed after its first program: the second never ran, on either kernel
    ("kharness-kselftest run 1\n1..2\n# selftests: cgroup: test_core\n# ok 1 a\n"
     "ok 1 selftests: cgroup: test_core\n# selftests: cgroup: test_kmem\nkharness-kselftest run 1 exit 137\n",
     (), "reported 1 of its 2 programs in run 1 (exit 137): the rest never ran"),
    ("kharness-kselftest run 1\n1..1\n# selftests: cgroup: test_core\n# ok 1 a\n"
     "ok 1 selftests: cgroup: test_core\n", (), "run 1 of run_kselftest.sh did not end"),
    ("kharness-kselftest run 1\n1..1\n# selftests: cgroup: test_core\n# ok 1 a\n"
     "ok 1 selftests: cgroup: test_core\nkharness-kselftest run 1 exit 0\n",
     ("test_core", "test_kmem"), "did not run test_kmem"),
    # a program the scenario names whose every test skipped: its setup failed, it compares nothing
    ("kharness-kselftest run 1\n1..1\n# selftests: cgroup: test_kmem\n# ok 1 # SKIP\n"
     "ok 1 selftests: cgroup: test_kmem # SKIP\nkharness-kselftest run 1 exit 0\n",
     ("test_kmem",), "test_kmem: no test passed in any run (0 fail, 2 skip)"),
])
def test_a_program_that_never_ran_or_passed_nothing_is_an_error(text, programs, message):
    with pytest.raises(HarnessError) as e:
        parse_kselftest_runs(text, "kselftest.sh", programs)
    assert message in e.value.message


def test_a_nameless_skip_is_named_by_its_number():
    out = ("kharness-kselftest run 1\n1..1\n# selftests: cgroup: test_core\n# ok 1 a\n# ok 2 # SKIP\n"
           "# ok 3 # SKIP\nok 1 selftests: cgroup: test_core\nkharness-kselftest run 1 exit 0\n")
    assert parse_kselftest_runs(out, "kselftest.sh") == {"test_core:a": "p", "test_core:#2": "s",
                                                         "test_core:#3": "s", "test_core": "p"}


def test_a_setup_or_wrappers_note_inside_the_runners_output_is_read():
    from harness.guest.runner import parse_notes
    out = "kharness-note no swap device\n# kharness-note test_kmem.bin wrote nothing for 60 s: killed 1\n"
    assert parse_notes(out) == ("no swap device", "test_kmem.bin wrote nothing for 60 s: killed 1")


def test_a_collections_setup_helpers_and_environment_come_from_tests_yaml_and_its_own_yaml_narrows_it():
    """cgroup's tests assume a disk, swap and nsdelegate: kselftest:cgroup and the
    cgroup-selftests row (four of its programs) get the collection's setup alike."""
    auto, row = load_scenario("kselftest:cgroup"), load_scenario("cgroup-selftests")
    for s in (auto, row):
        assert (s.kind, s.script, s.kselftest, s.setup, s.helpers) == (
            "kselftest", "kselftest.sh", "cgroup", "kselftest-cgroup.sh", ("ptyrun.c",))
        assert s.env["STALL"] == "60" and int(s.env["KSELFTEST_TIMEOUT"]) >= 300
        assert s.guest_path(s.setup).is_file()
    assert auto.selftests == () and row.selftests == ("test_core", "test_kmem", "test_memcontrol", "test_freezer")
    assert (row.timeout, row.iterations, row.measure) == (900, 3, ())
    fs = load_scenario("fsnotify-selftests")
    assert (fs.kselftest, fs.setup, fs.selftests_libs) == ("filesystems/mount-notify", "kselftest-in-memcg.sh",
                                                            ("libcap-dev",))


def test_a_rows_own_variables_are_added_to_its_collections(tmp_path):
    (path := tmp_path / "mine.yaml").write_text("name: mine\nkind: kselftest\nkselftest: cgroup\n"
                                                "env: {EXTRA: '1', STALL: '30'}\n")
    s = load_scenario(str(path))
    assert s.env == {**load_scenario("kselftest:cgroup").env, "EXTRA": "1", "STALL": "30"}
    assert s.setup == "kselftest-cgroup.sh" and s.guest_path(s.setup).is_file()


@pytest.mark.parametrize("text, message", [
    ("", "ran no kselftest"),
    ("kharness-kselftest run 1\n./run_kselftest.sh: Could not find list\nkharness-kselftest run 1 exit 1\n",
     "printed no KTAP plan in run 1 (exit 1)"),
    ("kharness-kselftest run 1\n1..0\nkharness-kselftest run 1 exit 0\n", "reported no test"),
])
def test_a_run_that_compares_nothing_is_an_error_never_a_verdict(text, message):
    with pytest.raises(HarnessError) as e:
        parse_kselftest_runs(text, "kselftest.sh")
    assert message in e.value.message


def test_a_collection_is_a_scenario_of_the_kselftest_kind_with_its_needs_from_tests_yaml():
    s = load_scenario("kselftest:filesystems/mount-notify")
    assert (s.name, s.kind, s.kselftest, s.script, s.measure) == (
        "kselftest-filesystems-mount-notify", "kselftest", "filesystems/mount-notify", "kselftest.sh", ())
    assert s.selftests_libs == ("libcap-dev",) and load_scenario("kselftest:cgroup").cmdline == "cgroup_no_v1=memory"
    assert load_scenario("kselftest:timers").timeout == load_tests().collections["timers"].timeout
    assert kind(s.kind).has_tests


@pytest.mark.parametrize("name", ["kselftest:", "kselftest:../etc", "kselftest:a b", "kselftest:/abs"])
def test_a_collection_name_that_is_no_directory_under_selftests_is_refused(name):
    with pytest.raises(ConfigError) as e:
        load_scenario(name)
    assert "expected kselftest:DIR" in str(e.value)


MAINTAINERS = """\
List of maintainers

FANOTIFY
M:\tJan Kara <jack@suse.cz>
F:\tfs/notify/fanotify/
F:\tinclude/uapi/linux/fanotify.h

MEMORY MANAGEMENT - GUP
F:\tmm/gup.c
F:\ttools/testing/selftests/mm/gup_test.c
F:\ttools/testing/selftests/mm/

PROC FILESYSTEM
F:\tfs/proc/
F:\tinclude/linux/proc_*.h
F:\ttools/testing/selftests/proc/
"""


def test_maintainers_sections_that_name_a_selftests_directory_map_their_other_paths_to_it():
    rules = maintainers_rules(MAINTAINERS)
    assert PathRule("mm/gup.c", ("kselftest:mm",), "MAINTAINERS: MEMORY MANAGEMENT - GUP") in rules
    assert {r.path for r in rules} == {"mm/gup.c", "fs/proc/", "include/linux/proc_*.h"}   # FANOTIFY names none


def test_the_tests_chosen_say_why_and_what_nothing_covers_is_said():
    config = SuiteMap(paths=(PathRule("fs/notify/", ("kselftest:filesystems/mount-notify",), "fanotify's tests"),))
    chosen, uncovered = choose(["fs/notify/fanotify/fanotify_user.c", "include/linux/proc_fs.h", "fs/namei.c",
                                "tools/testing/selftests/timers/posix_timers.c"], config, MAINTAINERS)
    assert chosen == {
        "kselftest:filesystems/mount-notify": ["fs/notify/fanotify/fanotify_user.c: fanotify's tests"],
        "kselftest:proc": ["include/linux/proc_fs.h: MAINTAINERS: PROC FILESYSTEM"],
        "kselftest:timers": ["tools/testing/selftests/timers/posix_timers.c: a test of this collection changed"]}
    assert uncovered == ["fs/namei.c"]


def test_a_series_own_selftests_run_with_the_collection_that_builds_them_and_a_new_one_is_said(tmp_path):
    import io
    from types import SimpleNamespace

    from harness.core.progress import Progress
    from harness.run.plan import chosen_tests
    for d in ("bpf", "timers"):
        (tmp_path / "tools/testing/selftests" / d).mkdir(parents=True)
        (tmp_path / "tools/testing/selftests" / d / "Makefile").write_text("all:\n")
    (tmp_path / "MAINTAINERS").write_text("")
    changed = ["tools/testing/selftests/bpf/progs/x.c", "tools/testing/selftests/kselftest_harness.h",
               "tools/testing/selftests/newthing/t.c", "tools/testing/selftests/timers/posix_timers.c"]
    out = io.StringIO()
    tests = chosen_tests(SimpleNamespace(changed_paths=lambda: changed), SimpleNamespace(name="k"), tmp_path,
                         tmp_path, Progress(out, live=False))
    assert tests == ["kselftest:timers", "kselftest:bpf"]   # bpf/progs is built by bpf's Makefile
    said = out.getvalue()
    assert "kselftest:newthing cannot be compared: k's base tree has no such collection" in said
    assert "nothing covers tools/testing/selftests/newthing/t.c" in said
    assert "nothing covers tools/testing/selftests/kselftest_harness.h" in said


def test_the_shipped_map_sends_fs_notify_to_the_fanotify_tests_and_mm_to_mm_and_the_memcg_scenarios():
    chosen, _ = choose(["fs/notify/fanotify/fanotify_user.c"], load_tests())
    assert list(chosen) == ["kselftest:filesystems/mount-notify"]
    chosen, _ = choose(["mm/memtest.c"], load_tests())
    assert list(chosen) == ["kselftest:mm", "dying-memcg", "kmem-charge", "kmem-pgtables", "kmem-pipes"]
    for test in (t for rule in load_tests().paths for t in rule.tests):
        load_scenario(test)   # every name in the map is a scenario or a collection


DIFF = """\
diff --git a/fs/notify/fanotify/fanotify_user.c b/fs/notify/fanotify/fanotify_user.c
--- a/fs/notify/fanotify/fanotify_user.c
+++ b/fs/notify/fanotify/fanotify_user.c
@@ -3,0 +4,3 @@
+#ifdef CONFIG_FANOTIFY_ACCESS_PERMISSIONS
+int taint;
+#endif
@@ -5,0 +9,1 @@
+int always;
diff --git a/mm/memtest.c b/mm/memtest.c
--- a/mm/memtest.c
+++ b/mm/memtest.c
@@ -1,0 +2,1 @@
+int warned;
"""
FILES = {
    "fs/notify/fanotify/fanotify_user.c": "a\nb\nc\n#ifdef CONFIG_FANOTIFY_ACCESS_PERMISSIONS\nint taint;\n#endif\nd\ne\nint always;\n",
    "fs/notify/fanotify/Makefile": "obj-$(CONFIG_FANOTIFY) += fanotify.o fanotify_user.o\n",
    "fs/notify/Makefile": "obj-y += fanotify/\n",
    "fs/Makefile": "obj-y += notify/\n",
    "mm/memtest.c": "a\nint warned;\n",
    "mm/Makefile": "obj-$(CONFIG_MEMTEST) += memtest.o\n",
}


def test_the_options_that_build_a_series_changed_code_are_asked_for_with_the_change_that_needs_them():
    config = {"CONFIG_FANOTIFY": "y"}
    assert wanted(FILES.get, DIFF, config) == {"CONFIG_FANOTIFY_ACCESS_PERMISSIONS": "fs/notify/fanotify/fanotify_user.c:4-6",
                                               "CONFIG_MEMTEST": "mm/memtest.c"}
    assert wanted(FILES.get, DIFF, {"CONFIG_FANOTIFY": "y", "CONFIG_FANOTIFY_ACCESS_PERMISSIONS": "y",
                                    "CONFIG_MEMTEST": "y"}) == {}


def test_an_option_brings_the_options_its_kconfig_depends_on_that_are_off():
    blocks = {"A": "config A\n\tbool \"a\"\n\tdepends on B && (C || D) && !E\n\tdepends on F=y",
              "B": "config B\n\tdepends on G # a comment\n", "C": "config C\n"}
    assert with_dependencies(["CONFIG_A"], blocks.get, {"CONFIG_G": "y"}) == ["CONFIG_A", "CONFIG_B", "CONFIG_C"]
    assert with_dependencies(["CONFIG_A"], blocks.get, {"CONFIG_B": "y", "CONFIG_C": "y"}) == ["CONFIG_A"]


def test_tests_that_did_not_build_are_left_out_of_the_list_the_guest_runs(tmp_path):
    (tmp_path / "mm").mkdir()
    for f in ("cow", "run_vmtests.sh"):
        (tmp_path / "mm" / f).write_text("#!/bin/sh\n")
    (tmp_path / "kselftest-list.txt").write_text("mm:cow\nmm:gup_test\nmm:run_vmtests.sh\n")
    assert leave_out(tmp_path) == (["mm:cow", "mm:run_vmtests.sh"], ["mm:gup_test"])
    assert (tmp_path / "kselftest-list.txt").read_text() == "mm:cow\nmm:run_vmtests.sh\n"


def _result(variant: str, tests: dict[str, str]) -> ScenarioResult:
    return ScenarioResult(arch="x86_64", variant=variant, scenario="kselftest-mm", kind="kselftest", held=True,
                          iterations=1, expectation="",
                          tests={t: {"p": "pass", "f": "fail", "s": "skip"}[v] for t, v in tests.items()},
                          test_runs=tests)


def test_a_test_that_fails_only_on_patched_is_regressed_and_what_fails_on_both_is_shown():
    base = _result("base", {"cow": "p", "gup_test": "f"})
    patched = _result("patched", {"cow": "f", "gup_test": "f"})
    k = kind("kselftest")
    assert k.pair_verdict(base, patched) == REGRESSED
    notes = k.notes("x86_64", base, patched, False)
    assert "x86_64: regressed cow: pass on base, fail on patched" in notes
    assert "x86_64: 1 fail on both kernels, not listed as known: gup_test" in notes


def test_a_collection_no_test_of_which_passes_on_the_base_is_an_error_and_one_patched_breaks_is_regressed():
    k = kind("kselftest")
    assert k.pair_verdict(_result("base", {"cow": "f"}), _result("patched", {"cow": "f"})) == ERROR
    assert k.pair_verdict(_result("base", {"cow": "p", "ksm": "s"}), _result("patched", {"cow": "f", "ksm": "f"})) == REGRESSED


def test_known_failures_are_named_as_known_and_an_entry_whose_test_passed_is_stale():
    base = replace(_result("base", {"ns": "f", "ns:bind": "f", "cow": "f", "ksm": "p"}), known_failures=("ns", "ksm"))
    patched = _result("patched", {"ns": "f", "ns:bind": "f", "cow": "f", "ksm": "p"})
    notes = kind("kselftest").notes("arm64", base, patched, True)
    assert notes == ["arm64: 2 fail on both kernels, known to fail on this base (its kernel config's known_failures): ns, ns:bind",
                     "arm64: 1 fail on both kernels, not listed as known: cow",
                     "arm64: ksm passed on the base: its known_failures entry may be stale"]


KUNIT_JSON = {"name": "KUnit Test Group", "test_cases": [], "sub_groups": [
    {"name": "example", "test_cases": [{"name": "example_simple_test", "status": "PASS"},
                                       {"name": "example_skip_test", "status": "SKIP"}],
     "sub_groups": [{"name": "example_params_test", "test_cases": [{"name": "example value 3", "status": "FAIL"}],
                     "sub_groups": []}]},
]}


def fake_kunit_py(tmp_path, result: dict) -> Path:
    """A stand-in for the tree's kunit.py parse: writes the JSON it is given (the real parser
    runs in tests/boot/test_trees_own_tests.py)."""
    tool = tmp_path / "kunit.py"
    tool.write_text("import json, sys\nout = sys.argv[2].split('=', 1)[1]\nsys.stdin.read()\n"
                    f"open(out, 'w').write(json.dumps({result!r}))\n")
    return tool


def test_kunit_results_are_read_from_the_trees_parser_suite_by_suite(tmp_path):
    assert parse_kunit(fake_kunit_py(tmp_path, KUNIT_JSON), "[ 1.0] KTAP version 1\n", "x86_64/base kunit") == {
        "example.example_simple_test": "p", "example.example_skip_test": "s",
        "example.example_params_test.example value 3": "f"}


def test_kunit_cases_of_one_name_stay_apart_and_a_parents_own_failure_is_kept(tmp_path):
    # as 7.2's kunit.py parse writes `not ok 1 size 4`, `ok 2 size 4` under `not ok 1 ptest`,
    # and a parameterized test whose cases pass but whose own line is `not ok` (its exit failed)
    result = {"name": "KUnit Test Group", "test_cases": [], "sub_groups": [
        {"name": "alpha", "test_cases": [], "misc": {"failed": 2, "crashed": 0, "errors": 0}, "sub_groups": [
            {"name": "ptest", "misc": {"failed": 1}, "sub_groups": [],
             "test_cases": [{"name": "size 4", "status": "FAIL"}, {"name": "size 4", "status": "PASS"}]},
            {"name": "qtest", "misc": {"failed": 1}, "sub_groups": [],
             "test_cases": [{"name": "a", "status": "PASS"}, {"name": "b", "status": "PASS"}]}]}]}
    assert parse_kunit(fake_kunit_py(tmp_path, result), "", "k") == {
        "alpha.ptest.size 4": "f", "alpha.ptest.size 4#2": "p", "alpha.qtest.a": "p", "alpha.qtest.b": "p",
        "alpha.qtest": "f"}


def test_a_kunit_test_that_crashed_or_a_log_without_results_is_an_error(tmp_path):
    crashed = {"name": "KUnit Test Group", "test_cases": [], "sub_groups": [
        {"name": "damon", "test_cases": [{"name": "damon_test_split", "status": "ERROR"}], "sub_groups": []}]}
    with pytest.raises(HarnessError) as e:
        parse_kunit(fake_kunit_py(tmp_path, crashed), "", "arm64/patched kunit-mm-damon-tests")
    assert e.value.message == "arm64/patched kunit-mm-damon-tests: KUnit test damon.damon_test_split crashed (its suite did not finish)"
    with pytest.raises(HarnessError) as e:
        parse_kunit(fake_kunit_py(tmp_path, {"name": "KUnit Test Group", "test_cases": [], "sub_groups": []}), "", "k")
    assert "no KUnit result in the kernel log" in e.value.message


def test_a_kunit_directory_is_a_scenario_whose_kunitconfig_goes_into_the_kernel():
    s = load_scenario("kunit:lib/kunit")
    assert (s.name, s.kind, s.kunit, s.tree_config, s.script) == (
        "kunit-lib-kunit", "kunit", "lib/kunit", "lib/kunit/.kunitconfig", "kunit.sh")
    assert load_scenario("kselftest:cgroup").tree_config == "tools/testing/selftests/cgroup/config"
    assert kind("kunit").has_tests


def test_each_kunit_suites_time_at_boot_comes_from_the_logs_timestamps():
    log = ("[    1.000000] KTAP version 1\n[    1.000100] 1..2\n[    1.100000]     KTAP version 1\n"
           "[    1.100000]     # Subtest: example\n[    1.200000]     ok 1 example_simple_test\n"
           "[    1.210000]         # Subtest: example_params_test\n[    1.220000]         ok 1 example value 3\n"
           "[    1.230000]     ok 2 example_params_test\n"   # a parameterized test: no suite
           "[    1.350000] ok 1 example\n[    1.400000]     # Subtest: time_test_cases\n"
           "[    3.400000] not ok 2 time_test_cases\n")
    assert suite_seconds(log) == {"example": 0.25, "time_test_cases": 2.0}


def test_a_hunk_that_brings_its_own_ifdef_is_not_built_when_its_option_is_off():
    diff = ("diff --git a/mm/memtest.c b/mm/memtest.c\n--- a/mm/memtest.c\n+++ b/mm/memtest.c\n"
            "@@ -1,0 +2,4 @@\n+#ifdef CONFIG_X86\n+\tWARN_ONCE(1, \"bad RAM\");\n+\tbad = 1;\n+#endif\n")
    files = {"mm/memtest.c": "a\n#ifdef CONFIG_X86\n\tWARN_ONCE(1, \"bad RAM\");\n\tbad = 1;\n#endif\nb\n",
             "mm/Makefile": "obj-$(CONFIG_MEMTEST) += memtest.o\n"}
    assert not_built(files.get, diff, {"CONFIG_MEMTEST": "y"}) == [
        "mm/memtest.c:2-5 is not built: under #ifdef CONFIG_X86, off in this .config"]
    assert not_built(files.get, diff, {"CONFIG_MEMTEST": "y", "CONFIG_X86": "y"}) == []


class _Tree:
    """A workspace's grep and show over a few files."""

    files = {"lib/kunit/kunit-example-test.c": 'static struct kunit_suite example_test_suite = {\n\t.name = "example",\n};\n'
                                               "kunit_test_suites(&example_test_suite);\n",
             "lib/kunit/helpers.c": 'static struct device_driver d = { .name = "not-a-suite" };\n',
             # a test's cases and the fake suites it builds have a .name too: not suites it registers
             "lib/kunit/executor_test.c": 'static struct kunit_case dummy[] = {\n\t{ .name = "test1" },\n};\n'
                                          'static struct kunit_suite executor_test_suite = {\n'
                                          '\t.name = "kunit_executor_test",\n\t.test_cases = cases,\n};\n'
                                          "kunit_test_suites(&executor_test_suite);\n"
                                          'static struct kunit_suite example_init_test_suite = {\n\t.name = "example_init",\n};\n'
                                          "kunit_test_init_section_suites(&example_init_test_suite);\n"}

    def grep(self, commit, pattern, path):
        return [p for p, text in self.files.items() if p.startswith(path) and re.search(pattern, text)]

    def show(self, commit, path):
        return self.files.get(path)


def test_a_kunit_row_judges_the_suites_its_directory_defines_and_says_their_time_at_boot():
    assert suites_of(_Tree(), "c0ffee", "lib/kunit") == ("example", "kunit_executor_test", "example_init")
    log = "[    1.0]     # Subtest: example\n[    1.5] ok 1 example\n[    2.0]     # Subtest: other\n[    9.0] ok 2 other\n"
    assert boot_note(log, ("example",)) == ("KUnit at boot: 1 suites in 0.50 s (slowest: example 0.50 s)",)


def test_a_programs_own_result_flaking_with_its_known_flaky_test_is_known_too():
    """test_kmem exits 1 in the runs its known-flaky test_kmem_memcg_deletion fails: the
    program's result is known with it; one that fails in a run where no known test did is not."""
    from dataclasses import replace as with_
    from harness.verdict.kinds import FLAKY, NO_REGRESSION
    known = ("test_kmem:test_kmem_memcg_deletion",)

    def result(variant, runs):
        runs = {"test_kmem:test_kmem_basic": "ppp", **runs}
        return with_(_result(variant, {t: v[0] for t, v in runs.items()}), known_flaky=known, test_runs=runs,
                     tests={t: "flaky" if len(set(v)) > 1 else {"p": "pass", "f": "fail"}[v[0]]
                            for t, v in runs.items()})
    k = kind("kselftest")
    base = result("base", {"test_kmem": "fpf", "test_kmem:test_kmem_memcg_deletion": "fpf"})
    patched = result("patched", {"test_kmem": "pff", "test_kmem:test_kmem_memcg_deletion": "pff"})
    assert k.pair_verdict(base, patched) == NO_REGRESSION
    unexplained = result("patched", {"test_kmem": "fff", "test_kmem:test_kmem_memcg_deletion": "pff"})
    assert k.pair_verdict(base, unexplained) in (FLAKY, REGRESSED)


def test_a_collection_is_keyed_by_what_its_build_reads_so_a_series_elsewhere_shares_the_base_s(tmp_path):
    """A collection's cache key is git's ids of what its build reads: `make headers`' inputs,
    tools/, the paths its files (and the files of tools/ they name) name outside tools/ and the
    targets of tools/' symlinks; the whole tree for one that names the tree's top (mm's test
    module, KDIR ?= ../../../..; timers' -I $(top_srcdir))."""
    import subprocess

    from harness.build.kselftest import READS, inputs, reads
    from harness.core.progress import Quiet
    from harness.series.workspace import Workspace
    from harness.sources.source import SourceTree
    tree = tmp_path / "linux-7.2.1"
    files = {"Makefile": "VERSION = 7\n", "fs/notify/group.c": "int g;\n", "mm/gup_test.h": "#define G 1\n",
             "include/uapi/linux/fanotify.h": "#define F 1\n", "include/linux/fsnotify.h": "int f;\n",
             "include/linux/pci_ids.h": "#define P 1\n", "Documentation/specs/a.yaml": "a: 1\n",
             "tools/testing/selftests/lib.mk": "top_srcdir = $(selfdir)/../../..\n",
             "tools/testing/selftests/plain/Makefile": "include ../lib.mk\n",
             "tools/testing/selftests/plain/t.c": 'int main(void) { return open("../cgroup.procs", 0); }\n',
             "tools/testing/selftests/named/Makefile": "$(OUTPUT)/g: $(top_srcdir)/mm/gup_test.h\ninclude ../lib.mk\n",
             "tools/testing/selftests/top/Makefile": "KDIR ?= $(realpath ../../../..)\ninclude ../lib.mk\n",
             "tools/testing/selftests/bare/Makefile": "CFLAGS += -I $(top_srcdir)\ninclude ../lib.mk\n",
             "tools/testing/selftests/other/spec.mk": "SPECS := $(top_srcdir)/Documentation/specs\n",
             "tools/testing/selftests/via/Makefile": "include ../other/spec.mk\ninclude ../lib.mk\n"}
    for path, text in files.items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_text(text)
    (tree / "tools/include/linux").mkdir(parents=True)
    (tree / "tools/include/linux/pci_ids.h").symlink_to("../../../include/linux/pci_ids.h")
    ws = Workspace(SourceTree(tree, "7.2.1", "path", str(tree), "f" * 64), tmp_path / "cache")
    base = ws.base(Quiet())
    link = "include/linux/pci_ids.h"   # tools/include/linux/pci_ids.h points to it
    assert reads(ws, base, "plain") == (*READS, link)
    assert reads(ws, base, "named") == (*READS, link, "mm/gup_test.h")
    assert reads(ws, base, "via") == (*READS, "Documentation/specs", link)
    assert reads(ws, base, "top") == reads(ws, base, "bare") == ("",)
    assert inputs(ws, base, "top") == ws.tree_id(base, "")

    def commit(path: str, text: str) -> str:
        (ws.work / path).write_text(text)
        git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
        subprocess.run([*git, "commit", "-qam", path], cwd=ws.work, check=True)
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ws.work, check=True, capture_output=True,
                              text=True).stdout.strip()
    before = {t: inputs(ws, base, t) for t in ("plain", "named", "via", "top")}
    elsewhere = commit("include/linux/fsnotify.h", "int f2;\n")   # and fs/, mm/'s .c: read by none
    after = {t: inputs(ws, elsewhere, t) for t in before}
    assert {t: after[t] == before[t] for t in before} == {"plain": True, "named": True, "via": True, "top": False}
    for path, changed in (("mm/gup_test.h", {"named"}), ("Documentation/specs/a.yaml", {"via"}),
                          ("include/linux/pci_ids.h", {"plain", "named", "via"}),
                          ("include/uapi/linux/fanotify.h", {"plain", "named", "via"}),
                          ("Makefile", {"plain", "named", "via"})):
        before, head = after, commit(path, "changed\n")
        after = {t: inputs(ws, head, t) for t in before}
        assert {t for t in before if t != "top" and after[t] != before[t]} == changed, path


def test_a_collection_run_on_one_kernel_alone_of_which_nothing_passed_is_an_error():
    from harness.verdict.table import Row
    failing = _result("patched", {"cow": "f", "ksm": "s"})
    row = Row("x86_64", "kselftest-mm", None, failing)
    assert row.verdict == ERROR and not row.ok
    assert "nothing shows its tests could run there" in " ".join(row.notes())
    ran = Row("x86_64", "kselftest-mm", None, _result("patched", {"cow": "p", "ksm": "f"}))
    assert ran.ok
