"""The broadcasts API (docs/spec.md §10) through the real app on a real Redis (and a Cluster):
texts checked per language, four eyes, quiet hours, cancel, counts, audit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from bot.admin.deps import get_now
from bot.outreach.broadcasts import ALERTS_A_MONTH, SEND_BROADCAST
from bot.settings import Settings
from bot.store import keys
from tests.integration.admin_support import RecordedJobs, client_for, running_app
from tests.integration.broadcast_support import API, T0, TEXTS, seed_subscribers, supervisors
from tests.integration.webhooks_support import PII_KEY

pytestmark = pytest.mark.deployments

PLAN = [("NE", "fr"), ("NE", "bm"), ("NE", "en"), ("ML", "bm"), ("LY", "fr"), ("ZZ", "en")]
# 22:30 in Bamako (UTC+0): within the default quiet hours, 21-07.
NIGHT = datetime.fromisoformat("2026-03-02T22:30:00+00:00")


@pytest.fixture
def jobs() -> RecordedJobs:
    return RecordedJobs()


@pytest.fixture
async def app(redis: Redis, settings: Settings, jobs: RecordedJobs) -> AsyncIterator[Any]:
    settings = settings.model_copy(update={"pii_key": __import__("pydantic").SecretStr(PII_KEY)})
    async with running_app(settings, jobs) as found:
        found.dependency_overrides[get_now] = lambda: T0
        yield found


@pytest.fixture
async def tokens(redis: Redis) -> dict[str, str]:
    return await supervisors(redis)


@pytest.fixture
async def subscribers(redis: Redis) -> list[str]:
    return await seed_subscribers(redis, PII_KEY.encode(), PLAN)


async def create(app: Any, token: str, **body: Any) -> httpx.Response:
    async with client_for(app, token) as client:
        return await client.post(f"{API}/broadcasts", json={"text": TEXTS, **body})


async def post(app: Any, token: str, path: str) -> httpx.Response:
    async with client_for(app, token) as client:
        return await client.post(f"{API}{path}")


async def get(app: Any, token: str, path: str) -> httpx.Response:
    async with client_for(app, token) as client:
        return await client.get(f"{API}{path}")


async def test_a_supervisor_writes_an_alert_with_its_recipients_and_segments(
        app: Any, tokens: dict[str, str], subscribers: list[str]) -> None:
    made = await create(app, tokens["sup-a"], countries=["NE"])
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["status"] == "awaiting_approval"
    assert body["recipients"] == 3 and body["created_by"] == "sup-a"
    assert body["segments"] == {"fr": 1, "en": 1, "bm": 1}
    assert body["counts"] == {"queued": 0, "sent": 0, "delivered": 0, "failed": 0,
                              "skipped": 0}
    bambara = await create(app, tokens["sup-a"], languages=["bm"])
    assert bambara.json()["recipients"] == 2 and bambara.json()["languages"] == ["bm"]
    assert (await get(app, tokens["op-1"], "/broadcasts/audience?countries=NE&countries=ML"
                      )).json() == {"recipients": 4}


@pytest.mark.parametrize(("body", "loc", "kind"), [
    ({"text": {"fr": "Alerte", "en": "Alert"}}, ["body", "text", "bm"], "missing_text"),
    ({"text": {**TEXTS, "fr": "Fête à Gao, très tôt. " * 12}}, ["body", "text", "fr"],
     "too_many_segments"),
    ({"text": TEXTS, "countries": ["NE", "XX"]}, ["body", "countries", 1], "enum"),
    ({"text": TEXTS, "languages": ["wo"]}, ["body", "languages", 0], "unknown_language"),
    # Urgent is said with JSON's true: not 1, not "yes" (a quiet-hours bypass by mistake).
    ({"text": TEXTS, "urgent": 1}, ["body", "urgent"], "bool_type"),
    ({"text": TEXTS, "urgent": "yes"}, ["body", "urgent"], "bool_type"),
])
async def test_bad_input_is_a_422_naming_the_field_and_the_language(
        app: Any, tokens: dict[str, str], body: dict[str, Any], loc: list[Any],
        kind: str) -> None:
    async with client_for(app, tokens["sup-a"]) as client:
        refused = await client.post(f"{API}/broadcasts", json=body)
    assert refused.status_code == 422, refused.text
    problems = refused.json()["detail"]
    assert [problem["loc"] for problem in problems] == [loc]
    assert problems[0]["type"] == kind


async def test_bambara_is_counted_in_its_gsm7_spelling(app: Any,
                                                       tokens: dict[str, str]) -> None:
    # 440 characters with ɛ and ɔ: 7 segments in UCS-2, 3 once written è and ò.
    long_bambara = ("Farati bɛ sira kan, i kɔlɔsi. " * 15)[:440]
    made = await create(app, tokens["sup-a"], languages=["bm"], text={"bm": long_bambara})
    assert made.status_code == 201, made.text
    assert made.json()["segments"] == {"bm": 3}
    refused = await create(app, tokens["sup-a"], languages=["bm"],
                           text={"bm": long_bambara + " Ayi!" * 6})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "text", "bm"]


async def test_only_supervisors_write_and_approve_everyone_reads(
        app: Any, tokens: dict[str, str]) -> None:
    assert (await create(app, tokens["op-1"])).status_code == 403
    made = (await create(app, tokens["sup-a"])).json()
    assert (await post(app, tokens["op-1"], f"/broadcasts/{made['id']}/approve")
            ).status_code == 403
    assert (await get(app, tokens["op-1"], f"/broadcasts/{made['id']}")).status_code == 200
    async with client_for(app) as anonymous:
        assert (await anonymous.get(f"{API}/broadcasts")).status_code == 401


async def test_four_eyes_another_supervisor_approves_once(
        app: Any, tokens: dict[str, str], subscribers: list[str], jobs: RecordedJobs,
        redis: Redis) -> None:
    made = (await create(app, tokens["sup-a"], countries=["NE", "ML"])).json()
    own = await post(app, tokens["sup-a"], f"/broadcasts/{made['id']}/approve")
    assert own.status_code == 403
    assert "four eyes" in own.json()["detail"] and "sup-a" in own.json()["detail"]
    approved = await post(app, tokens["sup-b"], f"/broadcasts/{made['id']}/approve")
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["status"] == "sending" and body["approved_by"] == "sup-b"
    assert body["recipients"] == 4 and body["counts"]["queued"] == 4
    assert sorted(args for job, args in jobs.queued if job == SEND_BROADCAST) == sorted(
        (made["id"], shard) for shard in keys.SHARDS)
    again = await post(app, tokens["admin-1"], f"/broadcasts/{made['id']}/approve")
    assert again.status_code == 409
    # The audience is fixed: a subscriber added after the approval is not in it.
    await seed_subscribers(redis, PII_KEY.encode(), [("NE", "fr")], first=50)
    assert (await get(app, tokens["op-1"], f"/broadcasts/{made['id']}")
            ).json()["recipients"] == 4


async def test_approved_in_quiet_hours_it_is_scheduled_unless_urgent(
        app: Any, tokens: dict[str, str], subscribers: list[str], jobs: RecordedJobs) -> None:
    app.dependency_overrides[get_now] = lambda: NIGHT
    quiet = (await create(app, tokens["sup-a"])).json()
    urgent = (await create(app, tokens["sup-a"], urgent=True)).json()
    held = (await post(app, tokens["sup-b"], f"/broadcasts/{quiet['id']}/approve")).json()
    assert held["status"] == "scheduled"
    assert held["send_at"] == "2026-03-03T07:00:00Z"
    assert not [args for job, args in jobs.queued if args[0] == quiet["id"]]
    at_once = (await post(app, tokens["sup-b"], f"/broadcasts/{urgent['id']}/approve")).json()
    assert at_once["status"] == "sending" and at_once["urgent"]
    assert len([args for job, args in jobs.queued if args[0] == urgent["id"]]) == 16


async def test_cancel_and_the_audit_trail(app: Any, tokens: dict[str, str],
                                          subscribers: list[str]) -> None:
    made = (await create(app, tokens["sup-a"])).json()
    await post(app, tokens["sup-b"], f"/broadcasts/{made['id']}/approve")
    cancelled = await post(app, tokens["admin-1"], f"/broadcasts/{made['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["cancelled_by"] == "admin-1"
    assert (await post(app, tokens["sup-a"], f"/broadcasts/{made['id']}/cancel")
            ).status_code == 409
    events = (await get(app, tokens["op-1"], f"/broadcasts/{made['id']}/events")).json()
    assert [(e["action"], e["actor"]) for e in events] == [
        ("created", "operator:sup-a"), ("approved", "operator:sup-b"),
        ("cancelled", "operator:admin-1")]
    assert events[1]["detail"]["recipients"] == 6
    draft = (await create(app, tokens["sup-a"])).json()
    assert (await post(app, tokens["sup-a"], f"/broadcasts/{draft['id']}/cancel")
            ).status_code == 200  # its author may withdraw a draft
    assert (await post(app, tokens["sup-b"], f"/broadcasts/{draft['id']}/approve")
            ).status_code == 409


async def test_the_list_is_newest_first_with_live_counts(app: Any,
                                                         tokens: dict[str, str]) -> None:
    made = [(await create(app, tokens["sup-a"])).json()["id"] for _ in range(3)]
    page = (await get(app, tokens["op-1"], "/broadcasts?limit=2")).json()
    assert [item["id"] for item in page["items"]] == made[::-1][:2]
    rest = (await get(app, tokens["op-1"], f"/broadcasts?limit=2&cursor={page['next_cursor']}")
            ).json()
    assert [item["id"] for item in rest["items"]] == [made[0]] and rest["next_cursor"] is None
    assert (await get(app, tokens["op-1"], "/broadcasts/999")).status_code == 404
    assert (await get(app, tokens["op-1"], "/broadcasts/abc")).status_code == 422


async def test_the_consents_promise_of_four_a_month_holds(app: Any, tokens: dict[str, str],
                                                          subscribers: list[str]) -> None:
    for _ in range(ALERTS_A_MONTH):
        made = (await create(app, tokens["sup-a"], countries=["NE"])).json()
        assert (await post(app, tokens["sup-b"], f"/broadcasts/{made['id']}/approve")
                ).status_code == 200
    other = (await create(app, tokens["sup-a"], countries=["LY"])).json()
    assert (await post(app, tokens["sup-b"], f"/broadcasts/{other['id']}/approve")
            ).status_code == 200  # other subscribers: their own four
    fifth = (await create(app, tokens["sup-a"], countries=["NE", "ML"])).json()
    refused = await post(app, tokens["sup-b"], f"/broadcasts/{fifth['id']}/approve")
    assert refused.status_code == 409 and "NE" in refused.json()["detail"]
    urgent = (await create(app, tokens["sup-a"], countries=["NE"], urgent=True)).json()
    assert (await post(app, tokens["sup-b"], f"/broadcasts/{urgent['id']}/approve")
            ).status_code == 200


async def test_a_misspelt_query_parameter_is_a_422_naming_it(
        app: Any, tokens: dict[str, str], subscribers: list[str]) -> None:
    # `country=NE` must not count the whole audience as if it were Niger's.
    for path, name in (("/broadcasts/audience?country=NE", "country"),
                       ("/broadcasts/audience?countries=NE&language=bm", "language"),
                       ("/broadcasts?limt=2", "limt")):
        refused = await get(app, tokens["op-1"], path)
        assert refused.status_code == 422, path
        assert refused.json()["detail"][0]["loc"] == ["query", name], path
    assert (await get(app, tokens["op-1"], "/broadcasts/audience?countries=NE")).status_code == 200
