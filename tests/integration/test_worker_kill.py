"""`helpline worker` killed in the middle of sending, then started again: one SMS, not two."""

from __future__ import annotations

import json
from pathlib import Path

from redis.asyncio import Redis

from bot.jobs.broker import GROUP
from bot.jobs.messages import confirmation_id
from bot.settings import Settings
from bot.store import cases, deliveries, keys
from tests.fake_twilio import Held
from tests.integration.admin_support import return_request
from tests.integration.worker_support import ON_EVERY_DEPLOYMENT, actions
from tests.worker_process import eventually, worker_processes

PHONE = "+22376000701"


async def pending_entries(redis: Redis) -> dict[str, str]:
    """Job id -> stream id of the jobs read from the queue and not acknowledged."""
    jobs = {entry: json.loads(fields["data"])["task_id"]
            for entry, fields in await redis.xrange(keys.jobs_stream())}
    pending = await redis.xpending_range(keys.jobs_stream(), GROUP, "-", "+", 100)
    return {jobs[p["message_id"]]: p["message_id"] for p in pending if p["message_id"] in jobs}


async def pending_jobs(redis: Redis) -> set[str]:
    """Ids of the jobs read from the queue and not acknowledged."""
    return set(await pending_entries(redis))


@ON_EVERY_DEPLOYMENT
async def test_a_worker_killed_mid_send_and_restarted_sends_exactly_one_sms(
        redis: Redis, settings: Settings, tmp_path: Path) -> None:
    held = Held()
    with worker_processes(settings, tmp_path) as workers:
        workers.fake.plan(held)
        first = workers.start()
        reference = await cases.create_case(redis, new_case=return_request(phone=PHONE))
        await workers.kill_mid_send(first, held)
        job = confirmation_id(reference)
        assert (await deliveries.state_of(redis, job))["state"] == "sending"
        # The job is still the dead worker's: read from the queue, never acknowledged.
        stream_id = (await pending_entries(redis))[job]

        second = workers.start()

        async def sent() -> bool:
            return (await deliveries.state_of(redis, job)).get("state") == "sent"

        async def acknowledged() -> bool:
            return job not in await pending_jobs(redis)

        await eventually(sent, "the restarted worker to finish the job")
        await eventually(acknowledged, "the job to leave the queue")
        await workers.stop(second)

    workers.sent_once_each([PHONE])
    sent_events = [d for a, d in await actions(redis, reference) if a == "sms_sent"]
    assert sent_events == [{"delivery": job, "purpose": "confirmation", "attempt": 2,
                            "sid": workers.fake.messages[0]["sid"],
                            "found_after_uncertain_attempt": True}]
    logged = workers.log(private=[PHONE, "enregistrée"])  # nor the text of the SMS
    assert "send_confirmation" in logged  # the log is the worker's
    # Which job and which delivery, typed so that the scrub of phone numbers keeps them.
    assert f"job:{stream_id} was left by a worker that stopped; running it again" in logged
    assert f"sms delivery:{job} had gone out already" in logged
