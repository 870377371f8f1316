"""The slow paths of a call, written once as generators of requests to the face.

The happy path (a token at hand, a closed circuit, a first attempt that
succeeds) is plain code in each face. What happens past it, the waiting for a
token and the retries, is policy: it is written here once and yields each
piece of waiting or calling it needs as a request, which the sync face runs
directly and the asyncio face with ``await``:

| request | the face | and sends back |
| --- | --- | --- |
| `(SLEEP, seconds)` | sleeps on the clock | None |
| `(TOKEN, 0.0)` | takes a token, waiting at most ``max_wait`` | True when granted |
| `(WAIT_TIME, 0.0)` | asks the bucket how long until a token | the seconds |
| `(ATTEMPT, 0.0)` | makes one attempt | its value, or its error thrown in |
| `(HOOK, awaitable)` | awaits what an ``async def`` hook returned (asyncio) | None |
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, TypeAlias

from ..breaker import CircuitBreaker, CircuitState
from ..errors import RateLimitExceeded
from ._plan import moved_since, refused_when_open, rejection
from ._retry import RetryRun

__all__ = ["ATTEMPT", "HOOK", "SLEEP", "TOKEN", "WAIT_TIME", "Steps", "admission", "retries"]

SLEEP = "sleep"
TOKEN = "token"
WAIT_TIME = "wait_time"
ATTEMPT = "attempt"
HOOK = "hook"

Steps: TypeAlias = Generator[tuple[str, Any], Any, Any]

_OPEN = CircuitState.OPEN


def admission(breaker: CircuitBreaker | None, source: str) -> Steps:
    """The rate limit past its fast path: an open circuit, or a token to wait for.

    An open circuit turns the call away before it spends a token; without a
    token within ``max_wait`` the call raises `RateLimitExceeded`.
    """
    if breaker is not None and breaker.state is _OPEN:
        refused = refused_when_open(breaker)
        if refused is not None:
            raise refused
    if not (yield TOKEN, 0.0):
        raise RateLimitExceeded(source, (yield WAIT_TIME, 0.0))


def retries(
    run: RetryRun,
    error: Exception,
    now: Callable[[], float],
    breaker: CircuitBreaker | None,
    admitted: CircuitState,
    limited: bool,
) -> Steps:
    """A call's attempts after its first failure ``error``; returns the value of one that succeeds.

    Before each retry: the wait the strategies (and the error's retry-after)
    ask for; then the breaker must still admit the call (else
    `CircuitOpenError`, chained from the last error); then, with a limiter, a
    token within ``max_wait`` (else the retries end), and the breaker once
    more. When the retries end, the last attempt's error is raised.
    """
    while True:
        wait = run.wait_after(error, now())
        for awaitable in run.take_awaiting():  # async def after / before_sleep hooks
            yield HOOK, awaitable
        if wait is None:
            raise error
        yield SLEEP, wait
        if breaker is not None and moved_since(breaker, admitted):
            raise rejection(breaker) from error
        if limited:
            if not (yield TOKEN, 0.0):
                raise error  # no token in time: the retries end here
            if breaker is not None and moved_since(breaker, admitted):
                raise rejection(breaker) from error
        run.next_attempt()
        try:
            return (yield ATTEMPT, 0.0)
        except Exception as failure:
            error = failure
