"""The design's TTL table, read back from Redis through `cached` composed as the README shows it.

crypto 10 s volatile / 30 s calm; stocks in session 10 s / 20 s; out of session
300 s, but never past the next open (spread over the minute before it).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import redis

from argo_perf import AdaptiveTTL, AsyncRedisCache, ManualClock, VolatilityTracker, cached

TUESDAY_10_00_NY = datetime(2026, 1, 6, 15, 0, tzinfo=timezone.utc)
TUESDAY_09_26_NY = datetime(2026, 1, 6, 14, 26, tzinfo=timezone.utc)
SATURDAY_NOON_NY = datetime(2026, 1, 10, 17, 0, tzinfo=timezone.utc)

# (symbol, start, volatile, lowest PTTL in seconds, highest PTTL in seconds)
ROWS = [
    ("BTC-USD", SATURDAY_NOON_NY, True, 9.0, 10.0),
    ("BTC-USD", SATURDAY_NOON_NY, False, 29.0, 30.0),
    ("ETH-USD", TUESDAY_10_00_NY, True, 9.0, 10.0),
    ("AAPL", TUESDAY_10_00_NY, True, 9.0, 10.0),
    ("AAPL", TUESDAY_10_00_NY, False, 19.0, 20.0),
    ("AAPL", SATURDAY_NOON_NY, False, 299.0, 300.0),
    ("AAPL", SATURDAY_NOON_NY, True, 299.0, 300.0),
    # Written at 09:27:40 (after 20 polls from 09:26): 140 s to the open, cut
    # at a random instant of the last minute before it, never after it.
    ("NVDA", TUESDAY_09_26_NY, False, 79.0, 140.0),
]


@pytest.mark.parametrize(("symbol", "start", "volatile", "low", "high"), ROWS)
async def test_the_ttl_stored_in_redis_follows_the_table(
    redis_url: str,
    redis_client: redis.Redis,
    symbol: str,
    start: datetime,
    volatile: bool,
    low: float,
    high: float,
) -> None:
    clock = ManualClock(start)
    # The README's composition, with the clock injected.
    volatility = VolatilityTracker(clock=clock)
    ttl = AdaptiveTTL(volatility=volatility, clock=clock)
    cache = AsyncRedisCache(redis_url, clock=clock)
    move = 0.01 if volatile else 0.00005
    last = 100.0

    @cached(cache, ttl=ttl.ttl_for, key=lambda symbol: f"price:{symbol}")
    async def price(symbol: str) -> float:
        volatility.observe(symbol, last)
        return last

    # A history of 5-second polls; prices alternate around 100.
    for step in range(20):
        last = 100.0 * (1 + (move if step % 2 else -move))
        volatility.observe(symbol, last, clock.now())
        clock.advance(5.0)
    last = 100.0 * (1 + (move if volatile else move / 2))
    try:
        assert await price(symbol) == last
    finally:
        await cache.close()
    # Redis keeps a value `max_stale` (default 60 s) past its TTL for stale serving.
    pttl = redis_client.pttl(f"argo_perf:v1:price:{symbol}") / 1000.0 - 60.0
    assert low < pttl <= high, (symbol, start, volatile, pttl)
    if start == TUESDAY_09_26_NY:
        next_open = datetime(2026, 1, 6, 14, 30, tzinfo=timezone.utc)
        assert clock.now() + timedelta(seconds=pttl) <= next_open
