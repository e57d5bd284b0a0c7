"""The benchmark's pure logic: figures, the objects a change reaches, and the targets."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("kharness_bench", ROOT / "bench" / "bench.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_a_figure_is_the_median_with_min_max_and_every_run():
    assert bench.summarize([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0,
                                                "runs": [3.0, 1.0, 2.0]}


def test_an_even_number_of_runs_takes_the_middle_two():
    assert bench.summarize([1, 2, 3, 10])["median"] == 2.5


def _cmd(tree: Path, target: str, source: str, deps: list[str]) -> str:
    lines = [f"cmd_{target} := ccache gcc -c -o {target} {tree / source}", "",
             f"source_{target} := {tree / source}", "", f"deps_{target} := \\"]
    lines += [f"  {d} \\" for d in deps] + ["", f"{target}: $(deps_{target})", "",
                                            f"$(deps_{target}):"]
    return "\n".join(lines) + "\n"


def test_objects_are_counted_when_their_source_or_a_header_changed(tmp_path):
    tree, build = tmp_path / "work", tmp_path / "build"
    (build / "mm").mkdir(parents=True)
    (build / "kernel").mkdir()
    header = tree / "include/linux/memcontrol.h"
    (build / "mm/.memcontrol.o.cmd").write_text(
        _cmd(tree, "mm/memcontrol.o", "mm/memcontrol.c", [str(tree / "include/linux/mm.h")]))
    (build / "mm/.slab.o.cmd").write_text(
        _cmd(tree, "mm/slab.o", "mm/slab.c", ["$(wildcard include/config/memcg.h)",
                                               str(tree / "include/linux/../linux/memcontrol.h")]))
    (build / "kernel/.fork.o.cmd").write_text(
        _cmd(tree, "kernel/fork.o", "kernel/fork.c", ["include/generated/autoconf.h"]))
    # not an object: a linker script's dependencies do not count
    (build / "kernel/.vmlinux.lds.cmd").write_text(
        _cmd(tree, "kernel/vmlinux.lds", "kernel/vmlinux.lds.S", [str(header)]))
    changed = {str(tree / "mm/memcontrol.c"), str(header)}
    assert bench.objects_depending(build, changed) == 2


def test_a_file_of_the_same_name_elsewhere_is_not_a_dependency(tmp_path):
    tree = tmp_path / "work"
    text = _cmd(tree, "arch/x86/mm/memcontrol.o", "arch/x86/mm/memcontrol.c", [])
    (tmp_path / ".memcontrol.o.cmd").write_text(text)
    assert bench.objects_depending(tmp_path, {str(tree / "mm/memcontrol.c")}) == 0


def test_cmd_paths_reads_source_and_every_continued_dependency_line():
    paths = bench.cmd_paths(_cmd(Path("/t"), "a.o", "a.c", ["/t/x.h", "$(wildcard include/config/y.h)"]))
    assert paths == {"a.o": ["/t/a.c", "/t/x.h"]}


def _fig(median: float) -> dict:
    return {"median": median, "min": median, "max": median, "runs": [median]}


def test_targets_compare_ratios_and_differences_of_medians():
    arches = {"x86_64": {"cold_harness_s": _fig(210), "cold_raw_s": _fig(200),
                         "warm_harness_s": _fig(4), "warm_raw_s": _fig(2),
                         "boot_ssh_s": _fig(3.0), "boot_raw_init_s": _fig(2.7),
                         "patched_ccache_misses": _fig(12), "patched_objects_depending": _fig(10)},
              "all": {"ab_rerun_s": _fig(45)}}
    got = {t["name"]: (t["value"], t["met"]) for t in bench.targets(arches, {"x86_64": "tcg"})}
    assert got == {"x86_64 cold build harness/raw": (1.05, True),
                   "x86_64 warm build harness/raw": (2.0, False),
                   "x86_64 boot-to-SSH minus raw boot-to-/init": (0.3, True),
                   "x86_64 boot-to-SSH median (tcg)": (3.0, False),
                   "x86_64 patched compiled / depending on changed files": (1.2, True),
                   "all cached A/B rerun, dying-memcg, end to end": (45, True)}


def test_the_boot_target_is_stricter_under_kvm():
    arches = {"x86_64": {"boot_ssh_s": _fig(2.0)}}
    assert bench.targets(arches, {"x86_64": "tcg"})[0]["met"]
    assert not bench.targets(arches, {"x86_64": "kvm"})[0]["met"]


def test_figures_not_measured_or_in_error_have_no_target():
    arches = {"x86_64": {"cold_harness_s": _fig(200), "cold_error": {"error": "build: failed"}}}
    assert bench.targets(arches, {}) == []
