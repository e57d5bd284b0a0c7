"""The tree's own tests (configs/tests.yaml): how a kselftest collection runs as a scenario, and
which tests a series' changed paths call for (``--tests auto``), with the reason for each."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

from harness.config.loader import CONFIG_DIR, load
from harness.core.errors import ConfigError

PREFIX = "kselftest:"
KUNIT_PREFIX = "kunit:"
SELFTESTS = "tools/testing/selftests/"
TARGET = re.compile(r"\w[\w.-]*(/\w[\w.-]*)*")


@dataclass(frozen=True)
class Collection:
    """What a kselftest collection needs beyond the defaults."""

    libs: tuple[str, ...] = ()   # Debian -dev packages of the guest's arch it links statically
    cmdline: str = ""
    timeout: float = 1200.0      # all its runs on one kernel
    iterations: int = 1          # runs per boot (more, when base and patched differ: confirm_runs)
    quiet_host: bool = True      # its timing tests must not measure a kernel build beside them
    test_timeout: int = 0        # each test's deadline instead of its settings' (0: theirs); kselftest.sh writes it there
    kconfig: tuple[str, ...] = ()   # CONFIG_X=V merged after its `config` (what it assumes of a defconfig)
    # a guest script (guest-scripts/) kselftest.sh sources before the runner: what the tests
    # assume of a machine (a disk, swap, mount options), the root they run in, wrappers
    setup: str = ""
    helpers: tuple[str, ...] = ()   # C programs of guest-scripts/ the setup uses, built static
    env: dict[str, str] = field(default_factory=dict)   # more environment for the setup and tests

    def validate(self, file: Path, where: str) -> None:
        if self.timeout <= 0 or self.iterations < 1:
            raise ConfigError(file, where, "expected a positive timeout and iterations")
        for option in self.kconfig:
            if not re.fullmatch(r"CONFIG_\w+=\S+", option):
                raise ConfigError(file, f"{where}kconfig", f"expected CONFIG_NAME=VALUE, got {option!r}")


@dataclass(frozen=True)
class PathRule:
    """Tests a changed path calls for: ``path`` a prefix of it (or an fnmatch pattern)."""

    path: str
    tests: tuple[str, ...]
    why: str

    def matches(self, changed: str) -> bool:
        return changed.startswith(self.path) or fnmatch.fnmatch(changed, self.path)


@dataclass(frozen=True)
class SuiteMap:
    collections: dict[str, Collection] = field(default_factory=dict)
    paths: tuple[PathRule, ...] = ()

    def validate(self, file: Path, where: str) -> None:
        for name in self.collections:
            if not TARGET.fullmatch(name):
                raise ConfigError(file, f"collections.{name}", "expected a directory under tools/testing/selftests")
        for i, rule in enumerate(self.paths):
            if not rule.tests or not rule.why:
                raise ConfigError(file, f"paths[{i}]", "expected tests and why")


def load_tests(path: Path = CONFIG_DIR / "tests.yaml") -> SuiteMap:
    return load(SuiteMap, path)


def maintainers_rules(text: str) -> tuple[PathRule, ...]:
    """Rules from MAINTAINERS: a section whose F: patterns name a selftests directory maps its
    other F: patterns to that collection."""
    rules = []
    for section in re.split(r"\n\s*\n", text):
        lines = section.strip().splitlines()
        if not lines:
            continue
        files = [line[2:].strip() for line in lines if line.startswith("F:")]
        # a directory names its collection; a file, the directory it is in
        targets = [f[len(SELFTESTS):].rstrip("/") if f.endswith("/") else f[len(SELFTESTS):].rpartition("/")[0]
                   for f in files if f.startswith(SELFTESTS)]
        targets = list(dict.fromkeys(t for t in targets if t and TARGET.fullmatch(t) and "*" not in t))
        for pattern in (f for f in files if not f.startswith(SELFTESTS)):
            rules.append(PathRule(pattern.replace("**", "*"), tuple(PREFIX + t for t in targets),
                                  f"MAINTAINERS: {lines[0].strip()}"))
    return tuple(r for r in rules if r.tests)


OWN_TEST = "a test of this collection changed"   # why a changed file under a collection chose it


def choose(changed: list[str], config: SuiteMap, maintainers: str = "") -> tuple[dict[str, list[str]], list[str]]:
    """The tests ``changed`` paths call for, each with why (``path``: reason), and the changed
    paths nothing covers."""
    chosen: dict[str, list[str]] = {}
    uncovered = []
    rules = (*config.paths, *maintainers_rules(maintainers))
    for path in changed:
        hits = [(t, f"{path}: {r.why}") for r in rules if r.matches(path) for t in r.tests]
        if path.startswith(SELFTESTS) and "/" in path[len(SELFTESTS):]:   # not the framework's own files
            target = path[len(SELFTESTS):].rsplit("/", 1)[0]
            hits.append((PREFIX + target, f"{path}: {OWN_TEST}"))
        for test, why in hits:
            chosen.setdefault(test, [])
            if why not in chosen[test]:
                chosen[test].append(why)
        if not hits:
            uncovered.append(path)
    return chosen, uncovered
