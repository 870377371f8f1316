"""Refresh the most volatile symbols first, within a deadline: `PriorityScheduler`.

Eight symbols, room for four calls at a time and a 2 s budget per cycle, on a
virtual clock (no waiting). Each cycle starts the most volatile symbols first;
what the deadline cuts is skipped, and a symbol skipped `max_skips` cycles in a
row goes first in the next one, so none is starved. Runs offline.

    python examples/scheduling.py
"""

from __future__ import annotations

import asyncio

from argo_perf import ManualClock, PriorityScheduler, SymbolStatus, VolatilityTracker

MOVES = {"TSLA": 0.04, "NVDA": 0.03, "BTC-USD": 0.02, "AAPL": 0.01}  # the rest barely move
SYMBOLS = ["AAPL", "MSFT", "GOOG", "AMZN", "TSLA", "NVDA", "META", "BTC-USD"]


async def main() -> None:
    clock = ManualClock(autoadvance=True)
    tracker = VolatilityTracker(clock=clock)
    scheduler = PriorityScheduler(tracker, max_skips=2, clock=clock)
    prices = dict.fromkeys(SYMBOLS, 100.0)

    async def refresh(symbol: str) -> float:
        await clock.sleep_async(1.0)  # the vendor takes 1 s
        sign = 1 if int(clock.monotonic()) % 2 else -1
        prices[symbol] *= 1 + sign * MOVES.get(symbol, 0.0001)
        tracker.observe(symbol, prices[symbol])
        return prices[symbol]

    for cycle in range(8):
        order = scheduler.order(SYMBOLS)
        report = await scheduler.run(SYMBOLS, refresh, concurrency=4, deadline=1.5)
        done = [s for s, r in report.items() if r.status is SymbolStatus.DONE]
        print(f"cycle {cycle}: first {order[:4]}, refreshed {len(done)}")
        clock.advance(5.0)

    stats = scheduler.stats
    print(f"runs {stats.runs}, deadlines hit {stats.deadlines}, overdue served {stats.overdue}")


if __name__ == "__main__":
    asyncio.run(main())
