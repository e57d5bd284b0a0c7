"""Kconfig verification: every option a fragment asks for must survive into the .config."""

from harness.arches import load_arch
from harness.kbuild import dropped_options, first_errors, fragment_paths, parse_config
from harness.pipeline import PROFILES, profile_fragments


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


def test_shipped_fragments_exist_for_every_arch_and_profile():
    for name in ("x86_64", "arm64"):
        arch = load_arch(name)
        for profile in PROFILES:
            paths = fragment_paths(arch, profile_fragments(profile, arch))
            assert all(p.is_file() for p in paths) and len(paths) == len(PROFILES[profile].fragments) + 1


def test_first_errors_quotes_compiler_errors():
    log = "  CC foo.o\nfoo.c:3:1: error: expected ';'\nmake[2]: *** [foo.o] Error 1\n  CC bar.o\n"
    assert first_errors(log).splitlines() == ["foo.c:3:1: error: expected ';'", "make[2]: *** [foo.o] Error 1"]


def test_debug_profile_caps_iterations_and_stretches_timeouts():
    from harness.config import load_scenario
    from harness.pipeline import for_profile
    seed = load_scenario("dying-memcg")
    assert for_profile(seed, "default") == seed
    debug = for_profile(seed, "debug")
    assert (debug.iterations, debug.timeout) == (100, seed.timeout * 4)
    selftests = load_scenario("cgroup-selftests")
    assert for_profile(selftests, "debug").iterations == selftests.iterations   # 3 runs stay 3
