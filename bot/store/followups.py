"""Follow-up check-ins in Redis (docs/spec.md §11): one compact record per case, a due index.

Per case shard (the case's own slot, so each script is atomic on a Cluster too):

- `keys.followups(shard)`, a hash: reference → the case's record, its return time
  and its check-ins (format: `lua/followup_change.lua`), some 70 bytes for three;
- `keys.followups_due(shard)`, a sorted set: reference → the epoch second something
  next happens to it (a check-in due, a sent one expiring): one entry a case, not a
  check-in, so the worker's look at what is due is one ZRANGEBYSCORE a shard.

No rules here: which statuses a change may start from, what is audited, who may
be asked are the case service's (`bot.cases.followups`), passed in as arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from bot.store import keys
from bot.store.cases import text_of
from bot.store.scripts import Script, batch

PER_MILLE = 1000
DUE_BATCH = 500
"""Cases a look at one shard's due index returns at most (the rest: next second)."""

CALLED_AGAIN = "d"
"""The origin code of a check-in placed again after a call nobody took (`unanswered`)."""

CHANGE = Script.load("followup_change")
DUE = Script.load("followups_due")


@dataclass(frozen=True)
class Entry:
    """One check-in as stored (codes as in `lua/followups_record.lua`)."""

    id: int
    origin: str
    channel: str
    status: str
    due: int
    sent: int | None = None
    answered: int | None = None
    scores: tuple[float | None, float | None, float | None] = (None, None, None)
    """economic, social, psychosocial, from 0 to 1."""
    flags: str = ""


@dataclass(frozen=True)
class Record:
    returned: int | None
    entries: tuple[Entry, ...]


def _int(value: str) -> int | None:
    return int(value) if value else None


def _score(value: str) -> float | None:
    return int(value) / PER_MILLE if value else None


def parse_record(raw: str) -> Record:
    """A stored record (the Lua side's `parse_record`)."""
    head, *parts = raw.split(";")
    head = head.partition(",")[0]  # the return time (then tenths of days to it)
    entries = []
    for part in parts:
        if not part:
            continue
        values = part.split(",") + [""] * 11
        entries.append(Entry(
            id=int(values[0]), origin=values[1], channel=values[2], status=values[3],
            due=int(values[4]), sent=_int(values[5]), answered=_int(values[6]),
            scores=(_score(values[7]), _score(values[8]), _score(values[9])),
            flags=values[10]))
    return Record(returned=_int(head), entries=tuple(entries))


def _shard_keys(reference: str) -> tuple[int, str, str]:
    shard = keys.shard_of(reference)
    return shard, keys.followups(shard), keys.followups_due(shard)


def _change_keys(reference: str) -> list[str]:
    shard, hash_key, due_key = _shard_keys(reference)
    return [hash_key, due_key, keys.case(reference), keys.case_answers(reference),
            keys.shard_audit(shard), keys.case_trail(reference)]


def schedule_call(*, reference: str, returned_at: int, consent_answer: str, consent_yes: str,
                  days: Sequence[int], channel: str, ttl: int
                  ) -> tuple[list[str], list[str | int]]:
    return (_change_keys(reference),
            ["schedule", reference, ttl, returned_at, consent_answer, consent_yes,
             " ".join(str(day) for day in days), channel])


async def schedule(redis: Redis, *, reference: str, returned_at: int, consent_answer: str,
                   consent_yes: str, days: Sequence[int], channel: str, ttl: int) -> int:
    """Record the return and schedule its check-ins (see the script); how many now."""
    return int(await CHANGE.run(redis, *schedule_call(
        reference=reference, returned_at=returned_at, consent_answer=consent_answer,
        consent_yes=consent_yes, days=days, channel=channel, ttl=ttl)))


async def add(redis: Redis, *, reference: str, now: int, channel: str, ttl: int, actor: str,
              action: str, at: str) -> int:
    """Append a check-in due now; its id (-1: no such case)."""
    return int(await CHANGE.run(redis, _change_keys(reference),
                                ["add", reference, ttl, now, channel, actor, action, at]))


async def unanswered(redis: Redis, *, reference: str, followup_id: int, again_at: int | None,
                     ttl: int, actor: str, action: str, at: str, reason: str) -> int:
    """A check-in call nobody took: expired now, and called again at `again_at` (once).
    The new check-in's id, 0 for none, -1 when it was not a sent, unanswered one."""
    return int(await CHANGE.run(redis, _change_keys(reference), [
        "unanswered", reference, ttl, followup_id, "" if again_at is None else again_at,
        actor, action, at, reason]))


def _mark_call(reference: str, ids: str, sources: str, target: str, now: int,
               scores: str, flags: str, ttl: int, actor: str, action: str, at: str,
               detail: str) -> tuple[list[str], list[str | int]]:
    return (_change_keys(reference),
            ["mark", reference, ttl, ids, sources, target, now, scores, flags, actor, action,
             at, detail])


def encode_scores(scores: Sequence[float | None]) -> str:
    return " ".join("-" if value is None else str(round(value * PER_MILLE)) for value in scores)


async def mark(redis: Redis, *, reference: str, ids: str, sources: str, target: str,
               now: int, ttl: int, actor: str = "", action: str = "", at: str = "",
               detail: str = "{}", scores: str = "", flags: str = "") -> int:
    """Move check-ins `ids` (or '*') in one of `sources` to `target`; how many moved."""
    return int(await CHANGE.run(redis, *_mark_call(reference, ids, sources, target, now,
                                                    scores, flags, ttl, actor, action, at,
                                                    detail)))


def queue_mark(pipe: Any, *, reference: str, ids: str, sources: str, target: str, now: int,
               ttl: int, actor: str, action: str, at: str, detail: str, scores: str,
               flags: str) -> None:
    """`mark` on a pipeline (the conversation's own, with its commit)."""
    CHANGE.queue(pipe, *_mark_call(reference, ids, sources, target, now, scores, flags, ttl,
                                   actor, action, at, detail))


@dataclass(frozen=True)
class Due:
    reference: str
    send: tuple[int, ...]
    expire: tuple[int, ...]


async def due(redis: Redis, *, now: int, ttl: int, limit: int = DUE_BATCH) -> list[Due]:
    """Every shard's cases with something due by `now`, in one round trip."""
    async with batch(redis) as pipe:
        for shard in keys.SHARDS:
            DUE.queue(pipe, [keys.followups_due(shard), keys.followups(shard)],
                      [now, limit, ttl])
        found = await pipe.execute()
    out = []
    for rows in found:
        values = [text_of(value) for value in rows]
        for i in range(0, len(values), 3):
            out.append(Due(values[i], tuple(int(x) for x in values[i + 1].split()),
                           tuple(int(x) for x in values[i + 2].split())))
    return out


async def read(redis: Redis, reference: str) -> Record | None:
    raw = await redis.hget(keys.followups(keys.shard_of(reference)), reference)
    return parse_record(text_of(raw)) if raw is not None else None


async def read_all(redis: Redis) -> dict[str, Record]:
    """Every case's record (the programme report), one HGETALL a shard in one round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        for shard in keys.SHARDS:
            pipe.hgetall(keys.followups(shard))
        found = await pipe.execute()
    return {text_of(reference): parse_record(text_of(raw))
            for rows in found for reference, raw in rows.items()}


async def forget(redis: Redis, reference: str) -> None:
    """Drop a case's record and its due entry (tests and the retention of erased cases)."""
    _, hash_key, due_key = _shard_keys(reference)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hdel(hash_key, reference)
        pipe.zrem(due_key, reference)
        await pipe.execute()


async def sync_cursor(redis: Redis, shard: int) -> str:
    raw = await redis.get(keys.followups_cursor(shard))
    return text_of(raw) if raw is not None else "0-0"


async def set_sync_cursor(redis: Redis, shard: int, cursor: str) -> None:
    await redis.set(keys.followups_cursor(shard), cursor)
