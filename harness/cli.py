"""kharness command line: run a plan, print the table, exit 0 (as expected), 1 (not), 2 (error)."""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import signal
import sys
import time
import traceback
from dataclasses import asdict, replace
from pathlib import Path

from harness import __version__
from harness.verdict.bisect import matrix as bisect_matrix
from harness.verdict.bisect import passed as bisect_passed
from harness.verdict.bisect import prefix_variants
from harness.verdict.bisect import render as bisect_render
from harness.verdict.bisect import to_json as bisect_json
from harness.core.cache import cache_root
from harness.run.checkseries import check_series, series_matrix
from harness.config import known
from harness.run.doctor import clean, doctor, list_configs
from harness.core.errors import HarnessError, os_failure
from harness.build.kbuild import CCACHE_REMOTE_VAR
from harness.output.kcidb import kcidb
from harness.output.store import export_kernels, import_kernels
from harness.verdict.kinds import ERROR
from harness.sources.lore import DEFAULT_LORE
from harness.run.pipeline import default_jobs, run_plan
from harness.run.plan import VARIANTS, GuestOptions, Plan, check_profiles, make_plan, names
from harness.core.progress import Progress
from harness.output.render import junit, markdown, record, render, summary
from harness.series.tree import is_kernel_checkout
from harness.output.report import load as report_load
from harness.output.report import merge, passed, rows, write

EXIT_OK, EXIT_FAIL, EXIT_ERROR = 0, 1, 2


def _interrupt(signum, frame):
    # SIGTERM takes the same path as Ctrl-C, so every `finally` (QEMU, make) runs.
    raise KeyboardInterrupt(f"signal {signum}")


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
    return make_plan(tree=_tree(args), base=args.base, dirty=args.dirty,series=args.series, kernel=args.kernel, arches=args.arch, variants=variants,
                     scenarios=args.scenario, profiles=getattr(args, "profile", None) or "default",
                     iterations=getattr(args, "iterations", None), cache=_cache(args),
                     progress=Progress(verbosity=args.verbosity), series_version=args.series_version,
                     lore_base=args.lore_base,
                     guest=GuestOptions(getattr(args, "accel", "auto"), getattr(args, "cpus", None),
                                        getattr(args, "memory", None), getattr(args, "append", "") or ""),
                     kconfig_add=getattr(args, "kconfig_add", None), repeat=getattr(args, "repeat", 1))


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
    print(summary(table, records, meta))
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
    table = rows(records)
    if args.format == "md":
        print(markdown(meta, table, records), end="")
    elif args.format == "junit":
        print(junit(run_dir, meta, records, table), end="")
    elif args.format == "ab":
        print(record(meta, table), end="")
    else:
        print(summary(table, records, meta))
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
    print(summary(table, records, meta))
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
    text = json.dumps(kcidb(meta, records, run_dir, args.origin), indent=2) + "\n"
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


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", default="all", help="x86_64, arm64, a comma list, or all (default)")
    p.add_argument("--series",
                   help="series config in configs/series/, a directory of .patch files, an mbox "
                        "file, or a lore message-id or URL (default: configs/defaults.yaml's)")
    p.add_argument("-V", "--series-version", type=int, metavar="N",
                   help="revision N of a series from mail (default: the newest in the thread)")
    p.add_argument("--lore-base", default=DEFAULT_LORE, metavar="URL",
                   help=f"public-inbox to fetch message-ids from (default {DEFAULT_LORE})")
    p.add_argument("--kernel", help="base kernel config in configs/kernels/ (default: the series')")
    p.add_argument("--tree", metavar="PATH",
                   help="a kernel git checkout: base = --base, patched = its commits after it up to "
                        "HEAD (or --series BASE..BRANCH); default: the current directory when it is "
                        "one and neither --series nor --kernel is given; the tree is never changed")
    p.add_argument("--base", metavar="REV",
                   help="with --tree: the base commit (default: the range's start, else the newest "
                        "release tag v* below HEAD)")
    p.add_argument("--dirty", action="store_true",
                   help="with --tree: test the work tree's uncommitted changes too, as a last patch "
                        "(else a dirty tree is refused)")
    p.add_argument("--scenario", action="append",
                   help="scenario, a comma list (repeatable); default: the series'")
    p.add_argument("--kconfig-add", action="append", metavar="CONFIG_X=y|FILE",
                   help="an option or a fragment file merged after the kernel's and profile's "
                        "fragments and verified in the final .config (repeatable, or a comma list)")
    p.add_argument("--ccache-remote", metavar="URL",
                   help="a compiler cache shared between machines, as ccache's remote_storage "
                        "(redis://HOST:PORT, http://HOST/PATH/; ccache >= 4.7); default "
                        f"${CCACHE_REMOTE_VAR}")
    p.add_argument("--results", default="results", help="where run directories go (default ./results)")
    p.add_argument("--cache", help="cache directory (default $XDG_CACHE_HOME/kharness)")
    p.add_argument("-v", dest="verbosity", action="store_const", const=2, default=1,
                   help="stream the build and the console")
    p.add_argument("-q", dest="verbosity", action="store_const", const=0, help="print only the summary")


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


def _run_options(p: argparse.ArgumentParser) -> None:
    """What run and bisect both take besides _common's: iterations, repeats, profiles, guests."""
    p.add_argument("--iterations", type=int, help="override the scenarios' iteration count")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="each scenario on N fresh boots per kernel: the table shows the median and "
                        "each value's range, a row holds only when all N runs agree (else FLAKY); "
                        "the selftests repeat within one boot (their iterations)")
    p.add_argument("--profile", default="default",
                   help=f"kernel config profiles, a comma list: {', '.join(known('profiles'))} or "
                        "all the kernel supports (a table column each; default: default)")
    p.add_argument("-j", "--jobs", type=int, default=default_jobs(), metavar="N",
                   help=f"guests running at once, one vCPU each (default: one per core, here "
                        f"{default_jobs()}); kernels are always built one at a time")
    p.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto",
                   help="auto (default): KVM when a boot probe under it works, else TCG, and the "
                        "report says why; kvm: KVM or an error; tcg: never probe")
    p.add_argument("--cpus", type=int, metavar="N", help="vCPUs of each guest (default: the arch's, 1)")
    p.add_argument("--memory", metavar="SIZE", help="memory of each guest, as QEMU's -m (default: the arch's, 1G)")
    p.add_argument("--append", metavar="ARGS", help="added to every guest's kernel command line")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kharness", description=__doc__)
    p.add_argument("--version", action="version", version=f"kharness {__version__}")
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
    run = verb("run", "build, boot and run scenarios; print the A/B verdict table")
    _common(run)
    run.add_argument("--variant", default="both", help="base, patched or both (default)")
    _run_options(run)
    run.set_defaults(func=cmd_run)
    bis = verb("bisect", "per-patch verdicts: the kernel after every prefix of the series, each "
                         "judged against the base; a matrix patch x scenario")
    _common(bis)
    _run_options(bis)
    bis.set_defaults(func=cmd_bisect)
    bld = verb("build", "build the run's kernels (or find them in the cache), boot nothing")
    _common(bld)
    bld.add_argument("--variant", default="both", help="base, patched or both (default)")
    bld.add_argument("--profile", default="default", help="kernel config profiles, a comma list")
    bld.set_defaults(func=cmd_build)
    chk = verb("check-series", "build after every patch; checkpatch every patch")
    _common(chk)
    chk.add_argument("--profile",
                     help=f"config profiles: {', '.join(known('profiles'))} or all "
                          "(default: the kernel's check_profiles)")
    chk.set_defaults(func=cmd_check_series)
    rep = verb("report", "print a run directory's summary, from its report.json")
    rep.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (results/<timestamp>)")
    rep.add_argument("--format", choices=("txt", "md", "junit", "ab"), default="txt",
                     help="txt: the plain-text summary (default; summary.txt), md: summary.md, "
                          "junit: junit.xml, ab: the verdicts as JSON to keep beside the series "
                          "(kernel-patches/NAME.ab.json)")
    rep.add_argument("--write", action="store_true",
                     help="also write summary.txt, summary.md and junit.xml anew (after an upgrade)")
    rep.set_defaults(func=cmd_report)
    mrg = verb("merge", "merge the run directories of several jobs into one run and one table")
    mrg.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories of one A/B")
    mrg.add_argument("--rerun", action="append", default=[], metavar="RUN_DIR",
                     help="a run of some scenarios again: each replaces the same scenario of the "
                          "other runs (repeatable); the merged report's command says which")
    mrg.add_argument("--out", metavar="DIR", help="the merged run directory (default: a new one under --results)")
    mrg.add_argument("--results", default="results", help="where a new run directory goes (default ./results)")
    mrg.set_defaults(func=cmd_merge)
    kc = verb("kcidb", "a run directory as KernelCI KCIDB JSON (schema v5.3), for kcidb-submit")
    kc.add_argument("run_dir", metavar="RUN_DIR")
    kc.add_argument("--origin", default="kharness",
                    help="the CI system's KCIDB origin, the prefix of every id (default kharness; "
                         "KernelCI assigns yours with your token)")
    kc.add_argument("--out", metavar="FILE", help="write there instead of standard output")
    kc.set_defaults(func=cmd_kcidb)
    ex = verb("export", "copy the kernels a run used out of the cache, for another machine")
    ex.add_argument("run_dir", metavar="RUN_DIR")
    ex.add_argument("--to", required=True, metavar="DIR", help="where the kernels go (a CI artifact)")
    ex.add_argument("--cache", help="cache directory (default $XDG_CACHE_HOME/kharness)")
    ex.set_defaults(func=cmd_export)
    im = verb("import", "put kernels another machine exported into the cache, each verified first")
    im.add_argument("src", metavar="DIR", help="a directory `kharness export` wrote")
    im.add_argument("--cache", help="cache directory (default $XDG_CACHE_HOME/kharness)")
    im.set_defaults(func=cmd_import)
    verb("list", "arches, kernels, series and scenarios in configs/").set_defaults(func=cmd_list)
    doc = verb("doctor", "what is installed, whether KVM can be used, disk space")
    doc.add_argument("--cache", help="cache directory (default $XDG_CACHE_HOME/kharness)")
    doc.add_argument("--reprobe", action="store_true",
                     help="forget the cached KVM probe answers: the next run probes KVM again")
    doc.set_defaults(func=cmd_doctor)
    cl = verb("clean", "prune the cache by age and/or size")
    cl.add_argument("--older-than", type=float, metavar="DAYS", help="remove artifacts unused this long")
    cl.add_argument("--max-size", type=float, metavar="GIB", help="then remove the oldest down to this size")
    cl.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing")
    cl.add_argument("--cache", help="cache directory (default $XDG_CACHE_HOME/kharness)")
    cl.set_defaults(func=cmd_clean)
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
    except OSError as e:   # a disk, a permission, a file where a directory was expected
        print(f"kharness: {os_failure(args.verb, e)}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as e:   # a bug, or an input nothing checked: an error, never a verdict (1)
        if getattr(args, "verbosity", 1) >= 2:
            traceback.print_exc()
        said = " ".join(str(e).split())[:200]
        where = "; -v shows where" if hasattr(args, "verbosity") else ""
        print(f"kharness: {args.verb}: internal error: {type(e).__name__}: {said} "
              f"(a bug in kharness{where})", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
