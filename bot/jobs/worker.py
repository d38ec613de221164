"""The worker of `helpline worker`: its jobs on taskiq, its schedule, and a life that
outlasts Redis restarts.

Jobs run in taskiq's `Receiver` over our broker (bot.jobs.broker). Each job
acknowledges its own message (taskiq's manual acknowledgement) once it is done
or its next try is queued; a job cut off mid-way (its worker killed) is left
unacknowledged and runs again after `HELPLINE_JOB_REDELIVERY_SECONDS`. A job whose
listener stopped on a Redis error runs on to its end, and only once (`_run_once`).
The schedule runs in every worker: the outbox pump each second (a consumer
group shares the events), the SLA check each minute and the retention purge
each hour, queued under one job id per minute or hour, so that however many
workers run, each runs once. `run_worker` starts all of it again (with
back-off) after each Redis failure, for as long as the process lives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from redis.exceptions import RedisError
from taskiq import AckableMessage, Context, TaskiqDepends
from taskiq.acks import AcknowledgeType
from taskiq.receiver import Receiver

from bot.cases.jobs import NOTIFY_ESCALATION, SEND_CASE_MESSAGE
from bot.errors import FlowError
from bot.flows.checked import load_checked
from bot.jobs import alerts, broadcasts, followups, messages, oncall, outbox, referrals, retention
from bot.jobs.broker import STREAM_ID
from bot.jobs.deps import (
    DEPS,
    QUEUE,
    WEBHOOK_TIMEOUT,
    CallGateway,
    Deps,
    RetryPolicy,
    SmsGateway,
    utcnow,
)
from bot.jobs.pace import Pace, PacedSms
from bot.jobs.primero_api import PrimeroClient
from bot.jobs.queue import BLOCK_MS, JobQueue, RetryLater
from bot.jobs.twilio_calls import TwilioCalls
from bot.jobs.twilio_rest import TwilioSms
from bot.outreach.broadcasts import SEND_ALERT_FALLBACK, SEND_BROADCAST
from bot.settings import Settings
from bot.store import outbox as outbox_store
from bot.store.connection import Store, open_store

log = logging.getLogger(__name__)

MAX_JOBS = 20
PUMP_EVERY_SECONDS = 1.0
PURGE_MINUTE = 17
RESTART_DELAY_FIRST = 0.5
RESTART_DELAY_MAX = 30.0
STOP_GRACE_SECONDS = 10.0
STOP_MARGIN_SECONDS = 5.0

Job = Callable[..., Awaitable[Any]]
JOBS: dict[str, Job] = {
    SEND_CASE_MESSAGE: messages.send_case_message,
    messages.SEND_CONFIRMATION: messages.send_confirmation,
    NOTIFY_ESCALATION: oncall.notify_escalation,
    oncall.NOTIFY_ONCALL: oncall.notify_oncall,
    oncall.CHECK_ACK_SLA: oncall.check_ack_sla,
    retention.PURGE_EXPIRED: retention.purge_expired,
    referrals.REFER_CASE: referrals.refer_case,
    followups.SEND_FOLLOWUP: followups.send_followup,
    SEND_BROADCAST: broadcasts.send_broadcast,
    SEND_ALERT_FALLBACK: alerts.send_alert_fallback,
    broadcasts.RESUME_BROADCASTS: broadcasts.resume_broadcasts,
}


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def _as_task(name: str, job: Job, deps: Deps, queue: JobQueue) -> Callable[..., Awaitable[Any]]:
    """`job` as a taskiq task that acknowledges its message itself (see the module).

    The job counts as running until it is acknowledged (or gives up): its task may
    outlive the listener that started it (a Redis failure), and the next listener
    must neither run it again nor let it be taken over (`ReliableStream.recover_own`).
    It is marked before the job's first await, so before any later listener starts.
    """
    broker = queue.broker

    async def run(*args: Any, context: Context = TaskiqDepends()) -> Any:  # noqa: B008
        message = context.message
        job_try = int(message.labels.get("job_try") or 1)
        ctx = {DEPS: deps, QUEUE: queue, "job_id": message.task_id, "job_try": job_try}
        with broker.running(message.labels.get(STREAM_ID)):
            try:
                result = await job(ctx, *args)
            except RetryLater as again:
                await _again(name, context, queue, job_try, again.after_seconds, deps.retry)
                return None
            except (RedisError, OSError) as exc:
                log.warning("store unavailable during %s (%s); retrying", name,
                            type(exc).__name__)
                await _again_once_redis_answers(name, context, queue, job_try, deps.retry)
                return None
            except Exception:
                log.exception("job %s failed", name)
                await context.ack()
                return None
            await context.ack()
            return result

    return run


async def _again(name: str, context: Context, queue: JobQueue, job_try: int,
                 after_seconds: float, policy: RetryPolicy) -> None:
    """Queue the next try, then let this one go (a failure leaves it to redelivery)."""
    if policy.gives_up(job_try):
        log.error("job %s gave up after %d tries", name, job_try)
    else:
        await queue.again(context.message, after_seconds=after_seconds)
    await context.ack()


async def _again_once_redis_answers(name: str, context: Context, queue: JobQueue,
                                    job_try: int, policy: RetryPolicy) -> None:
    """Queue the next try, waiting for Redis to answer (the job stays this worker's
    meanwhile; if the worker stops first, redelivery runs it again)."""
    wait = RESTART_DELAY_FIRST
    while True:
        try:
            await _again(name, context, queue, job_try, policy.delay(job_try), policy)
            return
        except (RedisError, OSError):
            await asyncio.sleep(wait)
            wait = min(wait * 2, RESTART_DELAY_MAX)


def register_jobs(deps: Deps, queue: JobQueue) -> None:
    for name, job in JOBS.items():
        if queue.broker.find_task(name) is None:
            queue.broker.register_task(_as_task(name, job, deps, queue), task_name=name)


@dataclass
class Opened:
    store: Store
    deps: Deps
    queue: JobQueue

    @property
    def ctx(self) -> dict[str, Any]:
        return {DEPS: self.deps, QUEUE: self.queue}

    async def close(self) -> None:
        await self.queue.close()
        if self.deps.sms is not None:
            await self.deps.sms.aclose()
        if self.deps.primero is not None:
            await self.deps.primero.aclose()
        if self.deps.calls is not None:
            await self.deps.calls.aclose()
        await self.deps.http.aclose()
        await self.store.close()


def open_deps(settings: Settings, *, clock: Callable[[], datetime] = utcnow,
              sms: SmsGateway | None = None, retry: RetryPolicy | None = None,
              block_ms: int = BLOCK_MS, primero: PrimeroClient | None = None,
              calls: CallGateway | None = None) -> Opened:
    """Connect the store and the queue, build what jobs need; `sms` replaces Twilio,
    `primero` and `calls` the clients built from the settings (tests)."""
    compiled = load_checked(settings.flow, settings.ussd_max_chars)
    if messages.CONFIRMATION_TEXT not in compiled.flow.texts:
        raise FlowError(f"{settings.flow}: missing text '{messages.CONFIRMATION_TEXT}' "
                        "(the SMS confirming a request made over USSD)")
    store = open_store(settings)
    gateway = sms if sms is not None else TwilioSms.from_settings(settings)
    if gateway is None:
        log.warning("Twilio is not configured: SMS will fail (TWILIO_ACCOUNT_SID, "
                    "TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID)")
    consumer = consumer_name()
    # Every message to one person waits in the pace's priority lane (docs/outreach.md).
    pace = Pace(store.redis, mps=settings.outbound_mps)
    deps = Deps(settings=settings, redis=store.redis, flow=compiled.flow,
                sms=PacedSms(gateway, pace) if gateway is not None else None,
                http=httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT), clock=clock,
                retry=retry or RetryPolicy(), consumer=consumer,
                primero=primero or PrimeroClient.from_settings(settings), compiled=compiled,
                calls=calls if calls is not None else TwilioCalls.from_settings(settings),
                pace=pace)
    queue = JobQueue.open(settings, store, consumer=consumer, block_ms=block_ms)
    register_jobs(deps, queue)
    return Opened(store, deps, queue)


def receiver(queue: JobQueue, *, stop_grace: float = STOP_GRACE_SECONDS) -> Receiver:
    return Receiver(queue.broker, ack_type=AcknowledgeType.MANUAL, max_async_tasks=MAX_JOBS,
                    wait_tasks_timeout=stop_grace)


async def run_burst(opened: Opened, *, poll_delay: float) -> None:
    """Run every job queued now (and their retries, when due), then return; no schedule."""
    broker = opened.queue.broker
    runner = receiver(opened.queue)
    await broker.declare_group()
    while True:
        found: list[AckableMessage] = await broker.fetch(block_ms=None)
        if found:
            await asyncio.gather(*(runner.callback(message) for message in found))
            continue
        next_due = await broker.promote()
        if next_due is None:
            return
        await asyncio.sleep(next_due + poll_delay)


async def _schedule(opened: Opened, finish: asyncio.Event, *, pump_every: float) -> None:
    """The outbox pump, and the periodic jobs queued once per minute or hour."""
    ctx, queue = opened.ctx, opened.queue
    redis = opened.deps.redis
    await outbox_store.ensure_group(redis)
    await outbox_store.forget_idle_consumers(redis)
    await queue.enqueue(oncall.CHECK_ACK_SLA)
    await queue.enqueue(retention.PURGE_EXPIRED)
    await queue.enqueue(broadcasts.RESUME_BROADCASTS)
    while not finish.is_set():
        await outbox.pump_outbox(ctx)
        await followups.tick(ctx)
        now = datetime.now(UTC)
        await queue.enqueue(oncall.CHECK_ACK_SLA,
                            job_id=f"cron:{oncall.CHECK_ACK_SLA}:{now:%Y-%m-%dT%H:%M}")
        await queue.enqueue(broadcasts.RESUME_BROADCASTS,
                            job_id=f"cron:{broadcasts.RESUME_BROADCASTS}:{now:%Y-%m-%dT%H:%M}")
        if now.minute >= PURGE_MINUTE:
            await queue.enqueue(retention.PURGE_EXPIRED,
                                job_id=f"cron:{retention.PURGE_EXPIRED}:{now:%Y-%m-%dT%H}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(finish.wait(), pump_every)


async def _run_once(opened: Opened, stop: asyncio.Event, *, pump_every: float,
                    stop_grace: float) -> BaseException | None:
    """Run until `stop` or a failure; the failure, if one ended it.

    When the listener fails (Redis gone), taskiq's receiver stops without waiting for
    the jobs it started: they run on, each to its end (acknowledged, or its next try
    queued once Redis answers). Cancelling one mid-send could leave an attempt nobody
    can tell went out; the next listener leaves them be (`recover_own`).
    """
    finish = asyncio.Event()
    listening = asyncio.ensure_future(
        receiver(opened.queue, stop_grace=stop_grace).listen(finish))
    ticking = asyncio.ensure_future(_schedule(opened, finish, pump_every=pump_every))
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({listening, ticking, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finish.set()  # both stop on their own (a Redis call is not cut off half-way)...
    stopping.cancel()
    ending = {listening, ticking}
    if stop.is_set():  # jobs an earlier listener left running get the same grace
        ending.add(asyncio.ensure_future(opened.queue.broker.wait_running(stop_grace)))
    _, late = await asyncio.wait(ending, timeout=stop_grace + STOP_MARGIN_SECONDS)
    for task in late:  # ... or are cut off, without waiting for them to agree
        task.cancel()
    failures = [task.exception() for task in (listening, ticking)
                if task.done() and not task.cancelled()]  # each one retrieved
    return next((failure for failure in failures if failure is not None), None)


def _describe(failure: BaseException | None) -> str:
    if isinstance(failure, BaseExceptionGroup):
        return ", ".join(_describe(inner) for inner in failure.exceptions)
    return f"{type(failure).__name__}: {failure}"


def _lost_redis(failure: BaseException) -> bool:
    """Whether `failure` is Redis going away (taskiq's receiver groups its errors)."""
    if isinstance(failure, BaseExceptionGroup):
        _, other = failure.split((RedisError, OSError))
        return other is None
    return isinstance(failure, RedisError | OSError)


async def run_worker(settings: Settings, *, stop: asyncio.Event, opened: Opened | None = None,
                     poll_delay: float = PUMP_EVERY_SECONDS,
                     stop_grace: float = STOP_GRACE_SECONDS) -> None:
    """Run the worker until `stop` is set, starting again after each Redis failure."""
    own = opened is None
    opened = opened or open_deps(settings)
    opened.queue.broker.is_worker_process = True
    loop = asyncio.get_running_loop()
    delay = RESTART_DELAY_FIRST
    try:
        while not stop.is_set():
            started = loop.time()
            failure = await _run_once(opened, stop, pump_every=poll_delay,
                                      stop_grace=stop_grace)
            if stop.is_set():
                return
            if failure is not None and not _lost_redis(failure):
                raise failure
            if loop.time() - started > RESTART_DELAY_MAX:
                delay = RESTART_DELAY_FIRST  # it had been running well: a new outage
            log.warning("worker lost Redis (%s); starting again in %.1fs",
                        _describe(failure), delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, RESTART_DELAY_MAX)
    finally:
        if own:
            await opened.close()
