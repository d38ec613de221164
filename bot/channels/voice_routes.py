"""The voice webhooks (SPEC §4): a call, spoken from the same conversation as SMS and USSD.

Like the other webhooks: unauthenticated ⇒ 403 with no side effect, malformed
⇒ 400, and never a 5xx: when the store is down the caller hears the fallback
with the emergency numbers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.channels import twilio_voice as voice
from bot.channels.forms import read_form
from bot.conversation import InboundMessage
from bot.engine import speech
from bot.engine.render import Reply
from bot.errors import MalformedRequest
from bot.observability import MESSAGES
from bot.types import Channel

if TYPE_CHECKING:
    from bot.channels.routes import Webhooks

TWIML_TYPE = "application/xml"
AUDIO_PATH = "/audio"
"""Recordings under the flow's `audio/` folder are served here (bot/app.py)."""


class VoiceOutput:
    """Where a call's TwiML points: action URLs and audio files, made absolute when possible."""

    def __init__(self, public_url: str | None, voice_names: str) -> None:
        self.base = (public_url or "").rstrip("/")
        self.voices = voice.parse_voices(voice_names)

    def action(self, path: str, screen: int) -> str:
        return f"{self.base}{path}?{voice.SCREEN_PARAMETER}={screen}"

    def audio_url(self, source: str) -> str:
        if source.startswith(("https://", "http://")):
            return source
        return f"{self.base}{AUDIO_PATH}/{source.removeprefix('audio/')}"


def _hooks(request: Request) -> Webhooks:
    hooks: Webhooks = request.app.state.webhooks
    return hooks


async def twilio_voice_webhook(request: Request) -> Response:
    hooks = _hooks(request)
    try:
        form = await read_form(request)
    except MalformedRequest as error:
        return hooks.refuse(Channel.VOICE, error)
    if not hooks.signed_by_twilio(request, form):
        return hooks.forbid(Channel.VOICE)
    try:
        call = voice.read_call(form, request.query_params.get(voice.SCREEN_PARAMETER),
                               hooks.region)
    except MalformedRequest as error:
        return hooks.refuse(Channel.VOICE, error)
    if call.ended:
        return Response(voice.silence(), media_type=TWIML_TYPE)
    conversation = hooks.conversation
    flow = conversation.compiled.flow
    language = None
    if call.phone is None:
        # A hidden number cannot be kept apart from other callers: the numbers, then goodbye.
        MESSAGES.labels(Channel.VOICE, "not_a_phone").inc()
        language = flow.default_language
        reply = Reply(text=speech.say_filled(flow, flow.text("voice_hidden_number", language),
                                             language, {}, {}), end=True)
    else:
        reply = await hooks.answer(InboundMessage(
            Channel.VOICE, call.phone, call.text, restart=call.screen is None,
            message_id=call.message_id,
        ))
        language = conversation.language_hint(conversation.pseudonym(call.phone))
    script = speech.script_of(reply, flow, language)
    output: VoiceOutput = hooks.voice_output
    speaker = voice.Speaker(tts=script.tts or speech.tts_voice(flow, script.language),
                            voices=output.voices, audio_url=output.audio_url)
    body = voice.twiml(script, action=output.action(voice.VOICE_PATH, call.next_screen),
                       speaker=speaker)
    return Response(body, media_type=TWIML_TYPE)


VOICE_ROUTES = [
    Route(voice.VOICE_PATH, twilio_voice_webhook, methods=["POST"]),
]
