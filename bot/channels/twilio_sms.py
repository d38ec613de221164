"""Twilio Programmable Messaging: read the webhook, check its signature, answer in TwiML.

The signature is checked with the SDK's `RequestValidator` against the public
URL Twilio was given (`HELPLINE_PUBLIC_URL` + path + query), never the URL the
app sees behind a TLS proxy. A signature-settings header naming an algorithm other
than the SDK's two is refused here, unlogged: the SDK would log its text.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr
from starlette.datastructures import FormData
from starlette.types import Scope
from twilio.request_validator import (
    HMAC_SHA1,
    HMAC_SHA256,
    RequestValidator,
    get_signature_algorithm,
)
from twilio.twiml.messaging_response import MessagingResponse

from bot.channels.forms import sender_phone
from bot.engine.render import Reply
from bot.errors import MalformedRequest

SIGNATURE_HEADER = "x-twilio-signature"
SIGNATURE_SETTINGS_HEADER = "x-twilio-webhooks-signature-settings"
SIGNATURE_ALGORITHMS = frozenset({HMAC_SHA1, HMAC_SHA256})
"""The algorithms a signature-settings header may name (the SDK's, as it reads them: any
case). Any other is refused before the SDK sees it: it would log the header's text."""
TWIML_TYPE = "application/xml"
WHATSAPP_PREFIX = "whatsapp:"
MAX_BODY_CHARS = 1600
"""Twilio's own limit on an inbound message."""
# Advanced Opt-Out (a Messaging Service feature) tells us which keyword Twilio recognised.
OPT_OUT_TYPES = {"STOP": "STOP", "START": "START", "HELP": "MENU"}
DELIVERY_STATUSES = frozenset({
    "accepted", "scheduled", "queued", "sending", "sent", "delivered", "undelivered",
    "failed", "read", "receiving", "received", "canceled", "partially_delivered",
})


@dataclass(frozen=True)
class InboundSms:
    message_sid: str
    phone: str | None
    """E.164, or None when the sender is no phone number (a short code, a name)."""
    body: str
    whatsapp: bool = False
    """Sent on WhatsApp (`From: whatsapp:+…`): an alert subscription made here goes there."""


@dataclass(frozen=True)
class DeliveryStatus:
    message_sid: str
    status: str
    error_code: str = ""
    alert: str = ""
    """The alert recipient the status is about (the callback URL's `bc`), if any."""
    followup: str = ""
    """The check-in call the status is about (the callback URL's `followup`), if any: then
    `message_sid` is the call's SID and `status` why nobody took it
    (`bot.cases.followups.Unanswered`)."""


def read_sms(form: FormData, default_region: str) -> InboundSms:
    sid = form.get("MessageSid")
    sender = form.get("From")
    if not isinstance(sid, str) or not sid or not isinstance(sender, str) or not sender:
        raise MalformedRequest("MessageSid and From are required")
    body = form.get("Body", "")
    if not isinstance(body, str) or len(body) > MAX_BODY_CHARS:
        raise MalformedRequest("Body is not a message")
    opt_out = str(form.get("OptOutType", "")).upper()
    return InboundSms(
        message_sid=sid,
        phone=sender_phone(sender, default_region),
        body=OPT_OUT_TYPES.get(opt_out, body),
        whatsapp=sender.startswith(WHATSAPP_PREFIX),
    )


def read_status(form: FormData, alert: str | None = None) -> DeliveryStatus:
    sid = form.get("MessageSid")
    status = form.get("MessageStatus")
    if not isinstance(sid, str) or not sid or not isinstance(status, str) or not status:
        raise MalformedRequest("MessageSid and MessageStatus are required")
    return DeliveryStatus(message_sid=sid, status=status.lower(),
                          error_code=str(form.get("ErrorCode", "")), alert=alert or "")


def twiml(reply: Reply) -> str:
    """The TwiML answer: the reply as one message, or an empty `<Response />`."""
    response = MessagingResponse()
    if reply.text:
        response.message(reply.text)
    return str(response.to_xml())


class TwilioSignature:
    """Checks `X-Twilio-Signature`; `enforced` is False only while no auth token is set."""

    def __init__(self, auth_token: SecretStr | None, public_url: str | None) -> None:
        self._validator = (RequestValidator(auth_token.get_secret_value())
                           if auth_token is not None else None)
        self._public_url = public_url.rstrip("/") if public_url else None

    @property
    def enforced(self) -> bool:
        return self._validator is not None

    def url(self, scope: Scope, seen_url: str) -> str:
        """The URL Twilio signed: the public one when set, else the one the app sees."""
        if self._public_url is None:
            return seen_url
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        url = self._public_url + path.decode("latin-1")
        return f"{url}?{query.decode('latin-1')}" if query else url

    def valid(self, url: str, form: FormData, signature: str | None,
              signature_settings: str | None) -> bool:
        if self._validator is None:
            return True
        if not signature:
            return False
        algorithm = get_signature_algorithm(signature_settings)
        if algorithm.upper() not in SIGNATURE_ALGORITHMS:
            return False
        return bool(self._validator.validate(url, form, signature, algorithm))
