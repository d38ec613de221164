"""The outbox of case creation: one Redis stream per case shard, read through a consumer group.

The creation script (`CREATE_CASE`) adds one event per new case to its shard's
stream in the same atomic step as the case itself; a referral's script one per
referral (the event names it). Workers read events with
XREADGROUP, take over the events of a worker that died before acknowledging
them with XAUTOCLAIM, and acknowledge and delete an event (XACK + XDEL) once
its jobs are queued. Queuing is idempotent (deterministic job ids), so an event
read twice is harmless.

Every function here covers all the shards (one script per shard, all in one
round trip), so a worker reads and acknowledges as if there were one stream:
an event's `entry_id` is `<shard>/<stream id>`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bot.cases.model import CaseKind, Priority
from bot.observability import typed_id
from bot.store import keys
from bot.store.cases import text_of
from bot.store.scripts import Script, batch

log = logging.getLogger(__name__)

GROUP = "workers"
BATCH = 100
# An event read by a worker that has not acknowledged it after this long is taken over.
CLAIM_IDLE_MS = 60_000
# Each worker process reads under a name of its own; names idle this long are dropped.
FORGET_IDLE_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class OutboxEvent:
    entry_id: str
    reference: str
    kind: CaseKind
    priority: Priority
    channel: str
    language: str
    created_at: datetime
    referral: str = ""
    """Set on the event a referral leaves (`bot.store.referrals`): its id."""


def event_from_entry(entry_id: Any, fields: Mapping[Any, Any]) -> OutboxEvent | None:
    """The event of a stream entry; None (logged) when the entry cannot be understood."""
    values = {text_of(k): text_of(v) for k, v in fields.items()}
    try:
        return OutboxEvent(
            entry_id=text_of(entry_id),
            reference=values["reference"],
            kind=CaseKind(values["kind"]),
            priority=Priority(values["priority"]),
            channel=values["channel"],
            language=values["language"],
            created_at=datetime.fromisoformat(values["created_at"]),
            referral=values.get("referral", ""),
        )
    except (KeyError, ValueError):
        log.error("%s cannot be read; dropped", typed_id("outbox", text_of(entry_id)))
        return None


READ_OUTBOX = Script.load("read_outbox")

ACKNOWLEDGE = Script.load("acknowledge_outbox")

SEPARATOR = "/"


def _entry_id(shard: int, stream_id: Any) -> str:
    return f"{shard}{SEPARATOR}{text_of(stream_id)}"


async def ensure_group(redis: Redis) -> None:
    """Create the workers' consumer group (and the stream) of every shard if missing."""
    async with redis.pipeline(transaction=False) as pipe:
        for shard in keys.SHARDS:
            pipe.xgroup_create(keys.cases_outbox(shard), GROUP, id="0", mkstream=True)
        results = await pipe.execute(raise_on_error=False)
    for result in results:
        if isinstance(result, ResponseError) and "BUSYGROUP" not in str(result):
            raise result


@dataclass(frozen=True)
class Batch:
    events: list[OutboxEvent]
    unreadable: list[str]
    """Ids of entries that cannot be read: acknowledged with the rest, so they never block."""

    @property
    def entry_ids(self) -> list[str]:
        return [event.entry_id for event in self.events] + self.unreadable


def _batch(entries: Sequence[tuple[str, Any]]) -> Batch:
    events: list[OutboxEvent] = []
    unreadable: list[str] = []
    for entry_id, fields in entries:
        if not fields:  # deleted meanwhile
            unreadable.append(entry_id)
            continue
        event = event_from_entry(entry_id, _fields(fields))
        if event is None:
            unreadable.append(entry_id)
        else:
            events.append(event)
    return Batch(events, unreadable)


def _fields(raw: Any) -> dict[str, str]:
    if isinstance(raw, Mapping):
        return {text_of(k): text_of(v) for k, v in raw.items()}
    flat = [text_of(part) for part in raw]
    return dict(zip(flat[::2], flat[1::2], strict=True))


async def read_events(
    redis: Redis, *, consumer: str, count: int = BATCH, claim_idle_ms: int = CLAIM_IDLE_MS
) -> Batch:
    """Events left unacknowledged by a dead worker, then new ones, from every shard.

    At most `count` of each kind per shard; a shard whose group Redis lost
    (restarted without its data) gets it again.
    """
    async with batch(redis) as pipe:
        for shard in keys.SHARDS:
            READ_OUTBOX.queue(pipe, [keys.cases_outbox(shard)],
                              [GROUP, consumer, count, claim_idle_ms])
        replies = await pipe.execute()
    entries: list[tuple[str, Any]] = []
    for shard, (claimed, fresh) in zip(keys.SHARDS, replies, strict=True):
        for entry_id, fields in [*(claimed or []), *(fresh or [])]:
            entries.append((_entry_id(shard, entry_id), fields))
    return _batch(entries)


async def forget_idle_consumers(redis: Redis, *, idle_ms: int = FORGET_IDLE_MS) -> int:
    """Drop consumers (workers gone long ago) holding no event; how many were dropped.

    A worker reads every shard under one name: it counts once.
    """
    dropped: set[str] = set()
    for shard in keys.SHARDS:
        stream = keys.cases_outbox(shard)
        try:
            consumers = await redis.xinfo_consumers(stream, GROUP)
        except ResponseError:  # no stream or no group yet
            continue
        for consumer in consumers:
            if int(consumer["pending"]) == 0 and int(consumer["idle"]) > idle_ms:
                await redis.xgroup_delconsumer(stream, GROUP, text_of(consumer["name"]))
                dropped.add(text_of(consumer["name"]))
    return len(dropped)


async def acknowledge(redis: Redis, entry_ids: Sequence[str]) -> None:
    """Acknowledge and delete handled events (ids from `read_events`), shard by shard."""
    by_shard: dict[int, list[str]] = {}
    for entry_id in entry_ids:
        shard_text, _, stream_id = entry_id.partition(SEPARATOR)
        by_shard.setdefault(int(shard_text), []).append(stream_id)
    if not by_shard:
        return
    async with batch(redis) as pipe:
        for shard, stream_ids in sorted(by_shard.items()):
            ACKNOWLEDGE.queue(pipe, [keys.cases_outbox(shard)], [GROUP, *stream_ids])
        await pipe.execute()


async def pending_events(redis: Redis) -> int:
    """Events waiting in every shard's outbox (read or not), for metrics and tests."""
    async with redis.pipeline(transaction=False) as pipe:
        for shard in keys.SHARDS:
            pipe.xlen(keys.cases_outbox(shard))
        return sum(int(length) for length in await pipe.execute())
