"""The outbound budget in Redis: one key, booked by a script (`lua/pace.lua`).

No rule here: the lanes and how long each may book ahead are `bot.jobs.pace`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.store import keys
from bot.store.scripts import Script

BOOK = Script.load("pace")


@dataclass(frozen=True)
class Booking:
    booked: bool
    wait_us: int
    """Booked: until the slot; else: until the lane may ask again."""
    slot_us: int | None = None
    """The booked slot, microseconds since the epoch (Redis's clock)."""


async def book(redis: Any, *, interval_us: int, ahead_us: int) -> Booking:
    booked, wait, slot = await BOOK.run(redis, [keys.outbound_pace()], [interval_us, ahead_us])
    return Booking(bool(int(booked)), int(wait), int(slot) if slot else None)
