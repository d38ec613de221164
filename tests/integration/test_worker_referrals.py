"""The worker hands a referral to Primero once (docs/spec.md §12), against a fake Primero."""

from __future__ import annotations

import uuid

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from bot.cases import referrals
from bot.cases.model import CaseKind
from bot.cases.primero_case import PRIMERO_NAMESPACE
from bot.cases.referrals import ReferralStatus
from bot.cases.service import erase_case
from bot.jobs.primero_api import PrimeroClient
from bot.jobs.referrals import refer_case
from bot.settings import Settings
from bot.store import keys
from tests.fake_primero import PASSWORD, USER, Fail, Late, Revoke, fake_primero
from tests.integration.admin_support import return_request, seed
from tests.integration.referral_support import (
    ORG,
    primero_settings,
    refer,
    referral_worker,
    run_referral_jobs,
    the_referral,
)
from tests.integration.worker_support import T0, actions

pytestmark = pytest.mark.deployments

ANSWERS = {"name": "Awa Traoré", "nationality": "Mali", "country": "Niger", "city": "Agadez",
           "under_18": "yes", "medical": "no", "pregnant": "no",
           "trafficking_or_violence": "yes", "disability": "yes", "travel_document": "no",
           "sms_safe": "no"}


def referral_actions(found: list[tuple[str, dict[str, object]]]) -> list[str]:
    return [action for action, _ in found if action.startswith("refer")]


async def test_a_referral_goes_once_with_the_fields_primero_knows(
        redis: Redis, settings: Settings) -> None:
    reference = await seed(redis, return_request(**ANSWERS))
    with fake_primero() as fake:
        made = await refer(redis, reference, note="Awa asked for a woman caseworker")
        await run_referral_jobs(primero_settings(settings, fake))
        (case,) = fake.cases.values()
        assert [r.headers["authorization"].startswith("Bearer ") for r in fake.creates] == [True]
    expected_id = str(uuid.uuid5(PRIMERO_NAMESPACE, f"{ORG}/{reference}"))
    assert case == {
        "id": expected_id, "module_id": "primeromodule-cp",
        "other_agency_id": reference, "other_agency_name": ORG,
        "name": "Awa Traoré", "address_current": "Agadez, Niger",
        "protection_concerns": ["migrant", "disabled", "other"],
        "protection_concerns_other": "violence, trafficking or forced work (one question: "
                                     "which of them is not known); under 18",
        "consent_for_services": True, "disclosure_other_orgs": True,
        "case_id_display": case["case_id_display"], "owned_by": case["owned_by"],
        "record_state": True,
    }
    referral = await the_referral(redis, reference)
    assert (referral.id, referral.status, referral.external_id, referral.error,
            referral.attempts) == (made.id, ReferralStatus.SENT, case["case_id_display"], None, 1)
    # The 204 carried no number: it was read back, asking for two fields only.
    assert [r.query for r in fake.reads] == [{"fields": "case_id_display,other_agency_id"}]
    assert len(fake.sign_ins) == 1
    trail = await actions(redis, reference)
    assert referral_actions(trail) == ["referred", "referral_sent"]
    assert dict(trail)["referral_sent"] == {
        "referral": made.id, "external_id": case["case_id_display"], "attempt": 1,
        "existed": False}


async def test_503_twice_then_a_revoked_token_still_make_one_case(
        redis: Redis, settings: Settings) -> None:
    reference = await seed(redis, return_request(**ANSWERS))
    with fake_primero() as fake:
        fake.plan(Fail(503, retry_after="1"), Fail(503, retry_after="1"), Revoke())
        await refer(redis, reference)
        await run_referral_jobs(primero_settings(settings, fake))
        assert len(fake.cases) == 1
        assert len(fake.creates) == 4  # 503, 503, 401 (revoked), then created
        assert len(fake.sign_ins) == 2  # the revoked token renewed once
    referral = await the_referral(redis, reference)
    assert (referral.status, referral.attempts, referral.error) == (ReferralStatus.SENT, 3, None)
    trail = await actions(redis, reference)
    assert referral_actions(trail) == ["referred", "referral_attempt_failed",
                                       "referral_attempt_failed", "referral_sent"]
    waits = [d["retry_in_seconds"] for a, d in trail if a == "referral_attempt_failed"]
    assert waits == [1.0, 1.0]  # Primero's Retry-After, not our back-off (0.05, 0.1)
    assert {d["error"] for a, d in trail if a == "referral_attempt_failed"} == {
        "Primero answered 503"}


async def test_an_answer_lost_to_a_timeout_is_read_back_as_sent(
        redis: Redis, settings: Settings) -> None:
    reference = await seed(redis, return_request(**ANSWERS))
    with fake_primero() as fake:
        fake.plan(Late(2.0))  # created, but answered after the client gave up
        await refer(redis, reference)
        await run_referral_jobs(primero_settings(settings, fake))
        assert len(fake.cases) == 1 and len(fake.creates) == 2
    referral = await the_referral(redis, reference)
    assert referral.status is ReferralStatus.SENT and referral.external_id
    trail = await actions(redis, reference)
    assert referral_actions(trail) == ["referred", "referral_attempt_failed", "referral_sent"]
    assert dict(trail)["referral_sent"]["existed"] is True
    assert "did not answer in time" in str(dict(trail)["referral_attempt_failed"]["error"])


async def test_primero_refusing_the_case_fails_it_in_primeros_words(
        redis: Redis, settings: Settings) -> None:
    reference = await seed(redis, return_request(**ANSWERS))
    with fake_primero() as fake:
        await refer(redis, reference)
        wrong_module = primero_settings(settings, fake, primero_module="primeromodule-xx")
        await run_referral_jobs(wrong_module)
        assert fake.cases == {} and len(fake.creates) == 1  # not tried again
    referral = await the_referral(redis, reference)
    assert referral.status is ReferralStatus.FAILED
    assert referral.error == "Primero refused the case: Invalid Record JSON (module_id)"
    # A failed referral does not block another one.
    again = await refer(redis, reference)
    assert again.status is ReferralStatus.PENDING


async def test_retries_give_up_and_say_why(redis: Redis, settings: Settings) -> None:
    reference = await seed(redis, return_request(**ANSWERS))
    with fake_primero() as fake:
        fake.plan(*[Fail(500, message="boom")] * 5)
        await refer(redis, reference)
        await run_referral_jobs(primero_settings(settings, fake), tries=5)
        assert fake.cases == {} and len(fake.creates) == 5
    referral = await the_referral(redis, reference)
    assert (referral.status, referral.error, referral.attempts) == (
        ReferralStatus.FAILED, "Primero answered 500; gave up after 5 tries", 5)


async def test_every_answer_lost_to_a_timeout_still_ends_sent_when_primero_has_it(
        redis: Redis, settings: Settings) -> None:
    # Primero slow on every creation: each went through, no answer came in time. The
    # referral must not end "failed" while the partner holds the case.
    reference = await seed(redis, return_request(**ANSWERS))
    with fake_primero() as fake:
        fake.plan(*[Late(2.0)] * 3)
        await refer(redis, reference)
        await run_referral_jobs(primero_settings(settings, fake), tries=3)
        assert len(fake.cases) == 1 and len(fake.creates) == 3
    referral = await the_referral(redis, reference)
    assert referral.status is ReferralStatus.SENT and referral.external_id
    trail = await actions(redis, reference)
    assert referral_actions(trail)[-1] == "referral_sent"
    assert dict(trail)["referral_sent"]["existed"] is True


async def test_retries_given_up_with_no_answer_and_no_case_in_primero_fail(
        redis: Redis, settings: Settings) -> None:
    reference = await seed(redis, return_request(**ANSWERS))
    with fake_primero() as fake:
        fake.stop()  # nobody answers at all
        await refer(redis, reference)
        await run_referral_jobs(primero_settings(settings, fake), tries=2)
    referral = await the_referral(redis, reference)
    assert referral.status is ReferralStatus.FAILED
    assert referral.error is not None and "gave up after 2 tries" in referral.error


async def test_wrong_credentials_fail_at_once_without_sending(
        redis: Redis, settings: Settings) -> None:
    reference = await seed(redis, return_request(**ANSWERS))
    with fake_primero() as fake:
        await refer(redis, reference)
        wrong = primero_settings(settings, fake, primero_password=SecretStr("not-it"))
        await run_referral_jobs(wrong)
        assert fake.creates == [] and len(fake.sign_ins) == 1
    referral = await the_referral(redis, reference)
    assert (referral.status, referral.error) == (
        ReferralStatus.FAILED, "Primero refused PRIMERO_USER and PRIMERO_PASSWORD (401)")


async def test_a_case_erased_before_the_job_runs_sends_nothing(
        redis: Redis, settings: Settings) -> None:
    reference = await seed(redis, return_request(**ANSWERS))
    with fake_primero() as fake:
        await refer(redis, reference, note="call her sister first")
        await erase_case(redis, reference=reference, actor="operator:sam", now=T0)
        await run_referral_jobs(primero_settings(settings, fake))
        assert fake.requests == []
    referral = await the_referral(redis, reference)
    assert referral.status is ReferralStatus.FAILED and referral.note is None
    assert referral.error == "the case was erased before it went: nothing was sent"
    assert not await redis.exists(keys.referral_notes(reference))


async def test_a_number_unread_when_it_went_is_read_later(
        redis: Redis, settings: Settings) -> None:
    reference = await seed(redis, return_request(kind=CaseKind.EMERGENCY, location="Gao"))
    with fake_primero() as fake:
        fake.plan_reads(Fail(503, retry_after="0.1"))
        await refer(redis, reference)
        await run_referral_jobs(primero_settings(settings, fake))
        (case,) = fake.cases.values()
        assert len(fake.creates) == 1 and len(fake.reads) == 2
    assert case["address_current"] == "Gao" and case["protection_concerns"] == ["migrant"]
    referral = await the_referral(redis, reference)
    assert (referral.status, referral.external_id) == (ReferralStatus.SENT,
                                                       case["case_id_display"])
    trail = await actions(redis, reference)
    assert referral_actions(trail) == ["referred", "referral_sent", "referral_linked"]
    assert dict(trail)["referral_sent"]["external_id"] is None


async def test_a_primero_answering_200_gives_its_number_at_once(
        redis: Redis, settings: Settings) -> None:
    reference = await seed(redis, return_request(kind=CaseKind.CALLBACK, topic="violence"))
    with fake_primero() as fake:
        fake.client_id_status = 200
        await refer(redis, reference)
        await run_referral_jobs(primero_settings(settings, fake))
        (case,) = fake.cases.values()
        assert fake.reads == []
    assert case["protection_concerns"] == ["migrant", "physically_or_mentally_abused"]
    assert (await the_referral(redis, reference)).external_id == case["case_id_display"]


async def test_a_worker_without_primero_fails_the_referral_saying_so(
        redis: Redis, settings: Settings) -> None:
    reference = await seed(redis, return_request(**ANSWERS))
    await refer(redis, reference)
    await run_referral_jobs(settings)
    referral = await the_referral(redis, reference)
    assert (referral.status, referral.error) == (
        ReferralStatus.FAILED, "Primero is not configured on this worker (PRIMERO_URL)")


async def test_a_job_run_again_after_success_changes_nothing(
        redis: Redis, settings: Settings) -> None:
    reference = await seed(redis, return_request(**ANSWERS))
    with fake_primero() as fake:
        made = await refer(redis, reference)
        async with referral_worker(primero_settings(settings, fake)) as worker:
            await worker.pump()
            await worker.run_jobs()
            before = await actions(redis, reference)
            assert await refer_case(worker.ctx, reference, made.id) == "sent"
        assert len(fake.creates) == 1
    assert await actions(redis, reference) == before
    assert (await referrals.referral(redis, reference, made.id)) is not None


@pytest.mark.single_only("the token's age is the client's own clock; no Redis involved")
async def test_one_token_serves_until_its_fifty_minutes_are_up() -> None:
    now = [1000.0]
    with fake_primero() as fake:
        client = PrimeroClient(base_url=fake.url, user=USER, password=SecretStr(PASSWORD),
                               clock=lambda: now[0])
        cases = [{"data": {"id": str(uuid.uuid4()), "module_id": "primeromodule-cp"}}
                 for _ in range(3)]
        await client.create_case(cases[0])
        now[0] += 49 * 60
        await client.create_case(cases[1])
        assert len(fake.sign_ins) == 1
        now[0] += 2 * 60  # 51 minutes: renewed before Primero's 60 are up
        await client.create_case(cases[2])
        assert len(fake.sign_ins) == 2 and len(fake.cases) == 3
        await client.aclose()
