"""`helpline worker` killed (SIGKILL) in the middle of a broadcast, another worker taking
over: every recipient gets the alert exactly once (real worker processes, fake Twilio)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

from redis.asyncio import Redis

from bot import privacy
from bot.app import create_app
from bot.settings import Settings
from bot.store import broadcasts as store
from tests.fake_twilio import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM_NUMBER,
    Created,
    FakeTwilio,
    Held,
    fake_twilio,
)
from tests.integration.admin_support import client_for
from tests.integration.broadcast_support import API, TEXTS, seed_subscribers, supervisors
from tests.integration.test_worker_kill import PATIENCE_SECONDS, REDELIVERY_SECONDS, eventually
from tests.integration.worker_support import ON_EVERY_DEPLOYMENT

RECIPIENTS = 48


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
        "HELPLINE_OUTBOUND_MPS": "40",
        "HELPLINE_QUIET_HOURS": "",  # whatever the hour the test runs at
    }
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)


@ON_EVERY_DEPLOYMENT
async def test_a_worker_killed_mid_broadcast_leaves_no_recipient_out_and_none_twice(
        redis: Redis, settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"quiet_hours": ""})
    phones = await seed_subscribers(redis, privacy.pii_key(settings),
                                    [("NE", "fr"), ("ML", "bm"), ("LY", "en")] * 16)
    assert len(phones) == RECIPIENTS
    tokens = await supervisors(redis)
    held = Held()
    log_path = tmp_path / "worker.log"
    app = create_app(settings)
    with fake_twilio() as fake, log_path.open("wb") as log:
        fake.plan(*[Created()] * 6, held)
        first = worker_process(settings, fake, log)
        try:
            async with app.router.lifespan_context(app):
                async with client_for(app, tokens["sup-a"]) as client:
                    made = (await client.post(f"{API}/broadcasts", json={"text": TEXTS})).json()
                async with client_for(app, tokens["sup-b"]) as client:
                    approved = await client.post(f"{API}/broadcasts/{made['id']}/approve")
                assert approved.json()["status"] == "sending"
            assert await asyncio.to_thread(held.arrived.wait, PATIENCE_SECONDS)
            # Twilio has taken the seventh message; its answer never reaches the worker.
            first.send_signal(signal.SIGKILL)
            await asyncio.to_thread(first.wait, PATIENCE_SECONDS)
        finally:
            if first.poll() is None:
                first.kill()
        held.release.set()
        sent_before = len(fake.creates)
        assert sent_before < RECIPIENTS

        second = worker_process(settings, fake, log)
        try:
            async def done() -> bool:
                found = await store.read(redis, made["id"])
                return found is not None and found.status == "done"

            await eventually(done, "the second worker to finish the broadcast")
            second.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(second.wait, PATIENCE_SECONDS) == 0
        finally:
            if second.poll() is None:
                second.kill()

    for phone in phones:
        assert len(fake.sent_to(phone)) == 1, phone
    assert len(fake.creates) == RECIPIENTS
    assert fake.lists  # the second worker asked Twilio about what the first left uncertain
    (counts,) = await store.counts(redis, [made["id"]])
    assert counts["sent"] == RECIPIENTS and counts["queued"] == 0
    logged = log_path.read_text()
    assert "left by a worker that stopped; running it again" in logged  # taken over
    assert not any(phone in logged or phone[1:] in logged for phone in phones)
    assert TEXTS["fr"] not in logged
