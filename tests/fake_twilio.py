"""A local fake of the Twilio Messages and Calls APIs (and of an escalation webhook).

A real HTTP server on a loopback port (tests/fake_rest.py), so that the twilio SDK is
pointed at it through `TWILIO_API_BASE_URL` exactly as it would be at an egress proxy
(and so that a worker in a subprocess reaches it too). It records every request and
answers as planned: created (the default), an HTTP error with a Twilio error code, a
reply that comes too late (the message is created all the same, as Twilio would), or a
reply held until the test releases it.
"""

from __future__ import annotations

import base64
import json
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from tests.fake_rest import Answer, FakeRest, Held, Late, Normal, running, wait_as_planned
from tests.fake_rest import Request as Recorded

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "fake-twilio-auth-token"
FROM_NUMBER = "+15005550006"
TEMPLATE_TEXT = "Alerte / Alert: {}"
"""How the fake renders a Content template (each has its own words around variable 1)."""


@dataclass(frozen=True)
class Fail:
    """Answer an HTTP error; `code` is Twilio's error code in the body."""

    status: int = 500
    code: int | None = None


Created = Normal
"""Answer 201 and create the message (the default)."""
Plan = Created | Fail | Late | Held


class _Server(FakeRest[Plan]):
    """A fake whose `handle` gives the status and JSON body of each answer."""

    def answer(self, request: Recorded) -> Answer:
        status, payload = self.handle(request)
        return Answer(status, payload)

    def handle(self, request: Recorded) -> tuple[int, Any]:
        raise NotImplementedError


MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages"
CALLS = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls"


class FakeTwilio(_Server):
    """The Messages and Calls resources: create (POST) and list (GET) under
    /2010-04-01/Accounts/…; plans apply to both, in the order requests come."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self._next_sid = 0

    @property
    def creates(self) -> list[Recorded]:
        """Every attempt to send a message (whatever was answered)."""
        with self.lock:
            return [r for r in self.requests
                    if r.method == "POST" and r.path.startswith(MESSAGES)]

    @property
    def call_creates(self) -> list[Recorded]:
        """Every attempt to place a call (whatever was answered)."""
        with self.lock:
            return [r for r in self.requests if r.method == "POST" and r.path.startswith(CALLS)]

    @property
    def lists(self) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.method == "GET"]

    def called(self, phone: str) -> list[dict[str, Any]]:
        with self.lock:
            return [c for c in self.calls if c["to"] == phone]

    def sent_to(self, phone: str) -> list[dict[str, Any]]:
        with self.lock:
            return [m for m in self.messages if m["to"] == phone]

    def _authorised(self, request: Recorded) -> bool:
        expected = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        return request.headers.get("authorization") == f"Basic {expected}"

    def _create(self, request: Recorded) -> dict[str, Any]:
        with self.lock:
            self._next_sid += 1
            now = format_datetime(datetime.now(UTC))
            body = request.form.get("Body")
            content_sid = request.form.get("ContentSid")
            if content_sid:  # a Content template: Twilio renders it, variable 1 inside
                body = TEMPLATE_TEXT.format(json.loads(request.form["ContentVariables"])["1"])
            message = {
                "sid": f"SM{self._next_sid:032d}",
                "account_sid": ACCOUNT_SID,
                "to": request.form.get("To"),
                "from": request.form.get("From"),
                "messaging_service_sid": request.form.get("MessagingServiceSid"),
                "body": body,
                "content_sid": content_sid,
                "status": "queued",
                "direction": "outbound-api",
                "num_segments": "1",
                "date_created": now,
                "date_updated": now,
                "date_sent": None,
                "error_code": None,
                "error_message": None,
                "api_version": "2010-04-01",
                "status_callback": request.form.get("StatusCallback"),
            }
            self.messages.append(message)
            return message

    def _place(self, request: Recorded) -> dict[str, Any]:
        with self.lock:
            self._next_sid += 1
            now = format_datetime(datetime.now(UTC))
            call = {
                "sid": f"CA{self._next_sid:032d}",
                "account_sid": ACCOUNT_SID,
                "to": request.form.get("To"),
                "from": request.form.get("From"),
                "status": "queued",
                "direction": "outbound-api",
                "date_created": now,
                "date_updated": now,
                "start_time": None,
                "end_time": None,
                "api_version": "2010-04-01",
                # Not in Twilio's resource: what the call was asked for, for the tests.
                "url": request.form.get("Url"),
                "machine_detection": request.form.get("MachineDetection"),
                "status_callback": request.form.get("StatusCallback"),
                "uri": f"{CALLS}/CA{self._next_sid:032d}.json",
            }
            self.calls.append(call)
            return call

    def _calls_page(self, to: str | None) -> dict[str, Any]:
        with self.lock:
            found = [c for c in reversed(self.calls) if to is None or c["to"] == to]
        return {"calls": found, "start": 0, "end": max(len(found) - 1, 0), "page": 0,
                "page_size": 50, "first_page_uri": None, "next_page_uri": None,
                "previous_page_uri": None, "uri": f"{CALLS}.json"}

    def handle(self, request: Recorded) -> tuple[int, Any]:
        is_call = request.path.startswith(CALLS)
        if not (request.path.startswith(MESSAGES) or is_call):
            return 404, {"code": 20404, "message": "not found", "status": 404}
        if not self._authorised(request):
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}
        if request.method == "GET":
            to = request.query.get("To")
            return 200, self._calls_page(to) if is_call else self._page(to)
        plan = self._next_plan()
        if isinstance(plan, Fail):
            return plan.status, {"code": plan.code or plan.status, "status": plan.status,
                                 "message": "planned failure"}
        message = self._place(request) if is_call else self._create(request)
        wait_as_planned(plan)
        return 201, message

    def _page(self, to: str | None) -> dict[str, Any]:
        with self.lock:
            found = [m for m in reversed(self.messages) if to is None or m["to"] == to]
        return {
            "messages": found,
            "start": 0,
            "end": max(len(found) - 1, 0),
            "page": 0,
            "page_size": 50,
            "first_page_uri": None,
            "next_page_uri": None,
            "previous_page_uri": None,
            "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
        }


class FakeWebhook(_Server):
    """An escalation webhook receiver: records JSON posts; answers 200 unless planned."""

    @property
    def posts(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(r.body) for r in self.requests if r.method == "POST"]

    def handle(self, request: Recorded) -> tuple[int, Any]:
        plan = self._next_plan()
        if isinstance(plan, Fail):
            return plan.status, {"error": "planned failure"}
        return 200, {"ok": True}


def fake_twilio() -> AbstractContextManager[FakeTwilio]:
    return running(FakeTwilio())


def fake_webhook() -> AbstractContextManager[FakeWebhook]:
    return running(FakeWebhook())
