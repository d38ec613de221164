"""Queuing jobs: the web app and the worker put jobs on the broker through a `JobQueue`.

A job is a taskiq message: a registered name, its arguments (references and ids
only), and labels: its try number, a delay, and for a job given an id, a
once-only window (queuing the same id again within it does nothing, so an
outbox event or an SLA reminder read twice is queued once).
"""

from __future__ import annotations

from typing import Any

from taskiq import TaskiqMessage

from bot.jobs.broker import DELAY, JOB_TRY, ONCE, STREAM_ID, Broker, broker_for_url
from bot.settings import Settings
from bot.store.connection import Store

# A job id queued once stays "queued" this long (arq kept a job's result an hour).
ONCE_WINDOW_SECONDS = 3600
# How long a worker's read waits for new jobs before looking at delayed and dead ones.
BLOCK_MS = 1000


class RetryLater(Exception):
    """Raised by a job that must run again after `after_seconds` (a later try)."""

    def __init__(self, after_seconds: float) -> None:
        super().__init__(f"retry in {after_seconds:.1f}s")
        self.after_seconds = after_seconds


def queue_url(settings: Settings, store: Store) -> str:
    """Where the queue lives: the embedded server's socket, or `REDIS_URL`."""
    if store.embedded is not None:
        return f"unix://{store.embedded.socket_file}"
    assert settings.redis_url is not None
    return settings.redis_url


class JobQueue:
    """Puts jobs on the broker (the web app's and the worker's side alike)."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    @classmethod
    def open(cls, settings: Settings, store: Store, *, consumer: str = "web",
             block_ms: int = BLOCK_MS) -> JobQueue:
        return cls(broker_for_url(
            queue_url(settings, store), consumer=consumer, block_ms=block_ms,
            redelivery_seconds=settings.job_redelivery_seconds,
        ))

    async def enqueue(self, job: str, *args: str | int, job_id: str | None = None,
                      delay_seconds: float = 0.0, job_try: int = 1) -> bool:
        """Queue `job(*args)`; with `job_id`, only if that id was not queued in the last
        hour. False when it was (nothing queued)."""
        labels: dict[str, Any] = {JOB_TRY: job_try}
        if delay_seconds > 0:
            labels[DELAY] = delay_seconds
        if job_id is not None:
            labels[ONCE] = ONCE_WINDOW_SECONDS * 1000
        message = TaskiqMessage(
            task_id=job_id or self.broker.id_generator(), task_name=job, labels=labels,
            args=list(args), kwargs={},
        )
        return await self.broker.push(self.broker.formatter.dumps(message))

    async def again(self, message: TaskiqMessage, *, after_seconds: float) -> None:
        """Queue the next try of a job's message, after `after_seconds`."""
        labels = {k: v for k, v in message.labels.items() if k not in (STREAM_ID, ONCE)}
        labels[JOB_TRY] = int(message.labels.get(JOB_TRY) or 1) + 1
        labels[DELAY] = after_seconds
        retry = message.model_copy(update={"labels": labels, "labels_types": None})
        await self.broker.push(self.broker.formatter.dumps(retry))

    async def close(self) -> None:
        await self.broker.shutdown()
