"""Reads the operators' console needs beyond the triage page: search, live changes.

- by phone: the phone's pseudonym index (`keys.cases_by_phone`), one SMEMBERS per shard and
  one pipelined HMGET: no walk, no SCAN;
- live changes: every shard's audit stream read from one cursor (a stream id;
  XRANGE, bounded, one round trip), merged by id, so a poll costs
  O(shards × log N + new events) whatever the number of cases. Stream ids come
  from each master's clock: on a Cluster, an event stamped before the cursor by a
  master running behind is not shown live (it is in the case's trail all the same).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from redis.asyncio import Redis

from bot.store import keys
from bot.store.case_queries import SUMMARY_FIELDS
from bot.store.cases import references_of_phone, text_of

# A phone with more cases than this is shown its most recent ones only.
MAX_CASES_PER_PHONE = 50
# Most audit events one poll reads; the cursor continues after them.
MAX_CHANGES_PER_POLL = 200


async def cases_of_phone(
    redis: Redis, pseudonym: str, fields: Sequence[str] = SUMMARY_FIELDS
) -> list[dict[str, str]]:
    """The non-personal fields of every case of one phone (by its pseudonym)."""
    references = (await references_of_phone(redis, pseudonym))[-MAX_CASES_PER_PHONE:]
    if not references:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for reference in references:
            pipe.hmget(keys.case(reference), list(fields))
            pipe.get(keys.case_answers(reference))  # answers live beside the record
        replies = await pipe.execute()
    found = []
    for row, answers in zip(replies[::2], replies[1::2], strict=True):
        if row[0] is None:
            continue
        row = [answers if name == "answers" else value
               for name, value in zip(fields, row, strict=True)]
        found.append(
            {name: "" if v is None else text_of(v) for name, v in zip(fields, row, strict=True)}
        )
    return found


@dataclass(frozen=True)
class Change:
    id: str
    reference: str
    actor: str
    action: str
    at: str
    detail: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Changes:
    cursor: str
    items: list[Change]


def _stream_id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


async def latest_change_id(redis: Redis) -> str:
    async with redis.pipeline(transaction=False) as pipe:
        for shard in keys.SHARDS:
            pipe.xrevrange(keys.shard_audit(shard), count=1)
        newest = [text_of(found[0][0]) for found in await pipe.execute() if found]
    return max(newest, key=_stream_id) if newest else "0-0"


def cursor_at(moment: datetime) -> str:
    """A cursor just before `moment`: stream ids start with the epoch millisecond."""
    return f"{max(int(moment.timestamp() * 1000) - 1, 0)}-0"


async def changes_after(
    redis: Redis, cursor: str, *, quiet: Collection[str], shown: Sequence[str],
    count: int = MAX_CHANGES_PER_POLL,
) -> Changes:
    """Case events after `cursor` (a stream id), oldest first, without the `quiet` actions;
    of each event's detail, the `shown` fields only (the case service says which).

    At most `count` stream entries are read (reads and exports included): the returned
    cursor continues after the last one read. Each shard's stream is read from the
    cursor (one round trip) and the entries merged by id: the first `count` of the
    merge are every shard's entries up to the last one handed out.
    """
    async with redis.pipeline(transaction=False) as pipe:
        for shard in keys.SHARDS:
            pipe.xrange(keys.shard_audit(shard), min=f"({cursor}", count=count)
        per_shard = await pipe.execute()
    merged = sorted(((text_of(entry_id), raw) for found in per_shard for entry_id, raw in found),
                    key=lambda entry: _stream_id(entry[0]))
    entries = merged[:count]
    items = []
    last = cursor
    for entry_id, raw in entries or []:
        last = text_of(entry_id)
        values = {text_of(k): text_of(v) for k, v in (raw or {}).items()}
        reference = values.get("reference", "")
        action = values.get("action", "")
        if not reference or action in quiet:
            continue
        try:
            detail = json.loads(values.get("detail") or "{}")
        except ValueError:
            detail = {}
        passed = {k: detail[k] for k in shown if isinstance(detail, dict) and k in detail}
        items.append(
            Change(last, reference, values.get("actor", ""), action, values.get("at", ""), passed)
        )
    return Changes(cursor=last, items=items)
