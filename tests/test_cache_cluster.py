"""The cache on a real Redis Cluster: the session's three masters (``cluster`` fixture).

Keys of one ``get_many`` live in different slots (and nodes); nothing redis-py
raises for a cluster reaches the caller.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio.cluster
import redis.cluster
from redis.backoff import NoBackoff
from redis.retry import Retry

from argo_perf import AsyncRedisCache, RedisCache
from argo_perf.testing import RedisCluster


@pytest.fixture
def cluster_client(cluster: RedisCluster) -> Iterator[redis.cluster.RedisCluster]:
    client = cluster.client(socket_timeout=2.0, socket_connect_timeout=2.0)
    try:
        yield client
    finally:
        client.close()


SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AVGO"]


def test_get_many_across_slots_on_a_cluster(cluster_client: redis.cluster.RedisCluster) -> None:
    cache = RedisCache(cluster_client, maxsize=0)
    slots = {cluster_client.keyslot(cache.redis_key(s)) for s in SYMBOLS}
    assert len(slots) > 1  # the keys really are spread out
    assert cache.set_many({s: float(i) for i, s in enumerate(SYMBOLS)}) is True
    assert cache.get_many([*SYMBOLS, "none"]) == {s: float(i) for i, s in enumerate(SYMBOLS)}
    assert cache.get("AAPL") == 0.0
    assert cache.delete("AAPL") is True
    cluster_client.rpush(cache.redis_key("LIST"), b"x")
    assert cache.get_many(["AAPL", "LIST", "MSFT"]) == {"MSFT": 1.0}
    stats = cache.stats
    assert stats.decode_failures == 1
    assert stats.redis_errors == 0
    assert stats.hits + stats.misses == 9 + 1 + 3


async def test_async_get_many_across_slots_on_a_cluster(
    cluster: RedisCluster, cluster_client: redis.cluster.RedisCluster
) -> None:
    client: Any = redis.asyncio.cluster.RedisCluster(
        host="127.0.0.1", port=cluster.nodes[1].port, socket_timeout=2.0, socket_connect_timeout=2.0
    )
    cache = AsyncRedisCache(client)
    assert await cache.set_many({s: float(i) for i, s in enumerate(SYMBOLS)}) is True
    other = AsyncRedisCache(client)  # empty in-process tier: every key comes from Redis
    assert await other.get_many(SYMBOLS) == {s: float(i) for i, s in enumerate(SYMBOLS)}
    cluster_client.sadd(other.redis_key("SET"), b"x")
    assert await other.get_many(["SET", "none"]) == {}
    assert other.stats.decode_failures == 1
    assert other.stats.redis_errors == 0
    await client.aclose()


def test_a_cluster_with_no_node_left_raises_nothing(cluster: RedisCluster) -> None:
    client = redis.cluster.RedisCluster(
        host="127.0.0.1",
        port=cluster.nodes[2].port,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        retry=Retry(NoBackoff(), 0),
    )
    cache = RedisCache(client, failure_threshold=100)
    assert cache.set("AAPL", 1.0) is True
    for server in cluster.nodes:  # the next test's fixture starts them again
        server.kill()
    assert cache.get_many(SYMBOLS) == {"AAPL": 1.0}  # from the in-process tier
    assert cache.get("MSFT", "default") == "default"
    assert cache.set("NVDA", 2.0) is False
    assert cache.get_or_set("AMZN", lambda: 3.0) == 3.0
    assert cache.delete("AAPL") is False
    assert cache.stats.redis_errors == 5
    client.close()


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """Wait for the tracking threads' effect (bounded; not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


QUICK: dict[str, Any] = {
    "namespace": "co",
    "coherent": True,
    "heartbeat": 0.1,
    "probe_interval": 0.1,
    "socket_timeout": 1.0,
    "connect_timeout": 1.0,
}


def test_coherent_cache_hears_writes_on_every_master(cluster: RedisCluster) -> None:
    cache = RedisCache(cluster.url, **QUICK)
    wait_until(lambda: cache.stats.coherent)
    coherence = cache._coherence
    assert coherence is not None
    assert len(coherence._tracker.nodes) == len(cluster.nodes)  # type: ignore[union-attr]
    masters = {cluster.node_for(cache.redis_key(s)).port for s in SYMBOLS}
    assert len(masters) == len(cluster.nodes)  # the keys live on every master
    assert cache.set_many(dict.fromkeys(SYMBOLS, 1.0)) is True
    wait_until(lambda: cache.stats.invalidations >= len(SYMBOLS))  # its own writes
    assert cache.get_many(SYMBOLS) == dict.fromkeys(SYMBOLS, 1.0)
    assert all(cache.get_with_meta(s).source == "memory" for s in SYMBOLS)  # type: ignore[union-attr]
    heard = cache.stats.invalidations
    with cluster.client() as other:
        for symbol in SYMBOLS:
            other.set(cache.redis_key(symbol), b"not an envelope")
    wait_until(lambda: cache.stats.invalidations >= heard + len(SYMBOLS))
    assert cache.get_many(SYMBOLS) == {}
    cache.close()


def test_one_master_lost_makes_every_copy_not_fresh_until_it_is_back(
    cluster: RedisCluster,
) -> None:
    cache = RedisCache(cluster.url, failure_threshold=100, **QUICK)
    wait_until(lambda: cache.stats.coherent)
    victim = cluster.node_for(cache.redis_key("AAPL"))
    alive = next(s for s in SYMBOLS if cluster.node_for(cache.redis_key(s)) is not victim)
    assert cache.set_many({"AAPL": 1.0, alive: 2.0}) is True
    wait_until(lambda: cache.stats.invalidations >= 2)
    assert cache.get_many(["AAPL", alive]) == {"AAPL": 1.0, alive: 2.0}
    victim.kill()
    wait_until(lambda: not cache.stats.coherent)
    meta = cache.get_with_meta(alive)  # its master is up, but its copy is not trusted
    assert meta is not None
    assert (meta.value, meta.source) == (2.0, "redis")
    meta = cache.get_with_meta("AAPL")  # its master is down: served, as stale only
    assert meta is not None
    assert (meta.value, meta.stale, meta.source) == (1.0, True, "memory")
    cluster.revive(victim)  # empty: the copy of AAPL is older than what Redis has
    wait_until(lambda: cache.stats.coherent)
    assert cache.stats.channel_reconnects == 1
    assert cache.get("AAPL", "gone") == "gone"
    cache.close()


async def test_async_coherent_cache_on_a_cluster_client_passed_in(cluster: RedisCluster) -> None:
    client: Any = redis.asyncio.cluster.RedisCluster(
        host="127.0.0.1", port=cluster.nodes[0].port, socket_timeout=2.0, socket_connect_timeout=2.0
    )
    cache = AsyncRedisCache(client, namespace="co", coherent=True, heartbeat=0.1)
    deadline = time.monotonic() + 15.0
    while not cache.stats.coherent:
        assert time.monotonic() < deadline, "the channel did not come up"
        await asyncio.sleep(0.005)
    assert await cache.set_many(dict.fromkeys(SYMBOLS, 1.0)) is True
    with cluster.client() as other:
        for symbol in SYMBOLS:
            other.set(cache.redis_key(symbol), b"not an envelope")
    while cache.stats.invalidations < 2 * len(SYMBOLS):  # its own writes, then the other's
        assert time.monotonic() < deadline, "not every write was heard"
        await asyncio.sleep(0.005)
    assert await cache.get_many(SYMBOLS) == {}
    await cache.close()
    await client.aclose()
