"""Counters over a time window, one key each (any deployment: one script, one slot)."""

from __future__ import annotations

from typing import Any

from bot.store.scripts import Script

COUNT_IN_WINDOW = Script(
    "count_in_window",
    """
-- KEYS[1] counter   ARGV[1] window (s)
-- Adds one; the window starts at the first count. Returns the count.
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
""",
)


async def count_in_window(redis: Any, key: str, window_seconds: int) -> int:
    """One more in the window of `key`; the window starts at the first count."""
    return int(await COUNT_IN_WINDOW.run(redis, [key], [window_seconds]))
