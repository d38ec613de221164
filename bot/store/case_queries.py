"""Operator reads of cases: triage pages, one case with its journal, stats.

A page is one Lua call per case shard, all sent in one round trip (one
pipeline on one server; one per master, at once, on a Cluster). Each call
walks its shard's smallest index that every match belongs to, in triage
order, from the cursor on, and returns at most a page of matches with their
scores; the page is the k-way merge of the shards' heads.

Scores are unique across shards (the shard number is in their low bits), so
one score says where every shard stands: a shard's walk that stopped at its
budget bounds what the merge may hand out (nothing beyond it is known yet),
and the next cursor is the score of the last case handed out, or that bound.
"""

from __future__ import annotations

import heapq
import json
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from bot.cases.model import (
    Case,
    CaseKind,
    CaseStatus,
    JournalEntry,
    Priority,
)
from bot.cases.references import REFERENCE_DIGITS
from bot.errors import CaseNotFound
from bot.store import keys
from bot.store.case_scripts import PAGE_OF_CASES, READ_CASE
from bot.store.cases import case_from_record, iso, text_of
from bot.store.scripts import batch

MAX_PAGE_SIZE = 100
# Cases one page call may examine before it answers with what it found so far;
# bounds the cost of a very selective filter (the next cursor continues the walk).
EXAMINE_BUDGET = 2000
EXPORT_CHUNK = 500

# Record fields that carry no personal data: list items, export rows.
SUMMARY_FIELDS = (
    "reference",
    "kind",
    "status",
    "priority",
    "escalated",
    "escalation_level",
    "assignee",
    "language",
    "channel",
    "consent_text_version",
    "created_at",
    "updated_at",
    "erased_at",
)


@dataclass(frozen=True)
class CaseFilter:
    status: CaseStatus | None = None
    kind: CaseKind | None = None
    priority: Priority | None = None
    escalated: bool | None = None
    assignee: str | None = None
    reference_prefix: str = ""
    name_fragment: str = ""

    def indexes(self, shard: int) -> list[str]:
        found = [keys.cases_triage(shard)]
        if self.status is not None:
            found.append(keys.cases_by_status(shard, self.status))
        if self.kind is not None:
            found.append(keys.cases_by_kind(shard, self.kind))
        if self.priority is not None:
            found.append(keys.cases_by_priority(shard, self.priority))
        if self.escalated:
            found.append(keys.cases_escalated(shard))
        if self.assignee:
            found.append(keys.cases_by_assignee(shard, self.assignee))
        return found

    def record_fields(self) -> dict[str, str]:
        wanted: dict[str, str] = {}
        if self.status is not None:
            wanted["status"] = str(self.status)
        if self.kind is not None:
            wanted["kind"] = str(self.kind)
        if self.priority is not None:
            wanted["priority"] = str(self.priority)
        if self.escalated is not None:
            wanted["escalated"] = "1" if self.escalated else "0"
        if self.assignee:
            wanted["assignee"] = self.assignee
        return wanted


@dataclass(frozen=True)
class Page:
    items: list[dict[str, str]] = field(default_factory=list)
    next_cursor: str | None = None


@dataclass(frozen=True)
class _ShardPage:
    rows: list[tuple[int, dict[str, str]]]
    """(score, fields) of each match, in triage order."""
    frontier: float
    """Every match of the shard up to this score is in `rows` (inf: the walk ended)."""


def _shard_page(raw: Sequence[Any], fields: Sequence[str]) -> _ShardPage:
    values = [text_of(value) for value in raw]
    width = len(fields) + 1
    rows = [
        (int(float(values[start])),
         dict(zip(fields, values[start + 1 : start + width], strict=True)))
        for start in range(1, len(values), width)
    ]
    return _ShardPage(rows, float(values[0]) if values[0] else math.inf)


def merge_pages(pages: Sequence[_ShardPage], limit: int) -> Page:
    """The first `limit` matches over every shard, in triage order, and the next cursor."""
    bound = min((page.frontier for page in pages), default=math.inf)
    known = heapq.merge(*(page.rows for page in pages), key=lambda row: row[0])
    ready = [row for row in known if row[0] <= bound]
    taken = ready[:limit]
    if len(taken) == limit and (len(ready) > limit or bound < math.inf):
        next_cursor: str | None = str(taken[-1][0])
    elif len(taken) < limit and bound < math.inf:
        next_cursor = str(int(bound))
    else:
        next_cursor = None
    return Page(items=[row for _, row in taken], next_cursor=next_cursor)


async def case_summary(
    redis: Redis, reference: str, fields: Sequence[str] = SUMMARY_FIELDS
) -> dict[str, str] | None:
    """One case's fields (no audit needed: `answers` only to say why its priority), or None."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hmget(keys.case(reference), list(fields))
        pipe.get(keys.case_answers(reference))
        values, answers = await pipe.execute()
    if values[0] is None:
        return None
    values = [answers if name == "answers" else value
              for name, value in zip(fields, values, strict=True)]
    return {
        name: "" if value is None else text_of(value)
        for name, value in zip(fields, values, strict=True)
    }


async def _exact_reference(redis: Redis, case_filter: CaseFilter, fields: Sequence[str]) -> Page:
    found = await case_summary(
        redis, case_filter.reference_prefix, [*fields, *case_filter.record_fields()]
    )
    if found is None or any(found[k] != v for k, v in case_filter.record_fields().items()):
        return Page()
    return Page(items=[{name: found[name] for name in fields}])


async def page_of_cases(
    redis: Redis,
    *,
    case_filter: CaseFilter,
    limit: int,
    cursor: str | None,
    fields: Sequence[str] = SUMMARY_FIELDS,
    budget: int = EXAMINE_BUDGET,
) -> Page:
    """One page in triage order (urgent, high, normal; oldest first), from `cursor` on.

    A page may hold fewer than `limit` items while `next_cursor` is set: the walk
    stopped at its budget; following the cursor continues it.
    """
    if len(case_filter.reference_prefix) == REFERENCE_DIGITS and not case_filter.name_fragment:
        return Page() if cursor else await _exact_reference(redis, case_filter, fields)
    async with batch(redis) as pipe:
        for shard in keys.SHARDS:
            PAGE_OF_CASES.queue(
                pipe,
                case_filter.indexes(shard),
                [
                    keys.case_prefix(shard),
                    cursor or "",
                    limit,
                    max(budget, limit),
                    json.dumps(case_filter.record_fields())
                    if case_filter.record_fields() else "{}",
                    case_filter.reference_prefix,
                    case_filter.name_fragment.lower(),
                    keys.answers_prefix(shard),
                    *fields,
                ],
            )
        raw = await pipe.execute()
    return merge_pages([_shard_page(shard_raw, fields) for shard_raw in raw], limit)


async def walk_cases(
    redis: Redis, *, fields: Sequence[str] = SUMMARY_FIELDS, chunk: int = EXPORT_CHUNK
) -> AsyncIterator[dict[str, str]]:
    """Every case in triage order, a chunk a round trip (for exports)."""
    cursor: str | None = None
    while True:
        page = await page_of_cases(
            redis, case_filter=CaseFilter(), limit=chunk, cursor=cursor, fields=fields
        )
        for item in page.items:
            yield item
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _journal_entry(raw: Any) -> JournalEntry:
    return JournalEntry.model_validate_json(text_of(raw))


async def read_case_audited(
    redis: Redis, *, reference: str, actor: str, now: datetime
) -> tuple[Case, list[JournalEntry]]:
    """One case with its journal; the read is audited in the same atomic step."""
    raw = await READ_CASE.run(
        redis,
        [
            keys.case(reference),
            keys.case_notes(reference),
            keys.shard_audit(keys.shard_of(reference)),
            keys.case_answers(reference),
            keys.case_trail(reference),
        ],
        [actor, iso(now), reference],
    )
    if not raw:
        raise CaseNotFound(reference)
    flat, journal, answers = raw
    values = [text_of(value) for value in flat]
    record = dict(zip(values[::2], values[1::2], strict=True))
    record["answers"] = text_of(answers) if answers else ""
    return case_from_record(record), [_journal_entry(entry) for entry in journal]


@dataclass(frozen=True)
class Stats:
    total: int
    escalated: int
    by_kind: Mapping[str, int]
    by_status: Mapping[str, int]
    by_priority: Mapping[str, int]
    by_day: Mapping[str, int]


async def case_stats(redis: Redis) -> Stats:
    """Counts from every shard's indexes (O(1) each): erased cases still count."""
    async with redis.pipeline(transaction=False) as pipe:
        for shard in keys.SHARDS:
            pipe.zcard(keys.cases_triage(shard))
            pipe.zcard(keys.cases_escalated(shard))
            for kind in CaseKind:
                pipe.zcard(keys.cases_by_kind(shard, kind))
            for status in CaseStatus:
                pipe.zcard(keys.cases_by_status(shard, status))
            for priority in Priority:
                pipe.zcard(keys.cases_by_priority(shard, priority))
            pipe.hgetall(keys.cases_per_day(shard))
        results = list(await pipe.execute())
    width = len(results) // keys.CASE_SHARDS
    total = escalated = 0
    by_kind = dict.fromkeys(map(str, CaseKind), 0)
    by_status = dict.fromkeys(map(str, CaseStatus), 0)
    by_priority = dict.fromkeys(map(str, Priority), 0)
    by_day: dict[str, int] = {}
    for start in range(0, len(results), width):
        counts = iter(results[start : start + width])
        total += int(next(counts))
        escalated += int(next(counts))
        for kind in CaseKind:
            by_kind[str(kind)] += int(next(counts))
        for status in CaseStatus:
            by_status[str(status)] += int(next(counts))
        for priority in Priority:
            by_priority[str(priority)] += int(next(counts))
        for day, count in next(counts).items():
            by_day[text_of(day)] = by_day.get(text_of(day), 0) + int(count)
    return Stats(total, escalated, by_kind, by_status, by_priority, dict(sorted(by_day.items())))


async def count_by_kind(redis: Redis) -> dict[str, int]:
    """Cases by kind over every shard (metrics), one round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        for shard in keys.SHARDS:
            for kind in CaseKind:
                pipe.zcard(keys.cases_by_kind(shard, kind))
        results = iter(await pipe.execute())
    counts = dict.fromkeys(map(str, CaseKind), 0)
    for _shard in keys.SHARDS:
        for kind in CaseKind:
            counts[str(kind)] += int(next(results))
    return counts
