"""Profile updates outside a conversation step."""

from __future__ import annotations

import json

import pytest
from redis.asyncio import Redis

from bot import privacy
from bot.conversation import Conversation, InboundMessage
from bot.privacy import pseudonym
from bot.settings import Settings
from bot.store import keys
from bot.store.profiles import update_profile
from bot.types import Channel
from tests.factories import default_flow

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


async def test_a_phone_that_chose_nothing_keeps_no_long_profile(
        redis: Redis, settings: Settings) -> None:
    """SPEC §9 memory: a profile outlives the session only for what the migrant chose."""
    conversation = Conversation(redis=redis, compiled=default_flow(), settings=settings)
    phone = "+22376100001"
    key = keys.profile(pseudonym(phone, privacy.pii_key(settings)))
    await conversation.handle(InboundMessage(Channel.SMS, phone, "AIDE"))
    assert 0 < await redis.ttl(key) <= settings.sms_ttl
    await conversation.handle(InboundMessage(Channel.SMS, phone, "2"))  # chooses English
    assert await redis.ttl(key) > settings.sms_ttl
    assert json.loads(await redis.get(key) or "{}")["language"] == "en"
