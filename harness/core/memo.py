"""Values made once, on first use, with their failures remembered."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from harness.core.errors import HarnessError, os_failure


class Memo:
    """Values made on first use, by key; a failure is kept and raised again on every later use.
    ``on_failure`` is told of each failure once, when it happens."""

    def __init__(self) -> None:
        self._store: dict[Hashable, Any] = {}

    def get(self, key: Hashable, make: Callable[[], Any], stage: str,
            on_failure: Callable[[HarnessError], None] | None = None) -> Any:
        if key not in self._store:
            try:
                try:
                    self._store[key] = make()
                except OSError as e:  # a full disk while compiling a helper, say
                    raise os_failure(stage, e) from e
            except HarnessError as e:
                self._store[key] = e
                if on_failure is not None:
                    on_failure(e)
        value = self._store[key]
        if isinstance(value, HarnessError):
            raise value
        return value

    def items(self) -> list[tuple[Hashable, Any]]:
        return list(self._store.items())

    def peek(self, key: Hashable) -> Any:
        """What is stored for ``key`` (a value or its failure), else None; nothing is made."""
        return self._store.get(key)

    def forget(self, key: Hashable) -> None:
        self._store.pop(key, None)
