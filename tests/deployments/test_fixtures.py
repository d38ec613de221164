"""The real deployments the suites run on: a 3-master Cluster and a Sentinel set."""

from __future__ import annotations

from bot.store.connection import close_client
from tests.redis_server import RedisClusterSet, SentinelSet


def test_the_cluster_has_three_masters_that_share_the_slots(redis_cluster: RedisClusterSet) -> None:
    redis_cluster.flush()
    client = redis_cluster.nodes[0].client()
    try:
        slots = client.execute_command("CLUSTER", "SLOTS")
        owners = {int(owner[1]) for _start, _end, owner, *_replicas in slots}
        assert owners == set(redis_cluster.ports)
        assert sum(int(end) - int(start) + 1 for start, end, *_ in slots) == 16384
    finally:
        client.close()
    # Keys of different hash tags sit on different masters.
    holders = {redis_cluster.master_of(f"{{tag{n}}}:key") for n in range(30)}
    assert holders == set(redis_cluster.ports)


async def test_the_async_cluster_client_reaches_every_master(
        redis_cluster: RedisClusterSet) -> None:
    redis_cluster.flush()
    client = redis_cluster.async_client()
    try:
        for n in range(30):
            await client.set(f"{{tag{n}}}:key", str(n))
        assert [await client.get(f"{{tag{n}}}:key") for n in range(30)] == [
            str(n) for n in range(30)]
    finally:
        await close_client(client)
    for port in redis_cluster.ports:
        node = redis_cluster.nodes[redis_cluster.ports.index(port)].client()
        try:
            assert node.dbsize() > 0
        finally:
            node.close()


def test_the_sentinel_names_the_master_and_its_replica_follows(
        redis_sentinel: SentinelSet) -> None:
    redis_sentinel.flush()
    master = redis_sentinel.master_port()
    assert master in (redis_sentinel.master.port, redis_sentinel.replica.port)
    writer = next(s for s in redis_sentinel.servers if s.port == master).client()
    reader = next(s for s in redis_sentinel.servers if s.port != master).client()
    try:
        writer.set("written", "1")
        assert writer.execute_command("WAIT", 1, 2000) == 1
        assert reader.get("written") == "1"
        assert reader.info("replication")["role"] == "slave"
    finally:
        writer.close()
        reader.close()


async def test_the_store_connects_through_the_sentinel(redis_sentinel: SentinelSet) -> None:
    redis_sentinel.flush()
    client = redis_sentinel.async_client()
    try:
        await client.set("through-sentinel", "yes")
        assert await client.get("through-sentinel") == "yes"
    finally:
        await close_client(client)
