"""Helpers of the worker tests: settings aimed at the fake Twilio, a clock, one worker cycle."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from bot.jobs import oncall, outbox, retention
from bot.jobs.broker import broker_for_url
from bot.jobs.deps import DEPS, QUEUE, Deps, RetryPolicy
from bot.jobs.queue import JobQueue
from bot.jobs.twilio_rest import TwilioSms
from bot.jobs.worker import Opened, open_deps, run_burst
from bot.settings import Settings
from bot.store import audit
from bot.store.outbox import ensure_group
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio

# The worker's guarantees on each deployment the product runs on (real servers, see conftest).
ON_EVERY_DEPLOYMENT = pytest.mark.parametrize(
    "deployment", ["single", "cluster", "sentinel"], indirect=True)
T0 = datetime.fromisoformat("2026-03-02T08:00:00+00:00")
FAST_RETRY = RetryPolicy(base_seconds=0.05, cap_seconds=1.0, max_tries=5)
POLL = 0.01
BLOCK_MS = 10
# Short enough that a planned late answer is a timeout, long enough for a loaded machine.
CLIENT_TIMEOUT = 1.0


class Clock:
    """An injected clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def worker_env(settings: Settings, fake: FakeTwilio, **changes: Any) -> Settings:
    """`settings` with Twilio pointed at the fake (as `TWILIO_API_BASE_URL` would)."""
    return settings.model_copy(update={
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": SecretStr(AUTH_TOKEN),
        "twilio_from_number": FROM_NUMBER,
        "twilio_api_base_url": fake.url,
        "public_url": "https://helpline.example",
        **changes,
    })


@dataclass
class Harness:
    """A worker's dependencies, its job queue, and ways to run one cycle of it."""

    opened: Opened

    @property
    def deps(self) -> Deps:
        return self.opened.deps

    @property
    def queue(self) -> JobQueue:
        return self.opened.queue

    @property
    def ctx(self) -> dict[str, Any]:
        return {DEPS: self.deps, QUEUE: self.queue, "job_id": "test", "job_try": 1}

    async def pump(self) -> int:
        return await outbox.pump_outbox(self.ctx)

    async def run_jobs(self) -> None:
        await run_burst(self.opened, poll_delay=POLL)

    async def cycle(self) -> None:
        """What one worker cycle does: outbox → jobs, SLA check, then every queued job."""
        await self.pump()
        await oncall.check_ack_sla(self.ctx)
        await self.run_jobs()

    async def purge(self) -> int:
        return await retention.purge_expired(self.ctx)


@asynccontextmanager
async def harness(settings: Settings, *, clock: Clock,
                  retry: RetryPolicy = FAST_RETRY) -> AsyncIterator[Harness]:
    opened = open_deps(settings, clock=clock, retry=retry, block_ms=BLOCK_MS,
                       sms=TwilioSms.from_settings(settings, timeout=CLIENT_TIMEOUT))
    await ensure_group(opened.deps.redis)
    try:
        yield Harness(opened)
    finally:
        await opened.close()


async def actions(redis: Redis, reference: str) -> list[tuple[str, dict[str, object]]]:
    """The case's audit trail as (action, detail) pairs, oldest first."""
    return [(event.action, event.detail) for event in await audit.case_events(redis, reference)]


PATIENCE_SECONDS = 60.0
"""How long a test waits for a worker running on its own schedule (in-process)."""


async def never(_: str) -> bool:
    """An `opted_out` check that says no (the phone never opted out)."""
    return False


async def eventually(condition: Callable[[], bool], what: str) -> None:
    """Wait until `condition()` holds (the worker runs on its own schedule)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PATIENCE_SECONDS
    while not condition():
        assert loop.time() < deadline, f"still waiting for {what}"
        await asyncio.sleep(0.05)


@asynccontextmanager
async def queue_on(url: str, consumer: str, redelivery_seconds: float) -> AsyncIterator[JobQueue]:
    """A job queue on `url` read as `consumer`, whose jobs idle `redelivery_seconds` in another
    consumer's hands are taken over."""
    queue = JobQueue(broker_for_url(url, consumer=consumer, block_ms=10,
                                    redelivery_seconds=redelivery_seconds))
    await queue.broker.declare_group()
    try:
        yield queue
    finally:
        await queue.close()
