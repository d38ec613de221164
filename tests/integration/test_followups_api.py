"""Follow-up check-ins through the admin API (docs/spec.md §11): scheduled at the return, listed on
the case, one asked for now, and what refuses or cancels them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from redis.asyncio import Redis

from bot.admin.operators import Role
from bot.cases import followups
from bot.cases import service as case_service
from bot.cases.model import CaseKind, CaseStatus
from bot.privacy import DEV_PII_KEY, pseudonym
from bot.settings import Settings
from bot.store import followups as followup_store
from bot.store import phone_state
from tests.integration.admin_support import (
    API,
    T0,
    operator_client,
    return_request,
    seed,
)
from tests.integration.worker_support import ON_EVERY_DEPLOYMENT, actions

# One server, a real Cluster and a Sentinel set (master, replica, sentinel).
pytestmark = ON_EVERY_DEPLOYMENT

TO_RETURNED = ["contacted", "in_progress", "return_arranged", "returned"]
DAY = timedelta(days=1)


@pytest.fixture
async def api(redis: Redis, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with operator_client(redis, settings, name="olga", role=Role.OPERATOR) as client:
        yield client


async def returned(api: httpx.AsyncClient, reference: str) -> dict[str, object]:
    body: dict[str, object] = {}
    for status in TO_RETURNED:
        response = await api.patch(f"{API}/cases/{reference}", json={"status": status})
        assert response.status_code == 200, response.text
        body = response.json()
    return body


async def test_a_return_with_consent_gets_a_check_in_at_each_followup_day(
        redis: Redis, api: httpx.AsyncClient) -> None:
    reference = await seed(redis, return_request(followup_consent="yes"))
    before = datetime.now(UTC)
    body = await returned(api, reference)
    after = datetime.now(UTC)
    assert body["followup_consent"] == "yes"
    listed = body["followups"]
    assert isinstance(listed, list) and [f["id"] for f in listed] == [1, 2, 3]
    for entry, days in zip(listed, (30, 90, 180), strict=True):
        due = datetime.fromisoformat(entry["due_at"])
        assert before - timedelta(seconds=1) <= due - days * DAY <= after
        assert entry["channel"] == "sms" and entry["status"] == "scheduled"
        assert entry["scores"] is None and entry["answered_at"] is None
    # The worker's look at the audit schedules nothing twice.
    await followups.sync_from_audit(redis, days=(30, 90, 180), ttl=3600, now=after)
    again = (await api.get(f"{API}/cases/{reference}")).json()
    assert again["followups"] == listed


async def test_no_consent_no_check_in_and_a_sms_unsafe_phone_is_called(
        redis: Redis, api: httpx.AsyncClient) -> None:
    refused = await seed(redis, return_request(followup_consent="no"))
    body = await returned(api, refused)
    assert body["followup_consent"] == "no" and body["followups"] == []
    unsafe = await seed(redis, return_request(phone="+22370000077", followup_consent="yes",
                                              sms_safe="no"))
    body = await returned(api, unsafe)
    assert {f["channel"] for f in body["followups"]} == {"voice"}  # type: ignore[union-attr]


async def test_a_status_change_made_elsewhere_is_scheduled_from_the_audit(
        redis: Redis) -> None:
    reference = await seed(redis, return_request(followup_consent="yes"))
    for status in TO_RETURNED:
        await case_service.update_case(redis, reference=reference, actor="operator:x", now=T0,
                                       status=CaseStatus(status))
    assert await followup_store.read(redis, reference) is None
    await followups.sync_from_audit(redis, days=(7,), ttl=3600, now=T0)
    record = await followup_store.read(redis, reference)
    assert record is not None and record.returned == int(T0.timestamp())
    assert [(e.due, e.status) for e in record.entries] == [(int((T0 + 7 * DAY).timestamp()),
                                                           "s")]


async def test_a_check_in_now_and_the_reasons_one_is_refused(
        redis: Redis, api: httpx.AsyncClient) -> None:
    consenting = await seed(redis, return_request(followup_consent="yes"))
    response = await api.post(f"{API}/cases/{consenting}/followups", json={})
    assert response.status_code == 202, response.text
    assert response.json() == {"id": 1, "channel": "sms", "status": "queued"}
    response = await api.post(f"{API}/cases/{consenting}/followups", json={"channel": "voice"})
    assert response.json() == {"id": 2, "channel": "voice", "status": "queued"}
    listed = (await api.get(f"{API}/cases/{consenting}")).json()["followups"]
    assert [(f["id"], f["channel"], f["status"]) for f in listed] == [
        (1, "sms", "scheduled"), (2, "voice", "scheduled")]
    assert ("followup_requested", {"followup": 1, "channel": "sms"}) in await actions(
        redis, consenting)

    no_consent = await seed(redis, return_request(phone="+22370000002"))
    response = await api.post(f"{API}/cases/{no_consent}/followups", json={})
    assert response.status_code == 409 and "followup_consent" in response.json()["detail"]
    callback = await seed(redis, return_request(phone="+22370000003", kind=CaseKind.CALLBACK,
                                                followup_consent="yes"))
    assert (await api.post(f"{API}/cases/{callback}/followups")).status_code == 409

    unsafe = await seed(redis, return_request(phone="+22370000004", followup_consent="yes",
                                              sms_safe="no"))
    response = await api.post(f"{API}/cases/{unsafe}/followups", json={"channel": "sms"})
    assert response.status_code == 409 and "SMS" in response.json()["detail"]
    assert (await api.post(f"{API}/cases/{unsafe}/followups",
                           json={"channel": "voice"})).status_code == 202

    stopped = await seed(redis, return_request(phone="+22370000005", followup_consent="yes"))
    await phone_state.update_profile(redis, pseudonym=pseudonym("+22370000005", DEV_PII_KEY),
                                     ttl=1, opt_out=True)
    response = await api.post(f"{API}/cases/{stopped}/followups")
    assert response.status_code == 409 and "opted out" in response.json()["detail"]

    assert (await api.post(f"{API}/cases/{consenting}/followups",
                           json={"channel": "ussd"})).status_code == 422
    assert (await api.post(f"{API}/cases/1234-5671/followups")).status_code in (404, 422)


async def test_withdrawal_erasure_and_stop_cancel_what_is_not_answered(
        redis: Redis, api: httpx.AsyncClient, settings: Settings) -> None:
    now = datetime.now(UTC)
    phones = ["+22370000011", "+22370000012", "+22370000013"]
    withdrawn, erased, stopped = [
        await seed(redis, return_request(phone=phone, followup_consent="yes"))
        for phone in phones]
    for reference in (withdrawn, erased, stopped):
        assert (await api.post(f"{API}/cases/{reference}/followups")).status_code == 202
    assert (await api.patch(f"{API}/cases/{withdrawn}",
                            json={"status": "withdrawn"})).status_code == 200
    await case_service.erase_case(redis, reference=erased, actor="operator:sup", now=now)
    await phone_state.update_profile(redis, pseudonym=pseudonym(phones[2], DEV_PII_KEY),
                                     ttl=1, opt_out=True)
    for reference in (withdrawn, erased, stopped):  # at once, as the operator sees it
        listed = (await api.get(f"{API}/cases/{reference}")).json()["followups"]
        assert [f["status"] for f in listed] == ["cancelled"]
    # The worker writes it down from the audit (withdrawal, erasure)...
    await followups.sync_from_audit(redis, days=(), ttl=settings.followup_ttl, now=now)
    for reference, reason in ((withdrawn, "withdrawn"), (erased, "erased")):
        record = await followup_store.read(redis, reference)
        assert record is not None and [e.status for e in record.entries] == ["c"]
        assert ("followups_cancelled", {"reason": reason, "followups": [1]}) in await actions(
            redis, reference)
    # ... and a STOP when the check-in comes due (bot/jobs/followups.py, tested there).
    record = await followup_store.read(redis, stopped)
    assert record is not None and [e.status for e in record.entries] == ["s"]
