"""A Twilio status callback that arrives while Redis is down is recorded once it is back.

Twilio does not call a status callback again, so a status the store could not take
must not be dropped: a `failed` alert would never get its SMS fallback, a 21610
never mark the phone opted out (bot/channels/status_backlog.py).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from redis.asyncio import Redis
from twilio.request_validator import RequestValidator

from bot.cases import followups
from bot.cases import service as case_service
from bot.cases.model import CaseStatus
from bot.channels import status_backlog
from bot.settings import Settings
from bot.store import audit, cases
from bot.store import followups as followup_store
from tests.fake_twilio import AUTH_TOKEN, FakeTwilio, fake_twilio
from tests.integration.admin_support import (
    T0,
    RecordedJobs,
    client_for,
    return_request,
    running_app,
)
from tests.integration.webhooks_support import gateway_settings
from tests.integration.worker_support import Clock, harness, worker_env
from tests.redis_server import RedisServer

PHONE = "+22376000302"
STATUS_PATH = "/webhooks/twilio/status"
RECORDED_WITHIN_SECONDS = 20.0


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with fake_twilio() as server:
        yield server


@pytest.fixture
def env(own_redis: RedisServer, tmp_path: Path, fake: FakeTwilio) -> Settings:
    return worker_env(gateway_settings(own_redis.url, tmp_path), fake)


@pytest.fixture
async def own_client(own_redis: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(own_redis.url, decode_responses=True)
    yield client
    await client.aclose()


def signed(env: Settings, params: dict[str, str], path: str = STATUS_PATH) -> dict[str, str]:
    assert env.public_url is not None
    url = env.public_url + path
    return {"X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(url, params)}


async def statuses(redis: Redis, reference: str) -> list[object]:
    return [event.detail.get("status") for event in await audit.case_events(redis, reference)
            if event.action == "sms_status"]


async def sms_sent(redis: Redis, env: Settings, fake: FakeTwilio, *, status: str,
                   **more: str) -> tuple[str, dict[str, str]]:
    """A case whose confirmation SMS the worker sent; the status callback's fields for it."""
    reference = await cases.create_case(redis, new_case=return_request(phone=PHONE))
    async with harness(env, clock=Clock()) as worker:
        await worker.cycle()
    (message,) = fake.sent_to(PHONE)
    return reference, {"MessageSid": str(message["sid"]), "MessageStatus": status, **more,
                       "AccountSid": "AC1"}


async def recorded(redis: Redis, reference: str) -> None:
    started = time.monotonic()
    while not await statuses(redis, reference):
        assert time.monotonic() - started < RECORDED_WITHIN_SECONDS, "status lost"
        await asyncio.sleep(0.2)


async def test_a_status_sent_while_redis_is_stopped_is_recorded_once_it_is_back(
        own_redis: RedisServer, own_client: Redis, env: Settings, fake: FakeTwilio) -> None:
    reference, params = await sms_sent(own_client, env, fake, status="delivered")
    async with running_app(env, RecordedJobs()) as app, client_for(app) as client:
        own_redis.stop()
        response = await client.post(STATUS_PATH, data=params, headers=signed(env, params))
        assert response.status_code == 204  # at once: Twilio is never kept waiting
        own_redis.start()
        await recorded(own_client, reference)
        # Twilio calling back twice with the same status changes nothing more.
        again = await client.post(STATUS_PATH, data=params, headers=signed(env, params))
        assert again.status_code == 204
    assert await statuses(own_client, reference) == ["delivered"]


async def test_statuses_waiting_at_shutdown_get_one_last_try(
        own_redis: RedisServer, own_client: Redis, env: Settings, fake: FakeTwilio,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(status_backlog, "RETRY_SECONDS", (600.0,))  # no retry before the stop
    reference, params = await sms_sent(own_client, env, fake, status="failed",
                                       ErrorCode="30003")
    async with running_app(env, RecordedJobs()) as app, client_for(app) as client:
        own_redis.stop()
        response = await client.post(STATUS_PATH, data=params, headers=signed(env, params))
        assert response.status_code == 204
        own_redis.start()  # back, and the app stops long before its next retry
    assert await statuses(own_client, reference) == ["failed"]


async def test_statuses_still_waiting_at_shutdown_are_kept_on_disk_for_the_next_start(
        own_redis: RedisServer, own_client: Redis, env: Settings, fake: FakeTwilio,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(status_backlog, "RETRY_SECONDS", (600.0,))
    monkeypatch.setattr(status_backlog, "CLOSE_SECONDS", 0.5)
    reference, params = await sms_sent(own_client, env, fake, status="failed",
                                       ErrorCode="30003")
    async with running_app(env, RecordedJobs()) as app, client_for(app) as client:
        own_redis.stop()
        response = await client.post(STATUS_PATH, data=params, headers=signed(env, params))
        assert response.status_code == 204
    # Stopped while Redis was still down (a deploy during an outage): kept on disk, as the
    # status's own fields only (no phone number, no body), readable by this user alone.
    (kept,) = env.data_dir.glob("status-backlog-*.json")
    assert PHONE not in kept.read_text() and kept.stat().st_mode & 0o077 == 0
    # Only the fields it uses: the release before (no `followup` field) reads it too.
    assert json.loads(kept.read_text()) == [{"message_sid": params["MessageSid"],
                                             "status": "failed", "error_code": "30003"}]
    own_redis.start()
    monkeypatch.setattr(status_backlog, "RETRY_SECONDS", (0.2,))
    async with running_app(env, RecordedJobs()):
        await recorded(own_client, reference)
    assert await statuses(own_client, reference) == ["failed"]
    assert not list(env.data_dir.glob("status-backlog-*"))


async def test_a_check_in_call_nobody_took_told_while_redis_is_stopped_is_called_again(
        own_redis: RedisServer, own_client: Redis, env: Settings) -> None:
    """How a check-in call ended waits with the other statuses: the second call is not lost."""
    new_case = replace(return_request(phone=PHONE, followup_consent="yes"), channel="voice")
    reference = await cases.create_case(own_client, new_case=new_case)
    for status in ("contacted", "in_progress", "return_arranged", "returned"):
        await case_service.update_case(own_client, reference=reference, actor="operator:x",
                                       now=T0, status=CaseStatus(status))
    await followups.schedule_returned(own_client, reference=reference, returned_at=T0,
                                      days=(0,), ttl=3600)
    await followup_store.mark(own_client, reference=reference, ids="1", sources="s",
                              target="t", now=int(T0.timestamp()), ttl=3600)
    params = {"CallSid": "CA1", "CallStatus": "no-answer", "AccountSid": "AC1"}
    path = f"{STATUS_PATH}?followup={reference}.1"
    async with running_app(env, RecordedJobs()) as app, client_for(app) as client:
        own_redis.stop()
        response = await client.post(path, data=params, headers=signed(env, params, path))
        assert response.status_code == 204  # at once: Twilio is never kept waiting
        own_redis.start()
        started = time.monotonic()
        while True:
            record = await followup_store.read(own_client, reference)
            assert record is not None
            if record.entries[0].status == "x":
                break
            assert time.monotonic() - started < RECORDED_WITHIN_SECONDS, "call's end lost"
            await asyncio.sleep(0.2)
    assert [(e.id, e.origin, e.status) for e in record.entries] == [(1, "r", "x"),
                                                                     (2, "d", "s")]
