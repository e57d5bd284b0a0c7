"""Series no one here wrote, for the tree's-own-tests proof (README, "Any series"): two patches
of Debian's linux 7.2.8-1 source package (its debian/patches: Debian's own, upstream style),
fetched from the machine's Debian mirror into the cache, each written as a directory of
patches. Never part of this repository. Prints the runs that judge them.

    .venv/bin/python bench/foreign_series.py [--out DIR]
"""

from __future__ import annotations

import argparse
import re
import tarfile
from pathlib import Path

from harness.core.cache import cache_root
from harness.core.errors import HarnessError
from harness.core.http import download
from harness.core.progress import Progress
from harness.sources.debian import PrivateApt

VERSION = "7.2.8-1"
SERIES = {   # a directory name -> the patch of debian/patches it holds
    "fanotify-taint": "debian/fanotify-taint-on-use-of-fanotify_access_permissions.patch",   # fs/notify
    "x86-memtest-warn": "features/x86/x86-memtest-WARN-if-bad-RAM-found.patch",                  # mm
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(cache_root() / "foreign-series"), help="where the series go")
    out = Path(ap.parse_args().out)
    progress = Progress()
    cache = cache_root()
    apt = PrivateApt(cache, "sid", sources=True)
    apt.update()
    uris = apt.run("apt-get", ["-q", "source", "--print-uris", f"linux={VERSION}"])
    m = re.search(rf"'(\S+/linux_{re.escape(VERSION)}\.debian\.tar\.xz)' \S+ \d+ SHA256:([0-9a-f]{{64}})", uris)
    if m is None:
        raise HarnessError("source", f"apt-get source --print-uris linux={VERSION} names no debian.tar.xz")
    tarball = download(m.group(1), m.group(2), cache, progress)
    with tarfile.open(tarball) as tar:
        for name, member in SERIES.items():
            f = tar.extractfile(f"debian/patches/{member}")
            if f is None:
                raise HarnessError("source", f"{tarball.name} has no debian/patches/{member}")
            directory = out / name
            directory.mkdir(parents=True, exist_ok=True)
            (directory / f"0001-{Path(member).name}").write_bytes(f.read())
            print(f"kharness run --series {directory} --kernel linux-7.2 --arch x86_64,arm64")


if __name__ == "__main__":
    main()
