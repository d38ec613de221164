"""Trends for the dashboard, read from the case events of the last days (bounded).

`/stats` counts from the indexes (O(1) each); the trends need time, so they
are read from the audit stream since the first day of the window, at most
`MAX_EVENTS` entries (reads included): past that, `complete` is false and
the figures cover the oldest part of the window only.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from redis.asyncio import Redis

from bot.cases import service as case_service
from bot.cases.model import CaseStatus
from bot.store import console_reads

MAX_EVENTS = 20_000
CHUNK = 5_000
OPERATOR = "operator:"  # a migrant withdrawing is not a first contact


@dataclass(frozen=True)
class Trends:
    days: int
    by_day_kind: dict[str, dict[str, int]]
    median_first_contact_minutes: float | None
    first_contacts: int
    complete: bool


def _day(at: str) -> str:
    return at[:10]


async def trends(redis: Redis, *, now: datetime, days: int) -> Trends:
    """Cases created per day and kind, and the median time from creation to the first
    status change away from `new` (cases created in the window)."""
    start = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    cursor = console_reads.cursor_at(start)
    created: dict[str, datetime] = {}
    by_day_kind: dict[str, dict[str, int]] = {}
    waits: list[float] = []
    read = 0
    complete = False
    while read < MAX_EVENTS:
        found = await console_reads.changes_after(redis, cursor, count=CHUNK,
                                                  quiet=case_service.QUIET_ACTIONS,
                                                  shown=case_service.SHOWN_DETAIL)
        if found.cursor == cursor:
            complete = True
            break
        read += CHUNK
        cursor = found.cursor
        for change in found.items:
            if change.action == "created":
                created[change.reference] = datetime.fromisoformat(change.at)
                kind = str(change.detail.get("kind", ""))
                day = by_day_kind.setdefault(_day(change.at), {})
                day[kind] = day.get(kind, 0) + 1
            elif (
                change.action == "status_changed"
                and change.detail.get("from") == CaseStatus.NEW
                and change.actor.startswith(OPERATOR)
                and change.reference in created
            ):
                began = created.pop(change.reference)
                waits.append((datetime.fromisoformat(change.at) - began).total_seconds() / 60)
    median = round(statistics.median(waits), 1) if waits else None
    return Trends(days, dict(sorted(by_day_kind.items())), median, len(waits), complete)
