"""A series' patches and the A/B that speaks for them cannot drift apart: every series of ours
that has a recorded A/B (kernel-patches/NAME.ab.json, `kharness report RUN --format ab` of the
whole run, or of `kharness merge` of its runs) must have it for the patches in the tree, with
every row as expected, on both arches, every scenario of the series on the default profile and
on every other profile the record holds (the debug profile's run belongs in it when the patches
change); and the README's example run is of those very patches."""

from __future__ import annotations

import json
import re

import pytest

from harness import REPO_ROOT
from harness.config import known, load_kernel, load_profile, load_scenario
from harness.series.patches import load_patch_dir, load_series_config
from harness.verdict.kinds import kind

PATCHES = REPO_ROOT / "kernel-patches"
RECORDED = sorted(p.name.removesuffix(".ab.json") for p in PATCHES.glob("*.ab.json"))


def test_the_readmes_example_series_has_a_recorded_ab_of_its_patches():
    readme = (REPO_ROOT / "README.md").read_text()
    examples = re.findall(r"^series +(\S+), \d+ patches, sha256 ([0-9a-f]{16})", readme, re.M)
    assert examples, "the README shows no example run"
    for name, sha in examples:
        assert name in RECORDED, f"README's example run of {name}: no kernel-patches/{name}.ab.json"
        record = json.loads((PATCHES / f"{name}.ab.json").read_text())
        assert record["sha256"].startswith(sha), (
            f"README's example run is of {name} sha256 {sha}, the recorded A/B of {record['sha256'][:16]}")


@pytest.mark.parametrize("name", RECORDED)
def test_a_recorded_ab_is_of_the_patches_in_the_tree_and_all_good(name):
    record = json.loads((PATCHES / f"{name}.ab.json").read_text())
    series = load_patch_dir(PATCHES / name)
    assert record["sha256"] == series.digest, (
        f"kernel-patches/{name} changed since its recorded A/B ({record['sha256'][:16]}, now "
        f"{series.digest[:16]}): rerun the whole A/B (both arches, default and debug) and record it")
    bad = [f"{r['arch']} {r['scenario']} ({r['profile']}) {r['verdict']}" for r in record["rows"] if not r["ok"]]
    assert not bad, f"{name}'s recorded A/B has rows not as expected: {', '.join(bad)}"
    config = load_series_config(name)
    kernel = load_kernel(config.kernel)
    for profile in {"default", *record["profiles"]}:
        for arch in ("x86_64", "arm64"):
            wanted = {s for s in config.scenarios if runs_on(s, kernel, profile)}
            got = {r["scenario"] for r in record["rows"] if r["arch"] == arch and r["profile"] == profile}
            assert wanted <= got, f"{name}'s recorded A/B lacks {arch} {profile}: {', '.join(sorted(wanted - got))}"


def runs_on(name: str, kernel, profile: str) -> bool:
    """Whether the profile's kernels of this base run the scenario (as Plan.runs_on says)."""
    scenario = load_scenario(name)
    return (scenario.in_release(kernel.version) and profile not in scenario.not_on
            and name not in kernel.profiles[profile].skip
            and (not kind(scenario.kind).has_tests or load_profile(profile).selftests))


def test_every_series_of_ours_is_known():
    assert set(RECORDED) <= set(known("series"))
