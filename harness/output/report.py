"""report.json: the run's records serialised as they are, with the verdict table; merging
the runs of several jobs into one."""

from __future__ import annotations

import json
import os
import shutil
import stat
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from harness.core.cache import atomic_file
from harness.core.errors import HarnessError
from harness.output import reportjson
from harness.output.formats import render
from harness.verdict.kinds import result_verdict
from harness.verdict.results import RunMeta, RunRecord
from harness.verdict.table import Row, rows

SCHEMA_VERSION = 3
# 1 had no profile, kind, metrics or tests: their defaults fill in; 1 and 2 had before, after
# and delta as fields of a result: they become its metrics
READABLE_SCHEMAS = (1, 2, 3)


def to_json(meta: RunMeta, runs: list[RunRecord], table: list[Row]) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        **meta.to_json(),
        "runs": [
            {**asdict(run), "scenarios": [{**asdict(s), "verdict": result_verdict(s)} for s in run.scenarios]}
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


def write(run_dir: Path, meta: RunMeta, runs: list[RunRecord]) -> list[Row]:
    table = rows(runs)
    with atomic_file(run_dir / "report.json", "w") as f:
        json.dump(to_json(meta, runs, table), f, indent=2)
        f.write("\n")
    return render(run_dir, meta, runs, table)


def load(run_dir: Path) -> tuple[RunMeta, list[RunRecord]]:
    """The metadata and records of a report.json (to render its reports again), every field
    checked first: it may come from another machine (reportjson)."""
    return reportjson.load(run_dir / "report.json", READABLE_SCHEMAS)


def merge(run_dirs: list[Path], out: Path, reruns: tuple[Path, ...] = ()) -> tuple[RunMeta, list[RunRecord]]:
    """Runs of one A/B made by different jobs (an arch each, a variant, a profile, scenarios
    split) as one: the same base tree and series, or an error naming both runs; one record per
    kernel, its scenarios from every run that had it; a scenario two runs both have for one
    kernel is a conflict, an error naming both (never one silently kept). ``reruns`` are runs
    of some scenarios again: each of their scenarios replaces
    the same one of the other runs, and the merged run's command says so."""
    run_dirs = [*run_dirs, *reruns]
    if len(run_dirs) < 2:
        raise HarnessError("report", "merge needs two run directories or more")
    for d in run_dirs:   # merge makes a new run: it never writes over one it reads
        if out.resolve().is_relative_to(d.resolve()) or d.resolve().is_relative_to(out.resolve()):
            raise HarnessError("report", f"--out {out} is {d}, or inside it, or holds it: "
                               "the merged run goes to a directory of its own")
    loaded = [(d, *load(d)) for d in run_dirs]
    first_dir, first, _ = loaded[0]

    def what(meta: RunMeta) -> tuple:
        return ((meta.kernel.name, meta.kernel.version, meta.kernel.sha256),
                (meta.series.name, meta.series.sha256) if meta.series else None)
    kernels: dict[tuple[str, str, str], RunRecord] = {}
    where: dict[tuple[str, str, str, str], Path] = {}
    for d, meta, runs in loaded:
        if what(meta)[0] != what(first)[0]:
            raise HarnessError("report", f"{d} tested {meta.kernel.name} {meta.kernel.version} "
                               f"({meta.kernel.sha256}), {first_dir} {first.kernel.name} "
                               f"{first.kernel.version} ({first.kernel.sha256}): not one A/B")
        if meta.series and first.series and what(meta)[1] != what(first)[1]:
            raise HarnessError("report", f"{d} applied series {meta.series.name} ({meta.series.sha256[:16]}), "
                               f"{first_dir} {first.series.name} ({first.series.sha256[:16]}): not one A/B")
        for run in runs:
            k = (run.arch, run.variant, run.profile)
            replaced = set()
            for s in run.scenarios:
                key = (*k, s.scenario)
                if key in where and d in reruns and where[key] not in reruns:
                    replaced.add(s.scenario)
                elif key in where:
                    raise HarnessError("report", f"{'/'.join(k)} {s.scenario} is in both {where[key]} and {d}")
                where[key] = d
            logs = _copy_logs(d, run, out)
            if k in kernels:
                old = kernels[k]
                old = replace(old, scenarios=tuple(s for s in old.scenarios if s.scenario not in replaced))
                if old.kernel_key and run.kernel_key and old.kernel_key != run.kernel_key:
                    raise HarnessError("report", f"{'/'.join(k)}: kernel {run.kernel_key[:12]} in {d}, "
                                       f"{old.kernel_key[:12]} in an earlier run: not one kernel")
                run = replace(old, scenarios=old.scenarios + run.scenarios, logs={**old.logs, **logs},
                              error=old.error or run.error)
            else:
                run = replace(run, logs=logs)
            kernels[k] = run
    series = next((m.series for _, m, _ in loaded if m.series), None)
    meta = replace(first, series=series, run_dir=str(out),
                   profiles=tuple(dict.fromkeys(p for _, m, _ in loaded for p in m.profiles)),
                   seconds=None, jobs=max(m.jobs for _, m, _ in loaded),
                   command="kharness merge " + " ".join(str(d) for d in run_dirs if d not in reruns)
                   + "".join(f" --rerun {d}" for d in reruns))
    order = {"base": 0, "patched": 1}   # as one run lists them: by arch, profile, then variant
    ranked = sorted(kernels.values(), key=lambda r: (r.arch, meta.profiles.index(r.profile)
                                                     if r.profile in meta.profiles else 99, order.get(r.variant, 2)))
    return meta, ranked


def _copy_logs(src: Path, run: RunRecord, out: Path) -> dict[str, str]:
    """The kernel's log files into the merged run directory (where its reports look for them);
    a name another run already brought (its console.log) is kept as NAME-<run dir>. The run
    directory may come from elsewhere (a CI artifact): a log is read only as a regular file
    reached through no symlink, and written as a new file in ``out`` (temp + rename)."""
    logs = {}
    for rel in run.logs.values():   # each a relative path without `..` (reportjson)
        source, target = src / rel, out / rel
        if not _plain_path(src, rel):
            raise HarnessError("report", f"{source}: a symlink, or reached through one: not copied "
                               "(a run directory holds its logs as files)")
        if not source.is_file():
            continue
        if not _plain_path(out, rel):
            raise HarnessError("report", f"{target}: a symlink, or reached through one: not written")
        if target.exists() and target.read_bytes() != source.read_bytes():
            target = target.with_name(f"{target.stem}-{src.name}{target.suffix}")
        _copy_file(source, target)
        logs[target.name] = str(target.relative_to(out))
    here = run.kernel.dir_name   # a report without `logs`: the kernel's directory, as names made it
    if not run.logs and (src / here).exists():
        if not _plain_path(src, here):
            raise HarnessError("report", f"{src / here}: a symlink: not copied (a run directory "
                               "holds its logs as files)")
        if not _plain_path(out, here):
            raise HarnessError("report", f"{out / here}: a symlink, or reached through one: not written")
        for p in sorted((src / here).iterdir()) if (src / here).is_dir() else ():
            if p.is_file() and not p.is_symlink() and not (out / here / p.name).exists():
                _copy_file(p, out / here / p.name)
    return logs


def _plain_path(top: Path, rel: str) -> bool:
    """No part of ``top/rel`` below ``top`` is a symlink (a part that does not exist is none)."""
    p = top
    for part in Path(rel).parts:
        p = p / part
        if p.is_symlink():
            return False
    return True


def _copy_file(source: Path, target: Path) -> None:
    """A regular file's bytes to ``target``, never following a symlink at either end."""
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise HarnessError("report", f"{source}: not a regular file: not copied")
        with atomic_file(target) as g:
            shutil.copyfileobj(f, g)
