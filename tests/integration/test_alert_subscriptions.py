"""Subscribing to alerts (docs/spec.md §10) on every channel, through the real app and Redis:
consent first, "is SMS safe?" from USSD or a call, the country; STOP ends it, START does
not renew it, EFFACER erases it. On one server and on a real 3-master Cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from bot import privacy
from bot.outreach.subscriptions import AlertChannel, Subscription
from bot.settings import DEFAULT_FLOW
from bot.store import keys, subscriptions
from tests.integration.voice_support import Caller
from tests.integration.webhooks_support import PII_KEY, Gateway, gateway_settings, running_app
from tests.redis_server import RedisClusterSet

pytestmark = pytest.mark.deployments

PHONE = "+22376000501"


@pytest.fixture
async def gateway(redis: Redis, redis_server: Any, tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running_app(gateway_settings(redis_server.url, tmp_path)) as found:
        yield found


def pseudonym(phone: str) -> str:
    return privacy.pseudonym(phone, PII_KEY.encode())


async def subscription(redis: Redis, phone: str = PHONE) -> Subscription | None:
    return await subscriptions.subscription_of(redis, pseudonym=pseudonym(phone))


async def ussd_subscribe(gateway: Gateway, session: str, *keys_typed: str,
                         phone: str = PHONE) -> str:
    """A first dial: French, then the main menu's 7 (Alerts), then `keys_typed`."""
    await gateway.dial(session, phone=phone)
    await gateway.press(session, "1", phone=phone)  # French
    shown = await gateway.press(session, "7", phone=phone)
    assert "4 par mois au plus" in shown and "STOP" in shown  # the consent says it all
    for typed in keys_typed:
        shown = await gateway.press(session, typed, phone=phone)
    return shown


async def test_ussd_consent_sms_safe_country_subscribes(gateway: Gateway, redis: Redis) -> None:
    shown = await ussd_subscribe(gateway, "ATUid_a1", "1")
    assert "SMS sur ce téléphone est-il sans danger" in shown
    shown = await gateway.press("ATUid_a1", "1", phone=PHONE)
    assert "Mali" in shown and "Autre pays" in shown
    shown = await gateway.press("ATUid_a1", "2", phone=PHONE)  # Niger
    assert shown.startswith("END ") and "vous recevrez nos alertes" in shown
    found = await subscription(redis)
    assert found is not None
    assert (found.country, found.language, found.channel, found.phone) == (
        "NE", "fr", AlertChannel.SMS, PHONE)
    assert found.text_version  # the consent text's version is kept with the consent
    assert await subscriptions.audience_size(redis, countries=["NE"], languages=[]) == 1
    assert await subscriptions.audience_size(redis, countries=["ML"], languages=[]) == 0


async def test_refusing_the_consent_stores_nothing(gateway: Gateway, redis: Redis) -> None:
    shown = await ussd_subscribe(gateway, "ATUid_a2", "2")
    assert shown.startswith("END ") and "Rien n'a été gardé" in shown
    assert await subscription(redis) is None
    assert await subscriptions.count(redis) == 0


async def test_sms_not_safe_subscribes_nothing_and_says_so(gateway: Gateway,
                                                           redis: Redis) -> None:
    shown = await ussd_subscribe(gateway, "ATUid_a3", "1", "2")
    assert shown.startswith("END ") and "nous n'envoyons rien" in shown
    assert "pas d'abonnement" in shown
    assert await subscription(redis) is None


async def test_the_sms_keyword_subscribes_without_the_sms_question(gateway: Gateway,
                                                                   redis: Redis) -> None:
    consent = await gateway.text("alertes")
    assert "4 par mois au plus" in consent and "1 J'accepte" in consent
    country = await gateway.text("1")
    assert "Dans quel pays" in country  # texting from this phone: no "is SMS safe?"
    done = await gateway.text("4")  # Libya
    assert "vous recevrez nos alertes" in done
    found = await subscription(redis, gateway.phone)
    assert found is not None and found.country == "LY" and found.channel is AlertChannel.SMS


async def test_english_and_the_bambara_keyword(gateway: Gateway, redis: Redis) -> None:
    english = await gateway.text("ALERTS", phone="+22376000502")
    assert "Alertes par SMS" in english  # a phone never seen: the flow's default language
    bambara = await gateway.text("Lasɔmini", phone="+22376000503")
    assert bambara == english  # the Bambara word opens the same screen
    await gateway.text("1", phone="+22376000503")
    await gateway.text("7", phone="+22376000503")
    found = await subscription(redis, "+22376000503")
    assert found is not None and found.country == "ZZ"


async def test_a_subscription_from_whatsapp_goes_to_whatsapp(gateway: Gateway,
                                                             redis: Redis) -> None:
    for typed in ("ALERTES", "1", "1"):
        await gateway.text(typed, phone="whatsapp:" + PHONE)
    found = await subscription(redis)
    assert found is not None and found.channel is AlertChannel.WHATSAPP
    assert found.phone == PHONE and found.country == "ML"


async def test_stop_ends_it_start_does_not_renew_it(gateway: Gateway, redis: Redis) -> None:
    for typed in ("ALERTES", "1", "2"):
        await gateway.text(typed)
    assert await subscription(redis, gateway.phone) is not None
    assert "Vous ne recevrez plus nos SMS" in await gateway.text("STOP")
    assert await subscription(redis, gateway.phone) is None
    assert await subscriptions.audience_size(redis, countries=[], languages=[]) == 0
    asked = await gateway.text("ALERTES")  # while opted out: told how, nothing stored
    assert "Vous avez envoyé STOP" in asked and "DEBUT" in asked
    assert "Vous recevrez de nouveau nos SMS" in await gateway.text("START")
    assert await subscription(redis, gateway.phone) is None  # not renewed


async def test_effacer_erases_the_subscription(gateway: Gateway, redis: Redis) -> None:
    for typed in ("ALERTES", "1", "3"):
        await gateway.text(typed)
    assert await subscription(redis, gateway.phone) is not None
    await gateway.text("EFFACER")
    assert "effacées" in await gateway.text("1")
    assert await subscription(redis, gateway.phone) is None
    shard = keys.shard_of_phone(pseudonym(gateway.phone))
    assert await redis.hlen(keys.alert_subscriptions(shard)) == 0
    assert await redis.hgetall(keys.alert_counts(shard)) == {}


async def test_a_call_subscribes_on_the_keypad(gateway: Gateway, redis: Redis) -> None:
    caller = Caller(gateway.client, phone="+22376000504")
    await caller.dial()  # the main menu at once, in French
    consent = (await caller.press("7")).text
    assert "4 par mois au plus" in consent
    assert "sans danger" in (await caller.press("1")).text
    assert "Mauritanie" in (await caller.press("1")).text
    done = await caller.press("5")
    assert "vous recevrez nos alertes" in done.text and done.hangs_up
    found = await subscription(redis, "+22376000504")
    assert found is not None and found.country == "MR" and found.channel is AlertChannel.SMS


async def test_subscriptions_spread_over_the_shards_and_masters(
        gateway: Gateway, redis: Redis, redis_server: Any, deployment: str) -> None:
    phones = [f"+2237601{n:04d}" for n in range(16)]
    for number, phone in enumerate(phones):
        await ussd_subscribe(gateway, f"ATUid_spread{number}", "1", "1", "1", phone=phone)
    assert await subscriptions.count(redis) == 16
    shards = {keys.shard_of_phone(pseudonym(phone)) for phone in phones}
    assert len(shards) >= 6, shards
    if deployment == "cluster":
        assert isinstance(redis_server, RedisClusterSet)
        masters = {redis_server.master_of(keys.alert_subscriptions(shard)) for shard in shards}
        assert len(masters) == 3, masters
        for shard in shards:  # a subscription sits on the master of its phone's state
            assert redis_server.master_of(keys.alert_subscriptions(shard)) == \
                redis_server.master_of(keys.alert_counts(shard))


def test_the_default_flow_offers_alerts() -> None:
    assert "alerts_consent" in DEFAULT_FLOW.read_text()
