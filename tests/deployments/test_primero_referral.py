"""A referral through the HTTP app and the real `helpline worker` process, against the fake
Primero, on one server and on a real Cluster: under retries (503 twice, a revoked token)
and with a worker killed between Primero's creating the case and our recording it,
Primero ends with exactly one case, ours says `sent`, and the log holds no secret and
nothing personal (issue 22's acceptance)."""

from __future__ import annotations

import subprocess
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from bot.admin.operators import Role
from bot.settings import Settings
from tests.fake_primero import PASSWORD, USER, Fail, FakePrimero, Held, Revoke, fake_primero
from tests.integration.admin_support import (
    API,
    PHONE,
    operator_client,
    return_request,
    seed,
)
from tests.integration.referral_support import ORG, primero_settings
from tests.integration.worker_support import actions
from tests.worker_process import Workers, eventually, worker_processes

pytestmark = pytest.mark.deployments

NAME, CITY, NOTE = "Mariam Coulibaly", "Tamanrasset", "she asked for a woman caseworker"


def primero_workers(settings: Settings, tmp_path: Path, fake: FakePrimero
                    ) -> AbstractContextManager[Workers]:
    """`helpline worker` processes (tests/worker_process.py) with Primero set through the
    environment, at `fake`."""
    return worker_processes(settings, tmp_path, PRIMERO_URL=fake.url, PRIMERO_USER=USER,
                            PRIMERO_PASSWORD=PASSWORD, HELPLINE_ORG_NAME=ORG)


async def referral_of(client: httpx.AsyncClient, reference: str) -> dict[str, Any]:
    (referral,) = (await client.get(f"{API}/cases/{reference}")).json()["referrals"]
    assert isinstance(referral, dict)
    return referral


async def sent_by(workers: Workers, worker: subprocess.Popen[bytes], client: httpx.AsyncClient,
                  reference: str, waiting_for: str) -> dict[str, Any]:
    """Once `worker` has sent the referral: the worker stopped, the referral as the API shows
    it."""
    async def sent() -> bool:
        return (await referral_of(client, reference))["status"] == "sent"

    await eventually(sent, waiting_for)
    await workers.stop(worker)
    return await referral_of(client, reference)


def nothing_secret_or_personal(workers: Workers, fake: FakePrimero) -> None:
    log = workers.log(private=(NAME, CITY, NOTE, PHONE))
    tokens = {r.headers["authorization"].split(" ", 1)[1] for r in fake.creates}
    assert tokens  # the worker did authenticate
    for secret in (PASSWORD, *tokens, *(t.split(".")[1] for t in tokens)):
        assert secret not in log


async def test_retries_and_a_revoked_token_end_in_one_primero_case(
        redis: Redis, settings: Settings, tmp_path: Path) -> None:
    reference = await seed(redis, return_request(name=NAME, city=CITY, country="Algeria",
                                                 trafficking_or_violence="yes"))
    with fake_primero() as fake, primero_workers(settings, tmp_path, fake) as workers:
        fake.plan(Fail(503, retry_after="1"), Fail(503, retry_after="1"), Revoke())
        async with operator_client(redis, primero_settings(settings, fake), name="ana",
                                   role=Role.OPERATOR) as client:
            posted = await client.post(f"{API}/cases/{reference}/referrals",
                                       json={"consent": "given_by_migrant", "note": NOTE})
            assert posted.status_code == 202, posted.text
            referral = await sent_by(workers, workers.start(), client, reference,
                                     "the worker to send the referral")
        (case,) = fake.cases.values()
        assert len(fake.creates) == 4 and len(fake.sign_ins) == 2
        nothing_secret_or_personal(workers, fake)
    assert referral["external_id"] == case["case_id_display"]
    assert (referral["attempts"], referral["error"], referral["note"]) == (3, None, NOTE)
    assert (case["name"], case["address_current"], case["other_agency_id"]) == (
        NAME, f"{CITY}, Algeria", reference)
    trail = [action for action, _ in await actions(redis, reference)
             if action.startswith("refer")]
    assert trail == ["referred", "referral_attempt_failed", "referral_attempt_failed",
                     "referral_sent"]


async def test_a_worker_killed_before_recording_primeros_answer_makes_no_second_case(
        redis: Redis, settings: Settings, tmp_path: Path) -> None:
    reference = await seed(redis, return_request(name=NAME, city=CITY))
    held = Held()
    with fake_primero() as fake, primero_workers(settings, tmp_path, fake) as workers:
        fake.plan(held)
        async with operator_client(redis, primero_settings(settings, fake), name="ana",
                                   role=Role.OPERATOR) as client:
            posted = await client.post(f"{API}/cases/{reference}/referrals",
                                       json={"consent": "recorded_by_operator"})
            assert posted.status_code == 202, posted.text
            # Primero has made the case; its answer never reaches the worker.
            await workers.kill_mid_send(workers.start(), held)
            assert (await referral_of(client, reference))["status"] == "pending"
            assert len(fake.cases) == 1

            referral = await sent_by(workers, workers.start(), client, reference,
                                     "the restarted worker to finish the referral")
        (case,) = fake.cases.values()
        assert len(fake.creates) == 2  # the second try was Primero's 409, read back
        nothing_secret_or_personal(workers, fake)
    assert referral["external_id"] == case["case_id_display"]
    sent_events = [d for a, d in await actions(redis, reference) if a == "referral_sent"]
    assert [(d["existed"], d["external_id"]) for d in sent_events] == [
        (True, case["case_id_display"])]
    assert "left by a worker that stopped; running it again" in workers.log_path.read_text()
