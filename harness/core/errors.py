"""The exception types that decide a run's exit status.

A ``HarnessError`` is never a verdict: the CLI turns it into exit status 2 and the report into an
ERROR row, with the log that explains it.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

# The stages an error can come from, in the order a run meets them: an error names one of these.
STAGES = ("config", "apt", "source", "tree", "series", "kconfig", "build", "guest-image", "programs",
          "accel", "boot", "ssh", "guest", "scenario", "report", "clean", "doctor")


class HarnessError(Exception):
    """A stage failed; ``log`` names the file that explains why.

    Subclasses exist only where code decides by the kind of failure (retry or give up, which
    error explains a failure best) rather than by the message text.
    """

    def __init__(self, stage: str, message: str, log: Path | None = None, excerpt: str = ""):
        self.stage = stage
        self.message = message
        self.log = log
        self.excerpt = excerpt
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.stage}: {self.message}"
        if self.log is not None:
            text += f" (see {self.log})"
        return text


class ConfigError(HarnessError):
    """Bad input: a config file, field or value that cannot be used."""

    def __init__(self, file: Path | str, field: str, message: str):
        self.file = str(file)
        self.field = field
        where = f"{file}: {field}" if field else f"{file}"
        super().__init__("config", f"{where}: {message}")

    def __str__(self) -> str:
        return self.message


class HostKeyMismatch(HarnessError):
    """The guest offered a host key other than its image's: never retried."""

    def __init__(self, message: str):
        super().__init__("ssh", message)


class ConnectionLost(HarnessError):
    """The SSH connection dropped or could not be made (the guest may still be fine)."""

    def __init__(self, message: str, log: Path | None = None, excerpt: str = ""):
        super().__init__("ssh", message, log, excerpt)


class CommandTimeout(HarnessError):
    """A command in the guest did not finish in time (the connection may or may not be alive)."""

    def __init__(self, message: str):
        super().__init__("ssh", message)


class PortTaken(HarnessError):
    """Another process bound the forwarded port between our pick and QEMU's bind."""

    def __init__(self, message: str, log: Path | None = None, excerpt: str = ""):
        super().__init__("boot", message, log, excerpt)


class KernelSplat(HarnessError):
    """The kernel printed a panic, Oops, BUG, WARNING, KASAN or lockdep report: the kernel's fault."""


def os_failure(stage: str, e: OSError) -> HarnessError:
    """An OSError (a full disk, a permission) as an ERROR of the stage it happened in."""
    if isinstance(e, shutil.Error) and e.args and isinstance(e.args[0], list) and e.args[0]:
        _, dst, why = e.args[0][0]   # copytree collects (src, dst, why): the first one says it
        strerror = re.match(r"\[Errno \d+\] ([^:']+)", str(why))
        return HarnessError(stage, f"{strerror.group(1) if strerror else why}: {dst}")
    where = f": {e.filename}" if e.filename else ""
    return HarnessError(stage, f"{e.strerror or e}{where}")
