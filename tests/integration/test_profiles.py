"""Profile updates outside a conversation step."""

from __future__ import annotations

import json

import pytest
from redis.asyncio import Redis

from bot.store import keys
from bot.store.profiles import update_profile

pytestmark = pytest.mark.deployments


async def test_a_language_change_keeps_an_opt_out_without_expiry(redis: Redis) -> None:
    key = keys.profile("p1")
    await redis.set(key, json.dumps({"language": "fr", "opted_out": True}))
    await update_profile(redis, pseudonym="p1", fields={"language": "bm"}, ttl=60)
    assert json.loads(await redis.get(key) or "{}") == {"language": "bm", "opted_out": True}
    assert await redis.ttl(key) == -1


async def test_a_plain_profile_expires_with_retention(redis: Redis) -> None:
    await update_profile(redis, pseudonym="p2", fields={"language": "en"}, ttl=60)
    assert 0 < await redis.ttl(keys.profile("p2")) <= 60
