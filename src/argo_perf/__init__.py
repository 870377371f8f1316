"""argo_perf: resilience and caching primitives for trading services.

The package face only re-exports; each concept lives in its own module.
"""

from ._version import __version__
from .cache import (
    AsyncRedisCache,
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

__all__ = [
    "ArgoPerfError",
    "AsyncRedisCache",
    "BackendError",
    "CacheStats",
    "CachedValue",
    "CircuitOpenError",
    "Clock",
    "ConfigError",
    "ManualClock",
    "RateLimitExceeded",
    "RedisCache",
    "Serializer",
    "SystemClock",
    "__version__",
    "cached",
    "get_redis_cache",
]
