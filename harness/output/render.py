"""What people and CI read, rendered from the records report.json holds: summary.txt (the
terminal, a mail), summary.md (web UIs), junit.xml (CI dashboards), the A/B record. Each is a
function of a RunReport (formats.FORMATS)."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from xml.etree import ElementTree as ET

from harness.output.runreport import RunReport
from harness.verdict.kinds import ERROR, kind
from harness.verdict.testruns import judge_tests
from harness.verdict.results import RunMeta, RunRecord, console_name
from harness.verdict.table import Row


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


def _timings(run: RunRecord, nbsp: str = " ") -> str:
    return ", ".join(f"{k} {v:.1f} s".replace(" ", nbsp) for k, v in run.timings.items())


WIDTH = 80   # summary.txt goes into mails: plain text, no line longer than this
LEGEND = ("A -> B (+N): the memory controller's cgroups (/proc/cgroups; cgroup.stat on v2) before "
          "and after the scenario, N the ones it left; NAME N: a metric the scenario's script "
          "reported. README, \"Reading a verdict\", says what each verdict means.")


def _wrap(text: str, first: str = "", rest: str | None = None) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=first, break_on_hyphens=False,
                         subsequent_indent=" " * len(first) if rest is None else rest,
                         break_long_words=False) or [first.rstrip()]


def _header(meta: RunMeta, runs: list[RunRecord]) -> list[str]:
    out = _wrap(f"kharness {meta.kharness}" + (f": {meta.series.title}" if meta.series and meta.series.title
                                                else ""))
    if meta.series:
        s = meta.series
        n = len(s.patches)
        out += _wrap(f"{s.name}, {n} patch{'es' if n != 1 else ''}, sha256 {s.sha256[:16]}"
                     + (f", from {s.origin}" if s.origin else ""), "series   ")
    k = meta.kernel
    out += _wrap(f"{meta.kernel.name}: Linux {k.version or '?'}, {k.origin or k.provider or '?'}", "base     ")
    out += _wrap(", ".join(meta.profiles), "profile  ")
    guests = {}
    for run in runs:
        cpus = f", {run.vcpus} vCPU{'s' if run.vcpus > 1 else ''}" if run.vcpus else ""
        guests.setdefault(f"{run.arch} {run.accel or '?'}{cpus}", None)
    results = [s for run in runs for s in run.scenarios if s.fresh_guest is not None]
    shared = sorted({s.scenario for s in results if not s.fresh_guest})
    if results:
        guests["scenarios on a guest another ran on: " + ", ".join(shared) if shared
               else "a freshly booted guest per scenario"] = None
    if guests:
        out += _wrap("; ".join(guests), "guests   ")
    return out


def _rows(table: list[Row]) -> list[str]:
    """A block per row: arch, scenario, (profile,) verdict, then base's and patched's cells."""
    profiles = _profiles(table) != ["default"]
    keys = [(r.arch, r.scenario, *((r.profile,) if profiles else ())) for r in table]
    widths = [max(len(x) for x in col) for col in zip(*keys)] if keys else []
    out = []
    for row, key in zip(table, keys):
        out.append("  ".join(x.ljust(w) for x, w in zip(key, widths)) + "  " + row.verdict)
        for label, result in (("base", row.base), ("patched", row.patched)):
            if result is not None:
                out += _wrap(row.cell(result), f"    {label:<9}")
    return out


def _result(table: list[Row]) -> list[str]:
    if not table:
        return ["Result: nothing ran"]
    bad = [r for r in table if not r.ok]
    line = f"Result: {len(table) - len(bad)}/{len(table)} rows as expected"
    if bad:
        line += "; not: " + ", ".join(f"{r.where} {r.verdict}" for r in bad)
    return _wrap(line, "", "  ")


def summary(rr: RunReport) -> str:
    """The run for a mail or a terminal: what was tested, a block per row, the notes, where the
    time went and the result, in plain text of at most 80 columns."""
    table, runs, meta = rr.table, rr.runs, rr.meta
    out = (_header(meta, runs) + [""]) if meta else []
    out += _rows(table)
    if len(_profiles(table)) > 1:
        out += [""] + _text_table(*pivot_lines(table))
    out.append("")
    for n in notes(table):
        out += _wrap(n, "", "  ")
    if table:
        out += _wrap(LEGEND)
    out.append("")
    if meta and meta.seconds is not None:
        out += _wrap(f"total {meta.seconds:.1f} s" + (
            f"; up to {meta.jobs} guests at once, so the stage times below overlap" if meta.jobs > 1 else ""))
    for run in runs:
        # a stage and its time stay on one line: wrapped with no-break spaces, then made plain
        out += [line.replace("\xa0", " ") for line in
                _wrap(f"{run.kernel.label}: {run.accel or '?'}; {_timings(run, chr(0xa0))}", "", "  ")]
        if run.error:
            out += _wrap(f"ERROR {run.error}", "  ")
        for line in run.not_built:
            out += _wrap(line, "  ")
        for s in run.scenarios:
            if s.error and s.error != run.error:
                out += _wrap(f"ERROR {s.scenario}: {s.error}", "  ")
    return "\n".join(out + [""] + _result(table) + _tested_by(table, runs, meta)) + "\n"


def tested_by_ident() -> str:
    """Who the Tested-by: names: $KHARNESS_TESTED_BY ("Name <address>"), else a placeholder."""
    return os.environ.get("KHARNESS_TESTED_BY", "").strip() or "NAME <ADDRESS>"


def _tested_by(table: list[Row], runs: list[RunRecord], meta: RunMeta | None) -> list[str]:
    """A Tested-by: block to paste into a reply to the series, when every row is as it must be,
    compared base against patched (a kernel of one variant alone judged nothing), and no
    kernel of the run failed (one whose profile runs no row fails only in its record)."""
    if (meta is None or meta.series is None or not table or not all(r.ok for r in table)
            or any(r.base is None or r.patched is None for r in table) or any(r.error for r in runs)):
        return []
    arches = sorted({r.arch for r in runs})
    accel = sorted({r.accel for r in runs if r.accel})
    what = (f"Linux {meta.kernel.version or '?'} and {meta.series.name} on it (sha256 "
            f"{meta.series.sha256[:16]}), {' and '.join(arches)} under QEMU ({', '.join(accel) or '?'}), "
            f"profile{'s' if len(meta.profiles) > 1 else ''} {', '.join(meta.profiles)}: "
            f"{', '.join(sorted({r.scenario for r in table}))}")
    return ["", "Every row as expected; for a reply to the series:", "",
            f"Tested-by: {tested_by_ident()}", *_wrap(f"kharness {meta.kharness}: {what}", "  ", "  ")]


def record(rr: RunReport) -> str:
    """The A/B as a small JSON file to keep beside a series (kernel-patches/NAME.ab.json): which
    patches (their sha256), which base, and every row's verdict and cells; the tests hold a
    series whose patches changed since its last recorded A/B (tests/unit/test_recorded_ab.py)."""
    meta, table = rr.meta, rr.table
    if meta is None:
        raise ValueError("an A/B record needs the run's metadata")
    s = meta.series
    data = {"series": s.name if s else None, "sha256": s.sha256 if s else None,
            "kernel": {"name": meta.kernel.name, "version": meta.kernel.version},
            "kharness": meta.kharness, "started": meta.started, "command": meta.command,
            "profiles": list(meta.profiles), "result": " ".join(_result(table)),
            "rows": [{"arch": r.arch, "scenario": r.scenario, "profile": r.profile, "verdict": r.verdict,
                      "ok": r.ok, "base": r.cell(r.base), "patched": r.cell(r.patched),
                      "notes": r.notes()} for r in table]}
    return json.dumps(data, indent=1) + "\n"


def markdown(rr: RunReport) -> str:
    """The A/B table as Markdown, short enough to paste into a reply on the list."""
    meta, table, runs = rr.meta, rr.table, rr.runs
    if meta is None:
        raise ValueError("Markdown needs the run's metadata")
    head = ""
    if meta.series:   # which patches: ours from a directory, or a thread's from its mail
        s, n = meta.series, len(meta.series.patches)
        what = ", ".join(x for x in (f"{n} patch{'es' if n != 1 else ''}", s.origin,
                                     f"sha256 {s.sha256[:16]}" if s.sha256 else "") if x)
        head = f"**{s.title}** (`{s.name}`: {what}) on "
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
        out += [f"  - {line}" for line in run.not_built]
    return "\n".join(out) + "\n"


def _tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace").replace("\r\n", "\n").replace("\r", "")
        return "\n".join(text.splitlines()[-lines:])
    except OSError:
        return ""


def _selftest_cases(parent: ET.Element, row: Row) -> None:
    """Each selftest of a selftests row as a testcase: a failure when patched does worse than
    base (a regression) or both kernels fail it some of the time (flaky), skipped when it fails
    or skips on the kernels that ran it alike."""
    results = [r for r in (row.base, row.patched) if r is not None and r.error is None]
    judged = ({j.test: j for j in judge_tests(row.base, row.patched)}
              if len(results) == 2 and row.base and row.patched else {})
    for test in sorted({t for r in results for t in r.tests}):
        seen = ", ".join(f"{r.variant} {r.tests.get(test, 'missing')}" for r in results)
        case = ET.SubElement(parent, "testcase", classname=f"kharness.{row.arch}.{row.scenario}", name=test)
        j = judged.get(test)
        if j is not None and j.verdict in ("regressed", "flaky"):
            ET.SubElement(case, "failure", message=f"{j.verdict}: {j.words}")
        elif all(r.tests.get(test) in ("fail", "skip", None) for r in results):
            ET.SubElement(case, "skipped", message=f"not a pass on any kernel: {seen}")
        elif any(r.tests.get(test) == "flaky" for r in results):
            ET.SubElement(case, "system-out").text = f"flaky: {seen}"


def junit(rr: RunReport) -> str:
    """A testsuite per arch, a testcase per row of the A/B table: its good verdict passes, any
    other is a failure, ERROR an error. Each selftest is a testcase of its own. A testcase
    carries the scripts' output and the console tail of the guest that went wrong (else the
    last one it ran on)."""
    run_dir, meta, runs, table = rr.run_dir or Path("."), rr.meta, rr.runs, rr.table
    top = ET.Element("testsuites", name="kharness")
    accel = {r.arch: r.accel for r in runs if r.accel}
    for arch in dict.fromkeys(r.arch for r in table):
        suite = ET.SubElement(top, "testsuite", name=f"kharness.{arch}")
        props = ET.SubElement(suite, "properties")
        values = {"arch": arch, "accel": accel.get(arch)}
        if meta:
            values |= {"kernel": meta.kernel.name, "kernel.version": meta.kernel.version,
                       "kernel.origin": meta.kernel.origin, "profiles": ",".join(meta.profiles)}
            if meta.series:
                values |= {"series": meta.series.name, "series.sha256": meta.series.sha256,
                           "series.patches": str(len(meta.series.patches))}
        for k, v in values.items():
            if v:
                ET.SubElement(props, "property", name=k, value=v)
        for row in (r for r in table if r.arch == arch):
            present = [r for r in (row.base, row.patched) if r is not None]
            profile = "" if row.profile == "default" else f"[{row.profile}]"
            case = ET.SubElement(suite, "testcase", classname=f"kharness.{arch}", name=row.scenario + profile,
                                 time=f"{sum(r.script_seconds or 0 for r in present):.2f}")
            cells = "; ".join(f"{r.variant} {row.cell(r)}" for r in present)
            if row.verdict == ERROR:
                bad = next((r for r in present if r.error is not None), present[-1])
                ET.SubElement(case, "error", message=f"{bad.variant}: {bad.error or 'no result'}").text = (
                    "\n".join(row.notes()) or bad.log or "")
            elif not row.ok:
                bad = next((r for r in present if not r.held), present[-1])
                ET.SubElement(case, "failure", message=f"{row.verdict}: {cells}").text = "\n".join(row.notes())
            else:
                bad = present[-1]
            out = []
            for r in present:
                out += [f"== {r.variant}: {row.cell(r)} (expected {r.expectation})",
                        _tail(run_dir / r.kernel.dir_name / f"{r.scenario}.out")]
            ET.SubElement(case, "system-out").text = "\n".join(out)
            ET.SubElement(case, "system-err").text = _tail(run_dir / bad.kernel.dir_name / console_name(bad.cmdline))
            if kind(row.kind).has_tests:
                _selftest_cases(suite, row)
        cases = suite.findall("testcase")
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(sum(c.find("failure") is not None for c in cases)))
        suite.set("errors", str(sum(c.find("error") is not None for c in cases)))
        suite.set("skipped", str(sum(c.find("skipped") is not None for c in cases)))
    for attr in ("tests", "failures", "errors", "skipped"):
        top.set(attr, str(sum(int(s.get(attr)) for s in top)))
    ET.indent(top)
    return ET.tostring(top, encoding="unicode") + "\n"
