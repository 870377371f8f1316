"""`resilient`: the decorator, and the `Resilience` object it returns."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar, overload

from typing_extensions import ParamSpec

from ..cache import USE_DEFAULT, AsyncRedisCache, RedisCache
from ..cache._decorator import CachedTTL
from ..errors import ConfigError
from ._async import build_async
from ._plan import DEFAULT_MAX_WAIT, Plan, build_plan, track
from ._result import AsyncResilientFunction, ResilientFunction, method_or_function
from ._retry import async_hooks, is_async_callable
from ._sync import build_sync

if TYPE_CHECKING:
    from tenacity import Retrying

    from .._recording import Recorder
    from ..breaker import CircuitBreaker
    from ..clock import Clock
    from ..ratelimit import RateLimiter, RedisTokenBucket, TokenBucket

__all__ = ["Resilience", "resilient"]

P = ParamSpec("P")
R = TypeVar("R")


class Resilience:
    """The decorator returned by `resilient`: apply it to sync or ``async def`` functions.

    One `Resilience` may decorate several functions; they share its cache,
    limiter, breaker and recorder (each decorated function is announced to
    the recorder with ``track`` once, when decorated).

    Attributes:
        source: the data source's name.
    """

    __slots__ = ("_plan",)

    def __init__(self, plan: Plan) -> None:
        self._plan = plan

    @property
    def source(self) -> str:
        """The data source's name (the limiter's bucket and the recorder's label)."""
        return self._plan.source

    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, fn: Callable[P, Coroutine[Any, Any, R]]
    ) -> AsyncResilientFunction[P, R]: ...

    @overload
    def __call__(self, fn: Callable[P, R]) -> ResilientFunction[P, R]: ...

    def __call__(self, fn: Callable[P, Any]) -> Any:
        """Decorate ``fn``, keeping its signature, name and docstring.

        ``fn`` may also be a callable object or a `functools.partial` (an
        object whose ``__call__`` is ``async def`` is decorated as a coroutine
        function); to cache its results, give ``key=``: its name and the call's
        arguments do not tell them apart.

        Raises:
            ConfigError: ``fn`` is not callable, is a generator function, is
                not a function and ``cache=`` has no ``key=``, has an
                ``async def`` retry hook while it is sync, or
                does not fit the configuration: an ``async def`` function with a
                `RedisCache` (use `AsyncRedisCache`), a sync one with an
                `AsyncRedisCache`, or a sync one with an ``async def`` fallback.
        """
        plan = self._plan
        if not callable(fn):
            raise ConfigError("fn", fn, "must be a function or coroutine function")
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise ConfigError(
                "fn", fn, "must return a value: generator functions cannot be retried or cached"
            )
        is_async = is_async_callable(fn)
        cache = plan.cache
        if (
            cache is not None
            and plan.key is None
            and not (inspect.isfunction(fn) or inspect.ismethod(fn))
        ):
            # A callable object or a functools.partial: its name and the call's
            # arguments do not tell its results apart (the bound ones are not seen).
            raise ConfigError(
                "key", None, f"must be given to cache the results of {fn!r}, not a function"
            )
        if is_async and isinstance(cache, RedisCache):
            raise ConfigError("cache", cache, "must be an AsyncRedisCache for an async function")
        if not is_async and isinstance(cache, AsyncRedisCache):
            raise ConfigError("cache", cache, "must be a RedisCache for a sync function")
        if not is_async and inspect.iscoroutinefunction(plan.fallback):
            raise ConfigError(
                "fallback", plan.fallback, "must be a sync function for a sync function"
            )
        if not is_async:
            for name, hook in async_hooks(plan.retry):
                raise ConfigError(name, hook, "must be a sync function for a sync function")
        wrapper = build_async(fn, plan) if is_async else build_sync(fn, plan)
        track(plan)
        return method_or_function(wrapper, fn)

    def __repr__(self) -> str:
        plan = self._plan
        layers = [
            name
            for name, present in (
                ("cache", plan.cache is not None),
                ("limiter", plan.bucket is not None),
                ("breaker", plan.breaker is not None),
                ("retry", plan.retry is not None),
                ("timeout", plan.timeout is not None),
                ("fallback", plan.fallback is not None),
                ("metrics", plan.metrics is not None),
            )
            if present
        ]
        return f"Resilience(source={plan.source!r}, layers={layers})"


def resilient(
    source: str,
    *,
    cache: RedisCache | AsyncRedisCache | None = None,
    ttl: CachedTTL = USE_DEFAULT,
    key: Callable[..., str] | None = None,
    limiter: RateLimiter | TokenBucket | RedisTokenBucket | None = None,
    breaker: CircuitBreaker | None = None,
    retry: Retrying | int | None = None,
    timeout: float | None = None,
    fallback: Callable[..., Any] | None = None,
    metrics: Recorder | None = None,
    max_wait: float = DEFAULT_MAX_WAIT,
    clock: Clock | None = None,
) -> Resilience:
    """One decorator that protects a fetch function with the library's primitives.

    Each call passes through, in this order: **cache** (with single flight)
    → **rate limit** → **circuit breaker** → **retry** → **timeout** → the
    function. Works on sync functions and on ``async def`` functions (the
    decorated function keeps its signature for type checkers); every layer
    is optional.

    - **cache**: a fresh value is returned at once; it takes no token and no
      breaker permit. Concurrent calls missing the same key make one call
      (single flight). The key is ``key(*args, **kwargs)``, or as in
      `cached`: the function's name and its arguments bound to its signature.
    - **rate limit**: each attempt takes one token from the bucket (retries
      too: a vendor counts every request), waiting at most ``max_wait``
      seconds for it. The first attempt's token is taken before the breaker
      is asked, so the wait is not counted by the breaker; without a token in
      time the call raises `RateLimitExceeded` (``retry_after`` set). A call
      into an open circuit is turned away before it takes a token.
    - **circuit breaker**: one permit per call, judged by the call's final
      result (after its retries). Before every retry the breaker is asked
      again: when other calls opened the circuit meanwhile, the retry is not
      made and the call raises `CircuitOpenError` (chained from the last
      error).
    - **retry**: the first attempt is made directly; only a failure builds
      tenacity's ``RetryCallState`` and consults the ``Retrying`` object's
      ``retry``, ``wait`` and ``stop`` strategies (then ``after`` and
      ``before_sleep``, as tenacity does). `CircuitOpenError` is never
      retried. An error with a ``retry_after`` attribute (seconds, e.g. a
      429) makes the wait at least that, and ends the retries when longer
      than ``max_wait``. A retry for which no token comes within
      ``max_wait`` is not made. When the retries end, the last attempt's own
      error is raised (never `tenacity.RetryError`). Waits sleep on ``clock``.
    - **timeout**: per attempt; a timed-out attempt raises `TimeoutError`
      (retried like any error). ``async def``: the event loop's time, the
      attempt is cancelled. Sync: each attempt runs in a new daemon thread and
      the caller stops waiting; the abandoned call cannot be stopped and runs
      on, its result discarded (prefer your HTTP client's own timeout).

    When the call fails (an error after the retries, a rejection by the
    breaker, no token in time, a timeout), the caller gets, in this order of
    preference: a stale cached value within the cache's ``max_stale``
    (``fn.with_meta(...)`` tells it is stale), else ``fallback(*args,
    **kwargs)``, else the error. Fallback values are not cached. Exceptions
    that are not `Exception` (cancellation, ``KeyboardInterrupt``) pass
    through every layer untouched.

    Every call of the decorated function is recorded with
    ``metrics.record_request(source, outcome, seconds)``, ``outcome`` being
    one of ``ok``, ``error``, ``rejected``, ``rate_limited``, ``cached``,
    ``stale`` or ``fallback`` and ``seconds`` the time spent calling the
    source, retries included (None when this call did not call it). A
    cancelled call is not recorded. ``metrics.track(source, cache=,
    bucket=, breaker=)`` is called once when a function is decorated.

    Args:
        source: the data source's name: the limiter's bucket, the recorder's label.
        cache: a `RedisCache` (sync functions) or `AsyncRedisCache` (``async
            def``); None: no caching.
        ttl: seconds a result stays fresh, None (never expires), a callable
            called with the function's own arguments (e.g.
            ``AdaptiveTTL.ttl_for`` on ``def price(symbol)``), or `USE_DEFAULT`
            (the default: the cache's ``default_ttl``). Only with ``cache``.
        key: ``key(*args, **kwargs) -> str``, the cache key (only with
            ``cache``); needed for arguments whose repr is a memory address
            (``self``).
        limiter: a `RateLimiter` (``source`` picks its bucket, which must exist
            or come from its default), a `TokenBucket` or a `RedisTokenBucket`.
        breaker: a `CircuitBreaker`.
        retry: a `tenacity.Retrying` (its ``sleep``, ``reraise`` and
            ``retry_error_cls`` are not used; a ``before`` hook, a
            ``retry_error_callback`` and strategies that retry on results are
            refused; ``enabled=False`` means one attempt), or a number of
            attempts: ``n`` means ``stop_after_attempt(n)`` waiting 0.1 s,
            0.2 s, 0.4 s … (doubling, at most 5 s) plus up to 0.1 s at random.
            None: one attempt.
        timeout: seconds per attempt (> 0), or None.
        fallback: called with the function's arguments when the call failed and
            no stale value could be served; sync for a sync function, sync or
            ``async def`` for an ``async def`` one. Its own errors propagate.
        metrics: a recorder such as `PerformanceMetrics`.
        max_wait: the longest a call waits for permission: for a token, or for
            an error's ``retry_after`` before a retry (seconds >= 0, default
            10.0; 0: never wait; ``math.inf``: as long as it takes).
        clock: the time source for backoff sleeps, the retry strategies' notion
            of elapsed time and recorded latencies (default `SystemClock`).
            Timeouts are real time.

    Returns:
        A `Resilience`: apply it to the function. The decorated function also
        has ``with_meta(*args, **kwargs)``, which returns a `ResilientResult`
        (value, outcome, stale, age) instead of the bare value.

    Raises:
        ConfigError: at decoration, a parameter of the wrong type or out of
            range (naming it and its value), ``ttl`` or ``key`` without
            ``cache``, a source the `RateLimiter` does not know and no default,
            a retry strategy that retries on results, or a cache, fallback or
            function of the wrong kind (see `Resilience.__call__`).

    Examples:
        ```python
        from tenacity import Retrying, stop_after_attempt, wait_exponential

        from argo_perf import (
            AdaptiveTTL, AsyncRedisCache, CircuitBreaker, RateLimiter, resilient,
        )

        @resilient(
            "massive",
            cache=AsyncRedisCache("redis://localhost:6379/0"),
            ttl=AdaptiveTTL().ttl_for,
            limiter=RateLimiter(),
            breaker=CircuitBreaker("massive"),
            retry=Retrying(stop=stop_after_attempt(3), wait=wait_exponential(max=2)),
            timeout=2.0,
        )
        async def price(symbol: str) -> float:
            return await vendor.quote(symbol)

        result = await price.with_meta("AAPL")  # result.value, result.stale ...
        ```

        >>> from argo_perf import CircuitBreaker, TokenBucket
        >>> @resilient("xai", limiter=TokenBucket(5, 10), breaker=CircuitBreaker("xai"), retry=3)
        ... def sentiment(symbol: str) -> float:
        ...     return 0.7
        >>> sentiment("AAPL")
        0.7
    """
    plan = build_plan(
        source,
        cache=cache,
        ttl=ttl,
        key=key,
        limiter=limiter,
        breaker=breaker,
        retry=retry,
        timeout=timeout,
        fallback=fallback,
        metrics=metrics,
        max_wait=max_wait,
        clock=clock,
    )
    return Resilience(plan)
