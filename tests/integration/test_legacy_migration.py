"""`helpline cases migrate`: a deployment from before the sharding, moved on a real Redis.

The old data is written by the old code (`tests/legacy_layout.py`: its Lua scripts
verbatim, its MULTI writers), then moved, in two runs as if the first had stopped
half-way, and run once more; every case reads back through the admin API.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from bot.cases import service as case_service
from bot.cases.model import CaseKind, JournalKind, NewCase
from bot.cases.references import check_digit
from bot.cli import main
from bot.privacy import DEV_PII_KEY, pseudonym
from bot.settings import Settings, get_settings
from bot.store import cases, keys, legacy, outbox
from bot.store.connection import close_client
from bot.store.scripts import batch
from tests import legacy_layout as old
from tests.integration.admin_support import (
    API,
    T0,
    RecordedJobs,
    client_for,
    return_request,
    running_app,
)
from tests.redis_server import RedisClusterSet, SentinelSet

PHONES = ["+22370001001", "+22370001002", "+22370001003", "+22370001004", "+22370001005"]


def ref(body: str) -> str:
    return body + check_digit(body)


@dataclass
class OldDeployment:
    token: str = ""
    order: list[tuple[int, int, str]] = field(default_factory=list)
    """(priority rank, minute created, reference): the triage order."""
    expected: dict[str, dict[str, Any]] = field(default_factory=dict)
    journal: dict[str, list[str]] = field(default_factory=dict)


async def create(redis: Redis, deployment: OldDeployment, reference: str, new_case: NewCase,
                 minute: int, idempotency_key: str | None = None) -> str:
    await old.create_case(redis, new_case=new_case, reference=reference,
                          idempotency_key=idempotency_key)
    deployment.order.append((new_case.priority.rank, minute, reference))
    deployment.expected[reference] = {
        "kind": str(new_case.kind), "status": "new", "priority": str(new_case.priority),
        "assignee": None, "escalated": False, "phone": new_case.phone,
        "answers": new_case.answers, "erased": False,
    }
    return reference


async def write_old_deployment(redis: Redis) -> OldDeployment:
    """A deployment's data as the code before the sharding left it."""
    deployment = OldDeployment()
    deployment.token = await old.add_operator(redis, name="ana", role="admin", now=T0)
    a = await create(redis, deployment, ref("1000001"), return_request(phone=PHONES[0]), 0,
                     idempotency_key="draft-a")
    b = await create(redis, deployment, ref("1000002"),
                     return_request(phone=PHONES[1], minutes=1, medical="yes"), 1)
    await create(redis, deployment, ref("2000003"), NewCase(
        kind=CaseKind.CALLBACK, phone=PHONES[2], language="en", channel="sms",
        answers={"topic": "trafficking"}, created_at=T0 + timedelta(minutes=2)), 2)
    await create(redis, deployment, ref("3000004"), NewCase(
        kind=CaseKind.EMERGENCY, phone=PHONES[2], language="fr", channel="ussd",
        answers={"where": "Gao"}, created_at=T0 + timedelta(minutes=3)), 3)
    e = await create(redis, deployment, ref("4000005"),
                     return_request(phone=PHONES[0], minutes=4, pregnant="yes"), 4)
    f = await create(redis, deployment, ref("5000006"),
                     return_request(phone=PHONES[3], minutes=5), 5)
    g = await create(redis, deployment, ref("6000007"),
                     return_request(phone=PHONES[4], minutes=6, name="Moussa Keita"), 6)
    assert await old.withdraw_by_migrant(redis, reference=e, phone=PHONES[0],
                                         now=T0 + timedelta(hours=1))
    deployment.expected[e]["status"] = "withdrawn"
    assert await old.erase_case(redis, reference=f, actor="operator:ana",
                                now=T0 + timedelta(hours=2))
    deployment.expected[f].update(phone=None, answers={}, erased=True)
    later = T0 + timedelta(hours=3)
    await old.update_case(redis, reference=g, actor="operator:ana", now=later,
                          changes={"status": "contacted", "assignee": "ana"},
                          events=[("status_changed", {"from": "new", "to": "contacted"}),
                                  ("assigned", {"from": None, "to": "ana"})])
    note = old.journal_entry(JournalKind.NOTE, author="operator:ana", at=later,
                             text="called her back in Agadez")
    await old.update_case(redis, reference=g, actor="operator:ana", now=later, changes={},
                          events=[("note_added", {"entry": note.id})], journal=note)
    reason = old.journal_entry(JournalKind.ESCALATION, author="operator:ana", at=later,
                               text="threatened by her employer")
    await old.update_case(redis, reference=g, actor="operator:ana", now=later,
                          changes={"escalated": "1", "escalation_level": "1"},
                          events=[("escalated", {"from": 0, "to": 1, "entry": reason.id})],
                          journal=reason)
    deployment.expected[g].update(status="contacted", assignee="ana", escalated=True)
    deployment.journal[g] = [note.text, reason.text]
    await old.read_case(redis, reference=b, actor="operator:ana", now=later)
    await old.record_audit(redis, reference="", actor="operator:ana", action="exported",
                           at=later, detail={"format": "csv"})
    await old.finish_delivery(redis, delivery_id=f"confirmation:{a}", reference=a,
                              sid="SM0123456789", now=later,
                              phone_pseudonym=pseudonym(PHONES[0], DEV_PII_KEY))
    deployment.order.sort()
    return deployment


async def old_events(redis: Redis, reference: str) -> list[tuple[str, str, str]]:
    return [(fields["actor"], fields["action"], fields["at"])
            for _, fields in await redis.xrange(old.case_audit(reference))]


async def snapshot(redis: Redis) -> dict[str, bytes | None]:
    return {key: await redis.dump(key) for key in sorted(await redis.keys("*"))}


async def test_an_old_deployment_reads_back_whole_through_the_admin_api(
        redis: Redis, settings: Settings) -> None:
    deployment = await write_old_deployment(redis)
    events = {reference: await old_events(redis, reference) for reference in deployment.expected}
    old_outbox = await redis.xlen(old.cases_outbox())
    assert old_outbox == 7 and await legacy.legacy_present(redis)

    # A first run stops after two cases (as if the process had died there)...
    first = await legacy.migrate(redis, max_cases=2)
    assert first.cases == 2 and await legacy.legacy_present(redis)
    # ...the next goes on with the rest, and a third finds nothing to do.
    second = await legacy.migrate(redis)
    assert second.cases == 5 and second.complete
    assert (second.idempotency_keys, second.outbox_events, second.audit_events,
            second.deliveries, first.operators) == (1, 7, 1, 1, 1)
    assert await redis.keys("hl:{cases}:*") == []
    assert not await legacy.legacy_present(redis)
    before = await snapshot(redis)
    third = await legacy.migrate(redis)
    assert (third.cases, third.idempotency_keys, third.outbox_events, third.operators) == (
        0, 0, 0, 0)
    assert await snapshot(redis) == before

    async with running_app(settings, RecordedJobs()) as app, \
            client_for(app, deployment.token) as ana:
        listed = (await ana.get(f"{API}/cases", params={"limit": 100})).json()
        assert [item["reference"] for item in listed["items"]] == [
            reference for *_, reference in deployment.order]
        for reference, expected in deployment.expected.items():
            trail = (await ana.get(f"{API}/cases/{reference}/events")).json()
            assert [(e["actor"], e["action"], datetime.fromisoformat(e["at"]))
                    for e in trail] == [(actor, action, datetime.fromisoformat(at))
                                        for actor, action, at in events[reference]]
            case = (await ana.get(f"{API}/cases/{reference}")).json()
            assert {name: case[name] for name in ("kind", "status", "priority", "assignee",
                                                  "escalated", "phone", "answers")} == {
                name: value for name, value in expected.items() if name != "erased"}
            assert (case["erased_at"] is not None) == expected["erased"]
            assert [entry["text"] for entry in case["journal"]] == deployment.journal.get(
                reference, [])
        g, e = ref("6000007"), ref("4000005")
        urgent = [reference for *_, reference in deployment.order
                  if deployment.expected[reference]["priority"] == "urgent"]
        assert len(urgent) >= 2
        for query, found in (({"assignee": "ana"}, [g]), ({"escalated": "true"}, [g]),
                             ({"status": "withdrawn"}, [e]), ({"q": "keita"}, [g]),
                             ({"priority": "urgent"}, urgent)):
            page = (await ana.get(f"{API}/cases", params=query)).json()
            assert [item["reference"] for item in page["items"]] == found, query
        stats = (await ana.get(f"{API}/stats")).json()
        assert stats["total"] == 7 and stats["by_status"]["withdrawn"] == 1
        assert sum(stats["by_day"].values()) == 7
        exported = (await ana.get(f"{API}/cases/export.csv")).text
        assert all(reference in exported for reference in deployment.expected)

    # What the conversation, the worker and the status webhook find under the new keys.
    async with batch(redis) as pipe:
        cases.queue_reference_of(pipe, idempotency_key="draft-a",
                                 pseudonym=pseudonym(PHONES[0], DEV_PII_KEY))
        (made,) = await pipe.execute()
    assert made == ref("1000001")
    assert await cases.references_of_phone(redis, pseudonym(PHONES[0], DEV_PII_KEY)) == sorted(
        [ref("1000001"), e])
    await outbox.ensure_group(redis)
    pending = [event.reference for event in
               (await outbox.read_events(redis, consumer="test", count=100)).events]
    assert sorted(pending) == sorted(deployment.expected)
    assert await case_service.record_delivery_status(
        redis, message_sid="SM0123456789", status="delivered", error_code="", now=T0)
    await case_service.index_ended_cases(redis)
    assert await redis.zscore(keys.cases_ended(keys.shard_of(e)), e) is not None


async def test_a_reference_taken_under_both_layouts_is_left_and_named(
        redis: Redis, settings: Settings, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    reference = ref("7000008")
    await old.create_case(redis, new_case=return_request(phone=PHONES[0]), reference=reference)
    await cases.create_case(redis, new_case=return_request(phone=PHONES[1]),
                            candidates=[reference])
    kept = await redis.hgetall(keys.case(reference))
    monkeypatch.setenv("REDIS_URL", settings.redis_url or "")
    get_settings.cache_clear()
    try:
        code = await asyncio.to_thread(main, ["cases", "migrate"])
    finally:
        get_settings.cache_clear()
    assert code == 1
    assert reference in capsys.readouterr().err
    assert await redis.hgetall(keys.case(reference)) == kept
    assert await redis.exists(old.case(reference))
    assert await legacy.legacy_present(redis)


async def test_through_sentinel_the_master_is_moved(redis_sentinel: SentinelSet) -> None:
    redis_sentinel.flush()
    client = redis_sentinel.async_client()
    try:
        deployment = await write_old_deployment(client)
        done = await legacy.migrate(client)
        assert done.cases == len(deployment.expected) and done.complete
        for reference, expected in deployment.expected.items():
            case, _ = await case_service.read_case(client, reference=reference,
                                                   actor="operator:ana", now=T0)
            assert (str(case.status), case.phone) == (expected["status"], expected["phone"])
        assert not await legacy.legacy_present(client)
    finally:
        await close_client(client)


async def test_on_a_cluster_there_is_nothing_to_move(redis_cluster: RedisClusterSet) -> None:
    client = redis_cluster.async_client()
    try:
        assert not await legacy.legacy_present(client)
        with pytest.raises(ValueError, match="never ran on a Redis Cluster"):
            await legacy.migrate(client)
    finally:
        await close_client(client)
