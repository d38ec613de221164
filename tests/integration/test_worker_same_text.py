"""Two deliveries of the same text to one phone, one of them uncertain (a 5xx, a timeout):
the look-up after an uncertain attempt must not take the other's message (or call) for its
own. Each reaches Twilio once and each delivery records its own SID (docs/worker.md,
"Never the same SMS twice"). The worker, the fake Twilio, one server, Cluster, Sentinel."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.cases import service as case_service
from bot.cases.model import CaseStatus
from bot.jobs import followups as followup_jobs
from bot.jobs.followups import followup_id
from bot.jobs.messages import message_id
from bot.store import cases, deliveries
from tests.fake_twilio import Created, Fail, FakeTwilio, Late, fake_twilio
from tests.integration.admin_support import T0, return_request
from tests.integration.webhooks_support import PII_KEY, PUBLIC_URL, gateway_settings
from tests.integration.worker_support import (
    ON_EVERY_DEPLOYMENT,
    Clock,
    Harness,
    actions,
    harness,
    worker_env,
)
from tests.redis_server import RedisServer

PHONE = "+22376000701"
TEXT = "OK"
RETURNED = (CaseStatus.CONTACTED, CaseStatus.IN_PROGRESS, CaseStatus.RETURN_ARRANGED,
            CaseStatus.RETURNED)


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with fake_twilio() as server:
        yield server


@pytest.fixture
async def worker(redis_server: RedisServer, tmp_path: Path,
                 fake: FakeTwilio) -> AsyncIterator[Harness]:
    env = worker_env(gateway_settings(redis_server.url, tmp_path), fake, public_url=PUBLIC_URL)
    async with harness(env, clock=Clock(T0)) as found:
        yield found


async def sms_case(redis: Redis) -> str:
    new_case = replace(return_request(phone=PHONE), channel="sms")
    return await cases.create_case(redis, new_case=new_case, pii_key=PII_KEY.encode())


async def message(redis: Redis, worker: Harness, reference: str) -> str:
    """An operator's message `TEXT` to the case's migrant, queued; its delivery id."""
    async def never(_: str) -> bool:
        return False

    entry = await case_service.record_message(redis, reference=reference, actor="operator:ana",
                                              now=T0, text=TEXT, opted_out=never)
    await worker.queue.enqueue("send_case_message", reference, entry.id)
    return message_id(reference, entry.id)


async def sids(redis: Redis, delivery_ids: list[str]) -> list[str]:
    records = [await deliveries.state_of(redis, one) for one in delivery_ids]
    assert [record["state"] for record in records] == ["sent"] * len(delivery_ids)
    return [record["sid"] for record in records]


@ON_EVERY_DEPLOYMENT
async def test_a_second_same_text_message_after_a_500_is_sent_not_taken_for_the_first(
        redis: Redis, fake: FakeTwilio, worker: Harness) -> None:
    reference = await sms_case(redis)
    first = await message(redis, worker, reference)
    await worker.run_jobs()
    fake.plan(Fail(500))  # the second's first attempt: Twilio may have taken it, or not
    second = await message(redis, worker, reference)
    await worker.run_jobs()
    assert fake.lists  # its retry looked before sending again
    sent = fake.sent_to(PHONE)
    assert [m["body"] for m in sent] == [TEXT, TEXT]
    assert await sids(redis, [first, second]) == [m["sid"] for m in sent]
    outcome = [d for a, d in await actions(redis, reference)
               if a == "sms_sent" and d["delivery"] == second]
    assert [(d["attempt"], "found_after_uncertain_attempt" in d) for d in outcome] == [
        (2, False)]


@ON_EVERY_DEPLOYMENT
async def test_a_same_text_message_twilio_took_before_timing_out_is_found_not_the_first(
        redis: Redis, fake: FakeTwilio, worker: Harness) -> None:
    reference = await sms_case(redis)
    first = await message(redis, worker, reference)
    await worker.run_jobs()
    fake.plan(Late(seconds=3))  # created, but answered past the client's timeout
    second = await message(redis, worker, reference)
    await worker.run_jobs()
    sent = fake.sent_to(PHONE)
    assert [m["body"] for m in sent] == [TEXT, TEXT]  # not sent a third time
    assert await sids(redis, [first, second]) == [m["sid"] for m in sent]


@ON_EVERY_DEPLOYMENT
async def test_two_same_text_messages_both_uncertain_at_once_end_with_one_sid_each(
        redis: Redis, fake: FakeTwilio, worker: Harness) -> None:
    """Both time out after Twilio took them; their retries run together (one batch of the
    queue) and each sees both messages: each must take one, never the same."""
    reference = await sms_case(redis)
    fake.plan(Late(seconds=3), Late(seconds=3))
    both = [await message(redis, worker, reference), await message(redis, worker, reference)]
    await worker.run_jobs()
    sent = fake.sent_to(PHONE)
    assert [m["body"] for m in sent] == [TEXT, TEXT]
    found = await sids(redis, both)
    assert sorted(found) == sorted(m["sid"] for m in sent)  # one each, none shared


@ON_EVERY_DEPLOYMENT
async def test_a_second_check_in_call_to_one_phone_after_a_500_is_placed(
        redis: Redis, fake: FakeTwilio, worker: Harness) -> None:
    """Two returnees sharing a phone, each with a voice check-in due at once: the call
    placed for one is not the other's."""
    references = []
    for _ in range(2):
        new_case = replace(return_request(phone=PHONE, followup_consent="yes"),
                           channel="voice")
        reference = await cases.create_case(redis, new_case=new_case,
                                            pii_key=PII_KEY.encode())
        for status in RETURNED:
            await case_service.update_case(redis, reference=reference, actor="operator:ana",
                                           now=T0, status=status)
        references.append(reference)
    clock = worker.deps.clock
    assert isinstance(clock, Clock)
    clock.now = T0 + timedelta(days=30)
    fake.plan(Created(), Fail(500))
    await followup_jobs.tick(worker.ctx)
    await worker.run_jobs()
    assert fake.lists  # the retry looked before placing the call again
    placed = fake.called(PHONE)
    assert len(placed) == 2
    found = await sids(redis, [followup_id(reference, 1) for reference in references])
    assert sorted(found) == sorted(c["sid"] for c in placed)
