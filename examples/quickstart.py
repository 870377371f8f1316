"""Quickstart: poll a (simulated) price vendor on a virtual clock.

Runs offline, needs no Redis, and finishes at once because time is a
``ManualClock``: the same injected time every argo_perf primitive uses.

    python examples/quickstart.py
"""

from __future__ import annotations

import random

from argo_perf import ManualClock


def main() -> None:
    clock = ManualClock()
    rng = random.Random(7)
    prices = {"AAPL": 230.0, "BTC-USD": 97_000.0}
    for _cycle in range(3):
        for symbol, price in prices.items():
            prices[symbol] = price * (1 + rng.gauss(0, 0.001))
            print(f"{clock.now():%H:%M:%S} {symbol:8} {prices[symbol]:>12.2f}")
        clock.advance(5.0)
    print(f"done: 3 cycles in {clock.monotonic():.0f} virtual seconds")


if __name__ == "__main__":
    main()
