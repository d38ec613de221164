"""Background jobs the case services ask for, queued on the worker's job queue (arq).

The worker registers functions under these names; a job carries only
references and ids, and the worker reads the rest (phone, text) when it runs,
so an erasure in between leaves nothing to send.
"""

from __future__ import annotations

from typing import Protocol

# send_case_message(reference: str, entry_id: str): SMS a journal entry of kind `message`.
SEND_CASE_MESSAGE = "send_case_message"
# notify_escalation(reference: str, level: int): tell on-call about an escalated case.
NOTIFY_ESCALATION = "notify_escalation"


class CaseJobs(Protocol):
    async def enqueue(self, job: str, *args: str | int) -> None: ...

    async def close(self) -> None: ...


class ArqCaseJobs:
    """Queues jobs with arq, on its own connection pool (arq needs raw bytes replies)."""

    def __init__(self, redis_settings: object) -> None:
        self._redis_settings = redis_settings
        self._pool: object | None = None

    async def enqueue(self, job: str, *args: str | int) -> None:
        from arq.connections import ArqRedis, RedisSettings, create_pool

        if self._pool is None:
            assert isinstance(self._redis_settings, RedisSettings)
            self._pool = await create_pool(self._redis_settings)
        assert isinstance(self._pool, ArqRedis)
        await self._pool.enqueue_job(job, *args)

    async def close(self) -> None:
        from arq.connections import ArqRedis

        if isinstance(self._pool, ArqRedis):
            await self._pool.aclose()
        self._pool = None
