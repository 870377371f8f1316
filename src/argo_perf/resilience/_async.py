"""The asyncio face of `resilient`: `_sync` with ``await``.

The same layers in the same order; waiting is ``await`` (tokens with
``acquire_async``, backoff with ``clock.sleep_async``), the breaker's
decorator compiles an ``async`` call path, the timeout is the event loop's. A
cancelled call leaves every primitive as it was: a waiting token is handed
back by the bucket, the breaker counts a cancelled call for nothing and gives
a half-open permit back, and a cached load shared with other callers goes on
for them.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Awaitable, Callable
from typing import Any, cast

from ..breaker import CircuitState
from ..cache import AsyncRedisCache
from ..cache._decorator import default_key, ttl_of_call
from ..ratelimit import RedisTokenBucket
from ._plan import Call, Ends, Found, Plan, dress, from_cache, token_at_hand
from ._result import ResilientResult
from ._retry import RetryRun
from ._steps import HOOK, SLEEP, TOKEN, WAIT_TIME, Steps, admission, retries

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
    try_acquire = token_at_hand(bucket)

    async def run(steps: Steps, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run a slow path (see `_steps`): each request it yields, awaited, then its result."""
        reply: Any = None
        failure: Exception | None = None
        while True:
            try:
                kind, arg = steps.send(reply) if failure is None else steps.throw(failure)
            except StopIteration as done:
                return done.value
            reply = failure = None
            if kind is SLEEP:
                await clock.sleep_async(arg)
            elif kind is HOOK:
                await arg  # what an async def retry hook returned
            elif kind is TOKEN:
                assert bucket is not None
                reply = await bucket.acquire_async(1, max_wait)  # counted once: see token_at_hand
            elif kind is WAIT_TIME:
                if isinstance(bucket, RedisTokenBucket):
                    reply = await bucket.wait_time_async()
                else:
                    assert bucket is not None
                    reply = bucket.wait_time()
            else:
                try:
                    reply = await attempt(*args, **kwargs)
                except Exception as exc:  # the steps decide what it means
                    failure = exc

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
        except Exception as error:  # only now is any retry state built
            first = RetryRun(retry, fn, args, kwargs, started)
            steps = retries(first, error, now, breaker, admitted, bucket is not None)
            return await run(steps, args, kwargs)

    # The breaker's own decorator: its call path compiled with attempts' parameters.
    guarded = attempts if breaker is None else breaker(attempts)

    async def call_source(args: tuple[Any, ...], kwargs: dict[str, Any], call: Call | None) -> Any:
        # The rate limit's fast path inline: a closed circuit and a token at hand in process.
        if bucket is not None and (
            (breaker is not None and breaker.state is _OPEN) or not try_acquire()
        ):
            await run(admission(breaker, source), args, kwargs)
        return await guarded(args, kwargs, call)

    ends = Ends(plan)
    cache = cast(AsyncRedisCache | None, plan.cache)
    # The default key only with a cache: a callable object has no name to key by.
    make_key = plan.key or (default_key(fn) if cache is not None else None)
    ttl_for = ttl_of_call(plan.ttl)
    fallback = plan.fallback

    async def resolve(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Found:
        call = Call()
        key = "" if make_key is None else make_key(*args, **kwargs)
        try:
            if cache is None:
                return ends.found((await call_source(args, kwargs, call), "ok", False, 0.0), call)
            meta = await cache.get_with_meta(
                key, lambda: call_source(args, kwargs, call), ttl_for(args, kwargs)
            )
        except Exception as error:
            if fallback is None:
                ends.failed(error, call)
                raise
            try:
                value = fallback(*args, **kwargs)
                if inspect.isawaitable(value):
                    value = await value
            except Exception:
                ends.failed(error, call)
                raise
            return ends.fell_back(value, call)
        assert meta is not None  # with a factory there is always a value
        return ends.found(from_cache(meta, call), call)

    if plan.lean:

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            # call_source inline: one frame less on the path every call takes.
            if bucket is not None and (
                (breaker is not None and breaker.state is _OPEN) or not try_acquire()
            ):
                await run(admission(breaker, source), args, kwargs)
            return await guarded(args, kwargs, None)

    else:

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return (await resolve(args, kwargs))[0]

    async def with_meta(*args: Any, **kwargs: Any) -> ResilientResult[Any]:
        return ResilientResult(*(await resolve(args, kwargs)))

    dress(wrapper, with_meta, fn)
    return wrapper
