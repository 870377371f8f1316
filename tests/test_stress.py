"""Stress: 8 threads and 200 asyncio tasks at once on one bucket, one breaker, one cache.

Each run lasts about a second of wall time (the run's length, never asserted);
the primitives run on a `ManualClock` that a ticker thread advances meanwhile,
so their own time moves and the invariants are checked against it:

* a `TokenBucket` grants at most ``burst + rate * t`` over ``t`` seconds of its
  clock, and its stats agree with what the callers got;
* a `CircuitBreaker`'s listener hears only legal transitions, each starting
  where the one before ended;
* a cache (memory-only, and with Redis; the sync and asyncio faces) only ever
  returns the value of the key asked for, and keeps at most ``maxsize`` entries;
* nothing hangs (a watchdog fails the run when a thread or a task does not
  finish), and memory after a second run is what it was after the first
  (``tracemalloc``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import random
import threading
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from argo_perf import (
    AsyncRedisCache,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    CircuitState,
    ManualClock,
    RedisCache,
    TokenBucket,
)
from argo_perf.breaker import Transition

THREADS, TASKS = 8, 200
DURATION = 0.5
"""Wall seconds each of the two runs of a stress test lasts."""
WATCHDOG = 10.0
"""Wall seconds after the end of a run within which every thread and task must be done."""
MEMORY_GROWTH = 256 * 1024
"""Bytes a second run may leave allocated beyond the first (caches, pools, interned objects)."""


class VendorDown(Exception):
    pass


class Ticker:
    """Advances a `ManualClock` by a millisecond about every millisecond of wall time."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.001):
            self.clock.advance(0.001)

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(WATCHDOG)


async def hammer(
    sync_work: Callable[[random.Random], None] | None,
    async_work: Callable[[random.Random], Awaitable[None]],
) -> None:
    """Run ``sync_work`` in 8 threads and ``async_work`` in 200 tasks for `DURATION`.

    Without ``sync_work``, each thread runs ``async_work`` on an event loop of its own.
    Fails when any of them raises, or is not done `WATCHDOG` seconds after the end.
    """
    stop = threading.Event()
    errors: list[BaseException] = []

    def thread_main(seed: int) -> None:
        rng = random.Random(seed)
        try:
            if sync_work is None:
                asyncio.run(task_main(seed))
            while not stop.is_set():
                sync_work(rng)  # type: ignore[misc]
        except BaseException as exc:
            errors.append(exc)

    async def task_main(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            await async_work(rng)
            await asyncio.sleep(0)

    threads = [threading.Thread(target=thread_main, args=(i,), daemon=True) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    tasks = [asyncio.create_task(task_main(THREADS + i)) for i in range(TASKS)]
    await asyncio.sleep(DURATION)
    stop.set()
    done, pending = await asyncio.wait(tasks, timeout=WATCHDOG)
    for thread in threads:
        thread.join(WATCHDOG)
    assert not pending, f"{len(pending)} tasks still running: deadlock?"
    assert not [t for t in threads if t.is_alive()], "threads still running: deadlock?"
    for task in done:
        task.result()
    assert not errors, errors[:3]


async def twice(run: Callable[[], Awaitable[None]]) -> None:
    """Run the stress twice; what the second run leaves allocated must not grow."""
    tracemalloc.start()
    try:
        await run()
        gc.collect()
        first = tracemalloc.get_traced_memory()[0]
        await run()
        gc.collect()
        second = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert second - first < MEMORY_GROWTH, f"{second - first} bytes more after the second run"


# -- the token bucket ---------------------------------------------------------------------------


async def test_a_token_bucket_never_grants_more_than_burst_plus_rate_times_t() -> None:
    clock = ManualClock()
    rate, burst = 200.0, 20
    bucket = TokenBucket(rate, burst, clock=clock)
    granted = [0]
    lock = threading.Lock()

    def took(ok: bool) -> None:
        if ok:
            with lock:
                granted[0] += 1

    def sync_work(rng: random.Random) -> None:
        if rng.random() < 0.5:
            took(bucket.try_acquire())
        else:
            took(bucket.acquire(timeout=0.005))

    async def async_work(rng: random.Random) -> None:
        pick = rng.random()
        if pick < 0.4:
            took(bucket.try_acquire())
        elif pick < 0.8:
            took(await bucket.acquire_async(timeout=0.005))
        else:  # cancelled while it waits: hands its tokens back
            with contextlib.suppress(asyncio.TimeoutError):
                took(await asyncio.wait_for(bucket.acquire_async(timeout=0.05), 0.0005))

    async def run() -> None:
        start = clock.monotonic()
        before = bucket.stats.granted
        with Ticker(clock):
            await hammer(sync_work, async_work)
        elapsed = clock.monotonic() - start
        got = bucket.stats.granted - before
        assert got <= burst + rate * elapsed
        assert got > 0

    await twice(run)
    stats = bucket.stats
    assert stats.granted == granted[0]
    assert stats.cancelled > 0  # the cancellations happened, and were counted


# -- the circuit breaker ----------------------------------------------------------------------

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
LEGAL = {(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, OPEN), (HALF_OPEN, CLOSED)}


async def test_a_circuit_breaker_moves_only_along_legal_transitions() -> None:
    clock = ManualClock()
    heard: list[Transition] = []
    breaker = CircuitBreaker(
        "stress",
        CircuitBreakerConfig(failure_threshold=3, success_threshold=2, timeout=0.005),
        clock=clock,
        listeners=[heard.append],
    )

    def vendor(rng: random.Random) -> str:
        if rng.random() < 0.3:
            raise VendorDown
        return "ok"

    async def vendor_async(rng: random.Random) -> str:
        return vendor(rng)

    def sync_work(rng: random.Random) -> None:
        with contextlib.suppress(VendorDown, CircuitOpenError):
            assert breaker.call(vendor, rng) == "ok"

    async def async_work(rng: random.Random) -> None:
        with contextlib.suppress(VendorDown, CircuitOpenError):
            assert await breaker.call_async(vendor_async, rng) == "ok"

    async def run() -> None:
        with Ticker(clock):
            await hammer(sync_work, async_work)

    await twice(run)
    moves = [(t.old, t.new) for t in heard]
    assert set(moves) <= LEGAL
    assert len(set(moves)) == 4  # every transition happened
    for before, after in itertools.pairwise(heard):
        assert after.old is before.new, f"{before} then {after}"
    stats = breaker.stats
    assert stats.opened == sum(1 for t in heard if t.new is OPEN)
    assert stats.probes_in_flight == 0


# -- the cache ------------------------------------------------------------------------------------

KEYS = 200
MAXSIZE = 64


def value_of(key: str) -> dict[str, Any]:
    return {"key": key, "price": len(key) * 1.5}


@pytest.fixture(params=["memory", "redis"])
def cache_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "memory":
        return None
    url: str = request.getfixturevalue("redis_url")
    return url


def checked(key: str, value: object) -> None:
    assert value is None or value == value_of(key), (key, value)


def options(clock: ManualClock) -> dict[str, Any]:
    # Generous timeouts: the run loads the host on purpose; an outage is not what it tests.
    return {
        "maxsize": MAXSIZE,
        "default_ttl": 0.05,
        "socket_timeout": 5.0,
        "connect_timeout": 5.0,
        "clock": clock,
    }


async def load(key: str) -> dict[str, Any]:
    await asyncio.sleep(0)
    return value_of(key)


def sync_ops(cache: RedisCache) -> Callable[[random.Random], None]:
    def work(rng: random.Random) -> None:
        key = f"k{rng.randrange(KEYS)}"
        pick = rng.random()
        if pick < 0.4:
            assert cache.get_or_set(key, lambda: value_of(key)) == value_of(key)
        elif pick < 0.7:
            checked(key, cache.get(key))
        elif pick < 0.9:
            cache.set(key, value_of(key))
        else:
            cache.delete(key)

    return work


def async_ops(cache: AsyncRedisCache) -> Callable[[random.Random], Awaitable[None]]:
    async def work(rng: random.Random) -> None:
        key = f"k{rng.randrange(KEYS)}"
        pick = rng.random()
        if pick < 0.4:
            assert await cache.get_or_set(key, lambda: load(key)) == value_of(key)
        elif pick < 0.7:
            checked(key, await cache.get(key))
        elif pick < 0.9:
            await cache.set(key, value_of(key))
        else:
            await cache.delete(key)

    return work


def settled(cache: RedisCache | AsyncRedisCache) -> None:
    stats = cache.stats
    assert stats.memory_entries <= MAXSIZE
    assert stats.loads_in_flight == 0
    assert stats.redis_errors == 0


async def test_threads_and_tasks_on_one_cache_get_each_key_its_own_value(
    cache_url: str | None, clock: ManualClock
) -> None:
    """Threads on `RedisCache`, tasks on `AsyncRedisCache`: with Redis, one namespace."""
    with RedisCache(cache_url, **options(clock)) as cache:
        acache = AsyncRedisCache(cache_url, **options(clock))

        async def run() -> None:
            with Ticker(clock):
                await hammer(sync_ops(cache), async_ops(acache))

        try:
            await twice(run)
        finally:
            await acache.close()
        settled(cache)
        settled(acache)


async def test_one_async_cache_on_nine_event_loops_gets_each_key_its_own_value(
    cache_url: str | None, clock: ManualClock
) -> None:
    """200 tasks on this loop, and each of the 8 threads on a loop of its own."""
    cache = AsyncRedisCache(cache_url, **options(clock))

    async def run() -> None:
        with Ticker(clock):
            await hammer(None, async_ops(cache))

    try:
        await twice(run)
    finally:
        await cache.close()
    settled(cache)


def test_the_watchdog_fails_a_run_that_hangs() -> None:
    """The harness itself: a thread that never returns is reported, not waited for."""
    never = threading.Event()

    async def run() -> None:
        global WATCHDOG
        saved, WATCHDOG = WATCHDOG, 0.05
        try:
            await hammer(lambda rng: never.wait(), lambda rng: asyncio.sleep(0))
        finally:
            WATCHDOG = saved

    start = time.monotonic()
    with pytest.raises(AssertionError, match="deadlock"):
        asyncio.run(run())
    never.set()
    assert time.monotonic() - start < WATCHDOG
