"""Rate limits on a virtual clock: a vendor's 5/s + 25/day tier, fair waiting, a 429.

Runs offline and at once: time is a ``ManualClock``, so waiting costs nothing.

    python examples/rate_limits.py
"""

from __future__ import annotations

import asyncio

from argo_perf import ManualClock, RateLimiter, RateLimitExceeded


async def main() -> None:
    clock = ManualClock(autoadvance=True)
    limiter = RateLimiter(
        {
            "massive": {"requests_per_second": 5, "burst_size": 10},
            "alpha_vantage": {
                "requests_per_second": 5,
                "burst_size": 5,
                "quotas": [{"limit": 25, "period": 86400}],
            },
        },
        clock=clock,
    )

    # 40 symbols through a 5/s limit with bursts of 10: the first 10 at once,
    # then one every 0.2 s, in the order they asked.
    for _symbol in range(40):
        await limiter.wait_for_permission("massive")
    print(f"massive: 40 requests done after {clock.monotonic():.1f} virtual seconds")

    # The free tier: 25 a day, however fast the per-second window refills.
    granted = 0
    for _ in range(100):
        granted += limiter.try_acquire("alpha_vantage")
        clock.advance(1)
    print(f"alpha_vantage: {granted} of 100 requests granted (daily quota 25)")

    # The vendor answered 429 with Retry-After: 30.
    limiter.penalize("massive", 30)
    try:
        await limiter.wait_for_permission("massive", timeout=5)
    except RateLimitExceeded as exc:
        print(f"massive: refused at once, retry after {exc.retry_after:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
