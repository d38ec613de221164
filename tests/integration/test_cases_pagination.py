from __future__ import annotations

import asyncio
import random

import pytest
from redis.asyncio import Redis

from bot.cases import service as case_service
from bot.cases.model import CaseKind, CaseStatus, Priority
from bot.store import case_queries, cases
from bot.store.case_queries import CaseFilter
from tests.integration.admin_support import T0, return_request

pytestmark = pytest.mark.deployments

VULNERABILITY = {Priority.URGENT: {"medical": "yes"}, Priority.HIGH: {"pregnant": "yes"}}


async def create(redis: Redis, rng: random.Random, minute: int) -> tuple[str, Priority]:
    priority = rng.choice(list(Priority))
    kind = rng.choice([CaseKind.RETURN_REQUEST, CaseKind.CALLBACK])
    answers = VULNERABILITY.get(priority, {})
    if kind is CaseKind.CALLBACK and priority is not Priority.NORMAL:
        kind = CaseKind.RETURN_REQUEST
    reference = await cases.create_case(
        redis, new_case=return_request(minutes=minute, kind=kind, **answers)
    )
    return reference, priority


async def walk(redis: Redis, case_filter: CaseFilter, limit: int, budget: int) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        page = await case_queries.page_of_cases(
            redis, case_filter=case_filter, limit=limit, cursor=cursor, budget=budget
        )
        assert len(page.items) <= limit
        seen += [item["reference"] for item in page.items]
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


async def test_triage_order_urgent_first_then_oldest(redis: Redis) -> None:
    rng = random.Random(7)
    created = [await create(redis, rng, minute) for minute in range(60)]
    expected = [ref for ref, _ in sorted(created, key=lambda c: c[1].rank)]  # stable: oldest first
    assert await walk(redis, CaseFilter(), limit=8, budget=1000) == expected


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_cursor_walk_under_concurrent_inserts(redis: Redis, seed: int) -> None:
    rng = random.Random(seed)
    initial = [await create(redis, rng, minute) for minute in range(150)]
    stop = asyncio.Event()

    async def keep_creating() -> None:
        minute = 1000
        while not stop.is_set():
            await create(redis, rng, minute)
            minute += 1
            await asyncio.sleep(0)

    writer = asyncio.create_task(keep_creating())
    try:
        seen = await walk(redis, CaseFilter(), limit=7, budget=1000)
    finally:
        stop.set()
        await writer
    assert len(seen) == len(set(seen)), "no duplicate"
    assert {ref for ref, _ in initial} <= set(seen), "none of the initial cases skipped"
    total = len(await walk(redis, CaseFilter(), limit=100, budget=1000))
    assert total > len(initial), "cases were created during the walk"


async def test_selective_filter_walks_in_bounded_steps(redis: Redis) -> None:
    rng = random.Random(11)
    created = [await create(redis, rng, minute) for minute in range(120)]
    targets = [ref for ref, _ in created[::10]]
    for reference in targets:
        await case_service.update_case(
            redis,
            reference=reference,
            actor="operator:t",
            now=T0,
            assignee="ana",
            status=CaseStatus.CONTACTED,
        )
    # A filter with no index of its own (escalated=false, status) examines at most
    # `budget` cases a call; pages may be short, the cursor continues the walk.
    selective = CaseFilter(status=CaseStatus.CONTACTED, escalated=False)
    found = await walk(redis, selective, limit=5, budget=5)
    assert sorted(found) == sorted(targets)
    by_assignee = await walk(redis, CaseFilter(assignee="ana"), limit=100, budget=1000)
    assert sorted(by_assignee) == sorted(targets)


async def test_query_by_reference_prefix_and_name(redis: Redis) -> None:
    first = await cases.create_case(redis, new_case=return_request(name="Moussa Keita"))
    await cases.create_case(redis, new_case=return_request(name="Fatou Diallo"))
    by_name = await walk(redis, CaseFilter(name_fragment="keita"), limit=10, budget=100)
    assert by_name == [first]
    by_ref = await walk(redis, CaseFilter(reference_prefix=first[:8]), limit=10, budget=100)
    assert by_ref == [first]
