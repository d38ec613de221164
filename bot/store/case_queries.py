"""Operator reads of cases: one case with its journal, stats; triage pages and
exports are `bot.store.triage`'s (re-exported here, where their callers look).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from bot.cases.model import Case, CaseKind, CaseStatus, JournalEntry, Priority
from bot.errors import CaseNotFound
from bot.store import keys
from bot.store.cases import case_from_record, iso, text_of
from bot.store.scripts import Script
from bot.store.triage import (
    EXAMINE_BUDGET,
    EXPORT_CHUNK,
    MAX_PAGE_SIZE,
    SUMMARY_FIELDS,
    CaseFilter,
    Page,
    case_summary,
    page_of_cases,
    rows_of_cases,
    walk_cases,
)

READ_CASE = Script.load("read_case")

__all__ = [
    "EXAMINE_BUDGET",
    "EXPORT_CHUNK",
    "MAX_PAGE_SIZE",
    "SUMMARY_FIELDS",
    "CaseFilter",
    "Page",
    "Stats",
    "case_stats",
    "case_summary",
    "count_by_kind",
    "page_of_cases",
    "read_case_audited",
    "rows_of_cases",
    "walk_cases",
]


def _journal_entry(raw: Any) -> JournalEntry:
    return JournalEntry.model_validate_json(text_of(raw))


async def read_case_audited(
    redis: Redis, *, reference: str, actor: str, now: datetime, action: str
) -> tuple[Case, list[JournalEntry]]:
    """One case with its journal; the read is audited (as `action`) in the same atomic step."""
    raw = await READ_CASE.run(
        redis,
        [
            keys.case(reference),
            keys.case_notes(reference),
            keys.shard_audit(keys.shard_of(reference)),
            keys.case_answers(reference),
            keys.case_trail(reference),
        ],
        [actor, iso(now), reference, action],
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
