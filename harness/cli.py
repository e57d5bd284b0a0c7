"""kharness command line: run a plan, print the table, exit 0 (as expected), 1 (not), 2 (error)."""

from __future__ import annotations

import argparse
import signal
import sys
import traceback

from harness import __version__, commands
from harness.build.kbuild import CCACHE_REMOTE_VAR
from harness.config import known
from harness.core.errors import HarnessError, os_failure
from harness.output.formats import FORMATS
from harness.run.pipeline import default_jobs
from harness.run.plan import VARIANTS
from harness.sources.lore import DEFAULT_LORE

EXIT_ERROR = commands.EXIT_ERROR


def _interrupt(signum, frame):
    # SIGTERM takes the same path as Ctrl-C, so every `finally` (QEMU, make) runs.
    raise KeyboardInterrupt(f"signal {signum}")


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


def _run_options(p: argparse.ArgumentParser) -> None:
    """What run and bisect both take besides _common's: iterations, repeats, profiles, guests."""
    p.add_argument("--iterations", type=int, help="override the scenarios' iteration count")
    p.add_argument("--tests", action="append", metavar="TESTS",
                   help="the tree's own tests to run, a comma list: auto (those the series' changed "
                        "paths call for: configs/tests.yaml and the tree's MAINTAINERS, each said with "
                        "why), kselftest:DIR (a collection of tools/testing/selftests, run by its "
                        "run_kselftest.sh) or a scenario; default auto for a series with no config")
    p.add_argument("--fixes", action="append", metavar="SCENARIO",
                   help="the fix scenarios the series claims to fix, judged FIXED (a comma list; "
                        "default: its config's fixes:, none for a directory, mail or tree); every "
                        "other must not regress")
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
    _guest_options(p)


def _guest_options(p: argparse.ArgumentParser) -> None:
    """How each guest is run (run, bisect, shell)."""
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
    run.set_defaults(func=commands.cmd_run)
    bis = verb("bisect", "per-patch verdicts: the kernel after every prefix of the series, each "
                         "judged against the base; a matrix patch x scenario")
    _common(bis)
    _run_options(bis)
    bis.set_defaults(func=commands.cmd_bisect)
    bld = verb("build", "build the run's kernels (or find them in the cache), boot nothing")
    _common(bld)
    bld.add_argument("--variant", default="both", help="base, patched or both (default)")
    bld.add_argument("--profile", default="default", help="kernel config profiles, a comma list")
    bld.set_defaults(func=commands.cmd_build)
    kc = verb("kconfig", "each arch's .config of a kernel (tinyconfig + fragments, verified), no build")
    _common(kc)
    kc.add_argument("--variant", default="base", choices=VARIANTS, help="base (default) or patched")
    kc.add_argument("--profile", default="default", help="the kernel config profile (default: default)")
    kc.add_argument("--show", action="append", default=[], metavar="OPTION",
                    help="print an option's value (CONFIG_ optional; repeatable or a comma list)")
    kc.set_defaults(func=commands.cmd_kconfig)
    sh = verb("shell", "a shell in a kernel's guest, with a scenario's script and programs staged")
    _common(sh)
    sh.add_argument("--variant", default="base", choices=VARIANTS, help="base (default) or patched")
    sh.add_argument("--profile", default="default", help="the kernel config profile (default: default)")
    _guest_options(sh)
    sh.set_defaults(func=commands.cmd_shell)
    chk = verb("check-series", "build after every patch; checkpatch every patch")
    _common(chk)
    chk.add_argument("--profile",
                     help=f"config profiles: {', '.join(known('profiles'))} or all "
                          "(default: the kernel's check_profiles)")
    chk.set_defaults(func=commands.cmd_check_series)
    rep = verb("report", "print a run directory's summary, from its report.json")
    rep.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (results/<timestamp>)")
    rep.add_argument("--format", choices=tuple(FORMATS), default="txt",
                     help="; ".join(f"{k}: {f.help}" + (f" ({f.file})" if f.file else "")
                                    for k, f in FORMATS.items()) + " (default txt)")
    rep.add_argument("--write", action="store_true",
                     help="also write the run directory's reports anew (after an upgrade)")
    rep.set_defaults(func=commands.cmd_report)
    b4c = verb("b4-check", "b4's external check command: the verdict of the newest run of the series "
                           "a mail on stdin belongs to, as b4 review reads it")
    b4c.add_argument("--results", default="results", help="where run directories are (default ./results)")
    b4c.set_defaults(func=commands.cmd_b4_check)
    mrg = verb("merge", "merge the run directories of several jobs into one run and one table")
    mrg.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories of one A/B")
    mrg.add_argument("--rerun", action="append", default=[], metavar="RUN_DIR",
                     help="a run of some scenarios again: each replaces the same scenario of the "
                          "other runs (repeatable); the merged report's command says which")
    mrg.add_argument("--out", metavar="DIR", help="the merged run directory (default: a new one under --results)")
    mrg.add_argument("--results", default="results", help="where a new run directory goes (default ./results)")
    mrg.set_defaults(func=commands.cmd_merge)
    kc = verb("kcidb", "a run directory as KernelCI KCIDB JSON (schema v5.3), for kcidb-submit")
    kc.add_argument("run_dir", metavar="RUN_DIR")
    kc.add_argument("--origin", default="kharness",
                    help="the CI system's KCIDB origin, the prefix of every id (default kharness; "
                         "KernelCI assigns yours with your token)")
    kc.add_argument("--out", metavar="FILE", help="write there instead of standard output")
    kc.set_defaults(func=commands.cmd_kcidb)
    ex = verb("export", "copy the kernels a run used out of the cache, for another machine")
    ex.add_argument("run_dir", metavar="RUN_DIR")
    ex.add_argument("--to", required=True, metavar="DIR", help="where the kernels go (a CI artifact)")
    ex.add_argument("--cache", help="cache directory (default $XDG_CACHE_HOME/kharness)")
    ex.set_defaults(func=commands.cmd_export)
    im = verb("import", "put kernels another machine exported into the cache, each verified first")
    im.add_argument("src", metavar="DIR", help="a directory `kharness export` wrote")
    im.add_argument("--cache", help="cache directory (default $XDG_CACHE_HOME/kharness)")
    im.set_defaults(func=commands.cmd_import)
    verb("list", "arches, kernels, series and scenarios in configs/").set_defaults(func=commands.cmd_list)
    doc = verb("doctor", "what is installed, whether KVM can be used, disk space")
    doc.add_argument("--cache", help="cache directory (default $XDG_CACHE_HOME/kharness)")
    doc.add_argument("--reprobe", action="store_true",
                     help="forget the cached KVM probe answers: the next run probes KVM again")
    doc.set_defaults(func=commands.cmd_doctor)
    cl = verb("clean", "prune the cache by age and/or size")
    cl.add_argument("--older-than", type=float, metavar="DAYS", help="remove artifacts unused this long")
    cl.add_argument("--max-size", type=float, metavar="GIB", help="then remove the oldest down to this size")
    cl.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing")
    cl.add_argument("--cache", help="cache directory (default $XDG_CACHE_HOME/kharness)")
    cl.set_defaults(func=commands.cmd_clean)
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
