"""The admin API while its Redis is stopped or frozen (issue 9, item 3): 503, then back."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from bot.admin.operators import Role, add_operator
from bot.app import create_app
from bot.settings import Env
from tests.integration.admin_support import API, T0, RecordedJobs, seed
from tests.integration.webhooks_support import USSD_SECRET, gateway_settings
from tests.redis_server import RedisServer

FROZEN_ANSWER_SECONDS = 5.0



@pytest.fixture
async def admin(own_redis: RedisServer, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    redis = Redis.from_url(own_redis.url, decode_responses=True)
    token = await add_operator(redis, name="root", role=Role.ADMIN, now=T0)
    await seed(redis)
    await redis.aclose()
    app = create_app(gateway_settings(own_redis.url, tmp_path, env=Env.PROD),
                     case_jobs=RecordedJobs())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000",
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            yield client


def assert_store_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/json"
    assert "store" in response.json()["detail"]
    assert int(response.headers["retry-after"]) > 0


async def test_admin_api_answers_503_while_redis_is_stopped_then_serves_again(
        admin: httpx.AsyncClient, own_redis: RedisServer) -> None:
    page = (await admin.get(f"{API}/cases")).json()
    assert len(page["items"]) == 1
    reference = page["items"][0]["reference"]
    own_redis.stop()
    for method, path, body in (
        ("GET", f"{API}/cases", None),
        ("GET", f"{API}/cases/{reference}", None),
        ("POST", f"{API}/cases/{reference}/notes", {"text": "lost?"}),
        ("GET", f"{API}/stats", None),
        ("GET", f"{API}/operators", None),
    ):
        assert_store_unavailable(await admin.request(method, path, json=body))
    hop = await admin.post("/webhooks/ussd/africastalking", params={"key": USSD_SECRET},
                           data={"sessionId": "s1", "phoneNumber": "+22376000001", "text": "",
                                 "serviceCode": "*1#", "networkCode": "1"})
    assert hop.status_code == 200 and hop.text.startswith("END ")  # the static fallback
    own_redis.start()
    detail = await admin.get(f"{API}/cases/{reference}")
    assert detail.status_code == 200
    assert detail.json()["journal"] == []  # the refused note was not half-written


async def test_admin_api_answers_503_in_bounded_time_while_redis_is_frozen(
        admin: httpx.AsyncClient, own_redis: RedisServer) -> None:
    assert (await admin.get(f"{API}/stats")).status_code == 200
    assert own_redis.process is not None
    os.kill(own_redis.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        assert_store_unavailable(await admin.get(f"{API}/cases"))
        assert_store_unavailable(await admin.get(f"{API}/stats"))
        assert time.monotonic() - started < 2 * FROZEN_ANSWER_SECONDS
    finally:
        os.kill(own_redis.process.pid, signal.SIGCONT)
    stats = await admin.get(f"{API}/stats")
    assert stats.status_code == 200 and stats.json()["total"] == 1
