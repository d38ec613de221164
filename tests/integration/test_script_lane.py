"""The conversation's script connection (bot.store.script_lane) on a real Redis server.

It must answer exactly as redis-py does, raise redis-py's errors, survive a
restart and give up on a hung server within the client's socket timeout.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import (
    ConnectionError,
    NoScriptError,
    RedisError,
    ResponseError,
    TimeoutError,
)

from bot.settings import Settings
from bot.store.connection import open_store
from bot.store.script_lane import BURST, ScriptLane, script_lane
from bot.store.scripts import Script, batch
from tests.redis_server import RedisServer

ECHO = Script("echo", """
redis.call('SET', KEYS[1], ARGV[1])
return {redis.call('GET', KEYS[1]), tonumber(ARGV[2]), false, {ARGV[3]}}
""")



@pytest.fixture
async def lane(own_redis: RedisServer, tmp_path: Path) -> AsyncIterator[ScriptLane]:
    store = open_store(Settings(redis_url=own_redis.url, data_dir=tmp_path / "var"))
    scripts = script_lane(store.redis)
    assert isinstance(scripts, ScriptLane)
    yield scripts
    await scripts.aclose()
    await store.close()


async def test_scripts_answer_as_redis_py_does(lane: ScriptLane) -> None:
    redis: Redis = lane.redis
    args = ["h:{p}:1"], ["Fatoumata é", 42, "x"]
    assert await ECHO.run(lane, *args) == await ECHO.run(redis, *args)
    assert await ECHO.run(lane, *args) == ["Fatoumata é", 42, None, ["x"]]
    assert await lane.get("h:{p}:1") == "Fatoumata é"  # anything else is redis-py's


async def test_concurrent_calls_get_their_own_replies(lane: ScriptLane) -> None:
    replies = await asyncio.gather(*(ECHO.run(lane, [f"h:{{p}}:{n}"], [str(n), n, "y"])
                                     for n in range(200)))
    assert [reply[1] for reply in replies] == list(range(200))


async def test_errors_are_redis_pys(lane: ScriptLane) -> None:
    with pytest.raises(NoScriptError):
        await lane.evalsha("0" * 40, 0)
    with pytest.raises(ResponseError):
        await lane.eval("return redis.call('NOPE')", 0)
    assert await lane.eval("return 1", 0) == 1  # the connection is still in step
    for reply in ("LOADING busy", "READONLY a replica", "OOM full", "NOPERM no", "ERR bad",
                  "ODD thing"):
        script = f"return redis.error_reply('{reply}')"
        with pytest.raises(RedisError) as expected:
            await lane.redis.eval(script, 0)
        with pytest.raises(type(expected.value)) as raised:
            await lane.eval(script, 0)
        assert type(raised.value) is type(expected.value)
        assert str(raised.value) == str(expected.value)


async def test_a_restarted_server_is_reconnected(lane: ScriptLane, own_redis: RedisServer) -> None:
    assert await lane.eval("return 1", 0) == 1
    own_redis.restart()
    with pytest.raises(ConnectionError):
        await lane.eval("return 2", 0)
    assert await lane.eval("return 3", 0) == 3
    own_redis.stop()
    with pytest.raises(ConnectionError):
        await lane.eval("return 4", 0)


async def test_a_hung_server_times_out_like_redis_py(lane: ScriptLane,
                                                    own_redis: RedisServer) -> None:
    assert await lane.eval("return 1", 0) == 1
    assert own_redis.process is not None
    own_redis.process.send_signal(signal.SIGSTOP)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await lane.eval("return 2", 0)
    assert time.monotonic() - started < 1.5
    own_redis.process.send_signal(signal.SIGCONT)
    assert await lane.eval("return 5", 0) == 5


async def test_a_lone_call_goes_at_once_and_a_crowd_in_bursts(lane: ScriptLane) -> None:
    await ECHO.run(lane, ["h:{p}:0"], ["0", 0, "z"])  # connected, script loaded
    counted = CountedWrites(lane)
    replies = await asyncio.gather(*(ECHO.run(lane, [f"h:{{p}}:{n}"], [str(n), n, "y"])
                                     for n in range(20)))
    assert [reply[1] for reply in replies] == list(range(20))
    # The first finds Redis idle: written at once. The others gather while Redis works,
    # BURST at a time, the rest at the end of the loop's turn.
    assert BURST == 8
    assert [write.count(b"EVALSHA") for write in counted.writes] == [1, 8, 8, 3]


class CountedWrites:
    """The lane's transport, its writes counted."""

    def __init__(self, lane: ScriptLane) -> None:
        protocol = lane._protocol
        assert protocol is not None and protocol.transport is not None
        self.transport = protocol.transport
        self.writes: list[bytes] = []
        protocol.transport = self  # type: ignore[assignment]  # a stand-in that counts writes

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.transport.write(data)

    def __getattr__(self, name: str) -> object:
        return getattr(self.transport, name)


async def test_a_batch_of_scripts_is_one_write_with_redis_pys_replies(lane: ScriptLane) -> None:
    await ECHO.run(lane, ["h:{p}:0"], ["0", 0, "z"])
    counted = CountedWrites(lane)
    async with batch(lane) as pipe:
        ECHO.queue(pipe, ["h:{p}:1"], ["one", 1, "a"])
        pipe.eval("return redis.call('NOPE')", 0)
        ECHO.queue(pipe, ["h:{p}:2"], ["two", 2, "b"])
        results = await pipe.execute(raise_on_error=False)
    assert results[0] == ["one", 1, None, ["a"]] and results[2] == ["two", 2, None, ["b"]]
    assert isinstance(results[1], ResponseError)
    assert len(counted.writes) == 1 and counted.writes[0].count(b"EVAL") == 3

    async with batch(lane.redis) as pipe:  # what redis-py's pipeline answers
        ECHO.queue(pipe, ["h:{p}:1"], ["one", 1, "a"])
        pipe.eval("return redis.call('NOPE')", 0)
        assert (await pipe.execute(raise_on_error=False))[0] == results[0]

    unknown, = await lane.send_many([("EVALSHA", "0" * 40, 0)])
    assert isinstance(unknown, NoScriptError)


async def test_a_script_lost_by_the_server_is_sent_again_with_its_body(
        lane: ScriptLane) -> None:
    await ECHO.run(lane, ["h:{p}:0"], ["0", 0, "z"])
    await lane.redis.script_flush()
    async with batch(lane) as pipe:
        ECHO.queue(pipe, ["h:{p}:1"], ["again", 7, "c"])
        results = await pipe.execute()
    assert results == [["again", 7, None, ["c"]]]


async def test_a_batch_that_waits_for_replicas_keeps_off_the_shared_lane(
        lane: ScriptLane) -> None:
    await ECHO.run(lane, ["h:{p}:0"], ["0", 0, "z"])
    counted = CountedWrites(lane)
    async with batch(lane) as pipe:
        ECHO.queue(pipe, ["h:{p}:1"], ["one", 1, "a"])
        pipe.wait_for_replicas(1, 10)  # WAIT blocks its connection: not every hop's
        results = await pipe.execute()
        acks = pipe.acks
    assert results == [["one", 1, None, ["a"]]] and acks == [0]
    assert counted.writes == []


async def test_the_apps_conversation_sends_its_scripts_on_the_lane_until_it_stops(
        own_redis: RedisServer, tmp_path: Path) -> None:
    from bot.app import create_app

    app = create_app(Settings(redis_url=own_redis.url, data_dir=tmp_path / "var"))
    async with app.router.lifespan_context(app):
        scripts = app.state.webhooks.conversation.redis
        assert isinstance(scripts, ScriptLane) and scripts is app.state.store.scripts
        assert await scripts.eval("return 1", 0) == 1
        protocol = scripts._protocol
        assert protocol is not None and protocol.transport is not None
    assert protocol.transport.is_closing() and scripts._protocol is None
