"""Kconfig verification: every option a fragment asks for must survive into the .config."""

from harness.build.kbuild import dropped_options, first_errors, fragment_paths, parse_config
from harness.config import known, load_kernel
from harness.config.arches import load_arch
from harness.core.cache import cache_root
from harness.core.progress import Quiet
from harness.run.plan import Plan, make_plan


def test_parse_config_reads_values_and_not_set():
    cfg = parse_config("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"x\"\n# comment\n")
    assert cfg == {"CONFIG_A": "y", "CONFIG_B": "n", "CONFIG_C": '"x"'}


def test_option_silently_dropped_is_reported():
    # tinyconfig's SLOB drops MEMCG_KMEM on 5.10: exactly the kind of loss to catch.
    requested = parse_config("CONFIG_MEMCG_KMEM=y\n# CONFIG_SLOB is not set\nCONFIG_SLUB=y\n")
    final = parse_config("CONFIG_SLOB=y\n")
    assert dropped_options(requested, final) == [
        "CONFIG_MEMCG_KMEM=y (got not set)", "CONFIG_SLOB=n (got y)", "CONFIG_SLUB=y (got not set)"]


def test_all_options_kept_means_nothing_dropped():
    requested = parse_config("CONFIG_A=y\n# CONFIG_B is not set\n")
    assert dropped_options(requested, parse_config("CONFIG_A=y\nCONFIG_C=y\n")) == []


def test_shipped_fragments_exist_for_every_kernel_arch_and_profile():
    for kernel in map(load_kernel, known("kernels")):
        plan = Plan(kernel, (), (), (), tuple(kernel.profiles))
        for name in ("x86_64", "arm64"):
            arch = load_arch(name)
            for profile in kernel.profiles:
                paths = fragment_paths(arch, plan.fragments(arch, profile))
                assert all(p.is_file() for p in paths) and paths[-1].name == f"{name}.config"


def test_5_10_fragments_merge_in_this_order():
    plan = Plan(load_kernel("linux-5.10"), (), (), (), ("default", "debug", "no-memcg-kmem"))
    arm64 = load_arch("arm64")
    base = ("guest.config", "memcg.config", "memcg-5.x.config", "selftests.config")
    assert plan.fragments(arm64, "default") == base
    assert plan.fragments(arm64, "debug") == (*base, "debug.config", "debug-arm64-5.10.config")
    assert plan.fragments(load_arch("x86_64"), "debug")[-1] == "debug-x86_64.config"
    assert plan.fragments(arm64, "no-memcg-kmem")[-1] == "no-memcg-kmem-5.x.config"


def test_every_profile_turns_bug_and_kallsyms_on():
    # tinyconfig leaves CONFIG_BUG off: WARN() would print nothing, BUG() spin silently.
    for kernel in map(load_kernel, known("kernels")):
        plan = Plan(kernel, (), (), (), tuple(kernel.profiles))
        for arch in map(load_arch, ("x86_64", "arm64")):
            for profile in kernel.profiles:
                requested = {}
                for p in fragment_paths(arch, plan.fragments(arch, profile)):
                    requested.update(parse_config(p.read_text()))
                assert requested.get("CONFIG_BUG") == "y", (kernel.name, profile, arch.name)
                assert requested.get("CONFIG_KALLSYMS") == "y", (kernel.name, profile, arch.name)


def test_first_errors_quotes_compiler_errors():
    log = "  CC foo.o\nfoo.c:3:1: error: expected ';'\nmake[2]: *** [foo.o] Error 1\n  CC bar.o\n"
    assert first_errors(log).splitlines() == ["foo.c:3:1: error: expected ';'", "make[2]: *** [foo.o] Error 1"]


def test_debug_profile_caps_iterations_and_stretches_timeouts_and_settling():
    from harness.config import load_scenario
    plan = make_plan(kernel="linux-5.10", arches="x86_64", variants=("base",), profiles="all",
                     cache=cache_root(), progress=Quiet())
    seed = load_scenario("dying-memcg")
    assert plan.scenario_for(seed, "default") == seed
    debug = plan.scenario_for(seed, "debug")
    assert (debug.iterations, debug.timeout, debug.settle) == (100, seed.timeout * 4, seed.settle * 4)
    selftests = load_scenario("cgroup-selftests")
    assert plan.scenario_for(selftests, "debug").iterations == selftests.iterations   # 3 runs stay 3
    assert not plan.runs_on(selftests, "debug") and plan.runs_on(selftests, "default")
