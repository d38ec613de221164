"""The one bounded cache of the code base: what a process remembers between messages.

Two generations of plain dicts: an entry goes into the newer one; once it holds
half the size, the older generation is dropped and the newer one takes its
place. So the last `size // 2` to `size` entries stored are kept, a hit costs one
or two dict look-ups and a drop none (no per-entry bookkeeping, no scan).
"""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Bounded(Generic[K, V]):
    """At most `size` entries, the most recently stored kept. Values are never None."""

    __slots__ = ("_half", "_newer", "_older")

    def __init__(self, size: int) -> None:
        if size < 2:
            raise ValueError("a bounded cache holds at least 2 entries")
        self._half = size // 2
        self._newer: dict[K, V] = {}
        self._older: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        value = self._newer.get(key)
        if value is None:
            value = self._older.get(key)
            if value is not None:  # still in use: into the newer generation
                self.put(key, value)
        return value

    def put(self, key: K, value: V) -> None:
        self._newer[key] = value
        if len(self._newer) >= self._half:
            self._older, self._newer = self._newer, {}

    def pop(self, key: K) -> None:
        self._newer.pop(key, None)
        self._older.pop(key, None)

    def __len__(self) -> int:
        return len(self._newer) + len(self._older)
