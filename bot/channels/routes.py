"""The gateway webhooks of SPEC §4, as lean Starlette routes (no dependency machinery).

Every answer to a gateway is a 2xx unless the request itself is at fault
(403 unauthenticated, 4xx malformed): when the store is down, slow or busy,
the migrant gets the static fallback with the emergency numbers instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.channels import africastalking_ussd as ussd
from bot.channels import twilio_sms as twilio
from bot.channels.forms import read_form
from bot.channels.voice_routes import VOICE_ROUTES, VoiceOutput
from bot.conversation import Conversation, InboundMessage
from bot.engine.render import Reply, fill
from bot.errors import MalformedRequest, PhoneBusy, RequestTooLarge
from bot.flows.checked import load_checked
from bot.observability import (
    DELIVERY_STATUSES,
    FALLBACKS,
    HOP_SECONDS,
    MESSAGES,
    RATE_LIMITED_PHONES,
    REJECTED,
)
from bot.settings import Settings
from bot.types import Channel

log = logging.getLogger(__name__)

HOP_DEADLINE_SECONDS = 1.5
"""Past this, the fallback is answered: gateways must hear back within 2 s."""
FALLBACK_LOG_INTERVAL = 10.0
SMS_PATH = "/webhooks/twilio/sms"
STATUS_PATH = "/webhooks/twilio/status"
USSD_PATH = "/webhooks/ussd/africastalking"

DeliverySink = Callable[[twilio.DeliveryStatus], Awaitable[None]]


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
        self.twilio = twilio.TwilioSignature(settings.twilio_auth_token, settings.public_url)
        self.ussd_secret = settings.ussd_secret
        self.delivery = delivery
        self.voice_output = VoiceOutput(settings.public_url, settings.voice_names)
        flow = conversation.compiled.flow
        self._fallbacks = {
            language: fill(flow, flow.text("fallback", language), language, {}, {})
            for language in flow.languages
        }
        self._warned: set[str] = set()
        self._last_fallback_log = 0.0
        self._fallbacks_unlogged = 0

    async def answer(self, message: InboundMessage) -> Reply:
        """The conversation's reply; the fallback when it cannot be had in time."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(HOP_DEADLINE_SECONDS):
                handled = await self.conversation.process(message)
        except TimeoutError:
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
        MESSAGES.labels(message.channel, handled.outcome).inc()
        if handled.newly_limited:
            RATE_LIMITED_PHONES.inc()
        HOP_SECONDS.labels(message.channel).observe(time.perf_counter() - started)
        return handled.reply

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
        return Reply(text=self._fallbacks[language], end=True)

    def warn_unauthenticated(self, gateway: str, setting: str) -> None:
        if gateway not in self._warned:
            self._warned.add(gateway)
            log.warning(f"{gateway} requests are not authenticated: {setting} is unset (dev)")

    def refuse(self, channel: Channel, error: MalformedRequest) -> Response:
        status = 413 if isinstance(error, RequestTooLarge) else 400
        REJECTED.labels(channel, str(status)).inc()
        return PlainTextResponse(str(error), status_code=status)

    def forbid(self, channel: Channel) -> Response:
        REJECTED.labels(channel, "403").inc()
        return PlainTextResponse("forbidden", status_code=403)

    def signed_by_twilio(self, request: Request, form: FormData) -> bool:
        if not self.twilio.enforced:
            self.warn_unauthenticated("Twilio", "TWILIO_AUTH_TOKEN")
            return True
        return self.twilio.valid(
            self.twilio.url(request.scope, str(request.url)),
            form,
            request.headers.get(twilio.SIGNATURE_HEADER),
            request.headers.get(twilio.SIGNATURE_SETTINGS_HEADER),
        )


def make_webhooks(settings: Settings, redis: Any) -> Webhooks:
    """The webhooks' conversation on `redis`, with the flow compiled once for the process."""
    compiled = load_checked(settings.flow, settings.ussd_max_chars)
    conversation = Conversation(redis=redis, compiled=compiled, settings=settings,
                                sms_rate_limit=settings.rate_limit)
    return Webhooks(conversation=conversation, settings=settings)


def _webhooks(request: Request) -> Webhooks:
    hooks: Webhooks = request.app.state.webhooks
    return hooks


async def _signed_twilio_form(request: Request, hooks: Webhooks) -> FormData | Response:
    """The request's form once Twilio's signature holds; else the 4xx to answer."""
    try:
        form = await read_form(request)
    except MalformedRequest as error:
        return hooks.refuse(Channel.SMS, error)
    if not hooks.signed_by_twilio(request, form):
        return hooks.forbid(Channel.SMS)
    return form


async def twilio_sms_webhook(request: Request) -> Response:
    hooks = _webhooks(request)
    form = await _signed_twilio_form(request, hooks)
    if isinstance(form, Response):
        return form
    try:
        sms = twilio.read_sms(form, hooks.region)
    except MalformedRequest as error:
        return hooks.refuse(Channel.SMS, error)
    if sms.phone is None:
        MESSAGES.labels(Channel.SMS, "not_a_phone").inc()
        reply = Reply(text="")
    else:
        reply = await hooks.answer(InboundMessage(Channel.SMS, sms.phone, sms.body,
                                                  message_id=sms.message_sid))
    return Response(twilio.twiml(reply), media_type=twilio.TWIML_TYPE)


async def twilio_status_webhook(request: Request) -> Response:
    hooks = _webhooks(request)
    form = await _signed_twilio_form(request, hooks)
    if isinstance(form, Response):
        return form
    try:
        status = twilio.read_status(form)
    except MalformedRequest as error:
        return hooks.refuse(Channel.SMS, error)
    known = status.status if status.status in twilio.DELIVERY_STATUSES else "other"
    DELIVERY_STATUSES.labels(known).inc()
    try:
        async with asyncio.timeout(HOP_DEADLINE_SECONDS):
            await hooks.delivery(status)
    except (RedisError, OSError, TimeoutError):
        log.warning("delivery status not recorded: store unavailable",
                    extra={"message_sid": status.message_sid})
    except Exception:
        # As for messages: the gateway never gets a 5xx; the bug is logged.
        log.exception("delivery status not recorded", extra={"message_sid": status.message_sid})
    return Response(status_code=204)


async def africastalking_ussd_webhook(request: Request) -> Response:
    hooks = _webhooks(request)
    if hooks.ussd_secret is None:
        hooks.warn_unauthenticated("Africa's Talking", "HELPLINE_USSD_SECRET")
    elif not ussd.key_matches(hooks.ussd_secret, request.query_params.get(ussd.KEY_PARAMETER)):
        return hooks.forbid(Channel.USSD)
    try:
        hop = ussd.read_hop(await read_form(request), hooks.region)
    except MalformedRequest as error:
        return hooks.refuse(Channel.USSD, error)
    reply = await hooks.answer(InboundMessage(
        Channel.USSD, hop.phone, hop.text, message_id=hop.message_id, ussd_session=hop.session_id,
    ))
    return PlainTextResponse(ussd.screen(reply), media_type=ussd.TEXT_TYPE)


METHOD_NOT_ALLOWED = PlainTextResponse("method not allowed: POST only", status_code=405,
                                      headers={"Allow": "POST"})

ROUTES = [
    Route(SMS_PATH, twilio_sms_webhook, methods=["POST"]),
    Route(STATUS_PATH, twilio_status_webhook, methods=["POST"]),
    Route(USSD_PATH, africastalking_ussd_webhook, methods=["POST"]),
    *VOICE_ROUTES,
]


class GatewayLane:
    """Pure ASGI middleware: gateway hops go straight to their routes.

    They skip the admin API's layers (body limit, exception handlers, the
    FastAPI router); the webhooks bound their own bodies and never raise.
    """

    def __init__(self, app: ASGIApp, routes: list[Route] = ROUTES) -> None:
        self.app = app
        self.routes = {route.path: route for route in routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            # Starlette's Route would raise HTTPException here, outside any handler: a 500.
            await METHOD_NOT_ALLOWED(scope, receive, send)
            return
        await route.handle(scope, receive, send)
