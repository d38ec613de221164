"""`helpline worker` killed in the middle of sending, then started again: one SMS, not two."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO

from redis.asyncio import Redis

from bot.jobs.broker import GROUP
from bot.jobs.messages import confirmation_id
from bot.settings import Settings
from bot.store import cases, deliveries, keys
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio, Held, fake_twilio
from tests.integration.admin_support import return_request
from tests.integration.worker_support import ON_EVERY_DEPLOYMENT, actions

PHONE = "+22376000701"
PATIENCE_SECONDS = 60.0
# The real redelivery, made short: a job its worker left unfinished runs again this long
# after that worker last touched it (HELPLINE_JOB_REDELIVERY_SECONDS, 60 s by default).
REDELIVERY_SECONDS = 2


def worker_process(settings: Settings, fake: FakeTwilio, log: IO[bytes]) -> subprocess.Popen[bytes]:
    """`helpline worker` in a process of its own, configured through the environment."""
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
    }
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)


async def pending_jobs(redis: Redis) -> set[str]:
    """Ids of the jobs read from the queue and not acknowledged."""
    jobs = {entry: json.loads(fields["data"])["task_id"]
            for entry, fields in await redis.xrange(keys.jobs_stream())}
    pending = await redis.xpending_range(keys.jobs_stream(), GROUP, "-", "+", 100)
    return {jobs[p["message_id"]] for p in pending if p["message_id"] in jobs}


async def eventually(condition: Callable[[], object], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PATIENCE_SECONDS
    while not await _holds(condition):
        assert loop.time() < deadline, f"still waiting for {what}"
        await asyncio.sleep(0.05)


async def _holds(condition: Callable[[], object]) -> bool:
    result = condition()
    if asyncio.iscoroutine(result):
        result = await result
    return bool(result)


@ON_EVERY_DEPLOYMENT
async def test_a_worker_killed_mid_send_and_restarted_sends_exactly_one_sms(
        redis: Redis, settings: Settings, tmp_path: Path) -> None:
    held = Held()
    log_path = tmp_path / "worker.log"
    with fake_twilio() as fake, log_path.open("wb") as log:
        fake.plan(held)
        first = worker_process(settings, fake, log)
        try:
            reference = await cases.create_case(redis, new_case=return_request(phone=PHONE))
            assert await asyncio.to_thread(held.arrived.wait, PATIENCE_SECONDS)
            # Twilio has taken the message; its answer never reaches the worker.
            first.kill()
            await asyncio.to_thread(first.wait, PATIENCE_SECONDS)
        finally:
            if first.poll() is None:
                first.kill()
        held.release.set()
        job = confirmation_id(reference)
        assert (await deliveries.state_of(redis, job))["state"] == "sending"
        # The job is still the dead worker's: read from the queue, never acknowledged.
        assert job in await pending_jobs(redis)

        second = worker_process(settings, fake, log)
        try:
            async def sent() -> bool:
                return (await deliveries.state_of(redis, job)).get("state") == "sent"

            async def acknowledged() -> bool:
                return job not in await pending_jobs(redis)

            await eventually(sent, "the restarted worker to finish the job")
            await eventually(acknowledged, "the job to leave the queue")
            second.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(second.wait, PATIENCE_SECONDS) == 0
        finally:
            if second.poll() is None:
                second.kill()

    assert len(fake.creates) == 1 and len(fake.sent_to(PHONE)) == 1
    assert fake.lists  # the restarted worker looked before sending
    sent_events = [d for a, d in await actions(redis, reference) if a == "sms_sent"]
    assert sent_events == [{"delivery": job, "purpose": "confirmation", "attempt": 2,
                            "sid": fake.messages[0]["sid"],
                            "found_after_uncertain_attempt": True}]
    logged = log_path.read_text()
    assert "send_confirmation" in logged  # the log is the worker's
    assert "left by a worker that stopped; running it again" in logged  # taken over
    assert PHONE not in logged and PHONE[1:] not in logged
    assert "enregistrée" not in logged  # nor the text of the SMS
