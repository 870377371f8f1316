"""Cache benchmark: argo_perf's RedisCache / AsyncRedisCache beside its peers, in one process.

Peers: raw redis-py (sync and asyncio), cachetools ``TTLCache``, cashews and
aiocache. Every Redis here is a private ``redis-server`` started by
:class:`argo_perf.testing.RedisServer`; the outage scenario freezes one with
SIGSTOP.

Scenarios:

1. in-process hit: a fresh value already in memory;
2. Redis hit with argo_perf's in-process tier off (``maxsize=0``), against a raw
   GET on an equivalent client, sync and asyncio;
3. frozen Redis: how many calls pay the socket timeout, what a call costs
   afterwards, whether the last value is served, and how long after the
   server answers again the cache uses it;
4. a burst of 200 concurrent ``set`` calls (200 threads, 200 tasks) on a cold
   cache against a healthy Redis: how many succeed, how many connections the
   server saw opened, whether the health gate tripped;
5. Redis frozen under 200 concurrent callers (threads, tasks) reading a stale
   key in a loop: how many calls paid the timeout, how many of those started
   after the freeze, and the worst call's latency.

Contenders are interleaved round by round; the figures are medians over the
rounds (per-call means within a round). Run::

    python benchmarks/cache_bench.py            # full run
    python benchmarks/cache_bench.py --quick    # a few seconds
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis
import redis.asyncio
from cachetools import LRUCache, TTLCache

from argo_perf import AsyncRedisCache, RedisCache
from argo_perf.testing import RedisServer

KEY = "AAPL"
VALUE = {"symbol": "AAPL", "price": 231.57, "volume": 51234567, "ts": 1767623400.0}
TIMEOUT = 0.05  # the socket timeout every contender gets in the outage scenario
# Peers' timeouts in the hit scenarios: a timeout does not change a hit's cost, and a
# peer's 50 ms read timing out on a loaded machine would end the whole run.
HIT_TIMEOUT = 1.0

Row = tuple[str, str, float, str]
FIGURES: dict[str, float] = {}  # what the targets are checked against at the end


def per_call_sync(fn: Callable[[str], Any], n: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(n):
        fn(KEY)
    return (time.perf_counter_ns() - start) / n


async def per_call_async(fn: Callable[[str], Awaitable[Any]], n: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(n):
        await fn(KEY)
    return (time.perf_counter_ns() - start) / n


def interleave_sync(
    contenders: dict[str, Callable[[str], Any]], n: int, rounds: int
) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():  # warm up
        per_call_sync(fn, max(10, n // 10))
    for _ in range(rounds):
        for name, fn in contenders.items():
            samples[name].append(per_call_sync(fn, n))
    return {name: statistics.median(values) for name, values in samples.items()}


async def interleave_async(
    contenders: dict[str, Callable[[str], Awaitable[Any]]], n: int, rounds: int
) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():
        await per_call_async(fn, max(10, n // 10))
    for _ in range(rounds):
        for name, fn in contenders.items():
            samples[name].append(await per_call_async(fn, n))
    return {name: statistics.median(values) for name, values in samples.items()}


def fmt_ns(ns: float) -> str:
    return f"{ns / 1000:.3f} µs" if ns < 1_000_000 else f"{ns / 1e6:.1f} ms"


def table(title: str, medians: dict[str, float], reference: str) -> list[Row]:
    ref = medians[reference]
    rows: list[Row] = []
    print(f"\n{title}")
    print(f"  {'contender':<44} {'median/call':>14} {'vs ' + reference:>22}")
    for name, ns in medians.items():
        ratio = ns / ref
        rows.append((title, name, ns, f"{ratio:.2f}x"))
        print(f"  {name:<44} {fmt_ns(ns):>14} {ratio:>21.2f}x")
    return rows


# -- scenario 1 and 2, sync ------------------------------------------------------------------


def sync_scenarios(server: RedisServer, n: int, rounds: int) -> None:
    mem = RedisCache()
    mem.set(KEY, VALUE)
    two_tier = RedisCache(server.url)
    two_tier.set(KEY, VALUE)
    ttl_cache: TTLCache[str, Any] = TTLCache(maxsize=10_000, ttl=60)
    ttl_cache[KEY] = VALUE
    lru: LRUCache[str, Any] = LRUCache(maxsize=10_000)
    lru[KEY] = VALUE
    lock = threading.Lock()

    def ttl_cache_locked(key: str) -> Any:
        with lock:
            return ttl_cache.get(key)

    medians = interleave_sync(
        {
            "argo_perf RedisCache() memory-only": mem.get,
            "argo_perf RedisCache(url) in-process tier": two_tier.get,
            "cachetools LRUCache.get (bare, no lock)": lru.get,
            "cachetools TTLCache.get (no lock)": ttl_cache.get,
            "cachetools TTLCache.get under a Lock": ttl_cache_locked,
        },
        n * 20,
        rounds,
    )
    table("in-process hit (sync)", medians, "cachetools TTLCache.get (no lock)")
    FIGURES["memory_hit_us"] = medians["argo_perf RedisCache(url) in-process tier"] / 1000
    FIGURES["memory_hit_ratio"] = (
        medians["argo_perf RedisCache(url) in-process tier"]
        / medians["cachetools LRUCache.get (bare, no lock)"]
    )

    tier_off = RedisCache(server.url, maxsize=0)
    tier_off.set(KEY, VALUE)
    raw = redis.Redis.from_url(
        server.url, socket_timeout=HIT_TIMEOUT, socket_connect_timeout=HIT_TIMEOUT
    )
    raw_key = "raw:" + KEY
    raw.set(raw_key, raw.get(tier_off.redis_key(KEY)))
    medians = interleave_sync(
        {
            "raw redis-py GET": lambda _key: raw.get(raw_key),
            "argo_perf RedisCache(url, maxsize=0).get": tier_off.get,
        },
        n,
        rounds,
    )
    table("Redis hit, in-process tier off (sync)", medians, "raw redis-py GET")
    FIGURES["redis_hit_ratio_sync"] = (
        medians["argo_perf RedisCache(url, maxsize=0).get"] / medians["raw redis-py GET"]
    )
    for cache in (two_tier, tier_off):
        cache.close()
    raw.close()


# -- scenario 1 and 2, asyncio ---------------------------------------------------------------


async def async_scenarios(server: RedisServer, n: int, rounds: int) -> None:
    from aiocache import RedisCache as AioRedisCache
    from aiocache import SimpleMemoryCache
    from cashews import Cache

    mem = AsyncRedisCache()
    await mem.set(KEY, VALUE)
    cashews_mem = Cache()
    cashews_mem.setup("mem://")
    await cashews_mem.set(KEY, VALUE, expire=60)
    aio_mem = SimpleMemoryCache()
    await aio_mem.set(KEY, VALUE, ttl=60)
    medians = await interleave_async(
        {
            "argo_perf AsyncRedisCache() memory-only": mem.get,
            "cashews mem://": cashews_mem.get,
            "aiocache SimpleMemoryCache": aio_mem.get,
        },
        n * 5,
        rounds,
    )
    table("in-process hit (asyncio)", medians, "argo_perf AsyncRedisCache() memory-only")

    tier_off = AsyncRedisCache(server.url, maxsize=0)
    await tier_off.set(KEY, VALUE)
    raw = redis.asyncio.Redis.from_url(
        server.url, socket_timeout=HIT_TIMEOUT, socket_connect_timeout=HIT_TIMEOUT
    )
    raw_key = "raw:" + KEY
    await raw.set(raw_key, await raw.get(tier_off.redis_key(KEY)))
    cashews_redis = Cache()
    cashews_redis.setup(server.url, socket_timeout=HIT_TIMEOUT, client_side=False)
    await cashews_redis.set(KEY, VALUE, expire=60)
    aio_redis = AioRedisCache(endpoint=server.host, port=server.port, namespace="aio")
    await aio_redis.set(KEY, VALUE, ttl=60)

    async def raw_get(_key: str) -> Any:
        return await raw.get(raw_key)

    medians = await interleave_async(
        {
            "raw redis.asyncio GET": raw_get,
            "argo_perf AsyncRedisCache(url, maxsize=0).get": tier_off.get,
            "cashews redis://": cashews_redis.get,
            "aiocache RedisCache": aio_redis.get,
        },
        n,
        rounds,
    )
    table("Redis hit, in-process tier off (asyncio)", medians, "raw redis.asyncio GET")
    FIGURES["redis_hit_ratio_async"] = (
        medians["argo_perf AsyncRedisCache(url, maxsize=0).get"] / medians["raw redis.asyncio GET"]
    )
    await tier_off.close()
    await raw.aclose()
    await cashews_redis.close()
    await aio_redis.close()


# -- scenario 3: a frozen Redis --------------------------------------------------------------


def _summary(
    name: str, durations: list[float], served: int, back: float | None, tag: str = ""
) -> None:
    slow = sum(1 for d in durations if d >= TIMEOUT * 0.5)
    fast = [d for d in durations if d < TIMEOUT * 0.5]
    if tag:
        FIGURES[f"outage_slow_calls_{tag}"] = slow
        FIGURES[f"outage_median_us_{tag}"] = statistics.median(fast) * 1e6
        FIGURES[f"outage_back_s_{tag}"] = back if back is not None else float("inf")
    median_fast = f"{statistics.median(fast) * 1e6:.2f} µs" if fast else "-"
    back_s = "-" if back is None else f"{back:.3f} s"
    print(
        f"  {name:<34} {len(durations):>6} {slow:>13} {median_fast:>16} "
        f"{served:>7}/{len(durations):<6} {back_s:>10}"
    )


def _outage_header() -> None:
    print(f"\nfrozen Redis (SIGSTOP), socket timeout {TIMEOUT * 1000:.0f} ms for every contender")
    print(
        f"  {'contender':<34} {'calls':>6} {'paid timeout':>13} {'median after':>16} "
        f"{'served value':>14} {'back after':>10}"
    )


def sync_outage(frozen_for: float) -> None:
    with RedisServer() as server:
        cache = RedisCache(server.url, default_ttl=0.05, max_stale=600.0)
        cache.set(KEY, VALUE)
        time.sleep(0.1)  # the value is now stale: every get asks Redis first
        raw = redis.Redis.from_url(
            server.url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT
        )
        raw.ping()
        server.pause()
        durations: list[float] = []
        served = 0
        end = time.monotonic() + frozen_for
        while time.monotonic() < end:  # several probe intervals long
            for _ in range(200):
                t0 = time.perf_counter()
                value = cache.get(KEY)
                durations.append(time.perf_counter() - t0)
                served += value == VALUE
            time.sleep(0.001)
        raw_durations: list[float] = []
        for _ in range(5):
            t0 = time.perf_counter()
            with contextlib.suppress(redis.RedisError):
                raw.get(KEY)
            raw_durations.append(time.perf_counter() - t0)
        resumed = time.monotonic()
        server.resume()
        while cache.backend != "redis":
            cache.get(KEY)
            time.sleep(0.001)
        back = time.monotonic() - resumed
        assert cache.set(KEY, VALUE) is True
        _outage_header()
        _summary("argo_perf RedisCache", durations, served, back, "sync")
        _summary("raw redis-py GET", raw_durations, 0, None)
        cache.close()
        raw.close()


async def async_outage(frozen_for: float) -> None:
    from aiocache import RedisCache as AioRedisCache
    from cashews import Cache

    with RedisServer() as server:
        cache = AsyncRedisCache(server.url, default_ttl=0.05, max_stale=600.0)
        await cache.set(KEY, VALUE)
        raw = redis.asyncio.Redis.from_url(
            server.url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT
        )
        cashews_redis = Cache()
        cashews_redis.setup(server.url, socket_timeout=TIMEOUT, client_side=False)
        await cashews_redis.set(KEY, VALUE, expire=60)
        aio_redis = AioRedisCache(
            endpoint=server.host,
            port=server.port,
            timeout=TIMEOUT,
            connection_pool_kwargs={"socket_timeout": TIMEOUT},
        )
        await aio_redis.set(KEY, VALUE, ttl=60)
        await raw.ping()
        await asyncio.sleep(0.1)
        server.pause()
        durations: list[float] = []
        served = 0
        end = time.monotonic() + frozen_for
        while time.monotonic() < end:
            for _ in range(200):
                t0 = time.perf_counter()
                value = await cache.get(KEY)
                durations.append(time.perf_counter() - t0)
                served += value == VALUE
            await asyncio.sleep(0.001)
        peers: dict[str, tuple[list[float], int]] = {}
        for name, get in (
            ("raw redis.asyncio GET", raw.get),
            ("cashews redis://", cashews_redis.get),
            ("aiocache RedisCache", aio_redis.get),
        ):
            times: list[float] = []
            hits = 0
            for _ in range(5):
                t0 = time.perf_counter()
                with contextlib.suppress(redis.RedisError, asyncio.TimeoutError, OSError):
                    hits += (await get(KEY)) == VALUE
                times.append(time.perf_counter() - t0)
            peers[name] = (times, hits)
        resumed = time.monotonic()
        server.resume()
        while cache.backend != "redis":
            await cache.get(KEY)
            await asyncio.sleep(0.001)
        back = time.monotonic() - resumed
        assert await cache.set(KEY, VALUE) is True
        _summary("argo_perf AsyncRedisCache", durations, served, back, "async")
        for name, (times, hits) in peers.items():
            _summary(name, times, hits, None)
        await cache.close()
        await raw.aclose()
        await cashews_redis.close()
        await aio_redis.close()


# -- scenario 4: a burst on a healthy Redis ----------------------------------------------

BURST = 200


def _connections_received(server: RedisServer) -> int:
    with server.client() as client:
        return int(client.info("stats")["total_connections_received"])


def _burst_row(name: str, ok: int, opened: int, tripped: int | str) -> None:
    print(f"  {name:<44} {ok:>5}/{BURST:<5} {opened:>12} {tripped!s:>14}")


def _threads(call: Callable[[int], Any]) -> list[Any]:
    results: list[Any] = [None] * BURST
    barrier = threading.Barrier(BURST)

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = call(i)
        except Exception as exc:  # a peer may raise; it counts as a failure
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(BURST)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


async def _async_burst(server: RedisServer) -> None:
    cache = AsyncRedisCache(server.url)
    before = _connections_received(server)
    results = await asyncio.gather(*(cache.set(f"b{i}", VALUE) for i in range(BURST)))
    opened = _connections_received(server) - before
    ok = sum(result is True for result in results)
    FIGURES["burst_ok_async"] = ok
    _burst_row(
        "argo_perf AsyncRedisCache(url).set, 200 tasks", ok, opened, cache._core.gate.transitions
    )
    await cache.close()
    raw = redis.asyncio.Redis.from_url(
        server.url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT
    )
    before = _connections_received(server)
    raw_results = await asyncio.gather(
        *(raw.set(f"r{i}", b"v") for i in range(BURST)), return_exceptions=True
    )
    opened = _connections_received(server) - before
    _burst_row(
        "raw redis.asyncio SET (default pool), 200 tasks",
        sum(r is True for r in raw_results),
        opened,
        "-",
    )
    await raw.aclose()


def burst(server: RedisServer) -> None:
    print(f"\nburst of {BURST} concurrent set() on a cold client, healthy Redis")
    print(f"  {'contender':<44} {'succeeded':>11} {'conns opened':>12} {'gate changes':>14}")
    cache = RedisCache(server.url)
    before = _connections_received(server)
    results = _threads(lambda i: cache.set(f"b{i}", VALUE))
    opened = _connections_received(server) - before
    ok = sum(result is True for result in results)
    FIGURES["burst_ok_sync"] = ok
    _burst_row(
        "argo_perf RedisCache(url).set, 200 threads", ok, opened, cache._core.gate.transitions
    )
    cache.close()
    raw = redis.Redis.from_url(server.url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
    before = _connections_received(server)
    raw_results = _threads(lambda i: raw.set(f"r{i}", b"v"))
    opened = _connections_received(server) - before
    _burst_row(
        "raw redis-py SET (default pool), 200 threads",
        sum(r is True for r in raw_results),
        opened,
        "-",
    )
    raw.close()
    asyncio.run(_async_burst(server))


# -- scenario 5: Redis frozen under 200 concurrent callers -------------------------------

Call = tuple[float, float]  # (start, end), perf_counter seconds
READER_PAUSE = 0.05
"""Seconds each of the 200 readers waits between calls (a service polling symbols).

Without a pause (or with 10 ms) the readers keep the process saturated and every
call queues behind the other 199 even on a healthy Redis (a 25-30 ms median on
2 cores), which measures the queue, not the outage; the table shows the healthy
phase's median and worst call so this can be checked."""


def _frozen_report(tag: str, calls: list[Call], frozen_at: float) -> None:
    in_flight = sum(1 for start, end in calls if start < frozen_at < end)
    after = [(start, end) for start, end in calls if end > frozen_at]
    paid = [(start, end) for start, end in after if end - start >= TIMEOUT * 0.5]
    started_after = sum(1 for start, _ in paid if start >= frozen_at)
    # Nothing can tell a frozen Redis from a slow one before the first timeout fires
    # (at the freeze + TIMEOUT); a call started after that must not pay.
    late = sum(1 for start, _ in paid if start >= frozen_at + TIMEOUT)
    worst = max((end - start for start, end in after), default=0.0)
    healthy = sorted(end - start for start, end in calls if end < frozen_at)
    FIGURES[f"frozen200_late_{tag}"] = late
    FIGURES[f"frozen200_worst_ratio_{tag}"] = worst / TIMEOUT
    name = {
        "sync": "argo_perf RedisCache.get, 200 threads",
        "async": "argo_perf AsyncRedisCache.get, 200 tasks",
    }[tag]
    print(
        f"  {name:<44} {in_flight:>10} {len(paid):>6} {started_after:>8} {late:>10} "
        f"{worst * 1e3:>9.1f} ms "
        f"{worst / TIMEOUT:>6.2f}x {healthy[len(healthy) // 2] * 1e3:>7.2f} / "
        f"{healthy[-1] * 1e3:.1f} ms"
    )


def _frozen_header() -> None:
    print(
        f"\nRedis frozen (SIGSTOP, at F) under {BURST} concurrent readers of a stale key, "
        f"each pausing {READER_PAUSE * 1000:.0f} ms between calls;\n  timeout T = "
        f"{TIMEOUT * 1000:.0f} ms; 'paid' = calls of >= T/2 that end after F"
    )
    print(
        f"  {'contender':<44} {'in flight':>10} {'paid':>6} {'after F':>8} {'after F+T':>10} "
        f"{'worst call':>12} {'/timeout':>7} {'healthy p50 / max':>18}"
    )


def frozen_threads(run_for: float) -> None:
    with RedisServer() as server:
        cache = RedisCache(server.url, default_ttl=0.05, max_stale=600.0)
        cache.set(KEY, VALUE)
        time.sleep(0.1)  # stale: every get asks Redis first
        calls: list[Call] = []
        lock = threading.Lock()
        stop = threading.Event()

        def reader() -> None:
            mine: list[Call] = []
            while not stop.is_set():
                start = time.perf_counter()
                cache.get(KEY)
                mine.append((start, time.perf_counter()))
                time.sleep(READER_PAUSE)
            with lock:
                calls.extend(mine)

        threads = [threading.Thread(target=reader) for _ in range(BURST)]
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        frozen_at = time.perf_counter()
        server.pause()
        time.sleep(run_for)
        stop.set()
        for thread in threads:
            thread.join()
        server.resume()
        _frozen_report("sync", calls, frozen_at)
        cache.close()


async def frozen_tasks(run_for: float) -> None:
    with RedisServer() as server:
        cache = AsyncRedisCache(server.url, default_ttl=0.05, max_stale=600.0)
        await cache.set(KEY, VALUE)
        await asyncio.sleep(0.1)
        calls: list[Call] = []
        stop = asyncio.Event()

        async def reader() -> None:
            while not stop.is_set():
                start = time.perf_counter()
                await cache.get(KEY)
                calls.append((start, time.perf_counter()))
                await asyncio.sleep(READER_PAUSE)

        tasks = [asyncio.ensure_future(reader()) for _ in range(BURST)]
        await asyncio.sleep(0.3)
        frozen_at = time.perf_counter()
        server.pause()
        await asyncio.sleep(run_for)
        stop.set()
        await asyncio.gather(*tasks)
        server.resume()
        _frozen_report("async", calls, frozen_at)
        await cache.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (a few seconds)")
    args = parser.parse_args()
    n, rounds, frozen_for = (200, 7, 1.2) if args.quick else (500, 61, 3.5)
    print(f"cache benchmark: {rounds} rounds, medians of per-call means")
    with RedisServer() as server:
        sync_scenarios(server, n, rounds)
        asyncio.run(async_scenarios(server, n, rounds))
    sync_outage(frozen_for)
    asyncio.run(async_outage(frozen_for))
    with RedisServer() as server:
        burst(server)
    _frozen_header()
    frozen_threads(min(frozen_for, 1.0))
    asyncio.run(frozen_tasks(min(frozen_for, 1.0)))
    report_targets()


def report_targets() -> None:
    f = FIGURES
    checks = [
        (
            "in-process hit <= 2x a bare cachetools LRUCache.get",
            f"{f['memory_hit_ratio']:.2f}x ({f['memory_hit_us']:.3f} µs)",
            f["memory_hit_ratio"] <= 2.0,
        ),
        (
            "Redis hit (tier off) <= 1.10x raw redis-py GET",
            f"{f['redis_hit_ratio_sync']:.3f}x",
            f["redis_hit_ratio_sync"] <= 1.10,
        ),
        (
            "Redis hit (tier off) <= 1.10x raw redis.asyncio GET",
            f"{f['redis_hit_ratio_async']:.3f}x",
            f["redis_hit_ratio_async"] <= 1.10,
        ),
    ]
    for tag in ("sync", "async"):
        slow, median, back = (
            f[f"outage_slow_calls_{tag}"],
            f[f"outage_median_us_{tag}"],
            f[f"outage_back_s_{tag}"],
        )
        checks += [
            (f"frozen ({tag}): <= 3 calls pay the timeout", f"{slow:.0f}", slow <= 3),
            (f"frozen ({tag}): served median <= 5 µs", f"{median:.2f} µs", median <= 5),
            (f"frozen ({tag}): back within 1 s", f"{back:.3f} s", back <= 1.0),
        ]
    for tag, faces in (("sync", "200 threads"), ("async", "200 tasks")):
        ok = f[f"burst_ok_{tag}"]
        late = f[f"frozen200_late_{tag}"]
        ratio = f[f"frozen200_worst_ratio_{tag}"]
        checks += [
            (f"burst ({faces}): all 200 set() succeed", f"{ok:.0f}/200", ok == BURST),
            (
                f"frozen, {faces}: no call started after the first timeout pays",
                f"{late:.0f}",
                late == 0,
            ),
            (f"frozen, {faces}: worst call <= 1.5x the timeout", f"{ratio:.2f}x", ratio <= 1.5),
        ]
    print("\ntargets")
    for label, figure, ok in checks:
        print(f"  {label:<52} {figure:>12}  {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
