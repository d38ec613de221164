"""GET /reports/programme(.csv) through the HTTP app (docs/spec.md §11): supervisors only, monthly
figures from the real store, small numbers suppressed in JSON and CSV, nothing personal."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from redis.asyncio import Redis

from bot.admin.operators import Role, add_operator
from bot.cases import followups
from bot.cases import service as case_service
from bot.cases.model import CaseKind, CaseStatus
from bot.settings import Settings
from bot.store import audit, cases, keys
from bot.store import followups as followup_store
from tests.integration.admin_support import API, T0, RecordedJobs, client_for, return_request
from tests.integration.admin_support import running_app as admin_app
from tests.integration.worker_support import ON_EVERY_DEPLOYMENT

# One server, a real Cluster and a Sentinel set (master, replica, sentinel).
pytestmark = ON_EVERY_DEPLOYMENT

MARCH = datetime(2026, 3, 5, 10, 0, tzinfo=UTC)
APRIL = datetime(2026, 4, 20, 10, 0, tzinfo=UTC)
REPORT = f"{API}/reports/programme"


@pytest.fixture
async def clients(redis: Redis, settings: Settings
                  ) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    supervisor = await add_operator(redis, name="sam", role=Role.SUPERVISOR, now=T0)
    operator = await add_operator(redis, name="olga", role=Role.OPERATOR, now=T0)
    async with admin_app(settings, RecordedJobs()) as app, client_for(app, supervisor) as sup, \
            client_for(app, operator) as op:
        yield sup, op


async def create(redis: Redis, n: int, *, kind: CaseKind = CaseKind.RETURN_REQUEST,
                 at: datetime = MARCH, **answers: str) -> str:
    new_case = replace(return_request(phone=f"+2237010{n:04d}", kind=kind, **answers),
                       created_at=at)
    return await cases.create_case(redis, new_case=new_case)


async def seed_march(redis: Redis) -> list[str]:
    """Six requests from Mali (five returned in April, with a check-in each, scored),
    three from Guinea, two call-backs, one emergency."""
    malians = [await create(redis, n, nationality=" mali", country="Niger",
                            under_18="yes" if n < 2 else "no", followup_consent="yes")
               for n in range(6)]
    for n in range(3):
        await create(redis, 10 + n, nationality="Guinée", country="Libye")
    for n in range(2):
        await create(redis, 20 + n, kind=CaseKind.CALLBACK)
    await create(redis, 30, kind=CaseKind.EMERGENCY)
    for reference in malians[:5]:
        for status in ("contacted", "in_progress", "return_arranged", "returned"):
            await case_service.update_case(redis, reference=reference, actor="operator:x",
                                           now=APRIL, status=CaseStatus(status))
        await followups.schedule_returned(redis, reference=reference, returned_at=APRIL,
                                          days=(0,), ttl=3600)
        at = int(APRIL.timestamp())
        await followup_store.mark(redis, reference=reference, ids="1", sources="s", target="t",
                                  now=at, ttl=3600)
        await followup_store.mark(redis, reference=reference, ids="1", sources="t", target="a",
                                  now=at + 60, ttl=3600, scores="500 1000 -")
    return malians


async def test_the_monthly_figures_with_small_numbers_suppressed(
        redis: Redis, clients: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
    sup, operator = clients
    await seed_march(redis)
    assert (await operator.get(REPORT, params={"from": "2026-03", "to": "2026-04"})
            ).status_code == 403
    response = await sup.get(REPORT, params={"from": "2026-03", "to": "2026-04"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["from"] == "2026-03" and body["to"] == "2026-04" and body["min_cell"] == 5
    march, april = body["months"]
    requests = march["return_requests"]
    assert requests["created"] == 9
    assert requests["by_outcome"] == {"open": None, "withdrawn": 0, "returned": 5,
                                      "closed": 0}
    assert requests["by_vulnerability"]["under_18"] is None  # 2: suppressed
    assert requests["by_nationality"] == {"Mali": 6, "other": None}
    assert requests["by_current_country"] == {"Niger": 6, "other": None}
    assert march["callbacks"] is None and march["emergencies"] is None
    assert april["median_days_to_return"] == 46.0
    assert april["checkins"] == {"sent": 5, "answered": 5, "mean_scores": {
        "economic": 0.5, "social": 1.0, "psychosocial": None, "composite": 0.75}}
    assert body["total"]["return_requests"]["created"] == 9
    text = json.dumps(body)
    assert "+22370" not in text and "Awa" not in text and "Guin" not in text
    events = await redis.xrange(keys.shard_audit(audit.NO_CASE_SHARD))
    assert [json.loads(f["detail"]) for _, f in events if f["action"] == "reported"] == [
        {"report": "programme", "from": "2026-03", "to": "2026-04", "format": "json"}]


async def test_a_check_in_called_again_is_sent_once_in_the_figures(
        redis: Redis, clients: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
    """A check-in call nobody took is placed once more (a check-in of origin `d`): the
    same check-in, so the report counts it sent once, and answered when the second call
    was."""
    sup, _ = clients
    at = int(APRIL.timestamp())
    for n in range(5):
        reference = await create(redis, 40 + n, followup_consent="yes")
        for status in ("contacted", "in_progress", "return_arranged", "returned"):
            await case_service.update_case(redis, reference=reference, actor="operator:x",
                                           now=APRIL, status=CaseStatus(status))
        await followups.schedule_returned(redis, reference=reference, returned_at=APRIL,
                                          days=(0,), ttl=3600)
        await followup_store.mark(redis, reference=reference, ids="1", sources="s", target="t",
                                  now=at, ttl=3600)
        again = await followups.call_unanswered(
            redis, followup=followups.token(reference, 1), why=followups.Unanswered.BUSY,
            now=APRIL, ttl=3600)
        assert again == 2
        later = at + int(followups.CALL_AGAIN_AFTER.total_seconds())
        await followup_store.mark(redis, reference=reference, ids="2", sources="s", target="t",
                                  now=later, ttl=3600)
        await followup_store.mark(redis, reference=reference, ids="2", sources="t", target="a",
                                  now=later + 60, ttl=3600, scores="500 1000 -")
    response = await sup.get(REPORT, params={"from": "2026-04", "to": "2026-04"})
    assert response.status_code == 200, response.text
    (april,) = response.json()["months"]
    assert (april["checkins"]["sent"], april["checkins"]["answered"]) == (5, 5)


async def test_the_csv_has_the_same_figures_and_a_blank_for_each_suppressed_one(
        redis: Redis, clients: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
    sup, _ = clients
    await seed_march(redis)
    response = await sup.get(f"{REPORT}.csv", params={"from": "2026-03", "to": "2026-04"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["month", "figure", "group", "value"]
    assert ["2026-03", "return_requests_created", "", "9"] in rows
    assert ["2026-03", "callbacks", "", ""] in rows
    assert ["2026-03", "return_requests_by_nationality", "other", ""] in rows
    assert ["2026-04", "checkins_mean_score", "composite", "0.75"] in rows
    assert ["2026-04", "median_days_to_return", "", "46.0"] in rows


async def test_a_bad_period_is_a_422_naming_it(
        clients: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
    sup, _ = clients
    for params in ({"from": "2026-13"}, {"to": "march"},
                   {"from": "2026-05", "to": "2026-04"}, {"from": "2000-01", "to": "2026-04"}):
        response = await sup.get(REPORT, params=params)
        assert response.status_code == 422, (params, response.text)
        assert "from" in response.text or "to" in response.text
    # A misspelt period is named, never answered with the default months.
    for url in (REPORT, f"{REPORT}.csv"):
        for params in ({"start": "2026-03"}, {"from": "2026-03", "until": "2026-04"}):
            response = await sup.get(url, params=params)
            assert response.status_code == 422, (url, params, response.text)
            assert response.json()["detail"][0]["loc"] == ["query", list(params)[-1]]
    default = (await sup.get(REPORT)).json()
    assert len(default["months"]) == 12
    assert default["to"] == f"{datetime.now(UTC) + timedelta(seconds=0):%Y-%m}"
