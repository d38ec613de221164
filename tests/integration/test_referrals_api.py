"""`POST /cases/{reference}/referrals` and the referrals of `GET /cases/{reference}`
(docs/spec.md §12)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from bot.admin.operators import Role
from bot.cases import referrals
from bot.cases.references import check_digit
from bot.cases.referrals import ReferralStatus
from bot.jobs.outbox import jobs_for
from bot.jobs.referrals import REFER_CASE, referral_job_id
from bot.settings import Settings
from bot.store import keys, outbox
from tests.integration.admin_support import (
    API,
    T0,
    operator_client,
    return_request,
    seed,
)
from tests.integration.worker_support import actions

pytestmark = pytest.mark.deployments

NOTE = "Awa would rather talk to a woman"


def configured(settings: Settings) -> Settings:
    """Primero configured (the API never calls it: the worker does)."""
    return settings.model_copy(update={
        "primero_url": "https://primero.example", "primero_user": "helpline",
        "primero_password": SecretStr("secret"), "org_name": "Ligne d'aide Mali"})


@pytest.fixture
async def ana(redis: Redis, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An operator's client, Primero configured."""
    async with operator_client(redis, configured(settings), name="ana",
                               role=Role.OPERATOR) as client:
        yield client


async def erase(redis: Redis, settings: Settings, reference: str) -> None:
    """A supervisor erases the case (through an app of the same settings, on the same Redis)."""
    async with operator_client(redis, configured(settings), name="sam",
                               role=Role.SUPERVISOR) as sam:
        assert (await sam.delete(f"{API}/cases/{reference}")).status_code == 200


async def test_a_referral_is_accepted_audited_and_left_for_the_worker(
        redis: Redis, ana: httpx.AsyncClient) -> None:
    reference = await seed(redis)
    response = await ana.post(f"{API}/cases/{reference[:4]}-{reference[4:]}/referrals",
                              json={"system": "primero", "consent": "recorded_by_operator",
                                    "note": NOTE})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body == {"id": body["id"], "system": "primero", "status": "pending"}
    referred = [(d, a) for a, d in await actions(redis, reference) if a == "referred"]
    assert referred == [({"referral": body["id"], "system": "primero",
                          "consent": "recorded_by_operator"}, "referred")]
    events = await ana.get(f"{API}/cases/{reference}/events")
    assert [e["actor"] for e in events.json() if e["action"] == "referred"] == ["operator:ana"]
    # The worker's job comes from the outbox, written in the same step as the referral.
    batch = await outbox.read_events(redis, consumer="test")
    queued = [job for event in batch.events for job in jobs_for(event)]
    assert (REFER_CASE, (reference, body["id"]), referral_job_id(body["id"])) in queued

    shown = (await ana.get(f"{API}/cases/{reference}")).json()["referrals"]
    assert shown == [{
        "id": body["id"], "system": "primero", "status": "pending",
        "consent": "recorded_by_operator", "requested_by": "operator:ana",
        "external_id": None, "error": None, "attempts": 0,
        "created_at": shown[0]["created_at"], "updated_at": shown[0]["updated_at"],
        "note": NOTE}]


async def test_consent_is_required_and_named(redis: Redis, ana: httpx.AsyncClient) -> None:
    reference = await seed(redis)
    for body, field in (({"system": "primero"}, "consent"),
                        ({"consent": "maybe"}, "consent"),
                        ({"system": "unhcr", "consent": "given_by_migrant"}, "system"),
                        ({"consent": "given_by_migrant", "note": "x" * 4001}, "note")):
        response = await ana.post(f"{API}/cases/{reference}/referrals", json=body)
        assert response.status_code == 422, body
        assert [d["loc"] for d in response.json()["detail"]] == [["body", field]]
    assert await referrals.referrals_of(redis, reference) == []


async def test_a_second_referral_is_refused_while_one_is_pending_or_sent(
        redis: Redis, ana: httpx.AsyncClient) -> None:
    reference = await seed(redis)
    url = f"{API}/cases/{reference}/referrals"
    first = (await ana.post(url, json={"consent": "given_by_migrant"})).json()
    again = await ana.post(url, json={"consent": "given_by_migrant"})
    assert again.status_code == 409
    assert again.json()["detail"] == (f"a referral of this case is pending already "
                                      f"({first['id']}): the partner would get the case twice")
    await referrals.record_outcome(
        redis, reference=reference, referral_id=first["id"], now=T0,
        changes={"status": "sent", "external_id": "a1b2c3d"},
        from_statuses=(ReferralStatus.PENDING,), action="referral_sent", detail={})
    assert "is sent already" in (await ana.post(url, json={"consent": "given_by_migrant"})
                                 ).json()["detail"]
    # A failed referral leaves the way open to another.
    other = await seed(redis, return_request(phone="+22370000002"))
    url = f"{API}/cases/{other}/referrals"
    failed = (await ana.post(url, json={"consent": "given_by_migrant"})).json()
    await referrals.record_outcome(
        redis, reference=other, referral_id=failed["id"], now=T0,
        changes={"status": "failed", "error": "Primero refused the case"},
        from_statuses=(ReferralStatus.PENDING,), action="referral_failed", detail={})
    assert (await ana.post(url, json={"consent": "given_by_migrant"})).status_code == 202
    assert [r.status for r in await referrals.referrals_of(redis, other)] == [
        ReferralStatus.FAILED, ReferralStatus.PENDING]


async def test_concurrent_referrals_make_one(redis: Redis, ana: httpx.AsyncClient) -> None:
    reference = await seed(redis)
    answers = await asyncio.gather(*(
        ana.post(f"{API}/cases/{reference}/referrals", json={"consent": "given_by_migrant"})
        for _ in range(8)))
    assert sorted(a.status_code for a in answers) == [202] + [409] * 7
    assert len(await referrals.referrals_of(redis, reference)) == 1
    batch = await outbox.read_events(redis, consumer="test")
    assert len([event for event in batch.events if event.referral]) == 1


async def test_refused_when_not_configured_erased_or_unknown(
        redis: Redis, settings: Settings, ana: httpx.AsyncClient) -> None:
    reference = await seed(redis)
    async with operator_client(redis, settings, name="olu", role=Role.OPERATOR) as client:
        response = await client.post(f"{API}/cases/{reference}/referrals",
                                     json={"consent": "given_by_migrant"})
        assert response.status_code == 409
        assert "Primero is not configured" in response.json()["detail"]
        unknown = "1234567" + check_digit("1234567")
        response = await client.post(f"{API}/cases/{unknown}/referrals",
                                     json={"consent": "given_by_migrant"})
        assert response.status_code == 404  # an unknown case first, configured or not
        assert (await client.get(f"{API}/me")).json()["primero"] is False
    assert (await ana.get(f"{API}/me")).json()["primero"] is True
    await erase(redis, settings, reference)
    response = await ana.post(f"{API}/cases/{reference}/referrals",
                              json={"consent": "given_by_migrant"})
    assert response.status_code == 409
    assert response.json()["detail"] == "the case was erased: nothing is left to refer"
    unknown = "1234567" + check_digit("1234567")
    assert (await ana.post(f"{API}/cases/{unknown}/referrals",
                           json={"consent": "given_by_migrant"})).status_code == 404
    assert (await ana.post(f"{API}/cases/1234/referrals",
                           json={"consent": "given_by_migrant"})).status_code == 422


async def test_erasure_takes_the_note_and_keeps_the_referral(
        redis: Redis, settings: Settings, ana: httpx.AsyncClient) -> None:
    reference = await seed(redis, return_request(name="Awa Traoré"))
    made = (await ana.post(f"{API}/cases/{reference}/referrals",
                           json={"consent": "given_by_migrant", "note": NOTE})).json()
    await erase(redis, settings, reference)
    (kept,) = (await ana.get(f"{API}/cases/{reference}")).json()["referrals"]
    assert (kept["id"], kept["status"], kept["note"]) == (made["id"], "pending", None)
    assert not await redis.exists(keys.referral_notes(reference))
    stored = str(await redis.hgetall(keys.case_referrals(reference)))
    assert "Awa" not in stored and NOTE not in stored
