"""Built kernels as artifacts: a build job exports the kernels of its run, a boot job on another
machine imports them into its cache, where the run finds them by the same key and runs no make.

An export is a directory (a CI artifact) with one directory per kernel key holding its files
(image, config, System.map, vmlinux, build.log) and a MANIFEST of their sha256s. An import checks
every file against the manifest, and the key against the directory's name, before anything
enters the cache, and enters it atomically: a damaged or partial artifact changes nothing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from harness.build.kbuild import KERNEL_FILES
from harness.core.cache import atomic_dir, complete, locked, sha256_file
from harness.core.errors import HarnessError
from harness.output.reportjson import KEY, read_json
from harness.verdict.results import RunRecord

MANIFEST = "MANIFEST.json"


def export_kernels(runs: list[RunRecord], cache: Path, to: Path) -> list[str]:
    """The run's kernels (their cache entries) into ``to``; one line per kernel."""
    lines = []
    for run in runs:
        if not run.kernel_key:
            continue
        if not KEY.fullmatch(run.kernel_key):   # it names a directory here and there: never a path
            raise HarnessError("report", f"{run.kernel.label}: kernel_key {run.kernel_key[:70]!r} is not "
                               "a cache key (64 hex digits)")
        src = cache / "kernels" / run.kernel_key
        if not complete(src, KERNEL_FILES):
            raise HarnessError("report", f"{run.kernel.label}: kernel {run.kernel_key[:12]} is not in {cache}")
        dest = to / run.kernel_key
        if (dest / MANIFEST).is_file():
            continue
        with atomic_dir(dest) as tmp:
            files = {}
            for f in sorted(p for p in src.iterdir() if p.is_file()):
                shutil.copyfile(f, tmp / f.name)
                files[f.name] = sha256_file(tmp / f.name)
            (tmp / MANIFEST).write_text(json.dumps(
                {"key": run.kernel_key, "arch": run.arch, "variant": run.variant, "profile": run.profile,
                 "kernel_version": run.kernel_version, "config_sha256": run.config_sha256,
                 "toolchain": run.toolchain, "files": files}, indent=1) + "\n")
        lines.append(f"exported {run.kernel.label} {run.kernel_key[:12]} to {dest}")
    return lines


def import_kernels(src: Path, cache: Path) -> list[str]:
    """Every kernel exported under ``src`` into the cache, each verified first."""
    manifests = sorted(src.glob(f"*/{MANIFEST}"))
    if not manifests:
        raise HarnessError("report", f"{src}: no exported kernels (*/{MANIFEST})")
    lines = []
    for m in manifests:
        entry = m.parent
        data = read_json(m)
        if not isinstance(data, dict) or not isinstance(data.get("files"), dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in data["files"].items()):
            raise HarnessError("report", f"{m}: files: expected a mapping of file name to sha256 "
                               "(not a kernel manifest)")
        key, files = data.get("key"), data["files"]
        if key != entry.name or not isinstance(key, str) or not KEY.fullmatch(key) or "image" not in files:
            raise HarnessError("report", f"{m}: key {key!r} does not name its directory {entry.name}")
        for name, sha in files.items():
            if Path(name).name != name or (entry / name).is_symlink() or not (entry / name).is_file() or sha256_file(entry / name) != sha:
                raise HarnessError("report", f"{entry / name}: missing or not the file its manifest names "
                                   "(sha256 differs): nothing imported from it")
        final = cache / "kernels" / key
        with locked(cache / "kernels" / f"{key}.lock"):
            if complete(final, KERNEL_FILES):
                lines.append(f"{key[:12]} ({data.get('arch')}/{data.get('variant')}): already in the cache")
                continue
            with atomic_dir(final, owned=True) as tmp:
                for name in files:
                    shutil.copyfile(entry / name, tmp / name)
        lines.append(f"imported {data.get('arch')}/{data.get('variant')} {key[:12]} into {final}")
    return lines
