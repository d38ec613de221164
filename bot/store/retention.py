"""The index of ended cases that the retention purge walks (never a SCAN).

Which statuses end a case is the case service's rule
(`bot.cases.service.ENDED_STATUSES`, passed in). Every status change already
goes to its shard's audit stream, whoever makes it (operator, migrant), so
each shard's index is built from that stream, from a stored cursor on: no
writer of statuses has to know about retention, and cases ended before the
worker existed are indexed on its first run.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from bot.store import keys
from bot.store.cases import text_of

SYNC_BATCH = 1000
START = "0-0"


def _ended(fields: dict[str, str], action: str,
           ended: Collection[str]) -> tuple[str, float] | None:
    """(reference, epoch second) when this audit event (`action`, detail `to` in
    `ended`) ends a case."""
    if fields.get("action") != action or not fields.get("reference"):
        return None
    try:
        detail: Any = json.loads(fields.get("detail") or "{}")
        at = datetime.fromisoformat(fields["at"])
    except (KeyError, ValueError):
        return None
    if not isinstance(detail, dict) or detail.get("to") not in ended:
        return None
    return fields["reference"], at.timestamp()


async def sync_ended_index(redis: Redis, *, action: str, ended: Collection[str],
                           batch: int = SYNC_BATCH) -> int:
    """Index the cases that ended since the last call (an audit event `action` whose
    detail's `to` is in `ended`); return how many events were read."""
    read = 0
    for shard in keys.SHARDS:
        read += await _sync_shard(redis, shard, batch, action, frozenset(ended))
    return read


async def _sync_shard(redis: Redis, shard: int, batch: int, action: str,
                      ended_statuses: frozenset[str]) -> int:
    cursor = text_of(await redis.get(keys.cases_ended_cursor(shard)) or START)
    read = 0
    while True:
        entries = await redis.xrange(keys.shard_audit(shard), min=f"({cursor}", max="+",
                                     count=batch)
        if not entries:
            return read
        # No transaction needed: a crash before the cursor moves reads the events again,
        # and ZADD NX makes that harmless.
        async with redis.pipeline(transaction=False) as pipe:
            for _entry_id, raw in entries:
                fields = {text_of(k): text_of(v) for k, v in (raw or {}).items()}
                ended = _ended(fields, action, ended_statuses)
                if ended is not None:
                    # NX: a withdrawn case that is closed later keeps its first end.
                    pipe.zadd(keys.cases_ended(shard), {ended[0]: ended[1]}, nx=True)
            cursor = text_of(entries[-1][0])
            pipe.set(keys.cases_ended_cursor(shard), cursor)
            await pipe.execute()
        read += len(entries)


async def ended_before(redis: Redis, *, cutoff: datetime, count: int) -> list[str]:
    """References of cases that ended at or before `cutoff`, the oldest first."""
    async with redis.pipeline(transaction=False) as pipe:
        for shard in keys.SHARDS:
            pipe.zrangebyscore(keys.cases_ended(shard), "-inf", cutoff.timestamp(),
                               start=0, num=count, withscores=True)
        found = await pipe.execute()
    ended = sorted(((float(score), text_of(reference)) for rows in found
                    for reference, score in rows), key=lambda row: row[0])
    return [reference for _, reference in ended[:count]]


async def forget_ended(redis: Redis, references: Sequence[str]) -> None:
    """Drop purged cases from the index."""
    by_shard: dict[int, list[str]] = {}
    for reference in references:
        by_shard.setdefault(keys.shard_of(reference), []).append(reference)
    if not by_shard:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for shard, shard_references in by_shard.items():
            pipe.zrem(keys.cases_ended(shard), *shard_references)
        await pipe.execute()
