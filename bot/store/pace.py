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
    wait_us: int
    """Booked: until the first slot; else: until the lane may ask again."""
    slots_us: tuple[int, ...] = ()
    """The slots booked, microseconds since the epoch (Redis's clock), one interval apart."""

    @property
    def booked(self) -> bool:
        return bool(self.slots_us)

    @property
    def slot_us(self) -> int | None:
        return self.slots_us[0] if self.slots_us else None


async def book(redis: Any, *, interval_us: int, ahead_us: int, wanted: int = 1) -> Booking:
    """Book up to `wanted` slots within `ahead_us` of now (at least one, or none)."""
    found = await BOOK.run(redis, [keys.outbound_pace()], [interval_us, ahead_us, wanted])
    return Booking(int(found[1]), tuple(int(slot) for slot in found[2:]))
