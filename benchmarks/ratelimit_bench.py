"""Rate limiting side by side: argo_perf against limits, pyrate-limiter and aiolimiter.

One process, one run, medians of interleaved rounds:

1. in process, a granted ``try_acquire`` (ns per call);
2. in process, ``acquire_async`` with tokens available (ns per call);
3. against one private redis-server, acquire throughput from one client,
   compared with a no-op ``EVALSHA`` (same client settings and arguments),
   the floor any one-round-trip limiter stands on;
4. accuracy: 4 processes hammering one shared limit of 50/s burst 50 for
   10 s, started together on Redis time, one of them with its clock 2 s ahead.

    python benchmarks/ratelimit_bench.py            # full run (~1.5 min)
    python benchmarks/ratelimit_bench.py --quick    # short run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import aiolimiter
import limits
import limits.aio.storage
import limits.aio.strategies
import limits.storage
import limits.strategies
import pyrate_limiter
import redis

from _markdown import table
from argo_perf import RedisTokenBucket, TokenBucket
from argo_perf._redis import sync_client
from argo_perf.testing import RedisServer

HUGE = 10**9  # limits nobody reaches: the granted path is what is measured


def sync_samples(
    fns: dict[str, Callable[[], object]], calls: int, rounds: int
) -> dict[str, list[float]]:
    """ns per call of each fn per round; rounds interleaved so drift hits all alike."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            samples[name].append((time.perf_counter() - start) / calls * 1e9)
    return samples


def sync_rounds(fns: dict[str, Callable[[], object]], calls: int, rounds: int) -> dict[str, float]:
    """Median ns per call of each fn."""
    samples = sync_samples(fns, calls, rounds)
    return {name: statistics.median(values) for name, values in samples.items()}


def async_rounds(fns: dict[str, Callable[[], Any]], calls: int, rounds: int) -> dict[str, float]:
    async def run() -> dict[str, float]:
        samples: dict[str, list[float]] = {name: [] for name in fns}
        for _ in range(rounds):
            for name, fn in fns.items():
                start = time.perf_counter()
                for _ in range(calls):
                    await fn()
                samples[name].append((time.perf_counter() - start) / calls * 1e9)
        return {name: statistics.median(values) for name, values in samples.items()}

    return asyncio.run(run())


def in_process(quick: bool) -> None:
    ours = TokenBucket(HUGE * 1000, HUGE)
    item = limits.RateLimitItemPerSecond(HUGE)
    fixed = limits.strategies.FixedWindowRateLimiter(limits.storage.MemoryStorage())
    moving = limits.strategies.MovingWindowRateLimiter(limits.storage.MemoryStorage())
    pyrate = pyrate_limiter.Limiter(
        pyrate_limiter.InMemoryBucket([pyrate_limiter.Rate(HUGE, pyrate_limiter.Duration.SECOND)])
    )
    calls, rounds = (2_000, 15) if quick else (20_000, 31)
    results = sync_rounds(
        {
            "argo_perf TokenBucket.try_acquire": ours.try_acquire,
            "limits FixedWindow (memory) hit": lambda: fixed.hit(item, "fixed"),
            "limits MovingWindow (memory) hit": lambda: moving.hit(item, "moving"),
            "pyrate-limiter InMemoryBucket try_acquire": lambda: pyrate.try_acquire(
                "k", blocking=False
            ),
        },
        calls,
        rounds,
    )
    base = results["argo_perf TokenBucket.try_acquire"]
    table(
        "In process: granted try_acquire (target <= 400 ns)",
        ("limiter", "median ns/call", "x argo_perf"),
        [(name, f"{ns:.0f}", f"{ns / base:.2f}") for name, ns in results.items()],
    )

    aio_ours = TokenBucket(HUGE * 1000, HUGE)
    aio_peer = aiolimiter.AsyncLimiter(HUGE * 1000, 1)
    aio_moving = limits.aio.strategies.MovingWindowRateLimiter(limits.aio.storage.MemoryStorage())
    results = async_rounds(
        {
            "argo_perf TokenBucket.acquire_async": aio_ours.acquire_async,
            "aiolimiter AsyncLimiter.acquire": aio_peer.acquire,
            "limits.aio MovingWindow (memory) hit": lambda: aio_moving.hit(item, "k"),
        },
        calls,
        rounds,
    )
    base = results["argo_perf TokenBucket.acquire_async"]
    table(
        "In process: acquire_async with tokens available (target <= 600 ns)",
        ("limiter", "median ns/call", "x argo_perf"),
        [(name, f"{ns:.0f}", f"{ns / base:.2f}") for name, ns in results.items()],
    )


_NOOP = "return 0"
# What any limiter on Redis time must do at least: read the time and the state,
# write the state. No decision logic; a second reference line below the floor.
_BARE = "redis.call('TIME') redis.call('GET', KEYS[1]) redis.call('INCRBY', KEYS[1], 1) return 0"


def over_redis(server: RedisServer, quick: bool) -> None:
    ours = RedisTokenBucket(server.url, "bench", HUGE, HUGE)
    noop_client, _ = sync_client(server.url)
    noop_sha = noop_client.script_load(_NOOP)
    ours.try_acquire()  # loads our script
    noop_args = ours._args(b"r", 1, 0.0)[1:]  # the very arguments our acquire sends

    bare_sha = noop_client.script_load(_BARE)
    bare_args = [1, "bare-reference", *noop_args[1 + noop_args[0] :]]  # our ARGV, one key

    def noop() -> object:
        return noop_client.execute_command("EVALSHA", noop_sha, *noop_args)

    def bare() -> object:
        return noop_client.execute_command("EVALSHA", bare_sha, *bare_args)

    item = limits.RateLimitItemPerSecond(HUGE)
    storage = limits.storage.storage_from_string(server.url)
    fixed = limits.strategies.FixedWindowRateLimiter(storage)
    moving = limits.strategies.MovingWindowRateLimiter(storage)
    pyrate = pyrate_limiter.Limiter(
        pyrate_limiter.RedisBucket.init(
            [pyrate_limiter.Rate(HUGE, pyrate_limiter.Duration.SECOND)],
            redis.Redis.from_url(server.url),
            "pyrate-bench",
        )
    )
    fns: dict[str, Callable[[], object]] = {
        "no-op EVALSHA (floor)": noop,
        "reference: script doing only TIME + GET + INCRBY": bare,
        "argo_perf RedisTokenBucket.try_acquire": ours.try_acquire,
        "limits FixedWindow (redis) hit": lambda: fixed.hit(item, "fixed"),
        "limits MovingWindow (redis) hit": lambda: moving.hit(item, "moving"),
        "pyrate-limiter RedisBucket try_acquire": lambda: pyrate.try_acquire("k", blocking=False),
    }
    for fn in fns.values():
        fn()  # connect, load scripts
    calls, rounds = (100, 21) if quick else (200, 151)
    samples = sync_samples(fns, calls, rounds)
    floor = samples["no-op EVALSHA (floor)"]
    # Each round's ratio compares calls made within milliseconds of each other,
    # so load from other processes on the machine cancels out of it.
    table(
        "Redis, one client: acquire throughput vs a no-op EVALSHA (target >= 0.93x)",
        ("limiter", "median us/call", "calls/s", "x no-op EVALSHA (median of rounds)"),
        [
            (
                name,
                f"{statistics.median(values) / 1000:.1f}",
                f"{1e9 / statistics.median(values):,.0f}",
                f"{statistics.median(f / v for f, v in zip(floor, values, strict=True)):.3f}",
            )
            for name, values in samples.items()
        ],
    )
    assert ours.stats.errors == 0
    assert ours.stats.fallback_calls == 0
    ours.close()


# -- accuracy: several processes, one limit -------------------------------------

RATE, BURST, PROCESSES = 50, 50, 4


def worker(args: argparse.Namespace) -> None:
    """One hammering process: wait for the common start on Redis time, run, report."""
    client = redis.Redis.from_url(args.url)
    seconds, micros = client.time()
    offset = seconds + micros / 1e6 - time.time()  # Redis time minus this host's time
    real_time = time.time
    if args.skew:
        # This process's wall clock runs ahead: peers that take the time from the
        # client see it; argo_perf takes it from Redis.
        time.time = lambda: real_time() + args.skew  # type: ignore[assignment]
    start_at, stop_at = args.start, args.start + args.seconds
    time.sleep(max(0.0, start_at - (real_time() + offset)))
    granted = 0
    if args.impl == "argo_perf":
        bucket = RedisTokenBucket(args.url, "accuracy", RATE, BURST)
        bucket.try_acquire(0.001)  # connect and load the script before the start
        time.sleep(max(0.0, start_at - (real_time() + offset)))
        while (now := real_time() + offset) < stop_at:
            if args.mode == "try":
                granted += bucket.try_acquire()
            else:
                granted += bucket.acquire(timeout=stop_at - now)
        errors = bucket.stats.errors + bucket.stats.fallback_calls
    elif args.impl == "limits":
        item = limits.RateLimitItemPerSecond(RATE)
        limiter = limits.strategies.MovingWindowRateLimiter(
            limits.storage.storage_from_string(args.url)
        )
        while real_time() + offset < stop_at:
            granted += limiter.hit(item, "accuracy")
        errors = 0
    else:
        limiter = pyrate_limiter.Limiter(
            pyrate_limiter.RedisBucket.init(
                [pyrate_limiter.Rate(RATE, pyrate_limiter.Duration.SECOND)],
                redis.Redis.from_url(args.url),
                "accuracy-pyrate",
            )
        )
        while real_time() + offset < stop_at:
            granted += bool(limiter.try_acquire("accuracy", blocking=False))
        errors = 0
    print(json.dumps({"granted": granted, "errors": errors}))


def accuracy(server: RedisServer, seconds: float) -> None:
    client = server.client()
    limit = BURST + RATE * seconds
    rows = []
    runs = [("argo_perf", "try"), ("argo_perf", "wait"), ("limits", "try"), ("pyrate", "try")]
    for impl, mode in runs:
        client.flushall()
        now_s, now_us = client.time()
        start = now_s + now_us / 1e6 + 2.0  # time for the processes to start
        procs = [
            subprocess.Popen(
                [
                    *(sys.executable, __file__, "--worker"),
                    *("--url", server.url, "--impl", impl, "--mode", mode),
                    *("--start", repr(start), "--seconds", repr(seconds)),
                    *("--skew", "2" if i == PROCESSES - 1 else "0"),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in range(PROCESSES)
        ]
        reports = [json.loads(proc.communicate(timeout=seconds + 60)[0]) for proc in procs]
        grants = [r["granted"] for r in reports]
        total = sum(grants)
        share = total / PROCESSES
        spread = max(abs(g - share) / share for g in grants) if share else float("inf")
        rows.append(
            (
                f"{impl} ({mode})",
                total,
                f"{total / limit:.1%}",
                "/".join(map(str, grants)),
                f"{spread:.0%}",
                f"{grants[-1] / share:.2f}" if share else "-",
                sum(r["errors"] for r in reports),
            )
        )
    table(
        f"Accuracy: {PROCESSES} processes, {RATE}/s burst {BURST}, {seconds:g} s, "
        f"limit {limit:g} (last process: clock 2 s ahead)",
        (
            "limiter",
            "granted",
            "of limit",
            "per process",
            "max deviation from equal share",
            "skewed process / share",
            "errors",
        ),
        rows,
    )
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--impl", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--skew", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    print(f"# ratelimit benchmark (python {sys.version.split()[0]}, limits {limits.__version__})")
    in_process(args.quick)
    with RedisServer() as server:
        over_redis(server, args.quick)
        accuracy(server, 2.0 if args.quick else 10.0)


if __name__ == "__main__":
    main()
