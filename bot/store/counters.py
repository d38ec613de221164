"""Counters over a time window, one key each (any deployment: one script, one slot)."""

from __future__ import annotations

from typing import Any

from bot.store.scripts import Script

COUNT_IN_WINDOW = Script.load("count_in_window")


async def count_in_window(redis: Any, key: str, window_seconds: int) -> int:
    """One more in the window of `key`; the window starts at the first count."""
    return int(await COUNT_IN_WINDOW.run(redis, [key], [window_seconds]))
