"""Speaking a screen (pure): options, numbers, chunks, recordings, the TwiML of a script."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import FormData

from bot.channels import twilio_voice as voice
from bot.channels.calls import WRONG_ENTRY
from bot.engine import recordings, speech, validators
from bot.engine.render import Limits, Reply, render
from bot.engine.session import Session
from bot.errors import MalformedRequest
from bot.types import Channel
from tests.factories import default_flow

FLOW = default_flow().flow
VOICE = Limits(Channel.VOICE)
TWILIO_URL = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1"


def spoken(state: str, language: str = "fr", **values: str) -> speech.Script:
    session = Session(state=state, language=language, vars=dict(values))
    return speech.script_of(render(FLOW, session, VOICE), FLOW)


def words(script: speech.Script) -> str:
    return " ".join(part.text for part in script.parts)


def test_a_menu_is_said_option_by_option_with_the_navigation_once() -> None:
    script = spoken("info")
    said = words(script)
    assert "Pour Vos droits, tapez 1." in said and "Pour Autres sujets, tapez 5." in said
    assert said.count("Pour revenir, tapez 0.") == 1
    assert script.expect is speech.Expect.KEY and script.digits == 1
    assert script.tts == "fr-FR"


def test_the_main_menu_offers_to_repeat_but_not_to_go_back() -> None:
    said = words(spoken("main", "en"))
    assert "For Return request, press 2." in said
    assert "press star" in said and "go back" not in said


def test_phone_numbers_and_references_are_read_digit_by_digit() -> None:
    said = words(spoken("traffic_3"))
    assert "Police au Mali: 1 7 ou 8 0, 0 0, 1 1, 1 5 (à confirmer)" in said
    done = words(spoken("avr_done", reference="12345678"))
    assert "Référence: 1 2 3 4, 5 6 7 8." in done
    assert "180 jours" in words(spoken("avr_consent"))  # a quantity stays a number


def test_a_name_is_recorded_after_saying_what_the_recording_is_for() -> None:
    script = spoken("avr_name")
    said = [part.text for part in script.parts]
    assert script.expect is speech.Expect.RECORD
    consent = next(i for i, text in enumerate(said) if "Seule notre équipe" in text)
    question = next(i for i, text in enumerate(said) if "Votre nom" in text)
    beep = next(i for i, text in enumerate(said) if "après le bip" in text)
    assert consent < question < beep


def test_a_reference_is_typed_on_the_keypad_and_ended_by_hash() -> None:
    script = spoken("track_ask")
    assert script.expect is speech.Expect.DIGITS and "puis dièse" in words(script)
    assert script.digits == 8  # the keypad stops at a reference's length


def test_bambara_is_said_with_the_french_voice_in_letters_it_can_read() -> None:
    script = spoken("main", "bm")
    assert script.tts == "" and speech.tts_voice(FLOW, "bm") == "fr-FR"
    assert "ɛ" not in words(script) and "ɲ" not in words(script)


@given(st.text(alphabet="abc de.fgh?ij\n", max_size=600))
def test_chunks_keep_every_word_and_stay_short(text: str) -> None:
    pieces = speech.chunks(text, limit=40)
    assert " ".join(pieces).split() == text.split()
    assert all(len(piece) <= 40 or " " not in piece for piece in pieces)


def test_a_recording_reference_is_a_free_text_answer_on_a_call_only() -> None:
    answer = f"recording RE1 {TWILIO_URL}"
    assert recordings.parse(answer) == recordings.Recording("RE1", TWILIO_URL)
    for name, hint in (("name", "hint_name"), ("place", "hint_place"), ("text", "hint_text"),
                       ("optional", "hint_text")):
        assert validators.check(name, answer, on_a_call=True).value == answer
        typed = validators.check(name, answer, on_a_call=False)
        assert not typed.ok and typed.hint == hint
    assert not validators.check("reference", answer, on_a_call=True).ok
    # Typed words that only look like one (another host) are words.
    assert validators.check("text", "recording RE1 https://a/x", on_a_call=False).value == (
        "recording RE1 https://a/x")
    assert recordings.recording("RE1", "http://insecure.example/x") is None
    assert recordings.recording("RE 1", TWILIO_URL) is None


@pytest.mark.parametrize("url", [
    "https://evil.example/x", "https://127.0.0.1:6379/x", "https://api.twilio.com:443/x",
    "https://u@api.twilio.com/x", "https://api.twilio.com./x", "https://api.twilio.com.evil/x",
    "https://xapi.twilio.com/x", "http://api.twilio.com/x", "https://[::1]/x",
    "https://africastalking.com.evil.example/x", "https://evilafricastalking.com/x",
])
def test_a_recording_off_the_gateways_hosts_is_none(url: str) -> None:
    assert recordings.recording("RE1", url) is None
    assert recordings.parse(f"recording RE1 {url}") is None


def test_each_gateway_keeps_only_its_own_recordings() -> None:
    at_url = "https://voice.africastalking.com/recordings/a1.mp3"
    assert recordings.recording("a1", at_url, recordings.AFRICASTALKING_HOSTS)
    assert recordings.recording("a1", "https://africastalking.com/r/a1.mp3",
                                recordings.AFRICASTALKING_HOSTS)
    assert recordings.recording("a1", at_url, recordings.TWILIO_HOSTS) is None
    assert recordings.recording("RE1", TWILIO_URL, recordings.AFRICASTALKING_HOSTS) is None


def form(**fields: str) -> FormData:
    return FormData({"CallSid": "CA1", "From": "+22376000001", **fields})


def test_a_call_request_names_its_input() -> None:
    start = voice.read_call(form(CallStatus="ringing"), None, "ML")
    assert start.screen is None and start.message_id == "CA1:0" and start.next_screen == 0
    pressed = voice.read_call(form(Digits="5"), "3", "ML")
    assert pressed.text == "5" and pressed.message_id == "CA1:4" and pressed.next_screen == 4
    star = voice.read_call(form(Digits="*"), "3", "ML")
    assert star.repeat and star.message_id == "CA1:3" and star.next_screen == 3
    typed = voice.read_call(form(Digits="12345678#"), "3", "ML")
    assert typed.text == "12345678"
    said = voice.read_call(form(RecordingSid="RE1", RecordingUrl=TWILIO_URL, Digits="#"), "3",
                           "ML")
    assert said.text == f"recording RE1 {TWILIO_URL}"
    assert voice.read_call(form(), "3", "ML").text == "#"  # nothing said: a skip
    assert voice.read_call(form(Digits="hangup"), "3", "ML").text == "#"
    assert voice.read_call(form(CallStatus="completed"), None, "ML").ended


def test_a_long_entry_is_a_wrong_answer_and_a_foreign_recording_is_silence() -> None:
    assert voice.read_call(form(Digits="1" * 40), "2", "ML").text == WRONG_ENTRY
    assert voice.read_call(form(Digits="1" * 32), "2", "ML").text == "1" * 32
    for url in ("ftp://x", "https://evil.example/r/RE1",
                "https://voice.africastalking.com/recordings/RE1.mp3"):
        assert voice.read_call(form(RecordingSid="RE1", RecordingUrl=url), "2", "ML").text == "#"


@pytest.mark.parametrize("bad", [{"n": "x"}, {"n": "99999"}, {"CallSid": ""}])
def test_a_malformed_call_request_is_refused(bad: dict[str, str]) -> None:
    screen = bad.pop("n", "2")
    with pytest.raises(MalformedRequest):
        voice.read_call(form(**bad), screen, "ML")


def test_a_keypad_screen_is_gathered_twice_then_the_numbers_and_hangup() -> None:
    script = spoken("main")
    speaker = voice.Speaker(tts="fr-FR", voices={"fr-FR": "Polly.Lea"}, audio_url=str)
    root = ET.fromstring(voice.twiml(script, action="https://h/x?n=1", speaker=speaker))
    assert [verb.tag for verb in root] == ["Gather", "Gather", *["Say"] * len(
        script.timeout), "Hangup"]
    assert root[0].attrib["numDigits"] == "1" and root[0][0].attrib["voice"] == "Polly.Lea"


def test_a_plain_reply_is_said_then_the_call_ends() -> None:
    script = speech.script_of(Reply(text="Service en panne. Police 17.", end=True), FLOW)
    assert script.expect is speech.Expect.NOTHING and len(script.parts) == 2


def test_each_language_choice_is_said_in_its_own_language() -> None:
    script = spoken("welcome")
    english = next(part for part in script.parts if "English" in part.text)
    assert english == speech.Part(text="For English, press 2.", tts="en-US")
    assert any(part.text == "Bamanankan: 3 digi." for part in script.parts)
    speaker = voice.Speaker(tts="fr-FR", voices={}, audio_url=str)
    root = ET.fromstring(voice.twiml(script, action="https://h/x?n=0", speaker=speaker))
    languages = {say.text: say.attrib["language"] for say in root[0]}
    assert languages["For English, press 2."] == "en-US"
    assert languages["Pour Français, tapez 1."] == "fr-FR"
