"""The retention purge: personal fields of cases that ended long enough ago, nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from redis.asyncio import Redis

from bot.cases import service as case_service
from bot.cases.model import CaseStatus
from bot.conversation import Conversation, InboundMessage
from bot.settings import Settings
from bot.store import cases, keys
from bot.store.cases import read_case
from bot.types import Channel
from tests.factories import default_flow
from tests.integration.admin_support import T0, return_request
from tests.integration.worker_support import Clock, Harness, actions, harness

RETENTION_DAYS = 30
PHONE = "+22376000501"


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
async def worker(settings: Settings, clock: Clock) -> AsyncIterator[Harness]:
    env = settings.model_copy(update={"retention_days": RETENTION_DAYS})
    async with harness(env, clock=clock) as found:
        yield found


async def ended(redis: Redis, status: CaseStatus, *, days_ago: float, now: float,
                phone: str = PHONE) -> str:
    """A case that reached `status` `days_ago` days before day `now` (days after T0)."""
    reference = await cases.create_case(redis, new_case=return_request(phone=phone))
    await case_service.update_case(redis, reference=reference, actor="operator:ana",
                                   now=T0 + timedelta(days=now - days_ago), status=status)
    return reference


async def test_only_cases_that_ended_before_the_retention_period_are_erased(
        redis: Redis, worker: Harness, clock: Clock) -> None:
    day = 100.0
    old_closed = await ended(redis, CaseStatus.CLOSED, days_ago=RETENTION_DAYS + 0.01, now=day)
    old_withdrawn = await ended(redis, CaseStatus.WITHDRAWN, days_ago=RETENTION_DAYS + 5,
                                now=day)
    young_closed = await ended(redis, CaseStatus.CLOSED, days_ago=RETENTION_DAYS - 0.01,
                               now=day)
    # Open for long, never ended: kept whatever its age.
    still_open = await cases.create_case(redis, new_case=return_request(phone=PHONE))
    await case_service.update_case(redis, reference=still_open, actor="operator:ana",
                                   now=T0, status=CaseStatus.CONTACTED)
    await case_service.add_note(redis, reference=young_closed, actor="operator:ana",
                                now=T0 + timedelta(days=day - 1), text="call her back")
    clock.now = T0 + timedelta(days=day)

    assert await worker.purge() == 2
    for reference in (old_closed, old_withdrawn):
        case = await read_case(redis, reference)
        assert case.phone is None and case.answers == {} and case.erased_at == clock.now
        assert case.status in (CaseStatus.CLOSED, CaseStatus.WITHDRAWN)  # the record stays
        assert ("erased", {}) in await actions(redis, reference)
    for reference in (young_closed, still_open):
        case = await read_case(redis, reference)
        assert case.phone == PHONE and case.answers["name"] == "Awa Traoré"
        assert case.erased_at is None
    assert await redis.llen(keys.case_notes(young_closed)) == 1

    assert await worker.purge() == 0  # nothing more today
    clock.advance(days=0.02)
    assert await worker.purge() == 1  # the young one's time has come
    assert (await read_case(redis, young_closed)).phone is None
    assert await redis.llen(keys.case_notes(young_closed)) == 0


async def test_a_withdrawn_case_closed_later_counts_from_its_withdrawal(
        redis: Redis, worker: Harness, clock: Clock) -> None:
    reference = await ended(redis, CaseStatus.WITHDRAWN, days_ago=RETENTION_DAYS + 1, now=60)
    await case_service.update_case(redis, reference=reference, actor="operator:ana",
                                   now=T0 + timedelta(days=59), status=CaseStatus.CLOSED)
    clock.now = T0 + timedelta(days=60)
    assert await worker.purge() == 1


async def test_a_withdrawal_by_the_migrant_starts_the_clock_too(
        redis: Redis, settings: Settings, worker: Harness, clock: Clock) -> None:
    reference = await cases.create_case(redis, new_case=return_request(phone=PHONE))
    withdrawn_at = T0 + timedelta(days=1)
    conversation = Conversation(redis=redis, compiled=default_flow(), settings=settings,
                                clock=lambda: withdrawn_at)
    await conversation.set_language(PHONE, "en")
    await conversation.handle(InboundMessage(Channel.SMS, PHONE, "MENU"))
    for typed in ("3", reference, "1", "1"):  # follow → own request → withdraw → confirm
        await conversation.handle(InboundMessage(Channel.SMS, PHONE, typed))
    assert (await read_case(redis, reference)).status == CaseStatus.WITHDRAWN
    clock.now = withdrawn_at + timedelta(days=RETENTION_DAYS - 1)
    assert await worker.purge() == 0
    clock.now = withdrawn_at + timedelta(days=RETENTION_DAYS)
    assert await worker.purge() == 1


async def test_cases_erased_meanwhile_are_left_as_they_are(
        redis: Redis, worker: Harness, clock: Clock) -> None:
    reference = await ended(redis, CaseStatus.CLOSED, days_ago=RETENTION_DAYS + 1, now=50)
    await case_service.erase_case(redis, reference=reference, actor="operator:sup", now=T0)
    clock.now = T0 + timedelta(days=50)
    assert await worker.purge() == 0
    assert [a for a, _ in await actions(redis, reference)].count("erased") == 1
    assert await redis.zcard(keys.cases_ended(keys.shard_of(reference))) == 0
