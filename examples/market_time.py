"""Market time: NYSE hours, adaptive TTLs and skipping unchanged symbols on a virtual clock.

Runs offline and at once: time is a ``ManualClock`` and prices a seeded random walk.

    python examples/market_time.py
"""

from __future__ import annotations

import random
from datetime import date, datetime, timezone

import pytz

from argo_perf import (
    NYSE,
    AdaptiveTTL,
    AdaptiveTTLConfig,
    ChangeGate,
    ManualClock,
    VolatilityTracker,
)

NEW_YORK = pytz.timezone("America/New_York")


def at(hour: int, minute: int = 0, day: int = 27) -> datetime:
    """A New York wall time in November 2026 (the 27th closes early at 13:00)."""
    return NEW_YORK.localize(datetime(2026, 11, day, hour, minute)).astimezone(timezone.utc)


def main() -> None:
    hours = NYSE.session_hours(date(2026, 11, 27))
    assert hours is not None
    print(f"2026-11-27 session (UTC): {hours[0]:%H:%M} to {hours[1]:%H:%M}")
    for when in (at(4, 0), at(9, 29), at(12, 0), at(13, 0), at(17, 0)):
        local = when.astimezone(NEW_YORK)
        print(f"  {local:%H:%M} New York: {NYSE.session_at(when).name}")

    clock = ManualClock(at(9, 28, day=30))
    # Annualized volatility; high from 50 % a year for stocks, 75 % for crypto,
    # after a warm-up of five returns.
    vol = VolatilityTracker(clock=clock)
    ttl = AdaptiveTTL(
        AdaptiveTTLConfig(jitter=0.1), volatility=vol, rng=random.Random(1).random, clock=clock
    )
    gate: ChangeGate[str] = ChangeGate(threshold=0.005, max_age=120.0, clock=clock)

    rng = random.Random(7)
    prices = {"AAPL": 230.0, "BTC-USD": 97_000.0}
    moves = {"AAPL": 0.0004, "BTC-USD": 0.004}  # per 20 s: about 20 % and 200 % a year
    print("cycle  time      symbol    price     vol/yr        ttl     regenerated")
    for cycle in range(10):
        for symbol, price in prices.items():
            price *= 1 + rng.gauss(0, moves[symbol])
            prices[symbol] = price
            annual = vol.observe(symbol, price)
            regenerated = gate.changed(symbol, price)
            if regenerated:
                gate.remember(symbol, price, f"signal for {symbol} at {price:.2f}")
            local = clock.now().astimezone(NEW_YORK)
            print(
                f"{cycle:>5}  {local:%H:%M:%S}  {symbol:8} {price:>10.2f} {annual:>8.0%}"
                f" {ttl.ttl_for(symbol):>8.1f}s  {'yes' if regenerated else 'no (cached)'}"
            )
        clock.advance(20.0)
    print(f"skip rate: {gate.skip_rate:.0f}% of {gate.checks} checks")


if __name__ == "__main__":
    main()
