"""The worker outlives a Redis restart and runs the jobs queued before it afterwards."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.cases import service as case_service
from bot.cases.jobs import SEND_CASE_MESSAGE
from bot.jobs.twilio_rest import TwilioSms
from bot.jobs.worker import open_deps, run_worker
from bot.settings import Settings
from bot.store import cases
from tests.fake_twilio import FakeTwilio, fake_twilio
from tests.integration.admin_support import T0, return_request
from tests.integration.worker_support import (
    CLIENT_TIMEOUT,
    FAST_RETRY,
    PATIENCE_SECONDS,
    Clock,
    eventually,
    never,
    worker_env,
)
from tests.redis_server import RedisServer

REDELIVERY_SECONDS = 3.0




async def test_the_worker_survives_a_redis_restart_and_loses_no_job(
        own_redis: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bot.jobs.worker")
    with fake_twilio() as fake:
        await _restart_scenario(own_redis, tmp_path, fake, caplog)


async def _restart_scenario(server: RedisServer, tmp_path: Path, fake: FakeTwilio,
                            caplog: pytest.LogCaptureFixture) -> None:
    # A job the worker had read when Redis went away is pending under its name; after the
    # restart it is taken over once idle this long (the default, 60 s, is the test's patience).
    settings = worker_env(Settings(redis_url=server.url, data_dir=tmp_path / "var"), fake,
                          job_redelivery_seconds=REDELIVERY_SECONDS)
    opened = open_deps(settings, clock=Clock(), retry=FAST_RETRY,
                       sms=TwilioSms.from_settings(settings, timeout=CLIENT_TIMEOUT))
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, stop=stop, opened=opened,
                                            poll_delay=0.05, stop_grace=1))
    client = Redis.from_url(server.url, decode_responses=True)
    phones = [f"+2237600060{i}" for i in range(3)]
    try:
        await cases.create_case(client, new_case=return_request(phone=phones[0]))
        await eventually(lambda: len(fake.sent_to(phones[0])) == 1, "the first confirmation")

        # An operator's message queued to go a little later (a case made over SMS: no
        # confirmation), then Redis goes away under the running worker.
        later = await cases.create_case(
            client, new_case=replace(return_request(phone=phones[1]), channel="sms"))
        entry = await case_service.record_message(client, reference=later, actor="operator:ana",
                                                  now=T0, text="Bonjour", opted_out=never)
        assert await opened.queue.enqueue(SEND_CASE_MESSAGE, later, entry.id, delay_seconds=2)
        await client.aclose()
        server.stop()
        # It notices, and keeps trying (a start while Redis is still down fails too).
        await eventually(lambda: caplog.text.count("worker lost Redis") >= 2,
                         "the worker to try again while Redis is down")
        assert not worker.done()

        server.start()  # same port, same directory: the append-only file brings data back
        client = Redis.from_url(server.url, decode_responses=True)
        await eventually(lambda: len(fake.sent_to(phones[1])) == 1, "the job queued before")
        assert fake.sent_to(phones[1])[0]["body"] == "Bonjour"
        await cases.create_case(client, new_case=return_request(phone=phones[2]))
        await eventually(lambda: len(fake.sent_to(phones[2])) == 1, "a job queued after")
        assert [len(fake.sent_to(phone)) for phone in phones] == [1, 1, 1]
        assert not worker.done()
    finally:
        stop.set()
        await asyncio.wait_for(worker, PATIENCE_SECONDS)
        await client.aclose()
        await opened.close()
    assert worker.exception() is None
