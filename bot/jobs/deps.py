"""What every job needs, built once per worker process and handed to each job in `ctx`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from redis.asyncio import Redis

from bot.flows.compiler import CompiledFlow
from bot.flows.model import Flow
from bot.jobs.primero_api import PrimeroClient
from bot.jobs.queue import JobQueue
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.jobs.pace import Pace

DEPS = "helpline"
QUEUE = "queue"

# Back-off of a failed outbound call: base · 2^(try − 1), capped; after `max_tries`, give up.
RETRY_BASE_SECONDS = 2.0
RETRY_CAP_SECONDS = 15 * 60.0
MAX_TRIES = 10
MAX_DOUBLINGS = 62
# A claim on a delivery that its holder neither finished nor released after this long
# is taken to be dead (its worker died mid-call).
CLAIM_LEASE_SECONDS = 60
WEBHOOK_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
BULK_SENDS_AT_ONCE = 8


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = RETRY_BASE_SECONDS
    cap_seconds: float = RETRY_CAP_SECONDS
    max_tries: int = MAX_TRIES

    def delay(self, job_try: int) -> float:
        """Seconds to wait after failed try number `job_try` (1, 2, …)."""
        doublings = min(max(job_try - 1, 0), MAX_DOUBLINGS)  # 2^big overflows a float
        return float(min(self.cap_seconds, self.base_seconds * 2**doublings))

    def gives_up(self, job_try: int) -> bool:
        return job_try >= self.max_tries


class CallGateway(Protocol):
    async def call(self, *, to: str, url: str, status_callback: str | None) -> str: ...

    async def find_placed(self, *, to: str, since: datetime) -> list[str]: ...

    async def aclose(self) -> None: ...


class SmsGateway(Protocol):
    async def send(self, *, to: str, body: str, status_callback: str | None) -> str: ...

    async def find_sent(self, *, to: str, body: str, since: datetime) -> list[str]: ...

    async def aclose(self) -> None: ...


@dataclass
class Deps:
    settings: Settings
    redis: Redis
    """The store's client (decoded replies); the job queue is `ctx[QUEUE]`."""
    flow: Flow
    sms: SmsGateway | None
    """None when Twilio is not configured: SMS then fail, audited, instead of going out."""
    http: httpx.AsyncClient
    clock: Callable[[], datetime] = utcnow
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    claim_lease_seconds: int = CLAIM_LEASE_SECONDS
    consumer: str = "worker"
    """This worker's name in the outbox consumer group."""
    primero: PrimeroClient | None = None
    """None when Primero is not configured: referrals then fail, saying so."""
    compiled: CompiledFlow | None = None
    """The flow compiled, for the conversations the worker starts (check-ins)."""
    calls: CallGateway | None = None
    """None when Twilio cannot place calls: voice check-ins then fail, audited."""
    pace: Pace | None = None
    """The deployment's outbound budget (`sms` waits in its priority lane already)."""
    bulk_sends: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(BULK_SENDS_AT_ONCE))
    """Broadcast messages this process hands to Twilio at once, all shares together: the
    pace spaces them, so a few suffice, and a few keep-alive connections serve them."""

    def console_link(self, reference: str) -> str:
        base = (self.settings.public_url or "").rstrip("/")
        return f"{base}/admin/#/case/{reference}"

    def status_callback(self) -> str | None:
        if not self.settings.public_url:
            return None
        return f"{self.settings.public_url.rstrip('/')}/webhooks/twilio/status"


def deps_of(ctx: dict[str, Any]) -> Deps:
    deps = ctx[DEPS]
    assert isinstance(deps, Deps)
    return deps


def queue_of(ctx: dict[str, Any]) -> JobQueue:
    queue = ctx[QUEUE]
    assert isinstance(queue, JobQueue)
    return queue


def job_identity(ctx: dict[str, Any]) -> tuple[str, int]:
    """The id of the running job (the same on each try) and its try number (1 first)."""
    return str(ctx.get("job_id", "")), int(ctx.get("job_try") or 1)
