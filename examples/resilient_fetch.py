"""One decorator around a vendor fetch: cache, rate limit, circuit breaker, retry, fallback.

Runs offline, needs no Redis, and finishes at once because time is a
``ManualClock``. A simulated vendor answers, then rate-limits once (a 429 with
Retry-After), then goes down for 40 s and comes back. Watch each request's
outcome: fresh (``ok``), from the cache, retried 2 s later past the 429,
served stale while the vendor is down (three attempts, then none once the
circuit is open), from the fallback once the stale value is too old, and
fresh again after the circuit's probe finds the vendor back.

    python examples/resilient_fetch.py
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

from tenacity import Retrying, stop_after_attempt, wait_fixed

from argo_perf import (
    AsyncRedisCache,
    CircuitBreaker,
    CircuitBreakerConfig,
    ManualClock,
    TokenBucket,
    resilient,
)


class VendorDown(Exception):
    """The simulated vendor did not answer."""


class TooManyRequests(Exception):
    """The simulated vendor's 429: ``retry_after`` seconds before asking again."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"429, retry after {retry_after:g}s")
        self.retry_after = retry_after


class Outcomes:
    """A recorder (the `Recorder` protocol): counts each request's outcome."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def record_request(self, source: str, outcome: str, seconds: float | None = None) -> None:
        self.counts[outcome] += 1

    def track(self, source: str, **primitives: object) -> None:
        print(f"tracking {source}: {', '.join(sorted(k for k, v in primitives.items() if v))}")


async def main() -> None:
    logging.basicConfig(level=logging.CRITICAL)  # the table below tells the story
    clock = ManualClock(autoadvance=True)  # sleeps (backoff, token waits) advance virtual time
    outcomes = Outcomes()
    vendor_calls = 0
    throttled = False

    async def last_close(symbol: str) -> float:
        return 100.0  # e.g. yesterday's close from your database

    @resilient(
        "massive",
        cache=AsyncRedisCache(clock=clock, max_stale=30.0),  # memory-only; pass a redis:// URL
        ttl=10.0,
        limiter=TokenBucket(5, 10, clock=clock),
        breaker=CircuitBreaker(
            "massive", CircuitBreakerConfig(failure_threshold=2, timeout=20.0), clock=clock
        ),
        retry=Retrying(stop=stop_after_attempt(3), wait=wait_fixed(0.5)),
        fallback=last_close,
        metrics=outcomes,
        clock=clock,
    )
    async def price(symbol: str) -> float:
        nonlocal vendor_calls, throttled
        vendor_calls += 1
        now = clock.monotonic()
        if 20.0 <= now < 25.0 and not throttled:
            throttled = True
            raise TooManyRequests(2.0)
        if 30.0 <= now < 70.0:
            raise VendorDown(symbol)
        return 230.0 + now / 100

    print(f"{'t (s)':>6}  {'outcome':<9} {'value':>8}  {'age (s)':>7}  {'vendor calls':>12}")
    for cycle in range(24):
        start = cycle * 5.0
        if clock.monotonic() < start:
            clock.advance(start - clock.monotonic())
        before = vendor_calls
        result = await price.with_meta("AAPL")
        age = "" if result.age is None else f"{result.age:.1f}"
        calls = vendor_calls - before
        print(f"{start:6.0f}  {result.outcome:<9} {result.value:8.2f}  {age:>7}  {calls:>12}")
    print(f"\n{vendor_calls} calls to the vendor for 24 requests")
    print(f"recorded outcomes: {dict(outcomes.counts)}")


if __name__ == "__main__":
    asyncio.run(main())
