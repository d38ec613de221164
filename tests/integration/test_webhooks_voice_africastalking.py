"""Africa's Talking Voice on the same conversation, through the real app and a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.channels.africastalking_voice import VOICE_PATH
from bot.store import phone_state
from bot.store.cases import read_case
from tests.integration.voice_support import AtCaller, at_said
from tests.integration.webhooks_support import (
    PUBLIC_URL,
    USSD_SECRET,
    gateway_settings,
    running_app,
)
from tests.redis_server import RedisServer, snapshot

CALLBACK = f"{PUBLIC_URL}{VOICE_PATH}?key={USSD_SECRET}"
AT_RECORDING = "https://voice.africastalking.com/recordings/9f2c-77ab.mp3"


@pytest.fixture
async def caller(redis: Redis, redis_server: RedisServer,
                 tmp_path: Path) -> AsyncIterator[AtCaller]:
    async with running_app(gateway_settings(redis_server.url, tmp_path)) as gateway:
        yield AtCaller(gateway.client)


@pytest.mark.deployments
async def test_a_call_gets_the_menu_on_the_keypad_and_the_emergency_numbers(
        caller: AtCaller) -> None:
    menu = await caller.dial(CALLBACK)
    gather = menu.find("GetDigits")
    assert gather is not None and gather.attrib["numDigits"] == "1"
    assert gather.attrib["callbackUrl"] == f"{CALLBACK}&n=0"
    assert "Pour Infos protection, tapez 1." in at_said(menu)
    emergency = await caller.press("5")
    assert "Police: 1 7" in at_said(emergency)
    # Nothing pressed twice: the screen again, then the numbers; the call ends with the XML.
    assert [verb.tag for verb in emergency][:2] == ["GetDigits", "GetDigits"]
    tail = [verb for verb in emergency][2:]
    assert tail and all(verb.tag == "Say" for verb in tail)
    assert "Police 1 7" in " ".join(verb.text or "" for verb in tail)


async def test_a_wrong_or_missing_key_is_refused_with_no_change(caller: AtCaller,
                                                                redis: Redis) -> None:
    before = await snapshot(redis)
    for url in (PUBLIC_URL + VOICE_PATH, f"{PUBLIC_URL}{VOICE_PATH}?key=wrong"):
        response = await caller.post(url, {})
        assert response.status_code == 403
    assert await snapshot(redis) == before


async def test_a_recorded_answer_is_kept_by_its_url_and_the_end_of_call_changes_nothing(
        caller: AtCaller, redis: Redis) -> None:
    await caller.dial(CALLBACK)
    await caller.press("2")  # return request: consent
    name = await caller.press("1")
    record = name.find("Record")
    assert record is not None and record.attrib["finishOnKey"] == "#"
    assert "Votre nom" in " ".join(say.text or "" for say in record.iter("Say"))
    nationality = await caller.speak(AT_RECORDING)
    assert "nationalité" in " ".join(say.text or "" for say in nationality.iter("Say"))
    before = await snapshot(redis)
    over = await caller.post(CALLBACK, {"isActive": "0", "durationInSeconds": "42",
                                        "currencyCode": "USD", "amount": "0.1"})
    assert over.status_code == 200 and await snapshot(redis) == before
    draft = [phone_state.parse(value).get("d") for key, value in before.items()
             if ":ph:" in str(key) and str(key).count(":") == 3]  # a state, not a lease
    assert draft and f"recording 9f2c-77ab {AT_RECORDING}" in str(draft[0])


@pytest.mark.deployments
async def test_a_call_back_over_africastalking_makes_a_voice_case(
        caller: AtCaller, redis: Redis) -> None:
    await caller.dial(CALLBACK)
    await caller.press("4")
    await caller.press("1")  # consent
    await caller.press("5")  # topic: other, skipped
    await caller.press("1")  # safe to call
    done = await caller.press("4")  # any time
    said = at_said(done)
    assert "Référence" in said and done.find("GetDigits") is None
    digits = "".join(ch for ch in said.split("Référence:")[1].split(".")[0] if ch.isdigit())
    case = await read_case(redis, digits)
    assert case.kind == "callback" and case.channel == "voice" and case.phone == caller.phone
