"""One kernel of a run: its record, its stage timer and its log directory."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError, os_failure
from harness.verdict.results import KernelId, RunRecord, ScenarioResult


class KernelRun:
    """One kernel of the run: its record (what report.json says of it), its stage timer, its
    log directory, and the guests booted from it."""

    def __init__(self, kid: KernelId, run_dir: Path):
        self.id = kid
        self.out = run_dir / kid.dir_name
        self.timings: dict[str, float] = {}
        self._record = RunRecord(arch=kid.arch, variant=kid.variant, profile=kid.profile)
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def stage(self, name: str, stage: str) -> Iterator[None]:
        """Time a stage; an OSError in it (a full disk) is an ERROR of ``stage`` like any other."""
        start = time.monotonic()
        try:
            yield
        except OSError as e:
            raise os_failure(stage, e) from e
        finally:
            # a stage that repeats (a boot per scenario) adds up
            self.timings[name] = round(self.timings.get(name, 0.0) + time.monotonic() - start, 2)
            self.update(timings=dict(self.timings))

    def update(self, **fields: Any) -> None:
        with self._lock:
            self._record = replace(self._record, **fields)

    def fail(self, e: HarnessError) -> None:
        """The kernel's first error is its record's."""
        with self._lock:
            if not self._record.error:
                self._record = replace(self._record, error=str(e), log=str(e.log) if e.log else None)

    def add(self, result: ScenarioResult) -> None:
        with self._lock:
            self._record = replace(self._record, scenarios=(*self._record.scenarios, result))

    def result(self, scenario: str) -> ScenarioResult | None:
        return next((s for s in self._record.scenarios if s.scenario == scenario), None)

    def replace_result(self, old: ScenarioResult, new: ScenarioResult) -> None:
        with self._lock:
            self._record = replace(self._record, scenarios=tuple(
                new if s is old else s for s in self._record.scenarios))

    def boot_took(self, cmdline: str, seconds: float) -> None:
        with self._lock:
            self._record = replace(self._record, boots={**self._record.boots, cmdline or "-": round(seconds, 2)})

    @property
    def record(self) -> RunRecord:
        """The record, with every file in the kernel's log directory (relative to the run
        directory) under ``logs``."""
        files = sorted(self.out.iterdir()) if self.out.is_dir() else []
        return replace(self._record, logs={p.name: f"{self.out.name}/{p.name}" for p in files if p.is_file()})

    def logs(self) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        return self.out
