"""The output formats, one registry: each a function of a RunReport to text, and the file of the
run directory it is written to (None: printed on request only, `kharness report --format`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.core.cache import atomic_file
from harness.output.b4check import b4_check
from harness.output.kcidb import kcidb_json
from harness.output.render import junit, markdown, record, summary
from harness.output.runreport import RunReport
from harness.verdict.results import RunMeta, RunRecord
from harness.verdict.table import Row


@dataclass(frozen=True)
class Format:
    render: Callable[[RunReport], str]
    file: str | None = None   # written into every run directory under this name
    help: str = ""


FORMATS: dict[str, Format] = {
    "txt": Format(summary, "summary.txt", "plain text of 80 columns: a terminal, a mail"),
    "md": Format(markdown, "summary.md", "Markdown, to paste into a reply or a web UI"),
    "junit": Format(junit, "junit.xml", "JUnit XML for CI dashboards"),
    "ab": Format(record, None, "the A/B record kept beside a series (kernel-patches/NAME.ab.json)"),
    "kcidb": Format(kcidb_json, None, "KernelCI KCIDB JSON (schema v5.3), for kcidb-submit"),
    "b4": Format(b4_check, None, "b4's external check JSON (b4 review; kharness b4-check finds the run)"),
}


def render(run_dir: Path, meta: RunMeta, runs: list[RunRecord], table: list[Row] | None = None) -> list[Row]:
    """Every format that has a file, into ``run_dir``, all from the same records as report.json
    (and its table, when the caller has it already)."""
    rr = RunReport(table, runs, meta, run_dir) if table is not None else RunReport.of(run_dir, meta, runs)
    for fmt in FORMATS.values():
        if fmt.file:
            with atomic_file(run_dir / fmt.file, "w") as f:   # replaces a symlink there, never follows it
                f.write(fmt.render(rr))
    return rr.table
