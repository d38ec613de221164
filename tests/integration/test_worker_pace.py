"""The worker's SMS wait for their slot in the outbound pace (`HELPLINE_OUTBOUND_MPS`)."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
from redis.asyncio import Redis

from bot.jobs.pace import MICROS, PRIORITY_AHEAD_SECONDS, Lane, PacedSms
from bot.settings import Settings
from bot.store import cases, keys
from bot.store import pace as pace_store
from bot.store.pace import Booking
from tests.fake_twilio import fake_twilio
from tests.integration.admin_support import return_request
from tests.integration.worker_support import Clock, harness, worker_env

MPS = 4.0


async def test_confirmations_go_out_at_the_pace_and_in_the_priority_lane(
        redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    booked: list[int] = []  # the slots the pace gave (Redis's clock, microseconds)
    ahead: set[int] = set()  # how far ahead each booking's lane could book
    left: list[int] = []  # when each message was handed to Twilio (Redis's clock)
    book = pace_store.book

    async def booking_noted(*args: Any, **kwargs: Any) -> Booking:
        booking = await book(*args, **kwargs)
        booked.extend(booking.slots_us)
        ahead.add(kwargs["ahead_us"])
        return booking

    monkeypatch.setattr(pace_store, "book", booking_noted)
    with fake_twilio() as fake:
        async with harness(worker_env(settings, fake, outbound_mps=MPS), clock=Clock()) as work:
            assert isinstance(work.deps.sms, PacedSms)
            assert work.deps.sms.lane is Lane.PRIORITY
            send = work.deps.sms.gateway.send

            async def send_noted(**message: Any) -> str:
                seconds, micros = await redis.time()
                left.append(seconds * MICROS + micros)
                return await send(**message)

            monkeypatch.setattr(work.deps.sms.gateway, "send", send_noted)
            for number in range(5):
                await cases.create_case(redis, new_case=return_request(
                    phone=f"+2237600090{number}"))
            await work.cycle()
    assert len(fake.creates) == 5
    # What the pace decided, not how long the run took: one slot a message, booked in the
    # priority lane, no two closer than 1/4 s on Redis's clock, each message handed to
    # Twilio no earlier than its slot (same clock), and the pace's virtual clock (its next
    # free slot) one interval past the last.
    interval_us = round(MICROS / MPS)
    # The jobs run side by side: their bookings may come back out of the script's order.
    slots = sorted(booked)
    assert len(slots) == 5
    assert ahead == {round(PRIORITY_AHEAD_SECONDS * MICROS)}
    assert all(later - earlier >= interval_us for earlier, later in pairwise(slots)), slots
    assert all(sent >= slot for sent, slot in zip(sorted(left), slots, strict=True))
    assert int(await redis.get(keys.outbound_pace())) == slots[-1] + interval_us
