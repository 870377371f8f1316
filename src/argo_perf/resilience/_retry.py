"""Retry decisions: a `tenacity.Retrying`'s strategies, consulted only after a failure.

No I/O and no sleeping here: `RetryRun.wait_after` tells a face how long to
wait before the next attempt (or that there is none), and the face sleeps on
the injected clock. A call whose first attempt succeeds never builds a
`RetryRun`, so retrying costs nothing on the happy path.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tenacity import (
    Future,
    RetryAction,
    RetryCallState,
    Retrying,
    TryAgain,
    retry_all,
    retry_always,
    retry_any,
    retry_if_not_exception_message,
    retry_if_not_result,
    retry_if_result,
    retry_unless_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)
from tenacity.after import after_nothing
from tenacity.before import before_nothing

from .. import _validate
from ..breaker import retry_after_of
from ..errors import CircuitOpenError, ConfigError

__all__ = ["RetryPlan", "RetryRun", "async_hooks", "is_async_callable", "retry_plan"]

# Strategies that retry on a returned value: the happy path never shows them
# a value (a first attempt that returns is the answer), so they are refused.
# tenacity's retry_if_not_exception_message and retry_always retry a returned
# value whatever it is.
_RESULT_STRATEGIES = (
    retry_if_result,
    retry_if_not_result,
    retry_unless_exception_type,
    retry_if_not_exception_message,
)


def default_wait() -> Callable[[RetryCallState], float]:
    """The wait of ``retry=<int>``: 0.1 s doubling per attempt, at most 5 s, plus up to 0.1 s."""
    return wait_exponential(multiplier=0.1, max=5.0, exp_base=2) + wait_random(0.0, 0.1)


@dataclass(frozen=True, slots=True)
class RetryPlan:
    """The strategies of one `tenacity.Retrying`, and the longest retry-after worth waiting for."""

    retrying: Retrying
    retry: Callable[[RetryCallState], bool]
    stop: Callable[[RetryCallState], bool]
    wait: Callable[[RetryCallState], float]
    after: Callable[[RetryCallState], None] | None
    before_sleep: Callable[[RetryCallState], None] | None
    max_wait: float


def _result_based(strategy: object) -> bool:
    if isinstance(strategy, _RESULT_STRATEGIES) or strategy is retry_always:
        return True
    if isinstance(strategy, (retry_any, retry_all)):
        return any(_result_based(inner) for inner in strategy.retries)
    return False


def retry_plan(value: object, max_wait: float) -> RetryPlan | None:
    """``retry=`` checked: None, a number of attempts (an int >= 1) or a `tenacity.Retrying`.

    Raises:
        ConfigError: anything else, naming ``retry`` and the value.
    """
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        attempts = _validate.count("retry", value)
        value = Retrying(stop=stop_after_attempt(attempts), wait=default_wait())
    if not isinstance(value, Retrying):
        raise ConfigError(
            "retry",
            value,
            "must be None, a number of attempts (int >= 1) or a tenacity.Retrying "
            "(its strategies are used for async functions too)",
        )
    if not value.enabled:
        return None
    strategies = {"retry": value.retry, "stop": value.stop, "wait": value.wait}
    for name, strategy in strategies.items():
        if is_async_callable(strategy):
            raise ConfigError(f"retry.{name}", strategy, "must be a sync tenacity strategy")
    if _result_based(value.retry):
        raise ConfigError(
            "retry.retry",
            value.retry,
            "must retry on exceptions only: raise an exception for a result to retry",
        )
    if value.before is not before_nothing:
        raise ConfigError(
            "retry.before",
            value.before,
            "is not supported (it would run before every attempt); use before_sleep",
        )
    if value.retry_error_callback is not None:
        raise ConfigError(
            "retry.retry_error_callback",
            value.retry_error_callback,
            "is not supported: use resilient(..., fallback=...)",
        )
    return RetryPlan(
        retrying=value,
        retry=value.retry,
        stop=value.stop,
        wait=value.wait,
        after=None if value.after is after_nothing else value.after,
        before_sleep=value.before_sleep,
        max_wait=max_wait,
    )


def is_async_callable(obj: object) -> bool:
    """An ``async def`` function (or partial of one), or an object whose ``__call__`` is one."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    return inspect.iscoroutinefunction(obj) or (
        callable(obj) and inspect.iscoroutinefunction(type(obj).__call__)
    )


def async_hooks(plan: RetryPlan | None) -> list[tuple[str, object]]:
    """The ``async def`` hooks (``after``, ``before_sleep``) of ``plan``, by name."""
    if plan is None:
        return []
    hooks = {"retry.after": plan.after, "retry.before_sleep": plan.before_sleep}
    return [(name, hook) for name, hook in hooks.items() if is_async_callable(hook)]


class RetryRun:
    """The retries of one call, begun at its first failure: tenacity's `RetryCallState`.

    The face calls `wait_after` with each failure and the clock's time, sleeps
    what it returns, then calls `next_attempt` before trying again.
    """

    __slots__ = ("awaiting", "plan", "state")

    def __init__(
        self,
        plan: RetryPlan,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        started: float,
    ) -> None:
        self.plan = plan
        state = RetryCallState(plan.retrying, fn, args, kwargs)
        state.start_time = started  # the injected clock's time, so stop_after_delay uses it
        self.state = state
        # What ``async def`` hooks returned, for the asyncio face to await (in order).
        self.awaiting: list[Awaitable[Any]] = []

    def wait_after(self, error: Exception, now: float) -> float | None:
        """Seconds to wait before the next attempt, or None: raise ``error``, no more attempts.

        In tenacity's order: the retry predicate (skipped for `tenacity.TryAgain`),
        ``after``, the wait, the stop, ``before_sleep``. A `CircuitOpenError` is
        never retried. An error carrying ``retry_after`` seconds makes the wait
        at least that, and ends the retries when it is longer than ``max_wait``.
        """
        plan = self.plan
        state = self.state
        outcome = Future(state.attempt_number)
        outcome.set_exception(error)
        state.outcome = outcome
        state.outcome_timestamp = now
        if isinstance(error, CircuitOpenError):
            return None
        if not isinstance(error, TryAgain) and not plan.retry(state):
            return None
        if plan.after is not None:
            self._hook(plan.after)
        wait = float(plan.wait(state))
        hinted = retry_after_of(error)
        if hinted is not None:
            if hinted > plan.max_wait:
                return None
            wait = max(wait, hinted)
        state.upcoming_sleep = wait
        if plan.stop(state):
            return None
        state.next_action = RetryAction(wait)
        state.idle_for += wait
        if plan.before_sleep is not None:
            self._hook(plan.before_sleep)
        return wait

    def _hook(self, hook: Callable[[RetryCallState], Any]) -> None:
        result = hook(self.state)
        if inspect.isawaitable(result):
            self.awaiting.append(result)

    def take_awaiting(self) -> list[Awaitable[Any]]:
        """What the hooks of the last `wait_after` returned to be awaited (asyncio face)."""
        awaiting, self.awaiting = self.awaiting, []
        return awaiting

    def next_attempt(self) -> None:
        """Count the attempt about to be made."""
        self.state.prepare_for_next_attempt()
