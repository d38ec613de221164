"""On-call notices: urgent cases, escalations, SLA reminders until someone takes the case."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from redis.asyncio import Redis

from bot.cases import service as case_service
from bot.cases.model import CaseKind, CaseStatus, NewCase
from bot.jobs.oncall import NOTIFY_ESCALATION
from bot.settings import Settings
from bot.store import cases
from tests.fake_twilio import Fail, FakeTwilio, FakeWebhook, fake_twilio, fake_webhook
from tests.integration.admin_support import T0 as CREATED_AT
from tests.integration.admin_support import return_request
from tests.integration.worker_support import Clock, Harness, actions, harness, worker_env

MIGRANT = "+22376000401"
NAME = "Awa Traoré"
ONCALL = ["+22370111111", "+22370222222"]
SLA_MINUTES = 15


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with fake_twilio() as server:
        yield server


@pytest.fixture
def hook() -> Iterator[FakeWebhook]:
    with fake_webhook() as server:
        yield server


@pytest.fixture
def clock() -> Clock:
    return Clock(CREATED_AT)


@pytest.fixture
async def worker(settings: Settings, fake: FakeTwilio, hook: FakeWebhook,
                 clock: Clock) -> AsyncIterator[Harness]:
    env = worker_env(settings, fake, oncall_numbers=" 70 11 11 11, +22370222222",
                     escalation_webhook=f"{hook.url}/oncall", ack_sla_minutes=SLA_MINUTES)
    async with harness(env, clock=clock) as found:
        yield found


def by_sms(kind: CaseKind = CaseKind.EMERGENCY, **answers: str) -> NewCase:
    """A case made over SMS (so no confirmation SMS muddles the counts)."""
    return replace(return_request(phone=MIGRANT, kind=kind, **answers), channel="sms")


def oncall_sms(fake: FakeTwilio) -> list[tuple[str, str]]:
    return [(str(m["to"]), str(m["body"])) for m in fake.messages if m["to"] in ONCALL]


async def test_an_urgent_case_reaches_every_oncall_phone_and_the_webhook_in_one_cycle(
        redis: Redis, fake: FakeTwilio, hook: FakeWebhook, worker: Harness) -> None:
    reference = await cases.create_case(redis, new_case=by_sms())
    await worker.cycle()
    link = f"https://helpline.example/admin/#/case/{reference}"
    shown = f"{reference[:4]}-{reference[4:]}"
    assert sorted(to for to, _ in oncall_sms(fake)) == ONCALL
    assert all(shown in body and link in body for _, body in oncall_sms(fake))
    assert hook.posts == [{"event": "urgent", "notice": "urgent", "reference": reference,
                           "kind": "emergency", "priority": "urgent", "escalation_level": 0,
                           "link": link}]
    (request,) = [r for r in hook.requests if r.method == "POST"]
    assert request.headers["idempotency-key"] == f"oncall:{reference}:urgent:webhook"
    # No personal data leaves in a notice.
    sent = json.dumps(hook.posts) + json.dumps(oncall_sms(fake))
    assert MIGRANT not in sent and NAME not in sent and "Agadez" not in sent
    trail = [action for action, _ in await actions(redis, reference)]
    assert trail.count("sms_sent") == 2 and trail.count("webhook_sent") == 1
    await worker.cycle()
    assert len(hook.posts) == 1 and len(oncall_sms(fake)) == 2


async def test_a_normal_case_brings_no_notice(
        redis: Redis, fake: FakeTwilio, hook: FakeWebhook, worker: Harness) -> None:
    await cases.create_case(redis, new_case=by_sms(CaseKind.CALLBACK))
    await worker.cycle()
    assert oncall_sms(fake) == [] and hook.posts == []


async def test_an_unacknowledged_urgent_case_is_renotified_once_per_sla_period(
        redis: Redis, fake: FakeTwilio, hook: FakeWebhook, worker: Harness,
        clock: Clock) -> None:
    reference = await cases.create_case(redis, new_case=by_sms())
    other = await cases.create_case(redis, new_case=by_sms(CaseKind.RETURN_REQUEST,
                                                           medical="yes"))

    async def notices_after(minutes: int) -> list[str]:
        clock.now = CREATED_AT + timedelta(minutes=minutes)
        await worker.cycle()
        return [str(post["notice"]) for post in hook.posts if post["reference"] == reference]

    assert await notices_after(0) == ["urgent"]
    assert await notices_after(SLA_MINUTES - 1) == ["urgent"]
    assert await notices_after(SLA_MINUTES + 1) == ["urgent", "sla-1"]
    assert await notices_after(SLA_MINUTES + 5) == ["urgent", "sla-1"]  # once per period
    assert await notices_after(2 * SLA_MINUTES) == ["urgent", "sla-1", "sla-2"]
    await case_service.update_case(redis, reference=reference, actor="operator:ana",
                                   now=clock.now, assignee="ana")
    assert await notices_after(3 * SLA_MINUTES + 1) == ["urgent", "sla-1", "sla-2"]
    assert await notices_after(5 * SLA_MINUTES) == ["urgent", "sla-1", "sla-2"]
    # The other urgent case, left alone, got its reminders; moving it past `new` stops them.
    reminders = [p["notice"] for p in hook.posts if p["reference"] == other]
    assert reminders == ["urgent", "sla-1", "sla-2", "sla-3", "sla-5"]
    await case_service.update_case(redis, reference=other, actor="operator:ana",
                                   now=clock.now, status=CaseStatus.CONTACTED)
    await notices_after(7 * SLA_MINUTES)
    assert [p["notice"] for p in hook.posts if p["reference"] == other] == reminders
    sms_reminders = [body for _, body in oncall_sms(fake) if "not taken" in body]
    assert len(sms_reminders) == 2 * (2 + 4)  # two phones × (2 + 4 reminders)


async def test_an_escalation_notifies_oncall_once_per_level(
        redis: Redis, fake: FakeTwilio, hook: FakeWebhook, worker: Harness,
        clock: Clock) -> None:
    reference = await cases.create_case(redis, new_case=by_sms(CaseKind.CALLBACK))
    await case_service.escalate(redis, reference=reference, actor="operator:ana",
                                now=clock.now, reason="threatened", level=1)
    for _ in range(2):  # the API queued it; a re-delivery must not notify twice
        await worker.queue.enqueue(NOTIFY_ESCALATION, reference, 1)
    await worker.cycle()
    await case_service.escalate(redis, reference=reference, actor="operator:ana",
                                now=clock.now, reason="worse", level=2)
    await worker.queue.enqueue(NOTIFY_ESCALATION, reference, 2)
    await worker.cycle()
    assert [(p["notice"], p["escalation_level"]) for p in hook.posts] == [
        ("escalated-1", 1), ("escalated-2", 2)]
    bodies = [body for _, body in oncall_sms(fake)]
    assert len(bodies) == 4 and sum("level 2" in body for body in bodies) == 2
    assert "threatened" not in json.dumps(hook.posts) + "".join(bodies)


async def test_a_failing_webhook_is_retried_with_the_same_idempotency_key(
        redis: Redis, fake: FakeTwilio, hook: FakeWebhook, worker: Harness) -> None:
    hook.plan(Fail(502))
    reference = await cases.create_case(redis, new_case=by_sms())
    await worker.cycle()
    posts = [r for r in hook.requests if r.method == "POST"]
    assert len(posts) == 2
    assert {r.headers["idempotency-key"] for r in posts} == {f"oncall:{reference}:urgent:webhook"}
    trail = [action for action, _ in await actions(redis, reference)]
    assert trail.count("webhook_attempt_failed") == 1 and trail.count("webhook_sent") == 1
    assert len(oncall_sms(fake)) == 2  # the SMS that went are not sent again
