"""Twilio Programmable Voice: read a call's request, answer in TwiML (the SDK's VoiceResponse).

One call is one conversation: the first request of a `CallSid` starts it (a
waiting return request is offered to continue), each `<Gather>` or `<Record>`
action brings one input. Every action URL carries the number of the screen it
answers (`?n=`), so a request names the input it brings: a retried request is
answered as before, `*` asks for the screen that request produced once more.
The signature is checked like SMS (routes.py), against `HELPLINE_PUBLIC_URL`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData
from twilio.twiml.voice_response import VoiceResponse

from bot.channels.forms import sender_phone
from bot.engine import recordings
from bot.engine.speech import Expect, Part, Script
from bot.engine.validators import SKIP
from bot.errors import MalformedRequest

VOICE_PATH = "/webhooks/twilio/voice"
SCREEN_PARAMETER = "n"
REPEAT = "*"
GATHER_TIMEOUT_SECONDS = 7
"""Silence after a screen before it is said once more (then the call ends)."""
RECORD_MAX_SECONDS = 30
RECORD_SILENCE_SECONDS = 4
MAX_SCREENS = 10_000
ENDED_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
"""A status callback sent here by mistake: nothing to say, nothing to change."""
MAX_SID = 64
MAX_DIGITS = 32


@dataclass(frozen=True)
class CallInput:
    call_sid: str
    phone: str | None
    """E.164, or None for a hidden or non-phone caller."""
    screen: int | None
    """The screen this request answers (None: the call has just started)."""
    text: str = ""
    repeat: bool = False
    ended: bool = False

    @property
    def message_id(self) -> str:
        """The input's id: a retry repeats it; `*` names the request that made the screen."""
        if self.screen is None:
            return f"{self.call_sid}:0"
        return f"{self.call_sid}:{self.screen if self.repeat else self.screen + 1}"

    @property
    def next_screen(self) -> int:
        """The number of the screen the answer to this request is."""
        if self.screen is None:
            return 0
        return self.screen if self.repeat else self.screen + 1


def read_call(form: FormData, screen: str | None, default_region: str) -> CallInput:
    call_sid = form.get("CallSid")
    sender = form.get("From")
    if (not isinstance(call_sid, str) or not call_sid or len(call_sid) > MAX_SID
            or not isinstance(sender, str)):
        raise MalformedRequest("CallSid and From are required")
    number: int | None = None
    if screen is not None:
        if not screen.isdigit() or int(screen) > MAX_SCREENS:
            raise MalformedRequest(f"{SCREEN_PARAMETER} must be a screen number")
        number = int(screen)
    phone = sender_phone(sender, default_region) if sender else None
    if str(form.get("CallStatus", "")).lower() in ENDED_STATUSES:
        return CallInput(call_sid, phone, number, ended=True)
    digits = form.get("Digits", "")
    if not isinstance(digits, str) or len(digits) > MAX_DIGITS:
        raise MalformedRequest("Digits is not a keypad entry")
    url, recording_sid = form.get("RecordingUrl", ""), form.get("RecordingSid", "")
    if isinstance(url, str) and url and isinstance(recording_sid, str):
        found = recordings.recording(recording_sid, url)
        if found is None:
            raise MalformedRequest("RecordingUrl and RecordingSid are not a recording")
        return CallInput(call_sid, phone, number, text=found.as_answer())
    if number is None:
        return CallInput(call_sid, phone, None)
    if digits and set(digits) == {REPEAT}:
        return CallInput(call_sid, phone, number, repeat=True)
    entry = digits.rstrip("#").replace(REPEAT, "")
    # Nothing recorded (the caller pressed # at once, or stayed silent): a skip.
    return CallInput(call_sid, phone, number, text=entry or SKIP)


def parse_voices(setting: str) -> dict[str, str]:
    """`HELPLINE_VOICE_NAMES` ("fr-FR=Polly.Lea,en-US=Polly.Joanna"): a voice per TTS language."""
    voices: dict[str, str] = {}
    for entry in setting.split(","):
        language, _, voice = entry.partition("=")
        if language.strip() and voice.strip():
            voices[language.strip()] = voice.strip()
    return voices


@dataclass(frozen=True)
class Speaker:
    """How parts of a script are said: TTS language and voice, and where audio files live."""

    tts: str
    voices: Mapping[str, str]
    audio_url: Callable[[str], str]

    def add(self, verb: Any, parts: tuple[Part, ...]) -> None:
        """Say or play `parts` inside `verb` (the `<Response>` or a `<Gather>`)."""
        for part in parts:
            if part.audio:
                verb.play(self.audio_url(part.audio))
            else:
                verb.say(part.text, language=self.tts or None, voice=self.voices.get(self.tts))


def twiml(script: Script, *, action: str, speaker: Speaker) -> str:
    """The TwiML of one screen.

    Keypad: a DTMF `<Gather>` around the screen, the screen once more if nothing
    was pressed, then the emergency numbers and `<Hangup/>` (Twilio goes on to
    the next verb when a `<Gather>` times out). Speech: the screen, `<Record>`,
    and a `<Redirect>` for when nothing was said. End: the screen, `<Hangup/>`.
    """
    response = VoiceResponse()
    if script.expect is Expect.NOTHING:
        speaker.add(response, script.parts)
        response.hangup()
    elif script.expect is Expect.RECORD:
        speaker.add(response, script.parts)
        response.record(action=action, method="POST", finish_on_key="#",
                        max_length=RECORD_MAX_SECONDS, timeout=RECORD_SILENCE_SECONDS,
                        play_beep=True)
        response.redirect(action, method="POST")
    else:
        for _ in range(2):
            gather = response.gather(
                input="dtmf", action=action, method="POST", timeout=GATHER_TIMEOUT_SECONDS,
                finish_on_key="#", action_on_empty_result=False,
                num_digits=script.digits if script.expect is Expect.KEY else None,
            )
            speaker.add(gather, script.parts)
        speaker.add(response, script.timeout)
        response.hangup()
    return str(response.to_xml())


def silence() -> str:
    return str(VoiceResponse().to_xml())
