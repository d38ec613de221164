"""Background jobs the case services ask for, queued on the worker's job queue (arq).

The worker registers functions under these names; a job carries only
references and ids, and the worker reads the rest (phone, text) when it runs,
so an erasure in between leaves nothing to send.
"""

from __future__ import annotations

from typing import Protocol

from bot.errors import JobQueueUnavailable

# send_case_message(reference: str, entry_id: str): SMS a journal entry of kind `message`.
SEND_CASE_MESSAGE = "send_case_message"
# notify_escalation(reference: str, level: int): tell on-call about an escalated case.
NOTIFY_ESCALATION = "notify_escalation"


def arq_redis_settings(url: str) -> object:
    """arq's connection settings for a `REDIS_URL` (plain, TLS, unix socket or Sentinel).

    arq has no Redis Cluster client: a `redis+cluster://` URL raises ValueError.
    """
    from urllib.parse import parse_qs, urlsplit

    from arq.connections import RedisSettings

    parts = urlsplit(url)
    if parts.scheme == "redis+sentinel":
        hosts = [
            (host.split(":")[0], int(host.split(":")[1]) if ":" in host else 26379)
            for host in parts.netloc.split(",")
        ]
        return RedisSettings(
            host=hosts, sentinel=True, sentinel_master=parts.path.strip("/") or "mymaster"
        )
    if parts.scheme == "unix":
        # arq's from_dsn reads a socket path as a database number.
        database = parse_qs(parts.query).get("db", ["0"])[0]
        return RedisSettings(unix_socket_path=parts.path, database=int(database))
    if parts.scheme in ("redis", "rediss"):
        return RedisSettings.from_dsn(url)
    raise ValueError(f"the job queue (arq) cannot use a {parts.scheme} URL")


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


class NoJobQueue:
    """Stands in where arq cannot connect (Redis Cluster): enqueuing is refused."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def enqueue(self, job: str, *args: str | int) -> None:
        raise JobQueueUnavailable(self.reason)

    async def close(self) -> None:
        return None
