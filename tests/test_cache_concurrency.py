"""Cache under concurrency: deletes stay deleted, one load per expiry, one timeout per call.

Every Redis here is a real redis-server; time is a ManualClock.
"""

from __future__ import annotations

import asyncio
import json
import threading
import traceback
from typing import Any

import pytest
import redis
import redis.asyncio

from argo_perf import AsyncRedisCache, ManualClock, RedisCache, cached
from argo_perf.testing import RedisServer

ROOMY: dict[str, Any] = {"socket_timeout": 2.0, "connect_timeout": 2.0}
FROZEN: dict[str, Any] = {"socket_timeout": 0.05, "connect_timeout": 2.0}


class Paused:
    """JSON whose decoding waits while ``pause`` is set, to hold a reader after its GET."""

    name = "paused"

    def __init__(self) -> None:
        self.pause = False
        self.reading = threading.Event()
        self.release = threading.Event()

    def dumps(self, value: Any) -> bytes:
        return json.dumps(value).encode()

    def loads(self, data: bytes) -> Any:
        if self.pause:
            self.reading.set()
            assert self.release.wait(5.0)
        return json.loads(data)


# -- a delete (or a write) is never undone by a read that started before it ---------------


@pytest.mark.parametrize("remove", ["delete", "clear"])
@pytest.mark.parametrize("path", ["get", "get_many", "get_with_meta"])
def test_a_read_with_no_local_entry_racing_a_delete_does_not_bring_the_value_back(
    redis_url: str, clock: ManualClock, path: str, remove: str
) -> None:
    RedisCache(redis_url, **ROOMY, serializer=Paused(), clock=clock).set("AAPL", 231.5)
    serializer = Paused()
    cache = RedisCache(redis_url, **ROOMY, serializer=serializer, clock=clock)
    serializer.pause = True
    read = {
        "get": lambda: cache.get("AAPL"),
        "get_many": lambda: cache.get_many(["AAPL"]),
        "get_with_meta": lambda: cache.get_with_meta("AAPL"),
    }[path]
    reader = threading.Thread(target=read)
    reader.start()
    assert serializer.reading.wait(5.0)  # the reader has GET the value and is decoding it
    serializer.pause = False
    if remove == "delete":
        assert cache.delete("AAPL") is True
    else:
        assert cache.clear("AA") == 1
    serializer.release.set()
    reader.join(5.0)
    assert cache.get("AAPL") is None
    assert cache.get_many(["AAPL"]) == {}


def test_a_read_racing_a_write_and_an_eviction_does_not_bring_the_older_value_back(
    redis_url: str, clock: ManualClock
) -> None:
    RedisCache(redis_url, **ROOMY, serializer=Paused(), clock=clock).set("AAPL", "old")
    serializer = Paused()
    cache = RedisCache(redis_url, **ROOMY, serializer=serializer, clock=clock, maxsize=1)
    serializer.pause = True
    reader = threading.Thread(target=cache.get, args=("AAPL",))
    reader.start()
    assert serializer.reading.wait(5.0)
    serializer.pause = False
    assert cache.set("AAPL", "new") is True
    cache.set("MSFT", 1.0)  # evicts AAPL's new entry from the one-entry tier
    serializer.release.set()
    reader.join(5.0)
    assert cache.get("AAPL") == "new"


async def test_async_a_read_racing_a_delete_does_not_bring_the_value_back(
    redis_url: str, redis_client: redis.Redis, clock: ManualClock
) -> None:
    await AsyncRedisCache(redis_url, **ROOMY, clock=clock).set("AAPL", 231.5)
    cache = AsyncRedisCache(redis_url, **ROOMY, clock=clock)
    # Hold every command for a moment so the GET is in flight while the delete runs:
    # Redis answers the GET (the value) first, then the UNLINK.
    redis_client.execute_command("CLIENT", "PAUSE", "100", "ALL")
    reader = asyncio.ensure_future(cache.get("AAPL"))
    await asyncio.sleep(0)
    assert await cache.delete("AAPL") is True
    await reader
    assert await cache.get("AAPL") is None
    await cache.close()


def test_no_read_after_delete_sees_the_deleted_value_under_threads(redis_url: str) -> None:
    cache = RedisCache(redis_url, **ROOMY)
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            cache.get("AAPL")

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    resurrected = 0
    try:
        for i in range(300):
            cache.set("AAPL", i)
            assert cache.delete("AAPL") is True
            if cache.get("AAPL") is not None:
                resurrected += 1
    finally:
        stop.set()
        for t in readers:
            t.join(5.0)
    assert resurrected == 0


# -- single flight: one loader call per key per expiry -------------------------------------


@pytest.mark.parametrize("maxsize", [0, 100], ids=["redis-only", "two-tier"])
def test_one_loader_call_per_expiry_under_threads(
    redis_url: str, redis_server: RedisServer, clock: ManualClock, maxsize: int
) -> None:
    cache = RedisCache(
        redis_url, **ROOMY, clock=clock, maxsize=maxsize, default_ttl=1.0, max_stale=0.0
    )
    pinger = redis_server.client()
    calls = 0
    lock = threading.Lock()

    def load() -> float:
        nonlocal calls
        pinger.ping()  # some real I/O, as a vendor call would do
        with lock:
            calls += 1
        return 231.5

    rounds, threads = 40, 8
    start, done = threading.Barrier(threads + 1), threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(rounds):
                start.wait(5.0)
                for _ in range(5):
                    assert cache.get_or_set("AAPL", load) == 231.5
                done.wait(5.0)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            start.abort()
            done.abort()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for t in workers:
        t.start()
    for _ in range(rounds):
        start.wait(5.0)
        done.wait(5.0)
        clock.advance(1.0)  # the value expires between rounds
    for t in workers:
        t.join(5.0)
    pinger.close()
    assert errors == []
    assert calls == rounds
    stats = cache.stats
    assert stats.loader_calls == rounds
    assert stats.hits + stats.misses == rounds * threads * 5


@pytest.mark.parametrize("maxsize", [0, 100], ids=["redis-only", "two-tier"])
async def test_one_loader_call_per_expiry_under_tasks(
    redis_url: str, clock: ManualClock, maxsize: int
) -> None:
    cache = AsyncRedisCache(
        redis_url, **ROOMY, clock=clock, maxsize=maxsize, default_ttl=1.0, max_stale=0.0
    )
    pinger = redis.asyncio.Redis.from_url(redis_url)
    calls = 0

    async def load() -> float:
        nonlocal calls
        await pinger.ping()  # some real I/O, as a vendor call would do
        calls += 1
        return 231.5

    async def caller(delay: int) -> None:
        for _ in range(delay):
            await asyncio.sleep(0)
        for _ in range(3):
            assert await cache.get_or_set("AAPL", load) == 231.5

    rounds, tasks = 30, 50
    for _ in range(rounds):
        await asyncio.gather(*(caller(i % 13) for i in range(tasks)))
        clock.advance(1.0)
    await pinger.aclose()
    assert calls == rounds
    stats = cache.stats
    assert stats.loader_calls == rounds
    assert stats.hits + stats.misses == rounds * tasks * 3
    await cache.close()


# -- a frozen Redis costs one timeout per call, not one for the GET and one for the SET ----


def test_loaders_pay_the_timeout_once_while_redis_is_frozen(
    fault_redis: RedisServer, clock: ManualClock
) -> None:
    cache = RedisCache(fault_redis.url, **FROZEN, clock=clock, failure_threshold=100)
    cache.set("warm", 1)  # connect before the freeze

    @cached(cache, key=lambda symbol: symbol)
    def price(symbol: str) -> float:
        return 231.5

    fault_redis.pause()
    try:
        assert cache.get_or_set("AAPL", lambda: 1.0) == 1.0
        assert price("MSFT") == 231.5
        meta = cache.get_with_meta("NVDA", lambda: 2.0)
    finally:
        fault_redis.resume()
    assert meta is not None
    assert meta.source == "loader"
    stats = cache.stats
    assert stats.redis_errors == 3  # one timed-out GET per call, no SET tried after it
    assert stats.redis_set_failures == 3
    assert cache.get("AAPL") == 1.0  # kept in the in-process tier


async def test_async_loaders_pay_the_timeout_once_while_redis_is_frozen(
    fault_redis: RedisServer, clock: ManualClock
) -> None:
    cache = AsyncRedisCache(fault_redis.url, **FROZEN, clock=clock, failure_threshold=100)
    await cache.set("warm", 1)

    @cached(cache, key=lambda symbol: symbol)
    async def price(symbol: str) -> float:
        return 231.5

    async def one() -> float:
        return 1.0

    fault_redis.pause()
    try:
        assert await cache.get_or_set("AAPL", one) == 1.0
        assert await price("MSFT") == 231.5
        meta = await cache.get_with_meta("NVDA", one)
    finally:
        fault_redis.resume()
    assert meta is not None
    assert meta.source == "loader"
    stats = cache.stats
    assert stats.redis_errors == 3
    assert stats.redis_set_failures == 3
    await cache.close()


# -- cancellation and failures of a shared load ------------------------------------------


async def test_a_cancelled_leader_does_not_cancel_the_load_for_its_waiters(redis_url: str) -> None:
    cache = AsyncRedisCache(redis_url, **ROOMY)
    release = asyncio.Event()
    calls = 0

    async def loader() -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        return 42

    leader = asyncio.create_task(cache.get_or_set("k", loader))
    await asyncio.sleep(0.01)
    waiters = [asyncio.create_task(cache.get_or_set("k", loader)) for _ in range(3)]
    await asyncio.sleep(0.01)
    leader.cancel()
    waiters[0].cancel()  # a cancelled waiter does not cancel the load either
    await asyncio.sleep(0.01)
    release.set()
    results = await asyncio.gather(leader, *waiters, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    assert isinstance(results[1], asyncio.CancelledError)
    assert results[2:] == [42, 42]
    assert calls == 1
    assert await cache.get("k") == 42
    await cache.close()


async def test_waiters_load_themselves_when_the_shared_load_is_cancelled(redis_url: str) -> None:
    # Python 3.10 has no Task.cancelling(): a waiter cannot tell a cancelled
    # load from its own cancellation, so it takes the documented safe side.
    can_tell = hasattr(asyncio.Task, "cancelling")
    cache = AsyncRedisCache(redis_url, **ROOMY)
    calls = 0

    async def loader() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        if calls == 1:  # e.g. a vendor client cancelled from elsewhere
            raise asyncio.CancelledError
        return 7

    tasks = [asyncio.create_task(cache.get_or_set("k", loader)) for _ in range(4)]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    # The caller whose load was cancelled sees it; the others were not cancelled.
    assert isinstance(results[0], asyncio.CancelledError)
    if can_tell:
        assert results[1:] == [7, 7, 7]
        assert calls == 2
    else:
        assert all(isinstance(r, asyncio.CancelledError) for r in results[1:])
        assert calls == 1
    await cache.close()


@pytest.mark.parametrize("face", ["sync", "async"])
async def test_a_failed_shared_load_raises_the_error_to_each_caller_without_growing_it(
    redis_url: str, face: str
) -> None:
    callers = 40

    if face == "async":
        acache = AsyncRedisCache(redis_url, **ROOMY)

        async def failing() -> float:
            await asyncio.sleep(0.05)
            raise OSError("vendor down")

        tasks = [asyncio.create_task(acache.get_or_set("k", failing)) for _ in range(callers)]
        errors = await asyncio.gather(*tasks, return_exceptions=True)
        stats = acache.stats
        await acache.close()
    else:
        cache = RedisCache(redis_url, **ROOMY)
        started = threading.Barrier(callers)

        def slow_failing() -> float:
            threading.Event().wait(0.1)
            raise OSError("vendor down")

        errors = []

        def call() -> None:
            started.wait()
            try:
                cache.get_or_set("k", slow_failing)
            except OSError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=call) for _ in range(callers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stats = cache.stats
    assert len(errors) == callers
    assert all(isinstance(e, OSError) and str(e) == "vendor down" for e in errors)
    assert stats.loader_calls == 1  # as documented: the exception reaches every waiting caller
    assert stats.misses == callers
    # Raised once per caller, the one exception must not collect every caller's frames.
    depth = max(len(traceback.extract_tb(e.__traceback__)) for e in errors)
    assert depth < 15
