"""The sync face of `resilient`: the layers around a plain function, for threads.

Outside in: the cache (`RedisCache.get_with_meta`, single flight and stale
serving), the rate limit, the circuit breaker (its ``call``), the retries,
the timeout (a worker thread per attempt) and the call. The async face
(`_async`) is the same code with ``await``; what the two share without I/O
is in `_plan` and `_retry`.
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable
from typing import Any, cast

from ..breaker import CircuitState
from ..cache import RedisCache
from ..cache._decorator import default_key, ttl_of_call
from ..errors import RateLimitExceeded
from ..ratelimit import TokenBucket
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

__all__ = ["build_sync", "timed"]

_OPEN = CircuitState.OPEN
_CLOSED = CircuitState.CLOSED


def timed(fn: Callable[..., Any], seconds: float, source: str) -> Callable[..., Any]:
    """``fn`` run in a worker thread per call, waited for at most ``seconds``.

    On timeout the caller gets `TimeoutError` and stops waiting; the call
    itself cannot be stopped and runs on in its (daemon) thread, its result
    discarded. The worker runs in a copy of the caller's context variables.
    """

    def attempt(*args: Any, **kwargs: Any) -> Any:
        finished = threading.Event()
        outcome: list[tuple[bool, Any]] = []
        context = contextvars.copy_context()

        def run() -> None:
            try:
                outcome.append((True, context.run(fn, *args, **kwargs)))
            except BaseException as exc:  # handed to the caller as it is
                outcome.append((False, exc))
            finally:
                finished.set()

        threading.Thread(target=run, name=f"argo_perf call to {source}", daemon=True).start()
        if not finished.wait(seconds):
            raise TimeoutError(f"{source} did not answer within {seconds:g} s")
        ok, value = outcome[0]
        if ok:
            return value
        raise value

    return attempt


def _never() -> bool:
    return False


def build_sync(fn: Callable[..., Any], plan: Plan) -> Callable[..., Any]:
    """The wrapper of the sync function ``fn`` (with ``with_meta``), following ``plan``."""
    source = plan.source
    clock = plan.clock
    now = clock.monotonic
    bucket = plan.bucket
    breaker = plan.breaker
    retry = plan.retry
    max_wait = plan.max_wait
    attempt = fn if plan.timeout is None else timed(fn, plan.timeout, source)

    local = isinstance(bucket, TokenBucket)
    # In process, a token that is there is taken without waiting (the cheapest grant);
    # a Redis bucket decides in one round trip, waiting or not.
    try_acquire = bucket.try_acquire if local else _never  # type: ignore[union-attr]

    def wait_for_token() -> bool:
        """A token for one attempt, waiting at most ``max_wait``."""
        assert bucket is not None
        return (max_wait > 0 or not local) and bucket.acquire(1, max_wait)

    def retrying(
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
            clock.sleep(wait)
            if breaker is not None and moved_since(breaker, admitted):
                raise rejection(breaker) from error
            if bucket is not None:
                if not (try_acquire() or wait_for_token()):
                    raise error  # no token in time: the retries end here
                if breaker is not None and moved_since(breaker, admitted):
                    raise rejection(breaker) from error
            run.next_attempt()
            try:
                return attempt(*args, **kwargs)
            except Exception as failure:
                error = failure

    def attempts(args: tuple[Any, ...], kwargs: dict[str, Any], call: Call | None) -> Any:
        if call is not None:  # timed from the first attempt to the end of the last
            call.started = now()
            try:
                return attempts(args, kwargs, None)
            finally:
                call.ended = now()
        if retry is None:
            return attempt(*args, **kwargs)
        started = now()
        admitted = _CLOSED if breaker is None else breaker.state
        try:
            return attempt(*args, **kwargs)
        except Exception as error:
            return retrying(args, kwargs, error, started, admitted)

    # The breaker's own decorator: its call path compiled with attempts' parameters.
    guarded = attempts if breaker is None else breaker(attempts)

    def admit() -> None:
        """The rate limit past its fast path: an open circuit, or a token to wait for."""
        assert bucket is not None
        # An open circuit turns the call away before it spends a token.
        if breaker is not None and breaker.state is _OPEN:
            refused = refused_when_open(breaker)
            if refused is not None:
                raise refused
        if not (try_acquire() or wait_for_token()):
            raise RateLimitExceeded(source, bucket.wait_time())

    def call_source(args: tuple[Any, ...], kwargs: dict[str, Any], call: Call | None) -> Any:
        # The fast path inline: a closed circuit and a token at hand in process.
        if bucket is not None and (
            (breaker is not None and breaker.state is _OPEN) or not try_acquire()
        ):
            admit()
        return guarded(args, kwargs, call)

    report = reporter(plan)
    cache = cast(RedisCache | None, plan.cache)
    make_key = plan.key if plan.key is not None else default_key(fn)
    ttl_for = ttl_of_call(plan.ttl)
    fallback = plan.fallback

    def resolve(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Found:
        call = Call()
        key = None if cache is None else make_key(*args, **kwargs)
        try:
            if cache is None:
                found: Found = (call_source(args, kwargs, call), "ok", False, 0.0)
            else:
                meta = cache.get_with_meta(
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
            except Exception:
                report(outcome, call.seconds)
                raise
            report("fallback", call.seconds)
            return value, "fallback", False, None
        report(found[1], None if found[1] == "cached" else call.seconds)
        return found

    if plan.lean:

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            # call_source inline: one frame less on the path every call takes.
            if bucket is not None and (
                (breaker is not None and breaker.state is _OPEN) or not try_acquire()
            ):
                admit()
            return guarded(args, kwargs, None)

    else:

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return resolve(args, kwargs)[0]

    def with_meta(*args: Any, **kwargs: Any) -> ResilientResult[Any]:
        return ResilientResult(*resolve(args, kwargs))

    functools.update_wrapper(wrapper, fn)
    functools.update_wrapper(with_meta, fn)
    with_meta.__name__ = "with_meta"
    with_meta.__qualname__ = f"{getattr(fn, '__qualname__', 'fn')}.with_meta"
    vars(wrapper)["with_meta"] = with_meta
    return wrapper
