"""Outbound SMS against a failing Twilio: back-off, no duplicates, permanent errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from bot.jobs.messages import confirmation_id, send_confirmation
from bot.jobs.queue import RetryLater
from bot.privacy import DEV_PII_KEY, pseudonym
from bot.settings import Settings
from bot.store import cases, deliveries
from bot.store.deliveries import Purpose
from tests import phone_state_support as stored
from tests.fake_twilio import Fail, FakeTwilio, Late, fake_twilio
from tests.integration.admin_support import return_request
from tests.integration.worker_support import (
    FAST_RETRY,
    ON_EVERY_DEPLOYMENT,
    Clock,
    Harness,
    actions,
    harness,
    worker_env,
)

PHONE = "+22376000201"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with fake_twilio() as server:
        yield server


@pytest.fixture
async def worker(settings: Settings, fake: FakeTwilio) -> AsyncIterator[Harness]:
    async with harness(worker_env(settings, fake), clock=Clock()) as found:
        yield found


Outcomes = list[tuple[str, dict[str, object]]]


async def confirmation_outcomes(redis: Redis, reference: str) -> Outcomes:
    return [(action, detail) for action, detail in await actions(redis, reference)
            if detail.get("delivery") == confirmation_id(reference)]


@ON_EVERY_DEPLOYMENT
async def test_two_500s_then_success_send_one_message_in_three_spaced_attempts(
        redis: Redis, fake: FakeTwilio, worker: Harness) -> None:
    fake.plan(Fail(500), Fail(503))
    reference = await cases.create_case(redis, new_case=return_request(phone=PHONE))
    await worker.cycle()
    assert len(fake.creates) == 3
    assert len(fake.sent_to(PHONE)) == 1
    outcomes = await confirmation_outcomes(redis, reference)
    assert [(action, detail["attempt"]) for action, detail in outcomes] == [
        ("sms_attempt_failed", 1), ("sms_attempt_failed", 2), ("sms_sent", 3)]
    waits = [detail["retry_in_seconds"] for _, detail in outcomes[:2]]
    assert waits == [FAST_RETRY.base_seconds, FAST_RETRY.base_seconds * 2]  # exponential
    assert [detail["error"] for _, detail in outcomes[:2]] == [
        "twilio answered 500", "twilio answered 503"]


@ON_EVERY_DEPLOYMENT
async def test_a_timeout_after_twilio_took_the_message_does_not_send_it_twice(
        redis: Redis, fake: FakeTwilio, worker: Harness) -> None:
    fake.plan(Late(seconds=3))
    reference = await cases.create_case(redis, new_case=return_request(phone=PHONE))
    await worker.cycle()
    assert len(fake.creates) == 1 and len(fake.sent_to(PHONE)) == 1
    assert fake.lists  # the second try looked before sending again
    outcomes = await confirmation_outcomes(redis, reference)
    assert [action for action, _ in outcomes] == ["sms_attempt_failed", "sms_sent"]
    assert outcomes[1][1]["sid"] == fake.sent_to(PHONE)[0]["sid"]
    assert outcomes[1][1]["found_after_uncertain_attempt"] is True


async def test_opted_out_at_twilio_is_not_retried_and_marks_the_phone(
        redis: Redis, fake: FakeTwilio, worker: Harness) -> None:
    fake.plan(Fail(400, code=21610))
    reference = await cases.create_case(redis, new_case=return_request(phone=PHONE))
    await worker.cycle()
    assert len(fake.creates) == 1 and fake.messages == []
    (outcome,) = await confirmation_outcomes(redis, reference)
    assert outcome[0] == "sms_failed"
    assert outcome[1]["code"] == 21610 and outcome[1]["opted_out"] is True
    profile = await stored.profile(redis, pseudonym(PHONE, DEV_PII_KEY))
    assert profile is not None and profile.opted_out
    assert await stored.seconds_left(redis, pseudonym(PHONE, DEV_PII_KEY), "p") is None


async def test_an_invalid_number_fails_once_and_leaves_the_profile_alone(
        redis: Redis, fake: FakeTwilio, worker: Harness) -> None:
    fake.plan(Fail(400, code=21211))
    reference = await cases.create_case(redis, new_case=return_request(phone=PHONE))
    await worker.cycle()
    assert len(fake.creates) == 1
    (outcome,) = await confirmation_outcomes(redis, reference)
    assert outcome[0] == "sms_failed" and outcome[1]["code"] == 21211
    assert await stored.profile(redis, pseudonym(PHONE, DEV_PII_KEY)) is None
    record = await deliveries.state_of(redis, confirmation_id(reference))
    assert record["state"] == "failed"


async def test_the_worker_gives_up_after_its_last_try(
        redis: Redis, fake: FakeTwilio, worker: Harness) -> None:
    fake.plan(*[Fail(500)] * FAST_RETRY.max_tries)
    reference = await cases.create_case(redis, new_case=return_request(phone=PHONE))
    await worker.cycle()
    assert len(fake.creates) == FAST_RETRY.max_tries and fake.messages == []
    outcomes = await confirmation_outcomes(redis, reference)
    assert outcomes[-1][0] == "sms_failed" and outcomes[-1][1]["gave_up"] is True
    await worker.cycle()
    assert len(fake.creates) == FAST_RETRY.max_tries  # failed for good: not tried again


async def test_a_too_many_requests_answer_is_retried(
        redis: Redis, fake: FakeTwilio, worker: Harness) -> None:
    fake.plan(Fail(429, code=20429))
    await cases.create_case(redis, new_case=return_request(phone=PHONE))
    await worker.cycle()
    assert len(fake.creates) == 2 and len(fake.sent_to(PHONE)) == 1
    assert fake.lists == []  # a 429 proves nothing went: no need to look


async def test_a_claim_left_by_a_run_that_died_before_calling_twilio_sends_once(
        redis: Redis, fake: FakeTwilio, worker: Harness) -> None:
    reference = await cases.create_case(redis, new_case=return_request(phone=PHONE))
    job = confirmation_id(reference)
    # The first run claimed the delivery and died before its request left.
    await deliveries.claim(redis, delivery_id=job, reference=reference,
                           purpose=Purpose.CONFIRMATION, job_id=job, job_try=1,
                           now=worker.deps.clock(), lease_seconds=60)
    again = {**worker.ctx, "job_id": job, "job_try": 2}
    assert await send_confirmation(again, reference) == "sent"
    assert len(fake.lists) == 1 and len(fake.creates) == 1  # looked, found none, sent
    assert await send_confirmation({**again, "job_try": 3}, reference) == "sent"
    assert len(fake.creates) == 1


async def test_a_delivery_another_job_holds_waits_until_its_lease_is_over(
        redis: Redis, fake: FakeTwilio, settings: Settings) -> None:
    clock = Clock()
    async with harness(worker_env(settings, fake), clock=clock) as worker:
        reference = await cases.create_case(redis, new_case=return_request(phone=PHONE))
        job = confirmation_id(reference)
        await deliveries.claim(redis, delivery_id=job, reference=reference,
                               purpose=Purpose.CONFIRMATION, job_id="another-job", job_try=1,
                               now=clock(), lease_seconds=worker.deps.claim_lease_seconds)
        ctx = {**worker.ctx, "job_id": job, "job_try": 1}
        with pytest.raises(RetryLater):
            await send_confirmation(ctx, reference)
        assert fake.requests == []
        clock.advance(seconds=worker.deps.claim_lease_seconds)
        assert await send_confirmation({**ctx, "job_try": 2}, reference) == "sent"
        assert len(fake.creates) == 1


async def test_a_messaging_service_sends_in_place_of_a_number(
        redis: Redis, fake: FakeTwilio, settings: Settings) -> None:
    env = worker_env(settings, fake, twilio_from_number=None,
                     twilio_messaging_service_sid="MG" + "1" * 32)
    async with harness(env, clock=Clock()) as worker:
        await cases.create_case(redis, new_case=return_request(phone=PHONE))
        await worker.cycle()
    (request,) = fake.creates
    assert request.form["MessagingServiceSid"] == "MG" + "1" * 32
    assert "From" not in request.form and request.form["To"] == PHONE
