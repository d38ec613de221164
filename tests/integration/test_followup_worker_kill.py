"""`helpline worker` killed (SIGKILL) while sending check-ins, then started again: every
check-in goes, none twice (docs/spec.md §11), on one server, Sentinel and a Cluster."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from redis.asyncio import Redis

from bot.cases import service as case_service
from bot.cases.model import CaseStatus
from bot.settings import Settings
from bot.store import cases
from bot.store import followups as followup_store
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio, Held, fake_twilio
from tests.integration.admin_support import return_request
from tests.integration.test_worker_kill import PATIENCE_SECONDS, eventually
from tests.integration.worker_support import ON_EVERY_DEPLOYMENT, actions

PHONES = [f"+2237600080{n}" for n in range(8)]
REDELIVERY_SECONDS = 2


def worker_process(settings: Settings, fake: FakeTwilio, log: IO[bytes]) -> subprocess.Popen[bytes]:
    assert settings.redis_url is not None
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url,
        "HELPLINE_DATA_DIR": str(settings.data_dir),
        "HELPLINE_PUBLIC_URL": "https://helpline.example",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "TWILIO_API_BASE_URL": fake.url,
        "HELPLINE_JOB_REDELIVERY_SECONDS": str(REDELIVERY_SECONDS),
        "HELPLINE_FOLLOWUP_DAYS": "0",  # a check-in as soon as the case is returned
    }
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)


async def returned_cases(redis: Redis) -> list[str]:
    references = []
    for phone in PHONES:
        new_case = replace(return_request(phone=phone, followup_consent="yes"), channel="sms")
        reference = await cases.create_case(redis, new_case=new_case)
        for status in (CaseStatus.CONTACTED, CaseStatus.IN_PROGRESS,
                       CaseStatus.RETURN_ARRANGED, CaseStatus.RETURNED):
            await case_service.update_case(redis, reference=reference, actor="operator:ana",
                                           now=datetime.now(UTC), status=status)
        references.append(reference)
    return references


async def statuses(redis: Redis, references: list[str]) -> list[str]:
    found = []
    for reference in references:
        record = await followup_store.read(redis, reference)
        found.append("".join(e.status for e in record.entries) if record else "")
    return found


@ON_EVERY_DEPLOYMENT
async def test_a_worker_killed_mid_check_ins_sends_each_once_and_skips_none(
        redis: Redis, settings: Settings, tmp_path: Path) -> None:
    held = Held()
    log_path = tmp_path / "worker.log"
    with fake_twilio() as fake, log_path.open("wb") as log:
        fake.plan(held)
        references = await returned_cases(redis)
        first = worker_process(settings, fake, log)
        try:
            assert await asyncio.to_thread(held.arrived.wait, PATIENCE_SECONDS)
            # Twilio took one check-in; its answer never reaches the worker.
            first.send_signal(signal.SIGKILL)
            await asyncio.to_thread(first.wait, PATIENCE_SECONDS)
        finally:
            if first.poll() is None:
                first.kill()
        held.release.set()
        # The held check-in is queued, not known as sent (its job is still the dead worker's).
        assert "q" in "".join(await statuses(redis, references))

        second = worker_process(settings, fake, log)
        try:
            async def all_sent() -> bool:
                return await statuses(redis, references) == ["t"] * len(references)

            await eventually(all_sent, "every check-in to be sent")
            second.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(second.wait, PATIENCE_SECONDS) == 0
        finally:
            if second.poll() is None:
                second.kill()

    for phone in PHONES:
        sent = fake.sent_to(phone)
        assert len(sent) == 1, (phone, sent)
        assert "Depuis votre retour" in str(sent[0]["body"])
    assert len(fake.creates) == len(PHONES)
    assert fake.lists  # the restarted worker looked before sending the uncertain one again
    found = [detail for reference in references for action, detail in
             await actions(redis, reference) if action == "sms_sent"
             and detail.get("found_after_uncertain_attempt")]
    assert len(found) >= 1
    logged = log_path.read_text()
    assert "send_followup" in logged
    assert all(phone not in logged and phone[1:] not in logged for phone in PHONES)
    assert "Depuis votre retour" not in logged
