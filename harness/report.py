"""Results as data: one record per (arch, variant, scenario), the verdict table, report.json."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .cache import atomic_file

SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)   # 1 had no profile, kind, metrics or tests: their defaults fill in

# Verdicts of one variant on its own, and of the A/B comparison.
REPRODUCED, NOT_REPRODUCED, FIXED, STILL_BROKEN, ERROR = (
    "REPRODUCED", "NOT-REPRODUCED", "FIXED", "STILL-BROKEN", "ERROR")
HOLDS, BROKEN = "HOLDS", "BROKEN"                              # invariant scenarios
RAN, NO_REGRESSION, REGRESSED = "RAN", "NO-REGRESSION", "REGRESSED"  # selftests
# What a row must show for the run to pass, by scenario kind and by the variants that ran.
GOOD = {("fix", 2): FIXED, ("fix", "base"): REPRODUCED, ("fix", "patched"): FIXED,
        ("invariant", 2): HOLDS, ("invariant", "base"): HOLDS, ("invariant", "patched"): HOLDS,
        ("selftests", 2): NO_REGRESSION, ("selftests", "base"): RAN, ("selftests", "patched"): RAN}


@dataclass(frozen=True)
class ScenarioResult:
    """What one scenario showed on one kernel; ``error`` set means no number is to be trusted."""

    arch: str
    variant: str
    scenario: str
    iterations: int
    expectation: str            # the bound this variant is judged by, in words
    before: int | None = None
    after: int | None = None
    delta: int | None = None
    held: bool | None = None    # the variant's expectation held (bug present on base, absent on patched)
    settle_seconds: float | None = None
    script_seconds: float | None = None
    error: str | None = None
    log: str | None = None
    kind: str = "fix"
    profile: str = "default"
    show: tuple[str, ...] = ("delta",)                    # the metrics the table shows
    metrics: dict[str, int] = field(default_factory=dict)
    tests: dict[str, str] = field(default_factory=dict)   # selftests: "program:test" -> result
    failed: tuple[str, ...] = ()                          # the expectations that did not hold

    @property
    def verdict(self) -> str:
        if self.error is not None or self.held is None:
            return ERROR
        if self.kind == "selftests":
            return RAN
        if self.kind == "invariant":
            return HOLDS if self.held else BROKEN
        if self.variant == "base":
            return REPRODUCED if self.held else NOT_REPRODUCED
        return FIXED if self.held else STILL_BROKEN


@dataclass(frozen=True)
class RunRecord:
    """One booted kernel: how it was built and booted, and its scenarios."""

    arch: str
    variant: str
    profile: str = "default"
    kernel_version: str | None = None
    commit: str | None = None
    kernel_key: str | None = None
    config_sha256: str | None = None
    toolchain: str | None = None
    build_cached: bool | None = None
    objects_compiled: int | None = None
    accel: str | None = None
    accel_reason: str | None = None
    image_key: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    scenarios: tuple[ScenarioResult, ...] = ()
    boots: dict[str, float] = field(default_factory=dict)   # seconds to SSH, per kernel command line
    error: str | None = None
    log: str | None = None


def ab_verdict(base: ScenarioResult | None, patched: ScenarioResult | None) -> str:
    """FIXED only when the base kernel reproduces the bug and the patched one does not."""
    present = [r for r in (base, patched) if r is not None]
    if not present or any(r.verdict == ERROR for r in present):
        return ERROR
    if base is None or patched is None:
        return present[0].verdict
    if not base.held:
        return NOT_REPRODUCED
    return FIXED if patched.held else STILL_BROKEN


TEST_RANK = {"pass": 2, "skip": 1, "fail": 0}   # a selftest's results, best first


def selftest_regressions(base: ScenarioResult, patched: ScenarioResult) -> list[str]:
    """The tests patched does worse on than base in every run (a test missing on patched
    counts as failed); a flaky test on either side is no regression but a note."""
    return [f"{t}: {r} -> {patched.tests.get(t, 'missing')}" for t, r in sorted(base.tests.items())
            if r != "flaky" and patched.tests.get(t) != "flaky"
            and TEST_RANK[patched.tests.get(t, "fail")] < TEST_RANK[r]]


def selftest_flaky(base: ScenarioResult, patched: ScenarioResult | None) -> list[str]:
    both = [base] + ([patched] if patched else [])
    names = sorted({t for r in both for t, v in r.tests.items() if v == "flaky"})
    return [f"{t}: " + ", ".join(f"{r.variant} {r.tests.get(t, 'missing')}" for r in both) for t in names]


@dataclass(frozen=True)
class Row:
    arch: str
    scenario: str
    base: ScenarioResult | None
    patched: ScenarioResult | None
    profile: str = "default"

    @property
    def kind(self) -> str:
        return next(r.kind for r in (self.base, self.patched) if r is not None)

    @property
    def verdict(self) -> str:
        present = [r for r in (self.base, self.patched) if r is not None]
        if self.kind == "fix":
            return ab_verdict(self.base, self.patched)
        if any(r.verdict == ERROR for r in present):
            return ERROR
        if self.kind == "invariant":
            return HOLDS if all(r.held for r in present) else BROKEN
        if self.base is None or self.patched is None:
            return RAN
        return REGRESSED if selftest_regressions(self.base, self.patched) else NO_REGRESSION

    @property
    def ok(self) -> bool:
        """The row shows what it must for the run to pass."""
        ran = 2 if self.base and self.patched else ("base" if self.base else "patched")
        return self.verdict == GOOD[(self.kind, ran)]


def rows(runs: list[RunRecord]) -> list[Row]:
    table: dict[tuple[str, str, str], dict[str, ScenarioResult]] = {}
    for run in runs:
        for s in run.scenarios:
            table.setdefault((s.arch, s.scenario, s.profile), {})[s.variant] = s
    return [Row(arch, scen, v.get("base"), v.get("patched"), profile)
            for (arch, scen, profile), v in table.items()]


def passed(table: list[Row]) -> bool:
    """Every row shows what the run set out to show (FIXED, HOLDS, NO-REGRESSION, ...)."""
    return bool(table) and all(r.ok for r in table)


def _value(r: ScenarioResult | None) -> str:
    if r is None:
        return "-"
    if r.error is not None or r.held is None:
        return "error"
    if r.kind == "selftests":
        counts = {k: sum(v == k for v in r.tests.values()) for k in ("pass", "fail", "skip", "flaky")}
        return (f"{counts['pass']} pass, {counts['fail']} fail, {counts['skip']} skip"
                + (f", {counts['flaky']} flaky" if counts["flaky"] else ""))
    text = ", ".join(f"{r.before} -> {r.after} ({r.delta:+d})" if k == "delta" else
                     f"{k} {r.metrics.get(k, '?')}" for k in r.show)
    return text if not r.failed or r.kind != "invariant" else text + " [" + "; ".join(r.failed) + "]"


def _profiles(table: list[Row]) -> list[str]:
    return list(dict.fromkeys(r.profile for r in table))


def table_lines(table: list[Row]) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The A/B table's header and rows; a profile column when any profile but the default ran."""
    with_profile = _profiles(table) != ["default"]
    header = ("arch", "scenario", *(("profile",) if with_profile else ()), "base", "patched", "verdict")
    lines = [(r.arch, r.scenario, *((r.profile,) if with_profile else ()), _value(r.base),
              _value(r.patched), r.verdict) for r in table]
    return header, lines


def pivot_lines(table: list[Row]) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """arch, scenario and a verdict column per profile (when more than one profile ran)."""
    profiles = _profiles(table)
    verdicts = {(r.arch, r.scenario, r.profile): r.verdict for r in table}
    keys = list(dict.fromkeys((r.arch, r.scenario) for r in table))
    return (("arch", "scenario", *profiles),
            [(a, s, *(verdicts.get((a, s, p), "-") for p in profiles)) for a, s in keys])


def notes(table: list[Row]) -> list[str]:
    """What a verdict other than the good one rests on: failed bounds, regressed selftests."""
    out = []
    for r in table:
        where = f"{r.arch} {r.scenario}" + (f" ({r.profile})" if r.profile != "default" else "")
        if r.kind == "selftests" and r.verdict == REGRESSED:
            out += [f"{where}: regressed {x}" for x in selftest_regressions(r.base, r.patched)]
        if r.kind == "selftests" and r.verdict != ERROR and (r.base or r.patched):
            first = r.base or r.patched
            out += [f"{where}: flaky {x}" for x in selftest_flaky(first, r.patched if r.base else None)]
        for s in (r.base, r.patched):
            if s is not None and s.failed and not r.ok:
                out.append(f"{where} {s.variant}: not held: {'; '.join(s.failed)}")
    return out


def _text_table(header: tuple[str, ...], lines: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*header), fmt.format(*("-" * w for w in widths))] + [fmt.format(*x) for x in lines]


def summary(table: list[Row], runs: list[RunRecord], meta: dict[str, Any] | None = None) -> str:
    """The A/B table and where the time went, short enough to paste into a mail."""
    out = _text_table(*table_lines(table))
    if len(_profiles(table)) > 1:
        out += [""] + _text_table(*pivot_lines(table))
    out += notes(table)
    if meta and meta.get("seconds") is not None:
        jobs = meta.get("jobs", 1)
        out.append(f"total {meta['seconds']:.1f} s" + (
            f"; up to {jobs} guests at once, so the stage times below overlap" if jobs > 1 else ""))
    for run in runs:
        t = ", ".join(f"{k} {v:.1f} s" for k, v in run.timings.items())
        profile = f" ({run.profile})" if run.profile != "default" else ""
        out.append(f"{run.arch}/{run.variant}{profile}: {run.accel or '?'}; {t}")
        if run.error:
            out.append(f"  ERROR {run.error}")
        for s in run.scenarios:
            if s.error and s.error != run.error:
                out.append(f"  ERROR {s.scenario}: {s.error}")
    return "\n".join(out)


def to_json(meta: dict[str, Any], runs: list[RunRecord], table: list[Row]) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        **meta,
        "runs": [
            {**asdict(run), "scenarios": [{**asdict(s), "verdict": s.verdict} for s in run.scenarios]}
            for run in runs
        ],
        "table": [
            {"arch": r.arch, "scenario": r.scenario, "profile": r.profile, "kind": r.kind,
             "verdict": r.verdict, "ok": r.ok,
             "base": asdict(r.base) if r.base else None,
             "patched": asdict(r.patched) if r.patched else None}
            for r in table
        ],
    }


def markdown(meta: dict[str, Any], table: list[Row], runs: list[RunRecord]) -> str:
    """The A/B table as Markdown, short enough to paste into a reply on the list."""
    kernel = meta.get("kernel", {})
    title = meta.get("series", {}).get("title", "")
    head = f"**{title}** on " if title else ""
    out = [f"{head}Linux {kernel.get('version', '?')} ({kernel.get('origin', '?')}), "
           f"kharness {meta.get('kharness', '?')}", ""]
    for header, lines in [table_lines(table)] + ([pivot_lines(table)] if len(_profiles(table)) > 1 else []):
        out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(line) + " |" for line in lines]
        out.append("")
    out += [f"- {n}" for n in notes(table)]
    out.append("")
    for run in runs:
        t = ", ".join(f"{k} {v:.1f} s" for k, v in run.timings.items())
        profile = f" ({run.profile})" if run.profile != "default" else ""
        out.append(f"- {run.arch}/{run.variant}{profile}: {run.accel_reason or run.accel or '?'}; {t}")
        if run.error:
            out.append(f"  - ERROR {run.error}")
    return "\n".join(out) + "\n"


def run_dir_name(arch: str, variant: str, profile: str = "default") -> str:
    """The directory of one kernel's logs in a run directory."""
    return f"{arch}-{variant}" + ("" if profile == "default" else f"-{profile}")


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def junit(run_dir: Path, runs: list[RunRecord]) -> str:
    """A testcase per arch x scenario x variant: a failed expectation is a failure, a stage
    that broke is an error, each with the guest's output and the console's tail attached."""
    from xml.etree import ElementTree as ET

    results = [s for run in runs for s in run.scenarios]
    suite = ET.Element("testsuite", name="kharness", tests=str(len(results)),
                       failures=str(sum(s.verdict in (NOT_REPRODUCED, STILL_BROKEN, BROKEN) for s in results)),
                       errors=str(sum(s.verdict == ERROR for s in results)))
    for s in results:
        profile = "" if s.profile == "default" else f"-{s.profile}"
        case = ET.SubElement(suite, "testcase", classname=f"kharness.{s.arch}",
                             name=f"{s.scenario}[{s.variant}{profile}]",
                             time=str(s.script_seconds or 0))
        if s.verdict == ERROR:
            ET.SubElement(case, "error", message=s.error or "no result").text = s.log or ""
        elif s.verdict in (NOT_REPRODUCED, STILL_BROKEN, BROKEN):
            ET.SubElement(case, "failure", message=(
                f"{s.verdict}: {_value(s)}, expected {s.expectation}: not held: {'; '.join(s.failed)}"))
        out_dir = run_dir / run_dir_name(s.arch, s.variant, s.profile)
        ET.SubElement(case, "system-out").text = _tail(out_dir / f"{s.scenario}.out")
        ET.SubElement(case, "system-err").text = _tail(out_dir / "console.log")
    return ET.tostring(suite, encoding="unicode") + "\n"


def render(run_dir: Path, meta: dict[str, Any], runs: list[RunRecord]) -> list[Row]:
    """summary.txt, summary.md and junit.xml, all from the same records as report.json."""
    table = rows(runs)
    (run_dir / "summary.txt").write_text(summary(table, runs, meta) + "\n")
    (run_dir / "summary.md").write_text(markdown(meta, table, runs))
    (run_dir / "junit.xml").write_text(junit(run_dir, runs))
    return table


def write(run_dir: Path, meta: dict[str, Any], runs: list[RunRecord]) -> list[Row]:
    with atomic_file(run_dir / "report.json", "w") as f:
        json.dump(to_json(meta, runs, rows(runs)), f, indent=2)
        f.write("\n")
    return render(run_dir, meta, runs)


def load(run_dir: Path) -> tuple[dict[str, Any], list[RunRecord]]:
    """The metadata and records of a report.json (to render its reports again)."""
    data = json.loads((run_dir / "report.json").read_text())
    if data.get("schema") not in READABLE_SCHEMAS:
        raise ValueError(f"{run_dir / 'report.json'}: schema {data.get('schema')}, "
                         f"this kharness reads {', '.join(map(str, READABLE_SCHEMAS))}")
    runs = []
    for run in data["runs"]:
        scenarios = tuple(ScenarioResult(**{k: tuple(v) if k in ("failed", "show") else v
                                            for k, v in s.items() if k != "verdict"})
                          for s in run["scenarios"])
        runs.append(RunRecord(**{**run, "scenarios": scenarios}))
    meta = {k: v for k, v in data.items() if k not in ("runs", "table")}
    return meta, runs
