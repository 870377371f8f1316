"""Scale curves: what one operation costs, and what one entry weighs, as the work grows.

For each curve the structure is filled with N entries, then operations are
timed on entries drawn at random (CPU time, best of rounds interleaved across
the sizes, next to a plain ``dict.get`` of the same draws: what reaching one
of N entries at random costs the machine before any code runs), and the
memory the structure holds per entry is traced with tracemalloc (the keys and
values the caller already holds are not counted):

- cache, in-process tier (memory-only `RedisCache`): ``get`` of a present key
  and ``set`` of an existing key, 10 to 1,000,000 keys;
- cache, Redis tier (`RedisCache` with ``maxsize=0``, every ``get`` a GET on
  a private redis-server), 10 to 100,000 keys;
- `RateLimiter`: ``try_acquire(source)``, 10 to 10,000 sources;
- `VolatilityTracker`: ``observe(symbol, price)``, 10 to 100,000 symbols;
- `CircuitBreakerRegistry`: ``get(name).call(fn)``, 10 to 10,000 breakers.

Each is also timed on every entry in turn (a service polling its symbols
each cycle), the access pattern that keeps neighbours in the CPU's caches.

The target is a per-operation cost at the largest size at most 1.5x the cost
at the smallest.

    python benchmarks/scale_bench.py            # full run (~2 min)
    python benchmarks/scale_bench.py --quick    # short run, smaller sizes
"""

from __future__ import annotations

import argparse
import functools
import gc
import itertools
import math
import random
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from _markdown import table
from argo_perf import (
    CircuitBreakerRegistry,
    RateLimitConfig,
    RateLimiter,
    RedisCache,
    VolatilityTracker,
)
from argo_perf.testing import RedisServer

TARGET = 1.5
HUGE = 1e9  # a limit nobody reaches: the granted path is what is measured


@dataclass
class Point:
    size: int
    ns: float  # ns per operation
    bytes_per_entry: float
    floor_ns: float  # a plain dict.get of the same draws
    cycle_ns: float  # the same operation on every entry in turn (a polling loop)


def timed(op: Callable[[Any], object], keys: list[Any]) -> float:
    """CPU ns per ``op(key)`` over ``keys``: the process's CPU time, so the time other
    processes hold the core does not count (a shared machine), but memory stalls do."""
    start = time.process_time_ns()
    for key in keys:
        op(key)
    return (time.process_time_ns() - start) / len(keys)


def traced(build: Callable[[], Any]) -> tuple[Any, int]:
    """What ``build()`` returns, and the bytes it still holds once built."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        built = build()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return built, after - before


def draws(names: list[Any], calls: int, seed: int = 7) -> list[Any]:
    """``calls`` names drawn at random (with repeats) from ``names``."""
    rng = random.Random(seed)
    return [names[rng.randrange(len(names))] for _ in range(calls)]


# -- the curves -------------------------------------------------------------------------


Case = tuple[int, Callable[[Any], object], list[Any], int]  # size, op, names, bytes held


def measure(cases: list[Case], calls: int, rounds: int) -> list[Point]:
    """One point per case. Rounds are interleaved across the sizes (after a warm-up
    round), so a busy moment of the machine does not land on one size only."""
    samples = [draws(names, calls) for _, _, names, _ in cases]
    cycles = [list(itertools.islice(itertools.cycle(names), calls)) for _, _, names, _ in cases]
    plains = [dict.fromkeys(names, 0.0) for _, _, names, _ in cases]
    best = [[math.inf] * 3 for _ in cases]
    for round_ in range(rounds + 1):
        for i, (_, op, _, _) in enumerate(cases):
            times = (timed(op, samples[i]), timed(plains[i].get, samples[i]), timed(op, cycles[i]))
            if round_:  # the first round only warms up
                best[i] = [min(pair) for pair in zip(best[i], times, strict=True)]
    return [
        Point(size, best[i][0], held / size, best[i][1], best[i][2])
        for i, (size, _, _, held) in enumerate(cases)
    ]


def cache_curve(sizes: list[int], calls: int, rounds: int) -> dict[str, list[Point]]:
    gets: list[Case] = []
    sets: list[Case] = []
    value = {"price": 231.5}
    for size in sizes:
        keys = [f"quote:{i:07d}" for i in range(size)]

        def build(keys: list[str] = keys) -> RedisCache:
            cache = RedisCache(maxsize=len(keys), default_ttl=None)
            for key in keys:
                cache.set(key, value)
            return cache

        cache, held = traced(build)
        gets.append((size, cache.get, keys, held))
        sets.append((size, functools.partial(_store, cache, value), keys, held))
    return {
        "cache get (in-process tier)": measure(gets, calls, rounds),
        "cache set (in-process tier)": measure(sets, calls // 4, rounds),
    }


def _store(cache: RedisCache, value: object, key: str) -> None:
    cache.set(key, value)


def redis_cache_curve(sizes: list[int], calls: int, rounds: int) -> dict[str, list[Point]]:
    cases: list[Case] = []
    with RedisServer() as server:
        # One database per size, so the rounds can be interleaved.
        for db, size in enumerate(sizes):
            url = f"redis://{server.host}:{server.port}/{db}"
            with server.client() as admin:
                empty = admin.info("memory")["used_memory"]
            cache = RedisCache(url, maxsize=0, default_ttl=None, socket_timeout=2.0)
            keys = [f"quote:{i:07d}" for i in range(size)]
            for start in range(0, size, 1000):
                cache.set_many(dict.fromkeys(keys[start : start + 1000], 231.5))
            with server.client() as admin:
                used = admin.info("memory")["used_memory"]
            cases.append((size, cache.get, keys, used - empty))
        return {"cache get (Redis tier; bytes in redis-server)": measure(cases, calls, rounds)}


def limiter_curve(sizes: list[int], calls: int, rounds: int) -> dict[str, list[Point]]:
    cases: list[Case] = []
    for size in sizes:
        sources = [f"vendor{i:05d}" for i in range(size)]
        configs = dict.fromkeys(sources, RateLimitConfig(HUGE, HUGE))
        limiter, held = traced(lambda configs=configs: RateLimiter(configs))
        cases.append((size, limiter.try_acquire, sources, held))
    return {"RateLimiter.try_acquire": measure(cases, calls, rounds)}


def volatility_curve(sizes: list[int], calls: int, rounds: int) -> dict[str, list[Point]]:
    cases: list[Case] = []
    for size in sizes:
        symbols = [f"SYM{i:06d}" for i in range(size)]

        def build(symbols: list[str] = symbols) -> VolatilityTracker:
            tracker = VolatilityTracker(max_symbols=len(symbols))
            for symbol in symbols:
                tracker.observe(symbol, 100.0)
            return tracker

        tracker, held = traced(build)
        # Alternate two prices: every observation moves the price, none is a repeat.
        prices = itertools.cycle((100.0, 100.5))
        cases.append((size, functools.partial(_observe, tracker, prices), symbols, held))
    return {"VolatilityTracker.observe": measure(cases, calls, rounds)}


def _observe(tracker: VolatilityTracker, prices: Iterator[float], symbol: str) -> None:
    tracker.observe(symbol, next(prices))


def breaker_curve(sizes: list[int], calls: int, rounds: int) -> dict[str, list[Point]]:
    cases: list[Case] = []
    for size in sizes:
        names = [f"vendor{i:05d}" for i in range(size)]

        def build(names: list[str] = names) -> CircuitBreakerRegistry:
            registry = CircuitBreakerRegistry()
            for name in names:
                # A first call, as a service's first poll makes: what a breaker
                # builds on first use (its call path) is held from then on.
                _call(registry, name)
            return registry

        registry, held = traced(build)
        cases.append((size, functools.partial(_call, registry), names, held))
    return {"CircuitBreakerRegistry.get(name).call": measure(cases, calls, rounds)}


def _fetch() -> float:
    return 231.5


def _call(registry: CircuitBreakerRegistry, name: str) -> None:
    registry.get(name).call(_fetch)


# -- report -----------------------------------------------------------------------------


def report(curves: dict[str, list[Point]]) -> list[str]:
    rows = []
    missed = []
    for name, points in curves.items():
        first, last = points[0], points[-1]
        growth = last.ns / first.ns
        if growth > TARGET:
            missed.append(name)
        for p in points:
            rows.append(
                (
                    name,
                    f"{p.size:,}",
                    f"{p.ns:,.0f}",
                    f"{p.ns / first.ns:.2f}x",
                    f"{p.floor_ns:,.0f} ({p.floor_ns / first.floor_ns:.1f}x)",
                    f"{(p.ns - p.floor_ns) / (first.ns - first.floor_ns):.2f}x",
                    f"{p.cycle_ns:,.0f} ({p.cycle_ns / first.cycle_ns:.2f}x)",
                    f"{p.bytes_per_entry:,.0f}",
                )
            )
    table(
        "Scale curves",
        (
            "operation",
            "entries",
            "ns/op",
            "vs smallest",
            "dict.get floor ns",
            "above floor vs smallest",
            "in turn ns (vs smallest)",
            "bytes/entry",
        ),
        rows,
    )
    return missed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer calls")
    parser.add_argument(
        "--only",
        default="cache,redis,limiter,volatility,breaker",
        help="comma-separated curves to run (default: all of them)",
    )
    args = parser.parse_args()
    only = set(args.only.split(","))
    quick = args.quick
    calls, rounds = (20_000, 3) if quick else (100_000, 5)
    top = 100_000 if quick else 1_000_000
    cache_sizes = [n for n in (10, 100, 1_000, 10_000, 100_000, 1_000_000) if n <= top]
    curves: dict[str, list[Point]] = {}
    if "cache" in only:
        curves |= cache_curve(cache_sizes, calls, rounds)
    redis_top = 10_000 if quick else 100_000
    redis_sizes = [n for n in (10, 1_000, 100_000) if n <= redis_top] + ([10_000] if quick else [])
    if "redis" in only:
        curves |= redis_cache_curve(sorted(redis_sizes), max(500, calls // 50), rounds)
    if "limiter" in only:
        curves |= limiter_curve([10, 100, 1_000, 10_000], calls, rounds)
    if "volatility" in only:
        curves |= volatility_curve([10, 100, 1_000, 10_000, 100_000], calls, rounds)
    if "breaker" in only:
        curves |= breaker_curve([10, 100, 1_000, 10_000], calls, rounds)
    missed = report(curves)
    print()
    print("target missed: " + ", ".join(missed) if missed else "every curve met its target")


if __name__ == "__main__":
    main()
