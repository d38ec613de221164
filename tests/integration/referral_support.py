"""Helpers of the referral tests: settings aimed at the fake Primero, a worker, a referral."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from pydantic import SecretStr
from redis.asyncio import Redis

from bot.cases import referrals
from bot.cases.referrals import Referral, ReferralConsent, ReferralSystem
from bot.jobs.deps import RetryPolicy
from bot.jobs.primero_api import PrimeroClient
from bot.jobs.worker import open_deps
from bot.settings import Settings
from bot.store.outbox import ensure_group
from tests.fake_primero import PASSWORD, USER, FakePrimero
from tests.integration.worker_support import BLOCK_MS, FAST_RETRY, Clock, Harness

ORG = "Ligne d'aide Mali"
OPERATOR = "operator:ana"
# Short enough that a planned late answer is a timeout, long enough for a loaded machine.
CLIENT_TIMEOUT = httpx.Timeout(1.0)


def primero_settings(settings: Settings, fake: FakePrimero, **changes: Any) -> Settings:
    """`settings` with Primero configured at the fake (as the PRIMERO_ settings would)."""
    return settings.model_copy(update={
        "primero_url": fake.url, "primero_user": USER,
        "primero_password": SecretStr(PASSWORD), "org_name": ORG, **changes})


@asynccontextmanager
async def referral_worker(settings: Settings, *, clock: Clock | None = None,
                          retry: RetryPolicy = FAST_RETRY,
                          primero: PrimeroClient | None = None) -> AsyncIterator[Harness]:
    """A worker's dependencies on `settings`, its Primero client with a short timeout."""
    client = primero
    if client is None and settings.primero_configured:
        client = PrimeroClient.from_settings(settings, timeout=CLIENT_TIMEOUT)
    opened = open_deps(settings, clock=clock or Clock(), retry=retry, block_ms=BLOCK_MS,
                       primero=client)
    await ensure_group(opened.deps.redis)
    try:
        yield Harness(opened)
    finally:
        await opened.close()


async def run_referral_jobs(settings: Settings, *, tries: int | None = None) -> None:
    """A worker on `settings` takes the referral jobs queued and runs them to the end
    (`tries`: a job's tries before it gives up, 20 ms apart at first)."""
    retry = FAST_RETRY if tries is None else RetryPolicy(base_seconds=0.02, max_tries=tries)
    async with referral_worker(settings, retry=retry) as worker:
        await worker.pump()
        await worker.run_jobs()


async def refer(redis: Redis, reference: str, *, note: str | None = None,
                consent: ReferralConsent = ReferralConsent.GIVEN_BY_MIGRANT,
                configured: bool = True) -> Referral:
    return await referrals.refer_case(
        redis, reference=reference, actor=OPERATOR, now=Clock().now,
        system=ReferralSystem.PRIMERO, consent=consent, note=note, configured=configured)


async def the_referral(redis: Redis, reference: str) -> Referral:
    (found,) = await referrals.referrals_of(redis, reference)
    return found
