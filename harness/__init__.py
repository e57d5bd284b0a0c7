"""kharness: build and boot test harness for Linux kernel patch series."""

from pathlib import Path

__version__ = "0.1.0"

# The repository root holds configs/, guest-scripts/ and kernel-patches/ next to the package.
REPO_ROOT = Path(__file__).resolve().parent.parent
