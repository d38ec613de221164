"""The outbox of case creation: a Redis stream that workers read through a consumer group.

The creation script (`CREATE_CASE`) adds one event per new case in the same
atomic step as the case itself. Workers read events with XREADGROUP, take over
the events of a worker that died before acknowledging them with XAUTOCLAIM, and
acknowledge and delete an event (XACK + XDEL) once its jobs are queued.
Queuing is idempotent (deterministic job ids), so an event read twice is harmless.
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
from bot.store import keys
from bot.store.cases import text_of

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
        )
    except (KeyError, ValueError):
        log.error("outbox entry %s cannot be read; dropped", text_of(entry_id))
        return None


async def ensure_group(redis: Redis) -> None:
    """Create the workers' consumer group (and the stream) if they do not exist yet."""
    try:
        await redis.xgroup_create(keys.cases_outbox(), GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


@dataclass(frozen=True)
class Batch:
    events: list[OutboxEvent]
    unreadable: list[str]
    """Ids of entries that cannot be read: acknowledged with the rest, so they never block."""

    @property
    def entry_ids(self) -> list[str]:
        return [event.entry_id for event in self.events] + self.unreadable


def _batch(entries: Sequence[Any]) -> Batch:
    events: list[OutboxEvent] = []
    unreadable: list[str] = []
    for entry_id, fields in entries:
        if fields is None:  # deleted meanwhile
            unreadable.append(text_of(entry_id))
            continue
        event = event_from_entry(entry_id, fields)
        if event is None:
            unreadable.append(text_of(entry_id))
        else:
            events.append(event)
    return Batch(events, unreadable)


async def read_events(
    redis: Redis, *, consumer: str, count: int = BATCH, claim_idle_ms: int = CLAIM_IDLE_MS
) -> Batch:
    """Events left unacknowledged by a dead worker, then new ones; at most `count` of each."""
    try:
        return await _read_events(redis, consumer, count, claim_idle_ms)
    except ResponseError as exc:
        if "NOGROUP" not in str(exc):
            raise
        # Redis came back without its data (no persistence): start the group again.
        await ensure_group(redis)
        return await _read_events(redis, consumer, count, claim_idle_ms)


async def _read_events(redis: Redis, consumer: str, count: int, claim_idle_ms: int) -> Batch:
    stream = keys.cases_outbox()
    claimed = await redis.xautoclaim(
        stream, GROUP, consumer, min_idle_time=claim_idle_ms, start_id="0-0", count=count
    )
    entries: list[Any] = list(claimed[1]) if claimed else []
    fresh: Any = await redis.xreadgroup(GROUP, consumer, {stream: ">"}, count=count)
    for _stream, stream_entries in fresh or []:
        entries.extend(stream_entries)
    return _batch(entries)


async def forget_idle_consumers(redis: Redis, *, idle_ms: int = FORGET_IDLE_MS) -> int:
    """Drop consumers (workers gone long ago) holding no event; how many were dropped."""
    dropped = 0
    for consumer in await redis.xinfo_consumers(keys.cases_outbox(), GROUP):
        if int(consumer["pending"]) == 0 and int(consumer["idle"]) > idle_ms:
            await redis.xgroup_delconsumer(keys.cases_outbox(), GROUP, text_of(consumer["name"]))
            dropped += 1
    return dropped


async def acknowledge(redis: Redis, entry_ids: Sequence[str]) -> None:
    """Acknowledge and delete handled events, in one transaction."""
    if not entry_ids:
        return
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xack(keys.cases_outbox(), GROUP, *entry_ids)
        pipe.xdel(keys.cases_outbox(), *entry_ids)
        await pipe.execute()
