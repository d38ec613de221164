"""Outbound calls through the twilio SDK's REST client (`Calls.json`), like SMS
(`bot.jobs.twilio_rest`): every request goes to `TWILIO_API_BASE_URL`.

A follow-up check-in by voice (docs/spec.md §11): Twilio calls the migrant (`To`) from
our number (`From`) and, once they answer, asks our voice webhook (`Url`, on
`HELPLINE_PUBLIC_URL`) what to say; that request comes back with
`Direction=outbound-api`. Never logs a number or a URL (it names the check-in).

Every call asks for Twilio's answering machine detection (`MachineDetection=Enable`,
synchronous): that request then carries `AnsweredBy`, and the webhook hangs up on
a voicemail or a fax before a word is said (bot/channels/outbound_calls.py).
"""

from __future__ import annotations

from datetime import datetime

import aiohttp
from twilio.base.exceptions import TwilioException
from twilio.rest import Client

from bot.jobs.errors import Failure, SendFailed
from bot.jobs.twilio_rest import (
    CLOCK_SKEW,
    RECONCILE_LOOKBACK,
    TIMEOUT_SECONDS,
    RebasedHttpClient,
    classify,
)
from bot.settings import Settings

RING_SECONDS = 40
"""How long the phone rings before Twilio gives up (`Timeout`)."""
MACHINE_DETECTION = "Enable"
"""Twilio tells the `Url` request who answered (`AnsweredBy`) as soon as it knows, so that
nothing is said to a mailbox (docs/followup.md, "Voicemail")."""


class TwilioCalls:
    """Places calls and finds ones placed before, through the SDK."""

    def __init__(self, *, account_sid: str, auth_token: str, from_number: str, base_url: str,
                 timeout: float = TIMEOUT_SECONDS) -> None:
        self.from_number = from_number
        self.http = RebasedHttpClient(base_url, timeout=timeout)
        self.client = Client(account_sid, auth_token, account_sid=account_sid,
                             http_client=self.http)

    @classmethod
    def from_settings(cls, settings: Settings, *, timeout: float = TIMEOUT_SECONDS
                      ) -> TwilioCalls | None:
        """None when calls cannot be placed (a call needs a number of ours to come from)."""
        token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
        if not (settings.twilio_account_sid and token and settings.twilio_from_number):
            return None
        return cls(account_sid=settings.twilio_account_sid, auth_token=token,
                   from_number=settings.twilio_from_number,
                   base_url=settings.twilio_api_base_url, timeout=timeout)

    async def call(self, *, to: str, url: str, status_callback: str | None) -> str:
        """Place the call; its SID. Raises SendFailed."""
        extra = {"status_callback": status_callback} if status_callback else {}
        try:
            placed = await self.client.calls.create_async(
                to=to, from_=self.from_number, url=url, method="POST", timeout=RING_SECONDS,
                machine_detection=MACHINE_DETECTION, **extra)
        except (TwilioException, aiohttp.ClientError, TimeoutError) as exc:
            raise classify(exc) from exc
        return str(placed.sid)

    async def find_placed(self, *, to: str, since: datetime) -> list[str]:
        """The SIDs of calls to `to` placed from our number since `since` (less
        `CLOCK_SKEW`), oldest first. Any may be another delivery's (a check-in of another
        case on the same phone): the caller takes one no other delivery has recorded."""
        try:
            recent = await self.client.calls.list_async(
                to=to, from_=self.from_number, limit=RECONCILE_LOOKBACK,
                page_size=RECONCILE_LOOKBACK)
        except (TwilioException, aiohttp.ClientError, TimeoutError) as exc:
            failed = classify(exc)
            raise SendFailed(Failure.UNKNOWN, f"check failed: {failed.reason}") from exc
        earliest = since - CLOCK_SKEW
        found = [str(placed.sid) for placed in recent
                 if placed.date_created is None or placed.date_created >= earliest]
        return found[::-1]  # Twilio lists the newest first

    async def aclose(self) -> None:
        await self.http.aclose()
