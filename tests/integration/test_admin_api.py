from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from unittest.mock import ANY

import httpx
import pytest
from redis.asyncio import Redis

from bot.admin.operators import Role, add_operator
from bot.cases import jobs
from bot.cases import migrant as migrant_cases
from bot.cases.model import CaseKind
from bot.cases.references import check_digit
from bot.privacy import DEV_PII_KEY, pseudonym
from bot.settings import Settings
from bot.store import audit, keys
from bot.store.deliveries import mark_opted_out
from tests.integration.admin_support import (
    API,
    PHONE,
    T0,
    RecordedJobs,
    client_for,
    operator_client,
    return_request,
    seed,
)

pytestmark = pytest.mark.deployments

UNKNOWN = "1234567" + check_digit("1234567")


@pytest.fixture
def recorded() -> RecordedJobs:
    return RecordedJobs()


@pytest.fixture
async def sup(
    redis: Redis, settings: Settings, recorded: RecordedJobs
) -> AsyncIterator[httpx.AsyncClient]:
    """A supervisor's client (operator routes and erasure/export)."""
    async with operator_client(redis, settings, name="sam", role=Role.SUPERVISOR,
                               jobs=recorded) as client:
        yield client


async def test_case_read_is_audited_with_who_and_when(redis: Redis, sup: httpx.AsyncClient) -> None:
    reference = await seed(redis)
    response = await sup.get(f"{API}/cases/{reference[:4]}-{reference[4:]}")
    assert response.status_code == 200
    body = response.json()
    assert body["reference"] == reference
    assert body["phone"] == PHONE and body["answers"]["name"] == "Awa Traoré"
    assert body["allowed_next"] == ["contacted", "closed", "withdrawn"]
    assert body["created_at"].startswith("2025-03-01T09:00:00")
    events = (await sup.get(f"{API}/cases/{reference}/events")).json()
    assert [(e["actor"], e["action"]) for e in events] == [
        ("migrant", "created"),
        ("operator:sam", "read"),
    ]


async def test_malformed_reference_is_422_and_unknown_is_404(sup: httpx.AsyncClient) -> None:
    good = UNKNOWN
    typo = good[:6] + good[7] + good[6]
    response = await sup.get(f"{API}/cases/{typo}")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "reference"]
    assert (await sup.get(f"{API}/cases/12345")).status_code == 422
    assert (await sup.get(f"{API}/cases/{good}")).status_code == 404
    assert (await sup.get(f"{API}/cases/{good}/events")).status_code == 404
    assert (await sup.post(f"{API}/cases/{good}/notes", json={"text": "x"})).status_code == 404


async def test_illegal_status_change_is_409_with_allowed(
    redis: Redis, sup: httpx.AsyncClient
) -> None:
    reference = await seed(redis)
    response = await sup.patch(f"{API}/cases/{reference}", json={"status": "returned"})
    assert response.status_code == 409
    assert response.json()["allowed"] == ["contacted", "closed", "withdrawn"]
    assert response.json()["current"] == "new"
    for target in ["contacted", "in_progress", "return_arranged", "returned", "closed"]:
        response = await sup.patch(f"{API}/cases/{reference}", json={"status": target})
        assert response.status_code == 200, response.text
        assert response.json()["status"] == target
    response = await sup.patch(f"{API}/cases/{reference}", json={"status": "withdrawn"})
    assert response.status_code == 409 and response.json()["allowed"] == []
    events = (await sup.get(f"{API}/cases/{reference}/events")).json()
    changes = [
        (e["detail"]["from"], e["detail"]["to"]) for e in events if e["action"] == "status_changed"
    ]
    assert changes == [
        ("new", "contacted"),
        ("contacted", "in_progress"),
        ("in_progress", "return_arranged"),
        ("return_arranged", "returned"),
        ("returned", "closed"),
    ]
    assert all(e["actor"] == "operator:sam" for e in events if e["action"] == "status_changed")


async def test_patch_moves_indexes(redis: Redis, sup: httpx.AsyncClient) -> None:
    reference = await seed(redis)
    await add_operator(redis, name="ana", role=Role.OPERATOR, now=T0)
    response = await sup.patch(
        f"{API}/cases/{reference}",
        json={"priority": "urgent", "assignee": "ana", "status": "contacted"},
    )
    assert response.status_code == 200
    listed = (
        await sup.get(f"{API}/cases", params={"assignee": "ana", "priority": "urgent"})
    ).json()
    assert [item["reference"] for item in listed["items"]] == [reference]
    assert (await sup.get(f"{API}/cases", params={"status": "new"})).json()["items"] == []
    response = await sup.patch(f"{API}/cases/{reference}", json={"assignee": None})
    assert response.json()["assignee"] is None
    assert (await sup.get(f"{API}/cases", params={"assignee": "ana"})).json()["items"] == []
    assert not await redis.exists(keys.cases_by_assignee(keys.shard_of(reference), "ana"))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "flying"}, "status"),
        ({"priority": 3}, "priority"),
        ({"assignee": "Not A Name!"}, "assignee"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_patch_is_422_naming_the_field(
    redis: Redis, sup: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    reference = await seed(redis)
    response = await sup.patch(f"{API}/cases/{reference}", json=body)
    assert response.status_code == 422
    assert field in response.json()["detail"][0]["loc"]


async def test_bad_query_is_422(sup: httpx.AsyncClient) -> None:
    for params in ({"limit": 101}, {"limit": 0}, {"status": "x"}, {"cursor": "abc"},
                   {"stauts": "new"}, {"status": "new", "priorty": "urgent"}, {"page": "2"}):
        response = await sup.get(f"{API}/cases", params=params)
        assert response.status_code == 422, params
        # The parameter named: a misspelt filter is never a page that ignored it.
        assert response.json()["detail"][0]["loc"] == ["query", list(params)[-1]], params


async def test_body_over_64_kib_is_413(redis: Redis, sup: httpx.AsyncClient) -> None:
    reference = await seed(redis)
    response = await sup.post(f"{API}/cases/{reference}/notes", json={"text": "x" * 70_000})
    assert response.status_code == 413


async def test_notes_and_escalation(
    redis: Redis, sup: httpx.AsyncClient, recorded: RecordedJobs
) -> None:
    reference = await seed(redis)
    note = await sup.post(f"{API}/cases/{reference}/notes", json={"text": "called, no answer"})
    assert note.status_code == 201
    escalated = await sup.post(
        f"{API}/cases/{reference}/escalate", json={"reason": "no contact 48h", "level": 2}
    )
    assert escalated.status_code == 200
    assert escalated.json()["escalated"] and escalated.json()["escalation_level"] == 2
    assert [e["kind"] for e in escalated.json()["journal"]] == ["note", "escalation"]
    assert recorded.queued == [(jobs.NOTIFY_ESCALATION, (reference, 2))]
    lower = await sup.post(f"{API}/cases/{reference}/escalate", json={"reason": "x", "level": 1})
    assert lower.status_code == 409
    bad = await sup.post(f"{API}/cases/{reference}/escalate", json={"reason": "x", "level": 3})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "level"]
    listed = (await sup.get(f"{API}/cases", params={"escalated": "true"})).json()["items"]
    assert [item["reference"] for item in listed] == [reference]


@pytest.mark.parametrize("level", [True, False, 1.0, 2.0, "2", None])
async def test_an_escalation_level_is_a_whole_number_not_a_boolean(
    redis: Redis, sup: httpx.AsyncClient, recorded: RecordedJobs, level: object
) -> None:
    reference = await seed(redis)
    refused = await sup.post(f"{API}/cases/{reference}/escalate",
                             json={"reason": "x", "level": level})
    assert refused.status_code == 422, refused.json()
    assert refused.json()["detail"][0]["loc"] == ["body", "level"]
    assert recorded.queued == []
    assert not (await sup.get(f"{API}/cases/{reference}")).json()["escalated"]


async def test_messages_are_queued_or_refused(
    redis: Redis, sup: httpx.AsyncClient, recorded: RecordedJobs
) -> None:
    safe = await seed(redis)
    unsafe = await seed(redis, return_request(phone="+22370000009", sms_safe="no"))
    response = await sup.post(f"{API}/cases/{safe}/messages", json={"text": "Nous vous appelons"})
    assert response.status_code == 202
    entry_id = response.json()["entry"]["id"]
    assert recorded.queued == [(jobs.SEND_CASE_MESSAGE, (safe, entry_id))]
    response = await sup.post(f"{API}/cases/{unsafe}/messages", json={"text": "hello"})
    assert response.status_code == 409
    await mark_opted_out(redis, pseudonym(PHONE, DEV_PII_KEY))
    response = await sup.post(f"{API}/cases/{safe}/messages", json={"text": "hello"})
    assert response.status_code == 409
    assert len(recorded.queued) == 1


async def test_erasure_keeps_the_anonymous_record(redis: Redis, sup: httpx.AsyncClient) -> None:
    reference = await seed(redis)
    await sup.post(f"{API}/cases/{reference}/notes", json={"text": "lives near the bus station"})
    before = (await sup.get(f"{API}/stats")).json()
    response = await sup.delete(f"{API}/cases/{reference}")
    assert response.status_code == 200 and response.json()["erased"]
    case = (await sup.get(f"{API}/cases/{reference}")).json()
    assert case["phone"] is None and case["answers"] == {} and case["journal"] == []
    assert (case["kind"], case["status"], case["priority"]) == ("return_request", "new", "normal")
    assert case["created_at"].startswith("2025-03-01")
    assert (await sup.get(f"{API}/stats")).json() == before
    events = (await sup.get(f"{API}/cases/{reference}/events")).json()
    assert ("operator:sam", "erased") in [(e["actor"], e["action"]) for e in events]
    record = str(await redis.hgetall(keys.case(reference)))
    assert "Awa" not in record and "Agadez" not in record and PHONE not in record


async def test_keyword_erasure_reaches_the_same_record(
    redis: Redis, sup: httpx.AsyncClient
) -> None:
    reference = await seed(redis)
    assert await migrant_cases.erase_phone(redis, phone=PHONE, now=T0) == 1
    case = (await sup.get(f"{API}/cases/{reference}")).json()
    assert case["phone"] is None and case["erased_at"] is not None
    assert (await sup.get(f"{API}/stats")).json()["total"] == 1


async def test_stats_count_by_kind_status_priority_day(
    redis: Redis, sup: httpx.AsyncClient
) -> None:
    await seed(redis, return_request(medical="yes"))
    await seed(redis, return_request(kind=CaseKind.EMERGENCY, minutes=60 * 24))
    await seed(redis, return_request(kind=CaseKind.CALLBACK))
    body = (await sup.get(f"{API}/stats")).json()
    assert body["total"] == 3
    assert body["by_kind"] == {"return_request": 1, "callback": 1, "emergency": 1}
    assert body["by_priority"] == {"urgent": 2, "high": 0, "normal": 1}
    assert body["by_status"]["new"] == 3
    assert body["by_day"] == {"2025-03-01": 2, "2025-03-02": 1}


async def test_export_is_streamed_csv_without_personal_fields(
    redis: Redis, sup: httpx.AsyncClient
) -> None:
    references = [await seed(redis, return_request(minutes=i)) for i in range(1203)]
    async with sup.stream("GET", f"{API}/cases/export.csv") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        chunks = [chunk async for chunk in response.aiter_text()]
    text = "".join(chunks)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["reference"] for row in rows] == references
    assert "phone" not in rows[0] and "Awa" not in text and PHONE not in text
    events = await redis.xrange(keys.shard_audit(audit.NO_CASE_SHARD))
    assert ("operator:sam", "exported") in [(f["actor"], f["action"]) for _, f in events]


async def test_query_by_exact_reference_and_name(redis: Redis, sup: httpx.AsyncClient) -> None:
    first = await seed(redis, return_request(name="Moussa Keita"))
    await seed(redis, return_request(name="Fatou Diallo"))
    for q in (first, f"{first[:4]}-{first[4:]}", first[:5], "KEITA"):
        items = (await sup.get(f"{API}/cases", params={"q": q})).json()["items"]
        assert [item["reference"] for item in items] == [first], q
    assert (await sup.get(f"{API}/cases", params={"q": UNKNOWN})).json()["items"] == []
    filtered = await sup.get(f"{API}/cases", params={"q": first, "kind": "callback"})
    assert filtered.json()["items"] == []
    assert "answers" not in (await sup.get(f"{API}/cases")).json()["items"][0]


async def test_delete_unknown_and_twice(redis: Redis, sup: httpx.AsyncClient) -> None:
    reference = await seed(redis)
    assert (await sup.delete(f"{API}/cases/{UNKNOWN}")).status_code == 404
    assert (await sup.delete(f"{API}/cases/{reference}")).status_code == 200
    assert (await sup.delete(f"{API}/cases/{reference}")).status_code == 200
    events = (await sup.get(f"{API}/cases/{reference}/events")).json()
    assert [e["action"] for e in events].count("erased") == 1


async def test_messages_reach_the_job_queue(redis: Redis, settings: Settings) -> None:
    """The default job queue: taskiq's stream, on the same Redis."""
    from bot.app import create_app

    reference = await seed(redis)
    token = await add_operator(redis, name="olu", role=Role.OPERATOR, now=T0)
    app = create_app(settings)
    async with app.router.lifespan_context(app), client_for(app, token) as client:
        response = await client.post(f"{API}/cases/{reference}/messages", json={"text": "hi"})
        assert response.status_code == 202
    ((_, fields),) = await redis.xrange(keys.jobs_stream())
    job = json.loads(fields["data"])
    assert (job["task_name"], job["args"]) == ("send_case_message", [reference, ANY])
