"""Shared fixtures: real Redis deployments for the session, a clean database per test.

Tests marked `deployments` run twice: on one server and on a real 3-master
Redis Cluster (`[single]` and `[cluster]` in their ids). The Sentinel set
(master, replica, sentinel) is started only for the tests that ask for it.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from bot.settings import Settings
from bot.store.connection import close_client
from tests.redis_server import (
    RedisClusterSet,
    RedisServer,
    SentinelSet,
    stopped_on_exit,
)

DEPLOYMENTS = ("single", "cluster")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "deployments: run on one Redis server and on a 3-master Redis Cluster"
    )
    config.addinivalue_line(
        "markers", "single_only(reason): in a `deployments` module, run on one server only"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if (metafunc.definition.get_closest_marker("deployments")
            and not metafunc.definition.get_closest_marker("single_only")
            and "deployment" in metafunc.fixturenames):
        metafunc.parametrize("deployment", DEPLOYMENTS, indirect=True)


@pytest.fixture(scope="session")
def single_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    yield from stopped_on_exit(RedisServer(tmp_path_factory.mktemp("redis")))


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterSet]:
    """A real Redis Cluster of 3 masters, started once for the session."""
    yield from stopped_on_exit(RedisClusterSet(tmp_path_factory.mktemp("cluster")))


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    """A master, a replica and a sentinel (`mymaster`), started once for the session."""
    yield from stopped_on_exit(SentinelSet(tmp_path_factory.mktemp("sentinel")))


@pytest.fixture
def deployment(request: pytest.FixtureRequest) -> str:
    """`single` unless the test is marked `deployments` (then each of DEPLOYMENTS)."""
    return str(getattr(request, "param", "single"))


@pytest.fixture
def redis_server(deployment: str, request: pytest.FixtureRequest) -> Any:
    """The deployment under test: `.url` (a REDIS_URL), `.flush()`, `.async_client()`."""
    if deployment == "cluster":
        return request.getfixturevalue("redis_cluster")
    if deployment == "sentinel":
        return request.getfixturevalue("redis_sentinel")
    return request.getfixturevalue("single_redis")


@pytest.fixture
async def redis(redis_server: Any) -> AsyncIterator[Redis]:
    """A client of the real deployment, with an empty database."""
    redis_server.flush()
    client = redis_server.async_client()
    yield client
    await close_client(client)


@pytest.fixture
def settings(redis_server: Any, tmp_path: Path) -> Settings:
    return Settings(redis_url=redis_server.url, data_dir=tmp_path / "var")


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of this test's own, which it may stop, freeze (SIGSTOP) and start again."""
    server = RedisServer(tmp_path / "own-redis")
    server.start()
    yield server
    if server.process is not None:
        server.process.send_signal(signal.SIGCONT)
    server.stop()
