"""Transport headers (issue 18): `X-Content-Type-Options: nosniff` on every answer, and
`Strict-Transport-Security` (180 days at least) on every answer that came over HTTPS, on
the gateway lane and on FastAPI's side alike, through the real app and a real Redis."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from bot.admin.operators import Role, add_operator
from bot.channels.routes import SMS_PATH, USSD_PATH
from bot.channels.twilio_voice import VOICE_PATH
from tests.integration.voice_support import Caller
from tests.integration.webhooks_support import (
    PUBLIC_URL,
    Gateway,
    gateway_settings,
    running_app,
)
from tests.redis_server import RedisServer

HALF_A_YEAR = 180 * 24 * 3600
MAX_AGE = re.compile(r"(?:^|;)\s*max-age=(\d+)\s*(?:;|$)")


def hsts_seconds(response: httpx.Response) -> int | None:
    value = response.headers.get("strict-transport-security")
    if value is None:
        return None
    found = MAX_AGE.search(value)
    assert found, value
    return int(found.group(1))


async def every_kind_of_answer(gateway: Gateway, redis: Redis) -> dict[str, httpx.Response]:
    """One answer of each kind: webhooks (lane) and their refusals, probes, the admin API's
    JSON and its refusal, the console, a 404."""
    client = gateway.client
    token = await add_operator(redis, name="sam", role=Role.SUPERVISOR, now=datetime.now(UTC))
    caller = Caller(client, phone="+22376000601")
    voice = await caller.post(PUBLIC_URL + VOICE_PATH, {"CallStatus": "ringing"})
    return {
        "ussd": await gateway.hop("ATUid_headers", ""),
        "ussd refused": await gateway.hop("ATUid_headers", "", key="wrong"),
        "sms": await gateway.sms("MENU"),
        "sms unsigned": await gateway.sms("MENU", signed_url=None),
        "voice": voice,
        "webhook GET": await client.get(USSD_PATH),
        "healthz": await client.get("/healthz"),
        "readyz": await client.get("/readyz"),
        "api": await client.get("/admin/api/v1/cases",
                                headers={"Authorization": f"Bearer {token}"}),
        "api refused": await client.get("/admin/api/v1/cases"),
        "console": await client.get("/admin/"),
        "not found": await client.get("/nowhere"),
        "sms GET": await client.get(SMS_PATH),
    }


@asynccontextmanager
async def app_at(base_url: str, redis_server: RedisServer,
                 tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running_app(gateway_settings(redis_server.url, tmp_path), base_url) as gateway:
        yield gateway


@pytest.mark.parametrize("base_url", ["https://helpline.example", "http://127.0.0.1:8000"])
async def test_every_answer_says_nosniff(redis: Redis, redis_server: RedisServer,
                                        tmp_path: Path, base_url: str) -> None:
    async with app_at(base_url, redis_server, tmp_path) as gateway:
        answers = await every_kind_of_answer(gateway, redis)
    assert [answers[kind].status_code for kind in (
        "ussd", "ussd refused", "sms unsigned", "webhook GET", "api", "api refused",
        "not found")] == [200, 403, 403, 405, 200, 401, 404]
    for kind, response in answers.items():
        assert response.headers.get("x-content-type-options") == "nosniff", kind
        assert response.headers.get_list("x-content-type-options") == ["nosniff"], kind


async def test_every_answer_over_https_carries_hsts_for_half_a_year_at_least(
        redis: Redis, redis_server: RedisServer, tmp_path: Path) -> None:
    async with app_at("https://helpline.example", redis_server, tmp_path) as gateway:
        answers = await every_kind_of_answer(gateway, redis)
    for kind, response in answers.items():
        seconds = hsts_seconds(response)
        assert seconds is not None and seconds >= HALF_A_YEAR, (kind, response.headers)
        assert len(response.headers.get_list("strict-transport-security")) == 1, kind


async def test_no_answer_over_plain_http_carries_hsts(
        redis: Redis, redis_server: RedisServer, tmp_path: Path) -> None:
    """Browsers ignore HSTS over http; a proxy that forgets X-Forwarded-Proto gets none."""
    async with app_at("http://127.0.0.1:8000", redis_server, tmp_path) as gateway:
        answers = await every_kind_of_answer(gateway, redis)
    for kind, response in answers.items():
        assert "strict-transport-security" not in response.headers, kind
