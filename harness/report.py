"""Results as data: one record per (arch, variant, scenario), the verdict table, report.json."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .cache import atomic_file

SCHEMA_VERSION = 1

# Verdicts of one variant on its own, and of the A/B comparison.
REPRODUCED, NOT_REPRODUCED, FIXED, STILL_BROKEN, ERROR = (
    "REPRODUCED", "NOT-REPRODUCED", "FIXED", "STILL-BROKEN", "ERROR")


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

    @property
    def verdict(self) -> str:
        if self.error is not None or self.held is None:
            return ERROR
        if self.variant == "base":
            return REPRODUCED if self.held else NOT_REPRODUCED
        return FIXED if self.held else STILL_BROKEN


@dataclass(frozen=True)
class RunRecord:
    """One booted kernel: how it was built and booted, and its scenarios."""

    arch: str
    variant: str
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


@dataclass(frozen=True)
class Row:
    arch: str
    scenario: str
    base: ScenarioResult | None
    patched: ScenarioResult | None

    @property
    def verdict(self) -> str:
        return ab_verdict(self.base, self.patched)


def rows(runs: list[RunRecord]) -> list[Row]:
    table: dict[tuple[str, str], dict[str, ScenarioResult]] = {}
    for run in runs:
        for s in run.scenarios:
            table.setdefault((s.arch, s.scenario), {})[s.variant] = s
    return [Row(arch, scen, v.get("base"), v.get("patched")) for (arch, scen), v in table.items()]


def passed(expected: str, table: list[Row]) -> bool:
    """Every row shows what the run set out to show (REPRODUCED, FIXED, ...)."""
    return bool(table) and all(r.verdict == expected for r in table)


def _value(r: ScenarioResult | None) -> str:
    if r is None:
        return "-"
    if r.error is not None or r.delta is None:
        return "error"
    return f"{r.before} -> {r.after} ({r.delta:+d})"


def summary(table: list[Row], runs: list[RunRecord]) -> str:
    """The A/B table and where the time went, short enough to paste into a mail."""
    header = ("arch", "scenario", "base", "patched", "verdict")
    lines = [(r.arch, r.scenario, _value(r.base), _value(r.patched), r.verdict) for r in table]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*line) for line in lines]
    for run in runs:
        t = ", ".join(f"{k} {v:.1f} s" for k, v in run.timings.items())
        out.append(f"{run.arch}/{run.variant}: {run.accel or '?'}; {t}")
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
            {"arch": r.arch, "scenario": r.scenario, "verdict": r.verdict,
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
           f"kharness {meta.get('kharness', '?')}", "",
           "| arch | scenario | base | patched | verdict |", "|---|---|---|---|---|"]
    out += [f"| {r.arch} | {r.scenario} | {_value(r.base)} | {_value(r.patched)} | {r.verdict} |"
            for r in table]
    out.append("")
    for run in runs:
        t = ", ".join(f"{k} {v:.1f} s" for k, v in run.timings.items())
        out.append(f"- {run.arch}/{run.variant}: {run.accel_reason or run.accel or '?'}; {t}")
        if run.error:
            out.append(f"  - ERROR {run.error}")
    return "\n".join(out) + "\n"


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
                       failures=str(sum(s.verdict in (NOT_REPRODUCED, STILL_BROKEN) for s in results)),
                       errors=str(sum(s.verdict == ERROR for s in results)))
    for s in results:
        case = ET.SubElement(suite, "testcase", classname=f"kharness.{s.arch}",
                             name=f"{s.scenario}[{s.variant}]",
                             time=str(s.script_seconds or 0))
        if s.verdict == ERROR:
            ET.SubElement(case, "error", message=s.error or "no result").text = s.log or ""
        elif s.verdict in (NOT_REPRODUCED, STILL_BROKEN):
            ET.SubElement(case, "failure", message=(
                f"{s.verdict}: {s.before} -> {s.after} (delta {s.delta}), expected {s.expectation}"))
        out_dir = run_dir / f"{s.arch}-{s.variant}"
        ET.SubElement(case, "system-out").text = _tail(out_dir / f"{s.scenario}.out")
        ET.SubElement(case, "system-err").text = _tail(out_dir / "console.log")
    return ET.tostring(suite, encoding="unicode") + "\n"


def render(run_dir: Path, meta: dict[str, Any], runs: list[RunRecord]) -> list[Row]:
    """summary.txt, summary.md and junit.xml, all from the same records as report.json."""
    table = rows(runs)
    (run_dir / "summary.txt").write_text(summary(table, runs) + "\n")
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
    if data.get("schema") != SCHEMA_VERSION:
        raise ValueError(f"{run_dir / 'report.json'}: schema {data.get('schema')}, "
                         f"this kharness reads {SCHEMA_VERSION}")
    runs = []
    for run in data["runs"]:
        scenarios = tuple(ScenarioResult(**{k: v for k, v in s.items() if k != "verdict"})
                          for s in run["scenarios"])
        runs.append(RunRecord(**{**run, "scenarios": scenarios}))
    meta = {k: v for k, v in data.items() if k not in ("runs", "table")}
    return meta, runs
