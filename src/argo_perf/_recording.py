"""What `resilient` tells a metrics recorder: the outcome of each request.

A small contract between the composition layer and the observation layer, so
neither imports the other: `resilient` calls a `Recorder`, and
`PerformanceMetrics` is one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from .breaker import CircuitBreaker
    from .cache import AsyncRedisCache, RedisCache
    from .ratelimit import RedisTokenBucket, TokenBucket

Outcome = Literal["ok", "error", "rejected", "rate_limited", "cached", "stale", "fallback"]
"""How a request to a data source ended.

- ``ok``: the call succeeded (after retries, if any).
- ``error``: the call failed and the error reached the caller.
- ``rejected``: an open circuit breaker refused the call.
- ``rate_limited``: the rate limiter gave no permission in time.
- ``cached``: a fresh cached value was served; the source was not called.
- ``stale``: the source failed or was refused, and a stale cached value was served.
- ``fallback``: the source failed or was refused, and the fallback answered.
"""

OUTCOMES: tuple[Outcome, ...] = (
    "ok",
    "error",
    "rejected",
    "rate_limited",
    "cached",
    "stale",
    "fallback",
)


class Recorder(Protocol):
    """Receives what `resilient` observes; `PerformanceMetrics` implements it."""

    def record_request(self, source: str, outcome: Outcome, seconds: float | None = None) -> None:
        """Count one request to ``source`` and, when given, its latency in seconds.

        ``seconds`` is the time spent calling the source (retries included); it
        is None for outcomes that did not call it (``cached``, ``rejected``,
        ``rate_limited``).
        """

    def track(
        self,
        source: str,
        *,
        cache: RedisCache | AsyncRedisCache | None = None,
        bucket: TokenBucket | RedisTokenBucket | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        """Read these primitives' ``.stats`` for ``source`` whenever metrics are collected."""
