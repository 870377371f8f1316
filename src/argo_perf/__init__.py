"""argo_perf: resilience and caching primitives for trading services.

The package face only re-exports; each concept lives in its own module.
"""

import logging as _logging

from ._version import __version__
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
from .resilience import ResilientResult, resilient
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
    "ConfigError",
    "ManualClock",
    "MarketCalendar",
    "MarketSession",
    "NYSECalendar",
    "Quota",
    "RateLimitConfig",
    "RateLimitExceeded",
    "RateLimiter",
    "RedisBucketStats",
    "RedisCache",
    "RedisTokenBucket",
    "ResilientResult",
    "Serializer",
    "SharedStateStats",
    "SystemClock",
    "TokenBucket",
    "VolatilityTracker",
    "__version__",
    "cached",
    "get_rate_limiter",
    "get_redis_cache",
    "is_crypto",
    "resilient",
]

# A library never prints on its own: log records go to the application's handlers.
_logging.getLogger("argo_perf").addHandler(_logging.NullHandler())
