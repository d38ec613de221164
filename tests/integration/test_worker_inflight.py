"""Jobs still running when the worker's listener restarts (a Redis restart) run once.

The worker (in-process, `run_worker`) reads three operator messages at once; the
outbound pace makes the second and third wait for their slots, 5 s apart. Redis
stops and starts again while they wait: the listener stops on the Redis error and
starts again, but the jobs it had started keep running. They must not also be run
a second time by the new listener (nor taken over by another worker): every phone
gets its message exactly once.

The broker's side of it runs on every deployment; an outage longer than
`HELPLINE_JOB_REDELIVERY_SECONDS` (every pending entry then looks idle past the
limit) on one server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.asyncio import Redis

from bot.cases import service as case_service
from bot.cases.jobs import SEND_CASE_MESSAGE
from bot.jobs.broker import GROUP
from bot.jobs.twilio_rest import TwilioSms
from bot.jobs.worker import Opened, open_deps, run_worker
from bot.settings import Settings
from bot.store import cases, keys
from tests.fake_twilio import FakeTwilio, fake_twilio
from tests.integration.admin_support import T0, return_request
from tests.integration.worker_support import (
    CLIENT_TIMEOUT,
    FAST_RETRY,
    ON_EVERY_DEPLOYMENT,
    PATIENCE_SECONDS,
    Clock,
    eventually,
    never,
    queue_on,
    worker_env,
)
from tests.redis_server import RedisServer

MPS = 0.2
"""One message each 5 s: the restart comes while the second and third wait for their slot."""



def pending(server: RedisServer) -> list[dict[str, object]]:
    """The job queue's pending entries (read by a worker, not acknowledged)."""
    client = redis.Redis(port=server.port)
    try:
        return list(client.xpending_range(keys.jobs_stream(), GROUP, min="-", max="+",
                                          count=100))
    finally:
        client.close()


def pace_done(server: RedisServer) -> bool:
    """Every slot booked in the outbound pace has passed (a booked send went or never will)."""
    client = redis.Redis(port=server.port)
    try:
        next_free = client.get(keys.outbound_pace())
    finally:
        client.close()
    return next_free is None or int(next_free) / 1e6 + 1.0 < time.time()


def sent(fake: FakeTwilio, phones: list[str]) -> list[int]:
    """How many messages each phone got, fewest first."""
    return sorted(len(fake.sent_to(phone)) for phone in phones)


def persistent_server(directory: Path) -> RedisServer:
    """One server as docs/redis.md has it run: every write on disk before it is acknowledged."""
    return RedisServer(directory, extra=("--appendfsync", "always"))


async def queue_messages(opened: Opened, server: RedisServer, phones: list[str]) -> None:
    client = Redis.from_url(server.url, decode_responses=True)
    try:
        for phone in phones:
            reference = await cases.create_case(  # over SMS: no confirmation to send
                client, new_case=replace(return_request(phone=phone), channel="sms"))
            entry = await case_service.record_message(
                client, reference=reference, actor="operator:ana", now=T0,
                text="Bonjour", opted_out=never)
            assert await opened.queue.enqueue(SEND_CASE_MESSAGE, reference, entry.id)
    finally:
        await client.aclose()


async def test_jobs_running_across_a_redis_restart_send_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bot.jobs.worker")
    server = persistent_server(tmp_path / "redis")
    server.start()
    try:
        with fake_twilio() as fake:
            await _scenario(server, tmp_path, fake, caplog)
    finally:
        server.stop()


async def _scenario(server: RedisServer, tmp_path: Path, fake: FakeTwilio,
                    caplog: pytest.LogCaptureFixture) -> None:
    settings = worker_env(Settings(redis_url=server.url, data_dir=tmp_path / "var"), fake,
                          outbound_mps=MPS)
    opened = open_deps(settings, clock=Clock(), retry=FAST_RETRY,
                       sms=TwilioSms.from_settings(settings, timeout=CLIENT_TIMEOUT))
    phones = [f"+2237600070{i}" for i in range(3)]
    await queue_messages(opened, server, phones)
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, stop=stop, opened=opened,
                                            poll_delay=0.05, stop_grace=1))
    try:
        # One goes at once; the two others are running, waiting for their slots.
        await eventually(lambda: len(fake.creates) == 1, "the first message")
        await eventually(lambda: len(pending(server)) <= 2, "the first job acknowledged")
        assert sent(fake, phones) == [0, 0, 1], "too slow to show"
        server.stop()
        await eventually(lambda: "worker lost Redis" in caplog.text, "the worker to notice")
        server.start()  # same port and directory: the append-only file brings all back
        # The new listener has read this worker's pending jobs again (XREADGROUP from 0)...
        await eventually(lambda: all(int(entry["times_delivered"]) >= 2  # type: ignore[call-overload]
                                     for entry in pending(server)),
                         "the listener to start again")
        # ... while the jobs it had started still wait for their slots (else the test
        # shows nothing: the machine was too slow for the 5 s between two slots).
        assert sent(fake, phones) == [0, 0, 1], "too slow to show"

        await eventually(lambda: not pending(server) and pace_done(server),
                         "every job done and every booked slot past")
        assert [len(fake.sent_to(phone)) for phone in phones] == [1, 1, 1]
        assert not worker.done()
    finally:
        stop.set()
        await asyncio.wait_for(worker, PATIENCE_SECONDS)
        await opened.close()
    assert worker.exception() is None


def described(message: Any) -> tuple[list[object], int, str]:
    """(arguments, try, stream id) of a fetched message."""
    data = json.loads(message.data)
    return data["args"], data["labels"]["job_try"], data["labels"]["stream_id"]


async def nothing_for(listener: AsyncIterator[Any], seconds: float) -> bool:
    """Whether `listener` hands out nothing for `seconds`."""
    try:
        await asyncio.wait_for(anext(listener), seconds)
    except TimeoutError:
        return True
    return False


@ON_EVERY_DEPLOYMENT
async def test_a_listener_starting_again_leaves_the_jobs_still_running_be(
        redis: Redis, redis_server: Any) -> None:
    async with queue_on(redis_server.url, "w1", redelivery_seconds=0.5) as queue:
        await queue.enqueue("send_confirmation", "12345671")
        await queue.enqueue("send_confirmation", "12345672")
        running, waiting = await queue.broker.fetch(block_ms=None)
        (_, _, stream_id) = described(running)
        with queue.broker.running(stream_id):  # its task outlives the listener
            listener = queue.broker.listen()
            again = await asyncio.wait_for(anext(listener), 5)
            assert described(again)[:2] == (["12345672"], 2)  # read and not run: runs
            assert described(waiting)[2] == described(again)[2]
            # The running one is not handed out again, however long it runs.
            assert await nothing_for(listener, 2.0)
            await listener.aclose()


async def test_after_a_long_outage_a_live_workers_job_is_not_taken_over(
        tmp_path: Path) -> None:
    redelivery = 3.0
    server = persistent_server(tmp_path / "redis")
    server.start()
    try:
        async with queue_on(server.url, "busy", redelivery) as busy, \
                queue_on(server.url, "other", redelivery) as other:
            await busy.enqueue("send_confirmation", "12345671")
            (job,) = await busy.broker.fetch(block_ms=None)
            with busy.broker.running(described(job)[2]):
                server.stop()
                await asyncio.sleep(redelivery + 1)  # the entry idles past the limit
                server.start()
                # Another worker's listener starts at once: it must leave the job to
                # the live worker, whose heartbeat touches it as soon as Redis is back.
                listener = other.broker.listen()
                assert await nothing_for(listener, 2 * redelivery)
                await listener.aclose()
    finally:
        server.stop()
