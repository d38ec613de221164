"""Profile updates outside a conversation step, and the old per-key layout's upgrade."""

from __future__ import annotations

import json

import pytest
from redis.asyncio import Redis

from bot import privacy
from bot.conversation import Conversation, InboundMessage
from bot.privacy import pseudonym
from bot.settings import Settings
from bot.store import keys, phone_state
from bot.store.deliveries import mark_opted_out
from bot.store.profiles import update_profile
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


async def test_an_old_layout_opt_out_is_moved_in_and_kept(redis: Redis) -> None:
    await redis.set(keys.profile("p0"), json.dumps({"language": "fr", "opted_out": True}))
    assert await phone_state.opted_out(redis, "p0")
    await update_profile(redis, pseudonym="p0", language="bm", ttl=60)
    profile = await stored.profile(redis, "p0")
    assert profile is not None and profile.opted_out and profile.language == "bm"
    assert not await redis.exists(keys.profile("p0"))


@pytest.mark.single_only("the old layout predates Cluster support: there the old keys are "
                         "in another slot than the state, and a Cluster deployment has none")
async def test_an_old_layout_phone_keeps_its_opt_out_and_draft_in_a_conversation(
        redis: Redis, settings: Settings) -> None:
    """Deployed over the old layout: the profile and draft move into the state value."""
    conversation = Conversation(redis=redis, compiled=default_flow(), settings=settings)
    phone = "+22376100009"
    tag = pseudonym(phone, privacy.pii_key(settings))
    await redis.set(keys.profile(tag), json.dumps({"language": "fr", "opted_out": True}))
    await redis.set(keys.session(tag, "sms"), json.dumps({"state": "main", "language": "fr"}),
                    ex=600)
    assert (await conversation.handle(InboundMessage(Channel.SMS, phone, "1"))).text == ""
    profile = await stored.profile(redis, tag)
    assert profile is not None and profile.opted_out
    assert not await redis.exists(keys.profile(tag))
    other = "+22376100010"
    tag = pseudonym(other, privacy.pii_key(settings))
    draft = {"state": "avr_nationality", "language": "en", "answers": {"name": "Awa"},
             "history": ["welcome", "main", "avr_consent", "avr_name"],
             "draft_id": "0123456789abcdef", "consent_at": "2026-12-01T10:00:00+00:00"}
    await redis.set(keys.draft(tag), json.dumps(draft), ex=3600)
    offer = (await conversation.handle(InboundMessage(Channel.SMS, other, "bonjour"))).text
    assert offer.startswith("You have an unfinished return request")
    assert (await conversation.handle(InboundMessage(Channel.SMS, other, "1"))).text.startswith(
        "Your nationality")


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
