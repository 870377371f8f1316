"""The breaker's state machine: plain code, no I/O, the time passed in as an argument.

Both faces (sync and asyncio) and the Redis-shared variant drive one
`BreakerCore`; it never sleeps, never calls a clock and never runs user
code, so its lock is only ever held for a few attribute updates.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import _validate
from ..errors import ConfigError
from ._nesting import NESTED
from ._policy import ConsecutiveFailures, Outcome, TripRule, _is_number, retry_after_of
from ._stats import BreakerStats

__all__ = [
    "BreakerCore",
    "CircuitBreakerConfig",
    "CircuitState",
    "Transition",
]

logger = logging.getLogger("argo_perf.breaker")

DEFAULT_IGNORED: tuple[type[BaseException], ...] = (
    asyncio.CancelledError,
    KeyboardInterrupt,
    GeneratorExit,
)


class CircuitState(enum.Enum):
    """The three states of a circuit breaker."""

    CLOSED = "closed"
    """Calls pass; outcomes are recorded and may trip the circuit."""
    OPEN = "open"
    """Calls are rejected with `argo_perf.errors.CircuitOpenError`."""
    HALF_OPEN = "half_open"
    """A limited number of probe calls pass; the others are rejected at once."""


@dataclass(frozen=True)
class CircuitBreakerConfig:
    """How a `argo_perf.breaker.CircuitBreaker` judges calls and when it opens.

    The seed configuration works as written:
    ``CircuitBreakerConfig(failure_threshold=5, success_threshold=2, timeout=60.0)``.

    Args:
        failure_threshold: consecutive failures that open the circuit (default
            5); ``None`` drops this rule (then ``trip`` must be given).
        success_threshold: successful probes in half-open that close it (default 2).
        timeout: seconds the circuit stays open (default 60.0), or a function
            of the attempt (1 for the first opening, 2 after one failed probe
            …), e.g. `argo_perf.breaker.backoff`.
        trip: more trip rules (`argo_perf.breaker.FailureRate`,
            `argo_perf.breaker.SlowCallRate`, combined with ``|``);
            any rule opens the circuit.
        half_open_permits: probe calls let through at once in half-open (default 1).
        probe_timeout: seconds after which a probe that has not finished gives
            its permit back (default 60.0).
        failure_types: exception types that count as failures (default
            ``(Exception,)``); other exceptions count as successes (the
            dependency answered), as in resilience4j, except those that are
            not `Exception`s (cancellation, interrupts, a stream closed
            early), which count for nothing.
        ignored_types: exception types that count for nothing (default
            ``CancelledError``, ``KeyboardInterrupt``, ``GeneratorExit``);
            checked before ``failure_types``.
        failure_if_result: a predicate on a returned value that makes it a
            failure (e.g. an HTTP 200 carrying an error body).
        retry_after_of: reads a server's retry-after (seconds) from a failing
            call's exception; when the call that trips the circuit carries
            one, the circuit stays open exactly that long (a reader that
            raises, or returns anything but a finite number > 0, is logged
            and ignored). Default
            `argo_perf.breaker.retry_after_of`; ``None`` turns it off.

    Raises:
        ConfigError: a value out of range, naming the parameter and the value.

    Examples:
        >>> from argo_perf.breaker import FailureRate
        >>> config = CircuitBreakerConfig(
        ...     failure_threshold=5, trip=FailureRate(0.5, last_calls=20)
        ... )
        >>> config.success_threshold
        2
    """

    failure_threshold: int | None = 5
    success_threshold: int = 2
    timeout: float | Callable[[int], float] = 60.0
    trip: TripRule | None = None
    half_open_permits: int = 1
    probe_timeout: float = 60.0
    failure_types: tuple[type[BaseException], ...] = (Exception,)
    ignored_types: tuple[type[BaseException], ...] = DEFAULT_IGNORED
    failure_if_result: Callable[[Any], bool] | None = None
    retry_after_of: Callable[[BaseException], float | None] | None = field(default=retry_after_of)

    def __post_init__(self) -> None:
        _check_count("success_threshold", self.success_threshold)
        _check_count("half_open_permits", self.half_open_permits)
        if self.failure_threshold is not None:
            _check_count("failure_threshold", self.failure_threshold)
        elif self.trip is None:
            raise ConfigError(
                "failure_threshold", None, "may be None only when trip rules are given"
            )
        if self.trip is not None and not isinstance(self.trip, TripRule):
            raise ConfigError("trip", self.trip, "must be a trip rule")
        if not callable(self.timeout):
            _check_seconds("timeout", self.timeout)
        _check_seconds("probe_timeout", self.probe_timeout)
        for name in ("failure_types", "ignored_types"):
            types = getattr(self, name)
            if not isinstance(types, tuple) or not all(
                isinstance(t, type) and issubclass(t, BaseException) for t in types
            ):
                raise ConfigError(name, types, "must be a tuple of exception types")
        for name in ("failure_if_result", "retry_after_of"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise ConfigError(name, value, "must be callable or None")

    def rule(self) -> TripRule:
        """All trip rules of this configuration, combined."""
        rules: TripRule | None = None
        if self.failure_threshold is not None:
            rules = ConsecutiveFailures(self.failure_threshold)
        if self.trip is not None:
            rules = self.trip if rules is None else rules | self.trip
        assert rules is not None
        return rules


def _check_count(name: str, value: object) -> None:
    _validate.count(name, value)


def _check_seconds(name: str, value: object) -> None:
    _validate.positive_seconds(name, value)


@dataclass(frozen=True)
class Transition:
    """One change of state, as handed to listeners.

    Attributes:
        name: the breaker's name.
        old: the state before.
        new: the state after.
        reason: why (``"tripped"``, ``"probe failed"``, ``"timeout elapsed"``,
            ``"probes succeeded"``, ``"forced open"``, ``"disabled"``,
            ``"reset"``, ``"opened elsewhere"``).
        open_for: seconds the circuit will stay open, for transitions to OPEN.
    """

    name: str
    old: CircuitState
    new: CircuitState
    reason: str
    open_for: float = 0.0


_NORMAL, _FORCED_OPEN, _DISABLED = 0, 1, 2
REJECTED = -1
"""What `BreakerCore.admit` returns for a rejected call."""
_MIN_RETRY_AFTER = 0.001
"""The least ``retry_after`` a rejection carries (seconds): a rejected caller always waits."""

_CLOSED = CircuitState.CLOSED
_OPEN = CircuitState.OPEN
_HALF_OPEN = CircuitState.HALF_OPEN


class BreakerCore:
    """The state machine of one breaker: admission, judgement, transitions.

    Not public: `argo_perf.breaker.CircuitBreaker` is the face. Every
    method that needs the time takes it as ``now`` (monotonic seconds).

    Tickets: each admitted call gets an int ticket. In CLOSED the ticket is
    the state's generation; in HALF_OPEN each probe gets its own ticket (a key
    of ``_probes``). A result whose ticket no longer matches (the state moved
    on, or the probe timed out and its permit went to another caller) is
    counted as stale and changes nothing.

    ``fast`` is the closed generation while a success would change nothing but
    the success count (closed, only the consecutive-failures rule, no run of
    failures under way, no result predicate, no slow-call rule), else None.
    The faces read it once per call and skip everything else when it is set.
    """

    __slots__ = (
        "_config",
        "_lock",
        "_mode",
        "_open_for",
        "_plain",
        "_probe_successes",
        "_probes",
        "_seq",
        "_tracker",
        "calls",
        "failures",
        "fast",
        "fast_successes",
        "gen",
        "ignored",
        "inside",
        "name",
        "open_until",
        "opened",
        "opens_in_a_row",
        "pending",
        "rejections",
        "slow_calls",
        "slow_threshold",
        "stale",
        "state",
        "successes",
    )

    def __init__(self, name: str, config: CircuitBreakerConfig) -> None:
        self.name = name
        self._config = config
        rule = config.rule()
        self._tracker = rule.tracker()
        self.slow_threshold = rule.slow_threshold()
        self._plain = config.failure_if_result is None and not rule.measures_duration
        self._lock = threading.Lock()
        self._mode = _NORMAL
        self._seq = 0
        self.gen = 0
        self.state = _CLOSED
        self.open_until = 0.0
        self._open_for = 0.0
        self.opens_in_a_row = 0
        self._probes: dict[int, float] = {}
        self._probe_successes = 0
        self.pending: list[Transition] = []
        # Marks of the calls and ``with`` blocks in flight (see ENTERED): a dict, not
        # a set, for its size (64 bytes empty, with thousands of breakers).
        self.inside: dict[object, None] = {}
        self.calls = self.successes = self.failures = self.ignored = 0
        self.slow_calls = self.rejections = self.stale = self.opened = 0
        self.fast: int | None = None
        # Successes of the fast path: one unlocked increment, folded in by metrics().
        self.fast_successes = 0
        self._refresh_fast()

    @property
    def config(self) -> CircuitBreakerConfig:
        return self._config

    # -- judgement ----------------------------------------------------------------

    def judge_error(self, error: BaseException) -> Outcome:
        """Classify an exception: ignored types first, then failure types, else success.

        "Else success" is for exceptions the dependency answered with. A
        `BaseException` that is not an `Exception` (a cancellation, an
        interrupt, a stream closed early) is an answer of nobody: it counts for
        nothing unless ``failure_types`` names it, whatever ``ignored_types`` is.
        """
        config = self._config
        if isinstance(error, config.ignored_types):
            return Outcome.IGNORED
        if isinstance(error, config.failure_types):
            return Outcome.FAILURE
        if not isinstance(error, Exception):
            return Outcome.IGNORED
        return Outcome.SUCCESS

    def judge_result(self, result: object) -> Outcome:
        """Classify a returned value with ``failure_if_result`` (a raising predicate is logged)."""
        predicate = self._config.failure_if_result
        if predicate is None:
            return Outcome.SUCCESS
        try:
            failed = predicate(result)
        except Exception:
            logger.exception("circuit %r: failure_if_result raised; counting a success", self.name)
            return Outcome.SUCCESS
        return Outcome.FAILURE if failed else Outcome.SUCCESS

    def judge_failure(self, error: BaseException) -> tuple[Outcome, float | None]:
        """Classify an exception, with the retry-after it carries when it is a failure."""
        outcome = self.judge_error(error)
        return outcome, self.retry_after_of(error) if outcome is Outcome.FAILURE else None

    def retry_after_of(self, error: BaseException) -> float | None:
        """The retry-after a failing call carries, if the configuration reads one."""
        reader = self._config.retry_after_of
        if reader is None:
            return None
        try:
            seconds = reader(error)
        except Exception:
            logger.exception("circuit %r: retry_after_of raised; ignoring it", self.name)
            return None
        if seconds is None:
            return None
        if not _is_number(seconds) or not 0 < seconds < math.inf:
            logger.error("circuit %r: retry_after_of returned %r; ignoring it", self.name, seconds)
            return None
        return float(seconds)

    # -- admission ----------------------------------------------------------------

    def admit(self, now: float) -> int:
        """Admit a call (return its ticket) or reject it (return ``REJECTED``)."""
        state = self.state
        if state is _CLOSED:
            return self.gen
        if state is _OPEN and now < self.open_until:
            self.rejections += 1
            return REJECTED
        with self._lock:
            if self.state is _CLOSED:
                return self.gen
            if self.state is _OPEN:
                if now < self.open_until:
                    self.rejections += 1
                    return REJECTED
                self._move(_HALF_OPEN, "timeout elapsed")
            probes = self._probes
            if len(probes) >= self._config.half_open_permits:
                # A probe that hung past probe_timeout gives its permit back.
                for ticket, deadline in list(probes.items()):
                    if deadline <= now:
                        del probes[ticket]
                if len(probes) >= self._config.half_open_permits:
                    self.rejections += 1
                    return REJECTED
            self._seq += 1
            probes[self._seq] = now + self._config.probe_timeout
            return self._seq

    def release(self, ticket: int) -> None:
        """Give a half-open permit back without judging anything."""
        with self._lock:
            self._probes.pop(ticket, None)

    def is_probe(self, ticket: int) -> bool:
        """True when ``ticket`` holds one of the half-open permits."""
        return ticket in self._probes

    def retry_after(self, now: float) -> float:
        """Seconds until a call may be admitted (``inf`` when forced open, 0.0 when now).

        While open, the rest of the open time; in half-open with every permit
        held by a probe in flight, the time until the first of them reaches its
        ``probe_timeout`` and gives its permit back (a probe that finishes
        sooner frees it sooner, so this is an upper bound).
        """
        if self.state is _CLOSED and self._mode != _FORCED_OPEN:
            return 0.0
        with self._lock:
            return self._retry_after(now)

    def _retry_after(self, now: float) -> float:
        if self._mode == _FORCED_OPEN:
            return math.inf
        if self.state is _OPEN:
            return self.open_until - now if now < self.open_until else 0.0
        if self.state is _CLOSED or len(self._probes) < self._config.half_open_permits:
            return 0.0
        wait = min(self._probes.values()) - now
        return wait if wait > 0.0 else 0.0

    def rejection_retry_after(self, now: float) -> float:
        """`retry_after` for a rejected caller: never 0, so sleeping on it cannot spin."""
        wait = self.retry_after(now)
        return wait if wait > _MIN_RETRY_AFTER else _MIN_RETRY_AFTER

    def catch_up(self, now: float) -> bool:
        """Move OPEN to HALF_OPEN when the open time is over; True when it moved.

        Called by every read of the state, so listeners hear of the change as
        soon as anyone can see it, not only at the next admitted call.
        """
        if self.state is not _OPEN or now < self.open_until:
            return False
        with self._lock:
            if self.state is not _OPEN or now < self.open_until:
                return False
            self._move(_HALF_OPEN, "timeout elapsed")
            return True

    # -- results ------------------------------------------------------------------

    def settle(
        self,
        ticket: int,
        outcome: Outcome,
        duration: float,
        now: float,
        retry_after: float | None = None,
    ) -> None:
        """Record the outcome of the call admitted with ``ticket``; may change state."""
        if ticket == NESTED:
            return
        slow = self.slow_threshold is not None and duration >= self.slow_threshold
        with self._lock:
            self.calls += 1
            if outcome is Outcome.SUCCESS:
                self.successes += 1
            elif outcome is Outcome.FAILURE:
                self.failures += 1
            else:
                self.ignored += 1
            if slow and outcome is not Outcome.IGNORED:
                self.slow_calls += 1
            if self.state is _HALF_OPEN and ticket in self._probes:
                del self._probes[ticket]
                if outcome is Outcome.IGNORED:
                    return  # a cancelled or ignored probe only gives its permit back
                if outcome is Outcome.FAILURE or slow:
                    self._trip(now, retry_after, "probe failed")
                    return
                self._probe_successes += 1
                if self._probe_successes >= self._config.success_threshold:
                    self.opens_in_a_row = 0
                    self._move(_CLOSED, "probes succeeded")
                return
            if ticket != self.gen or self.state is not _CLOSED:
                self.stale += 1
                return
            if outcome is Outcome.IGNORED:
                return
            tripped = self._tracker.record(outcome is Outcome.FAILURE, duration, now)
            if tripped and self._mode == _NORMAL:
                self._trip(now, retry_after, "tripped")
            else:
                self._refresh_fast()

    # -- manual control and shared state -----------------------------------------

    def force_open(self) -> None:
        """Reject every call until `reset`."""
        with self._lock:
            self._mode = _FORCED_OPEN
            self.open_until = math.inf
            self._move(_OPEN, "forced open")

    def disable(self) -> None:
        """Admit every call and keep recording, but never change state, until `reset`."""
        with self._lock:
            self._mode = _DISABLED
            self._move(_CLOSED, "disabled")

    def reset(self) -> None:
        """Back to CLOSED with empty counters of the trip rules; ends force-open and disable."""
        with self._lock:
            self._mode = _NORMAL
            self.opens_in_a_row = 0
            self._move(_CLOSED, "reset")

    def hold_open(self, seconds: float, now: float, reason: str) -> bool:
        """Stay (or become) open for ``seconds`` because another process said so.

        Returns True when the state or the deadline changed. Does nothing while
        forced open or disabled, and never shortens an open period.
        """
        with self._lock:
            if self._mode != _NORMAL:
                return False
            until = now + seconds
            if self.state is _OPEN and self.open_until >= until:
                return False
            self._open_for = seconds
            self.open_until = until
            if self.state is not _OPEN:
                self.opened += 1
                self._move(_OPEN, reason)
            return True

    # -- snapshot -----------------------------------------------------------------

    def stats(self, now: float) -> BreakerStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            window_failure, window_slow = self._tracker.rates(now)
            successes = self.successes + self.fast_successes
            judged = successes + self.failures
            failure_rate = window_failure
            if failure_rate is None:
                failure_rate = self.failures / judged if judged else 0.0
            slow_rate = window_slow
            if slow_rate is None and self.slow_threshold is not None:
                slow_rate = self.slow_calls / judged if judged else 0.0
            tracker = self._tracker
            trackers = getattr(tracker, "trackers", (tracker,))
            consecutive = next((t.count for t in trackers if hasattr(t, "count")), 0)
            return BreakerStats(
                name=self.name,
                state=self.state.value,
                forced_open=self._mode == _FORCED_OPEN,
                disabled=self._mode == _DISABLED,
                calls=self.calls + self.fast_successes,
                successes=successes,
                failures=self.failures,
                ignored=self.ignored,
                slow_calls=self.slow_calls,
                rejections=self.rejections,
                stale=self.stale,
                opened=self.opened,
                consecutive_failures=consecutive,
                failure_rate=failure_rate,
                slow_call_rate=slow_rate,
                retry_after=self._retry_after(now),
                probes_in_flight=len(self._probes),
            )

    def reconfigure(self, config: CircuitBreakerConfig) -> None:
        """Judge and trip by ``config`` from now on; the state and the counts are kept.

        The trip rules start from empty counters; probes in flight keep their
        permits.
        """
        rule = config.rule()
        with self._lock:
            self._config = config
            self._tracker = rule.tracker()
            self.slow_threshold = rule.slow_threshold()
            self._plain = config.failure_if_result is None and not rule.measures_duration
            self._refresh_fast()

    def take_pending(self) -> list[Transition]:
        """Hand the transitions not yet announced to the caller (who runs listeners)."""
        with self._lock:
            pending, self.pending = self.pending, []
            return pending

    # -- internals (lock held) ----------------------------------------------------

    def _trip(self, now: float, retry_after: float | None, reason: str) -> None:
        self.opens_in_a_row += 1
        open_for = retry_after if retry_after is not None else self._open_time()
        self._open_for = open_for
        self.open_until = now + open_for
        self.opened += 1
        self._move(_OPEN, reason)

    def _open_time(self) -> float:
        timeout = self._config.timeout
        if not callable(timeout):
            return float(timeout)
        try:
            seconds = float(timeout(self.opens_in_a_row))
        except Exception:
            logger.exception("circuit %r: the timeout function raised; using 60 s", self.name)
            return 60.0
        if not 0 <= seconds < math.inf:
            logger.error("circuit %r: timeout function returned %r; using 60 s", self.name, seconds)
            return 60.0
        return seconds

    def _move(self, new: CircuitState, reason: str) -> None:
        old = self.state
        self.state = new
        self._seq += 1
        self.gen = self._seq
        self._probes.clear()
        self._probe_successes = 0
        self._tracker.reset()
        if new is not _OPEN and self._mode != _FORCED_OPEN:
            self.open_until = 0.0
        self._refresh_fast()
        open_for = self._open_for if new is _OPEN else 0.0
        if new is _OPEN and self._mode == _FORCED_OPEN:
            open_for = math.inf
        self.pending.append(Transition(self.name, old, new, reason, open_for))

    def _refresh_fast(self) -> None:
        if self.state is _CLOSED and self._mode == _NORMAL and self._plain and self._tracker.idle():
            self.fast = self.gen
        else:
            self.fast = None
