"""Twilio status callbacks: signed ones land in the case's audit trail, unsigned ones do not."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from redis.asyncio import Redis
from twilio.request_validator import RequestValidator

from bot.admin import operators
from bot.admin.operators import Role
from bot.privacy import DEV_PII_KEY, pseudonym
from bot.settings import Settings
from bot.store import audit, cases, phone_state
from tests.fake_twilio import AUTH_TOKEN, FakeTwilio, fake_twilio
from tests.integration.admin_support import (
    API,
    RecordedJobs,
    client_for,
    return_request,
    running_app,
)
from tests.integration.worker_support import T0, Clock, harness, worker_env

PHONE = "+22376000301"
STATUS_PATH = "/webhooks/twilio/status"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with fake_twilio() as server:
        yield server


@pytest.fixture
def env(settings: Settings, fake: FakeTwilio) -> Settings:
    return worker_env(settings, fake)


async def confirmed_case(redis: Redis, env: Settings, fake: FakeTwilio) -> tuple[str, str]:
    """A USSD case whose confirmation SMS went out: (reference, MessageSid)."""
    reference = await cases.create_case(redis, new_case=return_request(phone=PHONE))
    async with harness(env, clock=Clock()) as worker:
        await worker.cycle()
    (message,) = fake.sent_to(PHONE)
    return reference, str(message["sid"])


@pytest.fixture
async def app_client(env: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(env, RecordedJobs()) as app, client_for(app) as client:
        yield client


def signed(env: Settings, params: dict[str, str]) -> dict[str, str]:
    assert env.public_url is not None
    url = env.public_url + STATUS_PATH
    return {"X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(url, params)}


async def trail(client: httpx.AsyncClient, redis: Redis, reference: str) -> list[dict[str, object]]:
    name = f"op-{len(await operators.list_operators(redis))}"
    token = await operators.add_operator(redis, name=name, role=Role.OPERATOR, now=T0)
    response = await client.get(f"{API}/cases/{reference}/events",
                                headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    return [event for event in response.json() if event["action"] == "sms_status"]


async def test_a_signed_delivered_callback_shows_in_the_audit_trail(
        redis: Redis, env: Settings, fake: FakeTwilio, app_client: httpx.AsyncClient) -> None:
    reference, sid = await confirmed_case(redis, env, fake)
    params = {"MessageSid": sid, "MessageStatus": "delivered", "AccountSid": "AC1"}
    for _ in range(2):  # Twilio may call back twice with the same status
        response = await app_client.post(STATUS_PATH, data=params, headers=signed(env, params))
        assert response.status_code == 204
    events = await trail(app_client, redis, reference)
    assert [(e["actor"], e["detail"]) for e in events] == [
        ("twilio", {"delivery": f"confirmation:{reference}", "sid": sid, "status": "delivered",
                    "error_code": None}),
    ]


async def test_unsigned_or_badly_signed_callbacks_are_refused_and_change_nothing(
        redis: Redis, env: Settings, fake: FakeTwilio, app_client: httpx.AsyncClient) -> None:
    reference, sid = await confirmed_case(redis, env, fake)
    params = {"MessageSid": sid, "MessageStatus": "delivered"}
    before = len(await audit.case_events(redis, reference))
    unsigned = await app_client.post(STATUS_PATH, data=params)
    forged = await app_client.post(STATUS_PATH, data=params,
                                   headers={"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"})
    other = {**params, "MessageStatus": "failed"}  # signed for other values
    tampered = await app_client.post(STATUS_PATH, data=other, headers=signed(env, params))
    assert [r.status_code for r in (unsigned, forged, tampered)] == [403, 403, 403]
    assert len(await audit.case_events(redis, reference)) == before


async def test_an_undelivered_21610_marks_the_phone_opted_out(
        redis: Redis, env: Settings, fake: FakeTwilio, app_client: httpx.AsyncClient) -> None:
    reference, sid = await confirmed_case(redis, env, fake)
    params = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "21610"}
    response = await app_client.post(STATUS_PATH, data=params, headers=signed(env, params))
    assert response.status_code == 204
    assert await phone_state.opted_out(redis, pseudonym(PHONE, DEV_PII_KEY))
    (event,) = await trail(app_client, redis, reference)
    assert event["detail"] == {"delivery": f"confirmation:{reference}", "sid": sid,
                               "status": "undelivered", "error_code": "21610"}


async def test_a_callback_for_a_message_we_did_not_send_is_acknowledged(
        env: Settings, app_client: httpx.AsyncClient) -> None:
    params = {"MessageSid": "SM" + "f" * 32, "MessageStatus": "delivered"}
    response = await app_client.post(STATUS_PATH, data=params, headers=signed(env, params))
    assert response.status_code == 204
