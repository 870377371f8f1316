"""Live reconfiguration: limits, a breaker and TTLs changed from a watched file.

Runs offline and at once: time is a ``ManualClock`` and the file a temporary one.

    python examples/live_config.py
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

from argo_perf import (
    AdaptiveTTL,
    CircuitBreakerRegistry,
    ConfigError,
    LiveConfig,
    ManualClock,
    RateLimiter,
)


def write(path: Path, settings: object) -> None:
    """Replace the file in one step, as a configuration manager does."""
    partial = path.with_suffix(".part")
    partial.write_text(json.dumps(settings), encoding="utf-8")
    partial.replace(path)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    clock = ManualClock()
    limiter = RateLimiter(clock=clock)  # the seed limits: xai 1/s, burst 5
    breakers = CircuitBreakerRegistry(clock=clock)
    ttl = AdaptiveTTL(clock=clock)
    live = LiveConfig(limiter, breakers, ttl, clock=clock)

    # In code: validated as a whole, only what differs changes.
    for change in live.apply({"rate_limits": {"xai": {"requests_per_second": 2}}}):
        print(f"applied {change}")
    try:
        live.apply({"rate_limits": {"xai": {"burst_size": 10}}, "ttl": {"stock_ttl": -1}})
    except ConfigError as exc:
        print(f"refused, nothing changed: {exc}")
    print(f"xai: {limiter.config('xai')}")

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "live.json"
        write(path, {"breakers": {"xai": {"failure_threshold": 3, "timeout": 30.0}}})
        with live.watch(path, interval=5.0) as watcher:
            print(f"breaker xai: timeout {breakers.config('xai').timeout} s")

            # The thread checks every 5 s of the clock; check() is one such check, now.
            write(path, {"ttl": {"stock_ttl": "fifteen"}})  # a bad version: logged once
            watcher.check()
            print(f"bad version kept out: {watcher.last_error}")

            write(path, {"ttl": {"stock_ttl": 15.0}})  # the next good one applies
            watcher.check()
            print(f"AAPL in session: TTL {ttl.ttl_for('AAPL')} s")


if __name__ == "__main__":
    main()
