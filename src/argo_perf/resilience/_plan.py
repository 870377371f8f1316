"""What both faces of `resilient` share that is not I/O.

The validated configuration (`Plan`), one call's record of when it called the
source (`Call`), how a call ends and is reported to a recorder (`Ends`,
`outcome_of`, `from_cache`), the breaker questions asked before a call and
between attempts, the rate limit's fast path, and how a wrapper is dressed as
the function it wraps.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from .. import _validate
from .._recording import Outcome, Recorder
from ..breaker import CircuitBreaker, CircuitState
from ..cache import AsyncRedisCache, CachedValue, RedisCache
from ..cache._config import UseDefault, check_ttl
from ..cache._decorator import CachedTTL
from ..clock import Clock, _given_or_system
from ..errors import CircuitOpenError, ConfigError, RateLimitExceeded
from ..ratelimit import RateLimiter, RedisTokenBucket, TokenBucket
from ._retry import RetryPlan, retry_plan

__all__ = [
    "DEFAULT_MAX_WAIT",
    "Call",
    "Ends",
    "Found",
    "Plan",
    "build_plan",
    "dress",
    "from_cache",
    "moved_since",
    "outcome_of",
    "refused_when_open",
    "rejection",
    "reporter",
    "token_at_hand",
    "track",
]

logger = logging.getLogger("argo_perf.resilience")

DEFAULT_MAX_WAIT = 10.0
"""Seconds a call waits at most for a rate-limit token, or for a server's retry-after."""

_MIN_RETRY_AFTER = 0.001
_OPEN = CircuitState.OPEN
_CLOSED = CircuitState.CLOSED

Bucket: TypeAlias = "TokenBucket | RedisTokenBucket"
Found: TypeAlias = "tuple[Any, Outcome, bool, float | None]"
"""A call's (value, outcome, stale, age): the fields of a `ResilientResult`."""


@dataclass(frozen=True, slots=True)
class Plan:
    """`resilient`'s arguments, checked once; the faces read nothing else."""

    source: str
    cache: RedisCache | AsyncRedisCache | None
    ttl: CachedTTL
    key: Callable[..., str] | None
    bucket: Bucket | None
    breaker: CircuitBreaker | None
    retry: RetryPlan | None
    timeout: float | None
    fallback: Callable[..., Any] | None
    metrics: Recorder | None
    max_wait: float
    clock: Clock

    @property
    def lean(self) -> bool:
        """No cache, fallback or recorder: a call is the source's call and nothing else."""
        return self.cache is None and self.fallback is None and self.metrics is None


def build_plan(
    source: object,
    *,
    cache: object,
    ttl: object,
    key: object,
    limiter: object,
    breaker: object,
    retry: object,
    timeout: object,
    fallback: object,
    metrics: object,
    max_wait: object,
    clock: object,
) -> Plan:
    """Check every argument of `resilient`; a bad one is a `ConfigError` naming it."""
    if not isinstance(source, str) or not source:
        raise ConfigError("source", source, "must be a non-empty string")
    if cache is not None and not isinstance(cache, (RedisCache, AsyncRedisCache)):
        raise ConfigError("cache", cache, "must be a RedisCache, an AsyncRedisCache or None")
    if cache is None:
        if not isinstance(ttl, UseDefault):
            raise ConfigError("ttl", ttl, "needs cache= (there is nothing to expire)")
        if key is not None:
            raise ConfigError("key", key, "needs cache= (there is nothing to key)")
    elif not isinstance(ttl, UseDefault):
        check_ttl(ttl, "ttl")
    if key is not None and not callable(key):
        raise ConfigError("key", key, "must be a callable (*args, **kwargs) -> str or None")
    seconds = _validate.non_negative_seconds_or_inf("max_wait", max_wait)
    if clock is not None and not isinstance(clock, Clock):
        raise ConfigError("clock", clock, "must be a Clock (monotonic, now, sleep, sleep_async)")
    if breaker is not None and not isinstance(breaker, CircuitBreaker):
        raise ConfigError("breaker", breaker, "must be a CircuitBreaker or None")
    if fallback is not None and not callable(fallback):
        raise ConfigError("fallback", fallback, "must be a callable taking the same arguments")
    if metrics is not None and not (
        callable(getattr(metrics, "record_request", None))
        and callable(getattr(metrics, "track", None))
    ):
        raise ConfigError(
            "metrics",
            metrics,
            "must be a recorder (record_request and track), e.g. PerformanceMetrics",
        )
    return Plan(
        source=source,
        cache=cache,
        ttl=ttl,  # type: ignore[arg-type]
        key=key,
        bucket=_bucket(limiter, source),
        breaker=breaker,
        retry=retry_plan(retry, seconds),
        timeout=_validate.optional(_validate.positive_seconds, "timeout", timeout),
        fallback=fallback,
        metrics=metrics,  # type: ignore[arg-type]
        max_wait=seconds,
        clock=_given_or_system(clock),
    )


def _bucket(limiter: object, source: str) -> Bucket | None:
    if limiter is None or isinstance(limiter, (TokenBucket, RedisTokenBucket)):
        return limiter
    if isinstance(limiter, RateLimiter):
        # The source's bucket, now: an unknown source without a default is refused here.
        return limiter.get(source)
    raise ConfigError(
        "limiter", limiter, "must be a RateLimiter, a TokenBucket, a RedisTokenBucket or None"
    )


class Call:
    """When one call used the source: set by the source layer, read for the outcome."""

    __slots__ = ("ended", "started")

    def __init__(self) -> None:
        self.started: float | None = None
        self.ended = 0.0

    @property
    def seconds(self) -> float | None:
        """Seconds spent calling the source (retries included), None when it was not called."""
        started = self.started
        return None if started is None else max(0.0, self.ended - started)


def outcome_of(error: BaseException) -> Outcome:
    """The outcome of a call that ended with ``error``."""
    if isinstance(error, CircuitOpenError):
        return "rejected"
    if isinstance(error, RateLimitExceeded):
        return "rate_limited"
    return "error"


class Ends:
    """How a call ends, reported to the plan's recorder: the same for both faces."""

    __slots__ = ("report",)

    def __init__(self, plan: Plan) -> None:
        self.report = reporter(plan)

    def found(self, found: Found, call: Call) -> Found:
        """The call returns ``found``; a cached value took no time calling the source."""
        self.report(found[1], None if found[1] == "cached" else call.seconds)
        return found

    def failed(self, error: BaseException, call: Call) -> None:
        """The call ends with ``error`` (its fallback, if any, raised too)."""
        self.report(outcome_of(error), call.seconds)

    def fell_back(self, value: Any, call: Call) -> Found:
        """The call failed and the fallback answered ``value``."""
        self.report("fallback", call.seconds)
        return value, "fallback", False, None


def reporter(plan: Plan) -> Callable[[Outcome, float | None], None]:
    """``report(outcome, seconds)`` to the plan's recorder; a recorder that raises is logged."""
    metrics = plan.metrics
    source = plan.source
    if metrics is None:

        def nothing(outcome: Outcome, seconds: float | None) -> None:
            return None

        return nothing
    record = metrics.record_request
    failing = [False]

    def report(outcome: Outcome, seconds: float | None) -> None:
        try:
            record(source, outcome, seconds)
        except Exception:
            # A broken recorder must not fail the fetch; said once, not per call.
            if not failing[0]:
                failing[0] = True
                logger.exception("recording a request to %r failed (logged once)", source)

    return report


def track(plan: Plan) -> None:
    """Tell the recorder which primitives to read ``.stats`` from for the source."""
    if plan.metrics is not None:
        plan.metrics.track(plan.source, cache=plan.cache, bucket=plan.bucket, breaker=plan.breaker)


def rejection(breaker: CircuitBreaker) -> CircuitOpenError:
    """The `CircuitOpenError` for a call turned away by ``breaker`` outside its own call path."""
    return CircuitOpenError(breaker.name, max(breaker.stats.retry_after, _MIN_RETRY_AFTER))


def refused_when_open(breaker: CircuitBreaker) -> CircuitOpenError | None:
    """Before taking a token: the rejection when the circuit is open, else None.

    The breaker itself decides (its permit API, so the rejection is counted);
    a permit granted because the circuit moved on meanwhile is given back.
    """
    permit = breaker.try_acquire()
    if permit is None:
        return rejection(breaker)
    permit.release()
    return None


def moved_since(breaker: CircuitBreaker, admitted: CircuitState) -> bool:
    """Between attempts: True when the next attempt must not run.

    It runs while the circuit is closed, or half-open for a call admitted as
    a half-open probe. Open (opened by other calls during the backoff), or
    half-open for a call admitted while closed (opened and not yet probed),
    it does not.
    """
    state = breaker.state
    return state is not _CLOSED and (state is _OPEN or admitted is _CLOSED)


def from_cache(meta: CachedValue[Any], call: Call) -> Found:
    """What a cached call returns, told from the cache's answer and whether it called the source.

    A value the loader produced is ``ok`` for the caller whose loader ran it and
    ``cached`` for the callers that waited for that load (single flight).
    """
    if meta.stale:
        return meta.value, "stale", True, meta.age
    if meta.source == "loader" and call.started is not None:
        return meta.value, "ok", False, 0.0
    return meta.value, "cached", False, meta.age


def _never() -> bool:
    return False


def token_at_hand(bucket: Bucket | None) -> Callable[[], bool]:
    """The rate limit's fast path: a token an in-process bucket has now, taken.

    A token that is there is taken without waiting, the cheapest grant. Past
    it, the slow path's one ``acquire(1, max_wait)`` decides the request and
    the bucket counts it once: granted, waited for, or denied when no token
    comes in time. So the fast path's refusal is not counted (a call that then
    waits for its token is no refusal), and a Redis bucket, which decides in
    one round trip waiting or not, has no fast path: it says no at once.
    """
    return bucket._take_at_hand if isinstance(bucket, TokenBucket) else _never


def dress(
    wrapper: Callable[..., Any], with_meta: Callable[..., Any], fn: Callable[..., Any]
) -> None:
    """Give both ``fn``'s name, docs and signature; attach ``with_meta`` to ``wrapper``."""
    functools.update_wrapper(wrapper, fn)
    functools.update_wrapper(with_meta, fn)
    with_meta.__name__ = "with_meta"
    with_meta.__qualname__ = f"{getattr(fn, '__qualname__', 'fn')}.with_meta"
    vars(wrapper)["with_meta"] = with_meta
