"""Clients built from a URL share a bounded pool: a burst queues instead of storming Redis.

Every Redis-backed piece builds its clients through ``argo_perf._redis``, so each
is checked here with a burst of 200 concurrent operations (threads for the sync
face, tasks for the asyncio face) against a healthy private redis-server: every
operation succeeds, the backend-health gate never trips, and the server sees at
most ``max_connections`` connections per client.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
import redis

from argo_perf import AsyncRedisCache, ConfigError, RedisCache, RedisTokenBucket
from argo_perf._redis import DEFAULT_MAX_CONNECTIONS, async_client, sync_client
from argo_perf.breaker import RedisBreakerState
from argo_perf.testing import RedisServer

BURST = 200
T = TypeVar("T")


@pytest.fixture
def burst_url(redis_url: str) -> str:
    """The server's URL with a socket timeout that survives a starved CPU.

    200 threads on two cores can keep a thread that holds a connection off the
    CPU for longer than the 50 ms default, which is a real timeout, not a pool
    defect; the pool's queueing is what these tests are about.
    `benchmarks/cache_bench.py` measures the same burst with the defaults.
    """
    return f"{redis_url}?socket_timeout=0.5"


def connections_received(server: RedisServer) -> int:
    with server.client() as client:
        info = client.info("stats")
    return int(info["total_connections_received"])


def run_in_threads(call: Callable[[int], T], n: int = BURST) -> list[T]:
    """Run ``call(i)`` in ``n`` threads released together; return the results in order."""
    results: list[Any] = [None] * n
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = call(i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:3]
    return results


async def run_in_tasks(call: Callable[[int], Awaitable[T]], n: int = BURST) -> list[T]:
    return list(await asyncio.gather(*(call(i) for i in range(n))))


# -- the pool itself ---------------------------------------------------------------


def test_a_url_client_has_a_bounded_pool_with_the_socket_timeout_as_patience() -> None:
    client, _ = sync_client("redis://localhost:6379/0")
    pool = client.connection_pool
    assert isinstance(pool, redis.BlockingConnectionPool)
    assert pool.max_connections == DEFAULT_MAX_CONNECTIONS
    assert pool.timeout == 0.05
    client.close()


async def test_max_connections_comes_from_the_keyword_or_the_url() -> None:
    client, _ = sync_client("redis://localhost/0", max_connections=5)
    assert client.connection_pool.max_connections == 5
    client.close()
    aclient, _ = async_client("redis://localhost/0?max_connections=7")
    assert aclient.connection_pool.max_connections == 7
    await aclient.aclose()


async def test_queue_patience_follows_a_socket_timeout_set_in_the_url() -> None:
    client, _ = sync_client("redis://localhost/0?socket_timeout=0.5")
    assert client.connection_pool.timeout == 0.5
    client.close()
    aclient, _ = async_client("redis://localhost/0?socket_timeout=0.5&timeout=2")
    assert aclient.connection_pool.timeout == 2.0
    await aclient.aclose()


@pytest.mark.parametrize("value", [0, -1, True, 2.5, "8"])
def test_max_connections_must_be_a_positive_int(value: object) -> None:
    for build in (sync_client, async_client):
        with pytest.raises(ConfigError) as info:
            build("redis://localhost/0", max_connections=value)  # type: ignore[operator]
        assert info.value.parameter == "max_connections"


def test_a_burst_through_one_connection_queues_and_succeeds(redis_server: RedisServer) -> None:
    client, _ = sync_client(redis_server.url, max_connections=1, socket_timeout=1.0)
    assert all(run_in_threads(lambda i: client.set(f"q{i}", b"v"), n=50))
    client.close()


def test_a_queued_caller_does_not_reconnect_to_a_frozen_server(fault_redis: RedisServer) -> None:
    # One connection, held by a call stuck on the frozen server. The queued caller
    # gives up when no healthy connection comes back; it does not take the broken
    # one and pay a second timeout reconnecting (that would be a read/connect timeout).
    client, _ = sync_client(fault_redis.url, max_connections=1, socket_timeout=0.2)
    assert client.ping()
    fault_redis.pause()
    try:
        outcomes: list[str] = []

        def call(i: int) -> None:
            try:
                client.get("k")
            except redis.RedisError as exc:
                outcomes.append(str(exc))

        run_in_threads(call, n=2)
    finally:
        fault_redis.resume()
    assert len(outcomes) == 2
    assert sum("No connection available" in outcome for outcome in outcomes) == 1
    assert client.ping()  # a caller that finds the broken connection free reconnects
    client.close()


async def test_a_queued_task_does_not_reconnect_to_a_frozen_server(
    fault_redis: RedisServer,
) -> None:
    client, _ = async_client(fault_redis.url, max_connections=1, socket_timeout=0.2)
    assert await client.ping()
    fault_redis.pause()
    try:
        results = await asyncio.gather(client.get("a"), client.get("b"), return_exceptions=True)
    finally:
        fault_redis.resume()
    assert all(isinstance(result, redis.RedisError) for result in results)
    assert sum("No connection available" in str(result) for result in results) == 1
    assert await client.ping()
    await client.aclose()


async def _until(condition: Callable[[], bool]) -> None:
    """Let other tasks run until ``condition()`` holds (the pool has no event to await)."""
    while not condition():  # noqa: ASYNC110
        await asyncio.sleep(0)


def _kill_blocked_blpop(server: RedisServer) -> None:
    with server.client() as admin:
        while True:
            blocked = [c for c in admin.client_list() if c.get("cmd") == "blpop"]
            if blocked:
                admin.client_kill_filter(_id=blocked[0]["id"])
                return


def test_queued_callers_give_up_at_once_when_a_call_fails(fault_redis: RedisServer) -> None:
    # No patience limit at all (socket_timeout=None): without the rule the queued
    # caller would wait for ever. The call holding the only connection fails when
    # its connection is killed; the caller queued behind it gives up at once.
    client, _ = sync_client(fault_redis.url, max_connections=1, socket_timeout=None)
    outcomes: list[str] = []

    def blocked() -> None:
        with pytest.raises(redis.ConnectionError):
            client.blpop(["nothing"], 0)

    def queued() -> None:
        try:
            client.get("k")
        except redis.ConnectionError as exc:
            outcomes.append(str(exc))

    holder = threading.Thread(target=blocked)
    holder.start()
    pool_queue = client.connection_pool.pool
    while pool_queue.qsize():  # until the holder has the only connection
        pass
    waiter = threading.Thread(target=queued)
    waiter.start()
    while not pool_queue._line:  # until the caller is queued
        pass
    _kill_blocked_blpop(fault_redis)
    holder.join(timeout=30)
    waiter.join(timeout=30)
    assert not waiter.is_alive()
    assert len(outcomes) == 1
    assert "No connection available" in outcomes[0]
    assert client.ping()  # a caller that finds the broken connection free reconnects
    client.close()


async def test_queued_tasks_give_up_at_once_when_a_call_fails(fault_redis: RedisServer) -> None:
    client, _ = async_client(fault_redis.url, max_connections=1, socket_timeout=None)
    pool = client.connection_pool
    holder = asyncio.ensure_future(client.blpop(["nothing"], 0))
    await _until(lambda: bool(pool._in_use_connections))
    queued = asyncio.ensure_future(client.get("k"))
    await _until(lambda: bool(pool._waiters))
    await asyncio.to_thread(_kill_blocked_blpop, fault_redis)
    with pytest.raises(redis.ConnectionError):
        await holder
    with pytest.raises(redis.ConnectionError, match="No connection available"):
        await asyncio.wait_for(queued, 30)
    assert await client.ping()
    await client.aclose()


async def test_a_cancelled_task_passes_on_the_connection_it_was_woken_for(
    redis_url: str,
) -> None:
    client, _ = async_client(redis_url, max_connections=1, socket_timeout=None)
    pool = client.connection_pool
    held = await pool.get_connection()
    first = asyncio.ensure_future(pool.get_connection())
    second = asyncio.ensure_future(pool.get_connection())
    await _until(lambda: len(pool._waiters) == 2)
    await pool.release(held)  # wakes the first in line ...
    first.cancel()  # ... which is cancelled before it runs
    connection = await asyncio.wait_for(second, 30)
    assert connection is held
    await pool.release(connection)
    await client.aclose()


# -- the burst, through each Redis-backed piece ------------------------------------


def test_cache_burst_of_200_threads(redis_server: RedisServer, burst_url: str) -> None:
    cache = RedisCache(burst_url)
    before = connections_received(redis_server)
    assert run_in_threads(lambda i: cache.set(f"k{i}", i)) == [True] * BURST
    assert run_in_threads(lambda i: cache.get(f"k{i}")) == list(range(BURST))
    assert connections_received(redis_server) - before <= DEFAULT_MAX_CONNECTIONS + 1
    stats = cache.stats
    assert stats.redis_errors == 0
    assert stats.backend == "redis"
    assert cache.stats.backend_transitions == 0
    cache.close()


async def test_cache_burst_of_200_tasks(redis_server: RedisServer, burst_url: str) -> None:
    cache = AsyncRedisCache(burst_url)
    before = connections_received(redis_server)
    assert await run_in_tasks(lambda i: cache.set(f"k{i}", i)) == [True] * BURST
    assert await run_in_tasks(lambda i: cache.get(f"k{i}")) == list(range(BURST))
    assert connections_received(redis_server) - before <= DEFAULT_MAX_CONNECTIONS + 1
    assert cache.stats.redis_errors == 0
    assert cache.stats.backend_transitions == 0
    await cache.close()


def test_token_bucket_burst_of_200_threads(redis_server: RedisServer, burst_url: str) -> None:
    bucket = RedisTokenBucket(burst_url, "burst", rate=1.0, burst=1000)
    before = connections_received(redis_server)
    assert run_in_threads(lambda i: bucket.try_acquire()) == [True] * BURST
    assert connections_received(redis_server) - before <= DEFAULT_MAX_CONNECTIONS + 1
    assert bucket.stats.errors == 0
    assert bucket.stats.fallback_calls == 0
    assert bucket.health.transitions == 0
    bucket.close()


async def test_token_bucket_burst_of_200_tasks(redis_server: RedisServer, burst_url: str) -> None:
    bucket = RedisTokenBucket(burst_url, "burst", rate=1.0, burst=1000)
    before = connections_received(redis_server)
    assert await run_in_tasks(lambda i: bucket.acquire_async(timeout=0)) == [True] * BURST
    assert connections_received(redis_server) - before <= DEFAULT_MAX_CONNECTIONS + 1
    assert bucket.stats.errors == 0
    assert bucket.stats.fallback_calls == 0
    assert bucket.health.transitions == 0
    await bucket.aclose()
    bucket.close()


def test_breaker_state_burst_of_200_threads(redis_server: RedisServer, burst_url: str) -> None:
    state = RedisBreakerState(burst_url)
    state.publish_open("vendor", "t", 60.0)
    before = connections_received(redis_server)
    remaining = run_in_threads(lambda i: state.open_remaining("vendor"))
    assert all(left is not None and 0 < left <= 60.0 for left in remaining)
    assert connections_received(redis_server) - before <= DEFAULT_MAX_CONNECTIONS + 1
    assert state.errors == 0
    assert state.health.transitions == 0
    state.close()


async def test_breaker_state_burst_of_200_tasks(redis_server: RedisServer, burst_url: str) -> None:
    state = RedisBreakerState(burst_url)
    await state.publish_open_async("vendor", "t", 60.0)
    before = connections_received(redis_server)
    remaining = await run_in_tasks(lambda i: state.open_remaining_async("vendor"))
    assert all(left is not None and 0 < left <= 60.0 for left in remaining)
    assert connections_received(redis_server) - before <= DEFAULT_MAX_CONNECTIONS + 1
    assert state.errors == 0
    assert state.health.transitions == 0
    await state.aclose()
