"""The worker's SMS wait for their slot in the outbound pace (`HELPLINE_OUTBOUND_MPS`)."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from bot.jobs.pace import Lane, PacedSms
from bot.settings import Settings
from bot.store import cases, keys
from tests.fake_twilio import fake_twilio
from tests.integration.admin_support import return_request
from tests.integration.worker_support import Clock, harness, worker_env

MPS = 4.0


async def test_confirmations_go_out_at_the_pace_and_in_the_priority_lane(
        redis: Redis, settings: Settings) -> None:
    with fake_twilio() as fake:
        async with harness(worker_env(settings, fake, outbound_mps=MPS), clock=Clock()) as work:
            assert isinstance(work.deps.sms, PacedSms)
            assert work.deps.sms.lane is Lane.PRIORITY
            for number in range(5):
                await cases.create_case(redis, new_case=return_request(
                    phone=f"+2237600090{number}"))
            started = time.monotonic()
            await work.cycle()
            elapsed = time.monotonic() - started
    assert len(fake.creates) == 5
    # Five messages at four a second: the last one waited four intervals at least.
    assert elapsed >= 4 / MPS * 0.95
    assert await redis.exists(keys.outbound_pace()) == 1
