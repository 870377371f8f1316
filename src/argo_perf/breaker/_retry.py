"""tenacity strategies that cooperate with circuit breakers.

Order: put the retry *outside* the breaker (``@retry`` above ``@breaker``), so
each attempt passes through the breaker and is judged by it. On each failed
attempt tenacity asks the retry predicate first and the wait strategy second:

1. `retry_unless_circuit_open` stops at once on a
   `argo_perf.errors.CircuitOpenError` (retrying a rejection only
   burns attempts while the dependency is known to be down), whatever the
   inner predicate says;
2. for the errors that are retried, `wait_retry_after` sleeps at least
   the ``retry_after`` the error carries (a vendor's 429/503 retry-after, a
   `argo_perf.errors.RateLimitExceeded`), otherwise the fallback wait.
"""

from __future__ import annotations

import math

from tenacity import RetryCallState, retry_if_exception_type, retry_if_not_exception_type
from tenacity.retry import retry_base
from tenacity.wait import wait_base, wait_none

from ..errors import CircuitOpenError, ConfigError
from ._policy import retry_after_of

__all__ = ["retry_unless_circuit_open", "wait_retry_after"]


def retry_unless_circuit_open(inner: retry_base | None = None) -> retry_base:
    """A tenacity retry predicate that never retries a `CircuitOpenError`.

    ``inner`` decides for everything else (default: retry on any exception).
    A non-callable ``inner`` raises `argo_perf.errors.ConfigError`.
    Built from tenacity's own ``retry_if_not_exception_type(CircuitOpenError) & inner``.

    Examples:
        >>> from tenacity import Retrying, stop_after_attempt
        >>> retrying = Retrying(
        ...     retry=retry_unless_circuit_open(), stop=stop_after_attempt(3), reraise=True
        ... )
    """
    if inner is None:
        inner = retry_if_exception_type()
    elif not callable(inner):
        raise ConfigError("inner", inner, "must be a tenacity retry strategy or None")
    return retry_if_not_exception_type(CircuitOpenError) & inner


class wait_retry_after(wait_base):
    """A tenacity wait strategy that honours the ``retry_after`` an error carries.

    Waits ``max(retry_after, fallback)`` capped at ``maximum`` seconds, where
    ``retry_after`` is read with `argo_perf.breaker.retry_after_of` from
    the attempt's exception (absent: just the fallback).

    Args:
        fallback: the wait when the error carries no retry-after (default: none).
        maximum: never wait longer than this many seconds (default 60.0).

    Raises:
        ConfigError: ``maximum`` is negative or not a number.

    Examples:
        >>> from tenacity import wait_exponential
        >>> wait = wait_retry_after(wait_exponential(max=10), maximum=30.0)
    """

    def __init__(self, fallback: wait_base | None = None, *, maximum: float = 60.0) -> None:
        if isinstance(maximum, bool) or not isinstance(maximum, (int, float)) or not maximum >= 0:
            raise ConfigError("maximum", maximum, "must be a number of seconds >= 0")
        self.fallback = fallback if fallback is not None else wait_none()
        self.maximum = float(maximum)

    def __call__(self, retry_state: RetryCallState) -> float:
        wait = float(self.fallback(retry_state))
        outcome = retry_state.outcome
        if outcome is not None and outcome.failed:
            error = outcome.exception()
            hinted = retry_after_of(error) if error is not None else None
            if hinted is not None:
                wait = max(wait, hinted)
        return min(wait, self.maximum) if not math.isnan(wait) else self.maximum
