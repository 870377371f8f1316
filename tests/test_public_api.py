"""The package face: exactly the names it means to export, and nothing heavy on import."""

from __future__ import annotations

import subprocess
import sys

import argo_perf

EXPECTED = {
    "AdaptiveTTL",
    "AdaptiveTTLConfig",
    "ArgoPerfError",
    "BackendError",
    "CRYPTO",
    "CalendarRangeError",
    "ChangeGate",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerRegistry",
    "CircuitOpenError",
    "CircuitState",
    "Clock",
    "ConfigError",
    "ManualClock",
    "MarketCalendar",
    "MarketSession",
    "NYSE",
    "NYSECalendar",
    "RateLimitExceeded",
    "Quota",
    "RateLimitConfig",
    "RateLimiter",
    "RedisTokenBucket",
    "TokenBucket",
    "get_rate_limiter",
    "BucketStats",
    "RedisBucketStats",
    "SystemClock",
    "VolatilityTracker",
    "__version__",
    "is_crypto",
    # cache
    "AsyncRedisCache",
    "CacheConfig",
    "CacheStats",
    "CachedValue",
    "RedisCache",
    "Serializer",
    "cached",
    "get_redis_cache",
    # breaker
    "BreakerStats",
    "SharedStateStats",
    # scheduler
    "PriorityScheduler",
    "ScheduleReport",
    "SchedulerStats",
    "SymbolResult",
    "SymbolStatus",
    # batching
    "Batcher",
    "BatcherStats",
    "MissingKeyError",
    # live reconfiguration
    "ConfigChange",
    "ConfigWatcher",
    "LiveConfig",
    # metrics
    "PerformanceMetrics",
    "PerformanceSummary",
    "get_performance_metrics",
    # composition
    "ResilientResult",
    "resilient",
}


def test_all_is_exactly_the_public_surface() -> None:
    assert set(argo_perf.__all__) == EXPECTED
    for name in argo_perf.__all__:
        assert hasattr(argo_perf, name), name


def test_every_public_name_has_a_docstring() -> None:
    for name in argo_perf.__all__:
        if name.startswith("__"):
            continue
        assert getattr(argo_perf, name).__doc__, name


def test_version_is_a_string() -> None:
    assert isinstance(argo_perf.__version__, str)


def test_import_does_not_load_prometheus_or_testing() -> None:
    code = (
        "import sys, argo_perf; "
        "bad = [m for m in ('prometheus_client', 'argo_perf.testing') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
