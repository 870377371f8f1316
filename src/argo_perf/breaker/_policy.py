"""Small, combinable policy objects for the circuit breaker.

* Trip rules (`ConsecutiveFailures`, `FailureRate`,
  `SlowCallRate`) are frozen specifications combined with ``|``; each
  breaker builds its own mutable tracker from them, so one configuration can
  be shared by many breakers.
* `backoff` is an open-time function of the attempt (exponential with
  jitter); `retry_after_of` reads a server's retry-after from an error.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .. import _validate
from ..errors import ConfigError

__all__ = [
    "AnyRule",
    "ConsecutiveFailures",
    "FailureRate",
    "Outcome",
    "SlowCallRate",
    "TripRule",
    "backoff",
    "retry_after_of",
]


class Outcome(enum.Enum):
    """How the breaker judges one call."""

    SUCCESS = "success"
    """The dependency answered properly."""
    FAILURE = "failure"
    """The dependency failed; counts towards tripping."""
    IGNORED = "ignored"
    """Neither (cancellation, an ignored error type): counts for nothing."""


class _Tracker(Protocol):
    """The mutable state of one trip rule inside one breaker."""

    def record(self, failed: bool, duration: float, now: float) -> bool:
        """Record a judged call; True when the rule wants the circuit open."""
        ...

    def idle(self) -> bool:
        """True when recording a fast success would change nothing."""
        ...

    def reset(self) -> None:
        """Forget everything (the circuit closed or reopened)."""
        ...

    def rates(self, now: float) -> tuple[float | None, float | None]:
        """(failure rate, slow-call rate) over the rule's window, when it has one."""
        ...


class TripRule:
    """Base of the trip rules: a frozen specification that builds a tracker.

    Rules combine with ``|``: the circuit opens as soon as any of them says so.

    Examples:
        >>> rule = ConsecutiveFailures(5) | FailureRate(0.5, last_calls=20)
        >>> isinstance(rule, AnyRule)
        True
    """

    measures_duration: bool = False
    """True when the rule needs the duration of every call (slow-call rules)."""

    def tracker(self) -> _Tracker:
        """Build fresh mutable state for one breaker."""
        raise NotImplementedError

    def slow_threshold(self) -> float | None:
        """The shortest duration this rule calls slow, if it judges durations."""
        return None

    def __or__(self, other: TripRule) -> AnyRule:
        mine = self.rules if isinstance(self, AnyRule) else (self,)
        theirs = other.rules if isinstance(other, AnyRule) else (other,)
        return AnyRule(mine + theirs)


@dataclass(frozen=True)
class ConsecutiveFailures(TripRule):
    """Open after ``threshold`` failures in a row (a success starts the count again).

    This is the rule ``CircuitBreakerConfig(failure_threshold=5)`` builds.

    Raises:
        ConfigError: ``threshold`` is not an int >= 1.

    Examples:
        >>> ConsecutiveFailures(3)
        ConsecutiveFailures(threshold=3)
    """

    threshold: int

    def __post_init__(self) -> None:
        _check_int("threshold", self.threshold, 1)

    def tracker(self) -> _Tracker:
        """Build a counter of consecutive failures."""
        return _ConsecutiveTracker(self.threshold)


class _ConsecutiveTracker:
    __slots__ = ("count", "threshold")

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.count = 0

    def record(self, failed: bool, duration: float, now: float) -> bool:
        if not failed:
            self.count = 0
            return False
        self.count += 1
        return self.count >= self.threshold

    def idle(self) -> bool:
        return self.count == 0

    def reset(self) -> None:
        self.count = 0

    def rates(self, now: float) -> tuple[float | None, float | None]:
        return None, None


@dataclass(frozen=True)
class FailureRate(TripRule):
    """Open when the share of failures reaches ``threshold`` over a window.

    The window is either the last ``last_calls`` calls or the last ``window``
    seconds, kept in ``buckets`` buckets (a call expires with its bucket). The
    rule judges nothing until the window holds ``minimum_calls`` calls.

    Args:
        threshold: fraction of failed calls that opens the circuit, in (0, 1].
        last_calls: a count-based window of this many calls.
        window: a time-based window of this many seconds (exclusive with
            ``last_calls``; one of the two is required).
        buckets: how many buckets a time window is cut into (default 10).
        minimum_calls: calls needed before the rate counts (default: 10, or
            ``last_calls`` when that is smaller).

    Raises:
        ConfigError: a value out of range, both or neither window given, or
            ``minimum_calls`` larger than a count window.

    Examples:
        >>> FailureRate(0.5, last_calls=20, minimum_calls=10).threshold
        0.5
    """

    threshold: float
    last_calls: int | None = None
    window: float | None = None
    buckets: int = 10
    minimum_calls: int | None = None

    def __post_init__(self) -> None:
        _check_window(self)

    def tracker(self) -> _Tracker:
        """Build the window of call outcomes."""
        return _RateTracker(self, None)


@dataclass(frozen=True)
class SlowCallRate(TripRule):
    """Open when the share of calls slower than ``slow_call_duration`` reaches ``threshold``.

    The window arguments are those of `FailureRate`. Slow calls count
    whether they succeeded or failed; ignored calls do not count. A slow
    half-open probe counts as a failed probe.

    Raises:
        ConfigError: a value out of range (see `FailureRate`), or
            ``slow_call_duration`` not > 0.

    Examples:
        >>> SlowCallRate(0.8, slow_call_duration=2.0, window=60.0).slow_threshold()
        2.0
    """

    threshold: float
    slow_call_duration: float
    last_calls: int | None = None
    window: float | None = None
    buckets: int = 10
    minimum_calls: int | None = None

    measures_duration = True

    def __post_init__(self) -> None:
        duration = self.slow_call_duration
        if isinstance(duration, bool) or not _is_number(duration) or not 0 < duration < math.inf:
            raise ConfigError("slow_call_duration", duration, "must be > 0 seconds")
        _check_window(self)

    def tracker(self) -> _Tracker:
        """Build the window of call durations."""
        return _RateTracker(self, self.slow_call_duration)

    def slow_threshold(self) -> float | None:
        """The duration from which a call counts as slow, in seconds."""
        return self.slow_call_duration


@dataclass(frozen=True)
class AnyRule(TripRule):
    """Several rules at once: the circuit opens when any of them says so (built by ``|``).

    Examples:
        >>> len((ConsecutiveFailures(5) | FailureRate(0.5, last_calls=10)).rules)
        2
    """

    rules: tuple[TripRule, ...]

    def __post_init__(self) -> None:
        if not self.rules or not all(isinstance(rule, TripRule) for rule in self.rules):
            raise ConfigError("rules", self.rules, "must be a non-empty tuple of trip rules")
        object.__setattr__(
            self, "measures_duration", any(rule.measures_duration for rule in self.rules)
        )

    def tracker(self) -> _Tracker:
        """Build one tracker per rule."""
        return _AnyTracker(tuple(rule.tracker() for rule in self.rules))

    def slow_threshold(self) -> float | None:
        """The shortest slow-call duration among the rules, if any judges durations."""
        durations = [d for d in (r.slow_threshold() for r in self.rules) if d is not None]
        return min(durations) if durations else None


class _AnyTracker:
    __slots__ = ("trackers",)

    def __init__(self, trackers: tuple[_Tracker, ...]) -> None:
        self.trackers = trackers

    def record(self, failed: bool, duration: float, now: float) -> bool:
        trip = False
        for tracker in self.trackers:  # every rule sees every call
            trip = tracker.record(failed, duration, now) or trip
        return trip

    def idle(self) -> bool:
        return all(tracker.idle() for tracker in self.trackers)

    def reset(self) -> None:
        for tracker in self.trackers:
            tracker.reset()

    def rates(self, now: float) -> tuple[float | None, float | None]:
        failure: float | None = None
        slow: float | None = None
        for tracker in self.trackers:
            f, s = tracker.rates(now)
            failure = f if failure is None else failure
            slow = s if slow is None else slow
        return failure, slow


class _RateTracker:
    """A count window (ring of marks) or a time window (ring of buckets)."""

    __slots__ = (
        "_bucket_calls",
        "_bucket_marks",
        "_epoch",
        "_index",
        "_minimum",
        "_ring",
        "_size",
        "_slow",
        "_threshold",
        "_width",
        "calls",
        "marked",
    )

    def __init__(self, spec: FailureRate | SlowCallRate, slow: float | None) -> None:
        self._threshold = spec.threshold
        assert spec.minimum_calls is not None
        self._minimum = spec.minimum_calls
        self._slow = slow
        self.calls = 0
        self.marked = 0
        self._index = 0
        self._epoch = -1
        if spec.last_calls is not None:
            self._size = spec.last_calls
            self._ring = bytearray(self._size)
            self._width = 0.0
        else:
            assert spec.window is not None
            self._size = spec.buckets
            self._ring = bytearray(0)
            self._width = spec.window / spec.buckets
        self._bucket_calls = [0] * self._size
        self._bucket_marks = [0] * self._size

    def _roll(self, now: float) -> None:
        epoch = int(now // self._width)
        if self._epoch < 0:
            self._epoch = epoch
            return
        gap = epoch - self._epoch
        if gap <= 0:
            return
        for step in range(1, min(gap, self._size) + 1):
            slot = (self._epoch + step) % self._size
            self.calls -= self._bucket_calls[slot]
            self.marked -= self._bucket_marks[slot]
            self._bucket_calls[slot] = 0
            self._bucket_marks[slot] = 0
        self._epoch = epoch

    def record(self, failed: bool, duration: float, now: float) -> bool:
        mark = int(failed) if self._slow is None else int(duration >= self._slow)
        if self._width:
            self._roll(now)
            slot = self._epoch % self._size
            self._bucket_calls[slot] += 1
            self._bucket_marks[slot] += mark
            self.calls += 1
            self.marked += mark
        else:
            index = self._index
            if self.calls == self._size:
                self.marked -= self._ring[index]
            else:
                self.calls += 1
            self._ring[index] = mark
            self.marked += mark
            self._index = (index + 1) % self._size
        return self.calls >= self._minimum and self.marked >= self._threshold * self.calls

    def idle(self) -> bool:
        return False

    def reset(self) -> None:
        self.calls = 0
        self.marked = 0
        self._index = 0
        self._epoch = -1
        for i in range(self._size):
            self._bucket_calls[i] = 0
            self._bucket_marks[i] = 0
        self._ring[:] = bytes(len(self._ring))

    def rates(self, now: float) -> tuple[float | None, float | None]:
        if self._width:
            self._roll(now)
        rate = self.marked / self.calls if self.calls else 0.0
        return (rate, None) if self._slow is None else (None, rate)


def backoff(
    initial: float = 1.0,
    maximum: float = 60.0,
    *,
    multiplier: float = 2.0,
    jitter: float = 0.1,
    rng: random.Random | None = None,
) -> Callable[[int], float]:
    """An open-time function of the attempt: exponential backoff with jitter.

    Attempt 1 (the first opening since the circuit was last closed) stays open
    ``initial`` seconds, each failed probe multiplies that by ``multiplier``,
    capped at ``maximum``; the result is then spread by up to ``±jitter`` of
    itself so that many processes do not probe at the same instant.

    Raises:
        ConfigError: a non-positive ``initial``, ``maximum < initial``,
            ``multiplier < 1`` or ``jitter`` outside [0, 1).

    Examples:
        ```python
        >>> open_for = backoff(1.0, 30.0, jitter=0.0)
        >>> [open_for(n) for n in (1, 2, 3, 10)]
        [1.0, 2.0, 4.0, 30.0]

        ```
    """
    if not _is_number(initial) or not 0 < initial < math.inf:
        raise ConfigError("initial", initial, "must be > 0 seconds")
    if not _is_number(maximum) or not initial <= maximum < math.inf:
        raise ConfigError("maximum", maximum, "must be finite and >= initial")
    if not _is_number(multiplier) or not 1 <= multiplier < math.inf:
        raise ConfigError("multiplier", multiplier, "must be >= 1")
    if not _is_number(jitter) or not 0 <= jitter < 1:
        raise ConfigError("jitter", jitter, "must be in [0, 1)")
    uniform = (rng if rng is not None else random.Random()).uniform

    def open_for(attempt: int) -> float:
        exponent = max(attempt - 1, 0)
        # Compare exponents, not powers: a long outage must not overflow.
        if multiplier > 1 and exponent * math.log(multiplier) >= math.log(maximum / initial):
            base = maximum
        else:
            base = initial * multiplier**exponent
        return base * (1.0 + uniform(-jitter, jitter)) if jitter else base

    return open_for


def retry_after_of(error: BaseException) -> float | None:
    """The default reader of a server's retry-after: a numeric ``retry_after`` attribute.

    `argo_perf.errors.RateLimitExceeded` and
    `argo_perf.errors.CircuitOpenError` carry one; so can your own
    vendor errors (e.g. from a 429 or 503 response). Anything that is not a
    finite number > 0 is ignored.

    Examples:
        >>> from argo_perf.errors import RateLimitExceeded
        >>> retry_after_of(RateLimitExceeded("xai", 7.0))
        7.0
        >>> retry_after_of(ValueError()) is None
        True
    """
    value = getattr(error, "retry_after", None)
    if isinstance(value, bool) or not _is_number(value):
        return None
    seconds = float(value)  # type: ignore[arg-type]
    return seconds if 0 < seconds < math.inf else None


_is_number = _validate.is_number


def _check_int(name: str, value: object, minimum: int) -> None:
    _validate.count(name, value, minimum=minimum)


def _check_window(spec: FailureRate | SlowCallRate) -> None:
    _validate.share("threshold", spec.threshold)
    if (spec.last_calls is None) == (spec.window is None):
        raise ConfigError(
            "last_calls", spec.last_calls, "or window must be given (exactly one of the two)"
        )
    if spec.last_calls is not None:
        _check_int("last_calls", spec.last_calls, 1)
    if spec.minimum_calls is None:
        default = 10 if spec.last_calls is None else min(10, spec.last_calls)
        object.__setattr__(spec, "minimum_calls", default)
    _check_int("minimum_calls", spec.minimum_calls, 1)
    if spec.last_calls is not None:
        if spec.minimum_calls > spec.last_calls:  # type: ignore[operator]
            raise ConfigError(
                "minimum_calls", spec.minimum_calls, f"must be <= last_calls ({spec.last_calls})"
            )
    else:
        _validate.positive_seconds("window", spec.window)
        _check_int("buckets", spec.buckets, 1)
