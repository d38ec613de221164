"""The outbound pace: one budget for every worker, on one server, Sentinel and a Cluster.

Two `Pace` objects on two clients stand for two workers. What is checked is the
budget itself, in Redis's own clock (the slot each booking got), not wall-clock
times of this test process, which a loaded machine would blur.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from redis.asyncio import Redis

from bot.jobs.pace import MICROS, Lane, Pace
from bot.store import keys
from bot.store.connection import close_client
from tests.redis_server import RedisClusterSet

ON_EVERY_DEPLOYMENT = pytest.mark.parametrize(
    "deployment", ["single", "cluster", "sentinel"], indirect=True)
MPS = 100.0


async def _book_all(pace: Pace, lane: Lane, count: int) -> list[int]:
    """Book `count` slots in `lane`, as a sender would (waiting when told to ask later)."""
    slots: list[int] = []
    while len(slots) < count:
        booking = await pace.book(lane)
        if booking.booked:
            assert booking.slot_us is not None
            slots.append(booking.slot_us)
        else:
            await asyncio.sleep(booking.wait_us / MICROS)
    return slots


@ON_EVERY_DEPLOYMENT
async def test_two_workers_share_one_budget_every_slot_one_interval_apart(
        redis: Redis, redis_server: Any, deployment: str) -> None:
    other = redis_server.async_client()
    try:
        first, second = Pace(redis, mps=MPS), Pace(other, mps=MPS)
        booked = await asyncio.gather(
            *(_book_all(pace, lane, 15) for pace in (first, second)
              for lane in (Lane.BULK, Lane.PRIORITY)))
    finally:
        await close_client(other)
    slots = sorted(slot for found in booked for slot in found)
    assert len(set(slots)) == len(slots) == 60
    gaps = [later - earlier for earlier, later in itertools.pairwise(slots)]
    assert min(gaps) >= first.interval_us  # never two messages within 1/MPS of a second
    # The 60 slots follow each other: together the workers send at the rate, not below.
    assert slots[-1] - slots[0] < 60 * first.interval_us + 0.5 * MICROS
    if deployment == "cluster":
        assert isinstance(redis_server, RedisClusterSet)
        assert await redis.exists(keys.outbound_pace()) == 1


@ON_EVERY_DEPLOYMENT
async def test_a_message_to_one_migrant_goes_ahead_of_a_busy_broadcast(
        redis: Redis, deployment: str) -> None:
    pace = Pace(redis, mps=20)
    stop = asyncio.Event()

    async def broadcast() -> None:
        while not stop.is_set():
            await pace.wait(Lane.BULK)

    senders = [asyncio.create_task(broadcast()) for _ in range(4)]
    try:
        await asyncio.sleep(0.3)  # the bulk senders keep the budget booked ahead
        bulk = await pace.book(Lane.BULK)
        priority = await pace.book(Lane.PRIORITY)
    finally:
        stop.set()
        await asyncio.gather(*senders)
    # The priority message got a slot at once, behind only the few bulk slots booked
    # ahead; a bulk sender asking at the same moment was told to wait.
    assert priority.booked
    assert priority.wait_us <= (pace.ahead_seconds(Lane.BULK) * MICROS + pace.interval_us)
    assert not bulk.booked or bulk.wait_us <= pace.ahead_seconds(Lane.BULK) * MICROS


async def test_priority_books_far_ahead_and_bulk_waits_behind_it(redis: Redis) -> None:
    pace = Pace(redis, mps=10)
    waits = [(await pace.book(Lane.PRIORITY)).wait_us for _ in range(10)]
    # Ten confirmations at once: each one interval after the one before, all booked.
    assert waits[0] <= pace.interval_us
    assert waits[-1] >= 8 * pace.interval_us
    refused = await pace.book(Lane.BULK)
    assert not refused.booked
    assert refused.wait_us >= 8 * pace.interval_us - pace.ahead_seconds(Lane.BULK) * MICROS


async def test_an_idle_budget_leaves_no_key_for_long(redis: Redis) -> None:
    pace = Pace(redis, mps=10)
    await pace.wait(Lane.PRIORITY)
    ttl = await redis.pttl(keys.outbound_pace())
    assert 0 < ttl <= 61_000


def test_a_pace_needs_a_positive_rate() -> None:
    with pytest.raises(ValueError, match="rate above 0"):
        Pace(object(), mps=0)


async def test_bulk_books_several_slots_at_once_and_never_spends_a_stale_one(
        redis: Redis) -> None:
    pace = Pace(redis, mps=100)  # a slot every 10 ms; bulk reaches 50 ms ahead
    several = await pace.book(Lane.BULK, wanted=8)
    assert len(several.slots_us) == 6  # now, +10 ms, ... +50 ms
    assert all(b - a == pace.interval_us
               for a, b in itertools.pairwise(several.slots_us))
    await redis.delete(keys.outbound_pace())
    await pace.wait(Lane.BULK)  # books a few: one spent, the others kept for later senders
    booked = int(await redis.get(keys.outbound_pace()))
    await asyncio.sleep(0.3)  # the kept ones are long past now
    await pace.wait(Lane.BULK)
    assert int(await redis.get(keys.outbound_pace())) > booked + 0.25 * MICROS
