"""kharness command line: run a plan, print the table, exit 0 (as expected), 1 (not), 2 (error)."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from .arches import all_arches, load_arch
from .cache import cache_root
from .config import load_kernel, load_scenario
from .errors import HarnessError
from .pipeline import VARIANTS, Plan, run_plan
from .progress import Progress
from .report import ERROR, rows, summary, write

EXIT_OK, EXIT_FAIL, EXIT_ERROR = 0, 1, 2


def _interrupt(signum, frame):
    # SIGTERM takes the same path as Ctrl-C, so every `finally` (QEMU, make) runs.
    raise KeyboardInterrupt(f"signal {signum}")


def _names(value: str, known: list[str], what: str) -> list[str]:
    if value == "all":
        return known
    names = [v for v in value.split(",") if v]
    for n in names:
        if n not in known:
            raise HarnessError("config", f"unknown {what} {n!r} (known: {', '.join(known)}, all)")
    return names


def cmd_run(args: argparse.Namespace) -> int:
    progress = Progress(verbosity=args.verbosity)
    arches = tuple(load_arch(a) for a in _names(args.arch, all_arches(), "arch"))
    variants = tuple(VARIANTS if args.variant == "both" else _names(args.variant, list(VARIANTS), "variant"))
    scenarios = []
    for name in args.scenario or ["dying-memcg"]:
        s = load_scenario(name)
        if args.iterations is not None:
            from dataclasses import replace
            s = replace(s, iterations=args.iterations)
        scenarios.append(s)
    plan = Plan(kernel=load_kernel(args.kernel), arches=arches, variants=variants,
                scenarios=tuple(scenarios))
    cache = Path(args.cache) if args.cache else cache_root()
    run_dir = Path(args.results) / time.strftime("%Y%m%d-%H%M%S")
    suffix = 0
    while run_dir.exists():
        suffix += 1
        run_dir = Path(args.results) / f"{time.strftime('%Y%m%d-%H%M%S')}-{suffix}"
    run_dir.mkdir(parents=True)
    progress.info(f"kharness: run directory {run_dir}")
    meta, records = run_plan(plan, cache, run_dir, progress)
    meta["command"] = " ".join(sys.argv)
    table = write(run_dir, meta, records)
    print(summary(table, records))
    print(f"report: {run_dir / 'report.json'}")
    if any(r.verdict == ERROR for r in table) or any(rec.error for rec in records):
        return EXIT_ERROR
    # What each variant on its own must show: the bug on base, its absence on patched.
    ok = all(s.held for rec in records for s in rec.scenarios)
    return EXIT_OK if ok else EXIT_FAIL


def cmd_report(args: argparse.Namespace) -> int:
    import json
    from .report import RunRecord, ScenarioResult
    data = json.loads((Path(args.run_dir) / "report.json").read_text())
    records = []
    for run in data["runs"]:
        scen = tuple(ScenarioResult(**{k: v for k, v in s.items() if k != "verdict"})
                     for s in run["scenarios"])
        records.append(RunRecord(**{**run, "scenarios": scen}))
    print(summary(rows(records), records))
    return EXIT_OK


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kharness", description=__doc__)
    sub = p.add_subparsers(dest="verb", required=True)
    run = sub.add_parser("run", help="build, boot and run scenarios; print the verdict table")
    run.add_argument("--arch", default="x86_64", help="x86_64, arm64, a comma list, or all")
    run.add_argument("--variant", default="base", help="base, patched or both")
    run.add_argument("--scenario", action="append", help="scenario name (repeatable); default dying-memcg")
    run.add_argument("--kernel", default="linux-5.10", help="base kernel config in configs/kernels/")
    run.add_argument("--iterations", type=int, help="override the scenario's iteration count")
    run.add_argument("--results", default="results", help="where run directories go (default ./results)")
    run.add_argument("--cache", help="cache directory (default $XDG_CACHE_HOME/kharness)")
    run.add_argument("-v", dest="verbosity", action="store_const", const=2, default=1,
                     help="stream the build and the console")
    run.add_argument("-q", dest="verbosity", action="store_const", const=0, help="print only the summary")
    run.set_defaults(func=cmd_run)
    rep = sub.add_parser("report", help="print the summary table of a run directory")
    rep.add_argument("run_dir")
    rep.set_defaults(func=cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return args.func(args)
    except HarnessError as e:
        print(f"kharness: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("kharness: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
