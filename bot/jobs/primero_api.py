"""Primero's API v2 as the referral job uses it: a token, a case created, its number read.

A token comes from `POST /api/v2/tokens` (the JWT is in the response's
`Authorization` header; Primero's tokens last 60 minutes). One token serves every
job of the worker process and is renewed before its 60 minutes are up; a 401
renews it once (another session may have revoked it), then counts as a failure
worth retrying. The token and the password live in this object only: they are
never logged, nor is a request's or an answer's body (both hold a person's data).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from pydantic import SecretStr

from bot.jobs.errors import PrimeroFailed
from bot.settings import Settings

TIMEOUT = httpx.Timeout(15.0, connect=5.0)
TOKENS = "/api/v2/tokens"
CASES = "/api/v2/cases"
# Primero's tokens expire after 60 minutes: ours is renewed after 50.
TOKEN_LIFETIME_SECONDS = 50 * 60
# The longest `Retry-After` honoured (a wrong header must not park a referral for days).
MAX_RETRY_AFTER_SECONDS = 3600.0
MAX_REASON_CHARS = 500
UNAUTHORISED = 401
FORBIDDEN = 403
CONFLICT = 409
UNPROCESSABLE = 422
RETRIED_STATUSES = frozenset({408, 425, 429})


@dataclass(frozen=True)
class CaseCreated:
    case_id_display: str | None
    """Primero's case number when the answer carried it (a 200); else read it back."""
    existed: bool
    """Primero had the case already (a 409: an earlier try went through)."""


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """A `Retry-After` header (seconds, or an HTTP date) in seconds, at most an hour."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def primero_words(response: httpx.Response) -> str:
    """Primero's own words for a refusal: each error's `message` and `detail`."""
    try:
        body: Any = response.json()
    except ValueError:
        return ""
    said: list[str] = []
    errors = body.get("errors") if isinstance(body, Mapping) else None
    for error in errors if isinstance(errors, list) else []:
        if not isinstance(error, Mapping):
            continue
        message, detail = error.get("message"), error.get("detail")
        if isinstance(detail, list):
            detail = ", ".join(str(part) for part in detail)
        words = " ".join(str(part) for part in (message, f"({detail})" if detail else None)
                         if part)
        if words:
            said.append(words)
    if not said and isinstance(body, Mapping) and body.get("error"):
        said.append(str(body["error"]))
    return "; ".join(said)[:MAX_REASON_CHARS]


def failure_of(response: httpx.Response) -> PrimeroFailed:
    """How an unexpected answer is handled: 5xx, 408, 429 are tried again (after Primero's
    `Retry-After` if it gave one), any other refusal is final, in Primero's words."""
    status = response.status_code
    if status >= 500 or status in RETRIED_STATUSES:
        return PrimeroFailed(f"Primero answered {status}", retry=True, status=status,
                             retry_after=retry_after_seconds(response.headers.get("Retry-After")))
    words = primero_words(response)
    what = "refused the case" if status == UNPROCESSABLE else f"refused ({status})"
    return PrimeroFailed(f"Primero {what}: {words}" if words else f"Primero {what}",
                         retry=False, status=status)


def _unreachable(exc: httpx.HTTPError) -> PrimeroFailed:
    if isinstance(exc, httpx.TimeoutException):
        return PrimeroFailed(f"Primero did not answer in time ({type(exc).__name__})", retry=True)
    return PrimeroFailed(f"could not reach Primero ({type(exc).__name__})", retry=True)


class PrimeroClient:
    """One worker process's client of one Primero, holding its token."""

    def __init__(self, *, base_url: str, user: str, password: SecretStr,
                 timeout: httpx.Timeout = TIMEOUT,
                 transport: httpx.AsyncBaseTransport | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout,
                                       transport=transport,
                                       headers={"Accept": "application/json"})
        self._user = user
        self._password = password
        self._clock = clock
        self._token: str | None = None
        self._token_at = 0.0
        self._lock = asyncio.Lock()
        self.sign_ins = 0
        """How many tokens this client asked for (diagnostics and tests)."""

    @classmethod
    def from_settings(cls, settings: Settings, *, timeout: httpx.Timeout = TIMEOUT
                      ) -> PrimeroClient | None:
        """None when Primero is not configured."""
        if not (settings.primero_url and settings.primero_user and settings.primero_password):
            return None
        return cls(base_url=settings.primero_url, user=settings.primero_user,
                   password=settings.primero_password, timeout=timeout)

    async def create_case(self, body: Mapping[str, object]) -> CaseCreated:
        """POST the case; a 409 (it exists: an earlier try went through) is success too."""
        response = await self._authorised("POST", CASES, json=dict(body))
        status = response.status_code
        if status == CONFLICT:
            return CaseCreated(case_id_display=None, existed=True)
        if status == httpx.codes.NO_CONTENT:
            return CaseCreated(case_id_display=None, existed=False)
        if httpx.codes.is_success(status):
            return CaseCreated(case_id_display=_case_number(response), existed=False)
        raise failure_of(response)

    async def case_number(self, case_id: str, *, reference: str) -> str | None:
        """Primero's `case_id_display` of the case with our id; PrimeroFailed when that
        case is not ours (another `other_agency_id`)."""
        response = await self._authorised(
            "GET", f"{CASES}/{case_id}", params={"fields": "case_id_display,other_agency_id"})
        if not httpx.codes.is_success(response.status_code):
            raise failure_of(response)
        data = _data(response)
        other = data.get("other_agency_id")
        if other not in (None, "", reference):
            raise PrimeroFailed("Primero holds another case under this referral's id "
                                "(its other_agency_id is not our reference)", retry=False)
        return _case_number(response)

    async def _authorised(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        token = await self._current_token()
        response = await self._send(method, path, token, **kwargs)
        if response.status_code != UNAUTHORISED:
            return response
        token = await self._current_token(stale=token)
        response = await self._send(method, path, token, **kwargs)
        if response.status_code == UNAUTHORISED:
            raise PrimeroFailed("Primero refused a fresh token (401)", retry=True,
                                status=UNAUTHORISED)
        return response

    async def _send(self, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, path,
                                            headers={"Authorization": f"Bearer {token}"},
                                            **kwargs)
        except httpx.HTTPError as exc:
            raise _unreachable(exc) from None

    async def _current_token(self, *, stale: str | None = None) -> str:
        """The token to use: the one held while it is young and not `stale` (refused just
        now), else a new one (one sign-in at a time, shared by the waiting jobs)."""
        async with self._lock:
            young = self._clock() - self._token_at < TOKEN_LIFETIME_SECONDS
            if self._token is None or not young or self._token == stale:
                self._token = None
                self._token = await self._sign_in()
                self._token_at = self._clock()
            return self._token

    async def _sign_in(self) -> str:
        credentials = {"user": {"user_name": self._user,
                                "password": self._password.get_secret_value()}}
        self.sign_ins += 1
        try:
            response = await self._http.post(TOKENS, json=credentials)
        except httpx.HTTPError as exc:
            raise _unreachable(exc) from None
        status = response.status_code
        if status in (UNAUTHORISED, FORBIDDEN):
            raise PrimeroFailed(f"Primero refused PRIMERO_USER and PRIMERO_PASSWORD ({status})",
                                retry=False, status=status)
        if not httpx.codes.is_success(status):
            raise failure_of(response)
        header = str(response.headers.get("Authorization", ""))
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise PrimeroFailed("Primero's answer to a sign-in carried no token "
                                "(no Authorization header): is PRIMERO_URL a Primero?",
                                retry=False, status=status)
        return token.strip()

    async def aclose(self) -> None:
        await self._http.aclose()


def _data(response: httpx.Response) -> Mapping[str, Any]:
    try:
        body: Any = response.json()
    except ValueError:
        return {}
    data: Any = body.get("data") if isinstance(body, Mapping) else None
    return data if isinstance(data, Mapping) else {}


def _case_number(response: httpx.Response) -> str | None:
    number = _data(response).get("case_id_display")
    return str(number) if number else None
