"""Every Redis-backed piece on a real Redis Cluster, reached by a ``redis+cluster://`` URL.

The session's cluster (three masters, ``cluster`` fixture) is shared; a test
that kills a node leaves it to the next test's fixture to start it again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import redis
import redis.cluster
from redis.crc import key_slot
from redis.exceptions import ClusterDownError, RedisClusterException

from argo_perf import (
    AsyncRedisCache,
    ConfigError,
    RateLimitConfig,
    RateLimiter,
    RateLimitExceeded,
    RedisCache,
    RedisTokenBucket,
)
from argo_perf._redis import BackendHealth, RedisLink, is_node_outage, is_outage
from argo_perf._redis._url import parse_topology
from argo_perf.breaker import RedisBreakerState
from argo_perf.testing import RedisCluster

SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AVGO", "BTC-USD", "ETH-USD"]


@pytest.fixture
def client(cluster: RedisCluster) -> Iterator[redis.cluster.RedisCluster]:
    with cluster.client() as client:
        yield client


def _by_node(cluster: RedisCluster, cache: RedisCache) -> dict[int, list[str]]:
    spread: dict[int, list[str]] = {}
    for symbol in SYMBOLS:
        spread.setdefault(cluster.node_for(cache.redis_key(symbol)).port, []).append(symbol)
    return spread


def test_the_cache_spreads_keys_over_the_nodes_and_reads_and_clears_them_all(
    cluster: RedisCluster, client: redis.cluster.RedisCluster
) -> None:
    with RedisCache(cluster.url, maxsize=0) as cache:
        assert len(_by_node(cluster, cache)) == 3  # every node holds some of the keys
        values = {s: float(i) for i, s in enumerate(SYMBOLS)}
        assert cache.set_many(values) is True
        assert cache.get_many([*SYMBOLS, "none"]) == values
        assert cache.clear("") == len(SYMBOLS)  # SCAN on every master, UNLINK per slot
        assert client.keys("*") == []
        assert cache.stats.redis_errors == 0
        assert cache.backend == "redis"


async def test_the_async_cache_on_a_cluster_url(cluster: RedisCluster) -> None:
    cache = AsyncRedisCache(cluster.url, maxsize=0)
    values = {s: float(i) for i, s in enumerate(SYMBOLS)}
    assert await cache.set_many(values) is True
    assert await cache.get_many(SYMBOLS) == values
    assert await cache.clear("A") == 3  # AAPL, AMZN, AVGO, wherever they live
    assert await cache.get("AAPL") is None
    assert await cache.get("MSFT") == 1.0
    assert cache.stats.redis_errors == 0
    await cache.close()


def test_a_bucket_keeps_its_keys_in_one_slot_and_its_limit_on_a_cluster(
    cluster: RedisCluster,
) -> None:
    with RedisTokenBucket(cluster.url, "vendor:massive", rate=0.001, burst=5) as bucket:
        slots = {key_slot(k.encode()) for k in (bucket.key, bucket.queue_key, bucket.config_key)}
        assert len(slots) == 1  # one hash tag: the script may touch all three
        assert [bucket.try_acquire() for _ in range(7)] == [True] * 5 + [False] * 2
        bucket.reconfigure(0.001, 6)  # the rescale script takes the third key
        assert bucket.try_acquire() is True
        assert bucket.stats.redis_calls == 9  # the rescale is one more
        assert bucket.stats.errors == 0


async def test_the_async_bucket_and_the_limiter_on_a_cluster(cluster: RedisCluster) -> None:
    limiter = RateLimiter(
        {"massive": RateLimitConfig(0.001, 2), "xai": RateLimitConfig(0.001, 1)},
        redis=cluster.url,
    )
    assert [limiter.try_acquire("massive") for _ in range(3)] == [True, True, False]
    await limiter.wait_for_permission("xai", timeout=0)
    assert limiter.try_acquire("xai") is False
    with pytest.raises(RateLimitExceeded):
        await limiter.wait_for_permission("xai", timeout=0)
    assert limiter.bucket("massive").backend == "redis"
    await limiter.aclose()


async def test_shared_breaker_state_on_a_cluster(cluster: RedisCluster) -> None:
    state = RedisBreakerState(cluster.url)
    state.publish_open("massive", "p1", 30.0)
    remaining = state.open_remaining("massive")
    assert remaining is not None
    assert 29.0 < remaining <= 30.0
    assert state.acquire_probe("xai", "p1", 5.0) == (True, 0.0)
    assert await state.acquire_probe_async("xai", "p2", 5.0) is not None
    await state.release_probe_async("xai", "p1")
    assert state.stats.errors == 0
    await state.aclose()


def test_a_dead_master_takes_only_its_own_keys_out_of_redis(cluster: RedisCluster) -> None:
    cache = RedisCache(cluster.url, maxsize=0, failure_threshold=1)
    spread = _by_node(cluster, cache)
    cache.set_many(dict.fromkeys(SYMBOLS, 1.0))
    dead = cluster.nodes[0]
    lost, kept = spread[dead.port], [s for s in SYMBOLS if s not in spread[dead.port]]
    bucket_keys = {cluster.node_for(f"argo_perf:ratelimit:{{{k}}}") is dead: k for k in "abcdef"}
    gate = BackendHealth(cluster.url, failure_threshold=1)
    dead_bucket = RedisTokenBucket(cluster.url, bucket_keys[True], 0.001, 4, health=gate)
    live_bucket = RedisTokenBucket(cluster.url, bucket_keys[False], 0.001, 4, health=gate)
    dead.kill()
    for _ in range(3):  # three rounds: with a threshold of 1 the first error would do
        assert cache.get_many(SYMBOLS) == dict.fromkeys(kept, 1.0)
        sources = Counter(cache.get_with_meta(s).source for s in kept)
        assert sources == {"redis": len(kept)}
        assert cache.get(lost[0], "fallback") == "fallback"
        assert cache.backend == "redis"  # the gate stays up: the other nodes answer
        assert live_bucket.try_acquire() is True
        assert live_bucket.backend == "redis"
        dead_bucket.try_acquire()  # decided by the fallback bucket, this call only
    assert cache.set_many(dict.fromkeys(SYMBOLS, 3.0)) is False  # its keys failed
    assert cache.get_many(SYMBOLS) == dict.fromkeys(kept, 3.0)  # the others were written
    assert cache.stats.redis_errors >= 3
    assert live_bucket.stats.redis_calls == 3
    assert live_bucket.stats.errors == 0
    assert dead_bucket.stats.fallback_calls == 3
    assert dead_bucket.backend == "redis"
    # Its keys come back with it (empty: the node has no persistence here).
    cluster.revive(dead)
    assert cache.set(lost[0], 2.0) is True
    assert cache.get(lost[0]) == 2.0
    assert dead_bucket.try_acquire() is True
    assert dead_bucket.stats.redis_calls == 1
    for piece in (cache, dead_bucket, live_bucket):
        piece.close()


async def test_a_dead_master_takes_only_its_own_keys_out_of_the_async_cache(
    cluster: RedisCluster,
) -> None:
    cache = AsyncRedisCache(cluster.url, maxsize=0, failure_threshold=1)
    kept = [s for s in SYMBOLS if cluster.node_for(cache.redis_key(s)) is not cluster.nodes[1]]
    assert await cache.get("AAPL") is None  # connected before the kill
    cluster.nodes[1].kill()
    assert await cache.set_many(dict.fromkeys(SYMBOLS, 1.0)) is False
    assert await cache.get_many(SYMBOLS) == dict.fromkeys(kept, 1.0)
    assert cache.backend == "redis"
    await cache.close()


def test_a_cluster_no_node_of_which_answers_takes_the_gate_down(cluster: RedisCluster) -> None:
    cache = RedisCache(cluster.url, failure_threshold=2, probe_interval=0.05)
    assert cache.set("AAPL", 1.0) is True
    for node in cluster.nodes:
        node.kill()
    assert cache.get_many(SYMBOLS) == {"AAPL": 1.0}  # the in-process tier
    assert cache.get("MSFT", "default") == "default"
    assert cache.backend == "memory"
    cache.close()


def test_a_cluster_url_opens_no_connection_until_used() -> None:
    bucket = RedisTokenBucket("redis+cluster://127.0.0.1:1,127.0.0.1:2", "k", 1, 2)
    cache = RedisCache("redis+cluster://127.0.0.1:1", failure_threshold=1)
    assert bucket.try_acquire() is True  # the fallback bucket: no node answered
    assert cache.set("AAPL", 1.0) is False
    assert cache.get("AAPL") == 1.0
    assert cache.backend == "memory"  # no node at all: the whole cluster is out
    assert bucket.stats.errors == 1
    state = RedisBreakerState("redis+cluster://127.0.0.1:1")
    assert state.open_remaining("massive") is None
    assert state.stats.outages == 1
    for piece in (bucket, cache, state):
        piece.close()


def test_a_cluster_client_passed_in_is_described_without_a_password(cluster: RedisCluster) -> None:
    with cluster.client(password=None) as client:
        link = RedisLink(client)
        assert link.cluster
        assert link.target.startswith("redis+cluster://127.0.0.1:")
        assert str(cluster.nodes[0].port) in link.target or "," in link.target


def test_node_and_slot_outages_are_told_apart_from_a_whole_cluster_outage() -> None:
    assert is_node_outage(redis.ConnectionError("refused"))
    assert is_node_outage(redis.TimeoutError("slow"))
    assert is_node_outage(ClusterDownError("CLUSTERDOWN Hash slot not served"))
    assert not is_node_outage(ClusterDownError("CLUSTERDOWN The cluster is down"))
    assert not is_node_outage(RedisClusterException("Redis Cluster cannot be connected"))
    assert not is_node_outage(redis.ResponseError("WRONGTYPE"))
    assert is_outage(ClusterDownError("CLUSTERDOWN The cluster is down"))


def test_the_gate_goes_down_for_a_cluster_that_is_down_as_a_whole() -> None:
    link = RedisLink("redis+cluster://127.0.0.1:1", failure_threshold=1)
    link.failed(redis.ConnectionError("refused"))  # one node: this call only
    assert link.health.available
    link.failed(ClusterDownError("CLUSTERDOWN The cluster is down"))
    assert not link.health.available
    link.close()


@pytest.mark.parametrize(
    ("url", "nodes", "db"),
    [
        (
            "redis+cluster://h1:7000,h2:7001,[::1]:7002",
            [("h1", 7000), ("h2", 7001), ("::1", 7002)],
            0,
        ),
        ("redis+cluster://h1", [("h1", 6379)], 0),
        ("redis+cluster://u:p%40ss@h1:7000/0?max_connections=4", [("h1", 7000)], 0),
    ],
)
def test_cluster_urls_are_taken_apart(url: str, nodes: list[tuple[str, int]], db: int) -> None:
    topology = parse_topology(url)
    assert list(topology.nodes) == nodes
    assert topology.db == db
    assert topology.is_cluster


def test_cluster_url_options_and_credentials_are_read() -> None:
    topology = parse_topology(
        "redis+cluster://u:p%40ss@h1:7000/0?max_connections=4&socket_timeout=0.2"
    )
    assert (topology.username, topology.password) == ("u", "p@ss")
    assert topology.options == {"max_connections": 4, "socket_timeout": 0.2}


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+cluster://h1:7000/1", "database"),
        ("redis+cluster://h1:99999", "host:port"),
        ("redis+cluster://h1:7000,,h2", "host:port"),
        ("redis+cluster://h1:7000?decode_responses=1", "unknown option"),
        ("redis+cluster://h1:7000?max_connections=x", "max_connections"),
        ("redis+cluster://h1:7000/x/y", "database"),
    ],
)
def test_malformed_cluster_urls_are_refused_at_construction(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        RedisCache(url)
