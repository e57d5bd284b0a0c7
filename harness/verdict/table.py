"""The verdict table: a row per (arch, scenario, profile), base and patched side by side,
judged by the scenario's kind."""

from __future__ import annotations

from dataclasses import dataclass

from harness.verdict.kinds import BOTH, ERROR, FLAKY, NO_CHANGE, failed_notes, kind, result_verdict
from harness.verdict.results import RunRecord, ScenarioResult


def _passed_nothing(r: ScenarioResult) -> bool:
    """A result of tests judged one by one none of which passed: alone, it shows nothing ran."""
    return kind(r.kind).has_tests and "pass" not in r.tests.values()


@dataclass(frozen=True)
class Row:
    arch: str
    scenario: str
    base: ScenarioResult | None
    patched: ScenarioResult | None
    profile: str = "default"
    duplicates: tuple[str, ...] = ()   # variants with more than one result: the row is an ERROR

    @property
    def kind(self) -> str:
        return next(r.kind for r in (self.base, self.patched) if r is not None)

    @property
    def ran(self) -> str:
        return BOTH if self.base and self.patched else ("base" if self.base else "patched")

    @property
    def verdict(self) -> str:
        present = [r for r in (self.base, self.patched) if r is not None]
        if not present or self.duplicates or any(result_verdict(r) == ERROR for r in present):
            return ERROR
        if self.patched is not None and self.patched.unchanged:
            return NO_CHANGE
        if any(r.flaky for r in present):
            return FLAKY
        if self.base is None or self.patched is None:   # one kernel alone: what it shows
            return ERROR if _passed_nothing(present[0]) else result_verdict(present[0])
        return kind(self.kind).pair_verdict(self.base, self.patched)

    @property
    def ok(self) -> bool:
        """The row shows what it must for the run to pass."""
        return self.verdict == kind(self.kind).good[self.ran]

    @property
    def where(self) -> str:
        return f"{self.arch} {self.scenario}" + (f" ({self.profile})" if self.profile != "default" else "")

    def cell(self, r: ScenarioResult | None) -> str:
        if r is None:
            return "-"
        if r.unchanged and r.error is None:
            return "same image as base"
        if r.error is not None or r.held is None:
            return "error"
        cell = kind(r.kind).cell(r)
        if r.repeats:   # the median above; each shown metric's range over the runs
            spans = []
            for m in r.show:
                values = [x["metrics"].get(m) for x in r.repeats if x["metrics"].get(m) is not None]
                if values:
                    spans.append(f"{m} {min(values)}..{max(values)}")
            cell += f" (median of {len(r.repeats)} runs" + (f"; {', '.join(spans)}" if spans else "") + ")"
        return cell

    def notes(self) -> list[str]:
        """What a verdict other than the good one rests on: failed bounds, regressed selftests."""
        if self.duplicates:
            return [f"{self.where}: {v} has more than one result (one run, one result per kernel)"
                    for v in self.duplicates]
        if self.verdict == ERROR:
            alone = [] if self.base is not None and self.patched is not None else [
                f"{self.where}: no test passed on {r.variant}, and no other kernel to compare: nothing "
                "shows its tests could run there" for r in (self.base, self.patched)
                if r is not None and r.error is None and _passed_nothing(r)]
            return alone + failed_notes(self.where, self.base, self.patched, self.ok) + self.script_notes()
        if self.verdict == FLAKY and any(r.flaky for r in (self.base, self.patched) if r is not None):
            return [f"{self.where}: {r.variant} run {i}: {'held' if x['held'] else 'not held'}"
                    + f" ({', '.join([f'{k} {v}' for k, v in x['metrics'].items() if k in r.show] + x['failed'])})"
                    for r in (self.base, self.patched) if r is not None and r.flaky
                    for i, x in enumerate(r.repeats, 1)]
        if self.verdict == NO_CHANGE:
            return [f"{self.where}: the patched kernel's image is byte-identical to the base's: the "
                    "series changes nothing built for this arch and profile (not booted)"] + self.script_notes()
        return kind(self.kind).notes(self.where, self.base, self.patched, self.ok) + self.script_notes()

    def script_notes(self) -> list[str]:
        """What the scenario's script said of each kernel (a note both said is listed once)."""
        said: dict[str, list[str]] = {}
        for r in (self.base, self.patched):
            for note in (r.notes if r is not None else ()):
                said.setdefault(note, []).append(r.variant if r is not None else "")
        return [f"{self.where} {'/'.join(v)}: {note}" for note, v in said.items()]


def rows(runs: list[RunRecord]) -> list[Row]:
    """A row per (arch, scenario, profile). Two results for one kernel and scenario are not
    merged or overwritten: the row is an ERROR saying so (a good result must not hide a bad one)."""
    table: dict[tuple[str, str, str], dict[str, list[ScenarioResult]]] = {}
    for run in runs:
        for s in run.scenarios:
            table.setdefault((s.arch, s.scenario, s.profile), {}).setdefault(s.variant, []).append(s)
    return [Row(arch, scen, v.get("base", [None])[-1], v.get("patched", [None])[-1], profile,
                tuple(variant for variant, results in v.items() if len(results) > 1))
            for (arch, scen, profile), v in table.items()]


def passed(table: list[Row]) -> bool:
    """Every row shows what the run set out to show (FIXED, HOLDS, NO-REGRESSION, ...)."""
    return bool(table) and all(r.ok for r in table)
