"""The health payload and Prometheus metrics: `PerformanceMetrics`.

Records a few cycles of a service (signal times, cache hits and misses,
skipped symbols, vendor requests with their outcomes), tracks a cache and a
circuit breaker, then prints the health payload served at GET /api/v1/health
and, when the `prometheus` extra is installed, a few lines of the exposition
served at GET /metrics. Runs offline.

    python examples/metrics_health.py
"""

from __future__ import annotations

import json

from argo_perf import CircuitBreaker, ManualClock, PerformanceMetrics, RedisCache


def main() -> None:
    clock = ManualClock()
    metrics = PerformanceMetrics(clock=clock)
    cache = RedisCache(clock=clock, namespace="prices")
    breaker = CircuitBreaker("massive", clock=clock)
    metrics.track("massive", cache=cache, breaker=breaker)

    for cycle in range(10):
        for symbol in ("AAPL", "MSFT", "BTC-USD"):
            if cache.get(symbol) is None:
                cache.set(symbol, 100.0 + cycle, ttl=12.0)
                metrics.record_request("massive", "ok", 0.12)
            else:
                metrics.record_request("massive", "cached")
            if cycle % 3 == 2 and symbol == "MSFT":
                metrics.record_skipped_symbol()
            else:
                metrics.record_symbol_processed()
                metrics.record_signal_generation_time(0.25)
        clock.advance(5.0)

    summary = metrics.get_summary()
    print(json.dumps(summary, indent=1))
    print(f"cache hit rate: {summary['cache_hit_rate']:.1f} %")
    try:
        text = metrics.exposition().decode()
    except ImportError as exc:  # without the prometheus extra
        print(exc)
        return
    for line in text.splitlines():
        if line.startswith(("argo_cache_hits_total", 'argo_data_source_status{source="massive"}')):
            print(line)


if __name__ == "__main__":
    main()
