"""The conversation's scripts on one lean pipelined connection to a plain Redis server.

A hop's one round trip is one script call (STEP or BEGIN). Through redis-py's
asyncio client a call costs tens of µs of CPU (pool checkout, arguments
packed in Python, a timer per read); written straight to one shared
connection (arguments packed by hiredis's `pack_command`, replies parsed by
its `Reader`, replies matched to callers in order) it costs a few, and
concurrent hops share writes and reads. Everything but EVALSHA/EVAL goes to
the redis-py client as before (`ScriptLane` hands every other attribute to it).

Only for one server reached by `redis://` or `unix://` (the embedded default
included): Sentinel, Cluster and TLS clients are used as they are
(`script_lane` returns them). `send_many` sends a `Batch` of scripts the same
way (`bot.store.scripts`: one write, one round trip), unless the batch waits
for replicas (`WAIT` blocks its connection, and this one is every hop's) or
holds other commands (redis-py shapes their replies). Errors are redis-py's
public ones: a reply error is mapped as redis-py maps it (NOSCRIPT is
`NoScriptError`), a lost or unreachable connection is `ConnectionError`, and
a reply slower than the client's socket timeout fails every pending call with
`TimeoutError` and drops the connection, as redis-py would.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any, cast

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    ConnectionError,
    NoPermissionError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TimeoutError,
)

DEFAULT_TIMEOUT_SECONDS = 1.0
BURST = 8
"""Calls gathered before they are written without waiting for the loop turn's end."""

_ERRORS: dict[str, type[RedisError]] = {
    "NOSCRIPT": NoScriptError,
    "LOADING": BusyLoadingError,
    "READONLY": ReadOnlyError,
    "OOM": OutOfMemoryError,
    "NOAUTH": AuthenticationError,
    "WRONGPASS": AuthenticationError,
    "NOPERM": NoPermissionError,
    "ERR": ResponseError,
}


def reply_error(message: str) -> RedisError:
    """A Redis error reply as redis-py raises it: the class its code names, the code cut off."""
    code, _, rest = message.partition(" ")
    known = _ERRORS.get(code)
    return ResponseError(message) if known is None else known(rest)


class _Protocol(asyncio.Protocol):
    """One connection: calls written in order, replies matched to them in order."""

    def __init__(self, lane: ScriptLane) -> None:
        self.lane = lane
        self.reader = hiredis.Reader(replyError=reply_error, encoding="utf-8")
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self.outgoing: list[bytes] = []

    def send(self, packed: bytes, loop: asyncio.AbstractEventLoop, calls: int = 1) -> None:
        """Write `packed` (`calls` commands, already waiting for their replies).

        When Redis has nothing else of ours to answer, at once: a lone hop waits for
        nothing. Else it joins the calls made in this turn of the loop, written together
        at its end (one system call for many hops), or as soon as `BURST` have gathered,
        so that Redis works on the first while the server prepares the next ones.
        """
        if len(self.waiting) == calls and not self.outgoing:
            assert self.transport is not None
            self.transport.write(packed)
            return
        if not self.outgoing:
            loop.call_soon(self.flush)
        self.outgoing.append(packed)
        if len(self.outgoing) >= BURST:
            self.flush()

    def flush(self) -> None:
        outgoing, self.outgoing = self.outgoing, []
        transport = self.transport
        if outgoing and transport is not None and not transport.is_closing():
            transport.write(outgoing[0] if len(outgoing) == 1 else b"".join(outgoing))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport: uvloop's has asyncio.Transport's methods, not its class.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        waiting = self.waiting
        while True:
            try:
                reply = self.reader.gets()
            except hiredis.ProtocolError:
                self.close(ConnectionError("unreadable reply from Redis"))
                return
            if reply is False:
                return
            if not waiting:  # a reply nobody waits for: the stream is out of step
                self.close(ConnectionError("unexpected reply from Redis"))
                return
            future, _ = waiting.popleft()
            if not future.done():
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lane.forget(self)
        self.fail(ConnectionError("connection to Redis lost"))

    def close(self, error: Exception) -> None:
        """Drop the connection; every call still waiting fails with `error`."""
        self.lane.forget(self)
        if self.transport is not None:
            self.transport.abort()
        self.fail(error)

    def fail(self, error: Exception) -> None:
        while self.waiting:
            future, _ = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)


class ScriptLane:
    """A redis-py client whose `evalsha`/`eval` go over one lean pipelined connection."""

    def __init__(self, redis: Redis, connection: dict[str, Any]) -> None:
        self.redis = redis
        self._connection = connection
        self._timeout = float(connection.get("socket_timeout") or DEFAULT_TIMEOUT_SECONDS)
        self._connect_timeout = float(connection.get("socket_connect_timeout")
                                      or DEFAULT_TIMEOUT_SECONDS)
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None
        self._watchdog: asyncio.TimerHandle | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.redis, name)

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        return await self._call(("EVALSHA", sha, numkeys, *keys_and_args))

    async def eval(self, script: str, numkeys: int, *keys_and_args: Any) -> Any:
        return await self._call(("EVAL", script, numkeys, *keys_and_args))

    async def send_many(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Commands in one write, their replies in order, as a redis-py pipeline's
        `execute(raise_on_error=False)` gives them: a reply error is returned as
        redis-py's exception (NOSCRIPT is `NoScriptError`); a lost connection raises.

        Not for a command that blocks its connection (`WAIT`, `BLPOP`...): every hop
        shares this one.
        """
        protocol = self._protocol
        if protocol is None or protocol.transport is None or protocol.transport.is_closing():
            protocol = await self._connect()
        loop = asyncio.get_running_loop()
        now = loop.time()
        futures: list[asyncio.Future[Any]] = []
        for _ in commands:
            future: asyncio.Future[Any] = loop.create_future()
            futures.append(future)
            protocol.waiting.append((future, now))
        protocol.send(b"".join([hiredis.pack_command(command) for command in commands]), loop,
                      len(commands))
        if self._watchdog is None:
            self._watchdog = loop.call_later(self._timeout, self._check)
        return [await future for future in futures]

    async def _call(self, command: tuple[Any, ...]) -> Any:
        """`send_many` for one command (every hop's script call), without its lists: one
        future, awaited here."""
        protocol = self._protocol
        if protocol is None or protocol.transport is None or protocol.transport.is_closing():
            protocol = await self._connect()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        protocol.waiting.append((future, loop.time()))
        protocol.send(hiredis.pack_command(command), loop)
        if self._watchdog is None:
            self._watchdog = loop.call_later(self._timeout, self._check)
        reply = await future
        if isinstance(reply, RedisError):
            raise reply
        return reply

    async def connect(self) -> None:
        """Open the connection now (at start-up) rather than at the first call."""
        await self._connect()

    async def _connect(self) -> _Protocol:
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
        connecting = self._connecting
        try:
            return await asyncio.shield(connecting)
        finally:
            if connecting.done():
                self._connecting = None

    async def _open(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        options = self._connection
        try:
            async with asyncio.timeout(self._connect_timeout):
                if options.get("path"):
                    _, protocol = await loop.create_unix_connection(
                        lambda: _Protocol(self), options["path"])
                else:
                    _, protocol = await loop.create_connection(
                        lambda: _Protocol(self), options.get("host", "localhost"),
                        int(options.get("port", 6379)))
        except (OSError, TimeoutError) as error:
            raise ConnectionError(f"cannot reach Redis: {error}") from error
        self._protocol = protocol
        if options.get("password"):
            await self._call(("AUTH", *([options["username"]] if options.get("username") else []),
                              options["password"]))
        if int(options.get("db") or 0):
            await self._call(("SELECT", int(options["db"])))
        return protocol

    def _check(self) -> None:
        """Fail everything pending when the oldest call waited past the timeout."""
        self._watchdog = None
        protocol = self._protocol
        if protocol is None or not protocol.waiting:
            return
        loop = asyncio.get_running_loop()
        oldest = protocol.waiting[0][1]
        if loop.time() - oldest >= self._timeout:
            protocol.close(TimeoutError("Timeout reading from Redis"))
            return
        self._watchdog = loop.call_later(oldest + self._timeout - loop.time(), self._check)

    def forget(self, protocol: _Protocol) -> None:
        if protocol is self._protocol:
            self._protocol = None

    async def aclose(self) -> None:
        """Close the lean connection (the redis-py client is its owner's to close)."""
        protocol, self._protocol = self._protocol, None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if protocol is not None and protocol.transport is not None:
            protocol.transport.close()
            protocol.fail(ConnectionError("closed"))


def script_lane(redis: Any) -> Any:
    """`redis` with its scripts on a lean connection, when it is one plain server."""
    if type(redis) is not Redis:
        return redis
    pool = redis.connection_pool
    if pool.connection_class not in (Connection, UnixDomainSocketConnection):
        return redis
    return ScriptLane(redis, dict(pool.connection_kwargs))
