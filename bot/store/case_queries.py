"""Operator reads of cases: triage pages, one case with its journal, stats.

A page is one Lua call (one round trip): it walks the smallest index that
every match belongs to, in triage order, from the cursor on.
"""

from __future__ import annotations

import json
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
from bot.store.replies import reply

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

    def indexes(self) -> list[str]:
        found = [keys.cases_triage()]
        if self.status is not None:
            found.append(keys.cases_by_status(self.status))
        if self.kind is not None:
            found.append(keys.cases_by_kind(self.kind))
        if self.priority is not None:
            found.append(keys.cases_by_priority(self.priority))
        if self.escalated:
            found.append(keys.cases_escalated())
        if self.assignee:
            found.append(keys.cases_by_assignee(self.assignee))
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


def _page_from(raw: Sequence[Any], fields: Sequence[str]) -> Page:
    values = [text_of(value) for value in raw]
    width = len(fields)
    items = [
        dict(zip(fields, values[start : start + width], strict=True))
        for start in range(1, len(values), width)
    ]
    return Page(items=items, next_cursor=values[0] or None)


async def case_summary(
    redis: Redis, reference: str, fields: Sequence[str] = SUMMARY_FIELDS
) -> dict[str, str] | None:
    """One case's non-personal fields (no audit needed), or None."""
    values = await reply(redis.hmget(keys.case(reference), list(fields)))
    if values[0] is None:
        return None
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
    raw = await PAGE_OF_CASES.run(
        redis,
        case_filter.indexes(),
        [
            keys.case(""),
            cursor or "",
            limit,
            max(budget, limit),
            json.dumps(case_filter.record_fields()) if case_filter.record_fields() else "{}",
            case_filter.reference_prefix,
            case_filter.name_fragment.lower(),
            *fields,
        ],
    )
    return _page_from(raw, fields)


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
            keys.case_audit(reference),
            keys.cases_audit(),
        ],
        [actor, iso(now), reference],
    )
    if not raw:
        raise CaseNotFound(reference)
    flat, journal = raw
    values = [text_of(value) for value in flat]
    record = dict(zip(values[::2], values[1::2], strict=True))
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
    """Counts from the indexes (O(1) each): erased cases still count."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zcard(keys.cases_triage())
        pipe.zcard(keys.cases_escalated())
        for kind in CaseKind:
            pipe.zcard(keys.cases_by_kind(kind))
        for status in CaseStatus:
            pipe.zcard(keys.cases_by_status(status))
        for priority in Priority:
            pipe.zcard(keys.cases_by_priority(priority))
        pipe.hgetall(keys.cases_per_day())
        results = list(await pipe.execute())
    total, escalated = int(results[0]), int(results[1])
    counts = iter(results[2:-1])
    by_kind = {str(kind): int(next(counts)) for kind in CaseKind}
    by_status = {str(status): int(next(counts)) for status in CaseStatus}
    by_priority = {str(priority): int(next(counts)) for priority in Priority}
    by_day = {text_of(day): int(count) for day, count in sorted(results[-1].items())}
    return Stats(total, escalated, by_kind, by_status, by_priority, by_day)
