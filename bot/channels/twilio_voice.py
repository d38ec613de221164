"""Twilio Programmable Voice: read a call's request, answer in TwiML (the SDK's VoiceResponse).

One call is one conversation (bot/channels/calls.py): the first request of a
`CallSid` starts it, each `<Gather>` or `<Record>` action brings one input.
The signature is checked like SMS (voice_routes.py), against `HELPLINE_PUBLIC_URL`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData
from twilio.twiml.voice_response import VoiceResponse

from bot.channels.calls import CallInput, call_input
from bot.channels.outbound_calls import migrant_field
from bot.engine import recordings
from bot.engine.speech import Expect, Part, Script
from bot.errors import MalformedRequest

VOICE_PATH = "/webhooks/twilio/voice"
GATHER_TIMEOUT_SECONDS = 7
"""Silence after a screen before it is said once more (then the call ends)."""
RECORD_MAX_SECONDS = 30
RECORD_SILENCE_SECONDS = 4
ENDED_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
"""A status callback sent here by mistake: nothing to say, nothing to change."""


def read_call(form: FormData, screen: str | None, default_region: str) -> CallInput:
    call_sid = form.get("CallSid")
    sender = form.get(migrant_field(form))  # `To` on a call we placed (docs/spec.md §4)
    if not isinstance(call_sid, str) or not isinstance(sender, str):
        raise MalformedRequest("CallSid and From are required")
    digits = form.get("Digits", "")
    url, recording_sid = form.get("RecordingUrl", ""), form.get("RecordingSid", "")
    if not isinstance(digits, str) or not isinstance(url, str) or not isinstance(
            recording_sid, str):
        raise MalformedRequest("Digits and RecordingUrl must be single fields")
    return call_input(
        call_id=call_sid, sender=sender, screen=screen, default_region=default_region,
        digits=digits, recording=(recording_sid, url) if url else None,
        recording_hosts=recordings.TWILIO_HOSTS,
        ended=str(form.get("CallStatus", "")).lower() in ENDED_STATUSES,
    )


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
                language = part.tts or self.tts
                verb.say(part.text, language=language or None, voice=self.voices.get(language))


def twiml(script: Script, *, action: str, speaker: Speaker) -> str:
    """The TwiML of one screen.

    Keypad: a DTMF `<Gather>` around the screen (`numDigits`: a menu's key length, a
    reference's 8 digits; `#` ends a shorter entry), the screen once more if nothing
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
                num_digits=script.digits or None,
            )
            speaker.add(gather, script.parts)
        speaker.add(response, script.timeout)
        response.hangup()
    return str(response.to_xml())


def silence() -> str:
    return str(VoiceResponse().to_xml())


def hang_up() -> str:
    """`<Hangup/>` and nothing else: what a voicemail answering our call gets."""
    response = VoiceResponse()
    response.hangup()
    return str(response.to_xml())
