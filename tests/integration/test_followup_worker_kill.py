"""`helpline worker` killed (SIGKILL) while sending check-ins, then started again: every
check-in goes, none twice (docs/spec.md §11), on one server, Sentinel and a Cluster."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from redis.asyncio import Redis

from bot.cases import service as case_service
from bot.cases.model import CaseStatus
from bot.settings import Settings
from bot.store import cases
from bot.store import followups as followup_store
from tests.fake_twilio import Held
from tests.integration.admin_support import return_request
from tests.integration.worker_support import ON_EVERY_DEPLOYMENT, actions
from tests.worker_process import eventually, worker_processes

PHONES = [f"+2237600080{n}" for n in range(8)]


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
    # A check-in as soon as the case is returned.
    # No quiet hours: this test runs on the wall clock, at any hour.
    with worker_processes(settings, tmp_path, HELPLINE_FOLLOWUP_DAYS="0",
                          HELPLINE_QUIET_HOURS="") as workers:
        workers.fake.plan(held)
        references = await returned_cases(redis)
        first = workers.start()
        await workers.kill_mid_send(first, held)  # Twilio took one check-in
        # The held check-in is queued, not known as sent (its job is still the dead worker's).
        assert "q" in "".join(await statuses(redis, references))

        second = workers.start()

        async def all_sent() -> bool:
            return await statuses(redis, references) == ["t"] * len(references)

        await eventually(all_sent, "every check-in to be sent")
        await workers.stop(second)

    workers.sent_once_each(PHONES)
    for phone in PHONES:
        assert "Depuis votre retour" in str(workers.fake.sent_to(phone)[0]["body"])
    found = [detail for reference in references for action, detail in
             await actions(redis, reference) if action == "sms_sent"
             and detail.get("found_after_uncertain_attempt")]
    assert len(found) >= 1
    logged = workers.log(private=[*PHONES, "Depuis votre retour"])
    assert "send_followup" in logged
