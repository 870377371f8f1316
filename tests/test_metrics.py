"""PerformanceMetrics: the health payload, the Recorder contract, tracked primitives, bounds."""

from __future__ import annotations

import doctest
import math
import subprocess
import sys
import threading
import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import argo_perf.metrics
from argo_perf import (
    AsyncRedisCache,
    CircuitBreaker,
    ConfigError,
    ManualClock,
    PerformanceMetrics,
    RedisCache,
    TokenBucket,
    get_performance_metrics,
)
from argo_perf._recording import OUTCOMES, Recorder

HEALTH_PAYLOAD_KEYS = {
    "uptime_seconds",
    "avg_signal_generation_time",
    "cache_hit_rate",
    "skip_rate",
    "total_cache_hits",
    "total_cache_misses",
    "total_skipped_symbols",
    "total_symbols_processed",
    "avg_api_latency",
    "data_source_latencies",
}


def test_summary_has_exactly_the_health_payload_keys() -> None:
    summary = PerformanceMetrics().get_summary()
    assert set(summary) == HEALTH_PAYLOAD_KEYS
    assert type(summary) is dict


def test_an_empty_summary_is_all_zeros() -> None:
    summary = PerformanceMetrics(clock=ManualClock()).get_summary()
    assert summary == {
        "uptime_seconds": 0.0,
        "avg_signal_generation_time": 0.0,
        "cache_hit_rate": 0.0,
        "skip_rate": 0.0,
        "total_cache_hits": 0,
        "total_cache_misses": 0,
        "total_skipped_symbols": 0,
        "total_symbols_processed": 0,
        "avg_api_latency": 0.0,
        "data_source_latencies": {},
    }


def test_summary_reports_the_seed_payload_figures() -> None:
    clock = ManualClock()
    metrics = PerformanceMetrics(clock=clock)
    for _ in range(1000):
        metrics.record_cache_hit()
    for _ in range(250):
        metrics.record_cache_miss()
    for _ in range(350):
        metrics.record_skipped_symbol()
    for _ in range(1000):
        metrics.record_symbol_processed()
    metrics.record_signal_generation_time(0.2)
    metrics.record_signal_generation_time(0.3)
    metrics.record_api_latency("massive", 0.12)
    metrics.record_api_latency("alpha_vantage", 0.2)
    metrics.record_api_latency("alpha_vantage", 0.3)
    clock.advance(3600)
    summary = metrics.get_summary()
    assert summary["uptime_seconds"] == 3600.0
    assert summary["cache_hit_rate"] == 80.0  # percent, not a fraction
    assert summary["skip_rate"] == 35.0  # skipped / processed, as in the design's payload
    assert summary["total_cache_hits"] == 1000
    assert summary["total_cache_misses"] == 250
    assert summary["total_skipped_symbols"] == 350
    assert summary["total_symbols_processed"] == 1000
    assert summary["avg_signal_generation_time"] == pytest.approx(0.25)
    assert summary["data_source_latencies"] == pytest.approx(
        {"massive": 0.12, "alpha_vantage": 0.25}
    )
    assert summary["avg_api_latency"] == pytest.approx((0.12 + 0.2 + 0.3) / 3)


def test_averages_cover_only_the_most_recent_window() -> None:
    metrics = PerformanceMetrics(window=3)
    for seconds in (10.0, 1.0, 2.0, 3.0):
        metrics.record_signal_generation_time(seconds)
        metrics.record_api_latency("massive", seconds)
    summary = metrics.get_summary()
    assert summary["avg_signal_generation_time"] == 2.0
    assert summary["data_source_latencies"] == {"massive": 2.0}
    assert summary["avg_api_latency"] == 2.0


@settings(max_examples=50, deadline=None)
@given(
    window=st.integers(1, 20),
    samples=st.lists(st.floats(0, 100, allow_nan=False), max_size=60),
)
def test_average_is_the_mean_of_the_last_window_samples(window: int, samples: list[float]) -> None:
    metrics = PerformanceMetrics(window=window)
    for seconds in samples:
        metrics.record_signal_generation_time(seconds)
    recent = samples[-window:]
    expected = sum(recent) / len(recent) if recent else 0.0
    assert metrics.get_summary()["avg_signal_generation_time"] == pytest.approx(expected)


def test_api_latency_is_a_successful_request_and_error_a_failed_one() -> None:
    clock = ManualClock()
    by_hand, by_recorder = PerformanceMetrics(clock=clock), PerformanceMetrics(clock=clock)
    by_hand.record_api_latency("xai", 0.5)
    by_hand.record_error("xai")
    by_recorder.record_request("xai", "ok", 0.5)
    by_recorder.record_request("xai", "error")
    assert by_hand.get_summary() == by_recorder.get_summary()
    assert by_hand._snapshot() == by_recorder._snapshot()
    requests = by_hand._snapshot().sources["xai"].requests
    assert requests["ok"] == 1
    assert requests["error"] == 1


def test_every_request_given_seconds_feeds_the_latencies_whatever_its_outcome() -> None:
    metrics = PerformanceMetrics()
    metrics.record_request("sonar", "ok", 1.0)
    metrics.record_request("sonar", "error", 3.0)  # a slow failure is latency too
    metrics.record_request("sonar", "cached")  # the source was not called
    metrics.record_request("sonar", "rate_limited")
    assert metrics.get_summary()["data_source_latencies"] == {"sonar": 2.0}


def test_a_source_without_latencies_is_not_in_the_latency_map() -> None:
    metrics = PerformanceMetrics()
    metrics.record_error("xai")
    metrics.record_request("massive", "cached")
    assert metrics.get_summary()["data_source_latencies"] == {}


def test_performance_metrics_is_a_recorder() -> None:
    recorder: Recorder = PerformanceMetrics()
    for outcome in OUTCOMES:
        recorder.record_request("massive", outcome, None)
    recorder.track("massive", cache=RedisCache(), bucket=TokenBucket(1, 1))
    assert isinstance(recorder, PerformanceMetrics)


@pytest.mark.parametrize("outcome", ["OK", "timeout", "", None])
def test_an_unknown_outcome_is_refused(outcome: Any) -> None:
    with pytest.raises(ValueError, match="outcome="):
        PerformanceMetrics().record_request("massive", outcome)


@pytest.mark.parametrize("seconds", [-0.001, math.nan, math.inf])
def test_impossible_durations_are_refused_and_name_the_value(seconds: float) -> None:
    clock = ManualClock()
    metrics = PerformanceMetrics(clock=clock)
    calls = [
        lambda: metrics.record_signal_generation_time(seconds),
        lambda: metrics.record_api_latency("massive", seconds),
        lambda: metrics.record_request("massive", "ok", seconds),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=r"seconds=.*must be >= 0 and finite"):
            call()
    assert metrics.get_summary() == PerformanceMetrics(clock=clock).get_summary()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("window", 0),
        ("window", 1.5),
        ("window", True),
        ("max_sources", 0),
        ("symbol_labels", -1),
        ("symbol_labels", "10"),
    ],
)
def test_bad_settings_fail_at_construction_naming_parameter_and_value(
    name: str, value: object
) -> None:
    with pytest.raises(ConfigError) as caught:
        PerformanceMetrics(**{name: value})  # type: ignore[arg-type]
    assert name in str(caught.value)
    assert repr(value) in str(caught.value)


def test_sources_past_max_sources_are_counted_as_other() -> None:
    metrics = PerformanceMetrics(max_sources=2)
    for source in ("a", "b", "c", "d"):
        metrics.record_api_latency(source, 1.0)
    metrics.record_api_latency("d", 3.0)
    latencies = metrics.get_summary()["data_source_latencies"]
    assert latencies == pytest.approx({"a": 1.0, "b": 1.0, "other": 5.0 / 3})
    metrics.track("e", bucket=TokenBucket(1, 1))
    assert set(metrics._snapshot().buckets) == {"other"}


def test_symbols_are_ignored_unless_per_symbol_labels_are_on() -> None:
    metrics = PerformanceMetrics()
    metrics.record_symbol_processed("AAPL")
    metrics.record_skipped_symbol("MSFT")
    metrics.record_signal_generation_time(0.1, "AAPL")
    snapshot = metrics._snapshot()
    assert set(snapshot.symbols) == {""}
    assert not snapshot.symbol_labels
    assert snapshot.symbols[""].processed == 1
    assert snapshot.symbols[""].skipped == 1


def test_symbols_past_the_label_bound_are_counted_as_other() -> None:
    metrics = PerformanceMetrics(symbol_labels=2)
    for symbol in ("AAPL", "MSFT", "NVDA", "BTC-USD", "AAPL"):
        metrics.record_symbol_processed(symbol)
    metrics.record_skipped_symbol()
    snapshot = metrics._snapshot()
    processed = {name: data.processed for name, data in snapshot.symbols.items()}
    assert processed == {"": 0, "AAPL": 2, "MSFT": 1, "other": 2}
    assert metrics.get_summary()["total_symbols_processed"] == 5
    assert metrics.get_summary()["total_skipped_symbols"] == 1


def test_tracked_cache_hits_add_to_hand_recorded_ones_and_count_once() -> None:
    cache = RedisCache()
    metrics = PerformanceMetrics()
    metrics.track("massive", cache=cache)
    metrics.track("xai", cache=cache)  # one cache in front of two sources
    metrics.track("massive", cache=cache)  # tracked again by a second decorator
    cache.set("AAPL", 1.0)
    cache.get("AAPL")
    cache.get("AAPL")
    cache.get("MSFT")
    metrics.record_cache_hit()  # a lookup of the service's own
    metrics.record_request("massive", "cached")  # a request outcome, not a second hit
    summary = metrics.get_summary()
    assert summary["total_cache_hits"] == 3
    assert summary["total_cache_misses"] == 1
    assert summary["cache_hit_rate"] == 75.0


async def test_an_async_cache_is_tracked_like_a_sync_one() -> None:
    cache = AsyncRedisCache()
    metrics = PerformanceMetrics()
    metrics.track("xai", cache=cache)
    await cache.set("AAPL", 1.0)
    await cache.get("AAPL")
    await cache.get("MSFT")
    summary = metrics.get_summary()
    assert (summary["total_cache_hits"], summary["total_cache_misses"]) == (1, 1)
    await cache.close()


def test_every_distinct_tracked_cache_is_counted() -> None:
    first, second = RedisCache(namespace="prices"), RedisCache(namespace="prices")
    metrics = PerformanceMetrics()
    metrics.track("massive", cache=first)
    metrics.track("xai", cache=second)
    first.get("x")
    second.get("y")
    assert metrics.get_summary()["total_cache_misses"] == 2
    assert len(metrics._snapshot().caches["prices"]) == 2


def test_tracking_reads_nothing_until_collected() -> None:
    class Watched(TokenBucket):
        reads = 0

        @property
        def stats(self) -> Any:
            Watched.reads += 1
            return super().stats

    metrics = PerformanceMetrics()
    metrics.track("massive", bucket=Watched(1, 1))
    metrics.record_request("massive", "ok", 0.1)
    metrics.get_summary()  # the summary reads caches only
    assert Watched.reads == 0
    metrics._snapshot()
    assert Watched.reads == 1


def test_a_tracked_object_is_reported_once_under_the_first_source() -> None:
    breaker = CircuitBreaker("vendor")
    metrics = PerformanceMetrics()
    metrics.track("massive", breaker=breaker)
    metrics.track("xai", breaker=breaker)
    snapshot = metrics._snapshot()
    assert list(snapshot.breakers) == ["massive"]
    assert set(snapshot.sources) == {"massive", "xai"}


def test_threads_recording_at_once_lose_nothing() -> None:
    metrics = PerformanceMetrics(symbol_labels=4)
    threads_count, rounds = 8, 2000
    start = threading.Barrier(threads_count)

    def work(number: int) -> None:
        start.wait()
        source = f"source-{number % 3}"
        for index in range(rounds):
            metrics.record_cache_hit()
            metrics.record_cache_miss()
            metrics.record_skipped_symbol(f"S{index % 6}")
            metrics.record_symbol_processed()
            metrics.record_signal_generation_time(0.01, f"S{index % 6}")
            metrics.record_api_latency(source, 0.1)
            metrics.record_error(source)
            metrics.record_request(source, "cached")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = threads_count * rounds
    summary = metrics.get_summary()
    assert summary["total_cache_hits"] == total
    assert summary["total_cache_misses"] == total
    assert summary["total_skipped_symbols"] == total
    assert summary["total_symbols_processed"] == total
    snapshot = metrics._snapshot()
    assert sum(sum(data.durations.counts) for data in snapshot.symbols.values()) == total
    requests = [data.requests for data in snapshot.sources.values()]
    for outcome in ("ok", "error", "cached"):
        assert sum(counts[outcome] for counts in requests) == total
    assert sum(sum(data.durations.counts) for data in snapshot.sources.values()) == total


def test_memory_stays_flat_however_many_records() -> None:
    metrics = PerformanceMetrics(window=100, symbol_labels=10)

    def record(times: int) -> None:
        for index in range(times):
            metrics.record_signal_generation_time(index % 7 / 10, f"S{index % 50}")
            metrics.record_api_latency(f"source-{index % 100}", index % 5 / 10)
            metrics.record_cache_hit()
            metrics.record_skipped_symbol(f"S{index % 50}")

    tracemalloc.start()
    try:
        record(20_000)  # every window full (200 samples a source), every label seen
        before = tracemalloc.get_traced_memory()[0]
        record(50_000)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < 50_000  # under a byte a record: nothing is kept per record


def test_uptime_comes_from_the_injected_clock() -> None:
    clock = ManualClock()
    metrics = PerformanceMetrics(clock=clock)
    clock.advance(12.5)
    assert metrics.get_summary()["uptime_seconds"] == 12.5


def test_the_process_wide_metrics_are_one_object() -> None:
    assert get_performance_metrics() is get_performance_metrics()
    assert isinstance(get_performance_metrics(), PerformanceMetrics)


def test_repr_names_the_sources() -> None:
    metrics = PerformanceMetrics(window=10)
    metrics.record_error("xai")
    assert repr(metrics) == "PerformanceMetrics(window=10, sources=['xai'])"


def test_recording_and_summaries_never_import_prometheus_client() -> None:
    code = (
        "import sys\n"
        "from argo_perf import PerformanceMetrics, RedisCache\n"
        "m = PerformanceMetrics()\n"
        "m.track('massive', cache=RedisCache())\n"
        "m.record_api_latency('massive', 0.1)\n"
        "m.get_summary()\n"
        "sys.exit('prometheus_client' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_doctests() -> None:
    assert doctest.testmod(argo_perf.metrics).failed == 0
