"""resilient() side by side with the stacks people build from tenacity, pybreaker and friends.

One process, medians of interleaved rounds, nanoseconds per call of overhead
over the bare function (the bare call is measured in the same rounds and
subtracted). Sections (each a function; ``main`` runs them in turn):

* sync happy path: ``resilient`` with a limiter, a breaker and ``retry``
  configured (no cache, no metrics) on a function that succeeds, next to
  tenacity's ``@retry`` alone, pybreaker under tenacity, and limits +
  pybreaker under tenacity (the same three layers built from peers);
* async happy path: the same on a coroutine function, next to tenacity's
  ``@retry`` on a coroutine, aiobreaker under tenacity, and aiolimiter +
  aiobreaker under tenacity;
* the cost of each ``PerformanceMetrics.record_*`` next to prometheus-client's
  own calls (the tables of ``metrics_bench.py``; target: <= 400 ns median);
* Batcher throughput at 200 concurrent callers (the tables of
  ``batch_bench.py``).

Every stack retries up to 3 attempts; nothing fails, so no stack sleeps.

    python benchmarks/compose_bench.py            # full run
    python benchmarks/compose_bench.py --quick    # a short run

Peers come from the ``bench`` extra (``pip install -e '.[bench]'``); a missing
peer is reported and skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import statistics
import sys
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tenacity import Retrying, retry, stop_after_attempt

from argo_perf import CircuitBreaker, TokenBucket, resilient

warnings.filterwarnings("ignore")
logging.getLogger("argo_perf").setLevel(logging.ERROR)

OURS = "argo_perf resilient"
HUGE = 10**9  # limits nobody reaches: the granted path is what is measured
ATTEMPTS = 3


@dataclass(frozen=True)
class Target:
    """What a section's row must meet: at most ``ns`` and ``ratio`` x below ``peer``."""

    ns: float
    peer: str
    ratio: float


RECORD_TARGET_NS = 400.0

TARGETS = {
    "sync happy path": Target(2000.0, "tenacity @retry", 5.0),
    "async happy path": Target(3000.0, "tenacity @retry", 5.0),
}


def plain(symbol: str) -> float:
    return 231.5


async def aplain(symbol: str) -> float:
    return 231.5


class Limited(Exception):
    pass


# -- the contenders ---------------------------------------------------------------


def sync_stacks() -> dict[str, Callable[[str], float]]:
    """Each stack around ``plain``, written as its users write it."""
    stacks: dict[str, Callable[[str], float]] = {}
    stacks[OURS] = resilient(
        "bench",
        limiter=TokenBucket(HUGE, HUGE),
        breaker=CircuitBreaker("bench"),
        retry=Retrying(stop=stop_after_attempt(ATTEMPTS)),
    )(plain)
    stacks["tenacity @retry"] = retry(stop=stop_after_attempt(ATTEMPTS))(plain)
    try:
        import pybreaker

        breaker = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)
        stacks["pybreaker + tenacity"] = retry(stop=stop_after_attempt(ATTEMPTS))(breaker(plain))
    except ImportError:
        print("pybreaker not installed: skipped", file=sys.stderr)
        return stacks
    try:
        import limits

        limiter = limits.strategies.FixedWindowRateLimiter(limits.storage.MemoryStorage())
        item = limits.RateLimitItemPerSecond(HUGE)
        guarded = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)(plain)

        @retry(stop=stop_after_attempt(ATTEMPTS))
        def limited(symbol: str) -> float:
            if not limiter.hit(item, "bench"):
                raise Limited
            return guarded(symbol)

        stacks["limits + pybreaker + tenacity"] = limited
    except ImportError:
        print("limits not installed: skipped", file=sys.stderr)
    return stacks


def async_stacks() -> dict[str, Callable[[str], Awaitable[float]]]:
    stacks: dict[str, Callable[[str], Awaitable[float]]] = {}
    stacks[OURS] = resilient(
        "bench-async",
        limiter=TokenBucket(HUGE, HUGE),
        breaker=CircuitBreaker("bench-async"),
        retry=Retrying(stop=stop_after_attempt(ATTEMPTS)),
    )(aplain)
    stacks["tenacity @retry"] = retry(stop=stop_after_attempt(ATTEMPTS))(aplain)
    try:
        import aiobreaker

        breaker = aiobreaker.CircuitBreaker(fail_max=5)
        stacks["aiobreaker + tenacity"] = retry(stop=stop_after_attempt(ATTEMPTS))(breaker(aplain))
    except ImportError:
        print("aiobreaker not installed: skipped", file=sys.stderr)
        return stacks
    try:
        import aiolimiter

        limiter = aiolimiter.AsyncLimiter(HUGE, 1)
        guarded = aiobreaker.CircuitBreaker(fail_max=5)(aplain)

        @retry(stop=stop_after_attempt(ATTEMPTS))
        async def limited(symbol: str) -> float:
            async with limiter:
                return await guarded(symbol)

        stacks["aiolimiter + aiobreaker + tenacity"] = limited
    except ImportError:
        print("aiolimiter not installed: skipped", file=sys.stderr)
    return stacks


# -- measurement ------------------------------------------------------------------


def time_sync(fn: Callable[[str], Any], n: int) -> float:
    t0 = time.perf_counter_ns()
    for _ in range(n):
        fn("AAPL")
    return (time.perf_counter_ns() - t0) / n


async def time_async(fn: Callable[[str], Awaitable[Any]], n: int) -> float:
    t0 = time.perf_counter_ns()
    for _ in range(n):
        await fn("AAPL")
    return (time.perf_counter_ns() - t0) / n


def overheads(samples: dict[str, list[float]]) -> dict[str, float]:
    """Median per stack minus the median bare call."""
    medians = {name: statistics.median(values) for name, values in samples.items()}
    bare = medians.pop("bare")
    return {name: value - bare for name, value in medians.items()}


# -- sections ---------------------------------------------------------------------


def sync_happy_path(n: int, rounds: int) -> dict[str, float]:
    stacks = {"bare": plain, **sync_stacks()}
    samples: dict[str, list[float]] = {name: [] for name in stacks}
    for _ in range(rounds):
        for name, fn in stacks.items():
            gc.collect()
            samples[name].append(time_sync(fn, n))
    return overheads(samples)


def async_happy_path(n: int, rounds: int) -> dict[str, float]:
    async def run() -> dict[str, float]:
        stacks = {"bare": aplain, **async_stacks()}
        samples: dict[str, list[float]] = {name: [] for name in stacks}
        for _ in range(rounds):
            for name, fn in stacks.items():
                gc.collect()
                samples[name].append(await time_async(fn, n))
        return overheads(samples)

    return asyncio.run(run())


SECTIONS: dict[str, Callable[[int, int], dict[str, float]]] = {
    "sync happy path": sync_happy_path,
    "async happy path": async_happy_path,
}


# -- report -----------------------------------------------------------------------


def report(section: str, values: dict[str, float]) -> bool:
    """Print one section's table; True when its target (if any) is met."""
    ours = values[OURS]
    print(f"## {section} (ns per call over the bare call)\n")
    print(f"| {'stack':<36} | {'overhead':>10} | {'x argo_perf':>11} |")
    print(f"|{'-' * 38}|{'-' * 11}:|{'-' * 12}:|")
    for name, value in sorted(values.items(), key=lambda kv: kv[1]):
        print(f"| {name:<36} | {value:>7.0f} ns | {value / ours:>10.1f}x |")
    target = TARGETS.get(section)
    if target is None:
        print()
        return True
    peer = values.get(target.peer)
    fast = ours <= target.ns
    below = peer is None or peer >= ours * target.ratio
    print(
        f"\n-> argo_perf {ours:.0f} ns, target <= {target.ns:.0f} ns: "
        + ("met" if fast else "MISSED")
        + (
            ""
            if peer is None
            else f"; {peer / ours:.1f}x below {target.peer}, target >= {target.ratio:g}x: "
            + ("met" if below else "MISSED")
        )
        + "\n"
    )
    return fast and below


def observation_and_batching(quick: bool) -> bool:
    """The record_* costs and the Batcher throughput, from their own benchmarks' tables."""
    # Run as a script, this file's folder is on sys.path: the sibling benchmarks import.
    import batch_bench
    import metrics_bench

    costs = metrics_bench.timings(2_000 if quick else 20_000, 7 if quick else 15)
    slowest = max(ns for name, ns in costs.items() if name.startswith("record_"))
    met = slowest <= RECORD_TARGET_NS
    print(
        f"\n-> slowest record_* {slowest:.0f} ns (lambda included), "
        f"target <= {RECORD_TARGET_NS:.0f} ns: " + ("met" if met else "MISSED") + "\n"
    )
    print("## Batcher throughput\n")
    batch_bench.report(batch_bench.batcher_throughput(quick))
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (a few seconds)")
    parser.add_argument(
        "--section", choices=sorted(SECTIONS), action="append", help="run only these sections"
    )
    args = parser.parse_args()
    n, rounds = (5_000, 7) if args.quick else (20_000, 15)
    print(f"python {sys.version.split()[0]}; {rounds} interleaved rounds of {n} calls\n")
    ok = True
    gc.disable()  # no collection pauses inside timed loops (collected between them)
    try:
        for name in args.section or list(SECTIONS):
            ok = report(name, SECTIONS[name](n, rounds)) and ok
    finally:
        gc.enable()
    if not args.section:
        ok = observation_and_batching(args.quick) and ok
    print("all targets met" if ok else "some targets missed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
