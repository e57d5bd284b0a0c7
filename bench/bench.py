"""kharness benchmark (issue #9): each figure against the plain tool doing the same job, so what
the harness itself costs shows as a ratio or a difference; the median of --runs runs, min and max.

Cold, warm and patched builds use a throwaway cache (<cache>/bench-tmp: build dirs and ccache of
its own; the real source and git workspace), removed afterwards. Whatever may compile holds
the build lock (harness.build.kbuild.build_lock_path). Writes bench/results.json and bench/results.txt (also printed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from harness import REPO_ROOT
from harness.build.image import build_guest_image
from harness.build.kbuild import (
    BUILD_TIMEOUT,
    CCACHE_REMOTE_VAR,
    REPRODUCIBLE_ENV,
    build_kernel,
    build_lock_path,
    cached_kernel,
    fragment_paths,
    make_args,
    make_config,
)
from harness.config import load_scenario
from harness.config.arches import all_arches, load_arch
from harness.core.cache import cache_root, machine_lock
from harness.core.errors import HarnessError
from harness.core.git import git_out
from harness.core.progress import Progress
from harness.guest.accel import choose_accel
from harness.guest.boot import boot
from harness.guest.runner import run_scenario
from harness.guest.vm import INIT_MARK, SSHD_MARK, free_port, qemu_command
from harness.run.plan import make_plan
from harness.series.workspace import Workspace
from harness.sources.source import fetch_source

BENCH = Path(__file__).resolve().parent
PARTS = ("cold", "warm", "patched", "remote", "boot", "reproducer", "tests", "ab", "ab-full")
BUILDS = ("cold", "warm", "patched", "remote")  # the parts that compile all along: the lock for the whole part
# the tests part: the tree's own tests, on this base's kernel (the collections of
# configs/tests.yaml and these KUnit directories, one kernel with all their fragments)
TESTS_KERNEL = "linux-7.2"
KUNIT_DIRS = ("lib/kunit", "kernel/time")


# --- pure logic (tests/unit/test_bench.py) --------------------------------------------------------

def summarize(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "runs": [round(v, 3) for v in values]}


def cmd_paths(text: str) -> dict[str, list[str]]:
    """The targets of a kbuild .cmd file (fixdep's output) with their source_ and deps_ files."""
    paths: dict[str, list[str]] = {}
    lines = iter(text.splitlines())
    for line in lines:
        kind, _, rest = line.partition("_")
        if kind in ("source", "deps") and " := " in rest:
            target, _, value = rest.partition(" := ")
            while True:
                value = re.sub(r"\$\(wildcard [^)]*\)", "", value)  # CONFIG_ options, not files
                paths.setdefault(target, []).extend(value.rstrip("\\").split())
                if not value.endswith("\\"):
                    break
                value = next(lines, "").strip()
    return paths


def objects_depending(build_dir: Path, changed: set[str]) -> int:
    """Objects whose .cmd file names a changed file (absolute, as gcc writes the tree's files in
    an O= build) as source or dependency."""
    count = 0
    for top, _dirs, files in os.walk(build_dir):  # not into `source`, the link to the tree
        for name in (n for n in files if n.endswith(".o.cmd")):
            targets = cmd_paths(Path(top, name).read_text(errors="replace"))
            count += sum(t.endswith(".o") and any(os.path.normpath(d) in changed for d in deps)
                         for t, deps in targets.items())
    return count


def targets(arches: dict[str, dict], accel: dict[str, str]) -> list[dict]:
    """The issue's targets, for the figures that were measured (medians)."""
    out = []
    for arch, figures in arches.items():
        m = {k: f["median"] for k, f in figures.items() if "median" in f}
        kvm = accel.get(arch.split("@")[0]) == "kvm"   # "x86_64@linux-7.2": another kernel base
        rows = [(f"{part} build harness/raw", f"{part}_harness_s", "/", f"{part}_raw_s", 1.05, "")
                for part in ("cold", "warm")]
        rows += [("boot-to-SSH minus raw boot-to-/init", "boot_ssh_s", "-", "boot_raw_init_s", 0.5, " s"),
                 (f"boot-to-SSH median ({'kvm' if kvm else 'tcg'})", "boot_ssh_s", "", "",
                  1.5 if kvm else 2.5, " s"),
                 ("patched compiled / depending on changed files", "patched_ccache_misses", "/",
                  "patched_objects_depending", 1.2, " x"),
                 ("cached A/B rerun, dying-memcg, end to end", "ab_rerun_s", "", "", 60, " s"),
                 ("second machine's cold build, shared ccache", "remote_hit_s", "", "", 60, " s")]
        for name, a, op, b, limit, unit in rows:
            if a not in m or (op and not m.get(b)):
                continue
            value = m[a] / m[b] if op == "/" else m[a] - m[b] if op == "-" else m[a]
            out.append({"name": f"{arch} {name}", "value": round(value, 3),
                        "target": f"<= {limit:g}{unit}", "met": value <= limit})
    return out


def table(results: dict) -> str:
    w = max([8, *map(len, results["arches"])])
    rows = [f"{'arch':<{w}} {'figure':<26} {'median':>9} {'min':>9} {'max':>9}  runs"]
    for arch, figures in results["arches"].items():
        rows += [f"{arch:<{w}} {name:<26} ERROR {f['error']}" if "error" in f else
                 f"{arch:<{w}} {name:<26} {f['median']:>9g} {f['min']:>9g} {f['max']:>9g}  {len(f['runs'])}"
                 for name, f in figures.items()]
    rows += ["", f"{'target':<54} {'value':>8}  {'target':<10} met"]
    rows += [f"{t['name']:<54} {t['value']:>8g}  {t['target']:<10} {'yes' if t['met'] else 'NO'}"
             for t in results["targets"]]
    return "\n".join(rows)


# --- measuring ------------------------------------------------------------------------------------

def build_lock(progress: Progress):
    """The lock every kharness build takes (kbuild.build_lock_path): never two at once."""
    return machine_lock(build_lock_path())


@contextlib.contextmanager
def ccache_dir(path: Path):
    """kbuild prefers $CCACHE_DIR to <cache>/ccache: point it at a scratch one for a while."""
    old = os.environ.get("CCACHE_DIR")
    os.environ["CCACHE_DIR"] = str(path)
    try:
        yield
    finally:
        if old is None:
            del os.environ["CCACHE_DIR"]
        else:
            os.environ["CCACHE_DIR"] = old


def ccache(path: Path, *args: str) -> str:
    return subprocess.run(["ccache", *args], env=dict(os.environ, CCACHE_DIR=str(path)),
                          capture_output=True, text=True, timeout=60, check=True).stdout


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.monotonic()
    value = fn(*args, **kwargs)
    return time.monotonic() - start, value


def raw_boot(arch, kernel: Path, initramfs: Path, accel: str, deadline: float) -> list[float]:
    """QEMU with the harness's arguments: seconds to /init's first line on the serial console,
    and on to dropbear's line that it listens (what of the difference is /init's own work)."""
    start, times, seen = time.monotonic(), [], b""
    proc = subprocess.Popen(qemu_command(arch, kernel, initramfs, accel, free_port()),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for mark in (INIT_MARK, SSHD_MARK):
            while mark.encode() not in seen:
                if time.monotonic() - start > deadline:
                    raise HarnessError("boot", f"raw QEMU: no {mark!r} within {deadline:g} s")
                if select.select([proc.stdout], [], [], 0.5)[0]:
                    chunk = os.read(proc.stdout.fileno(), 65536)
                    if not chunk:
                        raise HarnessError("boot", f"raw QEMU exited: {seen[-300:].decode(errors='replace')}")
                    seen += chunk
            times.append(time.monotonic() - start)
        return times
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


class Bench:
    def __init__(self, runs: int, kernel: str | None = None):
        """The series' base and patched kernels, or with ``kernel`` that base alone (no patched,
        reproducer or A/B parts)."""
        self.runs, self.progress, self.cache = runs, Progress(), cache_root()
        self.logs = REPO_ROOT / "results" / f"bench-{time.strftime('%Y%m%d-%H%M%S')}"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.plan = make_plan(series="obj-cgroup-kmem", kernel=kernel, scenarios=["dying-memcg"],
                              variants=("base",) if kernel else ("base", "patched"), cache=self.cache,
                              progress=self.progress)
        series, self.kernel = self.plan.series, self.plan.kernel
        self.scenario = load_scenario("dying-memcg")  # guest-scripts/dying-memcg.sh
        self.ws = Workspace(fetch_source(self.kernel, self.cache, self.progress), self.cache)
        self.commits = {"base": self.ws.base(self.progress)}
        if series is not None:
            self.commits["patched"] = self.ws.apply(series, self.progress, self.logs / "series.log")[-1]
        self.accel: dict[str, str] = {}

    def say(self, text: str) -> None:
        self.progress.info(f"bench: {text}")

    def build(self, arch, variant: str, cache: Path, label: str):
        """build_kernel as the pipeline calls it, in the real cache or a scratch one."""
        with self.ws.checkout(self.commits[variant]) as co:
            return build_kernel(arch, co, self.plan.fragments(arch, 'default'), cache, self.logs / label, self.progress,
                                self.kernel.make_flags, label)

    def harness_make(self, arch, scratch: Path, variant: str, label: str) -> tuple[float, object]:
        """build_kernel in ``scratch`` with its kernel forgotten, so that make runs."""
        shutil.rmtree(scratch / "kernels", ignore_errors=True)
        (self.logs / label / "build.log").unlink(missing_ok=True)  # a log per build, as in a run
        with ccache_dir(scratch / "ccache"):
            return timed(self.build, arch, variant, scratch, label)

    def raw_make(self, arch, raw: Path, label: str) -> float:
        """The harness's .config in raw/out, built by plain make: same CC (ccache, raw/ccache), -j."""
        with self.ws.checkout(self.commits["base"]) as co:
            if not (raw / "out/.config").exists():
                (raw / "out").mkdir(parents=True)
                shutil.copyfile(make_config(arch, co, fragment_paths(arch, self.plan.fragments(arch, 'default')), self.cache,
                                            self.kernel.make_flags, self.logs / f"{label}-config.log"),
                                raw / "out/.config")
            cmd = make_args(arch, co.path, raw / "out", (
                *self.kernel.make_flags, f"CC=ccache {arch.make_cross}gcc", "HOSTCC=ccache gcc",
                f"-j{os.cpu_count() or 1}", Path(arch.image).name))
            env = dict(os.environ, **REPRODUCIBLE_ENV, CCACHE_DIR=str(raw / "ccache"))
            with open(self.logs / f"{label}.log", "ab") as log:
                seconds, proc = timed(subprocess.run, cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                      stdin=subprocess.DEVNULL, timeout=BUILD_TIMEOUT)
        if proc.returncode:
            raise HarnessError("build", f"raw make failed (exit {proc.returncode})", self.logs / f"{label}.log")
        return seconds

    # --- the parts: each returns {figure: [a value per run]} --------------------------------------

    def cold(self, arch, scratch: Path) -> dict[str, list]:
        f: dict[str, list] = {"cold_harness_s": [], "cold_raw_s": []}
        for i in range(self.runs):
            for side in ("harness", "raw")[::1 if i % 2 == 0 else -1]:  # who goes first alternates
                shutil.rmtree(scratch / side, ignore_errors=True)
                self.say(f"{arch.name} cold build {i + 1}/{self.runs}, {side}: empty build dir and ccache")
                f[f"cold_{side}_s"].append(self.raw_make(arch, scratch / side, f"{arch.name}-raw") if side == "raw"
                                           else self.harness_make(arch, scratch / side, "base", arch.name)[0])
                self.say(f"{arch.name} cold build, {side}: {f[f'cold_{side}_s'][-1]:.1f} s")
        return f

    def warm(self, arch, scratch: Path) -> dict[str, list]:
        self.say(f"{arch.name} warm: both build dirs up to date first (untimed; a full build if cold did not run)")
        self.harness_make(arch, scratch / "harness", "base", arch.name)
        self.raw_make(arch, scratch / "raw", f"{arch.name}-raw")
        f: dict[str, list] = {"warm_harness_s": [], "warm_raw_s": [], "warm_cached_s": []}
        for i in range(self.runs):
            f["warm_harness_s"].append(self.harness_make(arch, scratch / "harness", "base", arch.name)[0])
            f["warm_raw_s"].append(self.raw_make(arch, scratch / "raw", f"{arch.name}-raw"))
            with ccache_dir(scratch / "harness/ccache"):  # the kernel is in the cache now: no make
                f["warm_cached_s"].append(timed(self.build, arch, "base", scratch / "harness", arch.name)[0])
            self.say(f"{arch.name} warm no-op rebuild {i + 1}/{self.runs}: "
                     + ", ".join(f"{k} {v[-1]:.2f}" for k, v in f.items()))
        return f

    def patched(self, arch, scratch: Path) -> dict[str, list]:
        kh, snapshot = scratch / "harness", scratch / "ccache-base"
        diff = git_out("diff", "--name-only", "{base}..{patched}".format(**self.commits), cwd=self.ws.work)
        changed = {str(self.ws.work / name) for name in diff.split()}
        f: dict[str, list] = {"patched_harness_s": [], "patched_objects_compiled": [],
                              "patched_ccache_misses": [], "patched_objects_depending": []}
        for i in range(self.runs):
            self.say(f"{arch.name} patched {i + 1}/{self.runs}: the base first (untimed)")
            self.harness_make(arch, kh, "base", arch.name)
            if not snapshot.exists():  # every run starts from the ccache of the base alone
                shutil.copytree(kh / "ccache", snapshot, symlinks=True)
            shutil.rmtree(kh / "ccache")
            shutil.copytree(snapshot, kh / "ccache", symlinks=True)
            ccache(kh / "ccache", "-z")
            seconds, kernel = self.harness_make(arch, kh, "patched", f"{arch.name}-patched")
            stats = dict(line.split("\t") for line in ccache(kh / "ccache", "--print-stats").splitlines())
            build_dir = next((kh / "builds" / arch.name).iterdir())  # the one, base and patched
            for name, value in (("harness_s", seconds), ("objects_compiled", kernel.objects),
                                ("ccache_misses", int(stats["cache_miss"])),
                                ("objects_depending", objects_depending(build_dir, changed))):
                f[f"patched_{name}"].append(value)
            self.say(f"{arch.name} patched build: " + ", ".join(f"{k[8:]} {v[-1]:.4g}" for k, v in f.items())
                     + f" ({len(changed)} files changed)")
        return f

    def remote(self, arch, scratch: Path) -> dict[str, list]:
        """A second machine's cold build with a compiler cache shared through ccache's remote
        storage (--ccache-remote): a Redis server on 127.0.0.1 (Debian's redis-server), which a
        first machine's cold build fills; the second starts with an empty build directory and
        local ccache. Its time against cold_harness_s (the same build with no remote)."""
        if shutil.which("redis-server") is None:
            raise HarnessError("bench", "the remote part needs redis-server (apt install redis-server)")
        f: dict[str, list] = {"remote_fill_s": [], "remote_hit_s": [], "remote_hits": [], "remote_misses": []}
        for i in range(self.runs):
            port = free_port()
            server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                       "--appendonly", "no", "--maxmemory", "0"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            old = os.environ.get(CCACHE_REMOTE_VAR)
            os.environ[CCACHE_REMOTE_VAR] = f"redis://127.0.0.1:{port}"
            try:
                for machine in ("fill", "hit"):
                    shutil.rmtree(scratch / machine, ignore_errors=True)
                    self.say(f"{arch.name} remote {i + 1}/{self.runs}, machine {machine}: empty build dir and local ccache")
                    seconds, _ = self.harness_make(arch, scratch / machine, "base", f"{arch.name}-remote-{machine}")
                    f[f"remote_{machine}_s"].append(seconds)
                stats = dict(line.split("\t") for line in ccache(scratch / "hit" / "ccache", "--print-stats").splitlines())
                f["remote_hits"].append(int(stats["remote_storage_hit"]))
                f["remote_misses"].append(int(stats["cache_miss"]))
                self.say(f"{arch.name} remote: first machine {f['remote_fill_s'][-1]:.1f} s, second "
                         f"{f['remote_hit_s'][-1]:.1f} s ({stats['remote_storage_hit']} remote hits, "
                         f"{stats['cache_miss']} misses)")
            finally:
                if old is None:
                    os.environ.pop(CCACHE_REMOTE_VAR, None)
                else:
                    os.environ[CCACHE_REMOTE_VAR] = old
                server.terminate()
                server.wait(30)
        return f

    def guest(self, arch, variant: str):
        """The variant's kernel as the pipeline finds it: from the cache, else built (locked)."""
        tree = git_out("rev-parse", f"{self.commits[variant]}^{{tree}}", cwd=self.ws.work).strip()
        k = cached_kernel(arch, tree, self.plan.fragments(arch, 'default'), self.cache, self.kernel.make_flags)
        if k is None:
            with build_lock(self.progress):
                k = self.build(arch, variant, self.cache, f"{arch.name}-{variant}")
        image = build_guest_image(arch, self.cache, self.progress)
        accel = choose_accel(arch, k.image, image.initramfs, self.cache, self.logs, self.progress)
        self.accel[arch.name] = accel.name
        return k, image, accel

    def boot(self, arch, _scratch: Path) -> dict[str, list]:
        k, image, accel = self.guest(arch, "base")
        deadline = arch.boot_deadline_kvm if accel.name == "kvm" else arch.boot_deadline
        f: dict[str, list] = {"boot_ssh_s": [], "boot_raw_init_s": [], "boot_raw_sshd_s": []}
        for i in range(self.runs):
            for side in ("harness", "raw")[::1 if i % 2 == 0 else -1]:
                if side == "raw":
                    init, sshd = raw_boot(arch, k.image, image.initramfs, accel.name, deadline)
                    f["boot_raw_init_s"].append(init)
                    f["boot_raw_sshd_s"].append(sshd)
                    continue
                b = boot(arch, k.image, image, accel, self.logs / f"{arch.name}-boot{i}", self.progress, arch.name)
                b.guest.close()
                b.vm.stop()
                f["boot_ssh_s"].append(b.seconds)
            self.say(f"{arch.name} boot {i + 1}/{self.runs} ({accel.name}): kharness to SSH "
                     f"{f['boot_ssh_s'][-1]:.2f} s; raw QEMU to /init {init:.2f} s, to sshd listening {sshd:.2f} s")
        return f

    def reproducer(self, arch, _scratch: Path) -> dict[str, list]:
        f: dict[str, list] = {}
        for variant in ("base", "patched"):
            k, image, accel = self.guest(arch, variant)
            for i in range(self.runs):  # a fresh guest each time: the script leaves 500 sleeps behind
                label, out = f"{arch.name}/{variant}", self.logs / f"{arch.name}-{variant}-reproducer{i}"
                b = boot(arch, k.image, image, accel, out, self.progress, label)
                try:
                    m = run_scenario(b.guest, self.scenario, out, self.progress, label)
                    b.vm.check()  # a splat voids the run
                finally:
                    b.guest.close()
                    b.vm.stop()
                f.setdefault(f"reproducer_{variant}_s", []).append(m.script_seconds)
        return f

    def tests(self, arch, scratch: Path) -> dict[str, list]:
        """The tree's own tests on TESTS_KERNEL's base: each kselftest collection's host build
        (make headers, make install; a scratch cache, its Debian libraries fetched first and not
        counted), its script time in the guest and each KUnit suite's time at boot (one `kharness
        run --variant base --tests ...`, its kernel built first if it is not cached)."""
        from harness.build.kselftest import build_kselftest
        from harness.build.kunit import suite_seconds
        from harness.build.programs import guest_libs
        from harness.config import load_kernel
        from harness.config.tests import load_tests
        collections = load_tests().collections
        kernel = load_kernel(TESTS_KERNEL)
        ws = Workspace(fetch_source(kernel, self.cache, self.progress), self.cache)
        base = ws.base(self.progress)
        f: dict[str, list] = {}
        for i in range(self.runs):
            with build_lock(self.progress):
                for target, c in collections.items():
                    shutil.rmtree(scratch / "programs", ignore_errors=True)
                    if c.libs:
                        guest_libs(arch, c.libs, scratch, self.progress)
                    seconds, _ = timed(build_kselftest, arch, ws, base, target, c.libs, scratch,
                                       self.logs / f"{arch.name}-tests{i}", self.progress)
                    f.setdefault(f"ksft_{target.replace('/', '-')}_build_s", []).append(seconds)
            exe = Path(sys.executable).with_name("kharness")
            tests = ",".join([*(f"kselftest:{t}" for t in collections), *(f"kunit:{d}" for d in KUNIT_DIRS)])
            cmd = [*([str(exe)] if exe.exists() else [sys.executable, "-m", "harness.cli"]), "run",
                   "--kernel", TESTS_KERNEL, "--variant", "base", "--arch", arch.name, "--tests", tests,
                   "--results", str(self.logs / f"{arch.name}-tests{i}")]
            log = self.logs / f"{arch.name}-tests{i}.log"
            with open(log, "wb") as out:   # not under the build lock: the run takes it to build its kernel
                rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    timeout=BUILD_TIMEOUT * 4).returncode
            reports = list((self.logs / f"{arch.name}-tests{i}").glob("*/report.json"))
            if len(reports) != 1:
                raise HarnessError("tests", f"`{' '.join(cmd)}` left no report (exit {rc})", log)
            report = reports[0]
            for r in (s for run in json.loads(report.read_text())["runs"] for s in run["scenarios"]):
                if r["scenario"].startswith("kselftest-") and r.get("error") is None:
                    f.setdefault(f"ksft_{r['scenario'][len('kselftest-'):]}_script_s", []).append(r["script_seconds"])
            if not any(k.endswith("_script_s") for k in f):
                raise HarnessError("tests", f"`{' '.join(cmd)}` ran no collection (exit {rc})", log)
            # the kernel log as the KUnit rows read it (dmesg: the console shows only warnings)
            logs = sorted(report.parent.glob(f"{arch.name}-base/kunit-*.out"))
            suites = {s: t for out in logs for s, t in suite_seconds(out.read_text(errors="replace")).items()}
            if not suites:
                raise HarnessError("tests", f"`{' '.join(cmd)}` left no KUnit suite's time in {report.parent}", log)
            for suite, seconds in suites.items():
                f.setdefault(f"kunit_{suite}_s", []).append(seconds)
        return f

    def ab(self, arches: list[str], full: bool = False) -> dict[str, list]:
        """`kharness run` A/B with everything cached: the reproducer alone (the time to verdict
        the targets speak of), or with ``full`` the series' whole evidence (five scenarios)."""
        exe = Path(sys.executable).with_name("kharness")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "harness.cli"]
        cmd += ["run"] + ([] if full else ["--scenario", "dying-memcg"])
        cmd += [] if arches == all_arches() else ["--arch", ",".join(arches)]  # else the defaults
        values = []
        with build_lock(self.progress):  # the first run builds what is not cached yet
            for i in range(self.runs + 1):
                log = self.logs / f"ab{'-full' if full else ''}-{i}.log"
                with open(log, "wb") as out:
                    seconds, proc = timed(subprocess.run, cmd, stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT)
                if proc.returncode:
                    raise HarnessError("ab", f"`{' '.join(cmd)}` exited {proc.returncode}", log)
                what = f"{i}/{self.runs}" if i else "0 (untimed: makes sure all is cached)"
                self.say(f"A/B{' (full)' if full else ''} rerun {what}: {seconds:.1f} s")
                values += [seconds] if i else []
        return {"ab_full_rerun_s" if full else "ab_rerun_s": values}


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith(("model name", "CPU part"))), platform.processor())
    return {"cpus": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
            "loadavg": [round(x, 2) for x in os.getloadavg()], "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def measure(results: dict, key: str, part: str, fn, *args) -> None:
    """Run one part; its figures replace earlier ones, an error is kept in their place."""
    figures = results["arches"].setdefault(key, {})
    try:
        figures.update({name: summarize(values) for name, values in fn(*args).items()})
        figures.pop(f"{part}_error", None)
    except (HarnessError, OSError, subprocess.SubprocessError) as e:
        figures[f"{part}_error"] = {"error": str(e)}
        print(f"bench: {key} {part}: ERROR {e}", file=sys.stderr)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")  # so that every `finally` stops QEMU, cleans up


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="all", help="x86_64, arm64 or all (default)")
    ap.add_argument("--runs", type=int, default=3, help="runs per figure (default 3)")
    ap.add_argument("--only", default=",".join(PARTS), help=f"comma list of {','.join(PARTS)} (default: all)")
    ap.add_argument("--kernel", help="another kernel base's own kernel (configs/kernels/; parts cold, "
                                     "warm, boot), its figures under ARCH@KERNEL")
    args = ap.parse_args(argv)
    arches, parts = all_arches() if args.arch == "all" else args.arch.split(","), args.only.split(",")
    if args.runs < 1 or set(parts) - set(PARTS) or set(arches) - set(all_arches()):
        ap.error(f"--runs 1 or more; --only from {','.join(PARTS)}; --arch from {', '.join(all_arches())}, all")
    if args.kernel and set(parts) - {"cold", "warm", "boot", "tests"}:
        if args.only != ",".join(PARTS):
            ap.error("--kernel: only the parts cold, warm and boot (there is no patched kernel)")
        parts = ["cold", "warm", "boot"]
    path = BENCH / "results.json"  # figures of parts not run now are kept from earlier runs
    old = json.loads(path.read_text()) if path.exists() else {}
    results = {"machine": {**old.get("machine", {}), **machine()}, "arches": old.get("arches", {})}
    bench = Bench(args.runs, args.kernel)

    def save() -> None:  # after every part: an interrupted bench keeps what it measured
        results["machine"]["accel"] = {**results["machine"].get("accel", {}), **bench.accel}
        results["targets"] = targets(results["arches"], results["machine"]["accel"])
        path.write_text(json.dumps(results, indent=1) + "\n")
        (BENCH / "results.txt").write_text(table(results) + "\n")

    for name in arches:
        arch, scratch = load_arch(name), bench.cache / "bench-tmp" / name
        shutil.rmtree(scratch, ignore_errors=True)
        try:
            for part in (p for p in PARTS if p in parts and not p.startswith("ab")):
                if part == "tests" and args.kernel:
                    continue   # its own kernel: TESTS_KERNEL
                bench.say(f"{name}: {part}")
                with build_lock(bench.progress) if part in BUILDS else contextlib.nullcontext():
                    measure(results, f"{name}@{args.kernel}" if args.kernel else name, part,
                            getattr(bench, part), arch, scratch)
                save()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            with contextlib.suppress(OSError):
                scratch.parent.rmdir()  # <cache>/bench-tmp, when no other arch or run uses it
    for part in (p for p in ("ab", "ab-full") if p in parts):
        measure(results, "all" if arches == all_arches() else ",".join(arches), part, bench.ab, arches,
                part == "ab-full")
        save()
    print(table(results))
    print(f"results: {path}; logs: {bench.logs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
