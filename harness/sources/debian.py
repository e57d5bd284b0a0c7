"""Debian's archive through a private apt: its own lists, cache and sources, nothing under /etc/apt.

The mirror is whatever the machine's own apt configuration points at: it is read from
/etc/apt/sources.list(.d), never written down in this project, so the harness uses the same
mirror (or proxy) the administrator chose.
"""

from __future__ import annotations

import fnmatch
import functools
import itertools
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from harness.core import proc
from harness.core.cache import digest, locked
from harness.core.errors import HarnessError

DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# Suites that have no -updates and no -security companion: asking for them is a failed
# `apt-get update` ("does not have a Release file"), not a missing kernel.
ROLLING_SUITES = frozenset({"sid", "unstable", "experimental", "rc-buggy"})


@dataclass(frozen=True)
class Mirrors:
    """The machine's Debian mirror URIs: the main archive and the security archive."""

    main: str
    security: str | None
    keyring: str | None


def _deb822_entries(text: str) -> list[dict[str, str]]:
    entries = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0].isspace() and key:
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if fields.get("enabled", "yes").lower() != "no" and "uris" in fields:
            entries.append(fields)
    return entries


def _one_line_entries(text: str) -> list[dict[str, str]]:
    entries = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line.startswith("deb"):
            continue
        options = re.search(r"\[(.*?)\]", line)
        words = re.sub(r"\[.*?\]", "", line).split()
        if len(words) < 3:
            continue
        entry = {"types": words[0], "uris": words[1], "suites": words[2]}
        if options:
            for opt in options.group(1).split():
                k, _, v = opt.partition("=")
                if k == "signed-by":
                    entry["signed-by"] = v
        entries.append(entry)
    return entries


def machine_mirrors(etc: Path = Path("/etc/apt")) -> Mirrors:
    """Read the Debian mirrors the machine's apt uses (deb822 and one-line formats)."""
    entries: list[dict[str, str]] = []
    parts = etc / "sources.list.d"
    if parts.is_dir():
        for f in sorted(parts.iterdir()):
            if f.suffix == ".sources":
                entries += _deb822_entries(f.read_text(errors="replace"))
            elif f.suffix == ".list":
                entries += _one_line_entries(f.read_text(errors="replace"))
    if (etc / "sources.list").is_file():
        entries += _one_line_entries((etc / "sources.list").read_text(errors="replace"))
    main = security = keyring = None
    for e in entries:
        suites = e.get("suites", "").split()
        uri = e["uris"].split()[0].rstrip("/")
        # Only Debian archives carry the suites we need; third-party repositories are skipped by
        # their shape (a Debian suite name is a codename, optionally with a -suffix).
        if any(s.endswith("-security") or s.endswith("/updates") for s in suites):
            security = security or uri
        elif any(re.fullmatch(r"[a-z]+(-updates|-backports)?", s) for s in suites) and (
            "debian" in uri.rsplit("/", 1)[-1]
        ):
            main = main or uri
        else:
            continue
        keyring = keyring or e.get("signed-by")
    if main is None:
        raise HarnessError(
            "apt",
            f"no Debian archive found in {etc}/sources.list or {parts}: "
            "kharness uses the machine's own Debian mirror",
        )
    if keyring is None and Path(DEFAULT_KEYRING).exists():
        keyring = DEFAULT_KEYRING
    return Mirrors(main=main, security=security, keyring=keyring)


class PrivateApt:
    """apt-get and apt-cache confined to a directory of their own under the cache.

    One instance serves one suite (e.g. bullseye for kernel sources, bookworm for guest
    packages), for the given binary architectures, without touching dpkg's architecture list.
    """

    def __init__(
        self,
        cache: Path,
        suite: str,
        architectures: tuple[str, ...] = (),
        sources: bool = False,
        mirrors: Mirrors | None = None,
    ):
        self.mirrors = mirrors or machine_mirrors()
        self.suite = suite
        self.architectures = architectures
        self.sources = sources
        self.sources_text = self._sources_text()
        key = digest([self.sources_text, ",".join(architectures)])[:16]
        self.root = cache / "apt" / f"{suite}-{key}"

    def _sources_text(self) -> str:
        types = "deb" + (" deb-src" if self.sources else "")
        signed = f"Signed-By: {self.mirrors.keyring}\n" if self.mirrors.keyring else ""
        rolling = self.suite in ROLLING_SUITES
        suites = self.suite if rolling else f"{self.suite} {self.suite}-updates"
        text = f"Types: {types}\nURIs: {self.mirrors.main}\nSuites: {suites}\nComponents: main\n{signed}"
        if self.mirrors.security and not rolling:
            text += (
                f"\nTypes: {types}\nURIs: {self.mirrors.security}\n"
                f"Suites: {self.suite}-security\nComponents: main\n{signed}"
            )
        return text

    def _options(self) -> list[str]:
        r = self.root
        opts = {
            "Dir::Etc::SourceList": r / "etc/sources.list",
            "Dir::Etc::SourceParts": r / "etc/sources.list.d",
            "Dir::Etc::Preferences": r / "etc/preferences",
            "Dir::Etc::PreferencesParts": r / "etc/preferences.d",
            "Dir::State": r / "state",
            "Dir::State::status": r / "state/status",
            "Dir::Cache": r / "cache",
            "APT::Sandbox::User": "root" if os.geteuid() == 0 else "",
        }
        if self.architectures:
            opts["APT::Architectures"] = ",".join(self.architectures)
            opts["APT::Architecture"] = self.architectures[0]
        args = []
        for k, v in opts.items():
            if v != "":
                args += ["-o", f"{k}={v}"]
        return args

    def _setup(self) -> None:
        r = self.root
        for d in ("etc/sources.list.d", "etc/preferences.d", "state/lists/partial",
                  "cache/archives/partial"):
            (r / d).mkdir(parents=True, exist_ok=True)
        (r / "etc/sources.list").touch()
        (r / "state/status").touch()
        (r / "etc/sources.list.d/kharness.sources").write_text(self.sources_text)

    def run(self, tool: str, args: list[str], cwd: Path | None = None, timeout: float = 1800) -> str:
        what = f"{tool} {' '.join(args)}"
        r = proc.run([tool, *self._options(), *args], "apt", timeout, cwd=cwd, check=False, what=what)
        if r.returncode != 0:
            tail = "\n".join(str(r.stderr or r.stdout).strip().splitlines()[-5:])
            raise HarnessError("apt", f"{what} failed: {tail}")
        return str(r.stdout)

    def update(self, max_age: float = 24 * 3600) -> None:
        """Refresh the package lists if they are older than ``max_age`` seconds."""
        stamp = self.root / "state/updated"
        with locked(self.root.with_suffix(".lock")):
            if stamp.exists() and time.time() - stamp.stat().st_mtime < max_age:
                return
            self._setup()
            self.run("apt-get", ["-q", "update"])
            stamp.touch()

    def source_versions(self, package: str) -> list[str]:
        """Every version of a source package the lists know, as apt-cache showsrc lists them."""
        out = self.run("apt-cache", ["showsrc", "--only-source", package])
        return re.findall(r"^Version: (\S+)", out, re.M)

    def download_source(self, package: str, version: str, dest: Path) -> None:
        """Download a source package's files (.dsc, tarballs) into ``dest`` without unpacking."""
        dest.mkdir(parents=True, exist_ok=True)
        self.run("apt-get", ["-q", "source", "--download-only", f"{package}={version}"], cwd=dest)

    def candidate(self, package: str) -> str:
        """The version ``apt-get download`` would fetch for ``package`` (e.g. ``busybox-static:arm64``)."""
        out = self.run("apt-cache", ["policy", package])
        m = re.search(r"Candidate: (\S+)", out)
        if not m or m.group(1) == "(none)":
            raise HarnessError("apt", f"package {package} not found in {self.suite}")
        return m.group(1)

    def download(self, packages: list[str], dest: Path) -> list[Path]:
        """Download binary packages into ``dest``; returns the .deb files."""
        dest.mkdir(parents=True, exist_ok=True)
        before = set(dest.glob("*.deb"))
        self.run("apt-get", ["-q", "download", *packages], cwd=dest)
        return sorted(set(dest.glob("*.deb")) - before) or sorted(dest.glob("*.deb"))


# --- versions (deb-version(7)) ------------------------------------------------------------------


def debian_candidates(versions: list[str], pattern: str) -> list[str]:
    """The Debian versions whose upstream part matches ``pattern`` (fnmatch: 5.10.*), highest
    first, each once: the order to try them in (an index may list versions the pool no longer
    serves)."""
    matching = {v for v in versions if fnmatch.fnmatchcase(upstream_version(v), pattern)}
    return sorted(matching, key=functools.cmp_to_key(compare_debian_versions), reverse=True)


def pick_debian_version(versions: list[str], pattern: str) -> str | None:
    """The highest Debian version whose upstream part matches ``pattern``."""
    return next(iter(debian_candidates(versions, pattern)), None)


def upstream_version(version: str) -> str:
    """``1:5.10.262-1~deb11u1`` -> ``5.10.262``: drop the epoch and the Debian revision."""
    return version.split(":", 1)[-1].rsplit("-", 1)[0]


def compare_debian_versions(a: str, b: str) -> int:
    """dpkg's ordering (deb-version(7)): epoch, then upstream, then revision, '~' before all."""
    ea, _, ra = a.partition(":") if ":" in a else ("0", "", a)
    eb, _, rb = b.partition(":") if ":" in b else ("0", "", b)
    if int(ea) != int(eb):
        return -1 if int(ea) < int(eb) else 1
    ua, _, va = ra.rpartition("-") if "-" in ra else (ra, "", "")
    ub, _, vb = rb.rpartition("-") if "-" in rb else (rb, "", "")
    return _verrevcmp(ua, ub) or _verrevcmp(va, vb)


def _verrevcmp(a: str, b: str) -> int:
    def order(c: str) -> int:
        return -1 if c == "~" else ord(c) if c.isalpha() else ord(c) + 256

    # Alternating non-digit and digit runs; the trailing empty match is dropped.
    runs_a, runs_b = re.findall(r"(\D*)(\d*)", a)[:-1], re.findall(r"(\D*)(\d*)", b)[:-1]
    for (ta, na), (tb, nb) in itertools.zip_longest(runs_a, runs_b, fillvalue=("", "")):
        ka, kb = [order(c) for c in ta] + [0], [order(c) for c in tb] + [0]
        if ka != kb:
            return -1 if ka < kb else 1
        if int(na or 0) != int(nb or 0):
            return -1 if int(na or 0) < int(nb or 0) else 1
    return 0
