"""What every output format is made from: one run's records, their verdict table, its metadata
and its directory. Each format (formats.FORMATS) is a function of a RunReport to text."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.verdict.results import RunMeta, RunRecord
from harness.verdict.table import Row, rows


@dataclass(frozen=True)
class RunReport:
    table: list[Row]
    runs: list[RunRecord] = field(default_factory=list)
    meta: RunMeta | None = None
    run_dir: Path | None = None   # where its logs are (junit's console tails, KCIDB's log urls)
    origin: str = "kharness"      # who submits it (KCIDB's origin)

    @classmethod
    def of(cls, run_dir: Path | None, meta: RunMeta | None, runs: list[RunRecord], **kw) -> RunReport:
        return cls(rows(runs), runs, meta, run_dir, **kw)
