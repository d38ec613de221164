"""CSV export of cases (API and CLI share it): no personal field, streamed by chunks."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable

from redis.asyncio import Redis

from bot.store.case_queries import SUMMARY_FIELDS, walk_cases

EXPORT_COLUMNS = SUMMARY_FIELDS
ROWS_PER_CHUNK = 500


def _csv_text(rows: Iterable[dict[str, str]], *, header: bool) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\r\n")
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


async def export_csv(redis: Redis) -> AsyncIterator[str]:
    """The header, then the cases in triage order, a chunk of CSV text at a time."""
    yield _csv_text((), header=True)
    chunk: list[dict[str, str]] = []
    async for row in walk_cases(redis, fields=EXPORT_COLUMNS, chunk=ROWS_PER_CHUNK):
        chunk.append(row)
        if len(chunk) == ROWS_PER_CHUNK:
            yield _csv_text(chunk, header=False)
            chunk = []
    if chunk:
        yield _csv_text(chunk, header=False)
