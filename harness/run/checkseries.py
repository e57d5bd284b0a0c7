"""check-series: the kernel after every prefix of a series builds, per arch and config profile
(the kernel base says which: e.g. with and without kmem accounting), and the tree's own
scripts/checkpatch.pl finds no error in any patch."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from harness.build.kbuild import build_kernel
from harness.core import proc
from harness.core.errors import HarnessError
from harness.core.progress import Progress
from harness.run.plan import Plan
from harness.series.workspace import Series, Workspace
from harness.sources.source import fetch_source

CHECKPATCH_TIMEOUT = 300.0


@dataclass(frozen=True)
class PrefixBuild:
    arch: str
    profile: str
    patch: int            # the build has patches 1..patch applied
    subject: str
    ok: bool
    seconds: float
    objects: int
    error: str | None = None
    log: str | None = None


@dataclass(frozen=True)
class CheckpatchResult:
    patch: str
    errors: int
    warnings: int
    checks: int
    findings: tuple[str, ...]


def run_checkpatch(workspace: Workspace, series: Series, base: str) -> list[CheckpatchResult]:
    """The tree's own scripts/checkpatch.pl on each patch file."""
    results = []
    with workspace.checkout(base) as co:
        for p in series.patches:
            r = proc.run(["perl", str(co.path / "scripts/checkpatch.pl"), "--terse", "--no-summary",
                          "--show-types", str(p.path)], "series", CHECKPATCH_TIMEOUT, cwd=co.path,
                         check=False, what=f"checkpatch.pl {p.path.name}")
            lines = tuple(line for line in str(r.stdout).splitlines() if line.strip())
            count = lambda kind, lines=lines: sum(f": {kind}:" in line for line in lines)  # noqa: E731
            results.append(CheckpatchResult(p.path.name, count("ERROR"), count("WARNING"),
                                            count("CHECK"), lines))
    return results


def check_series(plan: Plan, profiles: tuple[str, ...], cache: Path, run_dir: Path,
                 progress: Progress) -> tuple[list[PrefixBuild], list[CheckpatchResult]]:
    """Build the kernel after each patch, per arch and config profile; checkpatch each patch."""
    assert plan.series is not None
    tree = fetch_source(plan.kernel, cache, progress)
    workspace = Workspace(tree, cache)
    base = workspace.base(progress)
    commits = workspace.apply(plan.series, progress, run_dir / "series.log")
    checkpatch = run_checkpatch(workspace, plan.series, base)
    builds = []
    for arch in plan.arches:
        for profile in profiles:
            for n, (commit, patch) in enumerate(zip(commits, plan.series.patches), 1):
                label = f"{arch.name} {profile} {n}/{len(commits)}"
                out = run_dir / "builds" / f"{arch.name}-{profile}-{n:04d}"
                start = time.monotonic()
                try:
                    with workspace.checkout(commit) as co:
                        k = build_kernel(arch, co, plan.fragments(arch, profile), cache, out, progress,
                                         plan.kernel.make_flags, label)
                    builds.append(PrefixBuild(arch.name, profile, n, patch.subject, True,
                                              round(time.monotonic() - start, 1), k.objects))
                except HarnessError as e:
                    progress.info(f"check-series {label}: FAILED {e}")
                    builds.append(PrefixBuild(arch.name, profile, n, patch.subject, False,
                                              round(time.monotonic() - start, 1), 0,
                                              e.excerpt or str(e), str(e.log) if e.log else None))
    return builds, checkpatch


def series_matrix(builds, checkpatch) -> str:
    columns = sorted({(b.arch, b.profile) for b in builds})
    lines = ["patch  " + "  ".join(f"{a}/{p}" for a, p in columns) + "  checkpatch (E/W/C)"]
    for n in sorted({b.patch for b in builds}):
        cells = []
        for a, p in columns:
            b = next((b for b in builds if (b.arch, b.profile, b.patch) == (a, p, n)), None)
            cell = "-" if b is None else ("ok" if b.ok else "FAIL") + (f" {b.seconds:.0f}s" if b else "")
            cells.append(cell.ljust(len(f"{a}/{p}")))
        cp = checkpatch[n - 1] if n - 1 < len(checkpatch) else None
        cps = f"{cp.errors}/{cp.warnings}/{cp.checks}" if cp else "-"
        lines.append(f"{n:<5}  " + "  ".join(cells) + f"  {cps}")
    return "\n".join(lines)
