"""The Prometheus export of PerformanceMetrics: names, types, values, registries, the extra."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from argo_perf import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    ManualClock,
    PerformanceMetrics,
    RedisCache,
    RedisTokenBucket,
    TokenBucket,
)
from argo_perf._recording import OUTCOMES

Labels = frozenset[tuple[str, str]]


def samples(metrics: PerformanceMetrics) -> dict[tuple[str, Labels], float]:
    """Every sample of the exposition by (sample name, labels)."""
    text = metrics.exposition().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(metrics: PerformanceMetrics, name: str, **labels: str) -> float:
    return samples(metrics)[(name, frozenset(labels.items()))]


def types(metrics: PerformanceMetrics) -> dict[str, str]:
    text = metrics.exposition().decode()
    return {family.name: family.type for family in text_string_to_metric_families(text)}


def fail(breaker: CircuitBreaker, times: int) -> None:
    def broken() -> None:
        raise OSError("vendor down")

    for _ in range(times):
        with pytest.raises((OSError, CircuitOpenError)):
            breaker.call(broken)


@pytest.fixture
def everything(redis_url: str) -> Iterator[PerformanceMetrics]:
    """Metrics with a Redis cache, a memory cache, both kinds of bucket and a tripped breaker,
    requests of every outcome and per-symbol labels."""
    clock = ManualClock(autoadvance=True)
    metrics = PerformanceMetrics(clock=clock, symbol_labels=2)
    redis_cache = RedisCache(redis_url, clock=clock, default_ttl=10.0, max_stale=60.0)
    memory_cache = RedisCache(namespace="local", clock=clock)
    bucket = TokenBucket(rate=1, burst=1, clock=clock)
    shared_bucket = RedisTokenBucket(redis_url, "xai", rate=1, burst=1)
    breaker = CircuitBreaker("massive", CircuitBreakerConfig(failure_threshold=2), clock=clock)
    metrics.track("massive", cache=redis_cache, bucket=bucket, breaker=breaker)
    metrics.track("xai", cache=memory_cache, bucket=shared_bucket)
    redis_cache.set("AAPL", 1.0)
    redis_cache.get("AAPL")
    redis_cache.get("MSFT")
    memory_cache.get("x")
    bucket.try_acquire()
    bucket.try_acquire()  # refused
    bucket.acquire()  # waits a second of virtual time
    shared_bucket.try_acquire()
    fail(breaker, 3)  # opens, then rejects
    for outcome in OUTCOMES:
        metrics.record_request("massive", outcome, 0.2 if outcome != "cached" else None)
    for symbol in ("AAPL", "MSFT", "NVDA"):
        metrics.record_signal_generation_time(0.3, symbol)
        metrics.record_symbol_processed(symbol)
    metrics.record_skipped_symbol("AAPL")
    metrics.record_cache_hit()
    try:
        yield metrics
    finally:
        redis_cache.close()
        shared_bucket.close()


def test_promtool_accepts_the_exposition(everything: PerformanceMetrics) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is required: install the Debian package 'prometheus' (scripts/test)"
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=everything.exposition(),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, (result.stdout + result.stderr).decode()
    assert not (result.stdout + result.stderr).strip(), (result.stdout + result.stderr).decode()


def test_the_export_has_every_family_with_its_type(everything: PerformanceMetrics) -> None:
    assert types(everything) == {
        "argo_signal_generation_duration_seconds": "histogram",
        "argo_symbols_processed": "counter",
        "argo_symbols_skipped": "counter",
        "argo_cache_hits": "counter",
        "argo_cache_misses": "counter",
        "argo_cache_stale_served": "counter",
        "argo_cache_backend": "gauge",
        "argo_cache_backend_transitions": "counter",
        "argo_cache_memory_entries": "gauge",
        "argo_data_source_requests": "counter",
        "argo_data_source_request_duration_seconds": "histogram",
        "argo_data_source_status": "gauge",
        "argo_circuit_breaker_state": "gauge",
        "argo_circuit_breaker_opened": "counter",
        "argo_circuit_breaker_rejections": "counter",
        "argo_rate_limit_grants": "counter",
        "argo_rate_limit_waits": "counter",
        "argo_rate_limit_rejections": "counter",
    }


def test_counters_carry_what_the_tracked_primitives_counted(everything: PerformanceMetrics) -> None:
    found = samples(everything)

    def at(name: str, **labels: str) -> float:
        return found[(name, frozenset(labels.items()))]

    # one hand-recorded hit, one Redis-cache hit; misses: MSFT and x
    assert at("argo_cache_hits_total") == 2
    assert at("argo_cache_misses_total") == 2
    assert at("argo_cache_backend", cache="argo_perf", backend="redis") == 1
    assert at("argo_cache_backend", cache="argo_perf", backend="memory") == 0
    assert at("argo_cache_backend", cache="local", backend="memory") == 1
    assert at("argo_rate_limit_grants_total", source="massive") == 2
    assert at("argo_rate_limit_waits_total", source="massive") == 1
    assert at("argo_rate_limit_rejections_total", source="massive") == 1
    assert at("argo_rate_limit_grants_total", source="xai") == 1
    assert at("argo_circuit_breaker_state", source="massive", state="open") == 1
    assert at("argo_circuit_breaker_state", source="massive", state="closed") == 0
    assert at("argo_circuit_breaker_opened_total", source="massive") == 1
    assert at("argo_circuit_breaker_rejections_total", source="massive") == 1
    assert at("argo_data_source_status", source="massive") == 0  # its breaker is open
    for outcome in OUTCOMES:
        assert at("argo_data_source_requests_total", source="massive", outcome=outcome) == 1
        assert at("argo_data_source_requests_total", source="xai", outcome=outcome) == 0
    assert at("argo_data_source_request_duration_seconds_count", source="massive") == 6
    assert at("argo_data_source_request_duration_seconds_sum", source="massive") == pytest.approx(
        1.2
    )


def test_per_symbol_labels_are_bounded(everything: PerformanceMetrics) -> None:
    found = samples(everything)
    processed = {
        dict(labels)["symbol"]: count
        for (name, labels), count in found.items()
        if name == "argo_symbols_processed_total"
    }
    assert processed == {"AAPL": 1, "MSFT": 1, "other": 1}
    name = "argo_signal_generation_duration_seconds_count"
    assert found[(name, frozenset({("symbol", "other")}))] == 1


def test_without_the_opt_in_no_series_has_a_symbol_label() -> None:
    metrics = PerformanceMetrics()
    metrics.record_signal_generation_time(0.1, "AAPL")
    metrics.record_symbol_processed("AAPL")
    assert not [key for key in samples(metrics) if "symbol" in dict(key[1])]
    assert value(metrics, "argo_symbols_processed_total") == 1


def test_signal_histogram_buckets_reach_30_seconds_and_include_their_bound() -> None:
    metrics = PerformanceMetrics()
    for seconds in (0.005, 0.0051, 29.0, 30.0, 31.0):
        metrics.record_signal_generation_time(seconds)
    name = "argo_signal_generation_duration_seconds_bucket"
    assert value(metrics, name, le="0.005") == 1  # le: less than or equal
    assert value(metrics, name, le="0.01") == 2
    assert value(metrics, name, le="10.0") == 2
    assert value(metrics, name, le="30.0") == 4
    assert value(metrics, name, le="+Inf") == 5
    assert value(metrics, "argo_signal_generation_duration_seconds_sum") == pytest.approx(90.0101)


def test_status_follows_the_last_request_that_says_something_about_the_source() -> None:
    metrics = PerformanceMetrics()
    metrics.record_request("massive", "ok", 0.1)
    assert value(metrics, "argo_data_source_status", source="massive") == 1
    for outcome in ("error", "rejected", "stale", "fallback"):
        metrics.record_request("massive", "ok", 0.1)
        metrics.record_request("massive", outcome)
        assert value(metrics, "argo_data_source_status", source="massive") == 0, outcome
    metrics.record_request("massive", "cached")
    metrics.record_request("massive", "rate_limited")
    assert value(metrics, "argo_data_source_status", source="massive") == 0
    metrics.record_api_latency("massive", 0.1)
    assert value(metrics, "argo_data_source_status", source="massive") == 1


def test_status_of_a_source_with_a_breaker_is_its_breaker_being_closed() -> None:
    metrics = PerformanceMetrics()
    breaker = CircuitBreaker("xai", clock=ManualClock())
    metrics.track("xai", breaker=breaker)
    metrics.record_error("xai")
    assert value(metrics, "argo_data_source_status", source="xai") == 1
    breaker.force_open()
    metrics.record_api_latency("xai", 0.1)
    assert value(metrics, "argo_data_source_status", source="xai") == 0
    breaker.reset()
    assert value(metrics, "argo_data_source_status", source="xai") == 1


def test_stale_serves_of_a_tracked_cache_are_exported() -> None:
    clock = ManualClock()
    cache = RedisCache(clock=clock, default_ttl=10.0, max_stale=60.0)
    metrics = PerformanceMetrics(clock=clock)
    metrics.track("massive", cache=cache)
    cache.set("AAPL", 1.0)
    clock.advance(11.0)

    def broken() -> float:
        raise OSError("vendor down")

    assert cache.get_or_set("AAPL", broken) == 1.0
    assert value(metrics, "argo_cache_stale_served_total", cache="argo_perf") == 1
    assert value(metrics, "argo_cache_memory_entries", cache="argo_perf") == 1


def test_the_metrics_have_their_own_registry_never_the_global_one() -> None:
    metrics = PerformanceMetrics()
    other = PerformanceMetrics()
    metrics.record_cache_hit()
    assert metrics.registry is metrics.registry
    assert metrics.registry is not other.registry
    assert metrics.registry is not prometheus_client.REGISTRY
    assert b"argo_" not in generate_latest(prometheus_client.REGISTRY)
    assert value(metrics, "argo_cache_hits_total") == 1
    assert value(other, "argo_cache_hits_total") == 0


def test_a_registry_passed_in_is_the_one_collected_into() -> None:
    registry = CollectorRegistry()
    metrics = PerformanceMetrics(registry)
    metrics.record_error("xai")
    assert metrics.registry is registry
    text = generate_latest(registry).decode()
    assert 'argo_data_source_requests_total{outcome="error",source="xai"} 1.0' in text
    assert metrics.exposition() == generate_latest(registry)


def test_two_metrics_in_one_registry_are_refused_as_duplicates() -> None:
    registry = CollectorRegistry()
    PerformanceMetrics(registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        PerformanceMetrics(registry)


def test_first_uses_from_many_threads_make_one_registry() -> None:
    metrics = PerformanceMetrics()
    seen: list[CollectorRegistry] = []
    start = threading.Barrier(8)

    def use() -> None:
        start.wait()
        seen.append(metrics.registry)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(registry) for registry in seen}) == 1


def test_scrapes_while_threads_record_see_exact_totals_at_the_end() -> None:
    metrics = PerformanceMetrics()
    stop = threading.Event()

    def scrape() -> None:
        while not stop.is_set():
            metrics.exposition()

    scraper = threading.Thread(target=scrape)
    scraper.start()

    def record() -> None:
        for _ in range(2000):
            metrics.record_request("massive", "ok", 0.01)
            metrics.record_cache_miss()

    workers = [threading.Thread(target=record) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    stop.set()
    scraper.join()
    assert value(metrics, "argo_data_source_requests_total", source="massive", outcome="ok") == 8000
    assert value(metrics, "argo_data_source_request_duration_seconds_count", source="massive") == (
        8000
    )
    assert value(metrics, "argo_cache_misses_total") == 8000


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )


def test_nothing_is_registered_globally_by_import_or_default_metrics() -> None:
    result = run_python(
        """
        import sys
        import argo_perf
        assert "prometheus_client" not in sys.modules
        metrics = argo_perf.get_performance_metrics()
        metrics.record_cache_hit()
        metrics.exposition()
        import prometheus_client
        assert b"argo_" not in prometheus_client.generate_latest(prometheus_client.REGISTRY)
        """
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_without_the_extra_everything_works_but_the_export() -> None:
    result = run_python(
        """
        import sys
        sys.modules["prometheus_client"] = None  # as if the extra were not installed
        from argo_perf import PerformanceMetrics, RedisCache, TokenBucket
        metrics = PerformanceMetrics()
        metrics.track("massive", cache=RedisCache(), bucket=TokenBucket(1, 1))
        metrics.record_api_latency("massive", 0.1)
        metrics.record_signal_generation_time(0.2)
        assert metrics.get_summary()["data_source_latencies"] == {"massive": 0.1}
        for use in (metrics.exposition, lambda: metrics.registry):
            try:
                use()
            except ImportError as exc:
                print(exc)
            else:
                raise SystemExit("the export worked without prometheus-client")
        """
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    for line in lines:
        assert "pip install 'argo-perf[prometheus]'" in line


def test_planted_source_and_symbol_names_never_break_the_exposition() -> None:
    # Names that arrive from data: quotes, newlines, backslashes, a lone
    # surrogate (bytes decoded with surrogateescape), and what is not a str.
    metrics = PerformanceMetrics(symbol_labels=10)
    planted: list[object] = ['ven"dor', "a\nb", "back\\slash", 'x"} 1\nevil{a="', "\udcff", None, 7]
    for name in planted:
        metrics.record_api_latency(name, 0.1)  # type: ignore[arg-type]
        metrics.record_request(name, "error", 0.2)  # type: ignore[arg-type]
        metrics.record_signal_generation_time(0.1, symbol=name)  # type: ignore[arg-type]
        metrics.record_symbol_processed(name)  # type: ignore[arg-type]
    exposition = metrics.exposition()
    promtool = shutil.which("promtool")
    assert promtool
    result = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, timeout=60
    )
    assert result.returncode == 0, (result.stdout + result.stderr).decode()
    sources = {
        dict(labels)["source"]
        for (name, labels) in samples(metrics)
        if name == "argo_data_source_requests_total"
    }
    assert sources == {'ven"dor', "a\nb", "back\\slash", 'x"} 1\nevil{a="', "\\udcff", "None", "7"}
    summary = metrics.get_summary()
    assert summary["data_source_latencies"]["None"] == pytest.approx(0.15)
    assert "None" in repr(metrics)
