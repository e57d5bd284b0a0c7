"""The verbs of the command line, each a function of its parsed arguments to an exit status:
0 (as expected), 1 (not), 2 (error). cli.py parses; these do."""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path

from harness import REPO_ROOT
from harness.build.kbuild import CCACHE_REMOTE_VAR
from harness.core.cache import cache_root
from harness.core.errors import HarnessError
from harness.core.progress import Progress
from harness.output.b4check import other_version, series_version, subject_of, version_of
from harness.output.formats import FORMATS, render
from harness.output.render import summary
from harness.output.report import load as report_load
from harness.output.report import merge, write
from harness.output.runreport import RunReport
from harness.output.store import export_kernels, import_kernels
from harness.run.checkseries import check_series, series_matrix
from harness.run.doctor import clean, doctor, list_configs
from harness.run.authoring import kconfig, shell, values
from harness.run.pipeline import run_plan
from harness.run.session import Session
from harness.run.plan import VARIANTS, GuestOptions, Plan, check_profiles, make_plan, names
from harness.series.patches import diff_digest
from harness.series.tree import is_kernel_checkout
from harness.verdict.bisect import matrix as bisect_matrix
from harness.verdict.bisect import passed as bisect_passed
from harness.verdict.bisect import prefix_variants
from harness.verdict.bisect import render as bisect_render
from harness.verdict.bisect import to_json as bisect_json
from harness.verdict.kinds import ERROR
from harness.verdict.results import KernelId, RunMeta, RunRecord
from harness.verdict.table import passed

EXIT_OK, EXIT_FAIL, EXIT_ERROR = 0, 1, 2


def _tree(args: argparse.Namespace) -> Path | None:
    """--tree, or the current directory when it is a kernel checkout and no series or kernel
    was named."""
    if args.tree:
        return Path(args.tree)
    if not args.series and not args.kernel and is_kernel_checkout(Path.cwd()):
        return Path.cwd()
    return None


def _plan(args: argparse.Namespace, variants: tuple[str, ...]) -> Plan:
    """The plan the arguments describe (plan.make_plan, as the pytest plugin builds it)."""
    if getattr(args, "ccache_remote", None):   # every build of the run, whichever thread makes it
        os.environ[CCACHE_REMOTE_VAR] = args.ccache_remote
    return make_plan(tree=_tree(args), base=args.base, dirty=args.dirty, series=args.series, kernel=args.kernel, arches=args.arch, variants=variants,
                     scenarios=args.scenario, profiles=getattr(args, "profile", None) or "default",
                     iterations=getattr(args, "iterations", None), cache=_cache(args),
                     progress=Progress(verbosity=args.verbosity), series_version=args.series_version,
                     lore_base=args.lore_base,
                     guest=GuestOptions(getattr(args, "accel", "auto"), getattr(args, "cpus", None),
                                        getattr(args, "memory", None), getattr(args, "append", "") or ""),
                     kconfig_add=getattr(args, "kconfig_add", None), repeat=getattr(args, "repeat", 1),
                     fixes=getattr(args, "fixes", None), tests=getattr(args, "tests", None))


def _cache(args: argparse.Namespace) -> Path:
    cache = Path(args.cache) if getattr(args, "cache", None) else cache_root()
    return _directory(cache, "--cache" if getattr(args, "cache", None) else "the cache")


def _directory(path: Path, what: str) -> Path:
    """``path``, refused when it is something other than a directory (a file given by mistake)."""
    if path.exists() and not path.is_dir():
        raise HarnessError("config", f"{what} {path}: not a directory")
    return path


def _run_dir(results: str) -> Path:
    _directory(Path(results), "--results")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir, suffix = Path(results) / stamp, 0
    while run_dir.exists():
        suffix += 1
        run_dir = Path(results) / f"{stamp}-{suffix}"
    run_dir.mkdir(parents=True)
    return run_dir


def cmd_run(args: argparse.Namespace) -> int:
    variants = tuple(VARIANTS if args.variant == "both" else names(args.variant, list(VARIANTS), "variant"))
    return _run(args, _plan(args, variants))[0]


def _run(args: argparse.Namespace, plan: Plan) -> tuple[int, Plan, list, Path]:
    """Run the plan; write and print its reports; the exit status of its A/B table."""
    progress = Progress(verbosity=args.verbosity)
    if args.jobs < 1:
        raise HarnessError("config", f"--jobs {args.jobs}: at least 1 guest at a time")
    cache = _cache(args)
    run_dir = _run_dir(args.results)
    progress.info(f"kharness: run directory {run_dir}")
    if os.geteuid() == 0:
        progress.info("kharness: running as root, which nothing here needs (only `make deps` does)")
    meta, records = run_plan(plan, cache, run_dir, progress, args.jobs)
    meta = replace(meta, command=shlex.join(sys.argv))
    table = write(run_dir, meta, records)
    print(summary(RunReport(table, records, meta, run_dir)), end="")
    print(f"report: {run_dir / 'report.json'}")
    if any(r.verdict == ERROR for r in table) or any(rec.error for rec in records):
        return EXIT_ERROR, plan, records, run_dir
    # Each row must show what its scenario should: FIXED (or, one variant alone, the bug on base
    # and its absence on patched), HOLDS, NO-REGRESSION.
    return (EXIT_OK if passed(table) else EXIT_FAIL), plan, records, run_dir


def cmd_build(args: argparse.Namespace) -> int:
    """The plan's kernels built (or found in the cache), nothing booted: a CI build job's part,
    whose run directory `kharness export` then hands to the jobs that boot them."""
    progress = Progress(verbosity=args.verbosity)
    variants = tuple(VARIANTS if args.variant == "both" else names(args.variant, list(VARIANTS), "variant"))
    plan = replace(_plan(args, variants), scenarios=())
    run_dir = _run_dir(args.results)
    progress.info(f"kharness: run directory {run_dir}")
    meta, records = run_plan(plan, _cache(args), run_dir, progress, 1)
    meta = replace(meta, command=shlex.join(sys.argv))
    write(run_dir, meta, records)
    for rec in records:
        print(f"{rec.kernel.label}: " + (f"ERROR {rec.error}" if rec.error else
                                         f"kernel {rec.kernel_key[:12]} ({'cached' if rec.build_cached else 'built'})"))
    print(f"report: {run_dir / 'report.json'}")
    return EXIT_ERROR if any(rec.error for rec in records) or not records else EXIT_OK


def cmd_kconfig(args: argparse.Namespace) -> int:
    """Each arch's .config of the variant's kernel on a profile, verified, without a build;
    --show prints what it says of the options named."""
    progress = Progress(verbosity=args.verbosity)
    plan = replace(_plan(args, (args.variant,)), scenarios=())
    session = Session(plan, _cache(args), _run_dir(args.results), progress)
    for c in kconfig(session, args.variant, args.profile):
        print(f"{c.arch}: {c.config}")
        print("  fragments: " + " ".join(str(f.relative_to(REPO_ROOT)) if f.is_relative_to(REPO_ROOT)
                                         else str(f) for f in c.fragments))
        for symbol, value in values(c.config, [s for item in args.show for s in item.split(",") if s]).items():
            print(f"  {symbol}={value}")
    return EXIT_OK


def cmd_shell(args: argparse.Namespace) -> int:
    """A shell in the guest of one arch's kernel, in the scenario's directory with its script
    and programs staged (--scenario); commands from stdin when it is not a terminal."""
    plan = _plan(args, (args.variant,))
    if len(plan.arches) != 1:
        raise HarnessError("config", f"--arch {args.arch}: a shell is in one arch's guest "
                           f"(one of {', '.join(a.name for a in plan.arches)})")
    if args.scenario and len(plan.scenarios) != 1:
        raise HarnessError("config", "--scenario: a shell stages one scenario's programs")
    scenario = plan.scenario_for(plan.scenarios[0], args.profile) if args.scenario else None
    session = Session(plan, _cache(args), _run_dir(args.results), Progress(verbosity=args.verbosity))
    try:
        return shell(session, KernelId(plan.arches[0].name, args.variant, args.profile), scenario)
    finally:
        session.close()


def find_runs(results: Path, subject: str) -> Iterator[tuple[Path, RunMeta, list[RunRecord]]]:
    """The run directories under ``results`` whose series has ``subject`` as a patch's subject
    or as its title, newest first, each with its report."""
    if not subject or not results.is_dir():
        return
    runs = sorted((d for d in results.iterdir() if (d / "report.json").is_file()),
                  key=lambda d: (d / "report.json").stat().st_mtime, reverse=True)
    for run_dir in runs:
        try:
            meta, records = report_load(run_dir)
        except HarnessError:   # another tool's file, a run being written: not this series
            continue
        s = meta.series
        if s is not None and (subject == s.title or subject in {p.subject for p in s.patches}):
            yield run_dir, meta, records


def cmd_b4_check(args: argparse.Namespace) -> int:
    """b4's external check command: a mail (a patch or the cover letter) on stdin; the verdict
    of the newest run that tested it under --results, as b4's JSON ([] when none tested its
    subject). A run tested the mail when its patch of that subject has the mail's diff, or, for
    a mail without one (the cover letter), when its series is the mail's version (when both say);
    a subject tested only in another version is a warning, never that version's verdict."""
    mail = sys.stdin.buffer.read()
    subject, diff, version = subject_of(mail), diff_digest(mail), version_of(mail)
    other = None
    for found in find_runs(Path(args.results), subject):
        _, meta, _ = found
        assert meta.series is not None
        tested = next((p for p in meta.series.patches if p.subject == subject), None)
        if tested is not None and diff and tested.diff_sha256:
            same = diff == tested.diff_sha256
        else:
            same = version is None or series_version(meta) in (None, version)
        if same:
            print(FORMATS["b4"].render(RunReport.of(*found)), end="")
            return EXIT_OK
        other = other or found
    print(other_version(RunReport.of(*other)) if other is not None else "[]", end="")
    return EXIT_OK


def cmd_bisect(args: argparse.Namespace) -> int:
    """Every prefix of the series built, booted and judged against the base: the run's A/B
    table (the full series), then the matrix patch x scenario (bisect.txt, bisect.json)."""
    plan = _plan(args, VARIANTS)
    assert plan.series is not None
    subjects = [p.subject for p in plan.series.patches]
    plan = replace(plan, variants=prefix_variants(len(subjects)))
    status, plan, records, run_dir = _run(args, plan)
    table = bisect_matrix(records, len(subjects))
    text = bisect_render(table, subjects)
    (run_dir / "bisect.txt").write_text(text + "\n")
    (run_dir / "bisect.json").write_text(json.dumps(bisect_json(table, subjects), indent=2) + "\n")
    print("\nper patch, each judged against the base:\n" + text)
    print(f"bisect: {run_dir / 'bisect.json'}")
    if status == EXIT_OK and not bisect_passed(table):
        bad = [f"{r.where} {r.summary()}" for r in table if r.bad_prefixes or r.final != r.good]
        print("not as expected at every patch: " + "; ".join(bad))
        return EXIT_ERROR if any(ERROR in r.verdicts for r in table) else EXIT_FAIL
    return status


def cmd_check_series(args: argparse.Namespace) -> int:
    progress = Progress(verbosity=args.verbosity)
    plan = _plan(args, ("patched",))
    if plan.series is None:
        raise HarnessError("config", "check-series needs --series")
    profiles = check_profiles(plan, args.profile)
    cache = _cache(args)
    run_dir = _run_dir(args.results)
    progress.info(f"kharness: run directory {run_dir}")
    builds, checkpatch = check_series(plan, profiles, cache, run_dir, progress)
    data = {"schema": 1, "series": plan.series.name, "builds": [asdict(b) for b in builds],
            "checkpatch": [asdict(c) for c in checkpatch]}
    (run_dir / "check-series.json").write_text(json.dumps(data, indent=2) + "\n")
    text = series_matrix(builds, checkpatch)
    (run_dir / "check-series.txt").write_text(text + "\n")
    print(text)
    print(f"report: {run_dir / 'check-series.json'}")
    broken = [b for b in builds if not b.ok]
    if broken:
        first = min(broken, key=lambda b: b.patch)
        print(f"first patch that breaks a build: {first.patch} '{first.subject}' "
              f"({first.arch}, {first.profile}); log: {first.log}")
    return EXIT_OK if not broken and not any(c.errors for c in checkpatch) else EXIT_FAIL


def cmd_report(args: argparse.Namespace) -> int:
    """Print a run's summary (or its Markdown, or its junit.xml) from its report.json; with
    --write, render summary.txt, summary.md and junit.xml anew."""
    run_dir = Path(args.run_dir)
    try:
        meta, records = report_load(run_dir)
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise HarnessError("report", f"cannot read {run_dir / 'report.json'}: {e}")
    print(FORMATS[args.format].render(RunReport.of(run_dir, meta, records)), end="")
    if args.write:
        render(run_dir, meta, records)
        print(f"rendered: {run_dir / 'summary.txt'}, {run_dir / 'summary.md'}, {run_dir / 'junit.xml'}",
              file=sys.stderr)
    return EXIT_OK


def cmd_merge(args: argparse.Namespace) -> int:
    """The runs of several jobs (an arch each, say) as one run directory and one table."""
    out = Path(args.out) if args.out else _run_dir(args.results)
    meta, records = merge([Path(d) for d in args.run_dirs], out, tuple(Path(d) for d in args.rerun))
    table = write(out, meta, records)
    print(summary(RunReport(table, records, meta, out)), end="")
    print(f"report: {out / 'report.json'}")
    if any(r.verdict == ERROR for r in table) or any(rec.error for rec in records):
        return EXIT_ERROR
    return EXIT_OK if passed(table) else EXIT_FAIL


def cmd_kcidb(args: argparse.Namespace) -> int:
    """A run directory as KCIDB JSON, to submit with KernelCI's own tools."""
    run_dir = Path(args.run_dir)
    try:
        meta, records = report_load(run_dir)
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise HarnessError("report", f"cannot read {run_dir / 'report.json'}: {e}")
    text = FORMATS["kcidb"].render(RunReport.of(run_dir, meta, records, origin=args.origin))
    if args.out:
        Path(args.out).write_text(text)
        print(f"kcidb: {args.out}", file=sys.stderr)
    else:
        print(text, end="")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """The kernels a run used, from the cache into a directory (a CI artifact)."""
    meta, records = report_load(Path(args.run_dir))
    print("\n".join(export_kernels(records, _cache(args), Path(args.to))) or "nothing to export")
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    """Kernels another machine exported, verified, into the cache."""
    print("\n".join(import_kernels(Path(args.src), _cache(args))))
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    print(list_configs())
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    lines, ok = doctor(_cache(args), args.reprobe)
    print("\n".join(lines))
    return EXIT_OK if ok else EXIT_FAIL


def cmd_clean(args: argparse.Namespace) -> int:
    for flag, value in (("--older-than", args.older_than), ("--max-size", args.max_size)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise HarnessError("clean", f"{flag} {value}: expected a number of 0 or more")
    max_bytes = int(args.max_size * (1 << 30)) if args.max_size is not None else None
    if args.older_than is None and max_bytes is None:
        raise HarnessError("clean", "say what to remove: --older-than DAYS and/or --max-size GIB")
    print("\n".join(clean(_cache(args), args.older_than, max_bytes, args.dry_run)))
    return EXIT_OK
