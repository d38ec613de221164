"""Durability with replicas: a case is acknowledged by a replica before its reference is shown.

When the master has replicas (Sentinel, or a Cluster whose masters have them),
the case creation is followed, on the same connection, by `WAIT 1 <ms>`
(bounded by the hop deadline): Redis answers how many replicas hold the write.
None in time ⇒ `NotReplicated`: the gateway answers its fallback screen, and
the case, which may or may not survive a failover, is shown at the phone's next
contact if it did (the phone's unseen mark names the creation's idempotency key,
which the creation script writes with the case: the next contact reads it).

Whether the master has replicas is read with INFO replication at start-up
(`Replicas.refresh`; at the first case if Redis was not up then) and then, in
the background, every REFRESH_SECONDS,
so the hop's round trips are not counted against it. Once a process has seen
replicas it keeps waiting for one: a master that lost its replicas (a switch
under way, when the old master still takes writes that the failover will drop)
answers fallbacks for new cases until a replica is back, never unsafe references.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from redis.asyncio import RedisCluster
from redis.exceptions import RedisError

from bot.errors import NotReplicated
from bot.store.scripts import is_cluster

log = logging.getLogger(__name__)

REPLICA_ACKS = 1
"""Replicas that must hold a case before its reference is shown."""
ACK_TIMEOUT_MS = 700
"""WAIT's bound: within the webhooks' 1.5 s hop deadline (after the hop's first trip)
and under the clients' 1 s socket timeout (bot.store.connection)."""
REFRESH_SECONDS = 10.0


async def replica_count(redis: Any) -> int:
    """Replicas of the master (on a Cluster: the fewest any master has)."""
    if is_cluster(redis):
        found = await redis.info("replication", target_nodes=RedisCluster.PRIMARIES)
        counts = [int(info.get("connected_slaves", 0)) for info in found.values()]
        return min(counts) if counts else 0
    info = await redis.info("replication")
    return int(info.get("connected_slaves", 0))


class Replicas:
    """Whether case creations should wait for a replica, as last read (cached per process)."""

    def __init__(self, refresh_seconds: float = REFRESH_SECONDS) -> None:
        self.refresh_seconds = refresh_seconds
        self._count: int | None = None
        self._read_at = 0.0
        self._refreshing: asyncio.Task[None] | None = None

    async def refresh(self, redis: Any) -> None:
        """Read the count now (at start-up), so that the first case creation does not send
        INFO on its hop."""
        if REPLICA_ACKS > 0:
            await self._read(redis)

    async def wait_needed(self, redis: Any) -> bool:
        if REPLICA_ACKS <= 0:
            return False
        if self._count is None:
            await self._read(redis)
        elif time.monotonic() - self._read_at > self.refresh_seconds and (
                self._refreshing is None or self._refreshing.done()):
            self._refreshing = asyncio.get_running_loop().create_task(self._read_quietly(redis))
        return (self._count or 0) >= REPLICA_ACKS

    async def _read(self, redis: Any) -> None:
        count = await replica_count(redis)
        # Sticky: replicas seen once are expected from then on (see the module's notes).
        self._count = max(count, self._count or 0)
        self._read_at = time.monotonic()

    async def _read_quietly(self, redis: Any) -> None:
        try:
            await self._read(redis)
        except (RedisError, OSError) as exc:
            log.warning("could not read the replica count: %s", type(exc).__name__)


def require_acks(acks: Iterable[Any]) -> None:
    """NotReplicated unless every WAIT answered that enough replicas hold the write."""
    for ack in acks:
        if isinstance(ack, Exception) or int(ack) < REPLICA_ACKS:
            raise NotReplicated("no replica acknowledged the case in time")
