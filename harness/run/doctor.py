"""`kharness list`, `doctor` and `clean`: what the configs offer, what the machine lacks, and
keeping the cache to a size."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import time
from pathlib import Path

from harness.build.kbuild import build_lock_path
from harness.config import CONFIG_DIR, known, load_kernel, load_profile, load_scenario
from harness.config.arches import all_arches, load_arch
from harness.core.cache import TEMP_NAME, locked, remove_entry, try_locked
from harness.core.errors import HarnessError
from harness.core.proc import first_line
from harness.core.progress import human_size
from harness.guest.accel import kvm_precondition

# Top-level cache directories whose entries are artifacts that can be rebuilt or downloaded again.
PRUNABLE = ("kernels", "builds", "images", "downloads", "sources", "git", "configs", "lore", "series")


def first_sentence(text: str) -> str:
    """Up to the first full stop that ends a sentence (not the one in "kstack-pin.c"), and an
    ellipsis when more follows."""
    text = " ".join(text.split())
    m = re.search(r"\.(?:\s|$)", text)
    if m is None:
        return text
    return text[:m.start()] + (" ..." if text[m.end():] else "")


def list_configs() -> str:
    out = ["arches:"]
    for name in all_arches():
        a = load_arch(name)
        out.append(f"  {name:<10} {a.qemu} -M {a.machine}, console {a.console}, Debian {a.debian_arch}")
    out.append("kernels:")
    kernels = {name: load_kernel(name) for name in known("kernels")}
    for name, k in kernels.items():
        where = ", then ".join(s.type + (f" {s.suite}" if s.suite else "") for s in k.sources)
        fixed = "".join(f"; {s} fixed upstream ({v})" for s, v in k.fixed_upstream.items())
        out.append(f"  {name:<22} {k.description or k.version}: {where}; profiles "
                   f"{', '.join(k.profiles)}{fixed}")
    out.append("profiles:")
    for name in known("profiles"):
        p = load_profile(name)
        on = [k for k, cfg in kernels.items() if name in cfg.profiles]
        out.append(f"  {name:<22} {p.description} (on {', '.join(on) or 'no kernel'})")
    out.append("series:")
    for p in sorted((CONFIG_DIR / "series").glob("*.yaml")):
        from harness.series.patches import load_series_config  # series imports source; keep `list` light
        try:
            c = load_series_config(p.stem)
            out.append(f"  {p.stem:<22} {c.title} (on {c.kernel}; scenarios {', '.join(c.scenarios)})")
        except HarnessError as e:
            out.append(f"  {p.stem:<22} unusable: {e}")
    out.append("scenarios:")
    for p in sorted((CONFIG_DIR / "scenarios").glob("*.yaml")):
        s = load_scenario(p.stem)
        out.append(f"  {p.stem:<22} marker {s.marker}: {first_sentence(s.description)}")
    return "\n".join(out)


def _version(cmd: list[str]) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    return first_line(cmd, timeout=20) or "present"


def kvm_verdicts(cache: Path, reprobe: bool = False) -> list[str]:
    """The cached KVM probe answers, each with its date (forgotten with ``reprobe``: the next
    run that boots a kernel of that arch probes again)."""
    path = cache / "kvm-probe.json"
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    lines = []
    for key, entry in sorted(known.items()):
        arch = key.split(":", 1)[0]
        verdict = "boots under KVM" if entry.get("failure") is None else f"failed: {entry['failure']}"
        lines.append(f"info    {arch} KVM probe of {entry.get('when', '?')}: {verdict}")
    if reprobe:
        with locked(cache / "kvm-probe.lock"):
            path.unlink(missing_ok=True)
        lines.append(f"info    forgot {len(known)} cached KVM probe answer(s): the next run probes again")
    return lines


def doctor(cache: Path, reprobe: bool = False) -> tuple[list[str], bool]:
    """One line per requirement; ok is False when something the harness needs is missing."""
    lines, ok = [], True

    def check(what: str, found: str | None, hint: str = "run `make deps`") -> None:
        nonlocal ok
        lines.append(f"{'ok     ' if found else 'MISSING'} {what}: {found or hint}")
        ok = ok and bool(found)

    for tool in ("make", "gcc", "ccache", "git", "perl", "apt-get", "dpkg-deb", "readelf", "xz"):
        check(tool, _version([tool, "--version"]))
    b4 = _version(["b4", "--version"])   # only series from mail need it
    lines.append(f"{'ok     ' if b4 else 'info   '} b4: {b4 or 'not installed: series from mail (lore, mbox threads) need it (make deps)'}")
    for name in all_arches():
        arch = load_arch(name)
        check(f"{name} emulator {arch.qemu}", _version([arch.qemu, "--version"]))
        if arch.make_cross:
            check(f"{name} cross compiler {arch.make_cross}gcc", _version([f"{arch.make_cross}gcc", "--version"]))
        why = kvm_precondition(arch)
        lines.append(f"info    {name} KVM: {'may be usable (a boot probe decides)' if why is None else why}")
    for module in ("paramiko", "pexpect", "yaml", "requests"):
        try:
            mod = importlib.import_module(module)
            check(f"python {module}", getattr(mod, "__version__", "present"))
        except ImportError:
            check(f"python {module}", None)
    lines += kvm_verdicts(cache, reprobe)
    cache.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(cache).free
    check(f"disk space in {cache}", human_size(free) + " free" if free > 10 << 30 else None,
          f"only {human_size(free)} free: a kernel build needs ~3 GiB, `kharness clean` frees space")
    if os.geteuid() == 0:
        lines.append("info    running as root: kharness needs root only for `make deps` (apt)")
    return lines, ok


def _size(path: Path) -> int:
    if path.is_symlink() or not path.is_dir():
        return path.lstat().st_size
    return sum(f.lstat().st_size for f in path.rglob("*") if not f.is_dir() or f.is_symlink())


def entry_lock(entry: Path) -> Path:
    """The lock every writer of the cache entry ``entry`` takes (cache.locked), so that clean
    removes nothing a run is making or using: a temporary ``.NAME.xxxxxxxx.tmp`` is NAME's; the
    build directories are the kernel build's (kbuild.build_lock_path)."""
    name = entry.name
    if name.startswith(".") and name.endswith(".tmp"):
        stem = name[1:]
        for i in range(len(stem)):
            if stem[i] == "." and TEMP_NAME.fullmatch(stem[i:]):
                name = stem[:i]
                break
    if entry.parent.name == "builds":
        return build_lock_path()
    if entry.parent.name == "images":
        return entry.parent / ".locks" / name
    return entry.parent / f"{name}.lock"


def clean(cache: Path, older_than_days: float | None, max_bytes: int | None, dry_run: bool) -> list[str]:
    """Remove artifacts unused for longer than ``older_than_days``, then the least recently used
    ones until the cache is under ``max_bytes``. Nothing is removed when neither is given."""
    entries = []
    for top in PRUNABLE:
        d = cache / top
        if d.is_dir():
            entries += [p for p in d.iterdir() if not p.name.endswith((".lock", ".locks"))]
    entries.sort(key=lambda p: p.lstat().st_mtime)
    sizes = {p: _size(p) for p in entries}
    total = sum(sizes.values())
    removed = []
    now = time.time()
    for p in entries:
        old = older_than_days is not None and now - p.lstat().st_mtime > older_than_days * 86400
        big = max_bytes is not None and total > max_bytes
        if not (old or big):
            continue
        with try_locked(entry_lock(p)) as mine:   # a writer's lock: it is in use, or being made
            if not mine:
                removed.append(f"kept {p}: in use (its lock {entry_lock(p)} is held)")
                continue
            removed.append(f"{'would remove' if dry_run else 'removed'} {p} ({human_size(sizes[p])})")
            total -= sizes[p]
            if not dry_run:
                if p.name.startswith(".") and p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)   # already a temporary name
                else:
                    remove_entry(p)   # renamed first: never half an entry under its key
    removed.append(f"cache now {human_size(total)} in {cache}")
    return removed
