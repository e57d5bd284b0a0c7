"""Progress for long work: a live line on a terminal, plain timestamped lines elsewhere (CI)."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class Progress:
    """Reports phases of work. ``verbosity``: 0 quiet (summary only), 1 normal, 2 verbose."""

    def __init__(self, stream: TextIO | None = None, verbosity: int = 1, live: bool | None = None):
        self.stream = stream or sys.stderr
        self.verbosity = verbosity
        self.live = self.stream.isatty() if live is None else live
        self._last_plain = 0.0
        self._lock = threading.Lock()
        self._open_line = False

    def _write(self, text: str, final: bool) -> None:
        with self._lock:
            if self.live:
                self.stream.write("\r\033[K" + text + ("\n" if final else ""))
                self._open_line = not final
            else:
                self.stream.write(f"[{time.strftime('%H:%M:%S')}] {text}\n")
            self.stream.flush()

    def info(self, text: str) -> None:
        """A line that stays (a phase started or ended)."""
        if self.verbosity >= 1:
            self._write(text, final=True)

    def update(self, text: str, min_interval: float = 10.0) -> None:
        """A transient status: redrawn live on a TTY, at most every ``min_interval`` s otherwise."""
        if self.verbosity < 1:
            return
        if self.live:
            self._write(text, final=False)
        elif time.monotonic() - self._last_plain >= min_interval:
            self._last_plain = time.monotonic()
            self._write(text, final=True)

    def verbose(self, text: str) -> None:
        """Streamed detail (build output, console) shown with -v."""
        if self.verbosity >= 2:
            self._write(text.rstrip("\n"), final=True)

    def download(self, name: str, done: int, total: int | None) -> None:
        size = human_size(done) + (f" / {human_size(total)}" if total else "")
        pct = f" {100 * done / total:.0f}%" if total else ""
        self.update(f"download {name}: {size}{pct}")


class Quiet(Progress):
    def __init__(self) -> None:
        super().__init__(verbosity=0, live=False)
