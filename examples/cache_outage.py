"""A price cache that keeps serving while the vendor and Redis are in trouble.

Uses a private redis-server (argo_perf.testing.RedisServer) when the binary is
installed, and a memory-only cache otherwise; time is a ManualClock, so the
script finishes at once.

    python examples/cache_outage.py
"""

from __future__ import annotations

import logging

from argo_perf import ManualClock, RedisCache, cached
from argo_perf.testing import RedisServer, RedisServerError


def run(cache: RedisCache, clock: ManualClock, server: RedisServer | None) -> None:
    vendor_up = True
    calls = 0

    def fetch_price(symbol: str) -> float:
        nonlocal calls
        calls += 1
        if not vendor_up:
            raise ConnectionError("vendor timed out")
        return 231.5 + calls

    price = cached(cache, ttl=10.0, key=lambda symbol: f"price:{symbol}")(fetch_price)

    print(f"backend={cache.backend}: AAPL {price('AAPL')} (vendor calls: {calls})")
    print(f"again, from the in-process tier: {price('AAPL')} (vendor calls: {calls})")

    clock.advance(12.0)  # past the TTL
    vendor_up = False
    if server is not None:
        server.kill()  # Redis goes away too
    meta = cache.get_with_meta("price:AAPL", lambda: fetch_price("AAPL"))
    assert meta is not None
    print(
        f"vendor down: served {meta.value} from {meta.source}, "
        f"{meta.age:.0f}s old, stale={meta.stale}"
    )
    for _ in range(5):
        price("AAPL")
    stats = cache.stats
    print(
        f"backend={cache.backend}: stale served {stats.stale_served}, "
        f"redis errors {stats.redis_errors}, calls that skipped Redis {stats.short_circuited}"
    )


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="  log: %(message)s")
    clock = ManualClock()
    try:
        server: RedisServer | None = RedisServer().start()
    except RedisServerError:
        server = None
    try:
        url = server.url if server is not None else None
        with RedisCache(url, namespace="example", max_stale=60.0, clock=clock) as cache:
            run(cache, clock, server)
    finally:
        if server is not None:
            server.close()


if __name__ == "__main__":
    main()
