"""A run as KernelCI's KCIDB data (schema v5.3, as the kcidb-io package validates it): what
`kcidb-submit` or `kci-dev submit` send to KernelCI. kharness writes the file; it never talks to
the service itself.

Objects: a checkout for the base tree and one for base + series (its patchset_hash), a build
per kernel (arch, profile, variant), a test per kernel and scenario (and per selftest), each
test's status from what that kernel showed (PASS: its expectation held; FAIL: it did not;
ERROR; SKIP: a patched kernel with the base's very image), the verdicts and numbers in misc.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.output.runreport import RunReport
from harness.verdict.kinds import ERROR, kind, result_verdict
from harness.verdict.results import RunMeta, ScenarioResult
from harness.verdict.table import Row

SCHEMA = {"major": 5, "minor": 3}


def patchset_hash(meta: RunMeta) -> str:
    """KCIDB's: sha256 over each patch's newline-terminated sha256, in order ('' without one)."""
    if not meta.series or not meta.series.patches:
        return ""
    return hashlib.sha256("".join(f"{p.sha256}\n" for p in meta.series.patches).encode()).hexdigest()


def _status(r: ScenarioResult) -> str:
    """A scenario's status on one kernel; of one whose tests are judged one by one (a kselftest
    collection, KUnit suites), FAIL when any of them failed there, as KCIDB's parent tests are."""
    if r.unchanged and r.error is None:
        return "SKIP"
    if r.error is not None or r.held is None:
        return "ERROR"
    if kind(r.kind).has_tests and any(v in ("fail", "flaky") for v in r.tests.values()):
        return "FAIL"
    return "PASS" if r.held else "FAIL"


def _path(*parts: str) -> str:
    """A dot-separated KCIDB test path: each part of letters, digits, '_' and '-' only."""
    return ".".join(re.sub(r"[^A-Za-z0-9_-]+", "_", p) for p in parts)


def kcidb(rr: RunReport) -> dict[str, Any]:
    meta, runs, run_dir, origin = rr.meta, rr.runs, rr.run_dir or Path("."), rr.origin
    if meta is None:
        raise ValueError("KCIDB needs the run's metadata")
    if not re.fullmatch(r"[a-z0-9_]+", origin):
        raise HarnessError("report", f"--origin {origin!r}: KCIDB origins are lower-case letters, digits and _")
    table: dict[tuple[str, str, str], Row] = {(r.arch, r.scenario, r.profile): r for r in rr.table}
    base_id = f"{origin}:{meta.kernel.sha256 or meta.kernel.name}"
    phash = patchset_hash(meta)
    checkouts = [{"id": base_id, "origin": origin, "tree_name": meta.kernel.name, "patchset_hash": "",
                  "valid": True, "misc": {"kernel_version": meta.kernel.version, "source": meta.kernel.origin}}]
    patched_id = f"{base_id}+{phash[:16]}" if phash else None
    if patched_id:
        s = meta.series
        files = []
        if s.origin.startswith("dir "):
            directory = Path(s.origin[4:])
            files = [{"name": p.file, "url": (directory / p.file).resolve().as_uri()} for p in s.patches]
        checkouts.append({"id": patched_id, "origin": origin, "tree_name": meta.kernel.name,
                          "patchset_hash": phash, **({"patchset_files": files} if files else {}),
                          "valid": True, "misc": {"series": s.name, "title": s.title, "source": s.origin}})
    run_id = re.sub(r"[^0-9A-Za-z]", "", meta.started) or "run"
    builds, tests = [], []
    for run in runs:
        k = run.kernel
        build_id = f"{origin}:{run.kernel_key or run_id + '-' + k.dir_name}"
        built = run.kernel_key is not None
        log = run_dir / k.dir_name / "build.log"
        builds.append({
            "id": build_id, "origin": origin,
            "checkout_id": patched_id if k.variant == "patched" and patched_id else base_id,
            "architecture": k.arch, "config_name": k.profile, "compiler": run.toolchain or "unknown",
            "status": "PASS" if built else ("ERROR" if run.error else "MISS"),
            **({"duration": run.timings["build"]} if "build" in run.timings else {}),
            **({"log_url": log.resolve().as_uri()} if log.is_file() else {}),
            "misc": {"variant": k.variant, "config_sha256": run.config_sha256, "cached": run.build_cached}})
        for s in run.scenarios:
            row = table.get((s.arch, s.scenario, s.profile))
            test_id = f"{origin}:{run_id}-{k.dir_name}-{s.scenario}"
            tests.append({
                "id": test_id, "build_id": build_id, "origin": origin, "path": _path("kharness", s.scenario),
                "status": _status(s), "environment": {"comment": f"QEMU {run.accel or '?'}, {run.vcpus or 1} vCPU"},
                **({"log_excerpt": s.error[:16384]} if s.error else {}),
                "misc": {"variant": s.variant, "verdict": result_verdict(s), "row_verdict": row.verdict if row else None,
                         "expectation": s.expectation, "failed": list(s.failed), "metrics": dict(s.metrics)}})
            for test, value in sorted(s.tests.items()):
                tests.append({
                    "id": f"{test_id}-{test}", "build_id": build_id, "origin": origin,
                    "path": _path("kharness", s.scenario, *test.split(":")),
                    "status": {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}.get(value, "ERROR" if result_verdict(s) == ERROR
                                                                                   else "DONE"),
                    "misc": {"variant": s.variant, "result": value}})
    return {"version": SCHEMA, "checkouts": checkouts, "builds": builds, "tests": tests}


def kcidb_json(rr: RunReport) -> str:
    return json.dumps(kcidb(rr), indent=2) + "\n"
