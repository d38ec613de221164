"""Which taskiq-redis broker a `REDIS_URL` gets, and how its connection is read."""

from __future__ import annotations

import pytest

from bot.jobs.broker import (
    ClusterStreamBroker,
    SentinelStreamBroker,
    StreamBroker,
    broker_for_url,
)
from bot.store import keys


def broker(url: str) -> object:
    return broker_for_url(url, consumer="w1", redelivery_seconds=2.5, block_ms=100)


def test_one_server_urls_get_the_stream_broker() -> None:
    for url in ("redis://cache:6380/2", "rediss://cache:6380/0", "unix:///tmp/redis.sock?db=3"):
        found = broker(url)
        assert isinstance(found, StreamBroker), url
    plain = broker("redis://cache:6380/2")
    assert isinstance(plain, StreamBroker)
    kwargs = plain.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("cache", 6380, 2)
    socket = broker("unix:///tmp/redis.sock?db=3")
    assert isinstance(socket, StreamBroker)
    assert (socket.connection_pool.connection_kwargs["path"],
            socket.connection_pool.connection_kwargs["db"]) == ("/tmp/redis.sock", 3)


def test_sentinel_url_names_its_sentinels_and_master() -> None:
    found = broker("redis+sentinel://s1:26379,s2/helpline")
    assert isinstance(found, SentinelStreamBroker)
    assert found.master_name == "helpline"
    assert [(s.connection_pool.connection_kwargs["host"],
             s.connection_pool.connection_kwargs["port"]) for s in found.sentinel.sentinels] \
        == [("s1", 26379), ("s2", 26379)]


def test_cluster_url_gets_the_cluster_broker() -> None:
    found = broker("redis+cluster://node:7000")
    assert isinstance(found, ClusterStreamBroker)


def test_every_broker_shares_the_queue_keys_and_settings() -> None:
    for url in ("redis://cache:6380/0", "redis+sentinel://s1/m", "redis+cluster://node:7000"):
        found = broker(url)
        assert isinstance(found, StreamBroker | SentinelStreamBroker | ClusterStreamBroker)
        assert found.queue_name == keys.jobs_stream() == "hl:{jobs}:stream"
        assert (found.consumer_name, found.consumer_id, found.redelivery_ms, found.block) \
            == ("w1", "0", 2500, 100)


def test_an_unknown_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="memcached"):
        broker("memcached://cache:11211")
