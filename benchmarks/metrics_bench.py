"""PerformanceMetrics: the cost of each record_* call, and its memory over millions of records.

One process, one run:

1. median ns per call of every ``record_*`` method (loop overhead included),
   interleaved rounds, next to prometheus-client's own ``Counter.inc``,
   ``Histogram.observe`` and their labelled forms in the same run;
2. the cost of one scrape (``exposition()``) of metrics with 8 sources, 50
   symbol labels, a tracked cache, bucket and breaker;
3. memory: a mix of every ``record_*`` call (200 symbols, 50 labelled, 8
   sources, every outcome) with tracemalloc's traced bytes and the process
   RSS after 100,000 records and after ``--records`` records.

    python benchmarks/metrics_bench.py                      # short run (1e6 records)
    python benchmarks/metrics_bench.py --records 10000000   # the 1e7 figure (~1 min)
"""

from __future__ import annotations

import argparse
import importlib.metadata
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import prometheus_client

from argo_perf import CircuitBreaker, PerformanceMetrics, RedisCache, TokenBucket
from argo_perf._recording import OUTCOMES

SOURCES = [f"source-{n}" for n in range(8)]
SYMBOLS = [f"SYM{n}" for n in range(200)]


def per_call_ns(fns: dict[str, Callable[[], object]], calls: int, rounds: int) -> dict[str, float]:
    """Median ns per call of each fn; rounds interleaved so drift hits all alike."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            samples[name].append((time.perf_counter() - start) / calls * 1e9)
    return {name: statistics.median(values) for name, values in samples.items()}


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0  # not Linux: no figure


def record_mix(metrics: PerformanceMetrics, start: int, stop: int) -> None:
    """Records ``(stop - start) * 10`` calls: every record_* method, fresh floats each time."""
    for i in range(start, stop):
        symbol = SYMBOLS[i % 200]
        source = SOURCES[i % 8]
        seconds = (i % 1000) / 997  # a new float object, as a measured time is
        metrics.record_signal_generation_time(seconds, symbol)
        metrics.record_cache_hit()
        metrics.record_cache_miss()
        metrics.record_skipped_symbol(symbol)
        metrics.record_symbol_processed(symbol)
        metrics.record_api_latency(source, seconds)
        metrics.record_error(source)
        outcome = OUTCOMES[i % 7]
        metrics.record_request(source, outcome, seconds if outcome != "cached" else None)
        metrics.record_request(source, "cached")
        metrics.record_request(source, "ok", seconds)


def timings(calls: int, rounds: int) -> dict[str, float]:
    """Print and return the median ns per call of each ``record_*`` and its peers."""
    metrics = PerformanceMetrics()
    registry = prometheus_client.CollectorRegistry()
    counter = prometheus_client.Counter("bench_calls", "c", registry=registry)
    histogram = prometheus_client.Histogram("bench_seconds", "h", registry=registry)
    labelled = prometheus_client.Counter(
        "bench_requests", "c", ["source", "outcome"], registry=registry
    )
    labelled_histogram = prometheus_client.Histogram(
        "bench_request_seconds", "h", ["source"], registry=registry
    )
    fns: dict[str, Callable[[], object]] = {
        "record_cache_hit()": lambda: metrics.record_cache_hit(),
        "record_cache_miss()": lambda: metrics.record_cache_miss(),
        "record_skipped_symbol()": lambda: metrics.record_skipped_symbol(),
        "record_symbol_processed()": lambda: metrics.record_symbol_processed(),
        "record_signal_generation_time(s)": lambda: metrics.record_signal_generation_time(0.2),
        "record_api_latency(source, s)": lambda: metrics.record_api_latency("massive", 0.12),
        "record_error(source)": lambda: metrics.record_error("massive"),
        'record_request(source, "ok", s)': lambda: metrics.record_request("massive", "ok", 0.12),
        'record_request(source, "cached")': lambda: metrics.record_request("massive", "cached"),
        "prometheus_client Counter.inc()": lambda: counter.inc(),
        "prometheus_client Histogram.observe(s)": lambda: histogram.observe(0.2),
        "prometheus_client Counter.labels(2).inc()": lambda: labelled.labels("massive", "ok").inc(),
        "prometheus_client Histogram.labels(1).observe(s)": lambda: labelled_histogram.labels(
            "massive"
        ).observe(0.12),
        "a lambda calling nothing (loop + lambda overhead)": lambda: None,
    }
    results = per_call_ns(fns, calls, rounds)
    print(f"\n## record_* cost ({rounds} rounds of {calls:,} calls, median ns per call)\n")
    print("Each call through a lambda; the last row is that overhead, included above.\n")
    print("| call | ns |")
    print("| --- | ---: |")
    for name, ns in results.items():
        print(f"| `{name}` | {ns:,.0f} |")
    return results


def scrape_cost(rounds: int) -> None:
    metrics = PerformanceMetrics(symbol_labels=50)
    breaker = CircuitBreaker("source-0")
    metrics.track("source-0", cache=RedisCache(), bucket=TokenBucket(5, 10), breaker=breaker)
    record_mix(metrics, 0, 10_000)
    metrics.exposition()  # the registry is created on first use
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        text = metrics.exposition()
        samples.append(time.perf_counter() - start)
    print(
        f"\none scrape (8 sources, 50 symbol labels + other, tracked cache, bucket, breaker): "
        f"{statistics.median(samples) * 1e3:.2f} ms median, {len(text):,} bytes"
    )


def memory(records: int) -> None:
    tracemalloc.start()
    metrics = PerformanceMetrics(symbol_labels=50)
    checkpoints = sorted({100_000, min(1_000_000, records), records})
    done = 0
    rows = []
    for target in checkpoints:
        record_mix(metrics, done // 10, target // 10)
        done = target
        traced = tracemalloc.get_traced_memory()[0]
        rows.append((target, traced, rss_bytes()))
    tracemalloc.stop()
    print("\n## memory (every record_* method in turn; tracemalloc on from the start)\n")
    print("| records | traced bytes | growth since 1e5 | RSS |")
    print("| ---: | ---: | ---: | ---: |")
    first = rows[0][1]
    for count, traced, rss in rows:
        print(
            f"| {count:,} | {traced / 1024:,.1f} KiB | {traced - first:+,} B "
            f"| {rss / 2**20:,.1f} MiB |"
        )
    # Counters that pass 256 leave CPython's small-int cache and become objects of
    # their own (32 bytes each, once per counter): the growth between the first
    # checkpoints. Nothing is kept per record.


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--records",
        type=int,
        default=1_000_000,
        help="records for the memory figure (default 1e6; the target is stated at 1e7)",
    )
    parser.add_argument("--rounds", type=int, default=15, help="timing rounds (default 15)")
    parser.add_argument("--calls", type=int, default=20_000, help="calls per round (default 2e4)")
    args = parser.parse_args()
    if args.records <= 100_000:
        parser.error("--records must be above 100000 (the first memory checkpoint)")
    client = importlib.metadata.version("prometheus-client")
    print(f"Python {sys.version.split()[0]}, prometheus-client {client}")
    timings(args.calls, args.rounds)
    scrape_cost(args.rounds)
    memory(args.records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
