"""A vendor goes down and comes back: one circuit breaker per vendor, on a virtual clock.

Runs offline, needs no Redis, and finishes at once because time is a
``ManualClock``. Watch the breaker open after five failures, reject calls
without touching the vendor, probe after the open time, and close again.

    python examples/breaker_vendor_outage.py
"""

from __future__ import annotations

import logging

from argo_perf import (
    CircuitBreakerConfig,
    CircuitBreakerRegistry,
    CircuitOpenError,
    ManualClock,
)
from argo_perf.breaker import Transition, backoff


class VendorDown(Exception):
    """The simulated vendor did not answer."""


def main() -> None:
    logging.basicConfig(level=logging.ERROR)  # the listener below prints the transitions
    clock = ManualClock()
    vendor_up_at = 20.0  # virtual seconds
    calls_to_vendor = 0

    def on_transition(t: Transition) -> None:
        at = clock.monotonic()
        print(f"  t={at:5.1f}s  {t.name}: {t.old.value} -> {t.new.value} ({t.reason})")

    breakers = CircuitBreakerRegistry(
        default=CircuitBreakerConfig(
            failure_threshold=5,
            success_threshold=2,
            timeout=backoff(initial=10.0, maximum=60.0, jitter=0.0),
        ),
        clock=clock,
        listeners=[on_transition],
    )

    @breakers["massive"]
    def fetch_price(symbol: str) -> float:
        nonlocal calls_to_vendor
        calls_to_vendor += 1
        if clock.monotonic() < vendor_up_at:
            raise VendorDown(symbol)
        return 230.0

    served = rejected = failed = 0
    for _cycle in range(30):
        for symbol in ("AAPL", "MSFT"):
            try:
                fetch_price(symbol)
                served += 1
            except CircuitOpenError:
                rejected += 1
            except VendorDown:
                failed += 1
        clock.advance(2.0)

    metrics = breakers["massive"].metrics()
    print(
        f"served {served}, failed {failed}, rejected without calling the vendor {rejected}; "
        f"vendor called {calls_to_vendor} times; state {metrics.state.value}"
    )


if __name__ == "__main__":
    main()
