"""Shared fixtures: real redis-server processes on free loopback ports, manual clocks.

``redis_server`` is one private server for the whole session; ``redis_url`` and
``redis_client`` flush it before each test. Fault tests that kill, freeze or
restart a server take ``fault_redis`` instead: a fresh private server per test,
so no other test sees the damage. ``cluster`` (a Redis Cluster of three masters)
and ``sentinels`` (a master, a replica and three sentinels) are one per session
too, flushed and repaired (dead nodes started again, a failed-over group healed)
before each test that takes them. Every process is reaped at the end, even when
a test fails. A missing ``redis-server`` binary fails the run; it never skips.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
import redis
from hypothesis import settings

from argo_perf.clock import ManualClock
from argo_perf.testing import (
    RedisCluster,
    RedisSentinelGroup,
    RedisServer,
    RedisServerError,
    find_redis_server,
)

# CI runs the same examples every time, so a red run is reproducible and never a
# draw of the dice; locally hypothesis explores new ones on each run.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_sessionstart(session: pytest.Session) -> None:
    try:
        find_redis_server()
    except RedisServerError as exc:
        raise pytest.UsageError(str(exc)) from exc


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server's URL, flushed before the test."""
    if not redis_server.running:  # a test broke the shared server: bring it back
        redis_server.restart()
    with redis_server.client() as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client: redis.Redis = redis.Redis.from_url(redis_url, socket_timeout=1.0)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def redis_factory() -> Iterator[Callable[..., RedisServer]]:
    """Start extra private servers (``redis_factory(extra_args=[...])``); all reaped after."""
    servers: list[RedisServer] = []

    def start(**kwargs: object) -> RedisServer:
        server = RedisServer(**kwargs)  # type: ignore[arg-type]
        servers.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in servers:
            server.close()


@pytest.fixture
def fault_redis(redis_factory: Callable[..., RedisServer]) -> RedisServer:
    """A private server of this test's own, free to kill, pause and restart."""
    return redis_factory()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    with RedisCluster() as cluster:
        yield cluster


@pytest.fixture
def cluster(redis_cluster: RedisCluster) -> RedisCluster:
    """The session's Redis Cluster, every node running, flushed before the test."""
    if not all(node.running for node in redis_cluster.nodes):
        for node in redis_cluster.nodes:
            node.start()
        redis_cluster.wait_ready()
    redis_cluster.flush()
    return redis_cluster


@pytest.fixture(scope="session")
def sentinel_group() -> Iterator[RedisSentinelGroup]:
    with RedisSentinelGroup() as group:
        yield group


@pytest.fixture
def sentinels(sentinel_group: RedisSentinelGroup) -> RedisSentinelGroup:
    """The session's Sentinel group (healed after a failover), its master flushed."""
    if not all(server.running for server in sentinel_group.servers):
        sentinel_group.heal()
    with sentinel_group.master().client() as client:
        client.flushall()
    return sentinel_group


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()
