"""The gateway webhooks of docs/spec.md §4, served by the gateway lane (bot.channels.gateway).

Every answer to a gateway is a 2xx unless the request itself is at fault
(403 unauthenticated, 4xx malformed): when the store is down, slow or busy,
the migrant gets the static fallback with the emergency numbers instead.
A new webhook is one more entry in `ROUTES`.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote_plus

from redis.exceptions import RedisError
from starlette.datastructures import URL, FormData
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from twilio.twiml.voice_response import VoiceResponse

from bot.channels import africastalking_ussd as ussd
from bot.channels import outbound_calls
from bot.channels import twilio_sms as twilio
from bot.channels.deadlines import Deadlines
from bot.channels.forms import form_fields, parse_form, require_form_type
from bot.channels.gateway import Answer, GatewayRequest, GatewayRoute, text
from bot.channels.status_backlog import StatusBacklog
from bot.channels.voice_routes import VOICE_ROUTES, VoiceOutput
from bot.conversation import Conversation, InboundMessage, Outcome
from bot.conversation.loop import utcnow
from bot.engine.render import Reply, fill
from bot.engine.spelling import spelled
from bot.errors import MalformedRequest, PhoneBusy
from bot.flows.checked import load_checked
from bot.observability import (
    DELIVERY_STATUSES,
    FALLBACKS,
    HOP_SECONDS,
    MESSAGES,
    RATE_LIMITED_PHONES,
    REJECTED,
)
from bot.outreach.broadcasts import BROADCAST_PARAMETER
from bot.privacy import Senders
from bot.settings import Settings
from bot.types import Channel

log = logging.getLogger(__name__)

HOP_DEADLINE_SECONDS = 1.5
"""Past this, the fallback is answered: gateways must hear back within 2 s."""
FALLBACK_LOG_INTERVAL = 10.0
SMS_PATH = "/webhooks/twilio/sms"
STATUS_PATH = "/webhooks/twilio/status"
USSD_PATH = "/webhooks/ussd/africastalking"
USSD_TYPE = ussd.TEXT_TYPE.encode()
TWIML_TYPE = twilio.TWIML_TYPE.encode()

DeliverySink = Callable[[twilio.DeliveryStatus], Awaitable[None]]


class SignedRequest(Protocol):
    """A Starlette `Request` or a `GatewayRequest`: what a signature check reads."""

    @property
    def scope(self) -> Any: ...

    @property
    def url(self) -> URL: ...

    @property
    def headers(self) -> Any: ...


async def log_delivery(status: twilio.DeliveryStatus) -> None:
    log.info("delivery status", extra={"message_sid": status.message_sid,
                                        "delivery": status.status})


class Webhooks:
    """What the webhooks need, made once at start-up (`app.state.webhooks`)."""

    def __init__(self, *, conversation: Conversation, settings: Settings,
                 delivery: DeliverySink = log_delivery) -> None:
        self.conversation = conversation
        self.settings = settings
        self.region = settings.default_region
        self.senders = Senders(conversation.pii_key, settings.default_region)
        self.twilio = twilio.TwilioSignature(settings.twilio_auth_token, settings.public_url)
        self.ussd_secret = settings.ussd_secret
        self.ussd_registered_query = None if settings.ussd_secret is None else (
            f"{ussd.KEY_PARAMETER}={quote_plus(settings.ussd_secret.get_secret_value())}"
            .encode())
        self.delivery = delivery
        self.statuses_waiting = StatusBacklog(lambda status: self.delivery(status),
                                              spool=settings.data_dir)
        self.deadlines = Deadlines(HOP_DEADLINE_SECONDS)
        self.voice_output = VoiceOutput(settings.public_url, settings.voice_names)
        flow = conversation.compiled.flow
        self._fallbacks = {
            (language, channel): spelled(flow, language, channel,
                                         fill(flow, flow.text("fallback", language), language,
                                              {}, {}))
            for language in flow.languages for channel in Channel
        }
        self._warned: set[str] = set()
        self._last_fallback_log = 0.0
        self._fallbacks_unlogged = 0
        # Metric children looked up once: a hop increments, it does not look up labels.
        self._answered = {channel: {outcome: MESSAGES.labels(channel, outcome)
                                    for outcome in Outcome} for channel in Channel}
        self._hop_seconds = {channel: HOP_SECONDS.labels(channel) for channel in Channel}

    async def answer(self, message: InboundMessage) -> Reply:
        """The conversation's reply; the fallback when it cannot be had in time."""
        started = time.perf_counter()
        task = self.deadlines.enter()
        try:
            try:
                handled = await self.conversation.process(message)
            finally:
                late = self.deadlines.leave(task)
        except asyncio.CancelledError:
            if late:  # cancelled for its deadline, not by the server
                return self._fallback(message, "timeout")
            raise
        except TimeoutError:  # Redis's socket timeout
            return self._fallback(message, "timeout")
        except (RedisError, OSError):
            return self._fallback(message, "store_down")
        except PhoneBusy:
            return self._fallback(message, "busy")
        except Exception:
            # Last resort, on purpose: a migrant in danger gets the emergency numbers,
            # never a 5xx; the bug is logged with its traceback and counted.
            log.exception("conversation failed", extra={"channel": message.channel})
            return self._fallback(message, "error")
        self._answered[message.channel][handled.outcome].inc()
        if handled.newly_limited:
            RATE_LIMITED_PHONES.inc()
        self._hop_seconds[message.channel].observe(time.perf_counter() - started)
        return handled.reply

    async def record_status(self, status: twilio.DeliveryStatus) -> None:
        """A status Twilio told, to the store; never raises. While the store does not
        answer it waits in `statuses_waiting` (Twilio does not tell it again)."""
        try:
            async with asyncio.timeout(HOP_DEADLINE_SECONDS):
                await self.delivery(status)
        except (RedisError, OSError, TimeoutError):
            log.warning("delivery status kept until the store answers",
                        extra={"message_sid": status.message_sid})
            self.statuses_waiting.add(status)
        except Exception:
            # As for messages: the gateway never gets a 5xx; the bug is logged.
            log.exception("delivery status not recorded",
                          extra={"message_sid": status.message_sid})

    async def aclose(self) -> None:
        """Wait for the conversation's background work and the statuses still waiting."""
        self.deadlines.close()
        await self.statuses_waiting.aclose()
        await self.conversation.aclose()

    def fallback_text(self, language: str | None = None,
                      channel: Channel = Channel.SMS) -> str:
        """The static fallback (emergency numbers), in `language` or the flow's default,
        spelled for `channel`."""
        flow = self.conversation.compiled.flow
        return self._fallbacks.get((language or flow.default_language, channel),
                                   self._fallbacks[flow.default_language, channel])

    def _fallback(self, message: InboundMessage, reason: str) -> Reply:
        FALLBACKS.labels(message.channel, reason).inc()
        now = time.monotonic()
        self._fallbacks_unlogged += 1
        if now - self._last_fallback_log >= FALLBACK_LOG_INTERVAL:
            log.warning("fallback answered", extra={"channel": message.channel, "reason": reason,
                                                    "count": self._fallbacks_unlogged})
            self._last_fallback_log = now
            self._fallbacks_unlogged = 0
        language = self.conversation.language_hint(self.conversation.pseudonym(message.phone))
        return Reply(text=self._fallbacks[language, message.channel], end=True)

    def ussd_key_matches(self, request: GatewayRequest) -> bool:
        """The callback URL's key is the USSD secret (the registered URL's query, `key=…`
        alone, compared without parsing it)."""
        if self.ussd_registered_query is not None and hmac.compare_digest(
                request.scope.get("query_string", b""), self.ussd_registered_query):
            return True
        return ussd.key_matches(self.ussd_secret, request.query_params.get(ussd.KEY_PARAMETER))

    def warn_unauthenticated(self, gateway: str, setting: str) -> None:
        if gateway not in self._warned:
            self._warned.add(gateway)
            log.warning(f"{gateway} requests are not authenticated: {setting} is unset (dev)")

    def refused(self, channel: Channel, error: MalformedRequest) -> Answer:
        REJECTED.labels(channel, "400").inc()
        return text(str(error), 400)

    def forbidden(self, channel: Channel) -> Answer:
        REJECTED.labels(channel, "403").inc()
        return text("forbidden", 403)

    def refuse(self, channel: Channel, error: MalformedRequest) -> Response:
        """As `refused`, for a Starlette endpoint."""
        answer = self.refused(channel, error)
        return PlainTextResponse(answer.body.decode(), status_code=answer.status)

    def forbid(self, channel: Channel) -> Response:
        """As `forbidden`, for a Starlette endpoint."""
        return PlainTextResponse(self.forbidden(channel).body.decode(), status_code=403)

    def signed_by_twilio(self, request: SignedRequest, form: FormData) -> bool:
        if not self.twilio.enforced:
            self.warn_unauthenticated("Twilio", "TWILIO_AUTH_TOKEN")
            return True
        return self.twilio.valid(
            self.twilio.url(request.scope, str(request.url)),
            form,
            request.headers.get(twilio.SIGNATURE_HEADER),
            request.headers.get(twilio.SIGNATURE_SETTINGS_HEADER),
        )


def make_webhooks(settings: Settings, redis: Any,
                  clock: Callable[[], datetime] = utcnow) -> Webhooks:
    """The webhooks' conversation on `redis` (the store's `scripts` client), with the flow
    compiled once for the process."""
    compiled = load_checked(settings.flow, settings.ussd_max_chars)
    conversation = Conversation(redis=redis, compiled=compiled, settings=settings,
                                clock=clock, sms_rate_limit=settings.rate_limit)
    return Webhooks(conversation=conversation, settings=settings)


def request_form(request: GatewayRequest) -> FormData:
    """The body's form fields; MalformedRequest when it is no URL-encoded UTF-8 form."""
    require_form_type(request.content_type)
    return parse_form(request.body)


def _signed_twilio_form(request: GatewayRequest, hooks: Webhooks) -> FormData | Answer:
    """The request's form once Twilio's signature holds; else the 4xx to answer."""
    try:
        form = request_form(request)
    except MalformedRequest as error:
        return hooks.refused(Channel.SMS, error)
    if not hooks.signed_by_twilio(request, form):
        return hooks.forbidden(Channel.SMS)
    return form


async def twilio_sms_webhook(hooks: Webhooks, request: GatewayRequest) -> Answer:
    form = _signed_twilio_form(request, hooks)
    if isinstance(form, Answer):
        return form
    try:
        sms = twilio.read_sms(form, hooks.region)
    except MalformedRequest as error:
        return hooks.refused(Channel.SMS, error)
    if sms.phone is None:
        MESSAGES.labels(Channel.SMS, "not_a_phone").inc()
        reply = Reply(text="")
    else:
        reply = await hooks.answer(InboundMessage(Channel.SMS, sms.phone, sms.body,
                                                  message_id=sms.message_sid,
                                                  whatsapp=sms.whatsapp))
    return Answer(200, twilio.twiml(reply).encode(), TWIML_TYPE)


async def twilio_status_webhook(hooks: Webhooks, request: GatewayRequest) -> Answer:
    form = _signed_twilio_form(request, hooks)
    if isinstance(form, Answer):
        return form
    followup = request.query_params.get(outbound_calls.FOLLOWUP_PARAMETER)
    if followup is not None:  # a check-in call we placed: how it ended
        call_end = outbound_calls.read_call_end(form, followup)
        if call_end is not None:
            await hooks.record_status(call_end)
        return NO_CONTENT
    try:
        status = twilio.read_status(form, request.query_params.get(BROADCAST_PARAMETER))
    except MalformedRequest as error:
        return hooks.refused(Channel.SMS, error)
    known = status.status if status.status in twilio.DELIVERY_STATUSES else "other"
    DELIVERY_STATUSES.labels(known).inc()
    await hooks.record_status(status)
    return NO_CONTENT


async def africastalking_ussd_webhook(hooks: Webhooks, request: GatewayRequest) -> Answer:
    if hooks.ussd_secret is None:
        hooks.warn_unauthenticated("Africa's Talking", "HELPLINE_USSD_SECRET")
    elif not hooks.ussd_key_matches(request):
        return hooks.forbidden(Channel.USSD)
    try:
        require_form_type(request.content_type)
        hop = ussd.read_hop(form_fields(request.body), hooks.senders.sender)
    except MalformedRequest as error:
        return hooks.refused(Channel.USSD, error)
    reply = await hooks.answer(InboundMessage(
        Channel.USSD, hop.phone, hop.text, message_id=hop.message_id, ussd_session=hop.session_id,
        pseudonym=hop.pseudonym,
    ))
    return Answer(200, ussd.screen(reply).encode(), USSD_TYPE)


NO_CONTENT = Answer(204, content_type=None)


def ussd_fallback(hooks: Webhooks, request: GatewayRequest) -> Answer:
    return Answer(200, ussd.screen(Reply(hooks.fallback_text(channel=Channel.USSD),
                                         end=True)).encode(), USSD_TYPE)


def sms_fallback(hooks: Webhooks, request: GatewayRequest) -> Answer:
    return Answer(200, twilio.twiml(Reply(hooks.fallback_text())).encode(), TWIML_TYPE)


def status_fallback(hooks: Webhooks, request: GatewayRequest) -> Answer:
    return NO_CONTENT


def voice_fallback(hooks: Webhooks, request: GatewayRequest) -> Answer:
    """The emergency numbers said; the call ends with the document (Twilio and Africa's
    Talking read the same `<Response><Say>`)."""
    response = VoiceResponse()
    response.say(hooks.fallback_text(channel=Channel.VOICE))
    return Answer(200, str(response.to_xml()).encode(), TWIML_TYPE)


ROUTES: list[GatewayRoute | Route] = [
    GatewayRoute(SMS_PATH, twilio_sms_webhook, sms_fallback, Channel.SMS),
    GatewayRoute(STATUS_PATH, twilio_status_webhook, status_fallback, Channel.SMS),
    GatewayRoute(USSD_PATH, africastalking_ussd_webhook, ussd_fallback, Channel.USSD),
    *(GatewayRoute.starlette(route, voice_fallback, Channel.VOICE) for route in VOICE_ROUTES),
]
