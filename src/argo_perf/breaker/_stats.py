"""Snapshots of a breaker and of its shared state: plain values, frozen.

[BreakerStats][argo_perf.breaker.BreakerStats] is what
[CircuitBreaker.stats][argo_perf.breaker.CircuitBreaker.stats] returns;
[BreakerMetrics][argo_perf.breaker.BreakerMetrics] is its older form (the state as a
`CircuitState`), kept for `metrics()`; [SharedStateStats][argo_perf.breaker.SharedStateStats]
is what [RedisBreakerState.stats][argo_perf.breaker.RedisBreakerState.stats] returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._core import CircuitState

__all__ = ["BreakerMetrics", "BreakerStats", "SharedStateStats"]


@dataclass(frozen=True, slots=True)
class BreakerStats:
    """A snapshot of one breaker, from `CircuitBreaker.stats`.

    Counts are since construction (successes on the closed fast path are
    counted without a lock, so under heavy thread contention a few may be
    missed). `failure_rate` and `slow_call_rate` come from the window of a
    `FailureRate` / `SlowCallRate` rule when one is configured, otherwise from
    the counts.

    Attributes:
        name: the breaker's name.
        state: the current state: `"closed"`, `"open"` or `"half_open"` (the
            value of its `CircuitState`).
        forced_open: True after `force_open()`.
        disabled: True after `disable()`.
        calls: calls judged (successes + failures + ignored).
        successes: calls judged successful.
        failures: calls judged failed.
        ignored: calls that counted for nothing.
        slow_calls: calls slower than the slow-call threshold (if one is set).
        rejections: calls rejected without running.
        stale: results that arrived after a change of state and were not
            counted towards the new state.
        opened: how many times the circuit opened (by its own trip rules or
            by adopting another process's opening).
        consecutive_failures: the current run of failures (with the
            consecutive-failures rule).
        failure_rate: share of failed calls, 0.0–1.0.
        slow_call_rate: share of slow calls, 0.0–1.0, or None without a
            slow-call rule.
        retry_after: seconds until a call is admitted (0.0 when now, `inf`
            when forced open).
        probes_in_flight: half-open permits held by probes that have not
            reported yet (0 outside half-open).
    """

    name: str
    state: str
    forced_open: bool
    disabled: bool
    calls: int
    successes: int
    failures: int
    ignored: int
    slow_calls: int
    rejections: int
    stale: int
    opened: int
    consecutive_failures: int
    failure_rate: float
    slow_call_rate: float | None
    retry_after: float
    probes_in_flight: int


@dataclass(frozen=True)
class BreakerMetrics:
    """A snapshot of one breaker, from `CircuitBreaker.metrics()` (the older name).

    Prefer [CircuitBreaker.stats][argo_perf.breaker.CircuitBreaker.stats] and
    [BreakerStats][argo_perf.breaker.BreakerStats], which hold the same values (and
    the half-open probes in flight) with the state as a plain string. The
    attributes mean what they mean there; `state` is a `CircuitState`.

    Attributes:
        name: the breaker's name.
        state: the current state.
        forced_open: True after `force_open()`.
        disabled: True after `disable()`.
        calls: calls judged (successes + failures + ignored).
        successes: calls judged successful.
        failures: calls judged failed.
        ignored: calls that counted for nothing.
        slow_calls: calls slower than the slow-call threshold (if one is set).
        rejections: calls rejected without running.
        stale: results that arrived after a change of state.
        opened: how many times the circuit opened.
        consecutive_failures: the current run of failures.
        failure_rate: share of failed calls, 0.0–1.0.
        slow_call_rate: share of slow calls, 0.0–1.0, or None without a slow-call rule.
        retry_after: seconds until a probe is admitted while open, else 0.0.
    """

    name: str
    state: CircuitState
    forced_open: bool
    disabled: bool
    calls: int
    successes: int
    failures: int
    ignored: int
    slow_calls: int
    rejections: int
    stale: int
    opened: int
    consecutive_failures: int
    failure_rate: float
    slow_call_rate: float | None
    retry_after: float


@dataclass(frozen=True, slots=True)
class SharedStateStats:
    """A snapshot of a `RedisBreakerState`'s dealings with Redis.

    Attributes:
        target: the Redis server (URL without password, or the client's kind).
        available: True while the backend-health gate considers Redis up.
        errors: Redis calls that failed (outages and error replies).
        outages: of those, the ones that mean Redis could not be reached or
            did not answer in time.
        bad_replies: replies of an unexpected shape, ignored.
        skipped: requests not sent to Redis: the gate was down, or Redis had
            just failed a half-open probe's lease request in the same call.
    """

    target: str
    available: bool
    errors: int
    outages: int
    bad_replies: int
    skipped: int
