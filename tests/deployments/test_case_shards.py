"""Case data spread over the shards (and a Cluster's masters), listed in one triage order."""

from __future__ import annotations

import random
import re

import pytest
from redis.asyncio import Redis

from bot.cases.model import CaseKind, Priority
from bot.conversation import Conversation, InboundMessage
from bot.settings import Settings
from bot.store import case_queries, keys
from bot.store.case_queries import CaseFilter
from bot.store.cases import create_case, draw_candidates, read_case
from bot.types import Channel
from tests.factories import default_flow
from tests.integration.admin_support import return_request, seed
from tests.redis_server import RedisClusterSet

pytestmark = pytest.mark.deployments

REFERENCE = re.compile(r"(\d{4})-(\d{4})")
# language 1 (French), main → 2 return request → 1 consent, the answers, 1 confirm.
RETURN_REQUEST = ["1", "2", "1", "Awa Diarra", "Mali", "Niger", "Agadez",
                  "2", "2", "2", "1", "2", "1", "1", "1", "1"]


async def request_return(conversation: Conversation, phone: str) -> str:
    await conversation.handle(InboundMessage(Channel.USSD, phone, "", restart=True))
    text = ""
    for typed in RETURN_REQUEST:
        text = (await conversation.handle(InboundMessage(Channel.USSD, phone, typed))).text
    found = REFERENCE.search(text)
    assert found, text
    return found.group(1) + found.group(2)


async def test_twelve_return_requests_spread_over_the_masters(
        redis: Redis, redis_server: object, settings: Settings, deployment: str) -> None:
    conversation = Conversation(redis=redis, compiled=default_flow(), settings=settings)
    references = [await request_return(conversation, f"+2237600{n:04d}") for n in range(12)]
    assert len(set(references)) == 12
    for reference in references:
        assert (await read_case(redis, reference)).kind is CaseKind.RETURN_REQUEST
    shards = {keys.shard_of(reference) for reference in references}
    assert len(shards) >= 4, shards
    if deployment == "cluster":
        assert isinstance(redis_server, RedisClusterSet)
        masters = {redis_server.master_of(keys.case(reference)) for reference in references}
        assert len(masters) >= 2, masters
        # A case's record, journal, indexes and audit are on its own master.
        for reference in references:
            shard = keys.shard_of(reference)
            holder = redis_server.master_of(keys.case(reference))
            for key in (keys.case_notes(reference), keys.cases_triage(shard),
                        keys.shard_audit(shard), keys.cases_outbox(shard)):
                assert redis_server.master_of(key) == holder
    listed = await case_queries.page_of_cases(redis, case_filter=CaseFilter(), limit=100,
                                              cursor=None)
    assert sorted(item["reference"] for item in listed.items) == sorted(references)


async def test_triage_order_across_shards_is_the_specs(redis: Redis) -> None:
    """Urgent, then high, then normal; oldest first within each; pages follow the cursor."""
    rng = random.Random(11)
    answers = {Priority.URGENT: {"medical": "yes"}, Priority.HIGH: {"pregnant": "yes"},
               Priority.NORMAL: {}}
    plan = [(priority, minute) for minute, priority in
            enumerate([Priority.NORMAL, Priority.URGENT, Priority.HIGH] * 8)]
    rng.shuffle(plan)  # created in mixed order
    expected: list[tuple[int, int, str]] = []
    for number, (priority, minute) in enumerate(plan):
        reference = await seed(redis, return_request(
            phone=f"+2237700{number:04d}", minutes=minute, **answers[priority]))
        expected.append((priority.rank, minute, reference))
    assert len({keys.shard_of(reference) for *_, reference in expected}) >= 6
    expected.sort()
    walked: list[str] = []
    priorities: list[str] = []
    cursor = None
    while True:
        page = await case_queries.page_of_cases(redis, case_filter=CaseFilter(), limit=5,
                                                cursor=cursor)
        walked += [item["reference"] for item in page.items]
        priorities += [item["priority"] for item in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert walked == [reference for *_, reference in expected]
    assert priorities == sorted(priorities, key=lambda p: Priority(p).rank)
    high = await case_queries.page_of_cases(
        redis, case_filter=CaseFilter(priority=Priority.HIGH), limit=100, cursor=None)
    assert [item["reference"] for item in high.items] == [
        reference for rank, _, reference in expected if rank == Priority.HIGH.rank]


async def test_a_selective_filter_over_shards_never_skips_a_match(redis: Redis) -> None:
    """Walks stopped by their budget bound the page: nothing beyond is handed out early."""
    wanted = []
    for number in range(40):
        name = "Moussa Keita" if number % 7 == 0 else "Awa Traoré"
        reference = await seed(redis, return_request(
            phone=f"+2237800{number:04d}", minutes=number, name=name))
        if name.startswith("Moussa"):
            wanted.append(reference)
    found: list[str] = []
    cursor = None
    for _ in range(200):
        page = await case_queries.page_of_cases(
            redis, case_filter=CaseFilter(name_fragment="moussa"),
            limit=2, cursor=cursor, budget=3)
        found += [item["reference"] for item in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert found == wanted


async def test_a_queue_crowded_in_one_shard_gives_whole_pages_in_order(redis: Redis) -> None:
    """A shard's first walk returns about its share of a page; when its cases crowd the
    head of the queue, the page walks it further and still holds `limit` cases in order."""
    expected: list[tuple[int, int, str]] = []
    for number in range(45):
        crowded = number < 36
        new_case = return_request(phone=f"+2237900{number:04d}", minutes=number,
                                  **({"pregnant": "yes"} if crowded else {}))
        candidates = draw_candidates(3) if crowded else draw_candidates(number % 16)
        reference = await create_case(redis, new_case=new_case, candidates=candidates)
        expected.append((new_case.priority.rank, number, reference))
    expected.sort()
    walked: list[str] = []
    sizes: list[int] = []
    cursor = None
    while True:
        page = await case_queries.page_of_cases(redis, case_filter=CaseFilter(), limit=20,
                                                cursor=cursor, fields=("reference", "priority"))
        walked += [item["reference"] for item in page.items]
        sizes.append(len(page.items))
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert walked == [reference for *_, reference in expected]
    assert sizes == [20, 20, 5]


async def test_the_export_walk_reads_every_case_once_in_triage_order(redis: Redis) -> None:
    expected: list[tuple[int, int, str]] = []
    answers = [{"medical": "yes"}, {"pregnant": "yes"}, {}]
    for number in range(50):
        new_case = return_request(phone=f"+2237910{number:04d}", minutes=50 - number,
                                  **answers[number % 3])
        reference = await create_case(redis, new_case=new_case,
                                      candidates=draw_candidates(number % 5 * 3))
        expected.append((new_case.priority.rank, 50 - number, reference))
    expected.sort()
    rows = [row async for row in case_queries.walk_cases(redis, chunk=3)]
    assert [row["reference"] for row in rows] == [reference for *_, reference in expected]
    assert {row["kind"] for row in rows} == {"return_request"}
