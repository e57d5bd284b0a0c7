"""What people and CI read, rendered from the records report.json holds: summary.txt (the
terminal, a mail), summary.md (web UIs), junit.xml (CI dashboards)."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from .kinds import ERROR, kind
from .report import Row, rows
from .results import RunMeta, RunRecord, ScenarioResult, console_name


def _profiles(table: list[Row]) -> list[str]:
    return list(dict.fromkeys(r.profile for r in table))


def table_lines(table: list[Row]) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The A/B table's header and rows; a profile column when any profile but the default ran."""
    with_profile = _profiles(table) != ["default"]
    header = ("arch", "scenario", *(("profile",) if with_profile else ()), "base", "patched", "verdict")
    lines = [(r.arch, r.scenario, *((r.profile,) if with_profile else ()), r.cell(r.base),
              r.cell(r.patched), r.verdict) for r in table]
    return header, lines


def pivot_lines(table: list[Row]) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """arch, scenario and a verdict column per profile (when more than one profile ran)."""
    profiles = _profiles(table)
    verdicts = {(r.arch, r.scenario, r.profile): r.verdict for r in table}
    keys = list(dict.fromkeys((r.arch, r.scenario) for r in table))
    return (("arch", "scenario", *profiles),
            [(a, s, *(verdicts.get((a, s, p), "-") for p in profiles)) for a, s in keys])


def notes(table: list[Row]) -> list[str]:
    return [n for r in table for n in r.notes()]


def _text_table(header: tuple[str, ...], lines: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*header), fmt.format(*("-" * w for w in widths))] + [fmt.format(*x) for x in lines]


def _timings(run: RunRecord) -> str:
    return ", ".join(f"{k} {v:.1f} s" for k, v in run.timings.items())


def summary(table: list[Row], runs: list[RunRecord], meta: RunMeta | None = None) -> str:
    """The A/B table and where the time went, short enough to paste into a mail."""
    out = _text_table(*table_lines(table))
    if len(_profiles(table)) > 1:
        out += [""] + _text_table(*pivot_lines(table))
    out += notes(table)
    if meta and meta.seconds is not None:
        out.append(f"total {meta.seconds:.1f} s" + (
            f"; up to {meta.jobs} guests at once, so the stage times below overlap" if meta.jobs > 1 else ""))
    for run in runs:
        out.append(f"{run.kernel.label}: {run.accel or '?'}; {_timings(run)}")
        if run.error:
            out.append(f"  ERROR {run.error}")
        for s in run.scenarios:
            if s.error and s.error != run.error:
                out.append(f"  ERROR {s.scenario}: {s.error}")
    return "\n".join(out)


def markdown(meta: RunMeta, table: list[Row], runs: list[RunRecord]) -> str:
    """The A/B table as Markdown, short enough to paste into a reply on the list."""
    head = f"**{meta.series.title}** on " if meta.series else ""
    out = [f"{head}Linux {meta.kernel.version or '?'} ({meta.kernel.origin or '?'}), "
           f"kharness {meta.kharness}", ""]
    for header, lines in [table_lines(table)] + ([pivot_lines(table)] if len(_profiles(table)) > 1 else []):
        out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(line) + " |" for line in lines]
        out.append("")
    out += [f"- {n}" for n in notes(table)]
    out.append("")
    for run in runs:
        out.append(f"- {run.kernel.label}: {run.accel_reason or run.accel or '?'}; {_timings(run)}")
        if run.error:
            out.append(f"  - ERROR {run.error}")
    return "\n".join(out) + "\n"


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _cell(s: ScenarioResult) -> str:
    return "error" if s.error is not None or s.held is None else kind(s.kind).cell(s)


def junit(run_dir: Path, runs: list[RunRecord]) -> str:
    """A testcase per arch x scenario x variant: a failed expectation is a failure, a stage
    that broke is an error, each with the guest's output and the tail of the console of the
    guest it ran on attached."""
    results = [s for run in runs for s in run.scenarios]
    failed = sum(s.verdict in kind(s.kind).failures for s in results)
    suite = ET.Element("testsuite", name="kharness", tests=str(len(results)), failures=str(failed),
                       errors=str(sum(s.verdict == ERROR for s in results)))
    for s in results:
        profile = "" if s.profile == "default" else f"-{s.profile}"
        case = ET.SubElement(suite, "testcase", classname=f"kharness.{s.arch}",
                             name=f"{s.scenario}[{s.variant}{profile}]",
                             time=str(s.script_seconds or 0))
        if s.verdict == ERROR:
            ET.SubElement(case, "error", message=s.error or "no result").text = s.log or ""
        elif s.verdict in kind(s.kind).failures:
            ET.SubElement(case, "failure", message=(
                f"{s.verdict}: {_cell(s)}, expected {s.expectation}: not held: {'; '.join(s.failed)}"))
        out_dir = run_dir / s.kernel.dir_name
        ET.SubElement(case, "system-out").text = _tail(out_dir / f"{s.scenario}.out")
        ET.SubElement(case, "system-err").text = _tail(out_dir / console_name(s.cmdline))
    return ET.tostring(suite, encoding="unicode") + "\n"


def render(run_dir: Path, meta: RunMeta, runs: list[RunRecord]) -> list[Row]:
    """summary.txt, summary.md and junit.xml, all from the same records as report.json."""
    table = rows(runs)
    (run_dir / "summary.txt").write_text(summary(table, runs, meta) + "\n")
    (run_dir / "summary.md").write_text(markdown(meta, table, runs))
    (run_dir / "junit.xml").write_text(junit(run_dir, runs))
    return table
