"""Confirmation SMS after a USSD request, and operators' messages, through the fake Twilio."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.cases import service as case_service
from bot.conversation import Conversation, InboundMessage
from bot.jobs.messages import confirmation_id
from bot.settings import Settings
from bot.store import cases, deliveries, keys, outbox
from bot.store.outbox import GROUP
from bot.types import Channel
from tests.factories import default_flow
from tests.fake_twilio import FROM_NUMBER, FakeTwilio, fake_twilio
from tests.integration.admin_support import T0 as CREATED_AT
from tests.integration.admin_support import return_request
from tests.integration.webhooks_support import RETURN_REQUEST as GATEWAY_RETURN_REQUEST
from tests.integration.webhooks_support import gateway_settings, reference_in, running_app
from tests.integration.worker_support import (
    ON_EVERY_DEPLOYMENT,
    T0,
    Clock,
    Harness,
    actions,
    harness,
    worker_env,
)
from tests.redis_server import RedisServer

PHONE = "+22376000101"
REFERENCE = re.compile(r"(\d{4})-(\d{4})")
NAME, NATIONALITY, COUNTRY, CITY = "Awa Diarra", "Mali", "Niger", "Agadez"
SAFE, UNSAFE = "1", "2"


def return_request_inputs(sms_safe: str) -> list[str]:
    """Main menu 2 → consent → answers (trafficking: yes) → SMS safe? → confirm."""
    return ["2", "1", NAME, NATIONALITY, COUNTRY, CITY, "2", "2", "2", "1", "2", "1",
            sms_safe, "1", "1"]


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with fake_twilio() as server:
        yield server


@pytest.fixture
async def worker(settings: Settings, fake: FakeTwilio) -> AsyncIterator[Harness]:
    async with harness(worker_env(settings, fake), clock=Clock()) as found:
        yield found


async def request_over(redis: Redis, settings: Settings, *, channel: Channel, language: str,
                       sms_safe: str = SAFE, phone: str = PHONE) -> str:
    conversation = Conversation(redis=redis, compiled=default_flow(), settings=settings)
    await conversation.set_language(phone, language)
    reply = await conversation.handle(InboundMessage(channel, phone, "", restart=True))
    for typed in return_request_inputs(sms_safe):
        reply = await conversation.handle(InboundMessage(channel, phone, typed))
    found = REFERENCE.search(reply.text)
    assert found, reply.text
    return found.group(1) + found.group(2)


WORDS = {"fr": "Référence", "en": "Reference", "bm": "Nimòrò"}  # bm: GSM-7 spelling on SMS


@ON_EVERY_DEPLOYMENT
@pytest.mark.parametrize("language", ["fr", "en", "bm"])
async def test_a_ussd_request_gets_exactly_one_sms_with_its_reference(
        redis: Redis, settings: Settings, fake: FakeTwilio, worker: Harness,
        language: str) -> None:
    reference = await request_over(redis, settings, channel=Channel.USSD, language=language)
    await worker.cycle()
    await worker.cycle()  # a second cycle finds nothing more to do
    sent = fake.sent_to(PHONE)
    assert len(sent) == 1 and len(fake.creates) == 1
    body = sent[0]["body"]
    assert f"{reference[:4]}-{reference[4:]}" in body and WORDS[language] in body
    assert sent[0]["from"] == FROM_NUMBER
    assert sent[0]["status_callback"] == "https://helpline.example/webhooks/twilio/status"
    trail = await actions(redis, reference)
    assert ("sms_sent", {"delivery": confirmation_id(reference), "purpose": "confirmation",
                         "attempt": 1, "sid": sent[0]["sid"]}) in trail


async def test_no_sms_when_the_migrant_said_sms_is_not_safe(
        redis: Redis, settings: Settings, fake: FakeTwilio, worker: Harness) -> None:
    reference = await request_over(redis, settings, channel=Channel.USSD, language="fr",
                                   sms_safe=UNSAFE)
    await worker.cycle()
    assert fake.creates == []
    assert ("sms_skipped", {"delivery": confirmation_id(reference), "purpose": "confirmation",
                            "reason": "sms_not_safe"}) in await actions(redis, reference)


async def test_no_sms_when_the_phone_opted_out(
        redis: Redis, settings: Settings, fake: FakeTwilio, worker: Harness) -> None:
    reference = await request_over(redis, settings, channel=Channel.USSD, language="en")
    conversation = Conversation(redis=redis, compiled=default_flow(), settings=settings)
    await conversation.handle(InboundMessage(Channel.SMS, PHONE, "STOP"))
    await worker.cycle()
    assert fake.creates == []
    skipped = [detail for action, detail in await actions(redis, reference)
               if action == "sms_skipped"]
    assert skipped == [{"delivery": confirmation_id(reference), "purpose": "confirmation",
                        "reason": "opted_out"}]


async def test_a_request_made_by_sms_gets_no_confirmation(
        redis: Redis, settings: Settings, fake: FakeTwilio, worker: Harness) -> None:
    reference = await request_over(redis, settings, channel=Channel.SMS, language="fr")
    await worker.cycle()
    assert fake.creates == []
    assert not [a for a, _ in await actions(redis, reference) if a.startswith("sms_")]


async def test_the_outbox_event_outlives_a_worker_that_died_before_acknowledging(
        redis: Redis, fake: FakeTwilio, worker: Harness) -> None:
    reference = await cases.create_case(redis, new_case=return_request(phone=PHONE))
    # A worker reads the event and dies before queuing its jobs.
    first = await outbox.read_events(redis, consumer="dead-worker")
    assert [event.reference for event in first.events] == [reference]
    assert await outbox.read_events(redis, consumer="other", claim_idle_ms=60_000) \
        == outbox.Batch([], [])
    # Another worker takes it over once it has been idle long enough.
    taken = await outbox.read_events(redis, consumer="other", claim_idle_ms=0)
    assert [event.reference for event in taken.events] == [reference]
    await outbox.acknowledge(redis, taken.entry_ids)
    stream = keys.cases_outbox(keys.shard_of(reference))
    assert await redis.xlen(stream) == 0
    assert (await redis.xinfo_groups(stream))[0]["pending"] == 0
    await worker.cycle()
    assert fake.creates == []  # acknowledged by hand above: nothing is queued twice


async def test_every_new_case_leaves_one_event_in_the_outbox(redis: Redis) -> None:
    await outbox.ensure_group(redis)
    new_case = return_request(phone=PHONE, medical="yes")
    reference = await cases.create_case(redis, new_case=new_case, idempotency_key="draft-1")
    again = await cases.create_case(redis, new_case=new_case, idempotency_key="draft-1")
    assert again == reference
    batch = await outbox.read_events(redis, consumer="c")
    assert [(e.reference, e.kind, e.priority, e.channel, e.language, e.created_at)
            for e in batch.events] == [(reference, "return_request", "urgent", "ussd", "fr",
                                        CREATED_AT)]
    # One group serves every worker: a second reader gets nothing the first one got.
    assert (await outbox.read_events(redis, consumer="d")).events == []
    stream = keys.cases_outbox(keys.shard_of(reference))
    assert (await redis.xinfo_groups(stream))[0]["name"] == GROUP


async def test_an_operator_message_goes_once_and_not_after_an_opt_out(
        redis: Redis, settings: Settings, fake: FakeTwilio, worker: Harness) -> None:
    reference = await cases.create_case(redis, new_case=return_request(phone=PHONE))
    await worker.pump()  # the confirmation of this USSD case
    await worker.run_jobs()
    fake.requests.clear()
    fake.messages.clear()

    async def never(_: str) -> bool:
        return False

    entry = await case_service.record_message(redis, reference=reference, actor="operator:ana",
                                              now=T0, text="Nous vous appelons demain.",
                                              opted_out=never)
    await worker.queue.enqueue("send_case_message", reference, entry.id)
    await worker.queue.enqueue("send_case_message", reference, entry.id)  # sent twice
    await worker.run_jobs()
    assert [m["body"] for m in fake.sent_to(PHONE)] == ["Nous vous appelons demain."]

    later = await case_service.record_message(redis, reference=reference, actor="operator:ana",
                                              now=T0, text="Second message", opted_out=never)
    conversation = Conversation(redis=redis, compiled=default_flow(), settings=settings)
    await conversation.handle(InboundMessage(Channel.SMS, PHONE, "STOP"))
    await worker.queue.enqueue("send_case_message", reference, later.id)
    await worker.run_jobs()
    assert len(fake.sent_to(PHONE)) == 1
    record = await deliveries.state_of(redis, f"message:{reference}:{later.id}")
    assert record["state"] == "skipped"


async def test_through_the_africastalking_webhook_one_sms_follows_the_last_screen(
        redis: Redis, redis_server: RedisServer, fake: FakeTwilio, tmp_path: Path) -> None:
    app_settings = gateway_settings(redis_server.url, tmp_path)
    async with running_app(app_settings) as gateway, \
            harness(worker_env(app_settings, fake), clock=Clock()) as worker:
        await gateway.dial("ATUid_9")
        for typed in ["1", *GATEWAY_RETURN_REQUEST]:  # French, then the request
            last = await gateway.press("ATUid_9", typed)
        assert last.startswith("END ")
        reference = reference_in(last)
        assert fake.creates == []  # the screen comes first; the SMS is the worker's
        await worker.cycle()
    (sms,) = fake.sent_to(gateway.phone)
    assert f"Référence: {reference[:4]}-{reference[4:]}" in sms["body"]


async def test_a_lost_consumer_group_is_made_again_and_idle_readers_forgotten(
        redis: Redis) -> None:
    await outbox.ensure_group(redis)
    reference = await cases.create_case(redis, new_case=return_request(phone=PHONE))
    stream = keys.cases_outbox(keys.shard_of(reference))
    await redis.xgroup_destroy(stream, GROUP)  # as after a restart without data
    batch = await outbox.read_events(redis, consumer="w1")
    assert [event.reference for event in batch.events] == [reference]
    await outbox.acknowledge(redis, batch.entry_ids)
    await cases.create_case(redis, new_case=return_request(phone=PHONE))
    await outbox.acknowledge(redis, (await outbox.read_events(redis, consumer="w2")).entry_ids)
    assert await outbox.forget_idle_consumers(redis, idle_ms=60_000) == 0  # both just seen
    assert await outbox.forget_idle_consumers(redis, idle_ms=-1) == 2
    assert await redis.xinfo_consumers(stream, GROUP) == []


async def test_a_request_made_by_a_call_gets_its_spoken_reference_by_sms(
        redis: Redis, settings: Settings, fake: FakeTwilio, worker: Harness) -> None:
    conversation = Conversation(redis=redis, compiled=default_flow(), settings=settings)
    await conversation.set_language(PHONE, "fr")
    await conversation.handle(InboundMessage(Channel.VOICE, PHONE, "", restart=True))
    for typed in return_request_inputs(SAFE):
        reply = await conversation.handle(InboundMessage(Channel.VOICE, PHONE, typed))
    spoken = re.search(r"(\d) (\d) (\d) (\d), (\d) (\d) (\d) (\d)", reply.text)
    assert spoken, reply.text
    reference = "".join(spoken.groups())
    await worker.cycle()
    sent = fake.sent_to(PHONE)
    assert len(sent) == 1 and f"{reference[:4]}-{reference[4:]}" in sent[0]["body"]
