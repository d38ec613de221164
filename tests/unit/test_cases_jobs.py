from __future__ import annotations

import pytest
from arq.connections import RedisSettings

from bot.cases.jobs import NoJobQueue, arq_redis_settings
from bot.errors import JobQueueUnavailable


def test_plain_tls_and_socket_urls() -> None:
    plain = arq_redis_settings("redis://cache:6380/2")
    assert isinstance(plain, RedisSettings)
    assert (plain.host, plain.port, plain.database, plain.ssl) == ("cache", 6380, 2, False)
    tls = arq_redis_settings("rediss://cache:6380/0")
    assert isinstance(tls, RedisSettings) and tls.ssl
    socket = arq_redis_settings("unix:///tmp/redis.sock")
    assert isinstance(socket, RedisSettings) and socket.unix_socket_path == "/tmp/redis.sock"


def test_sentinel_url() -> None:
    found = arq_redis_settings("redis+sentinel://s1:26379,s2/helpline")
    assert isinstance(found, RedisSettings)
    assert found.sentinel and found.sentinel_master == "helpline"
    assert found.host == [("s1", 26379), ("s2", 26379)]


def test_cluster_has_no_arq_queue() -> None:
    with pytest.raises(ValueError, match="cluster"):
        arq_redis_settings("redis+cluster://node:7000")


async def test_no_job_queue_refuses() -> None:
    with pytest.raises(JobQueueUnavailable):
        await NoJobQueue("cluster").enqueue("send_case_message", "12345678", "x")


def test_socket_url_with_database() -> None:
    found = arq_redis_settings("unix:///var/run/redis.sock?db=3")
    assert isinstance(found, RedisSettings)
    assert (found.unix_socket_path, found.database) == ("/var/run/redis.sock", 3)
