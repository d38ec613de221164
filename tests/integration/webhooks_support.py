"""Gateways as the tests play them: Twilio requests signed by the twilio SDK, AT hops."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from twilio.request_validator import RequestValidator

from bot.app import create_app
from bot.channels.routes import SMS_PATH, STATUS_PATH, USSD_PATH
from bot.conversation.loop import utcnow
from bot.settings import Settings

AUTH_TOKEN = "twilio-auth-token-for-tests"
PUBLIC_URL = "https://public.example"
USSD_SECRET = "ussd-secret-for-tests"
PII_KEY = "pii-key-for-tests"
HELPLINE_NUMBER = "+22320000000"
REFERENCE = re.compile(r"(\d{4})-(\d{4})")
# main → 2 return request → 1 consent, then the answers, then 1 confirm (see flows/helpline.yaml).
NAME, NATIONALITY, COUNTRY, CITY = "Awa Diarra", "Mali", "Niger", "Agadez"
ANSWERS = [NAME, NATIONALITY, COUNTRY, CITY, "2", "2", "2", "1", "2", "1", "1", "1"]
RETURN_REQUEST = ["2", "1", *ANSWERS, "1"]
EXPECTED_ANSWERS = {
    "name": NAME, "nationality": NATIONALITY, "country": COUNTRY, "city": CITY,
    "under_18": "no", "medical": "no", "pregnant": "no", "trafficking_or_violence": "yes",
    "disability": "no", "travel_document": "yes", "sms_safe": "yes", "followup_consent": "yes",
}
_sids = itertools.count(1)


def gateway_settings(redis_url: str, tmp_path: Path, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "data_dir": tmp_path / "var",
        "twilio_auth_token": SecretStr(AUTH_TOKEN),
        "public_url": PUBLIC_URL,
        "ussd_secret": SecretStr(USSD_SECRET),
        "pii_key": SecretStr(PII_KEY),
    }
    return Settings(**{**values, **changes})


class NoJobs:
    """The job queue stands aside: these tests are about the gateways."""

    async def enqueue(self, job: str, *args: str | int) -> None:
        return None

    async def close(self) -> None:
        return None


def new_sid() -> str:
    return f"SM{next(_sids):032x}"


def sign(url: str, params: dict[str, str]) -> str:
    return str(RequestValidator(AUTH_TOKEN).compute_signature(url, params))


def said(response: httpx.Response) -> str:
    """The text of a TwiML answer ('' for an empty `<Response/>`)."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(response.text)
    assert root.tag == "Response"
    return "".join(message.text or "" for message in root.iter("Message"))


def reference_in(text: str) -> str:
    found = REFERENCE.search(text)
    assert found, text
    return found.group(1) + found.group(2)


@dataclass
class Gateway:
    """Twilio and Africa's Talking, talking to the app."""

    client: httpx.AsyncClient
    phone: str = "+22376000001"
    history: dict[str, str] = field(default_factory=dict)

    async def sms(self, body: str, *, phone: str | None = None, sid: str | None = None,
                  signed_url: str | None = PUBLIC_URL + SMS_PATH,
                  extra: dict[str, str] | None = None) -> httpx.Response:
        params = {
            "MessageSid": sid or new_sid(), "AccountSid": "AC" + "0" * 32,
            "From": phone or self.phone, "To": HELPLINE_NUMBER, "Body": body, "NumMedia": "0",
            **(extra or {}),
        }
        headers = {"X-Twilio-Signature": sign(signed_url, params)} if signed_url else {}
        return await self.client.post(SMS_PATH, data=params, headers=headers)

    async def text(self, body: str, **options: Any) -> str:
        return said(await self.sms(body, **options))

    async def status(self, status: str, *, signed: bool = True, sid: str | None = None,
                     error_code: str = "") -> httpx.Response:
        params = {"MessageSid": sid or new_sid(), "MessageStatus": status,
                  "ErrorCode": error_code}
        headers = {"X-Twilio-Signature": sign(PUBLIC_URL + STATUS_PATH, params)} if signed else {}
        return await self.client.post(STATUS_PATH, data=params, headers=headers)

    async def hop(self, session: str, text: str, *, phone: str | None = None,
                  key: str | None = USSD_SECRET) -> httpx.Response:
        params = {"sessionId": session, "serviceCode": "*384*55#",
                  "phoneNumber": phone or self.phone, "networkCode": "61001", "text": text}
        query = {"key": key} if key is not None else {}
        return await self.client.post(USSD_PATH, params=query, data=params)

    async def dial(self, session: str, *, phone: str | None = None) -> str:
        self.history[session] = ""
        return screen(await self.hop(session, "", phone=phone))

    async def press(self, session: str, typed: str, *, phone: str | None = None) -> str:
        history = self.history[session]
        self.history[session] = f"{history}*{typed}" if history else typed
        return screen(await self.hop(session, self.history[session], phone=phone))


def screen(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.startswith(("CON ", "END ")), response.text
    return response.text


@asynccontextmanager
async def running_app(settings: Settings, base_url: str = "http://127.0.0.1:8000",
                      clock: Callable[[], datetime] = utcnow) -> AsyncIterator[Gateway]:
    """The real app (lifespan included), reached over plain http on 127.0.0.1 (or at
    `base_url`: its scheme is the ASGI scope's, as behind a TLS proxy), on `clock`'s time."""
    app = create_app(settings, case_jobs=NoJobs(), clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url,
                                     timeout=2.0) as client:
            yield Gateway(client)

