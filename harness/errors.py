"""The exception types that decide a run's exit status.

A ``HarnessError`` is never a verdict: the CLI turns it into exit status 2 and the report into an
ERROR row, with the log that explains it.
"""

from __future__ import annotations

from pathlib import Path


class HarnessError(Exception):
    """A stage failed; ``log`` names the file that explains why."""

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
