"""Erasure reaches every copy of what the migrant typed (issue 9, item 5).

A return request is made over USSD and another over SMS, through the real app
and a real Redis; a supervisor then erases each case through the API. After
that, no key of the store (strings, hashes, lists, sets, streams) holds the
name, nationality or city they typed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from bot.admin.operators import Role, add_operator
from bot.app import create_app
from bot.settings import Env
from tests.integration.admin_support import API, T0
from tests.integration.webhooks_support import (
    RETURN_REQUEST,
    Gateway,
    NoJobs,
    gateway_settings,
    reference_in,
)
from tests.redis_server import RedisServer

NAME, NATIONALITY, CITY = "Awa Diarra", "Mali", "Agadez"
TYPED = (NAME, "Malienne", CITY)


async def every_value(redis: Redis) -> dict[str, str]:
    """Every key's whole content as text, whatever its type."""
    found: dict[str, str] = {}
    async for key in redis.scan_iter("*"):
        kind = await redis.type(key)
        if kind == "string":
            value: object = await redis.get(key)
        elif kind == "hash":
            value = await redis.hgetall(key)
        elif kind == "list":
            value = await redis.lrange(key, 0, -1)
        elif kind == "set":
            value = await redis.smembers(key)
        elif kind == "zset":
            value = await redis.zrange(key, 0, -1)
        elif kind == "stream":
            value = await redis.xrange(key)
        else:
            value = kind
        found[key] = str(value)
    return found


def holding(values: dict[str, str], *texts: str) -> list[str]:
    return sorted(key for key, value in values.items() if any(t in value for t in texts))


@pytest.fixture
async def apps(redis: Redis, redis_server: RedisServer,
               tmp_path: Path) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    token = await add_operator(redis, name="sam", role=Role.SUPERVISOR, now=T0)
    app = create_app(gateway_settings(redis_server.url, tmp_path, env=Env.PROD),
                     case_jobs=NoJobs())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000",
                                     timeout=5.0) as phone_side, \
                httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000",
                                  headers={"Authorization": f"Bearer {token}"}) as admin:
            yield Gateway(phone_side), admin


def typed_answers() -> list[str]:
    answers = list(RETURN_REQUEST)
    answers[answers.index("Mali")] = "Malienne"
    answers[answers.index("Awa Diarra")] = NAME
    return answers


async def test_erasing_a_ussd_case_leaves_no_copy_of_its_answers(
        apps: tuple[Gateway, httpx.AsyncClient], redis: Redis) -> None:
    gateway, admin = apps
    await gateway.dial("ATUid_erase")
    await gateway.press("ATUid_erase", "1")
    done = ""
    for typed in typed_answers():
        done = await gateway.press("ATUid_erase", typed)
    reference = reference_in(done)
    assert holding(await every_value(redis), *TYPED)  # the test sees copies when they exist
    assert (await admin.delete(f"{API}/cases/{reference}")).status_code == 200
    assert holding(await every_value(redis), *TYPED) == []


async def test_erasing_an_sms_case_leaves_no_copy_of_its_answers(
        apps: tuple[Gateway, httpx.AsyncClient], redis: Redis) -> None:
    gateway, admin = apps
    await gateway.text("Bonjour")
    await gateway.text("1")
    done = ""
    for typed in typed_answers():
        done = await gateway.text(typed)
    reference = reference_in(done)
    assert (await admin.delete(f"{API}/cases/{reference}")).status_code == 200
    assert holding(await every_value(redis), *TYPED) == []
    # The phone still talks to the helpline afterwards.
    assert await gateway.text("00")
