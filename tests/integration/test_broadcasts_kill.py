"""`helpline worker` killed (SIGKILL) in the middle of a broadcast, another worker taking
over: every recipient gets the alert exactly once (real worker processes, fake Twilio)."""

from __future__ import annotations

from pathlib import Path

from redis.asyncio import Redis

from bot import privacy
from bot.app import create_app
from bot.settings import Settings
from bot.store import broadcasts as store
from tests.fake_twilio import Created, Held
from tests.integration.admin_support import client_for
from tests.integration.broadcast_support import API, TEXTS, seed_subscribers, supervisors
from tests.integration.worker_support import ON_EVERY_DEPLOYMENT
from tests.worker_process import eventually, worker_processes

RECIPIENTS = 48


@ON_EVERY_DEPLOYMENT
async def test_a_worker_killed_mid_broadcast_leaves_no_recipient_out_and_none_twice(
        redis: Redis, settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"quiet_hours": ""})
    phones = await seed_subscribers(redis, privacy.pii_key(settings),
                                    [("NE", "fr"), ("ML", "bm"), ("LY", "en")] * 16)
    assert len(phones) == RECIPIENTS
    tokens = await supervisors(redis)
    held = Held()
    app = create_app(settings)
    # HELPLINE_QUIET_HOURS empty: whatever the hour the test runs at.
    with worker_processes(settings, tmp_path, HELPLINE_OUTBOUND_MPS="40",
                          HELPLINE_QUIET_HOURS="") as workers:
        workers.fake.plan(*[Created()] * 6, held)
        first = workers.start()
        async with app.router.lifespan_context(app):
            async with client_for(app, tokens["sup-a"]) as client:
                made = (await client.post(f"{API}/broadcasts", json={"text": TEXTS})).json()
            async with client_for(app, tokens["sup-b"]) as client:
                approved = await client.post(f"{API}/broadcasts/{made['id']}/approve")
            assert approved.json()["status"] == "sending"
        await workers.kill_mid_send(first, held)  # Twilio took the seventh message
        assert len(workers.fake.creates) < RECIPIENTS

        second = workers.start()

        async def done() -> bool:
            found = await store.read(redis, made["id"])
            return found is not None and found.status == "done"

        await eventually(done, "the second worker to finish the broadcast")
        await workers.stop(second)

    workers.sent_once_each(phones)
    (counts,) = await store.counts(redis, [made["id"]])
    assert counts["sent"] == RECIPIENTS and counts["queued"] == 0
    logged = workers.log(private=[*phones, TEXTS["fr"]])
    assert "left by a worker that stopped; running it again" in logged  # taken over
