"""The cache on a real Redis Cluster: three masters started for this module.

Keys of one ``get_many`` live in different slots (and nodes); nothing redis-py
raises for a cluster reaches the caller.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio.cluster
import redis.cluster
from redis.backoff import NoBackoff
from redis.retry import Retry

from argo_perf import AsyncRedisCache, ConfigError, RedisCache
from argo_perf.testing import RedisServer


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _cluster_ports(count: int) -> list[int]:
    """Free ports whose cluster bus port (port + 10000) is free too."""
    ports: list[int] = []
    rng = random.Random()
    while len(ports) < count:
        port = rng.randrange(20_000, 55_000)
        if port not in ports and _free(port) and _free(port + 10_000):
            ports.append(port)
    return ports


@pytest.fixture(scope="module")
def cluster() -> Iterator[list[RedisServer]]:
    cli = shutil.which("redis-cli")
    assert cli is not None, "redis-cli is needed to create the test cluster"
    servers = [
        RedisServer(port, extra_args=["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"])
        for port in _cluster_ports(3)
    ]
    try:
        for server in servers:
            server.start()
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{s.port}" for s in servers),
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        deadline = time.monotonic() + 10.0
        for server in servers:
            with server.client() as client:
                while b"cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
                    assert time.monotonic() < deadline, "the test cluster did not become ready"
                    time.sleep(0.05)
        yield servers
    finally:
        for server in servers:
            server.close()


@pytest.fixture
def cluster_client(cluster: list[RedisServer]) -> Iterator[redis.cluster.RedisCluster]:
    client = redis.cluster.RedisCluster(
        host="127.0.0.1", port=cluster[0].port, socket_timeout=2.0, socket_connect_timeout=2.0
    )
    client.flushall(target_nodes=redis.cluster.RedisCluster.PRIMARIES)
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
    cluster: list[RedisServer], cluster_client: redis.cluster.RedisCluster
) -> None:
    client: Any = redis.asyncio.cluster.RedisCluster(
        host="127.0.0.1", port=cluster[1].port, socket_timeout=2.0, socket_connect_timeout=2.0
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


def test_coherent_mode_is_refused_on_a_cluster(
    cluster_client: redis.cluster.RedisCluster,
) -> None:
    with pytest.raises(ConfigError, match=r"coherent.*Cluster"):
        RedisCache(cluster_client, coherent=True)


def test_a_cluster_with_no_node_left_raises_nothing(cluster: list[RedisServer]) -> None:
    client = redis.cluster.RedisCluster(
        host="127.0.0.1",
        port=cluster[2].port,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        retry=Retry(NoBackoff(), 0),
    )
    cache = RedisCache(client, failure_threshold=100)
    assert cache.set("AAPL", 1.0) is True
    for server in cluster:  # the last test of the module: the cluster is not needed after it
        server.kill()
    assert cache.get_many(SYMBOLS) == {"AAPL": 1.0}  # from the in-process tier
    assert cache.get("MSFT", "default") == "default"
    assert cache.set("NVDA", 2.0) is False
    assert cache.get_or_set("AMZN", lambda: 3.0) == 3.0
    assert cache.delete("AAPL") is False
    assert cache.stats.redis_errors == 5
    client.close()
