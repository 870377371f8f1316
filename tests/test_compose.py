"""resilient() recording into a real PerformanceMetrics: the composed pieces, observed."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from argo_perf import (
    AsyncRedisCache,
    CircuitBreaker,
    CircuitBreakerConfig,
    ManualClock,
    PerformanceMetrics,
    RateLimitConfig,
    RateLimiter,
    RateLimitExceeded,
    RedisCache,
    resilient,
)


def requests_by_outcome(metrics: PerformanceMetrics, source: str) -> dict[str, float]:
    text = metrics.exposition().decode()
    return {
        sample.labels["outcome"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "argo_data_source_requests_total" and sample.labels["source"] == source
    }


def test_every_outcome_of_a_sync_source_reaches_the_metrics_and_promtool_accepts_them() -> None:
    clock = ManualClock()
    metrics = PerformanceMetrics(clock=clock)
    breaker = CircuitBreaker(
        "massive", CircuitBreakerConfig(failure_threshold=2, timeout=30.0), clock=clock
    )
    limiter = RateLimiter({"massive": RateLimitConfig(1000, 1000)}, clock=clock)
    cache = RedisCache(default_ttl=10.0, max_stale=3600.0, clock=clock)
    failing = {"on": False}

    @resilient(
        "massive",
        cache=cache,
        limiter=limiter,
        breaker=breaker,
        fallback=lambda symbol: -1.0,
        metrics=metrics,
        clock=clock,
    )
    def price(symbol: str) -> float:
        if failing["on"]:
            raise ConnectionError("vendor down")
        return 100.0

    assert price("AAPL") == 100.0  # ok
    assert price("AAPL") == 100.0  # cached
    failing["on"] = True
    clock.advance(20.0)  # AAPL expires: stale from now on
    assert price.with_meta("AAPL").stale  # the call fails: stale served
    assert price("MSFT") == -1.0  # the call fails, nothing cached: fallback, circuit opens
    assert price("NVDA") == -1.0  # rejected by the open circuit, then the fallback

    counts = requests_by_outcome(metrics, "massive")
    assert counts["ok"] == 1
    assert counts["cached"] == 1
    assert counts["stale"] == 1
    assert counts["fallback"] == 2
    summary = metrics.get_summary()
    assert summary["total_cache_hits"] >= 1  # counted by the tracked cache, not by hand

    promtool = shutil.which("promtool")
    assert promtool, "promtool is required: install the Debian package 'prometheus' (scripts/test)"
    check = subprocess.run(
        [promtool, "check", "metrics"],
        input=metrics.exposition(),
        capture_output=True,
        check=False,
        timeout=30,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    exposition = metrics.exposition().decode()
    assert 'argo_data_source_status{source="massive"} 0.0' in exposition  # breaker open


def test_a_cache_hit_of_an_async_source_takes_no_token_and_is_recorded_as_cached(
    redis_url: str,
) -> None:
    async def main() -> None:
        clock = ManualClock()
        metrics = PerformanceMetrics(clock=clock)
        limiter = RateLimiter({"xai": RateLimitConfig(1.0, 1)}, clock=clock)
        cache = AsyncRedisCache(redis_url, namespace="compose", clock=clock)
        calls = 0

        @resilient("xai", cache=cache, ttl=60.0, limiter=limiter, metrics=metrics, clock=clock)
        async def sentiment(symbol: str) -> float:
            nonlocal calls
            calls += 1
            return 0.5

        assert await sentiment("BTC-USD") == 0.5  # takes the only token
        for _ in range(5):
            assert await sentiment("BTC-USD") == 0.5  # hits: no token needed
        assert calls == 1
        assert limiter.stats["xai"].granted == 1
        counts = requests_by_outcome(metrics, "xai")
        assert counts["ok"] == 1
        assert counts["cached"] == 5
        await cache.close()

    asyncio.run(main())


def test_a_source_out_of_tokens_is_recorded_as_rate_limited() -> None:
    clock = ManualClock()
    metrics = PerformanceMetrics(clock=clock)
    limiter = RateLimiter({"alpha_vantage": RateLimitConfig(0.2, 1)}, clock=clock)

    @resilient("alpha_vantage", limiter=limiter, max_wait=1.0, metrics=metrics, clock=clock)
    def indicators(symbol: str) -> float:
        return 1.0

    assert indicators("AAPL") == 1.0
    with pytest.raises(RateLimitExceeded):
        indicators("MSFT")  # the next token is 5 s away, more than max_wait
    assert requests_by_outcome(metrics, "alpha_vantage")["rate_limited"] == 1
