"""Quickstart: a price poller built from argo_perf's primitives, on a virtual clock.

Six symbols (stocks and crypto) are polled every 5 seconds for a minute from a
simulated vendor that fails now and then. Each fetch goes through:

* ``cached`` with an ``AdaptiveTTL`` (market hours, crypto 24/7, volatility),
* a ``RateLimiter`` bucket for the vendor,
* a ``CircuitBreaker`` that stops calling the vendor while it is failing.

It runs offline, needs no Redis (set ``ARGO_PERF_REDIS_URL`` to use one) and
finishes at once, because time is a ``ManualClock``.

    python examples/quickstart.py
"""

from __future__ import annotations

import asyncio
import os
import random
from datetime import datetime, timezone

from argo_perf import (
    AdaptiveTTL,
    AsyncRedisCache,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    ManualClock,
    RateLimiter,
    VolatilityTracker,
    cached,
)

SYMBOLS = ["AAPL", "MSFT", "NVDA", "TSLA", "BTC-USD", "ETH-USD"]


class SimulatedVendor:
    """A seeded random walk per symbol; the vendor fails for a stretch mid-run."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.rng = random.Random(7)
        self.prices = {s: 100.0 + 50 * i for i, s in enumerate(SYMBOLS)}
        self.calls = 0

    async def fetch(self, symbol: str) -> float:
        self.calls += 1
        if 20 <= self.clock.monotonic() < 32:  # an outage of 12 virtual seconds
            raise ConnectionError("vendor unavailable")
        self.prices[symbol] *= 1 + self.rng.gauss(0, 0.002)
        return round(self.prices[symbol], 2)


async def main() -> None:
    # Tuesday 2026-01-06, 10:00 in New York: the NYSE is in session.
    clock = ManualClock(datetime(2026, 1, 6, 15, 0, tzinfo=timezone.utc), autoadvance=True)
    vendor = SimulatedVendor(clock)
    volatility = VolatilityTracker(clock=clock)
    ttl = AdaptiveTTL(volatility=volatility, clock=clock)
    cache = AsyncRedisCache(os.environ.get("ARGO_PERF_REDIS_URL"), max_stale=120.0, clock=clock)
    limiter = RateLimiter({"massive": {"requests_per_second": 5, "burst_size": 10}}, clock=clock)
    breaker = CircuitBreaker(
        "massive", CircuitBreakerConfig(failure_threshold=3, timeout=10.0), clock=clock
    )

    @cached(cache, ttl=ttl.ttl_for, key=lambda symbol: f"price:{symbol}")
    async def price(symbol: str) -> float:
        await limiter.wait_for_permission("massive")
        value = await breaker.call_async(vendor.fetch, symbol)
        volatility.observe(symbol, value)
        return value

    print(f"{'time':8} {'vendor calls':>12} {'breaker':>10}  prices")
    for _cycle in range(12):
        started = clock.monotonic()
        calls_before = vendor.calls
        row = []
        for symbol in SYMBOLS:
            try:
                row.append(f"{symbol}={await price(symbol):.2f}")
            except (ConnectionError, CircuitOpenError):
                row.append(f"{symbol}=n/a")
        print(
            f"{clock.now():%H:%M:%S} {vendor.calls - calls_before:>12} "
            f"{breaker.state.name:>10}  {' '.join(row)}"
        )
        clock.advance(max(0.0, 5.0 - (clock.monotonic() - started)))

    stats = cache.stats
    print(
        f"\ncache: {stats.memory_hits + stats.redis_hits} hits, {stats.misses} misses, "
        f"{stats.stale_served} stale values served during the outage; "
        f"vendor called {vendor.calls} times for {12 * len(SYMBOLS)} lookups"
    )
    await cache.close()


if __name__ == "__main__":
    asyncio.run(main())
