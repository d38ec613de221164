"""Outbound SMS through the twilio SDK's REST client, every call sent to `TWILIO_API_BASE_URL`.

The SDK builds `https://api.twilio.com/...` URLs; its HTTP client is pluggable,
so ours moves each request to the configured base URL (an egress proxy, or a
local fake in tests) and applies our timeouts. It never logs URLs or bodies:
both can hold a phone number or a message. It runs on aiohttp (the SDK's own
async client does too; the worker's other calls, the escalation webhook, are
httpx's): a broadcast makes one call a message, and aiohttp spends about 0.8 ms
of CPU on one where httpx spends 2.1 (bench/outreach.py's machine, loaded).
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from bot.jobs.errors import Failure, SendFailed
from bot.settings import Settings

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 15.0
CONNECT_SECONDS = 5.0
OPTED_OUT_CODE = 21610
WHATSAPP = "whatsapp:"
TOO_MANY_REQUESTS = 429
# Messages looked at when checking whether an uncertain attempt went out.
RECONCILE_LOOKBACK = 50
CLOCK_SKEW = timedelta(seconds=60)
"""How far before an uncertain attempt's start (our clock) the look-up reaches (Twilio's
`DateCreated`): what Twilio made of that attempt cannot be older, except for the two
clocks' difference. `DateCreated` is truncated to the second and NTP keeps both within
a second; a minute leaves room for a host whose sync lapsed for days (tens of ppm of
drift: seconds a day). It only narrows the candidates: a message or call another
delivery recorded is never taken for this one's, however recent (`bot.jobs.delivery`)."""
# Errors after which the request cannot have reached Twilio.
NOT_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)


def rebase(url: str, base_url: str) -> str:
    """`url` with its scheme and host (any `*.twilio.com`) replaced by `base_url`'s."""
    parts = urlsplit(url)
    if not (parts.hostname or "").endswith("twilio.com"):
        return url
    base = urlsplit(base_url.rstrip("/"))
    return urlunsplit((base.scheme, base.netloc, base.path + parts.path, parts.query, ""))


class RebasedHttpClient(AsyncHttpClient):  # type: ignore[misc]
    """The SDK's async HTTP client interface on aiohttp, aimed at `base_url`."""

    def __init__(self, base_url: str, *, timeout: float = TIMEOUT_SECONDS) -> None:
        super().__init__(logger=log, is_async=True, timeout=None)
        self.base_url = base_url
        self.timeout = aiohttp.ClientTimeout(total=timeout,
                                             sock_connect=min(CONNECT_SECONDS, timeout))
        self._session: aiohttp.ClientSession | None = None
        """Made at the first call, inside the event loop that uses it."""

    async def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (the SDK's interface)
        allow_redirects: bool = False,
    ) -> Response:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        sent_headers = dict(headers or {})
        if auth is not None:
            pair = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            sent_headers["Authorization"] = f"Basic {pair}"
        async with self._session.request(
            method,
            rebase(uri, self.base_url),
            params=_pairs(params),
            data=_pairs(data),
            headers=sent_headers,
            allow_redirects=allow_redirects,
            timeout=self.timeout if timeout is None else aiohttp.ClientTimeout(total=timeout),
        ) as response:
            text = await response.text()
            return Response(response.status, text, response.headers)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def _pairs(values: dict[str, object] | None) -> list[tuple[str, str]] | None:
    """Form or query fields as aiohttp takes them: a list value is the field repeated."""
    if values is None:
        return None
    found: list[tuple[str, str]] = []
    for name, value in values.items():
        for one in value if isinstance(value, list | tuple) else [value]:
            if one is not None:
                found.append((name, str(one)))
    return found


def classify(exc: Exception) -> SendFailed:
    """How a failed Twilio call should be handled (see `Failure`)."""
    if isinstance(exc, TwilioRestException):
        status, code = int(exc.status), int(exc.code) if exc.code else None
        if status >= 500:
            # A 5xx (or a proxy's 502/504) does not prove nothing was created.
            return SendFailed(Failure.UNKNOWN, f"twilio answered {status}", code)
        if status == TOO_MANY_REQUESTS:
            return SendFailed(Failure.RETRY, "twilio answered 429", code)
        return SendFailed(Failure.PERMANENT, f"twilio refused ({status})", code)
    if isinstance(exc, NOT_SENT):
        return SendFailed(Failure.RETRY, f"could not reach twilio ({type(exc).__name__})")
    if isinstance(exc, TimeoutError):
        return SendFailed(Failure.UNKNOWN, f"twilio did not answer in time ({type(exc).__name__})")
    return SendFailed(Failure.UNKNOWN, f"twilio call failed ({type(exc).__name__})")


@dataclass(frozen=True)
class TwilioSender:
    """Who our SMS come from: a number, or a messaging service."""

    from_number: str | None = None
    messaging_service_sid: str | None = None


class TwilioSms:
    """Sends SMS and finds ones sent before, through the SDK."""

    def __init__(self, *, account_sid: str, auth_token: str, sender: TwilioSender,
                 base_url: str, timeout: float = TIMEOUT_SECONDS) -> None:
        self.sender = sender
        self.http = RebasedHttpClient(base_url, timeout=timeout)
        self.client = Client(account_sid, auth_token, account_sid=account_sid,
                             http_client=self.http)

    @classmethod
    def from_settings(cls, settings: Settings, *, timeout: float = TIMEOUT_SECONDS
                      ) -> TwilioSms | None:
        """None when the settings do not allow sending SMS (a dev machine, typically)."""
        token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
        sender = TwilioSender(settings.twilio_from_number, settings.twilio_messaging_service_sid)
        if not (settings.twilio_account_sid and token and
                (sender.from_number or sender.messaging_service_sid)):
            return None
        return cls(account_sid=settings.twilio_account_sid, auth_token=token, sender=sender,
                   base_url=settings.twilio_api_base_url, timeout=timeout)

    def _sender_args(self) -> dict[str, Any]:
        if self.sender.messaging_service_sid:
            return {"messaging_service_sid": self.sender.messaging_service_sid}
        return {"from_": self.sender.from_number}

    async def send(self, *, to: str, body: str, status_callback: str | None) -> str:
        """Create the message; its SID. Raises SendFailed."""
        extra: dict[str, Any] = {"status_callback": status_callback} if status_callback else {}
        try:
            message = await self.client.messages.create_async(
                to=to, body=body, **self._sender_args(), **extra
            )
        except (TwilioException, aiohttp.ClientError, TimeoutError) as exc:
            raise classify(exc) from exc
        return str(message.sid)

    def _whatsapp_sender(self) -> dict[str, Any]:
        if self.sender.messaging_service_sid:
            return {"messaging_service_sid": self.sender.messaging_service_sid}
        return {"from_": f"{WHATSAPP}{self.sender.from_number}"}

    async def send_whatsapp(self, *, to: str, body: str, content_sid: str | None,
                            status_callback: str | None) -> str:
        """A WhatsApp message to `to` (E.164): free-form `body`, or, with `content_sid`, that
        Content template with `body` as its variable 1. Its SID. Raises SendFailed."""
        extra: dict[str, Any] = {"status_callback": status_callback} if status_callback else {}
        if content_sid:
            extra.update(content_sid=content_sid,
                         content_variables=json.dumps({"1": body}, ensure_ascii=False))
        else:
            extra["body"] = body
        try:
            message = await self.client.messages.create_async(
                to=f"{WHATSAPP}{to}", **self._whatsapp_sender(), **extra)
        except (TwilioException, aiohttp.ClientError, TimeoutError) as exc:
            raise classify(exc) from exc
        return str(message.sid)

    async def find_sent(self, *, to: str, body: str, since: datetime) -> list[str]:
        """The SIDs of messages with this body created for `to` since `since` (less
        `CLOCK_SKEW`), oldest first (`to` `whatsapp:+…`: ones whose text holds `body`, as
        a template's does). Any may be another delivery's of the same text: the caller
        takes one no other delivery has recorded."""
        try:
            recent = await self.client.messages.list_async(
                to=to, limit=RECONCILE_LOOKBACK, page_size=RECONCILE_LOOKBACK
            )
        except (TwilioException, aiohttp.ClientError, TimeoutError) as exc:
            failed = classify(exc)
            # Not knowing whether it went is no reason to send it a second time.
            raise SendFailed(Failure.UNKNOWN, f"check failed: {failed.reason}") from exc
        earliest = since - CLOCK_SKEW
        whatsapp = to.startswith(WHATSAPP)
        found = [str(message.sid) for message in recent
                 if (body in (message.body or "") if whatsapp else message.body == body)
                 and (message.date_created is None or message.date_created >= earliest)]
        return found[::-1]  # Twilio lists the newest first

    async def aclose(self) -> None:
        await self.http.aclose()
