"""What a run adds to its kernels' fragments: the tree's fragment of each kselftest collection
(its `config`, as `make kselftest-merge` merges them) and KUnit directory (its `.kunitconfig`)
it runs, and the options that build the series' changed code
the fragments leave out. Both are merged into base and patched alike, so the two kernels of a
pair share their .config; both are lenient (an option a kernel cannot take is named, not fatal)."""

from __future__ import annotations

import functools
from pathlib import Path

from harness.build.coverage import wanted, with_dependencies
from harness.build.kbuild import config_path, dropped_options, make_config, parse_config
from harness.build.kselftest import KselftestInstall, src_arch
from harness.config import ScenarioConfig
from harness.config.arches import Arch
from harness.core.cache import atomic_file, digest
from harness.core.errors import HarnessError
from harness.core.progress import Progress
from harness.series.workspace import Workspace


def _fragment(cache: Path, kind: str, text: str) -> Path:
    """``text`` as a fragment file in the cache, named by its content."""
    path = cache / kind / f"{digest([text])[:24]}.config"
    if not path.is_file():
        with atomic_file(path, "w") as f:
            f.write(text)
    return path


def tree_configs(scenarios: tuple[ScenarioConfig, ...], ws: Workspace, base: str, cache: Path) -> dict[str, Path]:
    """Scenario name -> the tree's fragment its tests need (a kselftest collection's `config`, a
    KUnit directory's `.kunitconfig`), as the base has it; a KUnit scenario's directory must
    have one."""
    out = {}
    for s in scenarios:
        if s.tree_config is None:
            continue
        text = ws.show(base, s.tree_config)
        if text is None and s.kunit:
            raise HarnessError("kconfig", f"kunit:{s.kunit}: the tree has no {s.tree_config}")
        text = (text or "") + "".join(f"{o}\n" for o in s.kconfig)   # configs/tests.yaml's, after the tree's
        if text:
            out[s.name] = _fragment(cache, "tree-config", text)
    return out


def tree_config_notes(scenario: ScenarioConfig, fragment: Path | None, config_text: str,
                      install: KselftestInstall | None, arch: str) -> tuple[str, ...]:
    """What of its tests a kernel cannot run: options of the tree's fragment the kernel lacks,
    kselftests that did not build for the arch."""
    out = []
    if fragment is not None:
        config = parse_config(config_text)
        dropped = [d for d in dropped_options(parse_config(fragment.read_text()), config)
                   if not d.endswith("=m (got y)")]   # built in where a module was asked: there all the same
        if dropped:
            out.append(f"kernel lacks {len(dropped)} option(s) of {scenario.tree_config}: {', '.join(dropped)}")
    if install is not None and install.not_built:
        out.append(f"not built for {arch} (left out): {', '.join(install.not_built)}")
    return tuple(out)


def auto_fragment(arch: Arch, fragments: list[Path], lenient: tuple[str, ...], ws: Workspace, base: str,
                  head: str, diff: str, cache: Path, flags: tuple[str, ...], log: Path,
                  progress: Progress) -> tuple[Path | None, dict[str, str]]:
    """The options that build what of the series (``diff``, base to ``head``) the base's .config
    leaves out (an object's obj-$(CONFIG_X), a hunk's #ifdef CONFIG_X), with the options their
    Kconfig `depends on` needs: a fragment, and each option with the change that needs it ("" a
    dependency); (None, {}) when the series' code is all built."""
    path = config_path(arch, ws.tree_id(base, ""), fragments, cache, flags)
    if not path.exists():   # the base's .config, as its fragments make it (cached)
        log.parent.mkdir(parents=True, exist_ok=True)
        with ws.checkout(base) as checkout:
            path = make_config(arch, checkout, fragments, cache, flags, log, lenient)
    config = parse_config(path.read_text())
    want = wanted(lambda p: ws.show(head, p), diff, config)
    if not want:
        return None, {}
    @functools.cache
    def definition(symbol: str) -> str | None:   # none for another arch's own symbols
        found = ws.kconfig_block(head, symbol)
        if found is None or (found[0].startswith("arch/") and not found[0].startswith(f"arch/{src_arch(arch)}/")):
            return None
        return found[1]
    options = [o for o in with_dependencies(list(want), definition, config) if definition(o[len("CONFIG_"):])]
    if not options:
        return None, {}
    fragment = _fragment(cache, "kconfig-auto", "".join(f"{o}=y\n" for o in options))
    for o in options:
        progress.info(f"kconfig {arch.name}: asking {o}=y: " + (f"{want[o]} needs it" if o in want else "a dependency"))
    return fragment, {o: want.get(o, "") for o in options}


def auto_said(asked: dict[str, str], config_text: str) -> tuple[str, ...]:
    """What the auto fragment did in the kernel built with it: each option turned on, or not
    taken (a dependency the merge could not meet: the row's "not built" line names the code)."""
    config = parse_config(config_text)
    return tuple((f"{o}=y turned on in both kernels" if config.get(o) == "y" else f"{o}=y asked for but not taken "
                  "by this .config (a dependency off)") + (f": {why} needs it" if why else ": a dependency")
                 for o, why in asked.items())
