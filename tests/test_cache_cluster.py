"""The cache on a real Redis Cluster: the session's three masters (``cluster`` fixture).

Keys of one ``get_many`` live in different slots (and nodes); nothing redis-py
raises for a cluster reaches the caller.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio.cluster
import redis.cluster
from redis.backoff import NoBackoff
from redis.retry import Retry

from argo_perf import AsyncRedisCache, ConfigError, RedisCache
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


def test_coherent_mode_is_refused_on_a_cluster(
    cluster_client: redis.cluster.RedisCluster,
) -> None:
    with pytest.raises(ConfigError, match=r"coherent.*Cluster"):
        RedisCache(cluster_client, coherent=True)
