"""The outbound pace: every worker together sends at most `HELPLINE_OUTBOUND_MPS`
messages a second, and a message to one migrant goes ahead of any bulk send.

One budget for the whole deployment, kept in Redis (`bot.store.pace`: one key
under the `{pace}` tag, so one Cluster slot; booked by a script, so workers on
any number of hosts share it). It is a virtual clock, the time of the next free
slot (GCRA, as rate limiters in front of telecom APIs use): booking a message
takes that slot and moves the clock one interval on, so the budget holds over
any window, with no burst beyond the rate.

Lanes differ only in how far ahead they may book:

- `Lane.PRIORITY` (a confirmation, an operator's message, an on-call notice, a
  follow-up check-in: one person waits for it) books the next free slot however
  far ahead it is (up to `PRIORITY_AHEAD_SECONDS`), and waits for it;
- `Lane.BULK` (a broadcast) books only while the next free slot is a few
  intervals away (`bulk_ahead`); when more is booked, it waits and asks again.

A priority message therefore never queues behind a broadcast: at most the few
bulk slots already booked go before it. Use:

    pace = Pace(redis, mps=settings.outbound_mps)
    await pace.wait(Lane.PRIORITY)     # then send one message
    sms = PacedSms(gateway, pace)      # an SmsGateway whose `send` waits first
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.jobs.deps import SmsGateway
from bot.store import pace as pace_store
from bot.store.pace import Booking

MICROS = 1_000_000
PRIORITY_AHEAD_SECONDS = 120.0
"""A priority message books a slot at most this far ahead (else it asks again later)."""
BULK_AHEAD_SLOTS = 2
BULK_AHEAD_MIN_SECONDS = 0.05
BULK_BOOKED_AT_ONCE = 8
"""Bulk slots a process books in one call (when that many are within reach)."""
"""A bulk send books at most this many slots (and this long) ahead: enough to keep the
rate when several senders poll, little enough that a priority message waits for few."""


class Lane(StrEnum):
    PRIORITY = "priority"
    BULK = "bulk"


class Pace:
    """The deployment's outbound budget, `mps` messages a second (`HELPLINE_OUTBOUND_MPS`)."""

    def __init__(self, redis: Any, *, mps: float) -> None:
        if mps <= 0:
            raise ValueError("the outbound pace needs a rate above 0")
        self.redis = redis
        self.mps = mps
        self.interval_us = max(1, round(MICROS / mps))
        self._bulk_turn = asyncio.Lock()
        """Bulk senders of this process book one at a time (first come, first served): the
        others wait here, not in a polling loop of their own."""
        self._bulk_slots: deque[float] = deque()
        """Bulk slots this process booked and no sender took yet (`time.monotonic()`)."""
        self._ahead_us = {
            Lane.PRIORITY: round(PRIORITY_AHEAD_SECONDS * MICROS),
            Lane.BULK: max(BULK_AHEAD_SLOTS * self.interval_us,
                           round(BULK_AHEAD_MIN_SECONDS * MICROS)),
        }
        self._bulk_at_once = max(1, min(BULK_BOOKED_AT_ONCE,
                                        self._ahead_us[Lane.BULK] // self.interval_us))

    def ahead_seconds(self, lane: Lane) -> float:
        """How far ahead of now `lane` may book."""
        return self._ahead_us[lane] / MICROS

    async def book(self, lane: Lane, wanted: int = 1) -> Booking:
        """One try (no waiting): up to `wanted` slots booked, or how long to wait before
        asking again."""
        return await pace_store.book(self.redis, interval_us=self.interval_us,
                                     ahead_us=self._ahead_us[lane], wanted=wanted)

    async def wait(self, lane: Lane) -> float:
        """Book a slot in `lane` and sleep until it: the caller may then send one message.
        Returns the seconds waited.

        Bulk senders of a process book one at a time, but each sleeps to its slot on its
        own: while one sleeps, the next books the slot after, so a sender that wakes late
        (a busy machine) delays no other booking and the rate holds."""
        started = time.monotonic()
        if lane is Lane.BULK:
            async with self._bulk_turn:
                # A slot long past was the budget of its own moment: not to be spent now.
                late = time.monotonic() - self.interval_us / MICROS
                while self._bulk_slots and self._bulk_slots[0] < late:
                    self._bulk_slots.popleft()
                while not self._bulk_slots:
                    await self._book_bulk()
                slot = self._bulk_slots.popleft()
        else:
            slot = await self._book_one(lane)
        until_slot = slot - time.monotonic()
        if until_slot > 0:
            await asyncio.sleep(until_slot)
        return time.monotonic() - started

    async def _book_bulk(self) -> None:
        """Book the bulk slots within reach (one call for several senders), or wait until
        some are."""
        booking = await self.book(Lane.BULK, wanted=self._bulk_at_once)
        now = time.monotonic()
        if not booking.booked:
            await asyncio.sleep(booking.wait_us / MICROS)
            return
        first = now + booking.wait_us / MICROS
        self._bulk_slots.extend(first + index * self.interval_us / MICROS
                                for index in range(len(booking.slots_us)))

    async def _book_one(self, lane: Lane) -> float:
        """A slot of `lane`, as a `time.monotonic()` time."""
        while True:
            booking = await self.book(lane)
            if booking.booked:
                return time.monotonic() + booking.wait_us / MICROS
            await asyncio.sleep(booking.wait_us / MICROS)


class PacedSms:
    """An `SmsGateway` whose every `send` first waits for a slot in `lane`."""

    def __init__(self, gateway: SmsGateway, pace: Pace, lane: Lane = Lane.PRIORITY) -> None:
        self.gateway = gateway
        self.pace = pace
        self.lane = lane

    async def send(self, *, to: str, body: str, status_callback: str | None) -> str:
        await self.pace.wait(self.lane)
        return await self.gateway.send(to=to, body=body, status_callback=status_callback)

    async def find_sent(self, *, to: str, body: str, since: datetime) -> list[str]:
        return await self.gateway.find_sent(to=to, body=body, since=since)

    async def aclose(self) -> None:
        await self.gateway.aclose()
