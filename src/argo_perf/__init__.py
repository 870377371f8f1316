"""argo_perf: resilience and caching primitives for trading services.

The package face only re-exports; each concept lives in its own module.
"""

import logging as _logging

from ._version import __version__
from .batch import Batcher, BatcherStats
from .breaker import (
    BreakerStats,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerRegistry,
    CircuitState,
    SharedStateStats,
)
from .cache import (
    AsyncRedisCache,
    CacheConfig,
    CachedValue,
    CacheStats,
    RedisCache,
    Serializer,
    cached,
    get_redis_cache,
)
from .clock import Clock, ManualClock, SystemClock
from .errors import (
    ArgoPerfError,
    BackendError,
    CircuitOpenError,
    ConfigError,
    MissingKeyError,
    RateLimitExceeded,
)
from .gate import ChangeGate
from .market import (
    CRYPTO,
    NYSE,
    CalendarRangeError,
    MarketCalendar,
    MarketSession,
    NYSECalendar,
    is_crypto,
)
from .metrics import PerformanceMetrics, PerformanceSummary, get_performance_metrics
from .ratelimit import (
    BucketStats,
    Quota,
    RateLimitConfig,
    RateLimiter,
    RedisBucketStats,
    RedisTokenBucket,
    TokenBucket,
    get_rate_limiter,
)
from .reload import ConfigChange, ConfigWatcher, LiveConfig
from .resilience import ResilientResult, resilient
from .scheduler import (
    PriorityScheduler,
    ScheduleReport,
    SchedulerStats,
    SymbolResult,
    SymbolStatus,
)
from .ttl import AdaptiveTTL, AdaptiveTTLConfig
from .volatility import VolatilityTracker

__all__ = [
    "CRYPTO",
    "NYSE",
    "AdaptiveTTL",
    "AdaptiveTTLConfig",
    "ArgoPerfError",
    "AsyncRedisCache",
    "BackendError",
    "Batcher",
    "BatcherStats",
    "BreakerStats",
    "BucketStats",
    "CacheConfig",
    "CacheStats",
    "CachedValue",
    "CalendarRangeError",
    "ChangeGate",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerRegistry",
    "CircuitOpenError",
    "CircuitState",
    "Clock",
    "ConfigChange",
    "ConfigError",
    "ConfigWatcher",
    "LiveConfig",
    "ManualClock",
    "MarketCalendar",
    "MarketSession",
    "MissingKeyError",
    "NYSECalendar",
    "PerformanceMetrics",
    "PerformanceSummary",
    "PriorityScheduler",
    "Quota",
    "RateLimitConfig",
    "RateLimitExceeded",
    "RateLimiter",
    "RedisBucketStats",
    "RedisCache",
    "RedisTokenBucket",
    "ResilientResult",
    "ScheduleReport",
    "SchedulerStats",
    "Serializer",
    "SharedStateStats",
    "SymbolResult",
    "SymbolStatus",
    "SystemClock",
    "TokenBucket",
    "VolatilityTracker",
    "__version__",
    "cached",
    "get_performance_metrics",
    "get_rate_limiter",
    "get_redis_cache",
    "is_crypto",
    "resilient",
]

# A library never prints on its own: log records go to the application's handlers.
_logging.getLogger("argo_perf").addHandler(_logging.NullHandler())
