from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from bot.cases import migrant as migrant_cases
from bot.cases import service as case_service
from bot.cases.model import CaseKind, CaseStatus, NewCase, Priority
from bot.cases.references import check_digit, is_valid
from bot.errors import CaseNotFound, ReferenceTaken
from bot.privacy import DEV_PII_KEY, pseudonym
from bot.store import audit, case_queries, cases, keys
from bot.store.scripts import batch

pytestmark = pytest.mark.deployments

PHONE = "+22370000001"
OTHER_PHONE = "+22370000002"
T0 = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


def ref(body: str) -> str:
    return body + check_digit(body)


def return_request(phone: str = PHONE, **answers: str) -> NewCase:
    return NewCase(
        kind=CaseKind.RETURN_REQUEST,
        phone=phone,
        language="fr",
        channel="ussd",
        answers={"name": "Awa Traoré", "current_city": "Agadez", **answers},
        consent_given_at=T0,
        consent_text_version="consent-v1",
        created_at=T0,
    )


async def test_created_case_is_durable_and_complete(redis: Redis) -> None:
    reference = await cases.create_case(redis, new_case=return_request(pregnant="yes"))
    assert is_valid(reference)
    case = await cases.read_case(redis, reference)
    assert case.kind is CaseKind.RETURN_REQUEST
    assert case.status is CaseStatus.NEW
    assert case.priority is Priority.HIGH
    assert case.phone == PHONE
    assert case.answers["name"] == "Awa Traoré"
    assert case.consent is not None and case.consent.text_version == "consent-v1"
    assert case.created_at == T0
    assert not case.escalated and case.escalation_level == 0 and case.assignee is None


async def test_creation_indexes_and_audits(redis: Redis) -> None:
    reference = await cases.create_case(redis, new_case=return_request(medical="yes"))
    shard = keys.shard_of(reference)
    phone_tag = pseudonym(PHONE, DEV_PII_KEY)
    assert shard == keys.shard_of_phone(phone_tag), "a phone's cases go to its own shard"
    assert await redis.zscore(keys.cases_by_priority(shard, "urgent"), reference) is not None
    assert await redis.zscore(keys.cases_by_status(shard, "new"), reference) is not None
    assert await redis.zscore(keys.cases_by_kind(shard, "return_request"), reference) is not None
    assert await redis.zscore(keys.cases_triage(shard), reference) is not None
    assert await redis.hget(keys.cases_per_day(shard), "2025-03-01") == "1"
    phone_set = keys.cases_by_phone(shard, phone_tag)
    assert await redis.smembers(phone_set) == {reference}
    events = await audit.case_events(redis, reference)
    assert [(event.actor, event.action) for event in events] == [("migrant", "created")]
    raw = await redis.xrange(keys.shard_audit(shard))
    assert PHONE not in json.dumps(raw)


async def test_first_free_candidate_is_taken(redis: Redis) -> None:
    first, second = ref("1111111"), ref("1111127")  # one shard: 1111111 = 1111127 mod 16
    assert await cases.create_case(redis, new_case=return_request(), candidates=[first]) == first
    chosen = await cases.create_case(redis, new_case=return_request(), candidates=[first, second])
    assert chosen == second


async def test_all_candidates_taken_raises(redis: Redis) -> None:
    first = ref("1111111")
    await cases.create_case(redis, new_case=return_request(), candidates=[first])
    with pytest.raises(ReferenceTaken):
        await cases.create_case(redis, new_case=return_request(), candidates=[first])


async def test_retried_submission_creates_one_case(redis: Redis) -> None:
    results = await asyncio.gather(
        *(
            cases.create_case(redis, new_case=return_request(), idempotency_key="draft-abc")
            for _ in range(10)
        )
    )
    assert len(set(results)) == 1
    shard = keys.shard_of(results[0])
    assert await redis.zcard(keys.cases_triage(shard)) == 1
    assert 0 < await redis.ttl(keys.case_idempotency(shard, "draft-abc")) <= (
        cases.IDEMPOTENCY_TTL_SECONDS)


async def test_create_and_lookup_on_one_pipeline(redis: Redis) -> None:
    """The conversation queues writes on its own batch: one round trip (one per master)."""
    reference = ref("3141592")
    async with batch(redis) as pipe:
        pipe.execute_command("SET", "hl:{ph:x}:session:sms", "state", "EX", 60)
        cases.queue_create_case(
            pipe, new_case=return_request(), candidates=[reference], idempotency_key=None
        )
        cases.queue_case_lookup(pipe, reference=reference, phone=PHONE)
        _, raw_create, raw_lookup = await pipe.execute()
    assert cases.create_case_result(raw_create) == reference
    lookup = cases.case_lookup_result(raw_lookup)
    assert lookup is not None
    assert (lookup.reference, lookup.kind, lookup.status) == (
        reference,
        CaseKind.RETURN_REQUEST,
        CaseStatus.NEW,
    )
    assert lookup.is_callers


async def test_lookup_from_another_phone_and_unknown(redis: Redis) -> None:
    reference = await cases.create_case(redis, new_case=return_request())
    async with batch(redis) as pipe:
        cases.queue_case_lookup(pipe, reference=reference, phone=OTHER_PHONE)
        cases.queue_case_lookup(pipe, reference=ref("9999999"), phone=PHONE)
        theirs, unknown = await pipe.execute()
    lookup = cases.case_lookup_result(theirs)
    assert lookup is not None and not lookup.is_callers
    assert PHONE not in repr(lookup)
    assert cases.case_lookup_result(unknown) is None


async def withdraw(redis: Redis, reference: str, phone: str) -> bool:
    async with batch(redis) as pipe:
        migrant_cases.queue_withdraw(pipe, reference=reference, phone=phone,
                                     now=T0 + timedelta(1))
        (raw,) = await pipe.execute()
    return migrant_cases.withdraw_result(raw)


async def test_migrant_withdraws_own_return_request(redis: Redis) -> None:
    reference = await cases.create_case(redis, new_case=return_request())
    assert not await withdraw(redis, reference, OTHER_PHONE)
    assert await withdraw(redis, reference, PHONE)
    case = await cases.read_case(redis, reference)
    assert case.status is CaseStatus.WITHDRAWN
    assert case.updated_at == T0 + timedelta(1)
    shard = keys.shard_of(reference)
    assert await redis.zscore(keys.cases_by_status(shard, "new"), reference) is None
    assert await redis.zscore(keys.cases_by_status(shard, "withdrawn"), reference) is not None
    events = await audit.case_events(redis, reference)
    assert [(event.actor, event.action) for event in events] == [
        ("migrant", "created"),
        ("migrant", "status_changed"),
    ]
    assert not await withdraw(redis, reference, PHONE), "withdrawn is not withdrawable again"


async def test_only_return_requests_are_withdrawn(redis: Redis) -> None:
    callback = NewCase(
        kind=CaseKind.CALLBACK, phone=PHONE, language="fr", channel="sms", created_at=T0
    )
    reference = await cases.create_case(redis, new_case=callback)
    assert not await withdraw(redis, reference, PHONE)
    assert not await withdraw(redis, ref("9999999"), PHONE)


@pytest.mark.parametrize("status", ["returned", "closed"])
async def test_no_withdrawal_after_return(redis: Redis, status: str) -> None:
    reference = await cases.create_case(redis, new_case=return_request())
    await redis.hset(keys.case(reference), "status", status)
    assert not await withdraw(redis, reference, PHONE)
    assert (await cases.read_case(redis, reference)).status == status


async def test_erase_phone_data_erases_every_case_of_that_phone(redis: Redis) -> None:
    mine = [await cases.create_case(redis, new_case=return_request()) for _ in range(3)]
    other = await cases.create_case(redis, new_case=return_request(phone=OTHER_PHONE))
    await redis.rpush(keys.case_notes(mine[0]), "called her in Agadez")
    later = T0 + timedelta(days=2)
    erased = await migrant_cases.erase_phone(redis, phone=PHONE, now=later)
    assert erased == 3
    for reference in mine:
        case = await cases.read_case(redis, reference)
        assert case.phone is None and case.answers == {}
        assert case.kind is CaseKind.RETURN_REQUEST and case.erased_at == later
        dump = json.dumps(await redis.hgetall(keys.case(reference)))
        assert "Agadez" not in dump and PHONE not in dump and "Awa" not in dump
        events = await audit.case_events(redis, reference)
        assert (events[-1].actor, events[-1].action) == ("migrant", "erased")
    assert not await redis.exists(keys.case_notes(mine[0]))
    assert (await cases.read_case(redis, other)).phone == OTHER_PHONE
    assert await migrant_cases.erase_phone(redis, phone=PHONE, now=later) == 0
    # Counts survive erasure.
    assert (await case_queries.case_stats(redis)).total == 4


async def test_erase_one_case_and_unknown(redis: Redis) -> None:
    reference = await cases.create_case(redis, new_case=return_request())
    assert await case_service.erase_case(redis, reference=reference, actor="op:ana", now=T0)
    assert not await case_service.erase_case(redis, reference=reference, actor="op:ana", now=T0)
    phone_set = keys.cases_by_phone(keys.shard_of(reference), pseudonym(PHONE, DEV_PII_KEY))
    assert await redis.smembers(phone_set) == set()
    with pytest.raises(CaseNotFound):
        await case_service.erase_case(redis, reference=ref("9999999"), actor="op:ana", now=T0)


async def test_candidates_of_two_shards_are_refused(redis: Redis) -> None:
    with pytest.raises(ValueError, match="one shard"):
        await cases.create_case(redis, new_case=return_request(),
                                candidates=[ref("1111111"), ref("1111112")])


async def test_a_phone_erasure_finds_cases_made_with_chosen_references(redis: Redis) -> None:
    """Cases made with references outside the phone's shard are erased all the same."""
    chosen = [ref(f"{1000000 + shard}") for shard in range(3)]
    for reference in chosen:
        await cases.create_case(redis, new_case=return_request(), candidates=[reference])
    assert len({keys.shard_of(reference) for reference in chosen}) == 3
    assert await migrant_cases.erase_phone(redis, phone=PHONE, now=T0) == 3
