"""The job queue's brokers: taskiq-redis's stream brokers, with what they lack filled in.

taskiq-redis reads jobs from a Redis stream through a consumer group on one
server (`RedisStreamBroker`), on Sentinel (`RedisStreamSentinelBroker`) and on
Cluster (`RedisStreamClusterBroker`). The worker's guarantees need more
(docs/worker.md, "Why taskiq, and what we added"), the same on all three:

- **Redelivery.** A job whose worker died (read, never acknowledged) runs again.
  The Cluster and Sentinel brokers never XAUTOCLAIM; the one-server broker does
  only after a read that brought new jobs. Here every poll claims the jobs idle
  longer than `HELPLINE_JOB_REDELIVERY_SECONDS`, and a worker touches the jobs it
  is running (XCLAIM … JUSTID) every third of that: only a dead worker's jobs are
  taken over, however long a job runs. A job taken over runs with its try number
  raised by the times it was handed out.
- **Running jobs outlive a listener.** A listener that stops on a Redis error
  leaves the jobs it started running (see `recover_own`): they stay marked in
  flight, heartbeated, and are neither run again by the next listener nor
  claimed by any poll of this worker. After a Redis outage the pending entries
  are idle by the outage's length: the heartbeat retries each
  `RETOUCH_SECONDS` while Redis is away, and a listener starting claims other
  workers' jobs only one heartbeat period later, so live workers touch their
  jobs first.
- **Delays.** taskiq asks for a delay with a `delay` label, which the brokers
  ignore (a retry runs at once). Here a delayed job waits in a sorted set and is
  moved into the stream, atomically, when due.
- **Once-only ids.** A job queued with a `once` label is dropped when a job of
  that id was queued within that many milliseconds (arq's `_job_id`).
- **Acknowledge and delete** (XACK + XDEL): the stream holds only jobs not yet
  done, and the consumer group starts at `0`, so jobs queued before any worker
  started are not skipped (`$`, the brokers' default, would skip them).

The stream, the sorted set and the once-only marks share the `{jobs}` hash tag:
each script touches one Cluster slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError, ResponseError
from taskiq import AckableMessage, AsyncBroker, BrokerMessage, TaskiqMessage
from taskiq_redis import (
    RedisStreamBroker,
    RedisStreamClusterBroker,
    RedisStreamSentinelBroker,
)

from bot.observability import typed_id
from bot.store import keys
from bot.store.connection import close_client
from bot.store.scripts import Script

log = logging.getLogger(__name__)

GROUP = "workers"
JOB_TRY = "job_try"
DELAY = "delay"
ONCE = "once"
STREAM_ID = "stream_id"
READ_COUNT = 20
PROMOTE_COUNT = 100
RECLAIM_COUNT = 20
RETOUCH_SECONDS = 0.5
"""How soon the heartbeat tries again when Redis did not answer it."""
CONNECT_TIMEOUT_SECONDS = 5.0
COMMAND_RETRIES = 2
# A blocked read waits this much longer than its block time before giving up on Redis.
READ_TIMEOUT_MARGIN_SECONDS = 5.0

PUSH = Script.load("push_job")
PROMOTE = Script.load("promote_jobs")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class ReliableStream(AsyncBroker):
    """What the three stream brokers share here (see the module's docstring).

    Mixed in before a taskiq-redis stream broker, whose `queue_name`,
    `consumer_group_name`, `consumer_name` and `block` it uses.
    """

    queue_name: str
    consumer_group_name: str
    consumer_name: str
    block: int
    redelivery_ms: int = 60_000
    _inflight: dict[str, None]
    """Jobs handed to a listener and not finished: the heartbeat touches them."""
    _running: dict[str, asyncio.Task[Any] | None]
    """Jobs whose task has started and not ended (whatever became of their listener)."""
    _claim_after: float = 0.0
    """Loop time before which polls take over no other worker's jobs (`recover_own`)."""
    _heartbeat: asyncio.Task[None] | None = None

    def _client(self) -> Any:
        """A Redis client (bytes replies) of this deployment."""
        raise NotImplementedError

    # -- queuing ---------------------------------------------------------

    async def push(self, message: BrokerMessage) -> bool:
        """Queue `message` (after its `delay`, once per `once` window); False if dropped."""
        delay_ms = max(0, round(float(message.labels.get(DELAY) or 0) * 1000))
        once_ms = max(0, int(message.labels.get(ONCE) or 0))
        mark = keys.job_once(message.task_id) if once_ms else keys.jobs_stream()
        queued = await PUSH.run(self._client(), [keys.jobs_stream(), keys.jobs_delayed(), mark],
                                [message.message, delay_ms, once_ms])
        return bool(queued)

    async def kick(self, message: BrokerMessage) -> None:
        await self.push(message)

    async def promote(self) -> float | None:
        """Move due delayed jobs into the stream; seconds until the next job is ready
        (0 when some were moved now), None when none waits."""
        moved, next_ms = await PROMOTE.run(self._client(),
                                           [keys.jobs_stream(), keys.jobs_delayed()],
                                           [PROMOTE_COUNT])
        if int(moved) > 0:
            return 0.0
        return None if int(next_ms) < 0 else int(next_ms) / 1000

    # -- reading ---------------------------------------------------------

    async def declare_group(self) -> None:
        try:
            await self._client().xgroup_create(
                self.queue_name, self.consumer_group_name, id="0", mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def startup(self) -> None:
        # taskiq's own start-up only: the taskiq-redis brokers' group declaration
        # starts at `$` (and the Cluster one closes its client when done).
        await AsyncBroker.startup(self)
        await self.declare_group()

    async def fetch(self, *, block_ms: int | None) -> list[AckableMessage]:
        """Jobs to run now: due delayed ones moved in, dead workers' ones, then new ones."""
        await self.promote()
        found = await self._reclaim()
        if found:
            return found
        client = self._client()
        fetched = await client.xreadgroup(
            self.consumer_group_name, self.consumer_name, {self.queue_name: ">"},
            count=READ_COUNT, block=block_ms,
        )
        for _stream, entries in fetched or []:
            for entry_id, fields in entries:
                found.append(self._deliver(entry_id, fields, handed_out=1))
        return found

    async def _reclaim(self) -> list[AckableMessage]:
        if asyncio.get_running_loop().time() < self._claim_after:
            return []
        client = self._client()
        reply = await client.xautoclaim(
            self.queue_name, self.consumer_group_name, self.consumer_name,
            min_idle_time=self.redelivery_ms, start_id="0-0", count=RECLAIM_COUNT,
        )
        entries = reply[1] if reply else []
        found = []
        for entry_id, fields in entries:
            if entry_id is None or self._is_ours(_text(entry_id)):
                continue  # deleted, or this worker's own job still running or queued
            pending = await client.xpending_range(
                self.queue_name, self.consumer_group_name, min=entry_id, max=entry_id, count=1
            )
            handed_out = int(pending[0]["times_delivered"]) if pending else 2
            log.warning("%s was left by a worker that stopped; running it again",
                        typed_id("job", _text(entry_id)))
            found.append(self._deliver(entry_id, fields, handed_out=handed_out))
        return found

    def _deliver(self, entry_id: bytes | str, fields: Mapping[Any, Any] | None,
                 *, handed_out: int) -> AckableMessage:
        """The message of a stream entry, its try number raised when handed out again."""
        stream_id = _text(entry_id)
        data: bytes = (fields or {}).get(b"data", b"")
        try:
            message: TaskiqMessage = self.formatter.loads(data)
        except ValueError:
            # The receiver acks it.
            log.error("%s cannot be read; dropped", typed_id("job", stream_id))
        else:
            job_try = int(message.labels.get(JOB_TRY) or 1) + handed_out - 1
            message.labels.update({JOB_TRY: job_try, STREAM_ID: stream_id})
            data = self.formatter.dumps(message).message
        self._inflight[stream_id] = None
        self._start_heartbeat()
        return AckableMessage(data=data, ack=lambda: self.ack(stream_id))

    async def recover_own(self) -> list[AckableMessage]:
        """Jobs this consumer read and did not run: called when a listener starts (the
        one before stopped on a Redis error with jobs read and not yet run).

        The jobs whose task still runs (started by the listener before; neither it nor
        taskiq's receiver cancels them) are not run again: a second run would find the
        first one's claim, ask Twilio, find nothing yet (the first is waiting for its
        pace slot or for Twilio) and send too. They stay in flight, touched at once
        (their entries may be idle past the limit after an outage); the others are
        handed out again. Other workers' jobs are claimed only a heartbeat period
        later, once their live owners have had the time to touch them.
        """
        self._inflight = dict.fromkeys(self._running)
        loop = asyncio.get_running_loop()
        self._claim_after = loop.time() + self.redelivery_ms / 3000
        client = self._client()
        if self._running:
            await self._touch(list(self._running))
        found = []
        start = "0"
        while True:
            fetched = await client.xreadgroup(
                self.consumer_group_name, self.consumer_name, {self.queue_name: start},
                count=RECLAIM_COUNT,
            )
            entries = [entry for _stream, page in fetched or [] for entry in page]
            for entry_id, fields in entries:
                if fields and not self._is_ours(_text(entry_id)):
                    found.append(self._deliver(entry_id, fields, handed_out=2))
            if len(entries) < RECLAIM_COUNT:
                return found
            start = _text(entries[-1][0])

    def _is_ours(self, stream_id: str) -> bool:
        """Whether this worker is running the job, or has it queued to run."""
        return stream_id in self._running or stream_id in self._inflight

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        for message in await self.recover_own():
            yield message
        while True:
            for message in await self.fetch(block_ms=self.block):
                yield message

    # -- finishing ---------------------------------------------------------

    async def ack(self, stream_id: str) -> None:
        """The job is done (or its retry is queued): forget it."""
        async with self._client().pipeline(transaction=False) as pipe:
            pipe.xack(self.queue_name, self.consumer_group_name, stream_id)
            pipe.xdel(self.queue_name, stream_id)
            await pipe.execute()
        self._inflight.pop(stream_id, None)

    @contextlib.contextmanager
    def running(self, stream_id: str | None) -> Iterator[None]:
        """Mark the job of `stream_id` as running here while the block runs (its task
        may outlive its listener: `recover_own`); then stop touching it, acknowledged or
        not (a job left unacknowledged is taken over when idle)."""
        if stream_id is None:
            yield
            return
        self._running[stream_id] = asyncio.current_task()
        self._inflight[stream_id] = None
        try:
            yield
        finally:
            self._running.pop(stream_id, None)
            self._inflight.pop(stream_id, None)

    async def wait_running(self, grace: float) -> None:
        """Give the jobs still running (whichever listener started them) `grace` seconds."""
        tasks = {task for task in self._running.values() if task is not None}
        if tasks:
            await asyncio.wait(tasks, timeout=grace)

    def _start_heartbeat(self) -> None:
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.get_running_loop().create_task(self._touch_running())

    async def _touch_running(self) -> None:
        every = self.redelivery_ms / 3000
        wait = every
        while True:
            await asyncio.sleep(wait)
            wait = every
            running = list(self._inflight)
            if not running:
                continue
            try:
                await self._touch(running)
            except (RedisError, OSError):
                wait = min(every, RETOUCH_SECONDS)  # touch them as soon as Redis is back

    async def _touch(self, stream_ids: list[str]) -> None:
        await self._client().xclaim(
            self.queue_name, self.consumer_group_name, self.consumer_name,
            min_idle_time=0, message_ids=stream_ids, justid=True,
        )

    async def stop_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.wait({self._heartbeat}, timeout=1.0)
            self._heartbeat = None
        self._inflight.clear()


class StreamBroker(ReliableStream, RedisStreamBroker):
    """One server (`redis://`, `rediss://`, `unix://`)."""

    def _client(self) -> Any:
        return Redis(connection_pool=self.connection_pool)

    async def shutdown(self) -> None:
        await self.stop_heartbeat()
        await super().shutdown()


class ClusterStreamBroker(ReliableStream, RedisStreamClusterBroker):
    """Redis Cluster (`redis+cluster://`)."""

    def _client(self) -> Any:
        return self.redis

    async def shutdown(self) -> None:
        await self.stop_heartbeat()
        await super().shutdown()


class SentinelStreamBroker(ReliableStream, RedisStreamSentinelBroker):
    """Sentinel (`redis+sentinel://`): the master's client follows failovers."""

    _master: Any = None

    def _client(self) -> Any:
        if self._master is None:
            self._master = self.sentinel.master_for(self.master_name)
        return self._master

    async def shutdown(self) -> None:
        await self.stop_heartbeat()
        if self._master is not None:
            await close_client(self._master)
            self._master = None
        for sentinel in self.sentinel.sentinels:  # taskiq-redis leaves them open
            await sentinel.aclose()
        await super().shutdown()


Broker = StreamBroker | ClusterStreamBroker | SentinelStreamBroker


def sentinel_hosts(url: str) -> tuple[list[tuple[str, int]], str]:
    """The sentinels and the master's name of a `redis+sentinel://h:p,h2:p/name` URL."""
    parts = urlsplit(url)
    hosts = [
        (host.split(":")[0], int(host.split(":")[1]) if ":" in host else 26379)
        for host in parts.netloc.split(",")
    ]
    return hosts, parts.path.strip("/") or "mymaster"


def broker_for_url(url: str, *, consumer: str, redelivery_seconds: float,
                   block_ms: int) -> Broker:
    """The broker of a `REDIS_URL`: one server, Sentinel or Cluster."""
    common: dict[str, Any] = {
        "queue_name": keys.jobs_stream(),
        "consumer_group_name": GROUP,
        "consumer_name": consumer,
        "consumer_id": "0",
        "xread_block": block_ms,
        "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "socket_timeout": block_ms / 1000 + READ_TIMEOUT_MARGIN_SECONDS,
        # A connection left from before a Redis restart fails once: try again on a new one.
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), COMMAND_RETRIES),
    }
    scheme = urlsplit(url).scheme
    broker: Broker
    if scheme == "redis+cluster":
        broker = ClusterStreamBroker(url.replace("redis+cluster://", "redis://", 1), **common)
    elif scheme == "redis+sentinel":
        sentinels, master = sentinel_hosts(url)
        broker = SentinelStreamBroker(sentinels=sentinels, master_name=master, **common)
    elif scheme in ("redis", "rediss", "unix"):
        broker = StreamBroker(url, **common)
    else:
        raise ValueError(f"the job queue cannot use a {scheme} URL")
    broker.redelivery_ms = max(1, round(redelivery_seconds * 1000))
    broker._inflight = {}
    broker._running = {}
    return broker
