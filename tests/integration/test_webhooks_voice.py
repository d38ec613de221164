"""Voice calls (Twilio Programmable Voice) through the real app, a real Redis server and
requests signed by the twilio SDK."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from bot.admin import operators
from bot.admin.operators import Role
from bot.channels.twilio_voice import VOICE_PATH
from bot.engine import recordings
from bot.settings import DEFAULT_FLOW
from tests.factories import broken_copy
from tests.integration.voice_support import Caller, Heard, recording_url
from tests.integration.webhooks_support import (
    PUBLIC_URL,
    Gateway,
    gateway_settings,
    running_app,
)
from tests.redis_server import RedisServer, SentinelSet, snapshot
from tests.unit.test_voice_lint import silence_wav

API = "/admin/api/v1"
SPOKEN_REFERENCE = re.compile(r"(\d) (\d) (\d) (\d), (\d) (\d) (\d) (\d)")


@pytest.fixture
async def caller(redis: Redis, redis_server: RedisServer,
                 tmp_path: Path) -> AsyncIterator[Caller]:
    async with running_app(gateway_settings(redis_server.url, tmp_path)) as gateway:
        yield Caller(gateway.client)


def spoken_reference(text: str) -> str:
    found = SPOKEN_REFERENCE.search(text)
    assert found, text
    return "".join(found.groups())


async def admin_token(redis: Redis) -> str:
    return await operators.add_operator(redis, name="sup-voice", role=Role.SUPERVISOR,
                                        now=datetime.now(UTC))


async def in_french(caller: Caller) -> Heard:
    """A first call: the main menu at once, in French (the flow's `first_start_on`)."""
    return await caller.dial()


def assert_main_menu_in_french(heard: Heard) -> None:
    gather = heard.first("Gather")
    assert gather.attributes["input"] == "dtmf" and gather.attributes["numDigits"] == "1"
    assert gather.attributes["action"].startswith(PUBLIC_URL + VOICE_PATH + "?n=")
    assert "Aide aux migrants" in heard.text
    assert "Pour Infos protection, tapez 1." in heard.text
    assert "Pour Urgence, tapez 5." in heard.text
    assert 'language="fr-FR"' in heard.xml


async def test_a_signed_call_hears_the_main_menu_in_french_on_the_keypad(caller: Caller) -> None:
    assert_main_menu_in_french(await in_french(caller))
    # Calling again: the language is remembered, the menu comes at once.
    assert_main_menu_in_french(await caller.dial())


async def test_a_first_caller_picks_a_language_from_the_main_menu(caller: Caller) -> None:
    menu = await caller.dial()
    assert "Pour Langue/Language, tapez 6." in menu.text
    languages = await caller.press("6")
    assert "For English, press 2." in languages.text
    in_english = await caller.press("2")
    assert "For Protection info, press 1." in in_english.text
    assert 'language="en-US"' in in_english.xml
    # The choice is remembered: the next call is in English at once.
    assert "For Protection info, press 1." in (await caller.dial()).text


async def test_an_unsigned_call_is_refused_with_no_change(caller: Caller, redis: Redis) -> None:
    before = await snapshot(redis)
    response = await caller.post(PUBLIC_URL + VOICE_PATH, {"CallStatus": "ringing"},
                                 signed=False)
    assert response.status_code == 403
    elsewhere = await caller.post("https://elsewhere.example" + VOICE_PATH, {})
    assert elsewhere.status_code == 403
    assert await snapshot(redis) == before


async def test_the_emergency_option_speaks_the_numbers_digit_by_digit(caller: Caller) -> None:
    await in_french(caller)
    emergency = await caller.press("5")
    assert "Police: 1 7" in emergency.text and "Pompiers: 1 8" in emergency.text
    assert emergency.first("Gather").attributes["numDigits"] == "1"


@pytest.mark.deployments
async def test_a_call_back_request_on_the_keypad_speaks_a_reference_and_makes_a_voice_case(
        caller: Caller, redis: Redis) -> None:
    await in_french(caller)
    consent = await caller.press("4")
    assert "Pour OK, tapez 1." in consent.text
    topic = await caller.press("1")
    assert "Pour Autre, passer, tapez 5." in topic.text  # the topic is optional
    safe = await caller.press("5")
    assert "sans danger" in safe.text
    when = await caller.press("1")
    assert "Pour N'importe quand, tapez 4." in when.text
    done = await caller.press("4")
    assert done.hangs_up and "Référence" in done.text
    reference = spoken_reference(done.text)
    token = await admin_token(redis)
    response = await caller.client.get(f"{API}/cases/{reference}",
                                       headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    case = response.json()
    assert case["kind"] == "callback" and case["channel"] == "voice"
    assert case["phone"] == caller.phone


async def test_two_timeouts_say_the_menu_once_more_then_the_emergency_numbers(
        caller: Caller) -> None:
    menu = await in_french(caller)
    again, hung_up = menu.after_timeouts(1)
    assert not hung_up and "Pour Infos protection, tapez 1." in again
    last, hung_up = menu.after_timeouts(2)
    assert hung_up
    assert "Police 1 7" in last and "Pompiers 1 8" in last and "Gendarmerie" in last
    assert "Infos protection" not in last


@pytest.mark.deployments
async def test_star_repeats_the_screen_and_zero_goes_back(caller: Caller) -> None:
    await in_french(caller)
    info = await caller.press("1")
    assert "Pour Vos droits, tapez 1." in info.text
    repeated = await caller.press("*")
    assert repeated.text == info.text
    assert repeated.first("Gather").attributes["action"] == info.first(
        "Gather").attributes["action"]
    assert "Pour Vos droits, tapez 1." in (await caller.press("*")).text
    back = await caller.press("0")
    assert "Aide aux migrants" in back.text


async def test_a_retried_action_is_applied_once(caller: Caller) -> None:
    await in_french(caller)
    assert caller.heard is not None
    action = caller.heard.first("Gather").attributes["action"]
    first = Heard.of(await caller.post(action, {"Digits": "1"}))
    again = Heard.of(await caller.post(action, {"Digits": "1"}))
    assert first.xml == again.xml and "Vos droits" in first.text


@pytest.mark.deployments
async def test_a_return_request_by_voice_keeps_recordings_and_erasure_removes_them(
        caller: Caller, redis: Redis) -> None:
    await in_french(caller)
    consent = await caller.press("2")
    assert "Pour J'accepte, tapez 1." in consent.text
    name = await caller.press("1")
    assert "Votre nom et prénom" in name.text and name.first("Record")
    for _ in range(4):  # name, nationality, country, city: said after the beep
        await caller.speak()
    assert caller.heard is not None and "moins de 18 ans" in caller.heard.text
    for key in ["2", "2", "2", "1", "2", "1", "1", "1"]:
        await caller.press(key)
    summary = caller.heard
    assert "Nom: votre enregistrement" in summary.text and "https://" not in summary.text
    done = await caller.press("1")
    assert done.hangs_up
    reference = spoken_reference(done.text)

    token = await admin_token(redis)
    auth = {"Authorization": f"Bearer {token}"}
    case = (await caller.client.get(f"{API}/cases/{reference}", headers=auth)).json()
    assert case["kind"] == "return_request" and case["channel"] == "voice"
    assert case["priority"] == "urgent"  # trafficking or violence: yes
    kept = [recordings.parse(case["answers"][field])
            for field in ("name", "nationality", "country", "city")]
    assert [(r.recording_id, r.url) for r in kept if r] == [
        (sid, recording_url(sid)) for sid in caller.recordings]

    erased = await caller.client.delete(f"{API}/cases/{reference}", headers=auth)
    assert erased.status_code == 200, erased.text
    after = (await caller.client.get(f"{API}/cases/{reference}", headers=auth)).json()
    assert not after.get("answers")
    dump = str(await snapshot(redis))
    assert not any(sid in dump for sid in caller.recordings)


@pytest.mark.deployments
async def test_a_call_dropped_mid_request_is_offered_to_continue_on_the_next_call(
        caller: Caller) -> None:
    await in_french(caller)
    await caller.press("2")
    await caller.press("1")
    await caller.speak()  # the name, then the caller hangs up
    resumed = await caller.dial()
    assert "Pour Continuer, tapez 1." in resumed.text
    nationality = await caller.press("1")
    assert "nationalité" in nationality.text and nationality.first("Record")


async def test_a_recorded_screen_is_played_and_served_by_the_app(
        redis: Redis, redis_server: RedisServer, tmp_path: Path) -> None:
    def record_main(data: dict[str, Any]) -> None:
        data["states"]["main"]["audio"] = {"bm": "audio/bm/main.wav"}

    (tmp_path / "flow").mkdir()
    flow = broken_copy(tmp_path / "flow", DEFAULT_FLOW, record_main)
    silence_wav(tmp_path / "flow" / "audio" / "bm" / "main.wav")
    settings = gateway_settings(redis_server.url, tmp_path, flow=flow)
    async with running_app(settings) as gateway:
        caller = Caller(gateway.client, phone="+22376000333")
        await caller.dial()
        await caller.press("6")  # the language choice
        main_bm = await caller.press("3")  # Bamanankan
        assert main_bm.text == f"play:{PUBLIC_URL}/audio/bm/main.wav"
        assert main_bm.first("Gather").attributes["numDigits"] == "1"
        info = await caller.press("1")  # no recording yet: the Bambara text, French voice
        assert "Kunnafoniw" in info.text or "Lakanani" in info.text
        assert 'language="fr-FR"' in info.xml
        served = await gateway.client.get("/audio/bm/main.wav")
        assert served.status_code == 200 and served.headers["content-type"] == "audio/wav"
        assert served.content == (tmp_path / "flow" / "audio" / "bm" / "main.wav").read_bytes()
        for outside in ("/audio/..%2Fhelpline.yaml", "/audio/bm/none.wav"):
            assert (await gateway.client.get(outside)).status_code == 404


async def test_an_odd_recording_path_is_the_404_of_any_unknown_recording(
        redis: Redis, redis_server: RedisServer, tmp_path: Path) -> None:
    """A null byte or a name too long for the file system is no recording: 404, no 5xx."""
    async with running_app(gateway_settings(redis_server.url, tmp_path)) as gateway:
        unknown = await gateway.client.get("/audio/bm/none.mp3")
        assert (unknown.status_code, unknown.text) == (404, "no such recording")
        for odd in ("/audio/x%00.mp3", "/audio/bm/%00", "/audio/" + "a" * 300 + ".mp3",
                    "/audio/" + "a/" * 3000 + "b.wav"):
            answer = await gateway.client.get(odd)
            assert (answer.status_code, answer.text) == (unknown.status_code, unknown.text), odd
            head = await gateway.client.head(odd)
            assert head.status_code == 404, odd


async def test_a_call_while_redis_is_down_hears_the_emergency_numbers_and_ends(
        tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "own-redis")
    server.start()
    try:
        async with running_app(gateway_settings(server.url, tmp_path)) as gateway:
            server.stop()
            started = time.monotonic()
            heard = await Caller(gateway.client).dial()
            assert time.monotonic() - started < 2.0
            assert heard.hangs_up and "Police" in heard.text and "17" in heard.text
            assert "au Mali" in heard.text
    finally:
        server.stop()


async def test_a_voice_call_logs_no_number_and_no_recording(
        caller: Caller, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await in_french(caller)
    await caller.press("2")
    await caller.press("1")
    await caller.speak()
    logged = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    national = caller.phone.removeprefix("+223")
    assert national not in logged and caller.recordings[0] not in logged
    assert "api.twilio.com" not in logged


async def test_a_request_begun_on_a_call_is_finished_by_sms_without_showing_recordings(
        caller: Caller) -> None:
    await in_french(caller)
    await caller.press("2")
    await caller.press("1")
    for _ in range(4):  # name, nationality, country, city, then the call drops
        await caller.speak()
    gateway = Gateway(caller.client, phone=caller.phone)
    assert "Continuer" in await gateway.text("Bonjour")
    summary = ""
    for typed in ["1", "2", "2", "2", "1", "2", "1", "1", "1"]:
        summary = await gateway.text(typed)
    assert "Nom: votre enregistrement" in summary and "recording" not in summary
    done = await gateway.text("1")
    assert "Référence" in done


async def test_a_voice_call_back_on_redis_sentinel(redis_sentinel: SentinelSet,
                                                  tmp_path: Path) -> None:
    redis_sentinel.flush()
    async with running_app(gateway_settings(redis_sentinel.url, tmp_path)) as gateway:
        caller = Caller(gateway.client, phone="+22376000444")
        await in_french(caller)
        await caller.press("4")
        heard = await caller.press("1")
        for _ in range(6):  # the optional questions: skipped, or the first choice
            if heard.hangs_up:
                break
            heard = await (caller.stay_silent() if any(
                verb.tag == "Record" for verb in heard.verbs) else caller.press("1"))
        assert "Référence" in heard.text
        spoken_reference(heard.text)
