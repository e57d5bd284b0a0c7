"""KUnit results the kernel's own way: the tree's tools/testing/kunit/kunit.py parses the kernel
log (`kunit.py parse --json`), the parser kunit_tool runs on its own QEMU boots; kharness reads
its JSON. The tool is exported from the commit under test (its parser matches its KTAP) and
kept in the cache by git's id of the directory."""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.core import proc
from harness.core.cache import atomic_dir, complete, locked
from harness.core.errors import HarnessError
from harness.verdict.repeat import repeated

if TYPE_CHECKING:
    from harness.series.workspace import Workspace

TOOL = "tools/testing/kunit"
OUTCOME = {"PASS": "p", "SKIP": "s", "FAIL": "f"}


def kunit_tool(workspace: Workspace, commit: str, cache: Path) -> Path:
    """The tree's kunit.py (and its modules), exported once per version of the directory."""
    final = cache / "programs" / f"kunit-tool-{workspace.tree_id(commit, TOOL)[:24]}"
    with locked(final.with_suffix(".lock")):
        if not complete(final, (f"{TOOL}/kunit.py",)):
            with atomic_dir(final, owned=True) as tmp:
                workspace.export(commit, TOOL, tmp)
    return final / TOOL / "kunit.py"


# a file that registers suites (an extended regex, for git grep and re alike)
REGISTERS = r"kunit_test_(init_section_)?suites?\("


def suites_of(workspace: Workspace, commit: str, directory: str) -> tuple[str, ...]:
    """The KUnit suites defined under ``directory`` (a `.name = "..."` of a file that declares
    kunit_test_suite(s)): the kernel runs every suite built in, a kunit:DIR row judges its own."""
    names: list[str] = []
    for path in workspace.grep(commit, REGISTERS, directory):
        text = workspace.show(commit, path) or ""
        # the suites the file registers: each struct kunit_suite that kunit_test_suite(s)() names
        # (its test cases and a test's fake suites have a .name too)
        registered = [n for m in re.finditer(REGISTERS + r"([^)]*)\)", text)
                      for n in re.findall(r"&?\s*(\w+)", m.group(2))]
        found = [m for n in registered for m in re.findall(
            rf"struct kunit_suite\s+{n}\s*=\s*\{{.*?\.name\s*=\s*\"([^\"]+)\"", text, re.S)[:1]]
        names += found or re.findall(r"\.name\s*=\s*\"([^\"]+)\"", text)   # a macro's suites: every name
    return tuple(dict.fromkeys(names))


def boot_note(log: str, suites: tuple[str, ...]) -> tuple[str, ...]:
    """The suites' time at boot, in one line: their total and the slowest."""
    seconds = {s: t for s, t in suite_seconds(log).items() if not suites or s in suites}
    if not seconds:
        return ()
    slow = sorted(seconds.items(), key=lambda x: -x[1])[:3]
    return (f"KUnit at boot: {len(seconds)} suites in {sum(seconds.values()):.2f} s (slowest: "
            + ", ".join(f"{s} {t:.2f} s" for s, t in slow) + ")",)


def parse_kunit(tool: Path, log: str, what: str) -> dict[str, str]:
    """Each KUnit test of the kernel log ``log`` ("suite.test", a parameterized case
    "suite.test.case") -> p, f or s. No result at all, or a test the parser saw crash (the
    kernel died mid-suite), is an error naming what it can."""
    with tempfile.TemporaryDirectory(prefix="kharness-kunit-") as tmp:
        out = Path(tmp) / "kunit.json"
        r = proc.run([sys.executable, str(tool), "parse", f"--json={out}"], "scenario", 120, input=log,
                     check=False, what="kunit.py parse")
        try:
            data = json.loads(out.read_text())
        except (OSError, ValueError):
            raise HarnessError("scenario", f"{what}: kunit.py parse wrote no JSON (exit {r.returncode}): "
                               f"{(r.stderr or r.stdout or '').strip().splitlines()[-1:] or 'no output'}")
    results: dict[str, str] = {}
    _flatten(data, "", results, what)
    if not results:
        raise HarnessError("scenario", f"{what}: no KUnit result in the kernel log (CONFIG_KUNIT and the "
                           "suites' options built in? the kernel's `kernel lacks` note says)")
    return results


SUBTEST = re.compile(r"^\[\s*(\d+\.\d+)\]( +)(?:KTAP version \d+\s*)?# Subtest: (\S+)")
RESULT = re.compile(r"^\[\s*(\d+\.\d+)\]( +)(?:not )?ok \d+ (?:- )?(\S+)(?:\s+#.*)?$")


def suite_seconds(log: str) -> dict[str, float]:
    """Each top-level suite's time at boot, from the kernel log's timestamps (PRINTK_TIME):
    its "# Subtest:" line to its result line. A parameterized test's own "# Subtest:" is
    indented deeper than its suite's: not a suite."""
    started: dict[str, tuple[float, int]] = {}
    out: dict[str, float] = {}
    for line in log.splitlines():
        if m := SUBTEST.match(line):
            started.setdefault(m.group(3), (float(m.group(1)), len(m.group(2))))
        elif ((m := RESULT.match(line)) and m.group(3) in started and m.group(3) not in out
              and len(m.group(2)) + 4 == started[m.group(3)][1]):   # its own result: 4 columns out
            out[m.group(3)] = round(float(m.group(1)) - started[m.group(3)][0], 3)
    top = min((depth for _, depth in started.values()), default=0)
    return {suite: t for suite, t in out.items() if started[suite][1] == top}


def _flatten(group: dict[str, Any], prefix: str, out: dict[str, str], what: str) -> int:
    """The group's cases into ``out`` (a name seen again is a test of its own, "NAME#2"); a
    group whose counts hold more failures than its cases show (a parameterized test's own
    "not ok", its init or exit failing) gets a failed entry of its own name. Returns the
    failures recorded."""
    failed = 0
    for case in group.get("test_cases", []):
        name = repeated(f"{prefix}{case['name']}", out)
        if case["status"] == "ERROR":
            raise HarnessError("scenario", f"{what}: KUnit test {name} crashed (its suite did not finish)")
        out[name] = OUTCOME.get(case["status"], "f")
        failed += out[name] == "f"
    for sub in group.get("sub_groups", []):
        named = f"{prefix}{sub['name']}" if sub.get("name") else ""
        sub_failed = _flatten(sub, f"{named}." if named else prefix, out, what)
        counts = sub.get("misc") or {}
        if named and sum(counts.get(k) or 0 for k in ("failed", "crashed", "errors")) > sub_failed:
            out[repeated(named, out)] = "f"
            sub_failed += 1
        failed += sub_failed
    return failed
