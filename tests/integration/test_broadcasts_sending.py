"""Sending broadcasts (docs/spec.md §10): the worker's jobs, in process, against the fake
Twilio on a real Redis (and a Cluster), approved through the real app: each recipient once in
their language, STOP since the approval skipped, cancel, quiet hours across a restart, urgent at
once, and Twilio's status reports counted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from redis.asyncio import Redis

from bot.admin.deps import get_now
from bot.app import create_app
from bot.jobs import broadcasts as jobs
from bot.settings import Settings
from bot.store import broadcasts as store
from bot.store import keys
from bot.store import pace as pace_store
from bot.store.pace import Booking
from tests.fake_twilio import FakeTwilio, fake_twilio
from tests.integration.admin_support import client_for
from tests.integration.broadcast_support import API, T0, TEXTS, seed_subscribers, supervisors
from tests.integration.webhooks_support import (
    PII_KEY,
    PUBLIC_URL,
    Gateway,
    gateway_settings,
    sign,
)
from tests.integration.worker_support import Clock, Harness, harness, worker_env

pytestmark = pytest.mark.deployments

PLAN = [("NE", "fr"), ("NE", "bm"), ("NE", "en"), ("ML", "bm"), ("LY", "fr"), ("ZZ", "en"),
        ("NE", "fr"), ("DZ", "en"), ("SN", "bm")]
NIGHT = datetime.fromisoformat("2026-03-02T22:30:00+00:00")  # Bamako is UTC+0


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with fake_twilio() as server:
        yield server


@pytest.fixture
def app_settings(redis_server: Any, tmp_path: Path) -> Settings:
    return gateway_settings(redis_server.url, tmp_path)


@pytest.fixture
async def app(redis: Redis, app_settings: Settings) -> AsyncIterator[Any]:
    """The app with the real job queue: the jobs it queues are the worker's."""
    made = create_app(app_settings)
    async with made.router.lifespan_context(made):
        made.dependency_overrides[get_now] = lambda: T0
        yield made


def settings_of_worker(app_settings: Settings, fake: FakeTwilio, **changes: Any) -> Settings:
    return worker_env(app_settings, fake, public_url=PUBLIC_URL,
                      **{"quiet_hours": "", "outbound_mps": 200.0, **changes})


@pytest.fixture
async def worker(app_settings: Settings, fake: FakeTwilio) -> AsyncIterator[Harness]:
    async with harness(settings_of_worker(app_settings, fake), clock=Clock(T0)) as found:
        yield found


@pytest.fixture
async def tokens(redis: Redis) -> dict[str, str]:
    return await supervisors(redis)


async def approved(app: Any, tokens: dict[str, str], **body: Any) -> dict[str, Any]:
    async with client_for(app, tokens["sup-a"]) as client:
        made = (await client.post(f"{API}/broadcasts", json={"text": TEXTS, **body})).json()
    async with client_for(app, tokens["sup-b"]) as client:
        answer = await client.post(f"{API}/broadcasts/{made['id']}/approve")
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def read(app: Any, tokens: dict[str, str], broadcast_id: str) -> dict[str, Any]:
    async with client_for(app, tokens["op-1"]) as client:
        found: dict[str, Any] = (await client.get(f"{API}/broadcasts/{broadcast_id}")).json()
    return found


async def test_each_recipient_gets_the_alert_once_in_their_language(
        app: Any, worker: Harness, fake: FakeTwilio, tokens: dict[str, str],
        redis: Redis) -> None:
    phones = await seed_subscribers(redis, PII_KEY.encode(), PLAN)
    broadcast = await approved(app, tokens)
    await worker.run_jobs()
    assert sorted(m["to"] for m in fake.messages) == sorted(phones)
    by_phone = {m["to"]: m["body"] for m in fake.messages}
    assert by_phone[phones[0]] == TEXTS["fr"] and by_phone[phones[2]] == TEXTS["en"]
    assert by_phone[phones[1]] == TEXTS["bm"].replace("ɲɛ", "nyè")  # GSM-7 spelling
    assert all("?bc=" + broadcast["id"] + "." in m["status_callback"] for m in fake.messages)
    found = await read(app, tokens, broadcast["id"])
    assert found["status"] == "done" and found["finished_at"]
    assert found["counts"] == {"queued": 0, "sent": 9, "delivered": 0, "failed": 0,
                               "skipped": 0}
    await jobs.resume_broadcasts(worker.ctx)  # the round finds nothing left to do
    await worker.run_jobs()
    assert len(fake.creates) == 9
    events = await store.events(redis, broadcast["id"])
    assert [e.action for e in events][-1] == "done"
    for shard in keys.SHARDS:  # nothing left of the numbers once sent
        assert await redis.exists(keys.broadcast_audience(broadcast["id"], shard, "todo")) == 0


async def test_stop_after_the_approval_is_skipped_and_counted(
        app: Any, worker: Harness, fake: FakeTwilio, tokens: dict[str, str],
        redis: Redis) -> None:
    phones = await seed_subscribers(redis, PII_KEY.encode(), PLAN)
    broadcast = await approved(app, tokens)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as web:
        assert "plus nos SMS" in await Gateway(web).text("STOP", phone=phones[3])
    await worker.run_jobs()
    assert phones[3] not in {m["to"] for m in fake.messages}
    assert len(fake.creates) == 8
    counts = (await read(app, tokens, broadcast["id"]))["counts"]
    assert counts["skipped"] == 1 and counts["sent"] == 8 and counts["queued"] == 0


async def until(condition: Any) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("waited 20 s in vain")


async def test_cancel_sends_nothing_more(app: Any, app_settings: Settings, fake: FakeTwilio,
                                         tokens: dict[str, str], redis: Redis) -> None:
    await seed_subscribers(redis, PII_KEY.encode(), [("NE", "fr")] * 40)
    async with harness(settings_of_worker(app_settings, fake, outbound_mps=20.0),
                       clock=Clock(T0)) as slow:
        broadcast = await approved(app, tokens)
        sending = asyncio.create_task(slow.run_jobs())
        await until(lambda: len(fake.creates) >= 5)
        async with client_for(app, tokens["sup-a"]) as client:
            assert (await client.post(f"{API}/broadcasts/{broadcast['id']}/cancel")
                    ).status_code == 200
        at_cancel = len(fake.creates)
        await sending
    # What had its slot and was on its way may go (the pace books two slots ahead); the
    # rest of the forty never does.
    assert len(fake.creates) <= at_cancel + 3 < 40
    found = await read(app, tokens, broadcast["id"])
    assert found["status"] == "cancelled"
    assert found["counts"]["sent"] == len(fake.creates)
    for shard in keys.SHARDS:
        assert await redis.exists(keys.broadcast_audience(broadcast["id"], shard, "todo")) == 0


async def test_quiet_hours_hold_a_broadcast_across_a_worker_restart(
        app: Any, app_settings: Settings, fake: FakeTwilio, tokens: dict[str, str],
        redis: Redis) -> None:
    await seed_subscribers(redis, PII_KEY.encode(), PLAN)
    quiet = settings_of_worker(app_settings, fake, quiet_hours="21-07")
    app.dependency_overrides[get_now] = lambda: NIGHT
    broadcast = await approved(app, tokens)
    assert broadcast["status"] == "scheduled"
    clock = Clock(NIGHT)
    async with harness(quiet, clock=clock) as first:
        clock.advance(minutes=1)
        assert await jobs.resume_broadcasts(first.ctx) == 0
        await first.run_jobs()
    assert fake.creates == []  # the worker stopped: nothing went, nothing was lost
    clock.now = datetime.fromisoformat("2026-03-03T06:59:00+00:00")
    async with harness(quiet, clock=clock) as second:
        assert await jobs.resume_broadcasts(second.ctx) == 0
        clock.advance(minutes=2)
        assert await jobs.resume_broadcasts(second.ctx) == 16
        await second.run_jobs()
    assert len(fake.creates) == 9
    found = await read(app, tokens, broadcast["id"])
    assert found["status"] == "done" and found["counts"]["sent"] == 9
    assert [e.action for e in await store.events(redis, broadcast["id"])] == [
        "created", "approved", "started", "done"]


async def test_an_urgent_alert_goes_at_once_in_quiet_hours(
        app: Any, app_settings: Settings, fake: FakeTwilio, tokens: dict[str, str],
        redis: Redis) -> None:
    await seed_subscribers(redis, PII_KEY.encode(), PLAN[:3])
    app.dependency_overrides[get_now] = lambda: NIGHT
    broadcast = await approved(app, tokens, urgent=True)
    assert broadcast["status"] == "sending"
    async with harness(settings_of_worker(app_settings, fake, quiet_hours="21-07"),
                       clock=Clock(NIGHT)) as night_worker:
        await night_worker.run_jobs()
    assert len(fake.creates) == 3


async def post_status(app: Any, callback: str, status: str, sid: str,
                      error_code: str = "", *, signed_for: str | None = None) -> int:
    """Post a status report to `callback`, signed for it (or for `signed_for`)."""
    params = {"MessageSid": sid, "MessageStatus": status, "ErrorCode": error_code,
              "AccountSid": "AC" + "0" * 32}
    parts = urlsplit(callback)
    transport = httpx.ASGITransport(app=app)
    signature = sign(signed_for or callback, params)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as web:
        answer = await web.post(f"{parts.path}?{parts.query}", data=params,
                                headers={"X-Twilio-Signature": signature})
    return answer.status_code


async def test_twilios_status_reports_count_delivered_and_failed(
        app: Any, worker: Harness, fake: FakeTwilio, tokens: dict[str, str],
        redis: Redis) -> None:
    await seed_subscribers(redis, PII_KEY.encode(), PLAN[:4])
    broadcast = await approved(app, tokens)
    await worker.run_jobs()
    sent = list(fake.messages)
    assert len(sent) == 4
    for message, status in zip(sent, ("delivered", "read", "undelivered", "sent"),
                               strict=True):
        assert await post_status(app, message["status_callback"], status,
                                 message["sid"]) == 204
    assert await post_status(app, sent[0]["status_callback"], "delivered",
                             sent[0]["sid"]) == 204  # a report twice counts once
    other = sent[1]["status_callback"].rsplit(".", 1)[0] + "." + "0" * 20
    assert await post_status(app, other, "failed", sent[1]["sid"],
                             signed_for=sent[1]["status_callback"]) == 403  # as signed only
    assert await post_status(app, sent[1]["status_callback"].replace("?bc=", "?bc=x"),
                             "failed", sent[1]["sid"]) == 204  # a tag of nobody: no change
    counts = (await read(app, tokens, broadcast["id"]))["counts"]
    assert counts == {"queued": 0, "sent": 1, "delivered": 2, "failed": 1, "skipped": 0}


async def test_the_bulk_lane_keeps_the_pace(app: Any, app_settings: Settings,
                                            fake: FakeTwilio, tokens: dict[str, str],
                                            redis: Redis, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    booked: list[int] = []  # the slots the pace gave, in order (Redis's clock, microseconds)
    book = pace_store.book

    async def booking_noted(*args: Any, **kwargs: Any) -> Booking:
        booking = await book(*args, **kwargs)
        booked.extend(booking.slots_us)
        return booking

    monkeypatch.setattr(pace_store, "book", booking_noted)
    await seed_subscribers(redis, PII_KEY.encode(), [("ML", "fr")] * 12)
    async with harness(settings_of_worker(app_settings, fake, outbound_mps=10.0),
                       clock=Clock(T0)) as slow:
        await approved(app, tokens)
        await slow.run_jobs()
    assert len(fake.creates) == 12
    # What the pace decided, not how long the run took (bench/outreach.py measures the
    # rate): a slot for each message at least, no two closer than 1/10 s, and the pace's
    # virtual clock (its next free slot) one interval past the last.
    interval_us = 100_000
    assert len(booked) >= 12
    assert all(later - earlier >= interval_us for earlier, later in pairwise(booked))
    assert int(await redis.get(keys.outbound_pace())) == booked[-1] + interval_us


async def test_a_share_handed_on_between_runs_still_sends_each_once(
        app: Any, worker: Harness, fake: FakeTwilio, tokens: dict[str, str], redis: Redis,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "BATCH", 2)
    monkeypatch.setattr(jobs, "RUN_SECONDS", 0.0)  # one batch a run, then the next run
    phones = await seed_subscribers(redis, PII_KEY.encode(), [("NE", "fr")] * 30)
    broadcast = await approved(app, tokens)
    await worker.run_jobs()
    assert sorted(m["to"] for m in fake.messages) == sorted(phones)
    assert (await read(app, tokens, broadcast["id"]))["status"] == "done"
