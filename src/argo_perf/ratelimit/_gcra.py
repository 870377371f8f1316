"""Token arithmetic: GCRA over a main window and any quotas, with time passed in.

The arithmetic is GCRA (the generic cell rate algorithm), which is a token
bucket kept as one number per window: the *theoretical arrival time* ``tat``,
the instant at which the bucket would be full again. A request for ``n``
tokens at time ``now`` would move it to ``max(tat, now) + n / rate``; it is
admitted when that is no later than ``now + burst / rate``.

Waiting is a *reservation*: a waiter that is allowed to wait moves ``tat``
forward at once and learns how long to sleep until its tokens exist. Whoever
arrives later is scheduled after it, so waiters are served first come, first
served (a waiter for 5 tokens is never overtaken by a stream of 1-token
requests), there is no waiter queue to poll, and the Redis bucket needs exactly
one round trip per acquire, waiting or not (a waiter confirms its grant with a
second when it wakes, because a penalty may have moved it). A waiter that
gives up (a cancelled task) hands its tokens back as soon as no waiter still
queued was scheduled against them: at once when it is the last, together with
the waiters before it when they gave up first (the usual order of timeouts).
A penalty moves every queued waiter to after its end.

`_TokenMath` holds that arithmetic once, as plain code that takes the time as
an argument; `bucket.lua` beside this module is the same arithmetic for state
kept in Redis (Redis cannot call Python), rule for rule, and the parity tests
hold the two together. Nothing here does I/O, takes a lock or reads a clock.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from .. import _validate as check
from ..errors import ConfigError

# Grants within a nanosecond of their due time count as due: repeated float
# additions of 1/rate must not turn an exact refill into a denial.
_EPSILON = 1e-9


def _check_timeout(timeout: float | None) -> float:
    """An acquire's ``timeout``: seconds >= 0, None (or ``math.inf``) for no limit."""
    if timeout is None:
        return math.inf
    return check.non_negative_seconds_or_inf("timeout", timeout)


@dataclass(frozen=True)
class Quota:
    """An extra window on a bucket: ``limit`` tokens per ``period`` seconds, refilled continuously.

    Vendors' free tiers combine a rate with a daily allowance (5/s and 25/day).
    A quota is a token bucket of its own with rate ``limit / period`` and burst
    ``limit``; an acquire succeeds only when the main rate and every quota
    admit it, and a denied acquire takes nothing from any of them.

    Being a bucket, it refills as it goes: over any span of ``t`` seconds it
    grants at most ``limit + limit * t / period``, so a full quota can grant
    nearly ``2 * limit`` within one ``period`` (49 in a day for
    ``Quota(25, 86_400)``). For a vendor that counts a hard "25 in any 24
    hours", give a smaller burst and the rest as rate: ``Quota(b, b * period /
    (limit - b))`` grants at most ``limit`` in any ``period``, e.g.
    ``Quota(5, 21_600)`` for 25 a day.

    Raises:
        ConfigError: ``limit`` below 1 or ``period`` not a positive number.

    Examples:
        >>> bucket = TokenBucket(5, 5, quotas=[Quota(25, 86_400)])
    """

    limit: float
    """Tokens refilled per ``period`` (also the most that can be taken at once)."""
    period: float
    """Seconds."""

    def __post_init__(self) -> None:
        check.at_least("limit", self.limit, 1)
        check.positive_seconds("period", self.period)

    @property
    def rate(self) -> float:
        """Tokens per second (``limit / period``)."""
        return self.limit / self.period

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Quota:
        """Build from ``{"limit": 25, "period": 86400}`` (e.g. parsed JSON or YAML)."""
        return _complete(cls, _known_keys(data, ("limit", "period"), "quota"), "quota")


def _known_keys(data: Mapping[str, Any], allowed: Sequence[str], what: str) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise ConfigError(what, data, "must be a mapping")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ConfigError(what, unknown, f"has unknown keys; allowed are {list(allowed)}")
    return dict(data)


T = TypeVar("T")


def _complete(cls: Callable[..., T], values: dict[str, Any], what: str) -> T:
    """``cls(**values)``; a missing key is a `ConfigError` naming ``what``, not a TypeError."""
    try:
        return cls(**values)
    except TypeError as exc:  # a required key is missing
        raise ConfigError(what, values, f"is incomplete ({exc})") from None


@contextmanager
def _located(where: str) -> Iterator[None]:
    """Name the place of a bad setting inside a nested mapping in its `ConfigError`.

    ``default`` + ``burst_size`` becomes ``default.burst_size``; an error about
    the mapping itself (``config``, ``quota``) takes the place's name.
    """
    try:
        yield
    except ConfigError as exc:
        inner = exc.parameter
        parameter = where if inner in ("config", "quota") else f"{where}.{inner}"
        raise ConfigError(parameter, exc.value, exc.requirement) from None


def _checked_quotas(quotas: object) -> tuple[Quota, ...]:
    """``quotas`` as a tuple: a list or tuple (any iterable but a string) of `Quota`."""
    if isinstance(quotas, (str, bytes, Mapping)) or not isinstance(quotas, Iterable):
        raise ConfigError("quotas", quotas, "must be a list or tuple of Quota objects")
    checked = tuple(quotas)
    for quota in checked:
        if not isinstance(quota, Quota):
            raise ConfigError("quotas", quota, "must contain Quota objects")
    return checked


def _windows(rate: float, burst: float, quotas: Iterable[Quota]) -> list[tuple[float, float]]:
    """``(interval, tolerance)`` per window: seconds per token, and burst in seconds."""
    windows = [(1.0 / rate, burst / rate)]
    for quota in quotas:
        windows.append((quota.period / quota.limit, float(quota.period)))
    return windows


class _Reservation:
    """Tokens reserved by a waiter: how many, and when they are granted."""

    __slots__ = ("grant", "tokens")

    def __init__(self, grant: float, tokens: float) -> None:
        self.grant = grant
        self.tokens = tokens


class _TokenMath:
    """GCRA over a main window and any quotas. Plain logic: no I/O, no locks, time passed in.

    The state is one theoretical arrival time per window: ``tat`` for the main
    rate, ``quota_tats`` for the quotas (kept apart because a bucket without
    quotas is the common case, and it is on every request). The Lua script in
    `_SCRIPT` is the same arithmetic for state kept in Redis.

    Reservations that wait are also kept in ``pending``, in arrival order, until
    their grant time (with the grants made at once while any waits), and
    ``base`` holds the windows as they were before the first of them. The
    windows are always ``base`` with the pending grants replayed on top, each
    at its grant time; so a refund replays without the cancelled one (what the
    later waiters were scheduled against stays taken, everything else comes
    back), and a penalty raises ``base`` and moves each pending grant to when
    the penalized windows admit it.
    """

    __slots__ = (
        "base",
        "burst",
        "interval",
        "penalty_until",
        "pending",
        "quota_intervals",
        "quota_tats",
        "quota_tolerances",
        "tat",
        "tolerance",
    )

    def __init__(self, windows: Sequence[tuple[float, float]], burst: float) -> None:
        (self.interval, self.tolerance), *quotas = windows
        # Tuples: never changed, and for a bucket without quotas the one empty
        # tuple, which `reserve` tests on every request without a memory read of
        # its own.
        self.quota_intervals = tuple(interval for interval, _ in quotas)
        self.quota_tolerances = tuple(tolerance for _, tolerance in quotas)
        self.tat = -math.inf  # full since forever
        self.quota_tats = [-math.inf] * len(quotas)
        self.burst = burst
        # No deque until a reservation waits: most buckets never queue anyone, and
        # with thousands of buckets the ~700 bytes each and the memory read on every
        # grant (``if self.pending``) would cost more than the buckets themselves.
        self.pending: deque[_Reservation] | tuple[()] = ()
        self.base: list[float] = []  # meaningful while ``pending`` is not empty
        self.penalty_until = -math.inf

    @property
    def windows(self) -> list[tuple[float, float, float]]:
        """``(tat, interval, tolerance)`` of every window, the main one first."""
        return [
            (self.tat, self.interval, self.tolerance),
            *zip(self.quota_tats, self.quota_intervals, self.quota_tolerances, strict=True),
        ]

    def reserve(self, now: float, tokens: float, max_wait: float) -> float:
        """Take ``tokens`` if they exist within ``max_wait`` seconds.

        Returns 0.0 when granted now, the seconds to wait (> 0) when reserved
        for later, or minus the seconds that would have been needed (< 0, and
        nothing taken) when that is longer than ``max_wait``.
        """
        tat = self.tat
        new = (tat if tat > now else now) + tokens * self.interval
        wait = new - self.tolerance - now
        if self.quota_intervals:
            return self._reserve_with_quotas(now, tokens, max_wait, wait)
        if wait <= _EPSILON:
            if self.pending:  # granted while others wait: part of the replay
                self._pend_if_queued(now, tokens)
            self.tat = new
            return 0.0
        if wait > max_wait + _EPSILON:  # a timeout equal to the wait is enough
            return -wait
        self._pend(now, now + wait, tokens)
        self.tat = new  # with one window ``tat >= now + wait`` here: no clamp needed
        return wait

    def _prune(self, now: float) -> None:
        """Fold the reservations whose grant time has come into ``base``."""
        pending = self.pending
        while pending and pending[0].grant <= now:
            assert isinstance(pending, deque)
            done = pending.popleft()
            if pending:
                self.base = [
                    max(tat, done.grant) + done.tokens * interval
                    for tat, (_, interval, _) in zip(self.base, self.windows, strict=True)
                ]

    def _pend_if_queued(self, now: float, tokens: float) -> None:
        """Record a grant made now when reservations still wait (they are replayed with it)."""
        self._prune(now)
        pending = self.pending
        if pending:
            assert isinstance(pending, deque)
            pending.append(_Reservation(now, tokens))

    def _pend(self, now: float, grant: float, tokens: float) -> None:
        """Record a reservation (call before the windows move); forget those granted."""
        self._prune(now)
        pending = self.pending
        if not pending:
            self.base = [self.tat, *self.quota_tats]
            if not isinstance(pending, deque):
                pending = self.pending = deque()
        pending.append(_Reservation(grant, tokens))

    def _replay(self, tats: Sequence[float]) -> list[float]:
        """The windows after every pending reservation, each at its grant time, on ``tats``."""
        tats = list(tats)
        intervals = [self.interval, *self.quota_intervals]
        for reservation in self.pending:
            for i, interval in enumerate(intervals):
                tats[i] = max(tats[i], reservation.grant) + reservation.tokens * interval
        return tats

    def _reserve_with_quotas(
        self, now: float, tokens: float, max_wait: float, wait: float
    ) -> float:
        for tat, interval, tolerance in zip(
            self.quota_tats, self.quota_intervals, self.quota_tolerances, strict=True
        ):
            wait = max(wait, (tat if tat > now else now) + tokens * interval - tolerance - now)
        if wait <= _EPSILON:
            wait = 0.0
        elif wait > max_wait + _EPSILON:
            return -wait
        # Every window records the grant at the time it really happens: the
        # latest of the windows' due times.
        grant = now + wait
        if wait:
            self._pend(now, grant, tokens)
        elif self.pending:
            self._pend_if_queued(now, tokens)
        self.tat = max(self.tat, grant) + tokens * self.interval
        for i, interval in enumerate(self.quota_intervals):
            self.quota_tats[i] = max(self.quota_tats[i], grant) + tokens * interval
        return wait

    def refund(self, now: float, reservation: _Reservation) -> None:
        """Give back a waiting reservation (``pending[-1]`` after `reserve`).

        The windows become ``base`` with the other pending reservations
        replayed at their grant times: what later waiters were scheduled
        against stays taken, the rest comes back at once. So the last waiter
        gives all its tokens back; one in the middle gives back what the
        waiters behind it were not scheduled against (possibly nothing, until
        they go too); waiters cancelled in arrival order give everything back
        once the last of them goes. A refund never takes more, never undoes a
        penalty, and a reservation whose grant time has come gives nothing back.
        """
        self._prune(now)
        pending = self.pending
        try:
            index = pending.index(reservation)
        except ValueError:  # already granted (or nothing waits)
            return
        assert isinstance(pending, deque)
        del pending[index]
        tats = self._replay(self.base)
        self.tat = min(self.tat, tats[0])
        self.quota_tats = [
            min(old, new) for old, new in zip(self.quota_tats, tats[1:], strict=True)
        ]

    def wait_time(self, now: float, tokens: float) -> float:
        """Seconds until ``tokens`` could be granted, taking nothing."""
        wait = max(
            max(tat, now) + tokens * interval - tolerance - now
            for tat, interval, tolerance in self.windows
        )
        return wait if wait > _EPSILON else 0.0

    def available(self, now: float) -> float:
        """Tokens that could be taken now (the tightest window; 0.0 while waiters are queued)."""
        return max(
            0.0,
            min(
                (tolerance - max(0.0, tat - now)) / interval
                for tat, interval, tolerance in self.windows
            ),
        )

    def penalize(self, now: float, seconds: float) -> None:
        """Grant nothing for ``seconds``; then one token is there, and the rate refills.

        Waiters already queued move too: each pending reservation is granted
        no earlier than the penalized windows admit it, in arrival order (the
        first waiter for one token at the end of the penalty). Their new grant
        times are in ``pending``; the faces re-read them when they wake.
        """
        until = now + seconds
        self.penalty_until = max(self.penalty_until, until)
        floors = [tolerance - interval + until for _, interval, tolerance in self.windows]
        self._prune(now)
        if not self.pending:
            tats = [
                max(tat, floor) for (tat, _, _), floor in zip(self.windows, floors, strict=True)
            ]
        else:
            tats = [max(tat, floor) for tat, floor in zip(self.base, floors, strict=True)]
            self.base = list(tats)
            windows = [(interval, tolerance) for _, interval, tolerance in self.windows]
            for reservation in self.pending:
                n = reservation.tokens
                grant = max(
                    reservation.grant,
                    *(tat + n * iv - tol for tat, (iv, tol) in zip(tats, windows, strict=True)),
                )
                reservation.grant = grant
                tats = [
                    max(tat, grant) + n * iv for tat, (iv, _) in zip(tats, windows, strict=True)
                ]
            tats = [max(new, old) for new, (old, _, _) in zip(tats, self.windows, strict=True)]
        self.tat, *self.quota_tats = tats

    def rescaled(
        self, now: float, windows: Sequence[tuple[float, float]], burst: float
    ) -> _TokenMath:
        """The same spending under new windows: tokens owed stay owed, at the new rates.

        Windows are matched by position (the main rate first, then the quotas);
        a new window starts full. Reservations whose grant time has come are
        folded in first, under the old windows (as the script does).
        """
        self._prune(now)
        new = _TokenMath(windows, burst)
        intervals = [interval for _, interval, _ in self.windows]

        def rescale(tats: Sequence[float]) -> list[float]:
            out = [-math.inf] * len(windows)
            for i, (tat, interval, (new_interval, _)) in enumerate(
                zip(tats, intervals, windows, strict=False)
            ):
                owed_tokens = max(0.0, tat - now) / interval
                out[i] = now + owed_tokens * new_interval if owed_tokens else -math.inf
            return out

        new.tat, *new.quota_tats = rescale([self.tat, *self.quota_tats])
        new.pending = self.pending  # waiters keep their grant times, and may cancel
        if self.pending:
            new.base = rescale(self.base)
        return new
