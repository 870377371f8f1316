"""The sync face of `resilient`: the layers around a plain function, for threads.

Outside in: the cache (`RedisCache.get_with_meta`, single flight and stale
serving), the rate limit, the circuit breaker (its decorator around the
attempts), the retries, the timeout (a worker thread per attempt) and the
call. The async face
(`_async`) is the same code with ``await``; what the two share without I/O
is in `_plan` and `_retry`, and the slow paths' policy in `_steps`.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any, cast

from ..breaker import CircuitState
from ..cache import RedisCache
from ..cache._decorator import default_key, ttl_of_call
from ._plan import Call, Ends, Found, Plan, dress, from_cache, token_at_hand
from ._result import ResilientResult
from ._retry import RetryRun
from ._steps import HOOK, SLEEP, TOKEN, WAIT_TIME, Steps, admission, retries

__all__ = ["build_sync", "timed"]

_OPEN = CircuitState.OPEN
_CLOSED = CircuitState.CLOSED


MAX_OVERDUE = 32
"""Attempts of one decorated function left running past their timeout, at most.

A thread cannot be stopped: each attempt that times out (or whose caller is
interrupted while it waits) runs on until the function returns. A vendor that
hangs would otherwise leave one thread per attempt behind, without bound; while
this many run on, an attempt fails at once with `TimeoutError`, starting no
thread, until one of them returns. Attempts already waiting when the bound is
reached may still add to them: at most this many plus the callers waiting at
that moment are left behind.
"""


def timed(fn: Callable[..., Any], seconds: float, source: str) -> Callable[..., Any]:
    """``fn`` run in a worker thread per call, waited for at most ``seconds``.

    On timeout the caller gets `TimeoutError` and stops waiting; the call
    itself cannot be stopped and runs on in its (daemon) thread, its result
    discarded. The worker runs in a copy of the caller's context variables.
    While `MAX_OVERDUE` attempts are still running past their timeout, a new
    attempt raises `TimeoutError` at once.
    """
    lock = threading.Lock()
    overdue = 0  # attempts abandoned by their caller and still running

    def attempt(*args: Any, **kwargs: Any) -> Any:
        nonlocal overdue
        if overdue >= MAX_OVERDUE:  # read without the lock: a bound, not a count
            raise TimeoutError(
                f"{source} did not answer within {seconds:g} s: {overdue} earlier calls "
                "are still running past their timeout"
            )
        finished = threading.Event()
        outcome: list[tuple[bool, Any]] = []
        abandoned = False
        context = contextvars.copy_context()

        def run() -> None:
            nonlocal overdue
            try:
                outcome.append((True, context.run(fn, *args, **kwargs)))
            except BaseException as exc:  # handed to the caller as it is
                outcome.append((False, exc))
            finally:
                with lock:
                    finished.set()
                    if abandoned:
                        overdue -= 1

        def abandon() -> bool:
            """Leave the worker running, counted as overdue; False if it has finished."""
            nonlocal abandoned, overdue
            # Decided under the lock: either the worker has finished (its outcome
            # is taken after all) or it counts as overdue until it does.
            with lock:
                if finished.is_set():
                    return False
                abandoned = True
                overdue += 1
                return True

        threading.Thread(target=run, name=f"argo_perf call to {source}", daemon=True).start()
        try:
            answered = finished.wait(seconds)
        except BaseException:  # the caller interrupted while waiting: the worker runs on
            abandon()
            raise
        if not answered and abandon():
            raise TimeoutError(f"{source} did not answer within {seconds:g} s")
        ok, value = outcome[0]
        if ok:
            return value
        raise value

    return attempt


def _nothing() -> None:
    pass


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
    try_acquire = token_at_hand(bucket)

    def run(steps: Steps, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run a slow path (see `_steps`): each request it yields, then its result."""
        reply: Any = None
        failure: Exception | None = None
        while True:
            try:
                kind, arg = steps.send(reply) if failure is None else steps.throw(failure)
            except StopIteration as done:
                return done.value
            reply = failure = None
            if kind is SLEEP:
                clock.sleep(arg)
            elif kind is HOOK:
                # A sync hook that returned an awaitable (async def hooks are refused
                # on sync functions): nothing here can await it.
                getattr(arg, "close", _nothing)()
            elif kind is TOKEN:
                assert bucket is not None
                reply = bucket.acquire(1, max_wait)  # counted once: see token_at_hand
            elif kind is WAIT_TIME:
                assert bucket is not None
                reply = bucket.wait_time()
            else:
                try:
                    reply = attempt(*args, **kwargs)
                except Exception as exc:  # the steps decide what it means
                    failure = exc

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
        except Exception as error:  # only now is any retry state built
            first = RetryRun(retry, fn, args, kwargs, started)
            return run(
                retries(first, error, now, breaker, admitted, bucket is not None), args, kwargs
            )

    # The breaker's own decorator: its call path compiled with attempts' parameters.
    guarded = attempts if breaker is None else breaker(attempts)

    def call_source(args: tuple[Any, ...], kwargs: dict[str, Any], call: Call | None) -> Any:
        # The rate limit's fast path inline: a closed circuit and a token at hand in process.
        if bucket is not None and (
            (breaker is not None and breaker.state is _OPEN) or not try_acquire()
        ):
            run(admission(breaker, source), args, kwargs)
        return guarded(args, kwargs, call)

    ends = Ends(plan)
    cache = cast(RedisCache | None, plan.cache)
    # The default key only with a cache: a callable object has no name to key by.
    make_key = plan.key or (default_key(fn) if cache is not None else None)
    ttl_for = ttl_of_call(plan.ttl)
    fallback = plan.fallback

    def resolve(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Found:
        call = Call()
        key = "" if make_key is None else make_key(*args, **kwargs)
        try:
            if cache is None:
                return ends.found((call_source(args, kwargs, call), "ok", False, 0.0), call)
            meta = cache.get_with_meta(
                key, lambda: call_source(args, kwargs, call), ttl_for(args, kwargs)
            )
        except Exception as error:
            if fallback is None:
                ends.failed(error, call)
                raise
            try:
                value = fallback(*args, **kwargs)
            except Exception:
                ends.failed(error, call)
                raise
            return ends.fell_back(value, call)
        assert meta is not None  # with a factory there is always a value
        return ends.found(from_cache(meta, call), call)

    if plan.lean:

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            # call_source inline: one frame less on the path every call takes.
            if bucket is not None and (
                (breaker is not None and breaker.state is _OPEN) or not try_acquire()
            ):
                run(admission(breaker, source), args, kwargs)
            return guarded(args, kwargs, None)

    else:

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return resolve(args, kwargs)[0]

    def with_meta(*args: Any, **kwargs: Any) -> ResilientResult[Any]:
        return ResilientResult(*resolve(args, kwargs))

    dress(wrapper, with_meta, fn)
    return wrapper
