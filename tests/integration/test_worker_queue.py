"""The job queue's own guarantees (bot/jobs/broker.py), on a real Redis: what taskiq-redis
lacks and we added — redelivery of a dead worker's jobs, delays, once-only ids."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from redis.asyncio import Redis

from bot.jobs.broker import Broker
from bot.store import keys
from tests.integration.worker_support import ON_EVERY_DEPLOYMENT, queue_on

REDELIVERY_SECONDS = 0.5


def jobs(found: list[object]) -> list[tuple[str, list[object], int]]:
    """(name, arguments, try) of fetched messages."""
    out = []
    for message in found:
        data = json.loads(message.data)  # type: ignore[attr-defined]
        out.append((data["task_name"], data["args"], data["labels"]["job_try"]))
    return out


async def fetch(broker: Broker) -> list[object]:
    return list(await broker.fetch(block_ms=None))


@ON_EVERY_DEPLOYMENT
async def test_a_job_queued_before_any_worker_is_not_skipped(
        redis: Redis, redis_server: Any) -> None:
    async with queue_on(redis_server.url, "web", REDELIVERY_SECONDS) as web:
        await web.enqueue("send_case_message", "12345671", "e1")  # no group yet
    assert await redis.xlen(keys.jobs_stream()) == 1
    async with queue_on(redis_server.url, "w1", REDELIVERY_SECONDS) as worker:
        assert jobs(await fetch(worker.broker)) == [("send_case_message", ["12345671", "e1"], 1)]


@ON_EVERY_DEPLOYMENT
async def test_a_job_id_is_queued_once(redis: Redis, redis_server: Any) -> None:
    async with queue_on(redis_server.url, "w1", REDELIVERY_SECONDS) as queue:
        assert await queue.enqueue("send_confirmation", "12345671", job_id="confirmation:1")
        assert not await queue.enqueue("send_confirmation", "12345671", job_id="confirmation:1")
        assert await queue.enqueue("send_confirmation", "12345672", job_id="confirmation:2")
        assert [args for _, args, _ in jobs(await fetch(queue.broker))] == [
            ["12345671"], ["12345672"]]
        assert 0 < await redis.pttl(keys.job_once("confirmation:1")) <= 3600 * 1000


@ON_EVERY_DEPLOYMENT
async def test_a_delayed_job_waits_for_its_time(redis: Redis, redis_server: Any) -> None:
    async with queue_on(redis_server.url, "w1", REDELIVERY_SECONDS) as queue:
        await queue.enqueue("send_case_message", "12345671", "e1", delay_seconds=0.4)
        assert await fetch(queue.broker) == []
        assert await redis.zcard(keys.jobs_delayed()) == 1
        await asyncio.sleep(0.5)
        assert len(await fetch(queue.broker)) == 1
        assert await redis.zcard(keys.jobs_delayed()) == 0


@ON_EVERY_DEPLOYMENT
async def test_a_dead_workers_job_is_taken_over_with_its_try_raised(
        redis: Redis, redis_server: Any) -> None:
    async with queue_on(redis_server.url, "dead", REDELIVERY_SECONDS) as dead, \
            queue_on(redis_server.url, "alive", REDELIVERY_SECONDS) as alive:
        await dead.enqueue("send_confirmation", "12345671")
        assert len(await fetch(dead.broker)) == 1
        await dead.broker.stop_heartbeat()  # the worker dies: nobody touches its job
        assert await fetch(alive.broker) == []  # not idle long enough yet
        await asyncio.sleep(REDELIVERY_SECONDS + 0.1)
        (taken,) = await fetch(alive.broker)
        assert jobs([taken]) == [("send_confirmation", ["12345671"], 2)]
        await taken.ack()  # type: ignore[union-attr]
        assert await redis.xlen(keys.jobs_stream()) == 0  # acknowledged and deleted


@ON_EVERY_DEPLOYMENT
async def test_a_live_worker_keeps_its_running_job(
        redis: Redis, redis_server: Any) -> None:
    async with queue_on(redis_server.url, "busy", REDELIVERY_SECONDS) as busy, \
            queue_on(redis_server.url, "other", REDELIVERY_SECONDS) as other:
        await busy.enqueue("send_confirmation", "12345671")
        assert len(await fetch(busy.broker)) == 1  # running (its heartbeat runs)
        await asyncio.sleep(REDELIVERY_SECONDS * 3)
        assert await fetch(other.broker) == []


@ON_EVERY_DEPLOYMENT
async def test_a_job_read_by_a_listener_that_stopped_runs_when_it_starts_again(
        redis: Redis, redis_server: Any) -> None:
    # The listener read the job, then stopped on a Redis error before running it: the
    # heartbeat still touches it (so no other worker takes it over), and the next
    # listener of the same worker must run it.
    async with queue_on(redis_server.url, "w1", REDELIVERY_SECONDS) as queue:
        await queue.enqueue("send_confirmation", "12345671")
        assert len(await fetch(queue.broker)) == 1  # read, never run nor acknowledged
        listener = queue.broker.listen()
        again = await asyncio.wait_for(anext(listener), 5)  # never, before the fix
        await listener.aclose()
        assert jobs([again]) == [("send_confirmation", ["12345671"], 2)]
