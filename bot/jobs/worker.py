"""The arq worker of `helpline worker`: its functions, its schedule, and a life that
outlasts Redis restarts.

arq's own loop stops at the first Redis error; `run_worker` starts it again
(with back-off) for as long as the process lives. Nothing is lost meanwhile:
arq keeps a job in its queue until the job finishes, and a job interrupted
mid-way runs again once its in-progress mark expires (job timeout + 10 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from arq import cron, func
from arq.connections import RedisSettings
from arq.worker import Retry, Worker
from redis.exceptions import RedisError

from bot.cases.jobs import NOTIFY_ESCALATION, SEND_CASE_MESSAGE, arq_redis_settings
from bot.errors import FlowError
from bot.flows.checked import load_checked
from bot.jobs import messages, oncall, outbox, retention
from bot.jobs.deps import DEPS, WEBHOOK_TIMEOUT, Deps, RetryPolicy, SmsGateway, deps_of, utcnow
from bot.jobs.twilio_rest import TwilioSms
from bot.settings import Settings
from bot.store import outbox as outbox_store
from bot.store.connection import Store, open_store

log = logging.getLogger(__name__)

# A job interrupted mid-way (its worker killed, Redis gone) runs again once arq's
# in-progress mark expires: this timeout + 10 s.
JOB_TIMEOUT_SECONDS = 120
MAX_JOBS = 20
POLL_DELAY_SECONDS = 0.5
EVERY_SECOND = set(range(60))
PURGE_MINUTE = 17
RESTART_DELAY_FIRST = 0.5
RESTART_DELAY_MAX = 30.0
STOP_GRACE_SECONDS = 10.0

Job = Callable[..., Awaitable[Any]]


def _survives_store_errors(job: Job) -> Job:
    """A Redis error inside a job is retried later (arq would count it as failed for good)."""

    @functools.wraps(job)
    async def run(ctx: dict[str, Any], *args: Any) -> Any:
        try:
            return await job(ctx, *args)
        except (RedisError, OSError) as exc:
            job_try = int(ctx.get("job_try") or 1)
            log.warning("store unavailable during %s (%s); retrying", job.__name__,
                        type(exc).__name__)
            raise Retry(defer=deps_of(ctx).retry.delay(job_try)) from exc

    return run


def functions(policy: RetryPolicy) -> list[Any]:
    jobs: dict[str, Job] = {
        SEND_CASE_MESSAGE: messages.send_case_message,
        messages.SEND_CONFIRMATION: messages.send_confirmation,
        NOTIFY_ESCALATION: oncall.notify_escalation,
        oncall.NOTIFY_ONCALL: oncall.notify_oncall,
    }
    return [
        func(_survives_store_errors(job), name=name, max_tries=policy.max_tries)  # type: ignore[arg-type]
        for name, job in jobs.items()
    ]


def cron_jobs() -> list[Any]:
    return [
        cron(_survives_store_errors(outbox.pump_outbox), name=outbox.PUMP_OUTBOX,  # type: ignore[arg-type]
             second=EVERY_SECOND, run_at_startup=True),
        cron(_survives_store_errors(oncall.check_ack_sla), name=oncall.CHECK_ACK_SLA,  # type: ignore[arg-type]
             second=0, run_at_startup=True),
        cron(_survives_store_errors(retention.purge_expired), name=retention.PURGE_EXPIRED,  # type: ignore[arg-type]
             minute=PURGE_MINUTE, second=0, run_at_startup=True),
    ]


async def _on_startup(ctx: dict[str, Any]) -> None:
    redis = deps_of(ctx).redis
    await outbox_store.ensure_group(redis)
    await outbox_store.forget_idle_consumers(redis)


def worker_settings(deps: Deps, redis_settings: RedisSettings, *,
                    poll_delay: float = POLL_DELAY_SECONDS, burst: bool = False,
                    with_cron: bool = True) -> dict[str, Any]:
    """The arq worker's settings (arq's `WorkerSettings`, as a dict) around `deps`."""
    return {
        "functions": functions(deps.retry),
        "cron_jobs": cron_jobs() if with_cron else [],
        "redis_settings": redis_settings,
        "ctx": {DEPS: deps},
        "on_startup": _on_startup,
        "max_tries": deps.retry.max_tries,
        "max_jobs": MAX_JOBS,
        "job_timeout": JOB_TIMEOUT_SECONDS,
        "poll_delay": poll_delay,
        "burst": burst,
        "handle_signals": False,
    }


def queue_settings(settings: Settings, store: Store) -> RedisSettings:
    """arq's connection: the embedded server's socket, or `REDIS_URL`."""
    if store.embedded is not None:
        url = f"unix://{store.embedded.socket_file}"
    else:
        assert settings.redis_url is not None
        url = settings.redis_url
    found = arq_redis_settings(url)  # ValueError on Redis Cluster: arq cannot run there
    assert isinstance(found, RedisSettings)
    return found


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass
class Opened:
    store: Store
    deps: Deps

    async def close(self) -> None:
        if self.deps.sms is not None:
            await self.deps.sms.aclose()
        await self.deps.http.aclose()
        await self.store.close()


def open_deps(settings: Settings, *, clock: Callable[[], datetime] = utcnow,
              sms: SmsGateway | None = None, retry: RetryPolicy | None = None) -> Opened:
    """Connect the store and build what jobs need; `sms` replaces Twilio (tests)."""
    compiled = load_checked(settings.flow, settings.ussd_max_chars)
    if messages.CONFIRMATION_TEXT not in compiled.flow.texts:
        raise FlowError(f"{settings.flow}: missing text '{messages.CONFIRMATION_TEXT}' "
                        "(the SMS confirming a request made over USSD)")
    store = open_store(settings)
    gateway = sms if sms is not None else TwilioSms.from_settings(settings)
    if gateway is None:
        log.warning("Twilio is not configured: SMS will fail (TWILIO_ACCOUNT_SID, "
                    "TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID)")
    deps = Deps(settings=settings, redis=store.redis, flow=compiled.flow, sms=gateway,
                http=httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT), clock=clock,
                retry=retry or RetryPolicy(), consumer=consumer_name())
    return Opened(store, deps)


async def _stop_worker(worker: Worker, *, grace: float) -> None:
    """Let running jobs finish for `grace` seconds, cancel the rest (arq runs them again)."""
    worker.allow_pick_jobs = False
    running = [task for task in worker.tasks.values() if not task.done()]
    if running and grace > 0:
        await asyncio.wait(running, timeout=grace)
    for task in worker.tasks.values():
        task.cancel()
    if worker.main_task is not None:
        worker.main_task.cancel()
    await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
    if worker._pool is not None:
        with contextlib.suppress(RedisError, OSError):
            await worker.pool.delete(worker.health_check_key)
        with contextlib.suppress(RedisError, OSError):
            await worker.pool.aclose(close_connection_pool=True)


async def run_burst(deps: Deps, redis_settings: RedisSettings, *,
                    poll_delay: float = POLL_DELAY_SECONDS) -> Worker:
    """Run every job queued now (and their retries), then return; no scheduled jobs."""
    worker = Worker(**worker_settings(deps, redis_settings, poll_delay=poll_delay, burst=True,
                                      with_cron=False))
    try:
        await worker.main()
    finally:
        await _stop_worker(worker, grace=0)
    return worker


async def run_worker(settings: Settings, *, stop: asyncio.Event, opened: Opened | None = None,
                     poll_delay: float = POLL_DELAY_SECONDS,
                     stop_grace: float = STOP_GRACE_SECONDS) -> None:
    """Run the worker until `stop` is set, starting arq again after each Redis failure."""
    own = opened is None
    opened = opened or open_deps(settings)
    loop = asyncio.get_running_loop()
    delay = RESTART_DELAY_FIRST
    try:
        redis_settings = queue_settings(settings, opened.store)
        while not stop.is_set():
            started = loop.time()
            worker = Worker(**worker_settings(opened.deps, redis_settings, poll_delay=poll_delay))
            worker.main_task = asyncio.ensure_future(worker.main())
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({worker.main_task, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            failure = None
            if worker.main_task.done() and not worker.main_task.cancelled():
                failure = worker.main_task.exception()
            await _stop_worker(worker, grace=stop_grace if stop.is_set() else 0)
            if stop.is_set():
                return
            if failure is not None and not isinstance(failure, RedisError | OSError):
                raise failure
            if loop.time() - started > RESTART_DELAY_MAX:
                delay = RESTART_DELAY_FIRST  # it had been running well: a new outage
            log.warning("worker lost Redis (%s); starting again in %.1fs",
                        type(failure).__name__, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, RESTART_DELAY_MAX)
    finally:
        if own:
            await opened.close()
