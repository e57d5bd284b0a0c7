"""kharness bisect: per-patch verdicts. The kernel after every prefix of the series is built (the
same keys check-series builds under, so its kernels are reused), booted, and every scenario
judged against the base exactly as the full series is; the output is a matrix patch x scenario
and, per row, the first patch from which the row shows its final verdict.

A prefix is a variant of its own: ``patch-K`` has patches 1..K applied; the last prefix is the
ordinary ``patched`` variant, so the full series' row is the one `kharness run` prints."""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.verdict.kinds import ERROR, FLAKY, NO_CHANGE, STILL_BROKEN, kind
from harness.verdict.results import RunRecord, ScenarioResult
from harness.verdict.table import Row

PREFIX = re.compile(r"patch-([1-9][0-9]*)")


def prefix_variants(n: int) -> tuple[str, ...]:
    """base, patch-1 ... patch-(n-1), patched: every prefix of an n-patch series."""
    return ("base", *(f"patch-{k}" for k in range(1, n)), "patched")


def prefix_of(variant: str, n: int) -> int:
    """How many of the series' n patches the variant has applied."""
    if variant == "base":
        return 0
    if variant == "patched":
        return n
    m = PREFIX.fullmatch(variant)
    if m is None or int(m.group(1)) > n:
        raise ValueError(f"variant {variant!r} is not a prefix of a {n}-patch series")
    return int(m.group(1))


@dataclass(frozen=True)
class BisectRow:
    arch: str
    scenario: str
    profile: str
    kind: str
    verdicts: tuple[str, ...]          # after patch 1 .. n, each judged against base
    cells: tuple[str, ...]             # what each prefix kernel showed

    @property
    def final(self) -> str:
        return self.verdicts[-1]

    @property
    def good(self) -> str:
        return kind(self.kind).good["both"]

    @property
    def first(self) -> int | None:
        """The first patch from which every prefix shows the final verdict (None: the final
        verdict is not the good one, so nothing was reached)."""
        if self.final != self.good:
            return None
        k = len(self.verdicts)
        while k > 1 and self.verdicts[k - 2] == self.final:
            k -= 1
        return k

    @property
    def bad_prefixes(self) -> list[int]:
        """Prefixes that break what the series must keep: an ERROR (did not build, boot or run),
        an invariant BROKEN or selftests REGRESSED on the way, a FLAKY run, a bug that
        reappears after a patch that fixed it. A fix not yet reached (STILL-BROKEN before the
        first patch that fixes it) is what a prefix may show, and so is NO-CHANGE."""
        out = []
        reached = next((k for k, v in enumerate(self.verdicts, 1) if v == self.good), None)
        for k, v in enumerate(self.verdicts, 1):
            if v in (self.good, NO_CHANGE):
                continue
            if v == STILL_BROKEN and reached is not None and k < reached:
                continue
            out.append(k)
        return out

    @property
    def where(self) -> str:
        return f"{self.arch} {self.scenario}" + (f" ({self.profile})" if self.profile != "default" else "")

    def summary(self) -> str:
        n = len(self.verdicts)
        if self.first is not None:
            text = f"{self.final} from {self.first}/{n}"
        else:
            text = f"{self.final} at {n}/{n}"
        bad = [k for k in self.bad_prefixes if k != n and self.verdicts[k - 1] != self.final]
        if bad:
            text += "; " + ", ".join(f"{self.verdicts[k - 1]} at {k}/{n}" for k in bad)
        return text


def matrix(runs: list[RunRecord], n: int) -> list[BisectRow]:
    """A row per (arch, scenario, profile) of the base: each prefix's result judged against the
    base's with the verdict code of the A/B table (table.Row). A prefix that has no result, or
    two, is an ERROR there."""
    results: dict[tuple[str, str, str], dict[int, list[ScenarioResult]]] = {}
    for run in runs:
        for s in run.scenarios:
            results.setdefault((s.arch, s.scenario, s.profile), {}).setdefault(prefix_of(s.variant, n), []).append(s)
    out = []
    for (arch, scenario, profile), by_prefix in results.items():
        base = by_prefix.get(0, [])
        verdicts, cells = [], []
        for k in range(1, n + 1):
            got = by_prefix.get(k, [])
            row = Row(arch, scenario, base[-1] if base else None, got[-1] if got else None, profile,
                      tuple(v for v, r in (("base", base), (f"patch {k}", got)) if len(r) > 1))
            missing = not base or not got
            verdicts.append(ERROR if missing else row.verdict)
            cells.append(row.cell(row.patched))
        any_result = next(r for rs in by_prefix.values() for r in rs)
        out.append(BisectRow(arch, scenario, profile, any_result.kind, tuple(verdicts), tuple(cells)))
    return out


def passed(table: list[BisectRow]) -> bool:
    """The full series shows every row's good verdict, and no prefix breaks anything."""
    return bool(table) and all(r.final == r.good and not r.bad_prefixes for r in table)


SHORT = {"NOT-REPRODUCED": "NOT-REPRO", "STILL-BROKEN": "STILL-BRK", "NO-REGRESSION": "NO-REGR",
         "NO-CHANGE": "NO-CHANGE", FLAKY: FLAKY}


def render(table: list[BisectRow], subjects: list[str]) -> str:
    """The matrix as plain text: a column per patch (verdicts shortened to fit), each row's
    summary, and the patches' subjects."""
    n = len(subjects)
    header = ("arch", "scenario", *(f"{k}/{n}" for k in range(1, n + 1)), "first")
    lines = [(r.arch, r.scenario + (f" ({r.profile})" if r.profile != "default" else ""),
              *(SHORT.get(v, v) for v in r.verdicts), r.summary()) for r in table]
    widths = [max(len(x) for x in col) for col in zip(header, *lines)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths[:-1]) + "  {}"
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))] + [fmt.format(*x) for x in lines]
    out += [""] + [f"{k}/{n} {s}" for k, s in enumerate(subjects, 1)]
    return "\n".join(out)


def to_json(table: list[BisectRow], subjects: list[str]) -> dict:
    return {"schema": 1, "patches": subjects,
            "rows": [{"arch": r.arch, "scenario": r.scenario, "profile": r.profile, "kind": r.kind,
                      "verdicts": list(r.verdicts), "cells": list(r.cells), "final": r.final,
                      "first": r.first, "bad_prefixes": r.bad_prefixes, "summary": r.summary()}
                     for r in table]}
