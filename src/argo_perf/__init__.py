"""argo_perf: resilience and caching primitives for trading services.

The package face only re-exports; each concept lives in its own module.
"""

from ._version import __version__
from .clock import Clock, ManualClock, SystemClock
from .errors import (
    ArgoPerfError,
    BackendError,
    CircuitOpenError,
    ConfigError,
    RateLimitExceeded,
)
from .ratelimit import (
    Quota,
    RateLimitConfig,
    RateLimiter,
    RedisTokenBucket,
    TokenBucket,
    get_rate_limiter,
)

__all__ = [
    "ArgoPerfError",
    "BackendError",
    "CircuitOpenError",
    "Clock",
    "ConfigError",
    "ManualClock",
    "Quota",
    "RateLimitConfig",
    "RateLimitExceeded",
    "RateLimiter",
    "RedisTokenBucket",
    "SystemClock",
    "TokenBucket",
    "__version__",
    "get_rate_limiter",
]
