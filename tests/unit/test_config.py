"""Config files load into dataclasses, and bad ones fail in one line naming file and field."""

import re
from pathlib import Path

import pytest

from harness import REPO_ROOT
from harness.config import MEASURES, KernelConfig, ScenarioConfig, load, load_kernel, load_scenario
from harness.config.arches import all_arches, load_arch
from harness.core.errors import ConfigError, HarnessError
from harness.verdict.kinds import expectations


def write(tmp_path: Path, kind: str, name: str, text: str) -> Path:
    d = tmp_path / kind
    d.mkdir(parents=True, exist_ok=True)
    p = d / f"{name}.yaml"
    p.write_text(text)
    return p


def test_every_shipped_arch_loads():
    assert {"x86_64", "arm64"} <= set(all_arches())
    for name in all_arches():
        arch = load_arch(name)
        assert arch.name == name and arch.qemu.startswith("qemu-system-")


def test_shipped_kernel_and_scenario_load():
    kernel = load_kernel("linux-5.10")
    assert kernel.version == "5.10" and kernel.sources
    scenario = load_scenario("dying-memcg")
    assert scenario.iterations == 500 and scenario.marker == "dying_memcg"


def test_a_scenarios_signature_is_the_bounds_only_fixed_has():
    """The metric that tells the bug (pinned), not the ones both sides bound alike (kept)."""
    assert load_scenario("kmem-pgtables").signature == ("pinned",)
    assert load_scenario("dying-memcg").signature == ("delta",)


def test_unknown_field_is_named_with_its_file(tmp_path):
    p = write(tmp_path, "kernels", "k", "name: k\nversion: '5.10'\nsources: []\nflavour: x\n")
    with pytest.raises(ConfigError) as e:
        load(KernelConfig, p)
    assert str(p) in str(e.value) and "flavour" in str(e.value) and "unknown field" in str(e.value)


def test_wrong_type_names_field_and_expected_type(tmp_path):
    p = write(tmp_path, "scenarios", "s", "name: s\nscript: dying-memcg.sh\niterations: many\n")
    with pytest.raises(ConfigError, match=r"iterations: expected an integer, got 'many'"):
        load(ScenarioConfig, p)


def test_missing_field_is_reported(tmp_path):
    p = write(tmp_path, "kernels", "k", "name: k\nsources: []\n")
    with pytest.raises(ConfigError, match=r"version: missing"):
        load(KernelConfig, p)


def test_malformed_yaml_names_the_line(tmp_path):
    p = write(tmp_path, "kernels", "k", "name: k\nversion: [unclosed\n")
    with pytest.raises(ConfigError, match=r"line \d+: invalid YAML"):
        load(KernelConfig, p)


def test_source_without_its_required_field_is_refused(tmp_path):
    p = write(tmp_path, "kernels", "k", "name: k\nversion: '5.10'\nsources:\n  - {type: url, url: http://x/}\n")
    with pytest.raises(ConfigError, match=r"sources\[0\]\.sha256: missing"):
        load(KernelConfig, p)


def test_unknown_source_type_is_refused(tmp_path):
    p = write(tmp_path, "kernels", "k", "name: k\nversion: '5.10'\nsources:\n  - {type: ftp}\n")
    with pytest.raises(ConfigError, match=r"sources\[0\]\.type: unknown source type 'ftp'"):
        load(KernelConfig, p)


def test_bad_sha256_is_refused(tmp_path):
    p = write(tmp_path, "kernels", "k",
              "name: k\nversion: '5.10'\nsources:\n  - {type: url, url: 'http://x/', sha256: abc}\n")
    with pytest.raises(ConfigError, match=r"sha256: expected 64 lowercase hex digits"):
        load(KernelConfig, p)


def test_unknown_arch_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown arch .*known: .*arm64.*x86_64"):
        load_arch("riscv128")


def test_bad_arch_file_gives_a_clear_error(tmp_path):
    write(tmp_path, "arches", "toy", (Path(__file__).parents[2] / "configs/arches/arm64.yaml")
          .read_text().replace("name: arm64", "name: toy").replace("accel: [kvm, tcg]", "accel: [hvf]"))
    with pytest.raises(ConfigError, match=r"toy.yaml: accel: expected a list of kvm, tcg"):
        load_arch("toy", config_dir=tmp_path)


def test_arch_file_name_must_match_its_name(tmp_path):
    write(tmp_path, "arches", "toy", (Path(__file__).parents[2] / "configs/arches/arm64.yaml").read_text())
    with pytest.raises(ConfigError, match=r"name: expected 'toy'"):
        load_arch("toy", config_dir=tmp_path)


def test_scenario_with_a_missing_script_is_refused(tmp_path):
    p = write(tmp_path, "scenarios", "s", "name: s\nscript: no-such-script.sh\n")
    with pytest.raises(ConfigError, match=r"script: no such guest script"):
        load(ScenarioConfig, p)


def test_expectation_needs_exactly_one_bound(tmp_path):
    p = write(tmp_path, "scenarios", "s",
              "name: s\nscript: dying-memcg.sh\nreproduced: [{min: 1}]\nfixed: [{max: 5, min_fraction: 0.9}]\n")
    with pytest.raises(ConfigError, match=r"fixed\[0\]: expected exactly one of"):
        load(ScenarioConfig, p)


@pytest.mark.parametrize("body,message", [
    ("kind: fix\nreproduced: [{min: 1}]\n", r"fixed: missing \(required for a fix scenario\)"),
    ("kind: invariant\n", r"holds: missing \(required for a invariant scenario\)"),
    ("kind: sometimes\n", r"kind: expected one of fix, invariant, kselftest"),
    ("kind: invariant\nholds: [{metric: pinned, max: 0}]\n", r"holds\[0\].metric: 'pinned' is not declared"),
    ("kind: invariant\nholds: [{max: 0}]\nshow: [pinned]\n", r"show: 'pinned' is not declared"),
    ("kind: invariant\nholds: [{max: 0}]\nhelpers: [dying-memcg.sh]\n", r"helpers: expected a C source"),
    ("kind: invariant\nholds: [{max: 0}]\nhelpers: [../x.c]\n", r"helpers: expected a file under guest-scripts/"),
    ("kind: kselftest\nkselftest: cgroup\nselftests: [../../bin/sh]\n", r"selftests: expected a program name"),
    ("kind: kselftest\nkselftest: cgroup\nsetup: ../x.sh\n", r"setup: expected a file under guest-scripts/"),
    ("kind: kselftest\nkselftest: cgroup\nsetup: nosuch.sh\n", r"setup: no such guest script: nosuch.sh"),
    ("kind: selftests\nselftests: [t]\n", r"kind: expected one of fix, invariant, kselftest, kunit, got 'selftests'"),
    ("kind: kselftest\nkselftest: cgroup\nselftests_libs: [libcap2]\n", r"selftests_libs: expected a Debian -dev"),
    ("kind: kselftest\nkselftest: cgroup\nsince: v6.15\n", r"since: expected a release such as 6.15, got 'v6.15'"),
    ("kind: invariant\nholds: [{max: 0}]\nhierarchy: v3\n", r"hierarchy: expected v1 or v2"),
    ("kind: invariant\nholds: [{max: 0}]\nguest: reused\n", r"guest: expected own or shared, got 'reused'"),
    ("kind: invariant\nholds: [{max: 0}]\nmeasure: [slab]\n", r"measure: expected one of cgroups, got 'slab'"),
    ("kind: invariant\nholds: [{max: 0}]\nmeasure: [cgroups, cgroups]\n", r"measure: a measure named twice"),
    ("kind: invariant\nholds: [{max: 0}]\nmetrics: [after]\n", r"metrics: a metric of the harness's measures"),
    # nothing measured around the script: delta is no metric of it
    ("kind: invariant\nholds: [{max: 0}]\nmeasure: []\n", r"holds\[0\].metric: 'delta' is not declared"),
])
def test_scenario_fields_are_checked(tmp_path, body, message):
    p = write(tmp_path, "scenarios", "s", "name: s\nscript: dying-memcg.sh\n" + body)
    with pytest.raises(ConfigError, match=message):
        load(ScenarioConfig, p)


def test_what_is_measured_around_a_script_is_the_scenarios_to_say(tmp_path):
    """cgroups (before, after, delta) by default; a scenario that measures nothing itself is
    judged and shown by its script's metrics alone."""
    from harness.guest.measures import MEASURE_KINDS
    assert set(MEASURE_KINDS) == set(MEASURES)
    default = load(ScenarioConfig, write(tmp_path, "scenarios", "d", "name: d\nscript: dying-memcg.sh\n"
                                         "kind: invariant\nholds: [{max: 0}]\n"))
    assert default.measure == ("cgroups",) and default.measured == ("before", "after", "delta")
    assert default.shown == ("delta",)
    alone = load(ScenarioConfig, write(tmp_path, "scenarios", "a", "name: a\nscript: dying-memcg.sh\n"
                                       "kind: invariant\nmeasure: []\nmetrics: [pinned]\n"
                                       "holds: [{metric: pinned, max: 0}]\n"))
    assert alone.measured == () and alone.shown == ("pinned",)


def test_a_name_given_twice_on_the_command_line_is_planned_once():
    from harness.run.plan import names
    assert names("x86_64,arm64,x86_64,", ["arm64", "x86_64"], "arch") == ["x86_64", "arm64"]


KERNEL = ("name: k\nversion: '5.10'\nsources: [{type: path, path: /nonexistent}]\n"
          "kconfig: [guest.config]\n")


@pytest.mark.parametrize("body, message", [
    ("kconfig: [guest.config, nosuch.config]\nprofiles: {default: {}}\n",
     r"k.yaml: kconfig: no such kconfig fragment: configs/kconfig/nosuch.config"),
    ("profiles: {debug: {}}\n", r"profiles: expected the default profile among them"),
    ("profiles: {default: {}, fast: {}}\n", r"profiles.fast: unknown profile 'fast' \(known: "),
    ("profiles: {default: {}, debug: {arch_kconfig: {arm64: [nosuch.config]}}}\n",
     r"profiles.debug.arch_kconfig.arm64: no such kconfig fragment"),
    ("profiles: {default: {}}\ncheck_profiles: [debug]\n",
     r"check_profiles: 'debug' is not among this kernel's profiles \(default\)"),
])
def test_kernel_base_fields_are_checked(tmp_path, body, message):
    text = KERNEL if body.startswith("profiles") or body.startswith("check") else KERNEL.replace(
        "kconfig: [guest.config]\n", "")
    p = write(tmp_path, "kernels", "k", text + body)
    with pytest.raises(ConfigError, match=message):
        load(KernelConfig, p)


def test_every_shipped_kernel_and_profile_loads():
    from harness.config import known, load_profile
    for name in known("profiles"):
        assert load_profile(name).name == name
    for name in known("kernels"):
        k = load_kernel(name)
        assert "default" in k.profiles and set(k.check_profiles) <= set(k.profiles)


def test_a_profile_the_kernel_does_not_support_is_refused_before_anything_runs():
    from harness.core.cache import cache_root
    from harness.core.errors import HarnessError
    from harness.core.progress import Quiet
    from harness.run.plan import make_plan
    with pytest.raises(HarnessError, match=r"^config: unknown profile 'lkdtm' \(known: default, "
                                           r"debug, no-memcg-kmem, all\)$"):
        make_plan(kernel="linux-5.12-rc1", variants=("base",), profiles="lkdtm", cache=cache_root(),
                  progress=Quiet())


@pytest.mark.parametrize("alias, name", [("aarch64", "arm64"), ("amd64", "x86_64"), ("arm64", "arm64")])
def test_arch_aliases(alias, name):
    from harness.config.arches import arch_name
    from harness.run.plan import names
    assert arch_name(alias) == name and load_arch(alias).name == name
    assert names(f"{alias},{name}", all_arches(), "arch", arch_name) == [name]


def test_the_defaults_name_configs_that_exist():
    from harness.config import load_defaults
    from harness.series.patches import load_series_config
    d = load_defaults()
    load_series_config(d.series), load_kernel(d.kernel)
    for s in d.scenarios:
        load_scenario(s)


def test_profile_all_is_the_kernels_a_b_profiles_not_the_test_only_ones():
    from harness.core.cache import cache_root
    from harness.core.progress import Quiet
    from harness.run.plan import make_plan
    plan = make_plan(kernel="linux-5.10", variants=("base",), profiles="all", cache=cache_root(),
                     progress=Quiet())
    assert plan.profiles == ("default", "debug", "no-memcg-kmem")
    assert make_plan(kernel="linux-5.10", variants=("base",), profiles="lkdtm", cache=cache_root(),
                     progress=Quiet()).profiles == ("lkdtm",)


def _plan(**kw):
    from harness.core.cache import cache_root
    from harness.core.progress import Quiet
    from harness.run.plan import make_plan
    return make_plan(variants=("base",), cache=cache_root(), progress=Quiet(), **kw)


def test_a_base_only_run_of_a_series_config_runs_its_kernel_and_scenarios():
    """--series fsnotify-objcg --variant base tested Linux 5.10 (the default kernel) with its
    scenarios: the base of a 7.2 series is 7.2, with the series' scenarios."""
    plan = _plan(series="fsnotify-objcg", arches="x86_64")
    assert plan.kernel.name == "linux-7.2" and plan.series is None
    assert [s.name for s in plan.scenarios][:2] == ["inotify-pin", "fanotify-pin"]
    assert _plan(series="fsnotify-objcg", kernel="linux-5.10", arches="x86_64").kernel.name == "linux-5.10"


def test_a_scenario_newer_than_the_base_is_left_out_and_alone_is_an_error():
    fs = load_scenario("fsnotify-selftests")
    assert fs.since == "6.15" and fs.in_release("7.2") and fs.in_release("6.15") and not fs.in_release("6.1")
    assert not fs.in_release("5.10") and load_scenario("cgroup-selftests").in_release("5.10")
    plan = _plan(kernel="linux-5.10", arches="x86_64", scenarios=["dying-memcg", "fsnotify-selftests"])
    assert [s.name for s in plan.scenarios] == ["dying-memcg"]
    assert [s.name for s in _plan(kernel="linux-7.2", arches="x86_64",
                                  scenarios=["dying-memcg", "fsnotify-selftests"]).scenarios] == [
        "dying-memcg", "fsnotify-selftests"]
    with pytest.raises(HarnessError, match=r"^config: no scenario to run on linux-5.10 \(5.10\): "
                                           r"fsnotify-selftests need a later base$"):
        _plan(kernel="linux-5.10", arches="x86_64", scenarios=["fsnotify-selftests"])


@pytest.mark.parametrize("iterations, message", [
    (5, r"^config: dying-memcg: at 5 iterations one result \(delta 5\) satisfies both reproduced "
        r"\(delta >= 4.5\) and fixed \(delta <= 5\): a still-broken kernel would be FIXED"),
    (0, r"^config: --iterations 0: expected a positive integer$"),
    (-3, r"^config: --iterations -3: expected a positive integer$"),
])
def test_iterations_that_cannot_tell_the_bug_from_the_fix_are_refused(iterations, message):
    from harness.core.errors import HarnessError
    with pytest.raises(HarnessError, match=message):
        _plan(kernel="linux-5.10", scenarios=["dying-memcg"], iterations=iterations)
    with pytest.raises(HarnessError):
        _plan(kernel="linux-5.10", scenarios=["dying-memcg-v2"], iterations=iterations)


def test_the_smallest_count_that_tells_them_apart_is_accepted():
    plan = _plan(kernel="linux-5.10", scenarios=["dying-memcg", "inotify-pin"], iterations=6)
    assert [s.iterations for s in plan.scenarios] == [6, 6]


def test_a_profile_cap_is_validated_as_the_count_that_runs(monkeypatch):
    from harness.config import ProfileConfig
    from harness.core.errors import HarnessError
    from harness.run.plan import load_profile
    capped = ProfileConfig(name="debug", description="", max_iterations=4)
    monkeypatch.setattr("harness.run.plan.load_profile",
                        lambda name: capped if name == "debug" else load_profile(name))
    with pytest.raises(HarnessError, match=r"at 4 iterations .* \(profile debug\)$"):
        _plan(kernel="linux-5.10", scenarios=["dying-memcg"], profiles="debug")
    _plan(kernel="linux-5.10", scenarios=["dying-memcg"])   # 500 iterations: the same check passes


def test_a_scenario_may_skip_a_profile_and_the_debug_profile_skips_the_selftests():
    plan = _plan(kernel="linux-5.10", scenarios=["dying-memcg", "kmem-high", "cgroup-selftests"],
                 profiles="default,debug")
    assert [plan.runs_on(s, "debug") for s in plan.scenarios] == [True, False, False]
    assert all(plan.runs_on(s, "default") for s in plan.scenarios)
    assert plan.scenario_for(plan.scenarios[0], "debug").iterations == 100


def test_a_scenario_may_set_its_iterations_on_a_profile_over_the_profiles_cap():
    plan = _plan(kernel="linux-7.2", scenarios=["fsnotify-charge", "dying-memcg"], profiles="default,debug")
    charge, seed = plan.scenarios
    assert charge.iterations_on == {"debug": 1000}
    assert plan.scenario_for(charge, "debug").iterations == 1000     # not the profile's cap of 100
    assert plan.scenario_for(charge, "default").iterations == 8000
    assert plan.scenario_for(seed, "debug").iterations == 100


@pytest.mark.parametrize("value,field", [({"nosuch": 10}, "iterations_on.nosuch"),
                                         ({"debug": 0}, "iterations_on.debug"),
                                         ({"debug": "many"}, "iterations_on.debug")])
def test_iterations_on_names_a_known_profile_and_a_positive_count(tmp_path, value, field):
    import yaml

    from harness.config import load_scenario
    from harness.core.errors import ConfigError
    d = tmp_path / "scenarios"
    d.mkdir()
    (d / "x.yaml").write_text(yaml.safe_dump({"name": "x", "script": "dying-memcg.sh", "kind": "invariant",
                                              "holds": [{"metric": "delta", "max": 0}],
                                              "iterations_on": value}))
    with pytest.raises(ConfigError) as e:
        load_scenario(str(d / "x.yaml"))
    assert field in str(e.value)


def test_a_min_fraction_bound_at_no_iterations_is_vacuous():
    from dataclasses import replace

    from harness.config import load_scenario
    from harness.verdict.bounds import bounds_problem
    problem = bounds_problem(replace(load_scenario("kmem-charge"), iterations=0))
    assert problem and "holds for a script that did nothing" in problem


def test_on_7_2_the_kmem_reproducers_are_judged_as_fixed_upstream():
    plan = _plan(kernel="linux-7.2", scenarios=["dying-memcg", "dying-memcg-v2", "inotify-pin", "kmem-charge"])
    assert [s.kind for s in plan.scenarios] == ["fixed-upstream", "fixed-upstream", "fix", "invariant"]
    assert expectations(plan.scenarios[0], "base") == load_scenario("dying-memcg").fixed
    assert _plan(kernel="linux-5.10", scenarios=["dying-memcg"]).scenarios[0].kind == "fix"


def test_fixed_upstream_must_name_a_fix_scenario(tmp_path):
    body = ("name: k\nversion: '7.2'\nsources: [{type: path, path: /x}]\nkconfig: [guest.config]\n"
            "profiles: {default: {}}\nfixed_upstream: {kmem-charge: v5.13}\n")
    write(tmp_path, "kernels", "k", body)
    with pytest.raises(ConfigError, match=r"fixed_upstream.kmem-charge: expected a fix scenario"):
        load_kernel("k", tmp_path)


def test_guest_options_shape_every_guest_of_the_plan(tmp_path):
    from harness.core.progress import Progress
    from harness.guest.vm import qemu_command
    from harness.run.plan import GuestOptions, make_plan
    plan = make_plan(kernel="linux-5.10", arches="all", variants=("base",), cache=tmp_path,
                     progress=Progress(live=False), guest=GuestOptions("tcg", 2, "2G", "memcg_debug=1"))
    for arch in plan.arches:
        assert arch.accel == ("tcg",)
        cmd = qemu_command(arch, tmp_path / "image", tmp_path / "initrd", "tcg", 2222, "cgroup_no_v1=memory")
        assert cmd[cmd.index("-smp") + 1] == "2,sockets=2" and cmd[cmd.index("-m") + 1] == "2G"
        assert cmd[cmd.index("-append") + 1].endswith(" loglevel=5 memcg_debug=1 cgroup_no_v1=memory")
    default = make_plan(kernel="linux-5.10", arches="x86_64", variants=("base",), cache=tmp_path,
                        progress=Progress(live=False))
    assert default.arches[0].accel == ("kvm", "tcg") and default.arches[0].cpus == 1


@pytest.mark.parametrize("options, message", [
    (dict(cpus=0), "--cpus 0: a guest needs at least 1 vCPU"),
    (dict(memory="2T"), "--memory 2T: expected a size such as 2G or 1536M"),
    (dict(accel="hvf"), "--accel hvf: expected auto, kvm or tcg")])
def test_bad_guest_options_are_refused_naming_the_option(options, message):
    from harness.run.plan import GuestOptions
    with pytest.raises(HarnessError, match=re.escape(message)):
        GuestOptions(**options)


def test_kconfig_add_options_and_files_come_last_in_the_fragments(tmp_path):
    from harness.build.kbuild import fragment_paths
    from harness.core.progress import Progress
    from harness.run.plan import make_plan
    mine = tmp_path / "mine.config"
    mine.write_text("CONFIG_PROVE_LOCKING=y\n")
    plan = make_plan(kernel="linux-5.10", arches="x86_64", variants=("base",), cache=tmp_path / "cache",
                     progress=Progress(live=False),
                     kconfig_add=["CONFIG_KASAN=y,CONFIG_LOG_BUF_SHIFT=17", str(mine)])
    frags = plan.fragments(plan.arches[0], "default")
    assert frags[-2] == str(mine.resolve())
    assert Path(frags[-1]).read_text() == "CONFIG_KASAN=y\nCONFIG_LOG_BUF_SHIFT=17\n"
    assert Path(frags[-1]).parent == tmp_path / "cache" / "kconfig-add"
    paths = fragment_paths(plan.arches[0], frags)
    assert paths[len(frags) - 1] == Path(frags[-1])   # then the arch's own fragments
    again = make_plan(kernel="linux-5.10", arches="x86_64", variants=("base",), cache=tmp_path / "cache",
                      progress=Progress(live=False), kconfig_add=["CONFIG_KASAN=y", "CONFIG_LOG_BUF_SHIFT=17"])
    assert again.fragments(again.arches[0], "default")[-1] == frags[-1]   # same options, same file


@pytest.mark.parametrize("item, message", [
    ("CONFIG_KASAN=maybe", "--kconfig-add CONFIG_KASAN=maybe: expected CONFIG_NAME=VALUE"),
    ("kasan.config", "--kconfig-add kasan.config: no such fragment file")])
def test_bad_kconfig_add_is_refused_before_anything_runs(tmp_path, item, message):
    from harness.core.progress import Progress
    from harness.run.plan import make_plan
    with pytest.raises(HarnessError, match=re.escape(message)):
        make_plan(kernel="linux-5.10", arches="x86_64", variants=("base",), cache=tmp_path,
                  progress=Progress(live=False), kconfig_add=[item])


def test_a_kernel_trees_own_configs_live_with_it_and_find_their_scripts_beside_them(tmp_path, monkeypatch):
    from harness.config import known, load_kernel
    from harness.core.progress import Progress
    from harness.run.plan import make_plan
    tree = tmp_path / "linux"
    (tree / ".kharness" / "scenarios").mkdir(parents=True)
    (tree / ".kharness" / "scenarios" / "my-pin.yaml").write_text(
        "name: my-pin\nscript: my-pin.sh\nhelpers: [pin.c]\nkind: invariant\nholds: [{max: 0}]\n")
    (tree / ".kharness" / "scenarios" / "my-pin.sh").write_text("echo mine\n")
    (tree / ".kharness" / "scenarios" / "pin.c").write_text("int main(void) { return 0; }\n")
    (tree / ".kharness" / "scenarios" / "reuse.yaml").write_text(   # kharness's own script
        "name: reuse\nscript: dying-memcg.sh\nreproduced: [{min: 1}]\nfixed: [{max: 0}]\n")
    (tree / "patches").mkdir()
    (tree / "patches" / "0001-mm-x.patch").write_text(
        "From 1 Mon Sep 17 00:00:00 2001\nSubject: [PATCH] mm: x\n\n---\n"
        "diff --git a/mm/x.c b/mm/x.c\n--- a/mm/x.c\n+++ b/mm/x.c\n@@ -1 +1 @@\n-a\n+b\n")
    (tree / "my.yaml").write_text("name: mine\ntitle: My series\nkernel: linux-5.10\npatches: patches\n"
                                  "scenarios: [my-pin, .kharness/scenarios/reuse.yaml]\n")
    monkeypatch.chdir(tree)
    assert {"my-pin", "reuse", "dying-memcg"} <= set(known("scenarios"))
    mine = load_scenario("my-pin")
    assert mine.guest_path("my-pin.sh") == (tree / ".kharness/scenarios/my-pin.sh").resolve()
    assert mine.guest_path("pin.c").read_text().startswith("int main")
    assert load_scenario("reuse").guest_path("dying-memcg.sh").parent.name == "guest-scripts"
    plan = make_plan(series="my.yaml", arches="x86_64", cache=tmp_path / "cache", progress=Progress(live=False))
    assert plan.series.title == "My series" and [p.path.name for p in plan.series.patches] == ["0001-mm-x.patch"]
    assert [s.name for s in plan.scenarios] == ["my-pin", "reuse"] and plan.kernel.name == "linux-5.10"
    elsewhere = tmp_path / "elsewhere" / "kernels"
    elsewhere.mkdir(parents=True)
    (elsewhere / "my-5.10.yaml").write_text((REPO_ROOT / "configs/kernels/linux-5.10.yaml").read_text()
                                            .replace("name: linux-5.10", "name: my-5.10"))
    monkeypatch.setenv("KHARNESS_CONFIG_PATH", str(tmp_path / "elsewhere"))
    assert load_kernel("my-5.10").name == "my-5.10"                 # fragments from configs/kconfig
    assert load_kernel(str(elsewhere / "my-5.10.yaml")).name == "my-5.10"


def test_a_scenario_script_outside_its_directories_is_refused(tmp_path, monkeypatch):
    (tmp_path / ".kharness" / "scenarios").mkdir(parents=True)
    (tmp_path / ".kharness" / "scenarios" / "x.yaml").write_text(
        "name: x\nscript: ../../../etc/passwd\nreproduced: [{min: 1}]\nfixed: [{max: 0}]\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"script: expected a file under guest-scripts/"):
        load_scenario("x")
    with pytest.raises(ConfigError, match=r"no such scenario file: .*nope.yaml"):
        load_scenario("nope.yaml")


def test_a_scenario_marker_must_be_a_pytest_marker_name(tmp_path):
    from harness.config import ScenarioConfig
    body = ("name: s\nscript: dying-memcg.sh\nreproduced: [{max: 1}]\nfixed: [{max: 0}]\n"
            "markers: [Extended-Run]\n")
    with pytest.raises(ConfigError, match=r"markers: expected a pytest marker name .* got 'Extended-Run'"):
        load(ScenarioConfig, write(tmp_path, "scenarios", "s", body))
    assert load_scenario("socket-pin").markers == ("extended",)
    body = body.replace("markers: [Extended-Run]", "not_on: [kasan]")
    with pytest.raises(ConfigError, match=r"not_on: no profile 'kasan' \(known: debug, default"):
        load(ScenarioConfig, write(tmp_path, "scenarios", "s", body))


def test_a_kernel_base_may_skip_scenarios_on_a_profile_and_says_why():
    plan = _plan(kernel="linux-5.10", scenarios=["fsnotify-charge", "inotify-pin"], profiles="default,debug")
    charge, pin = plan.scenarios
    assert not plan.runs_on(charge, "debug") and plan.runs_on(charge, "default")
    assert plan.runs_on(pin, "debug")
    assert "quarantine" in load_kernel("linux-5.10").profiles["debug"].skip["fsnotify-charge"]
    plan72 = _plan(kernel="linux-7.2", scenarios=["fsnotify-charge"], profiles="debug")
    assert plan72.runs_on(plan72.scenarios[0], "debug")   # 7.x uncharges before the quarantine


def test_a_skip_names_a_known_scenario_and_a_reason(tmp_path):
    import shutil

    import yaml

    from harness.config import CONFIG_DIR
    cfg = tmp_path / "configs"
    shutil.copytree(CONFIG_DIR, cfg)
    path = cfg / "kernels" / "linux-5.10.yaml"
    data = yaml.safe_load(path.read_text())
    data["profiles"]["debug"]["skip"] = {"no-such-scenario": "why"}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as e:
        load_kernel("linux-5.10", cfg)
    assert "profiles.debug.skip.no-such-scenario" in str(e.value)
    data["profiles"]["debug"]["skip"] = {"fsnotify-charge": ""}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as e:
        load_kernel("linux-5.10", cfg)
    assert "expected the reason" in str(e.value)


def test_the_makefile_installs_each_arch_s_host_packages_as_its_yaml_lists_them():
    """make deps reads configs/arches/*.yaml's host_packages line with sed (before Python has
    its YAML package): that line must say what the YAML does."""
    import subprocess
    for name in all_arches():
        path = REPO_ROOT / "configs" / "arches" / f"{name}.yaml"
        out = subprocess.run(["sed", "-n", r"s/^host_packages: *\[\(.*\)\]/\1/p", str(path)],
                             capture_output=True, text=True, check=True).stdout
        assert out.replace(",", " ").split() == list(load_arch(name).host_packages), name
        assert load_arch(name).host_packages, f"{name}: no host_packages: make deps would install no QEMU for it"


def test_all_arches_are_those_that_do_not_leave_themselves_out():
    """riscv64 runs when named: `--arch all` (make boot-test, make test) keeps to the arches
    whose kernels they have always built."""
    from harness.config.arches import default_arches
    from harness.run.plan import make_plan
    assert "riscv64" in all_arches() and "riscv64" not in default_arches()
    from harness.core.cache import cache_root
    from harness.core.progress import Progress

    def arches(value):
        plan = make_plan(kernel="linux-5.10", variants=("base",), arches=value, cache=cache_root(),
                         progress=Progress(live=False))
        return [a.name for a in plan.arches]
    assert arches("all") == default_arches() and arches("riscv64") == ["riscv64"]


def test_what_a_series_claims_to_fix_is_judged_fixed_and_the_rest_must_not_regress(tmp_path):
    from harness.core.cache import cache_root
    from harness.core.progress import Progress
    from harness.run.plan import make_plan
    from harness.series.patches import SeriesConfig

    def kinds(**kw):
        plan = make_plan(cache=cache_root(), progress=Progress(live=False), **kw)
        return {s.name: s.kind for s in plan.scenarios}
    ours = kinds(series="obj-cgroup-kmem", scenarios=["dying-memcg,kmem-charge"])
    assert ours == {"dying-memcg": "fix", "kmem-charge": "invariant"}
    # a directory of patches claims nothing: the bug is the base's, and must stay as it is
    assert kinds(series=str(REPO_ROOT / "kernel-patches" / "obj-cgroup-kmem"), kernel="linux-5.10",
                 scenarios=["dying-memcg"]) == {"dying-memcg": "unclaimed"}
    assert kinds(series=str(REPO_ROOT / "kernel-patches" / "obj-cgroup-kmem"), kernel="linux-5.10",
                 scenarios=["dying-memcg"], fixes=["dying-memcg"]) == {"dying-memcg": "fix"}
    assert kinds(series="obj-cgroup-kmem", variants=("base",), scenarios=["dying-memcg"]) == {"dying-memcg": "fix"}
    with pytest.raises(HarnessError, match="--fixes inotify-pin: not among the run's scenarios"):
        kinds(series="obj-cgroup-kmem", scenarios=["dying-memcg"], fixes=["inotify-pin"])
    p = write(tmp_path, "series", "s", "name: s\ntitle: t\nkernel: linux-5.10\npatches: .\n"
              "scenarios: [dying-memcg]\nfixes: [inotify-pin]\n")
    with pytest.raises(ConfigError, match=r"fixes\[0\]: 'inotify-pin' is not among the series' scenarios"):
        load(SeriesConfig, p)
