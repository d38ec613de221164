"""Who is calling (issue 18), through the real app, a real Redis server and requests signed
by the twilio SDK: withheld caller IDs are hidden callers, a long keypad entry is a wrong
answer, and a recording is an answer only when a voice gateway brings it from its own host."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.channels.africastalking_voice import VOICE_PATH as AT_VOICE_PATH
from bot.channels.twilio_voice import VOICE_PATH
from bot.engine import recordings
from bot.observability import JsonFormatter
from bot.store import phone_state
from bot.store.cases import read_case
from tests.factories import default_flow
from tests.integration.voice_support import AtCaller, Caller, Heard, at_said, recording_url
from tests.integration.webhooks_support import (
    CITY,
    NAME,
    NATIONALITY,
    PUBLIC_URL,
    USSD_SECRET,
    Gateway,
    gateway_settings,
    reference_in,
    running_app,
)
from tests.redis_server import RedisServer, snapshot

FLOW = default_flow().flow
AT_CALLBACK = f"{PUBLIC_URL}{AT_VOICE_PATH}?key={USSD_SECRET}"
# Twilio's stand-ins for a withheld caller ID (its support article "Why am I getting calls
# from these strange numbers?"), each a word on the keypad; RESTRICTED also with the 1 some
# carriers put in front.
WITHHELD = {
    "+266696687": "anonymous",
    "+86282452253": "unavailable",
    "+7378742833": "restricted",
    "+17378742833": "restricted, 1-prefixed",
    "+2562533": "blocked",
    "+8656696": "unknown",
}
HIDDEN = "Votre numéro est masqué"
LONG_ENTRY = "1" * 40
# Typed where a name or a place is asked: what the helpline keeps for a voice recording.
LOOKALIKE = "recording RE1 " + recording_url("RE1")
ODD_URL_TEXT = "recording RE1 https://a/x"
OFF_HOST_URLS = [
    "https://evil.example/2010-04-01/Accounts/AC1/Recordings/RE1",
    "https://127.0.0.1:6379/x",
    "https://api.twilio.com.evil.example/2010-04-01/Recordings/RE1",
    "https://api.twilio.com@evil.example/2010-04-01/Recordings/RE1",
    "https://api.twilio.com:8443/2010-04-01/Recordings/RE1",
    "http://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
    "https://voice.africastalking.com/recordings/RE1.mp3",  # another gateway's host
]


def text(name: str) -> str:
    return FLOW.text(name, "fr")


@pytest.fixture
async def gateway(redis: Redis, redis_server: RedisServer,
                  tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running_app(gateway_settings(redis_server.url, tmp_path)) as gateway:
        yield gateway


# ------------------------------------------------------------------ withheld caller IDs


@pytest.mark.parametrize("stand_in", WITHHELD, ids=WITHHELD.values())
async def test_a_call_from_a_withheld_caller_id_is_hidden_and_keeps_nothing(
        gateway: Gateway, redis: Redis, stand_in: str) -> None:
    """Caller A makes a return request by keypad; caller B, a stranger with the same
    stand-in, presses 2 then 1, 1, 1 (the issue's walk). Neither reaches the menu, neither
    hears a request, nothing is kept to be heard, followed, withdrawn or erased."""
    before = await snapshot(redis)
    for walk in (["2", "1", "1", "1"], ["3", "12345678"], ["2", "1", "1", "1"]):
        caller = Caller(gateway.client, phone=stand_in)
        heard = await caller.dial()
        assert heard.hangs_up and HIDDEN in heard.text, heard.text
        assert "Police" in heard.text and "Aide aux migrants" not in heard.text
        for screen_number, digits in enumerate(walk):
            # The keys a caller would press had the call gone on (signed, as Twilio would).
            pressed = Heard.of(await caller.post(f"{PUBLIC_URL}{VOICE_PATH}?n={screen_number}",
                                                 {"Digits": digits}))
            assert pressed.hangs_up and HIDDEN in pressed.text, pressed.text
            assert "Référence" not in pressed.text and "annulée" not in pressed.text
    assert await snapshot(redis) == before


@pytest.mark.parametrize("stand_in", WITHHELD, ids=WITHHELD.values())
async def test_an_africastalking_call_from_a_withheld_caller_id_is_hidden(
        gateway: Gateway, redis: Redis, stand_in: str) -> None:
    before = await snapshot(redis)
    caller = AtCaller(gateway.client, phone=stand_in)
    heard = at_said(await caller.dial(AT_CALLBACK))
    assert HIDDEN in heard and "Aide aux migrants" not in heard
    pressed = caller.answered(await caller.post(f"{AT_CALLBACK}&n=0", {"dtmfDigits": "2"}))
    assert HIDDEN in at_said(pressed)
    assert await snapshot(redis) == before


@pytest.mark.parametrize("stand_in", WITHHELD, ids=WITHHELD.values())
async def test_an_sms_from_a_withheld_caller_id_is_not_answered_and_keeps_nothing(
        gateway: Gateway, redis: Redis, stand_in: str) -> None:
    before = await snapshot(redis)
    for body in ("Bonjour", "1", "2", "1", NAME, "SUIVI", "EFFACER", "STOP"):
        assert await gateway.text(body, phone=stand_in) == ""
    assert await snapshot(redis) == before


@pytest.mark.parametrize("stand_in", WITHHELD, ids=WITHHELD.values())
async def test_a_ussd_hop_from_a_withheld_caller_id_is_refused_and_keeps_nothing(
        gateway: Gateway, redis: Redis, stand_in: str) -> None:
    before = await snapshot(redis)
    for typed in ("", "2", "2*1"):
        response = await gateway.hop("ATUid_withheld", typed, phone=stand_in)
        assert response.status_code == 400 and "not a phone number" in response.text
    assert await snapshot(redis) == before


async def test_a_number_next_to_a_stand_in_is_a_caller_like_any_other(
        gateway: Gateway) -> None:
    """Only the stand-ins themselves are hidden: +1 737 874 2834 is a caller."""
    heard = await Caller(gateway.client, phone="+17378742834").dial()
    assert "Aide aux migrants" in heard.text and HIDDEN not in heard.text


# ------------------------------------------------------------------ long keypad entries


async def test_a_long_entry_at_a_menu_is_a_wrong_answer_and_the_call_goes_on(
        gateway: Gateway) -> None:
    caller = Caller(gateway.client, phone="+22376000501")
    await caller.dial()
    wrong = await caller.press(LONG_ENTRY)
    assert text("invalid") in wrong.text and "Pour Infos protection, tapez 1." in wrong.text
    assert wrong.first("Gather").attributes["numDigits"] == "1"
    assert "Vos droits" in (await caller.press("1")).text


async def test_a_long_entry_at_the_reference_prompt_is_a_wrong_answer_and_it_is_bounded(
        gateway: Gateway) -> None:
    caller = Caller(gateway.client, phone="+22376000502")
    await caller.dial()
    ask = await caller.press("3")
    assert "Entrez votre référence" in ask.text
    gather = ask.first("Gather")
    assert gather.attributes["numDigits"] == "8" and gather.attributes["finishOnKey"] == "#"
    wrong = await caller.press(LONG_ENTRY)
    assert text("check_number").split(".")[0] in wrong.text
    assert "Entrez votre référence" in wrong.text
    assert wrong.first("Gather").attributes["numDigits"] == "8"
    missing = await caller.press("12345674")  # a well-formed reference nobody has
    assert not missing.hangs_up


async def test_a_long_entry_where_words_are_recorded_asks_again(gateway: Gateway) -> None:
    caller = Caller(gateway.client, phone="+22376000503")
    await caller.dial()
    await caller.press("2")
    name = await caller.press("1")
    record = name.first("Record")
    wrong = Heard.of(await caller.post(record.attributes["action"], {"Digits": LONG_ENTRY}))
    caller.heard = wrong
    assert text("hint_name") in wrong.text and "Votre nom et prénom" in wrong.text
    assert "nationalité" in (await caller.speak()).text


async def test_a_long_entry_on_africastalking_is_a_wrong_answer(gateway: Gateway) -> None:
    caller = AtCaller(gateway.client, phone="+22376000504")
    await caller.dial(AT_CALLBACK)
    wrong = at_said(await caller.press(LONG_ENTRY))
    assert text("invalid") in wrong and "Pour Infos protection, tapez 1." in wrong
    ask = await caller.press("3")
    digits = ask.find("GetDigits")
    assert digits is not None and digits.attrib["numDigits"] == "8"
    assert "Entrez votre référence" in at_said(await caller.press(LONG_ENTRY))


# ------------------------------------------------------------------ recordings


async def assert_typed_answers_kept_as_text(done: str, redis: Redis) -> None:
    case = await read_case(redis, reference_in(done))
    assert case is not None
    assert case.answers["nationality"] == NATIONALITY  # the look-alike was refused
    assert case.answers["country"] == ODD_URL_TEXT  # kept as the words typed
    assert all(recordings.parse(value) is None for value in case.answers.values())


async def test_typed_recording_answers_over_ussd_are_text_or_refused(
        gateway: Gateway, redis: Redis) -> None:
    session = "ATUid_typed_recording"
    assert "Francais" in await gateway.dial(session)
    await gateway.press(session, "1")  # French
    await gateway.press(session, "2")
    await gateway.press(session, "1")
    assert text("hint_name") in await gateway.press(session, ODD_URL_TEXT)
    await gateway.press(session, NAME)
    assert text("hint_place") in await gateway.press(session, LOOKALIKE)
    await gateway.press(session, NATIONALITY)
    await gateway.press(session, ODD_URL_TEXT)  # the country: words, kept as typed
    shown = ""
    for typed in [CITY, "2", "2", "2", "1", "2", "1", "1", "1"]:
        shown = await gateway.press(session, typed)
    assert text("voice_recorded") not in shown
    done = await gateway.press(session, "1")
    assert "END" in done
    await assert_typed_answers_kept_as_text(done, redis)


async def test_typed_recording_answers_over_sms_are_text_or_refused(
        gateway: Gateway, redis: Redis) -> None:
    phone = "+22376000505"
    await gateway.text("Bonjour", phone=phone)
    await gateway.text("1", phone=phone)
    await gateway.text("2", phone=phone)
    await gateway.text("1", phone=phone)
    assert text("hint_name") in await gateway.text(ODD_URL_TEXT, phone=phone)
    await gateway.text(NAME, phone=phone)
    assert text("hint_place") in await gateway.text(LOOKALIKE, phone=phone)
    await gateway.text(NATIONALITY, phone=phone)
    await gateway.text(ODD_URL_TEXT, phone=phone)
    summary = ""
    for typed in [CITY, "2", "2", "2", "1", "2", "1", "1", "1"]:
        summary = await gateway.text(typed, phone=phone)
    assert ODD_URL_TEXT in summary and text("voice_recorded") not in summary
    done = await gateway.text("1", phone=phone)
    await assert_typed_answers_kept_as_text(done, redis)


@pytest.mark.parametrize("url", OFF_HOST_URLS)
async def test_a_recording_url_off_twilios_host_is_not_kept(
        gateway: Gateway, redis: Redis, url: str) -> None:
    caller = Caller(gateway.client, phone="+22376000506")
    await caller.dial()
    await caller.press("2")
    await caller.press("1")
    again = await caller.speak(url)
    assert "Votre nom et prénom" in again.text and again.first("Record")  # as if silent
    dump = str(await snapshot(redis))
    assert url not in dump and "evil" not in dump and "6379" not in dump
    assert "nationalité" in (await caller.speak()).text  # Twilio's own: kept


@pytest.mark.parametrize("url", [
    recording_url("RE1"), "https://africastalking.com.evil.example/r/1.mp3",
    "https://evil.example/voice.africastalking.com/1.mp3"])
async def test_a_recording_url_off_africastalkings_hosts_is_not_kept(
        gateway: Gateway, redis: Redis, url: str) -> None:
    caller = AtCaller(gateway.client, phone="+22376000507")
    await caller.dial(AT_CALLBACK)
    await caller.press("2")
    await caller.press("1")
    again = await caller.speak(url)
    assert "Votre nom" in " ".join(say.text or "" for say in again.iter("Say"))
    assert url not in str(await snapshot(redis))
    own = "https://voice.africastalking.com/recordings/9f2c-77ab.mp3"
    nationality = await caller.speak(own)
    assert "nationalité" in " ".join(say.text or "" for say in nationality.iter("Say"))
    state = [phone_state.parse(value).get("d") for key, value in (await snapshot(redis)).items()
             if ":ph:" in str(key) and str(key).count(":") == 3]
    assert state and f"recording 9f2c-77ab {own}" in str(state[0])



async def test_the_recording_not_kept_line_names_the_host_and_nothing_else_of_the_url(
        gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    """docs/gateways.md: the line names the host to add, never the URL (its path and
    query may carry a token); written as `helpline serve` writes it (JsonFormatter)."""
    caplog.set_level(logging.WARNING)
    caller = AtCaller(gateway.client, phone="+22376000508")
    await caller.dial(AT_CALLBACK)
    await caller.press("2")
    await caller.press("1")
    await caller.speak("https://Media.Recordings.example:8443/calling/RE77/x.mp3?token=s3cr3t#f")
    await caller.speak("https://+22376510009.example/r.mp3")
    found = [record for record in caplog.records
             if record.getMessage().startswith("recording not kept")]
    lines = [json.loads(JsonFormatter().format(record)) for record in found]
    assert [line["host"] for line in lines] == ["media.recordings.example", "[phone].example"]
    logged = json.dumps(lines)
    for part in ("RE77", "calling", "x.mp3", "token", "s3cr3t", "8443", "r.mp3", "22376510009"):
        assert part not in logged, part
