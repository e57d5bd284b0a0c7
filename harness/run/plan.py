"""What a run will do, built one way for both front doors (the CLI and the pytest plugin): the
kernel base, the arches, the variants, the scenarios and the config profiles, all from configs/
and what the command line overrides, validated before anything is fetched or built."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.config import (
    KernelConfig,
    ProfileConfig,
    ScenarioConfig,
    load_defaults,
    load_kernel,
    load_profile,
    load_scenario,
)
from harness.config.arches import Arch, all_arches, arch_name, default_arches, load_arch
from harness.config.tests import OWN_TEST, choose, load_tests
from harness.core.cache import atomic_file
from harness.core.errors import HarnessError
from harness.core.progress import Progress
from harness.series.patches import Series, load_series_config, names_config, resolve_series
from harness.series.tree import from_tree
from harness.sources.lore import DEFAULT_LORE
from harness.sources.source import fetch_source
from harness.verdict.bounds import bounds_problem
from harness.verdict.kinds import kind

VARIANTS = ("base", "patched")


def names(value: str | list[str] | tuple[str, ...], choices: list[str], what: str,
          canonical=lambda n: n, every: list[str] | None = None) -> list[str]:
    """A comma list (or several), or ``all`` (``every``, else all ``choices``); each name once,
    each one known."""
    items = [value] if isinstance(value, str) else list(value)
    words = [w for item in items for w in item.split(",") if w]
    if not words:
        raise HarnessError("config", f"{what} {','.join(items)!r}: names no {what} (known: {', '.join(choices)}, all)")
    if words == ["all"]:
        return list(choices if every is None else every)
    out = list(dict.fromkeys(canonical(w) for w in words))
    for n in out:
        if n not in choices:
            raise HarnessError("config", f"unknown {what} {n!r} (known: {', '.join(choices)}, all)")
    return out


@dataclass(frozen=True)
class Plan:
    kernel: KernelConfig
    arches: tuple[Arch, ...]
    variants: tuple[str, ...]
    scenarios: tuple[ScenarioConfig, ...]
    profiles: tuple[str, ...] = ("default",)
    series: Series | None = None
    kconfig_add: tuple[str, ...] = ()   # --kconfig-add: fragment files, merged after all others
    repeat: int = 1                     # --repeat: each scenario on this many fresh boots per kernel
    kconfig_auto: bool = True           # turn on what builds the series' changed code (series config)
    _profiles: dict[str, ProfileConfig] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in self.profiles:
            self.profile(name)
            for s in self.scenarios:   # at the iteration count that will run, before anything boots
                if self.runs_on(s, name) and (problem := bounds_problem(self.scenario_for(s, name))):
                    raise HarnessError("config", problem + (f" (profile {name})" if name != "default" else ""))

    def profile(self, name: str) -> ProfileConfig:
        """A profile this plan's kernel supports (loaded once)."""
        if name not in self._profiles:
            if name not in self.kernel.profiles:
                raise HarnessError("config", f"kernel {self.kernel.name} has no profile {name!r} "
                                   f"(it has: {', '.join(self.kernel.profiles)})")
            self._profiles[name] = load_profile(name)
        return self._profiles[name]

    def fragments(self, arch: Arch, profile: str) -> tuple[str, ...]:
        """The kconfig fragments of this kernel, arch and profile, in merge order (the arch's own
        come last, from kbuild)."""
        p, kp = self.profile(profile), self.kernel.profiles[profile]
        return (*self.kernel.kconfig, *self.kernel.arch_kconfig.get(arch.name, ()),
                *p.kconfig, *p.arch_kconfig.get(arch.name, ()),
                *kp.kconfig, *kp.arch_kconfig.get(arch.name, ()), *self.kconfig_add)

    def scenario_for(self, scenario: ScenarioConfig, profile: str) -> ScenarioConfig:
        """The scenario as the profile's kernels run it: iterations capped (or as the scenario's
        ``iterations_on`` says for this profile), timeout and settle
        stretched (a KASAN kernel also frees a removed cgroup later: RCU and workqueues run
        slower, and the quarantine holds the frees that release it)."""
        p = self.profile(profile)
        iterations = min(scenario.iterations, p.max_iterations or scenario.iterations)
        iterations = scenario.iterations_on.get(profile, iterations)
        return replace(scenario, iterations=iterations, timeout=scenario.timeout * p.timeout_scale,
                       settle=scenario.settle * p.timeout_scale)

    def runs_on(self, scenario: ScenarioConfig, profile: str) -> bool:
        """Whether the profile's kernels run this scenario (the debug profile runs no selftests,
        nor a scenario that says ``not_on: [debug]``, nor one the kernel base's profile skips)."""
        if profile in scenario.not_on or scenario.name in self.kernel.profiles[profile].skip:
            return False
        return not kind(scenario.kind).has_tests or self.profile(profile).selftests


KCONFIG_LINE = re.compile(r"CONFIG_[A-Za-z0-9_]+=(?:[ynm]|-?[0-9]+|0x[0-9a-fA-F]+|\"[^\"]*\")")


def kconfig_fragments(items: list[str], cache: Path) -> tuple[str, ...]:
    """--kconfig-add, as tuxmake takes it: CONFIG_X=VALUE options (gathered into one fragment,
    kept in the cache under its content's hash) or fragment files; merged and verified like
    every fragment of configs/kconfig/."""
    files, options = [], []
    for item in (w for value in items for w in value.split(",") if w):
        if item.startswith("CONFIG_"):
            if not KCONFIG_LINE.fullmatch(item):
                raise HarnessError("config", f"--kconfig-add {item}: expected CONFIG_NAME=VALUE "
                                   "(y, m, n, a number or a quoted string) or a fragment file")
            options.append(item)
        elif Path(item).is_file():
            files.append(str(Path(item).resolve()))
        else:
            raise HarnessError("config", f"--kconfig-add {item}: no such fragment file, and not CONFIG_NAME=VALUE")
    if options:
        text = "".join(f"{o}\n" for o in options)
        path = cache / "kconfig-add" / f"{hashlib.sha256(text.encode()).hexdigest()[:24]}.config"
        if not path.is_file():
            with atomic_file(path, "w") as f:
                f.write(text)
        files.append(str(path))
    return tuple(files)


# vCPUs of one guest at most: each is a host thread under TCG, and the boot tests run up to 4
MAX_CPUS = 64


@dataclass(frozen=True)
class GuestOptions:
    """How the run's guests differ from their arch's defaults (--accel, --cpus, --memory, --append)."""

    accel: str = "auto"          # auto: the arch's preference, KVM only when its probe boots
    cpus: int | None = None
    memory: str | None = None    # as QEMU's -m: 1G, 1536M
    append: str = ""

    def __post_init__(self) -> None:
        if self.accel not in ("auto", "kvm", "tcg"):
            raise HarnessError("config", f"--accel {self.accel}: expected auto, kvm or tcg")
        if self.cpus is not None and self.cpus < 1:
            raise HarnessError("config", f"--cpus {self.cpus}: a guest needs at least 1 vCPU")
        if self.cpus is not None and self.cpus > MAX_CPUS:
            raise HarnessError("config", f"--cpus {self.cpus}: at most {MAX_CPUS} vCPUs a guest")
        if self.memory is not None and not re.fullmatch(r"[1-9][0-9]*[MG]", self.memory):
            raise HarnessError("config", f"--memory {self.memory}: expected a size such as 2G or 1536M")

    def apply(self, arch: Arch) -> Arch:
        return replace(arch, accel=arch.accel if self.accel == "auto" else (self.accel,),
                       cpus=self.cpus or arch.cpus, memory=self.memory or arch.memory,
                       cmdline=" ".join(x for x in (arch.cmdline, self.append) if x))


def make_plan(*, series: str | None = None, kernel: str | None = None, arches: str | list[str] = "all",
              variants: tuple[str, ...] = VARIANTS, scenarios: list[str] | None = None,
              profiles: str | list[str] = "default", iterations: int | None = None,
              cache: Path, progress: Progress, series_version: int | None = None,
              lore_base: str = DEFAULT_LORE, guest: GuestOptions | None = None,
              kconfig_add: list[str] | None = None, tree: Path | None = None,
              base: str | None = None, dirty: bool = False, repeat: int = 1,
              fixes: list[str] | None = None, tests: list[str] | None = None) -> Plan:
    """The plan a command line describes; what it leaves out comes from the series' config (its
    kernel, its scenarios), then from configs/defaults.yaml. A base-only run needs no series: it
    must work before (and without) any patch, so the series' patches are read only for a patched
    kernel; its config (kernel, scenarios) is read for a base-only run too."""
    defaults = load_defaults()
    if repeat < 1:
        raise HarnessError("config", f"--repeat {repeat}: expected a positive number of runs")
    extra = kconfig_fragments(kconfig_add or [], cache)
    series_obj, config = None, None
    if tree is not None:   # a developer's tree: the base is a commit of it, the series its commits
        if series is not None and ".." not in series:
            raise HarnessError("config", f"--series {series}: with --tree, a revision range (BASE..BRANCH)")
        k, series_obj = from_tree(tree, base, series, dirty, cache, progress, "patched" in variants)
        if kernel is not None:   # its fragments and profiles, the tree as its source
            k = replace(load_kernel(kernel), version=k.version, sources=k.sources)
        seed = load_series_config(defaults.series)
        if not k.scenarios and seed.kernel == k.name:   # a 5.10 branch: the 5.10 series' scenarios
            k = replace(k, scenarios=seed.scenarios)
    else:
        if base is not None or dirty:
            raise HarnessError("config", "--base and --dirty go with --tree (a kernel git checkout)")
        if "patched" in variants:
            series_obj, config = resolve_series(series or defaults.series, cache, progress,
                                                series_version, lore_base)
        elif series is not None and names_config(series):   # base only: the series' kernel and
            config = load_series_config(series)                # scenarios, none of its patches
        k = series_base(load_kernel(kernel or (config.kernel if config else None) or defaults.kernel),
                        series_obj, progress)
    scenario_names = scenarios or list((config.scenarios if config else k.scenarios) or defaults.scenarios)
    if scenarios and not any(w for item in scenarios for w in item.split(",")):
        raise HarnessError("config", f"--scenario {','.join(scenarios)!r}: names no scenario")
    words = [w for item in tests or () for w in item.split(",") if w]
    if tests is not None and not words:
        raise HarnessError("config", f"--tests {','.join(tests)!r}: names no test (auto, kselftest:DIR or a scenario)")
    # a series with no scenarios of its own (a directory, mail or branch, no config) gets the
    # tests its changed paths call for
    if tests is None and not scenarios and config is None and series_obj is not None:
        words = ["auto"]
    if words:
        auto = [w for w in words if w != "auto"]
        if "auto" in words:
            auto = [*chosen_tests(series_obj, k, tree, cache, progress), *auto]
        scenario_names = [*(scenarios or []), *auto] if auto else scenario_names
    chosen = []
    for name in dict.fromkeys(w for item in scenario_names for w in item.split(",") if w):
        s = load_scenario(name)   # an unknown one: an error naming configs/scenarios/
        if iterations is not None:
            if iterations < 1:
                raise HarnessError("config", f"--iterations {iterations}: expected a positive integer")
            s = replace(s, iterations=iterations)
        chosen.append(s)
    chosen = [replace(s, kind="fixed-upstream") if s.name in k.fixed_upstream else s for s in chosen]
    # what the series claims to fix (--fixes, else its config's fixes:) is judged FIXED; any other
    # fix scenario must not regress (a series given as a directory, mail or tree claims nothing)
    claimed = [w for item in fixes for w in item.split(",") if w] if fixes is not None else \
        list(config.fixes if config else ())
    for name in claimed if fixes is not None else ():
        if name not in {s.name for s in chosen}:
            raise HarnessError("config", f"--fixes {name}: not among the run's scenarios "
                               f"({', '.join(s.name for s in chosen)})")
    if "patched" in variants:
        chosen = [replace(s, kind="unclaimed") if s.kind == "fix" and s.name not in claimed else s
                  for s in chosen]
    older = [s for s in chosen if not s.in_release(k.version)]
    for s in older:
        progress.info(f"scenario {s.name}: needs Linux {s.since} or later ({k.name} is {k.version}): left out")
    chosen = [s for s in chosen if s.in_release(k.version)]
    if older and not chosen:
        raise HarnessError("config", f"no scenario to run on {k.name} ({k.version}): "
                           f"{', '.join(s.name for s in older)} need a later base")
    chosen_profiles = profile_names(k, profiles)
    for p in chosen_profiles:
        for s in chosen:
            if s.name in k.profiles[p].skip:
                progress.info(f"scenario {s.name}: not on {k.name}'s {p} kernels: {k.profiles[p].skip[s.name]}")
    return Plan(kernel=k,
                arches=tuple((guest or GuestOptions()).apply(load_arch(a))
                             for a in names(arches, all_arches(), "arch", arch_name, default_arches())),
                variants=tuple(variants), scenarios=tuple(chosen),
                profiles=chosen_profiles, series=series_obj, kconfig_add=extra, repeat=repeat,
                kconfig_auto=config.kconfig_auto if config else True)


def chosen_tests(series: Series | None, k: KernelConfig, tree: Path | None, cache: Path,
                 progress: Progress) -> list[str]:
    """``--tests auto``: the tests the series' changed paths call for (configs/tests.yaml, the
    tree's MAINTAINERS), each said with why; the changed paths nothing covers said too. None
    chosen: the kernel's own scenarios, as a series with no config ran before."""
    if series is None:
        raise HarnessError("config", "--tests auto chooses by the series' changed paths: it needs a series "
                           "(--series, or --tree with a range)")
    source = tree if tree is not None else fetch_source(k, cache, progress).path
    try:
        maintainers = (source / "MAINTAINERS").read_text(errors="replace")
    except OSError:
        maintainers = ""
        progress.info(f"tests: {k.name} has no MAINTAINERS: configs/tests.yaml alone chooses")
    chosen, uncovered = choose(series.changed_paths(), load_tests(), maintainers)
    selftests = source / "tools/testing/selftests"
    for test in [t for t in chosen if t.startswith("kselftest:")]:
        target = test.split(":", 1)[1]
        if (selftests / target / "Makefile").is_file():
            continue
        why = chosen.pop(test)
        # a directory of a collection (bpf/progs): the collection whose Makefile builds it
        parent = next((d for d in Path(target).parents if d != Path(".") and (selftests / d / "Makefile").is_file()), None)
        if parent is not None:
            reasons = chosen.setdefault(f"kselftest:{parent}", [])
            reasons += [w for w in why if w not in reasons]
        elif any(w.endswith(OWN_TEST) for w in why):   # the series adds it
            uncovered += [w.split(": ", 1)[0] for w in why]
            progress.info(f"tests: {test} cannot be compared: {k.name}'s base tree has no such collection "
                          "(the series adds it)")
        else:
            progress.info(f"tests: {test} left out: {k.name}'s tree has no such collection")
    for test, why in chosen.items():
        progress.info(f"tests: {test}, for {'; '.join(why[:3])}" + (f" (and {len(why) - 3} more)" if len(why) > 3 else ""))
    for path in uncovered:
        progress.info(f"tests: nothing covers {path} (configs/tests.yaml, MAINTAINERS)")
    if not chosen:
        progress.info(f"tests: no test chosen by the series' paths: {k.name}'s own scenarios, each must not regress")
    return list(chosen)


def series_base(k: KernelConfig, series: Series | None, progress: Progress) -> KernelConfig:
    """The series' own base (the base-commit: of its cover letter) when its kernel comes from
    git: that commit, fetched like any ref (one the repository lacks is an error naming it). A
    kernel from release tarballs keeps its release, and the run says the commit went unchecked."""
    if series is None or not series.base_commit:
        return k
    gits = [s for s in k.sources if s.type == "git"]
    if not gits:
        progress.info(f"series {series.name}: base-commit {series.base_commit[:12]} not checked: {k.name} "
                      "comes from release tarballs (a git source in its config would take that commit)")
        return k
    progress.info(f"series {series.name}: its base-commit {series.base_commit[:12]} is the base")
    return replace(k, sources=tuple(replace(s, ref=series.base_commit) for s in gits))


def profile_names(kernel: KernelConfig, value: str | list[str]) -> tuple[str, ...]:
    """Profiles the kernel supports; ``all`` is those meant for A/B columns (not test-only ones)."""
    chosen = names(value, list(kernel.profiles), "profile")
    if value == "all":
        chosen = [p for p in chosen if load_profile(p).in_all]
    return tuple(chosen)


def check_profiles(plan: Plan, value: str | None) -> tuple[str, ...]:
    """The profiles check-series builds with: the kernel's own list unless the command line says."""
    if value is None:
        return plan.kernel.check_profiles
    return profile_names(plan.kernel, value)

