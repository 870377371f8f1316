"""argo_perf: resilience and caching primitives for trading services.

The package face only re-exports; each concept lives in its own module.
"""

from ._version import __version__
from .breaker import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerRegistry,
    CircuitState,
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
    "BackendError",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerRegistry",
    "CircuitOpenError",
    "CircuitState",
    "Clock",
    "ConfigError",
    "ManualClock",
    "RateLimitExceeded",
    "SystemClock",
    "__version__",
]
