"""The asyncio face of `resilient`: `_sync` with ``await``.

The same layers in the same order; waiting is ``await`` (tokens with
``acquire_async``, backoff with ``clock.sleep_async``), the breaker is its
``call_async``, the timeout is the event loop's. A cancelled call leaves every
primitive as it was: a waiting token is handed back by the bucket, the breaker
counts a cancelled call for nothing and gives a half-open permit back, and a
cached load shared with other callers goes on for them.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import sys
from collections.abc import Awaitable, Callable
from typing import Any, cast

from ..breaker import CircuitState
from ..cache import AsyncRedisCache
from ..cache._decorator import default_key, ttl_of_call
from ..errors import RateLimitExceeded
from ..ratelimit import RedisTokenBucket, TokenBucket
from ._plan import (
    Call,
    Found,
    Plan,
    from_cache,
    moved_since,
    outcome_of,
    refused_when_open,
    rejection,
    reporter,
)
from ._result import ResilientResult
from ._retry import RetryRun

__all__ = ["build_async", "timed_async"]

_OPEN = CircuitState.OPEN
_CLOSED = CircuitState.CLOSED


def timed_async(
    fn: Callable[..., Awaitable[Any]], seconds: float, source: str
) -> Callable[..., Awaitable[Any]]:
    """``fn`` awaited for at most ``seconds`` of the event loop's time, then cancelled.

    On timeout the call is cancelled and the caller gets `TimeoutError`; a
    `TimeoutError` raised by ``fn`` itself passes through unchanged.
    """
    if sys.version_info >= (3, 11):

        async def attempt(*args: Any, **kwargs: Any) -> Any:
            deadline = asyncio.timeout(seconds)
            try:
                async with deadline:
                    return await fn(*args, **kwargs)
            except TimeoutError:
                if deadline.expired():
                    raise TimeoutError(f"{source} did not answer within {seconds:g} s") from None
                raise

    else:  # pragma: no cover - Python 3.10

        async def attempt(*args: Any, **kwargs: Any) -> Any:
            try:
                return await asyncio.wait_for(fn(*args, **kwargs), seconds)
            except asyncio.TimeoutError:
                raise TimeoutError(f"{source} did not answer within {seconds:g} s") from None

    return attempt


def _never() -> bool:
    return False


def build_async(fn: Callable[..., Awaitable[Any]], plan: Plan) -> Callable[..., Any]:
    """The wrapper of the ``async def`` function ``fn`` (with ``with_meta``), following ``plan``."""
    source = plan.source
    clock = plan.clock
    now = clock.monotonic
    bucket = plan.bucket
    breaker = plan.breaker
    retry = plan.retry
    max_wait = plan.max_wait
    attempt = fn if plan.timeout is None else timed_async(fn, plan.timeout, source)
    local = isinstance(bucket, TokenBucket)
    # In process, a token that is there is taken without waiting (the cheapest grant);
    # a Redis bucket decides in one round trip, waiting or not.
    try_acquire = bucket.try_acquire if local else _never  # type: ignore[union-attr]

    async def wait_for_token() -> bool:
        """A token for one attempt, waiting at most ``max_wait``."""
        assert bucket is not None
        return (max_wait > 0 or not local) and await bucket.acquire_async(1, max_wait)

    async def wait_time() -> float:
        assert bucket is not None
        if isinstance(bucket, RedisTokenBucket):
            return await bucket.wait_time_async()
        return bucket.wait_time()

    async def retrying(
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        error: Exception,
        started: float,
        admitted: CircuitState,
    ) -> Any:
        assert retry is not None
        run = RetryRun(retry, fn, args, kwargs, started)
        while True:
            wait = run.wait_after(error, now())
            if wait is None:
                raise error
            await clock.sleep_async(wait)
            if breaker is not None and moved_since(breaker, admitted):
                raise rejection(breaker) from error
            if bucket is not None:
                if not (try_acquire() or await wait_for_token()):
                    raise error  # no token in time: the retries end here
                if breaker is not None and moved_since(breaker, admitted):
                    raise rejection(breaker) from error
            run.next_attempt()
            try:
                return await attempt(*args, **kwargs)
            except Exception as failure:
                error = failure

    async def attempts(args: tuple[Any, ...], kwargs: dict[str, Any], call: Call | None) -> Any:
        if call is not None:  # timed from the first attempt to the end of the last
            call.started = now()
            try:
                return await attempts(args, kwargs, None)
            finally:
                call.ended = now()
        if retry is None:
            return await attempt(*args, **kwargs)
        started = now()
        admitted = _CLOSED if breaker is None else breaker.state
        try:
            return await attempt(*args, **kwargs)
        except Exception as error:
            return await retrying(args, kwargs, error, started, admitted)

    # The breaker's own decorator: its call path compiled with attempts' parameters.
    guarded = attempts if breaker is None else breaker(attempts)

    async def admit() -> None:
        """The rate limit past its fast path: an open circuit, or a token to wait for."""
        assert bucket is not None
        # An open circuit turns the call away before it spends a token.
        if breaker is not None and breaker.state is _OPEN:
            refused = refused_when_open(breaker)
            if refused is not None:
                raise refused
        if not (try_acquire() or await wait_for_token()):
            raise RateLimitExceeded(source, await wait_time())

    async def call_source(args: tuple[Any, ...], kwargs: dict[str, Any], call: Call | None) -> Any:
        # The fast path inline: a closed circuit and a token at hand in process.
        if bucket is not None and (
            (breaker is not None and breaker.state is _OPEN) or not try_acquire()
        ):
            await admit()
        return await guarded(args, kwargs, call)

    report = reporter(plan)
    cache = cast(AsyncRedisCache | None, plan.cache)
    make_key = plan.key if plan.key is not None else default_key(fn)
    ttl_for = ttl_of_call(plan.ttl)
    fallback = plan.fallback

    async def resolve(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Found:
        call = Call()
        key = None if cache is None else make_key(*args, **kwargs)
        try:
            if cache is None:
                found: Found = (await call_source(args, kwargs, call), "ok", False, 0.0)
            else:
                meta = await cache.get_with_meta(
                    cast(str, key), lambda: call_source(args, kwargs, call), ttl_for(args, kwargs)
                )
                assert meta is not None  # with a factory there is always a value
                found = from_cache(meta, call)
        except Exception as error:
            outcome = outcome_of(error)
            if fallback is None:
                report(outcome, call.seconds)
                raise
            try:
                value = fallback(*args, **kwargs)
                if inspect.isawaitable(value):
                    value = await value
            except Exception:
                report(outcome, call.seconds)
                raise
            report("fallback", call.seconds)
            return value, "fallback", False, None
        report(found[1], None if found[1] == "cached" else call.seconds)
        return found

    if plan.lean:

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            # call_source inline: one frame less on the path every call takes.
            if bucket is not None and (
                (breaker is not None and breaker.state is _OPEN) or not try_acquire()
            ):
                await admit()
            return await guarded(args, kwargs, None)

    else:

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return (await resolve(args, kwargs))[0]

    async def with_meta(*args: Any, **kwargs: Any) -> ResilientResult[Any]:
        return ResilientResult(*(await resolve(args, kwargs)))

    functools.update_wrapper(wrapper, fn)
    functools.update_wrapper(with_meta, fn)
    with_meta.__name__ = "with_meta"
    with_meta.__qualname__ = f"{getattr(fn, '__qualname__', 'fn')}.with_meta"
    vars(wrapper)["with_meta"] = with_meta
    return wrapper
