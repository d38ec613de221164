"""Lua scripts and how they are sent: one server, Sentinel or Redis Cluster alike.

Each script is a whole file, `bot/store/lua/<name>.lua`, whose header names its
KEYS and ARGV; the module that calls it loads it once (`Script.load`, a module
constant), next to the one function that builds its keys and arguments. Every
script's keys share one hash tag (one Cluster slot).

A script is sent by its digest (EVALSHA, 40 bytes a call); a NOSCRIPT answer
(the server restarted, or a Cluster node never saw it) is rescued by sending
the body once with EVAL, which loads it for the next calls. Scripts, unlike
Redis Functions, are known by their content: two versions of the helpline
running side by side (a rolling deploy) each run their own.

`Batch` sends several scripts in one round trip: a pipeline on one server; on
a Cluster, redis-py's cluster pipeline, which sends each master its share on
one connection, all masters at once (redis-py refuses EVALSHA there, so the
bodies go with EVAL). A `WAIT` queued after a script runs on the connection
and the master that ran it, as WAIT requires.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.asyncio import RedisCluster
from redis.exceptions import NoScriptError

LUA = Path(__file__).with_name("lua")
_SOURCES: dict[str, str] = {}
_SCRIPT_CALLS = frozenset({"EVALSHA", "EVAL"})


@dataclass(frozen=True)
class Script:
    name: str
    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        sha = hashlib.sha1(self.source.encode()).hexdigest()  # noqa: S324 (Redis's script id)
        object.__setattr__(self, "sha", sha)
        _SOURCES[sha] = self.source

    @classmethod
    def load(cls, name: str) -> Script:
        """The script of `bot/store/lua/<name>.lua`."""
        return cls(name, (LUA / f"{name}.lua").read_text(encoding="utf-8"))

    def queue(self, pipe: Any, keys: Sequence[str], args: Sequence[str | int | bytes]) -> None:
        """Queue on a pipeline or a Batch, by digest."""
        pipe.evalsha(self.sha, len(keys), *keys, *args)

    def queue_body(self, pipe: Any, keys: Sequence[str], args: Sequence[str | int | bytes]) -> None:
        pipe.eval(self.source, len(keys), *keys, *args)

    async def run(self, redis: Any, keys: Sequence[str],
                  args: Sequence[str | int | bytes]) -> Any:
        try:
            return await redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await redis.eval(self.source, len(keys), *keys, *args)


async def load_all(redis: Any) -> None:
    """Every script this process loaded into the server's cache (every master of a
    Cluster), at start-up: a first call is then not answered NOSCRIPT (a server that
    restarts or fails over later still is, and the body is sent then)."""
    for source in list(_SOURCES.values()):
        await redis.script_load(source)


def unknown_script(result: Any) -> bool:
    """True when a pipelined EVALSHA was answered NOSCRIPT (nothing ran)."""
    return isinstance(result, NoScriptError)


def is_cluster(redis: Any) -> bool:
    return isinstance(redis, RedisCluster)


@dataclass
class _Call:
    args: tuple[Any, ...]
    wait_after: tuple[int, int] | None = None


class Batch:
    """Scripts (and plain keyed commands) for one round trip, in order per server.

    Use like a non-transactional pipeline: queue with `evalsha`/`eval` (what
    `Script.queue` does) or any keyed command, then `await execute()`.
    """

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self._calls: list[_Call] = []
        self.acks: list[Any] = []
        """The replies of the WAITs, in the order they were queued."""

    async def __aenter__(self) -> Batch:
        return self

    async def __aexit__(self, *_: object) -> None:
        self._calls = []

    def evalsha(self, sha: str, numkeys: int, *args: Any) -> Batch:
        self._calls.append(_Call(("EVALSHA", sha, numkeys, *args)))
        return self

    def eval(self, source: str, numkeys: int, *args: Any) -> Batch:
        self._calls.append(_Call(("EVAL", source, numkeys, *args)))
        return self

    def execute_command(self, *args: Any) -> Batch:
        self._calls.append(_Call(args))
        return self

    def wait_for_replicas(self, replicas: int, timeout_ms: int) -> Batch:
        """After the last queued script: WAIT on its master until `replicas` acknowledge.

        Its reply (the number of replicas that acknowledged in time, or the error)
        goes to `acks`, not to `execute()`'s results.
        """
        if not self._calls:
            raise ValueError("nothing to wait for")
        self._calls[-1].wait_after = (replicas, timeout_ms)
        return self

    def __len__(self) -> int:
        return len(self._calls)

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        """One result per queued call (the WAITs' replies go to `acks`)."""
        if not self._calls:
            return []
        if is_cluster(self.redis):
            raw = await self._on_cluster()
        else:
            raw = await self._on_server()
        results: list[Any] = []
        self.acks = []
        position = 0
        for call in self._calls:
            results.append(raw[position])
            position += 1
            if call.wait_after is not None:
                self.acks.append(raw[position])
                position += 1
        if raise_on_error:
            for result in results:
                if isinstance(result, Exception):
                    raise result
        return results

    async def _on_server(self) -> list[Any]:
        commands: list[tuple[Any, ...]] = []
        for call in self._calls:
            commands.append(call.args)
            if call.wait_after is not None:
                commands.append(("WAIT", *call.wait_after))
        results = await self._send(commands)
        rescue = [index for index, result in enumerate(results) if unknown_script(result)]
        if rescue:
            # The server lost its scripts: send those bodies (and their WAITs) again.
            plan = self._positions()
            commands = []
            for index in rescue:
                call = plan[index]
                commands.append(("EVAL", _SOURCES[call.args[1]], *call.args[2:]))
                if call.wait_after is not None:
                    commands.append(("WAIT", *call.wait_after))
            again = await self._send(commands)
            position = 0
            for index in rescue:
                results[index] = again[position]
                position += 1
                if plan[index].wait_after is not None:
                    results[index + 1] = again[position]
                    position += 1
        return results

    async def _send(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """One round trip: on the gateway's script lane when the client has one and the
        batch is scripts only (no WAIT to block the lane, no reply for redis-py to
        shape), else a redis-py pipeline."""
        send_many = getattr(self.redis, "send_many", None)
        if send_many is not None and all(command[0] in _SCRIPT_CALLS for command in commands):
            return list(await send_many(commands))
        async with self.redis.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            return list(await pipe.execute(raise_on_error=False))

    def _positions(self) -> dict[int, _Call]:
        found: dict[int, _Call] = {}
        index = 0
        for call in self._calls:
            found[index] = call
            index += 2 if call.wait_after is not None else 1
        return found

    async def _on_cluster(self) -> list[Any]:
        cluster: Any = self.redis
        async with cluster.pipeline(transaction=False) as pipe:
            for call in self._calls:
                args = call.args
                if args[0] == "EVALSHA":
                    args = ("EVAL", _SOURCES[args[1]], *args[2:])
                pipe.execute_command(*args)
                if call.wait_after is not None:
                    node = await _node_of(cluster, args)
                    pipe.execute_command("WAIT", *call.wait_after, target_nodes=node)
            return list(await pipe.execute(raise_on_error=False))


async def _node_of(cluster: Any, args: tuple[Any, ...]) -> Any:
    """The master that holds the slot of a script's first key."""
    return cluster.get_node_from_key(args[3])


def batch(redis: Any) -> Batch:
    return Batch(redis)
