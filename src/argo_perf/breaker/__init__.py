"""Circuit breakers: stop calling a dependency that is down, probe it, come back.

The package face only re-exports. `CircuitBreaker` is the breaker;
`CircuitBreakerConfig` says how it judges calls and when it opens; the
trip rules (`ConsecutiveFailures`, `FailureRate`,
`SlowCallRate`) combine with ``|``; `RedisBreakerState` shares
openings between processes; `retry_unless_circuit_open` and
`wait_retry_after` fit tenacity around it.
"""

from ._breaker import AsyncCall, CircuitBreaker, SyncCall
from ._core import CircuitBreakerConfig, CircuitState, Transition
from ._listeners import Listener
from ._permit import Permit
from ._policy import (
    AnyRule,
    ConsecutiveFailures,
    FailureRate,
    Outcome,
    SlowCallRate,
    TripRule,
    backoff,
    retry_after_of,
)
from ._registry import CircuitBreakerRegistry
from ._retry import retry_unless_circuit_open, wait_retry_after
from ._shared import RedisBreakerState
from ._stats import BreakerMetrics, BreakerStats, SharedStateStats

__all__ = [
    "AnyRule",
    "AsyncCall",
    "BreakerMetrics",
    "BreakerStats",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerRegistry",
    "CircuitState",
    "ConsecutiveFailures",
    "FailureRate",
    "Listener",
    "Outcome",
    "Permit",
    "RedisBreakerState",
    "SharedStateStats",
    "SlowCallRate",
    "SyncCall",
    "Transition",
    "TripRule",
    "backoff",
    "retry_after_of",
    "retry_unless_circuit_open",
    "wait_retry_after",
]
