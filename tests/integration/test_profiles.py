"""Profile updates outside a conversation step."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from bot import privacy
from bot.conversation import Conversation, InboundMessage
from bot.privacy import pseudonym
from bot.settings import Settings
from bot.store import keys
from bot.store.deliveries import mark_opted_out
from bot.store.phone_state import update_profile
from bot.types import Channel
from tests import phone_state_support as stored
from tests.factories import default_flow

pytestmark = pytest.mark.deployments


async def test_a_language_change_keeps_an_opt_out_without_expiry(redis: Redis) -> None:
    await mark_opted_out(redis, "p1")
    await update_profile(redis, pseudonym="p1", language="bm", ttl=60)
    profile = await stored.profile(redis, "p1")
    assert profile is not None and profile.opted_out and profile.language == "bm"
    assert await stored.seconds_left(redis, "p1", "p") is None
    assert await redis.ttl(keys.phone_state("p1")) == -1


async def test_a_plain_profile_expires_with_retention(redis: Redis) -> None:
    await update_profile(redis, pseudonym="p2", language="en", ttl=60)
    left = await stored.seconds_left(redis, "p2", "p")
    assert left is not None and 0 < left <= 60
    assert 0 < await redis.ttl(keys.phone_state("p2")) <= 60


async def test_a_phone_that_chose_nothing_keeps_no_long_profile(
        redis: Redis, settings: Settings) -> None:
    """docs/spec.md §9 memory: a profile outlives the session only for what the migrant chose."""
    conversation = Conversation(redis=redis, compiled=default_flow(), settings=settings)
    phone = "+22376100001"
    tag = pseudonym(phone, privacy.pii_key(settings))
    await conversation.handle(InboundMessage(Channel.SMS, phone, "AIDE"))
    assert await redis.ttl(keys.phone_state(tag)) <= settings.sms_ttl
    await conversation.handle(InboundMessage(Channel.SMS, phone, "2"))  # chooses English
    left = await stored.seconds_left(redis, tag, "p")
    assert left is not None and left > settings.sms_ttl
    profile = await stored.profile(redis, tag)
    assert profile is not None and profile.language == "en"
