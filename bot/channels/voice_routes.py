"""The voice webhooks (docs/spec.md §4): a call, spoken from the conversation of SMS and USSD.

Like the other webhooks: unauthenticated ⇒ 403 with no side effect, malformed
⇒ 400, and never a 5xx: when the store is down the caller hears the fallback
with the emergency numbers. Twilio answers are TwiML, Africa's Talking ones
its own XML; both come from the same spoken script (bot/engine/speech.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.channels import africastalking_ussd as ussd
from bot.channels import africastalking_voice as at_voice
from bot.channels import outbound_calls
from bot.channels import twilio_voice as voice
from bot.channels.calls import SCREEN_PARAMETER, CallInput
from bot.channels.forms import read_form
from bot.conversation import InboundMessage
from bot.engine import speech
from bot.engine.render import Reply
from bot.engine.session import Opening
from bot.errors import MalformedRequest
from bot.observability import MESSAGES
from bot.types import Channel

if TYPE_CHECKING:
    from bot.channels.routes import Webhooks

TWIML_TYPE = "application/xml"
AUDIO_PATH = "/audio"
"""Recordings under the flow's `audio/` folder are served here (bot/app.py)."""


class VoiceOutput:
    """Where a call's answers point: action URLs and audio files, absolute when possible."""

    def __init__(self, public_url: str | None, voice_names: str) -> None:
        self.base = (public_url or "").rstrip("/")
        self.voices = voice.parse_voices(voice_names)

    def action(self, path: str, screen: int, **query: str) -> str:
        return f"{self.base}{path}?{urlencode({**query, SCREEN_PARAMETER: screen})}"

    def audio_url(self, source: str) -> str:
        if source.startswith(("https://", "http://")):
            return source
        return f"{self.base}{AUDIO_PATH}/{source.removeprefix('audio/')}"


def _hooks(request: Request) -> Webhooks:
    hooks: Webhooks = request.app.state.webhooks
    return hooks


async def _spoken(hooks: Webhooks, call: CallInput,
                  opening: Opening | None = None) -> speech.Script:
    """The conversation's answer to one input of a call, as a spoken script."""
    conversation = hooks.conversation
    flow = conversation.compiled.flow
    if call.phone is None:
        # A hidden number cannot be kept apart from other callers: the numbers, then goodbye.
        MESSAGES.labels(Channel.VOICE, "not_a_phone").inc()
        language = flow.default_language
        text = speech.say_filled(flow, flow.text("voice_hidden_number", language), language,
                                 {}, {})
        return speech.script_of(Reply(text=text, end=True), flow, language)
    reply = await hooks.answer(InboundMessage(
        Channel.VOICE, call.phone, call.text, restart=call.screen is None,
        message_id=call.message_id, opening=opening if call.screen is None else None,
    ))
    language = conversation.language_hint(conversation.pseudonym(call.phone))
    return speech.script_of(reply, flow, language)


async def twilio_voice_webhook(request: Request) -> Response:
    hooks = _hooks(request)
    try:
        form = await read_form(request)
    except MalformedRequest as error:
        return hooks.refuse(Channel.VOICE, error)
    if not hooks.signed_by_twilio(request, form):
        return hooks.forbid(Channel.VOICE)
    try:
        call = voice.read_call(form, request.query_params.get(SCREEN_PARAMETER), hooks.region)
    except MalformedRequest as error:
        return hooks.refuse(Channel.VOICE, error)
    if call.ended:
        return Response(voice.silence(), media_type=TWIML_TYPE)
    if outbound_calls.answered_by_machine(form):
        # Not a word to a mailbox; the check-in ends unanswered and is called again once
        # (docs/followup.md).
        MESSAGES.labels(Channel.VOICE, "machine_hung_up").inc()
        followup = request.query_params.get(outbound_calls.FOLLOWUP_PARAMETER)
        if followup is not None:
            await hooks.record_status(outbound_calls.voicemail(form, followup))
        return Response(voice.hang_up(), media_type=TWIML_TYPE)
    script = await _spoken(hooks, call, outbound_calls.opening(
        hooks.conversation.compiled.flow, form, request.query_params))
    output: VoiceOutput = hooks.voice_output
    flow = hooks.conversation.compiled.flow
    speaker = voice.Speaker(tts=script.tts or speech.tts_voice(flow, script.language),
                            voices=output.voices, audio_url=output.audio_url)
    body = voice.twiml(script, action=output.action(voice.VOICE_PATH, call.next_screen),
                       speaker=speaker)
    return Response(body, media_type=TWIML_TYPE)


async def africastalking_voice_webhook(request: Request) -> Response:
    hooks = _hooks(request)
    given = request.query_params.get(ussd.KEY_PARAMETER)
    if hooks.ussd_secret is None:
        hooks.warn_unauthenticated("Africa's Talking", "HELPLINE_USSD_SECRET")
    elif not ussd.key_matches(hooks.ussd_secret, given):
        return hooks.forbid(Channel.VOICE)
    try:
        call = at_voice.read_call(await read_form(request),
                                  request.query_params.get(SCREEN_PARAMETER), hooks.region)
    except MalformedRequest as error:
        return hooks.refuse(Channel.VOICE, error)
    if call.ended:  # the call is over: Africa's Talking reports its duration and cost
        return Response(at_voice.nothing(), media_type=at_voice.XML_TYPE)
    script = await _spoken(hooks, call)
    output: VoiceOutput = hooks.voice_output
    # Its callbacks carry the key the request came with (Africa's Talking signs nothing).
    query = {ussd.KEY_PARAMETER: given} if given else {}
    body = at_voice.xml(script, audio_url=output.audio_url,
                        callback=output.action(at_voice.VOICE_PATH, call.next_screen, **query))
    return Response(body, media_type=at_voice.XML_TYPE)


AUDIO_TYPES = {".mp3": "audio/mpeg", ".wav": "audio/wav", ".ogg": "audio/ogg"}


async def serve_audio(request: Request) -> Response:
    """A recording of the flow (`audio:` files under `flows/audio/`), for the gateways to play."""
    folder = (_hooks(request).conversation.compiled.flow.path.parent / "audio").resolve()
    try:
        wanted = (folder / request.path_params["path"]).resolve()
        found = wanted.is_relative_to(folder) and wanted.is_file()
    except (ValueError, OSError):  # a null byte, a name too long: no recording either
        wanted, found = folder, False
    media_type = AUDIO_TYPES.get(wanted.suffix.lower())
    if media_type is None or not found:
        return PlainTextResponse("no such recording", status_code=404)
    return FileResponse(wanted, media_type=media_type)


AUDIO_ROUTES = [Route(AUDIO_PATH + "/{path:path}", serve_audio, methods=["GET", "HEAD"])]

VOICE_ROUTES = [
    Route(voice.VOICE_PATH, twilio_voice_webhook, methods=["POST"]),
    Route(at_voice.VOICE_PATH, africastalking_voice_webhook, methods=["POST"]),
]
