"""One idempotent outbound delivery: claim, (check,) send, record — retried with back-off.

A retried or re-delivered job never sends the same message twice: the
delivery's record says it was sent already; a claim left by a run that died
mid-call, or an attempt that timed out or got a 5xx, is checked with Twilio
before anything is sent again: the messages of that text sent to that phone
since the attempt began, oldest first, of which it takes the first whose SID
no other delivery has recorded (another message of the same text to the same
phone is not this one: it would be lost). Taking a SID is atomic
(`deliveries.take_sid`): two such checks at once never take the same.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import httpx

from bot.jobs.deps import Deps, SmsGateway
from bot.jobs.errors import Failure, SendFailed
from bot.jobs.twilio_rest import OPTED_OUT_CODE
from bot.observability import typed_id
from bot.store import deliveries
from bot.store.deliveries import Claim, DeliveryState, Outcome, Purpose

log = logging.getLogger(__name__)

NOT_CONFIGURED = "sms_not_configured"


class Transport(Protocol):
    """How a delivery goes out; `kind` names it in audit actions (`sms_sent`…)."""

    kind: str

    async def send(self) -> str:
        """Send once; the provider's id of what was sent (or ''). Raises SendFailed."""
        ...

    async def find_sent(self, since: datetime) -> list[str]:
        """The ids of earlier sends like this one since `since`, oldest first; some may be
        other deliveries'. Raises SendFailed."""
        ...


@dataclass
class SmsTransport:
    gateway: SmsGateway | None
    to: str
    body: str
    status_callback: str | None
    kind: str = "sms"

    async def send(self) -> str:
        if self.gateway is None:
            raise SendFailed(Failure.PERMANENT, NOT_CONFIGURED)
        return await self.gateway.send(to=self.to, body=self.body,
                                       status_callback=self.status_callback)

    async def find_sent(self, since: datetime) -> list[str]:
        if self.gateway is None:
            return []
        return await self.gateway.find_sent(to=self.to, body=self.body, since=since)


@dataclass
class WebhookTransport:
    """A JSON POST carrying an `Idempotency-Key`: an uncertain attempt is simply posted
    again with the same key, for the receiver to recognise."""

    http: httpx.AsyncClient
    url: str
    payload: Mapping[str, object]
    idempotency_key: str
    kind: str = "webhook"

    async def send(self) -> str:
        try:
            response = await self.http.post(
                self.url, json=dict(self.payload),
                headers={"Idempotency-Key": self.idempotency_key},
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise SendFailed(Failure.RETRY, f"could not reach webhook ({type(exc).__name__})") \
                from exc
        except httpx.HTTPError as exc:
            raise SendFailed(Failure.UNKNOWN, f"webhook call failed ({type(exc).__name__})") \
                from exc
        status = response.status_code
        if status >= 500 or status in (408, 429):
            raise SendFailed(Failure.RETRY, f"webhook answered {status}")
        if status >= 400:
            raise SendFailed(Failure.PERMANENT, f"webhook refused ({status})", status)
        return ""

    async def find_sent(self, since: datetime) -> list[str]:
        return []


@dataclass(frozen=True, kw_only=True)
class Delivery:
    delivery_id: str
    reference: str
    purpose: Purpose
    detail: Mapping[str, object] = field(default_factory=dict)
    """Audit detail of every outcome (never a phone number or a text)."""
    phone_pseudonym: str = ""
    """The migrant's phone, to mark it opted out when Twilio says 21610."""


@dataclass(frozen=True)
class Done:
    """The delivery needs nothing more (sent, failed for good, skipped, done before)."""

    state: str


@dataclass(frozen=True)
class TryAgain:
    after_seconds: float


Result = Done | TryAgain


async def deliver(deps: Deps, delivery: Delivery, transport: Transport, *, job_id: str,
                  job_try: int, skip_reason: str | None = None) -> Result:
    """Carry out one delivery at most once; see the module's docstring."""
    now = deps.clock()
    claimed = await deliveries.claim(
        deps.redis, delivery_id=delivery.delivery_id, reference=delivery.reference,
        purpose=delivery.purpose, job_id=job_id, job_try=job_try, now=now,
        lease_seconds=deps.claim_lease_seconds,
    )
    if claimed.claim is Claim.DONE:
        return Done(claimed.state)
    if claimed.claim is Claim.BUSY:
        return TryAgain(deps.retry.delay(job_try))
    kind = transport.kind
    if skip_reason is not None:
        return await _finish(deps, delivery, now, Outcome(
            state=DeliveryState.SKIPPED, action=f"{kind}_skipped",
            detail={**delivery.detail, "reason": skip_reason}))
    try:
        if claimed.claim is Claim.UNCERTAIN:
            since = datetime.fromtimestamp(claimed.since, UTC)
            found = await _earlier_send(deps, delivery, await transport.find_sent(since))
            if found is not None:
                log.info("%s %s had gone out already", kind,
                         typed_id("delivery", delivery.delivery_id))
                return await _sent(deps, delivery, now, kind, found, claimed.attempt,
                                   reconciled=True)
        sid = await transport.send()
    except SendFailed as failed:
        return await _failed(deps, delivery, now, kind, failed, claimed.attempt, job_try)
    return await _sent(deps, delivery, now, kind, sid, claimed.attempt, reconciled=False)


async def _earlier_send(deps: Deps, delivery: Delivery, candidates: list[str]) -> str | None:
    """The first of `candidates` no other delivery has recorded, now this one's."""
    for sid in candidates:
        if await deliveries.take_sid(deps.redis, sid=sid, delivery_id=delivery.delivery_id,
                                     reference=delivery.reference):
            return sid
    return None


async def _finish(deps: Deps, delivery: Delivery, now: datetime, outcome: Outcome) -> Done:
    await deliveries.finish(deps.redis, delivery_id=delivery.delivery_id,
                            reference=delivery.reference, now=now, outcome=outcome,
                            phone_pseudonym=delivery.phone_pseudonym)
    return Done(str(outcome.state))


async def _sent(deps: Deps, delivery: Delivery, now: datetime, kind: str, sid: str,
                attempt: int, *, reconciled: bool) -> Done:
    detail: dict[str, object] = {**delivery.detail, "attempt": attempt}
    if sid:
        detail["sid"] = sid
    if reconciled:
        detail["found_after_uncertain_attempt"] = True
    return await _finish(deps, delivery, deps.clock(), Outcome(
        state=DeliveryState.SENT, action=f"{kind}_sent", detail=detail, sid=sid))


async def _failed(deps: Deps, delivery: Delivery, now: datetime, kind: str,
                  failed: SendFailed, attempt: int, job_try: int) -> Result:
    detail: dict[str, object] = {**delivery.detail, "attempt": attempt, "error": failed.reason}
    if failed.code is not None:
        detail["code"] = failed.code
    log.warning("%s %s attempt %d failed: %s", kind, typed_id("delivery", delivery.delivery_id),
                attempt, failed.reason)
    if failed.failure is Failure.PERMANENT or deps.retry.gives_up(job_try):
        if failed.failure is not Failure.PERMANENT:
            detail["gave_up"] = True
        if failed.code == OPTED_OUT_CODE and delivery.phone_pseudonym:
            await deliveries.mark_opted_out(deps.redis, delivery.phone_pseudonym)
            detail["opted_out"] = True
        return await _finish(deps, delivery, now, Outcome(
            state=DeliveryState.FAILED, action=f"{kind}_failed", detail=detail,
            error=failed.reason))
    delay = deps.retry.delay(job_try)
    detail["retry_in_seconds"] = delay
    state = DeliveryState.UNKNOWN if failed.failure is Failure.UNKNOWN else DeliveryState.RETRY
    await _finish(deps, delivery, now, Outcome(
        state=state, action=f"{kind}_attempt_failed", detail=detail, error=failed.reason))
    return TryAgain(delay)
