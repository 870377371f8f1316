"""Rate limiting: token buckets in process and in Redis, and a per-source registry.

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

:class:`_TokenMath` holds that arithmetic once, as plain code that takes the
time as an argument. :class:`TokenBucket` keeps its state in process behind a
lock; :class:`RedisTokenBucket` keeps the same state in Redis and runs the same
formulas in a Lua script (Redis cannot call Python), with
:class:`TokenBucket` as its fallback while Redis is unreachable.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import NoScriptError

from ._redis import (
    REDIS_ERRORS,
    Admission,
    AsyncRedisClient,
    BackendHealth,
    SyncRedisClient,
    async_client,
    describe_client,
    is_outage,
    redact_url,
    sync_client,
)
from .clock import Clock, SystemClock
from .errors import ConfigError, RateLimitExceeded

__all__ = [
    "Quota",
    "RateLimitConfig",
    "RateLimiter",
    "RedisTokenBucket",
    "TokenBucket",
    "get_rate_limiter",
]

logger = logging.getLogger("argo_perf.ratelimit")

# Grants within a nanosecond of their due time count as due: repeated float
# additions of 1/rate must not turn an exact refill into a denial.
_EPSILON = 1e-9


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_rate(name: str, value: object) -> float:
    if not _is_number(value) or not (0 < value < math.inf):  # type: ignore[operator]
        raise ConfigError(name, value, "must be a positive, finite number per second")
    return float(value)  # type: ignore[arg-type]


def _check_burst(name: str, value: object) -> float:
    if not _is_number(value) or not (1 <= value < math.inf):  # type: ignore[operator]
        raise ConfigError(name, value, "must be a finite number >= 1")
    return float(value)  # type: ignore[arg-type]


def _check_timeout(timeout: float | None) -> float:
    if timeout is None:
        return math.inf
    if not _is_number(timeout) or math.isnan(timeout) or timeout < 0:
        raise ValueError(f"timeout must be None or a number of seconds >= 0, got {timeout!r}")
    return float(timeout)


@dataclass(frozen=True)
class Quota:
    """An extra window on a bucket: at most ``limit`` tokens per ``period`` seconds.

    Vendors' free tiers combine a rate with a daily allowance (5/s and 25/day).
    A quota is a token bucket of its own with rate ``limit / period`` and burst
    ``limit``; an acquire succeeds only when the main rate and every quota
    admit it, and a denied acquire takes nothing from any of them.

    Raises:
        ConfigError: ``limit`` below 1 or ``period`` not a positive number.

    Example:
        >>> bucket = TokenBucket(5, 5, quotas=[Quota(25, 86_400)])
    """

    limit: float
    """Tokens allowed per ``period`` (also the most that can be taken at once)."""
    period: float
    """Seconds."""

    def __post_init__(self) -> None:
        _check_burst("limit", self.limit)
        if not _is_number(self.period) or not (0 < self.period < math.inf):
            raise ConfigError("period", self.period, "must be a positive, finite number of seconds")

    @property
    def rate(self) -> float:
        """Tokens per second (``limit / period``)."""
        return self.limit / self.period

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Quota:
        """Build from ``{"limit": 25, "period": 86400}`` (e.g. parsed JSON or YAML)."""
        return cls(**_known_keys(data, ("limit", "period"), "quota"))


def _known_keys(data: Mapping[str, Any], allowed: Sequence[str], what: str) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise ConfigError(what, data, "must be a mapping")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ConfigError(what, unknown, f"has unknown keys; allowed are {list(allowed)}")
    return dict(data)


def _windows(rate: float, burst: float, quotas: Iterable[Quota]) -> list[tuple[float, float]]:
    """``(interval, tolerance)`` per window: seconds per token, and burst in seconds."""
    windows = [(1.0 / rate, burst / rate)]
    for quota in quotas:
        if not isinstance(quota, Quota):
            raise ConfigError("quotas", quota, "must contain Quota objects")
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
    :data:`_SCRIPT` is the same arithmetic for state kept in Redis.

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
        self.quota_intervals = [interval for interval, _ in quotas]
        self.quota_tolerances = [tolerance for _, tolerance in quotas]
        self.tat = -math.inf  # full since forever
        self.quota_tats = [-math.inf] * len(quotas)
        self.burst = burst
        self.pending: deque[_Reservation] = deque()
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
        if self.quota_tats:
            return self._reserve_with_quotas(now, tokens, max_wait, wait)
        if wait <= _EPSILON:
            if self.pending:  # granted while others wait: part of the replay
                self._pend_if_queued(now, tokens)
            self.tat = new
            return 0.0
        if wait > max_wait:
            return -wait
        self._pend(now, now + wait, tokens)
        self.tat = new  # with one window ``tat >= now + wait`` here: no clamp needed
        return wait

    def _prune(self, now: float) -> None:
        """Fold the reservations whose grant time has come into ``base``."""
        pending = self.pending
        while pending and pending[0].grant <= now:
            done = pending.popleft()
            if pending:
                self.base = [
                    max(tat, done.grant) + done.tokens * interval
                    for tat, (_, interval, _) in zip(self.base, self.windows, strict=True)
                ]

    def _pend_if_queued(self, now: float, tokens: float) -> None:
        """Record a grant made now when reservations still wait (they are replayed with it)."""
        self._prune(now)
        if self.pending:
            self.pending.append(_Reservation(now, tokens))

    def _pend(self, now: float, grant: float, tokens: float) -> None:
        """Record a reservation (call before the windows move); forget those granted."""
        self._prune(now)
        if not self.pending:
            self.base = [self.tat, *self.quota_tats]
        self.pending.append(_Reservation(grant, tokens))

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
        elif wait > max_wait:
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
        """Give back a waiting reservation (``pending[-1]`` after :meth:`reserve`).

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
        except ValueError:
            return
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
        a new window starts full.
        """
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


class TokenBucket:
    """An in-process token bucket: ``rate`` tokens per second, at most ``burst`` at once.

    The bucket starts full. :meth:`try_acquire` never waits; :meth:`acquire`
    blocks the calling thread and :meth:`acquire_async` suspends the calling
    task until the tokens exist. Waiters are served first come, first served:
    a waiter reserves its tokens when it arrives and sleeps (on ``clock``)
    exactly until they exist, so a later request, however small, cannot take
    them first. When the tokens would not be there within ``timeout`` the call
    returns False at once, takes nothing and does not wait. A cancelled
    :meth:`acquire_async` (or an interrupted :meth:`acquire`) hands its tokens
    back as soon as no waiter still queued was scheduled against them: at once
    when it was the last in the queue, and otherwise when the waiters behind
    it are granted or give up too. So waiters timing out in arrival order (a
    timeout storm) leave the bucket as if they had never come, and the bucket
    never grants more than its limit. :meth:`penalize` holds back waiters
    already queued as well as new requests.

    Thread-safe; the sync and async faces may be used together.

    Args:
        rate: tokens added per second (> 0).
        burst: bucket size, the most tokens available at once (>= 1).
        quotas: extra windows that must also admit each acquire, e.g.
            ``[Quota(25, 86_400)]`` for 25 a day.
        clock: time source and sleeper (default :class:`SystemClock`).

    Raises:
        ConfigError: a non-positive rate, a burst below 1, or a bad quota.

    Example:
        >>> bucket = TokenBucket(rate=5, burst=10)
        >>> bucket.try_acquire()
        True
        >>> bucket.acquire(3, timeout=1.0)
        True
    """

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        quotas: Iterable[Quota] = (),
        clock: Clock | None = None,
    ) -> None:
        self.rate = _check_rate("rate", rate)
        self.burst = _check_burst("burst", burst)
        self.quotas = tuple(quotas)
        self._clock = clock if clock is not None else SystemClock()
        self._lock = threading.Lock()
        self._now = self._clock.monotonic
        self._use(_TokenMath(_windows(self.rate, self.burst, self.quotas), self._max_tokens()))

    def _use(self, token_math: _TokenMath) -> None:
        # Bound methods and the limit are cached: try_acquire is on every request.
        self._math = token_math
        self._reserve = token_math.reserve
        self._max = token_math.burst

    def _max_tokens(self) -> float:
        return min([self.burst, *(quota.limit for quota in self.quotas)])

    def _too_many(self, tokens: float) -> ValueError:
        return ValueError(f"tokens must be > 0 and <= {self._max:g} (the burst), got {tokens!r}")

    def try_acquire(self, tokens: float = 1) -> bool:
        """Take ``tokens`` if they are available now; never waits.

        Raises:
            ValueError: ``tokens`` is not positive or exceeds the burst.
        """
        if not 0 < tokens <= self._max:
            raise self._too_many(tokens)
        lock = self._lock
        lock.acquire()  # cheaper than ``with`` on CPython, and this is the hot path
        try:
            return self._reserve(self._now(), tokens, 0.0) == 0.0
        finally:
            lock.release()

    def acquire(self, tokens: float = 1, timeout: float | None = None) -> bool:
        """Take ``tokens``, blocking the thread until they exist.

        Returns True once they are taken, or False at once (taking nothing)
        when they would not exist within ``timeout`` seconds. ``timeout=None``
        waits as long as needed.

        Raises:
            ValueError: ``tokens`` is not positive or exceeds the burst (waiting
                could never end), or ``timeout`` is negative.
        """
        if not 0 < tokens <= self._max:
            raise self._too_many(tokens)
        max_wait = math.inf if timeout is None else _check_timeout(timeout)
        lock = self._lock
        lock.acquire()
        try:
            wait = self._reserve(self._now(), tokens, max_wait)
            if wait > 0.0:
                reservation = self._math.pending[-1]
        finally:
            lock.release()
        if wait == 0.0:
            return True
        if wait < 0.0:
            return False
        while wait > 0.0:
            try:
                self._clock.sleep(wait)
            except BaseException:  # interrupted: the reservation is void
                self._refund(reservation)
                raise
            wait = self._still_to_wait(reservation)
        return True

    async def acquire_async(self, tokens: float = 1, timeout: float | None = None) -> bool:
        """Take ``tokens``, suspending the task until they exist (see :meth:`acquire`).

        When the task is cancelled while it waits, its tokens go back to the
        bucket (all of them when it was the last waiter; see the class notes)
        and :class:`asyncio.CancelledError` propagates.
        """
        if not 0 < tokens <= self._max:
            raise self._too_many(tokens)
        max_wait = math.inf if timeout is None else _check_timeout(timeout)
        lock = self._lock
        lock.acquire()
        try:
            wait = self._reserve(self._now(), tokens, max_wait)
            if wait > 0.0:
                reservation = self._math.pending[-1]
        finally:
            lock.release()
        if wait == 0.0:
            return True
        if wait < 0.0:
            return False
        while wait > 0.0:
            try:
                await self._clock.sleep_async(wait)
            except BaseException:
                self._refund(reservation)
                raise
            wait = self._still_to_wait(reservation)
        return True

    def _still_to_wait(self, reservation: _Reservation) -> float:
        # A penalty imposed while this waiter slept moved its grant time.
        with self._lock:
            wait = reservation.grant - self._clock.monotonic()
        return wait if wait > _EPSILON else 0.0

    def _refund(self, reservation: _Reservation) -> None:
        with self._lock:
            self._math.refund(self._clock.monotonic(), reservation)

    def wait_time(self, tokens: float = 1) -> float:
        """Seconds until ``tokens`` could be taken (0.0 when now); takes nothing."""
        with self._lock:
            return self._math.wait_time(self._clock.monotonic(), tokens)

    @property
    def available(self) -> float:
        """Tokens that could be taken now (0.0 while waiters hold reservations)."""
        with self._lock:
            return self._math.available(self._clock.monotonic())

    def penalize(self, retry_after: float) -> None:
        """Grant nothing for ``retry_after`` seconds (a vendor answered 429 Retry-After).

        Nothing is granted before the penalty ends, to new requests or to
        waiters already queued: these move to after it, in arrival order. At
        the end of the penalty one token is available and the bucket refills at
        its rate; a penalty never shortens an earlier, longer one.
        """
        if not _is_number(retry_after) or not 0 <= retry_after < math.inf:
            raise ValueError(
                f"retry_after must be a finite number of seconds >= 0, got {retry_after!r}"
            )
        with self._lock:
            self._math.penalize(self._clock.monotonic(), retry_after)

    def reconfigure(self, rate: float, burst: float, quotas: Iterable[Quota] = ()) -> None:
        """Change the rate, burst and quotas in place, keeping what has been spent.

        Tokens taken (and reserved by waiters) stay taken: they count against
        the new burst and are paid back at the new rate; nothing is refilled by
        reconfiguring. Quotas are matched by position; a new one starts full.

        Raises:
            ConfigError: as the constructor.
        """
        rate = _check_rate("rate", rate)
        burst = _check_burst("burst", burst)
        quotas = tuple(quotas)
        windows = _windows(rate, burst, quotas)
        with self._lock:
            self.rate, self.burst, self.quotas = rate, burst, quotas
            now = self._clock.monotonic()
            self._use(self._math.rescaled(now, windows, self._max_tokens()))

    def __repr__(self) -> str:
        quotas = f", quotas={list(self.quotas)!r}" if self.quotas else ""
        return f"TokenBucket(rate={self.rate:g}, burst={self.burst:g}{quotas})"


# The arithmetic of _TokenMath for state kept in Redis, in microseconds of Redis
# TIME, so every process and host shares one clock and a client whose own clock
# is wrong cannot take more than its share.
#
# KEYS[1]  the bucket: its theoretical arrival times, one per window, space-separated
# KEYS[2]  the queue, while reservations wait: the last id handed out, ``base``
#          (the windows before the first pending reservation), then one
#          "id grant tokens moved" entry per pending reservation, in arrival
#          order (as _TokenMath.base and _TokenMath.pending); ``moved`` is how
#          far penalties pushed its grant time
# ARGV[2]  tokens (r, f), the penalty in microseconds (p), or the microseconds
#          of ``moved`` the waiter already slept (c)
# ARGV[1]  "r" reserve, "f" refund, "c" confirm a waiter's grant, "p" penalize
# ARGV[3]  r: the most microseconds a reserving caller will wait, -1 for no limit;
#          f, c: the reservation's id (its reply's second element)
# ARGV[4..] interval and tolerance per window, in microseconds
# Reply: 0 granted now (c: the grant time has come); {n, id} reserved, wait n > 0
# microseconds; n < 0 denied, n would have been needed (nothing taken); c: n > 0,
# a penalty moved the grant, sleep n more microseconds. (Confirming by how far the
# grant moved, not by Redis TIME, keeps the waiter's own clock in charge of sleeping.)
_SCRIPT = """
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local raw = redis.call('GET', KEYS[1])
local op, amount = ARGV[1], tonumber(ARGV[2])
local n = (#ARGV - 3) / 2
if n == 1 and op == 'r' then
  -- The hot path (one window, granted now, nobody queued): the general code
  -- below, unrolled. A queue can only hold waiters while the window is not full.
  local old = tonumber(raw)
  local known = old ~= nil and old == math.floor(old) and old > 0 and old < 1e17
  if not known then old = now end
  local tat = math.max(old, now) + amount * tonumber(ARGV[4])
  local wait = tat - tonumber(ARGV[5]) - now
  if wait <= 0 and (old <= now or redis.call('EXISTS', KEYS[2]) == 0) then
    tat = math.ceil(tat)
    local second = math.floor(tat / 1000000)
    if not known or second > math.floor(old / 1000000) then
      redis.call('SET', KEYS[1], tat, 'PX', (second + 2) * 1000 - math.floor(now / 1000))
    else
      redis.call('INCRBY', KEYS[1], tat - old)
    end
    return 0
  end
  local max_wait = tonumber(ARGV[3])
  if max_wait >= 0 and wait > max_wait then
    return -math.max(1, math.ceil(wait))
  end
end
local tats, iv, tol = {}, {}, {}
if n == 1 then
  tats[1] = tonumber(raw)
elseif raw then
  local i = 0
  for v in string.gmatch(raw, '%S+') do
    i = i + 1
    tats[i] = tonumber(v)
  end
end
for j = 1, n do
  iv[j], tol[j] = tonumber(ARGV[2 + 2 * j]), tonumber(ARGV[3 + 2 * j])
  -- missing or unreadable state counts as a full bucket
  local v = tats[j]
  if type(v) ~= 'number' or v ~= math.floor(v) or v <= 0 or v >= 1e17 then
    tats[j] = now
  end
end
-- The queue. Unreadable: no queue (waiters then keep what they reserved).
local last_id, base, queue = 0, {}, {}
local qraw = redis.call('GET', KEYS[2])
if qraw then
  local f = {}
  for v in string.gmatch(qraw, '%S+') do f[#f + 1] = tonumber(v) end
  if #f >= 1 + n and (#f - 1 - n) % 4 == 0 then
    last_id = f[1]
    for j = 1, n do base[j] = f[1 + j] end
    for k = 2 + n, #f, 4 do queue[#queue + 1] = {f[k], f[k + 1], f[k + 2], f[k + 3]} end
  end
end
local function find(id)
  for k = 1, #queue do
    if queue[k][1] == id then return k end
  end
  return nil
end
if op == 'c' then
  local k = find(tonumber(ARGV[3]))
  if k and queue[k][2] > now and queue[k][4] > amount then return queue[k][4] - amount end
  return 0
end
-- Reservations whose grant time has come are folded into base.
while #queue > 0 and queue[1][2] <= now do
  local done = table.remove(queue, 1)
  if #queue > 0 then
    for j = 1, n do base[j] = math.max(base[j], done[2]) + done[3] * iv[j] end
  end
end
local function replay(start)
  local r = {}
  for j = 1, n do r[j] = start[j] end
  for k = 1, #queue do
    for j = 1, n do r[j] = math.max(r[j], queue[k][2]) + queue[k][3] * iv[j] end
  end
  return r
end
local reply = 0
if op == 'r' then
  local wait = -1e300
  for j = 1, n do
    local w = math.max(tats[j], now) + amount * iv[j] - tol[j] - now
    if w > wait then wait = w end
  end
  local max_wait = tonumber(ARGV[3])
  if wait <= 0 then
    wait = 0
  elseif max_wait >= 0 and wait > max_wait then
    return -math.max(1, math.ceil(wait))
  end
  local grant = math.ceil(now + wait)
  if wait > 0 or #queue > 0 then
    if #queue == 0 then
      for j = 1, n do base[j] = tats[j] end
    end
    last_id = math.max(now, last_id + 1)
    queue[#queue + 1] = {last_id, grant, amount, 0}
    if wait > 0 then reply = {math.ceil(wait), last_id} end
  end
  for j = 1, n do tats[j] = math.max(tats[j], grant) + amount * iv[j] end
elseif op == 'f' then
  local k = find(tonumber(ARGV[3]))
  if not k then return 0 end  -- granted already (or its queue is gone): nothing back
  table.remove(queue, k)
  local r = replay(base)
  for j = 1, n do tats[j] = math.min(tats[j], r[j]) end
else
  -- A penalty: every window has one token at its end; queued waiters move
  -- after it, in arrival order.
  for j = 1, n do
    local floor = now + amount + tol[j] - iv[j]
    if #queue > 0 then base[j] = math.max(base[j], floor) end
    tats[j] = math.max(tats[j], floor)
  end
  local r = {}
  for j = 1, n do r[j] = base[j] end
  for k = 1, #queue do
    local e = queue[k]
    local grant = e[2]
    for j = 1, n do grant = math.max(grant, r[j] + e[3] * iv[j] - tol[j]) end
    grant = math.ceil(grant)
    e[4] = e[4] + grant - e[2]
    e[2] = grant
    for j = 1, n do r[j] = math.max(r[j], e[2]) + e[3] * iv[j] end
  end
  if #queue > 0 then
    for j = 1, n do tats[j] = math.max(tats[j], r[j]) end
  end
end
-- Whole microseconds, rounded up: never early, and exact in a Lua double.
local new_last = now
for j = 1, n do
  tats[j] = math.ceil(tats[j])
  if tats[j] > new_last then new_last = tats[j] end
end
if new_last <= now then
  redis.call('DEL', KEYS[1])  -- every window is full: the state says nothing
else
  -- The key expires when idle, within two seconds of every window being full.
  local px = (math.floor(new_last / 1000000) + 2) * 1000 - math.floor(now / 1000)
  for j = 1, n do tats[j] = string.format('%d', tats[j]) end
  redis.call('SET', KEYS[1], table.concat(tats, ' '), 'PX', px)
end
if #queue == 0 then
  redis.call('DEL', KEYS[2])
else
  local out, latest = {string.format('%d', last_id)}, now
  for j = 1, n do out[#out + 1] = string.format('%.17g', base[j]) end
  for k = 1, #queue do
    local e = queue[k]
    out[#out + 1] = string.format('%d %d %.17g %d', e[1], e[2], e[3], e[4])
    if e[2] > latest then latest = e[2] end
  end
  redis.call('SET', KEYS[2], table.concat(out, ' '), 'PX',
    math.ceil((latest - now) / 1000) + 2000)
end
return reply
"""
_SCRIPT_SHA = hashlib.sha1(_SCRIPT.encode()).hexdigest()


class _Reserved(float):
    """Seconds a reservation in Redis waits, and its id in the queue (refunds, confirms)."""

    id: int


@dataclass
class RedisBucketStats:
    """Counters of a :class:`RedisTokenBucket` (read them; they are not reset)."""

    redis_calls: int = 0
    """Script calls answered by Redis: acquires, and the refunds and penalties it applied."""
    fallback_calls: int = 0
    """Acquires decided by the local fallback bucket while Redis was unreachable."""
    errors: int = 0
    """Redis errors: outages plus answers that were not a valid reply (each logged)."""
    script_loads: int = 0
    """Times the script was (re)loaded after ``NOSCRIPT``."""


class RedisTokenBucket:
    """A token bucket kept in Redis: one limit shared by every process and host.

    Same surface and semantics as :class:`TokenBucket` (first come, first
    served waiting; ``timeout``; cancelled waiters hand their tokens back),
    with these properties:

    * waiting reservations are queued in Redis (a second key in the same
      hash slot, ``{key}:queue``, present only while someone waits), so a
      cancelled waiter of any process gives its tokens back by the same rule
      as in :class:`TokenBucket`, and :meth:`penalize` in any process holds
      back the waiters of every process;
    * one round trip per acquire that does not wait: a Lua script run with
      ``EVALSHA`` (reloaded by itself after ``NOSCRIPT``, e.g. when Redis
      restarted) decides and, when the caller may wait, reserves the tokens
      and replies how long to sleep; a waiter makes one more when it wakes,
      to learn whether a penalty moved its grant (and sleeps on if so);
    * time is Redis ``TIME``, so hosts whose clocks disagree share one limit;
    * the key is ``{prefix}{{{key}}}`` (a hash tag, so it works on Redis
      Cluster) and expires when idle (within 2 s of the bucket being full again);
    * while Redis is unreachable (the shared backend-health gate, which stops
      touching Redis after a few consecutive failures and probes it once per
      ``probe_interval``), acquires are decided by a local :class:`TokenBucket`
      with ``fallback_share`` of the rate and burst: never unlimited, never
      blocked on a dead server; it returns to Redis by itself when a probe
      succeeds.

    ``client_or_url`` is a URL (both the sync and the async faces work; the
    clients get 50 ms timeouts and no hidden retries), a sync redis-py client
    (sync face only) or an asyncio one (async face only). A face without a
    client raises :class:`TypeError`.

    Args:
        client_or_url: ``redis://...`` URL or a redis-py client.
        key: the bucket's name; every process using the same key and Redis
            shares the limit (they should agree on ``rate``, ``burst`` and
            ``quotas``).
        rate: tokens added per second (> 0).
        burst: bucket size (>= 1).
        quotas: extra windows, as for :class:`TokenBucket`.
        prefix: key prefix (default ``"argo_perf:ratelimit:"``).
        fallback_share: fraction of rate and burst the local fallback bucket
            gets (default 0.25, in (0, 1]); e.g. 1 / number of processes.
        health: a :class:`~argo_perf._redis.BackendHealth` gate to share with
            other Redis-backed objects on the same server (default: its own).
        clock: sleeper for waits and the fallback bucket's time.

    Raises:
        ConfigError: bad URL, key, rate, burst, quotas or share.

    Example:
        >>> bucket = RedisTokenBucket("redis://localhost:6379/0", "vendor:massive", 5, 10)
        >>> bucket.try_acquire()  # doctest: +SKIP
        True
    """

    def __init__(
        self,
        client_or_url: str | SyncRedisClient | AsyncRedisClient,
        key: str,
        rate: float,
        burst: float,
        *,
        quotas: Iterable[Quota] = (),
        prefix: str = "argo_perf:ratelimit:",
        fallback_share: float = 0.25,
        health: BackendHealth | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(key, str) or not key:
            raise ConfigError("key", key, "must be a non-empty string")
        if not isinstance(prefix, str):
            raise ConfigError("prefix", prefix, "must be a string")
        if not _is_number(fallback_share) or not (0 < fallback_share <= 1):
            raise ConfigError("fallback_share", fallback_share, "must be in (0, 1]")
        self.rate = _check_rate("rate", rate)
        self.burst = _check_burst("burst", burst)
        self.quotas = tuple(quotas)
        windows = _windows(self.rate, self.burst, self.quotas)
        self._max_tokens = min([self.burst, *(quota.limit for quota in self.quotas)])
        self._clock = clock if clock is not None else SystemClock()
        self.key = f"{prefix}{{{key}}}"
        self.queue_key = f"{self.key}:queue"  # the same hash slot: one script may use both
        self._sync: SyncRedisClient | None = None
        self._async: AsyncRedisClient | None = None
        self._url: str | None = None
        self._owned = False
        self._async_loop: asyncio.AbstractEventLoop | None = None
        if isinstance(client_or_url, str):
            self._sync, self._owned = sync_client(client_or_url)
            self._url = client_or_url
            target = redact_url(client_or_url)
        else:
            try:
                self._sync, self._owned = sync_client(client_or_url)  # type: ignore[arg-type]
            except ConfigError:
                self._async, self._owned = async_client(client_or_url)  # type: ignore[arg-type]
            target = describe_client(self._sync or self._async)  # type: ignore[arg-type]
        self.target = target
        self.health = health if health is not None else BackendHealth(target, clock=self._clock)
        share = float(fallback_share)
        self.fallback_share = share
        self.fallback = TokenBucket(
            self.rate * share,
            max(1.0, self.burst * share),
            quotas=[Quota(max(1.0, q.limit * share), q.period) for q in self.quotas],
            clock=self._clock,
        )
        self.stats = RedisBucketStats()
        # Everything but the tokens and the wait is fixed: encode it once.
        self._windows_args = [repr(value * 1e6).encode() for pair in windows for value in pair]
        self._keys = [_SCRIPT_SHA, 2, self.key, self.queue_key]
        self._try_one = [*self._keys, b"r", b"1", b"0", *self._windows_args]

    # -- the one round trip -------------------------------------------------

    def _args(self, op: bytes, amount: float, max_wait: float) -> list[Any]:
        if op == b"r" and amount == 1 and max_wait == 0.0:
            return self._try_one  # the common request, encoded once
        wait_us = b"-1" if max_wait == math.inf else str(math.floor(max_wait * 1e6)).encode()
        return [*self._keys, op, repr(amount).encode(), wait_us, *self._windows_args]

    def _refund_args(self, tokens: float, reserved: _Reserved) -> list[Any]:
        ident = str(reserved.id).encode()
        return [*self._keys, b"f", repr(tokens).encode(), ident, *self._windows_args]

    def _confirm_args(self, reserved: _Reserved, slept_us: int) -> list[Any]:
        ident = str(reserved.id).encode()
        return [*self._keys, b"c", str(slept_us).encode(), ident, *self._windows_args]

    def _reply(self, reply: object) -> float | None:
        """Seconds to wait (0.0 granted, < 0 denied), or None for a reply that makes no sense.

        A reservation's wait is a :class:`_Reserved` carrying its id in the queue.
        """
        if type(reply) is int:
            self.stats.redis_calls += 1
            return reply / 1e6
        if (
            type(reply) is list
            and len(reply) == 2
            and type(reply[0]) is int
            and reply[0] > 0
            and type(reply[1]) is int
        ):
            self.stats.redis_calls += 1
            reserved = _Reserved(reply[0] / 1e6)
            reserved.id = reply[1]
            return reserved
        self.stats.errors += 1
        logger.warning("redis at %s: unexpected rate limit reply %r", self.target, reply)
        return None

    def _failed(self, exc: BaseException) -> None:
        self.stats.errors += 1
        if is_outage(exc):
            self.health.record_failure(exc)
        else:
            # Redis answered (WRONGTYPE, OOM ...): it is up. Telling the gate also ends
            # a probe that got this answer, which would otherwise never probe again.
            self.health.record_success()
            logger.warning("redis at %s: rate limit script failed: %s", self.target, exc)

    def _interrupted(self, exc: BaseException) -> None:
        # A call cancelled or interrupted midway says nothing about Redis, but when it
        # was the gate's probe the gate must hear back, or it would skip Redis for good.
        if not self.health.available:
            self.health.record_failure(exc)

    def _call(self, args: list[Any]) -> float | None:
        """Run the script (sync); None when Redis is skipped or failed."""
        client = self._sync
        if client is None:
            raise TypeError(f"{self!r} has no sync client; pass a URL or a redis.Redis")
        health = self.health
        if not health.available and health.admit() is Admission.SKIP:
            return None
        try:
            try:
                reply = client.execute_command("EVALSHA", *args)  # type: ignore[no-untyped-call]
            except NoScriptError:
                client.execute_command("SCRIPT", "LOAD", _SCRIPT)  # type: ignore[no-untyped-call]
                self.stats.script_loads += 1
                reply = client.execute_command("EVALSHA", *args)  # type: ignore[no-untyped-call]
        except REDIS_ERRORS as exc:
            self._failed(exc)
            return None
        except BaseException as exc:
            self._interrupted(exc)
            raise
        health.record_success()
        return self._reply(reply)

    async def _call_async(self, args: list[Any]) -> float | None:
        """Run the script (asyncio); None when Redis is skipped or failed."""
        client = self._async_client()
        if self.health.admit() is Admission.SKIP:
            return None
        try:
            try:
                reply = await client.execute_command("EVALSHA", *args)
            except NoScriptError:
                await client.execute_command("SCRIPT", "LOAD", _SCRIPT)
                self.stats.script_loads += 1
                reply = await client.execute_command("EVALSHA", *args)
        except REDIS_ERRORS as exc:
            self._failed(exc)
            return None
        except BaseException as exc:  # e.g. the caller's task cancelled
            self._interrupted(exc)
            raise
        self.health.record_success()
        return self._reply(reply)

    def _async_client(self) -> AsyncRedisClient:
        if self._url is None:
            if self._async is None:
                raise TypeError(
                    f"{self!r} has no asyncio client; pass a URL or a redis.asyncio.Redis"
                )
            return self._async
        # A client built from a URL belongs to the event loop it first ran on.
        loop = asyncio.get_running_loop()
        if self._async is None or self._async_loop is not loop:
            self._async, _ = async_client(self._url)
            self._async_loop = loop
        return self._async

    # -- the public surface ---------------------------------------------------

    def _check_tokens(self, tokens: float) -> None:
        if not 0 < tokens <= self._max_tokens:
            raise ValueError(
                f"tokens must be > 0 and <= {self._max_tokens:g} (the burst), got {tokens!r}"
            )

    def _fallback_tokens(self, tokens: float) -> float:
        # The fallback's burst is a share of ours; a larger request takes all of it.
        self.stats.fallback_calls += 1
        return min(tokens, self.fallback._max)

    def try_acquire(self, tokens: float = 1) -> bool:
        """Take ``tokens`` if Redis says they are available now; never waits.

        Raises:
            ValueError: ``tokens`` is not positive or exceeds the burst.
        """
        if tokens == 1:  # the common request: arguments encoded once
            wait = self._call(self._try_one)
        else:
            self._check_tokens(tokens)
            wait = self._call(self._args(b"r", tokens, 0.0))
        if wait is None:
            return self.fallback.try_acquire(self._fallback_tokens(tokens))
        return wait == 0.0

    def acquire(self, tokens: float = 1, timeout: float | None = None) -> bool:
        """Take ``tokens``, blocking until they exist; False at once if not within ``timeout``.

        Redis reserves the tokens and replies how long to wait; the thread then
        sleeps that long on the clock and, when it wakes, asks Redis once more
        whether a penalty moved its grant (then it sleeps on).
        """
        self._check_tokens(tokens)
        max_wait = _check_timeout(timeout)
        wait = self._call(self._args(b"r", tokens, max_wait))
        if wait is None:
            return self.fallback.acquire(self._fallback_tokens(tokens), timeout)
        if wait == 0.0:
            return True
        if wait < 0.0:
            return False
        reserved, slept_us = wait, 0
        try:
            self._clock.sleep(wait)
            while isinstance(reserved, _Reserved):
                # Redis unreachable (None): the grant stands as reserved.
                wait = self._call(self._confirm_args(reserved, slept_us)) or 0.0
                if not wait:
                    break
                slept_us += round(wait * 1e6)
                self._clock.sleep(wait)
        except BaseException:
            if isinstance(reserved, _Reserved):
                self._call(self._refund_args(tokens, reserved))
            raise
        return True

    async def acquire_async(self, tokens: float = 1, timeout: float | None = None) -> bool:
        """The asyncio face of :meth:`acquire`; a cancelled waiter hands its tokens back."""
        self._check_tokens(tokens)
        max_wait = _check_timeout(timeout)
        wait = await self._call_async(self._args(b"r", tokens, max_wait))
        if wait is None:
            return await self.fallback.acquire_async(self._fallback_tokens(tokens), timeout)
        if wait == 0.0:
            return True
        if wait < 0.0:
            return False
        reserved, slept_us = wait, 0
        try:
            await self._clock.sleep_async(wait)
            while isinstance(reserved, _Reserved):
                wait = await self._call_async(self._confirm_args(reserved, slept_us)) or 0.0
                if not wait:
                    break
                slept_us += round(wait * 1e6)
                await self._clock.sleep_async(wait)
        except BaseException:
            # Shielded: the refund must reach Redis although this task is cancelled.
            if isinstance(reserved, _Reserved):
                await asyncio.shield(self._call_async(self._refund_args(tokens, reserved)))
            raise
        return True

    def penalize(self, retry_after: float) -> None:
        """Grant nothing for ``retry_after`` seconds, in every process sharing the key.

        The local fallback bucket is penalized too, so the pause holds during an outage.
        """
        self.fallback.penalize(retry_after)
        if self._sync is not None:
            self._call(self._args(b"p", retry_after * 1e6, 0.0))

    async def penalize_async(self, retry_after: float) -> None:
        """The asyncio face of :meth:`penalize`."""
        self.fallback.penalize(retry_after)
        await self._call_async(self._args(b"p", retry_after * 1e6, 0.0))

    @property
    def backend(self) -> str:
        """``"redis"`` while Redis decides, ``"memory"`` while the fallback does."""
        return "redis" if self.health.available else "memory"

    def close(self) -> None:
        """Close the sync client if this bucket created it."""
        if self._owned and self._sync is not None:
            self._sync.close()

    async def aclose(self) -> None:
        """Close the asyncio client if this bucket created it."""
        if (self._owned or self._url is not None) and self._async is not None:
            await self._async.aclose()
            self._async = None

    def __enter__(self) -> RedisTokenBucket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> RedisTokenBucket:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return (
            f"RedisTokenBucket(target={self.target!r}, key={self.key!r}, "
            f"rate={self.rate:g}, burst={self.burst:g}, backend={self.backend!r})"
        )


@dataclass(frozen=True)
class RateLimitConfig:
    """The limit of one data source: ``requests_per_second`` with bursts of ``burst_size``.

    ``quotas`` adds windows a vendor also enforces, e.g. ``(Quota(25, 86_400),)``
    for 25 requests a day.

    Raises:
        ConfigError: a non-positive rate, a burst below 1, or a bad quota.

    Example:
        >>> RateLimitConfig(requests_per_second=5, burst_size=10)
        RateLimitConfig(requests_per_second=5, burst_size=10, quotas=())
    """

    requests_per_second: float
    burst_size: float
    quotas: tuple[Quota, ...] = field(default=())

    def __post_init__(self) -> None:
        _check_rate("requests_per_second", self.requests_per_second)
        _check_burst("burst_size", self.burst_size)
        if not isinstance(self.quotas, tuple):
            object.__setattr__(self, "quotas", tuple(self.quotas))
        for quota in self.quotas:
            if not isinstance(quota, Quota):
                raise ConfigError("quotas", quota, "must contain Quota objects")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RateLimitConfig:
        """Build from a plain mapping, e.g. parsed JSON, YAML or environment settings.

        Example:
            >>> RateLimitConfig.from_mapping(
            ...     {"requests_per_second": 1, "burst_size": 5,
            ...      "quotas": [{"limit": 25, "period": 86400}]}
            ... ).quotas
            (Quota(limit=25, period=86400),)
        """
        values = _known_keys(data, ("requests_per_second", "burst_size", "quotas"), "config")
        quotas = values.get("quotas", ())
        if isinstance(quotas, (str, bytes)) or not isinstance(quotas, Iterable):
            raise ConfigError("quotas", quotas, "must be a list of quotas")
        values["quotas"] = tuple(
            quota if isinstance(quota, Quota) else Quota.from_mapping(quota) for quota in quotas
        )
        try:
            return cls(**values)
        except TypeError as exc:  # a required key is missing
            raise ConfigError("config", dict(data), f"is incomplete ({exc})") from None


DEFAULT_CONFIGS: Mapping[str, RateLimitConfig] = {
    "massive": RateLimitConfig(5, 10),
    "alpha_vantage": RateLimitConfig(0.2, 5),
    "xai": RateLimitConfig(1, 5),
    "sonar": RateLimitConfig(1, 5),
}
"""The seed limits :class:`RateLimiter` uses when given no configs."""


def _as_config(source: str, value: RateLimitConfig | Mapping[str, Any]) -> RateLimitConfig:
    if isinstance(value, RateLimitConfig):
        return value
    if isinstance(value, Mapping):
        return RateLimitConfig.from_mapping(value)
    raise ConfigError(f"configs[{source!r}]", value, "must be a RateLimitConfig or a mapping")


class RateLimiter:
    """A registry of token buckets, one per data source.

    Args:
        configs: source name -> :class:`RateLimitConfig` or a plain mapping
            with the same keys (``{"requests_per_second": 5, "burst_size": 10}``).
            None: the seed defaults (massive 5/s burst 10, alpha_vantage
            0.2/s burst 5, xai 1/s burst 5, sonar 1/s burst 5).
        default: the limit of a source that is not configured, each such
            source getting a bucket of its own. None (the default): an
            unknown source is a :class:`ConfigError`, never an unlimited source.
        clock: time source of every bucket.

    Thread-safe; sources are independent (one source's waiters never delay another's).

    Raises:
        ConfigError: a bad config, or (on use) an unknown source without a default.

    Example:
        >>> limiter = RateLimiter({"massive": {"requests_per_second": 5, "burst_size": 10}})
        >>> limiter.try_acquire("massive")
        True
        >>> limiter.try_acquire("nobody")
        Traceback (most recent call last):
        ...
        argo_perf.errors.ConfigError: source is not configured (known: ['massive']), got 'nobody'
    """

    def __init__(
        self,
        configs: Mapping[str, RateLimitConfig | Mapping[str, Any]] | None = None,
        *,
        default: RateLimitConfig | Mapping[str, Any] | None = None,
        clock: Clock | None = None,
    ) -> None:
        if configs is None:
            configs = DEFAULT_CONFIGS
        if not isinstance(configs, Mapping):
            raise ConfigError("configs", configs, "must be a mapping of source name to config")
        self._clock = clock if clock is not None else SystemClock()
        self.default = None if default is None else _as_config("default", default)
        self._lock = threading.Lock()
        self._configs: dict[str, RateLimitConfig] = {}
        self._buckets: dict[str, TokenBucket] = {}
        for source, value in configs.items():
            if not isinstance(source, str) or not source:
                raise ConfigError("source", source, "must be a non-empty string")
            self._add(source, _as_config(source, value))

    def _add(self, source: str, config: RateLimitConfig) -> TokenBucket:
        bucket = TokenBucket(
            config.requests_per_second,
            config.burst_size,
            quotas=config.quotas,
            clock=self._clock,
        )
        self._configs[source] = config
        self._buckets[source] = bucket
        return bucket

    def bucket(self, source: str) -> TokenBucket:
        """The bucket of ``source`` (created from ``default`` on first use when unknown).

        Raises:
            ConfigError: ``source`` is not configured and there is no default.
        """
        try:
            return self._buckets[source]
        except KeyError:
            pass
        with self._lock:
            if source in self._buckets:
                return self._buckets[source]
            if self.default is None:
                raise ConfigError(
                    "source", source, f"is not configured (known: {sorted(self._buckets)})"
                ) from None
            return self._add(source, self.default)

    @property
    def sources(self) -> list[str]:
        """The configured source names (sorted)."""
        return sorted(self._buckets)

    def config(self, source: str) -> RateLimitConfig:
        """The current config of ``source``."""
        self.bucket(source)
        return self._configs[source]

    def try_acquire(self, source: str, tokens: float = 1) -> bool:
        """Take ``tokens`` for ``source`` if available now; never waits."""
        return self.bucket(source).try_acquire(tokens)

    async def wait_for_permission(
        self, source: str, timeout: float | None = None, tokens: float = 1
    ) -> None:
        """Wait (asyncio) until ``source`` may make a request, first come, first served.

        Args:
            source: the data source.
            timeout: seconds to wait at most; None waits as long as needed.
            tokens: requests to account for (default 1).

        Raises:
            RateLimitExceeded: permission would not come within ``timeout``;
                raised at once (nothing is taken) and carrying ``retry_after``.
            ConfigError: unknown source and no default.

        Example:
            >>> async def fetch(symbol):  # doctest: +SKIP
            ...     await limiter.wait_for_permission("massive", timeout=2.0)
            ...     return await client.get(symbol)
        """
        bucket = self.bucket(source)
        if not await bucket.acquire_async(tokens, timeout):
            raise RateLimitExceeded(source, bucket.wait_time(tokens))

    def wait_for_permission_sync(
        self, source: str, timeout: float | None = None, tokens: float = 1
    ) -> None:
        """The blocking face of :meth:`wait_for_permission` (blocks the calling thread)."""
        bucket = self.bucket(source)
        if not bucket.acquire(tokens, timeout):
            raise RateLimitExceeded(source, bucket.wait_time(tokens))

    def reconfigure(self, source: str, config: RateLimitConfig | Mapping[str, Any]) -> None:
        """Set the limit of ``source`` at run time (adding it when new).

        What has been spent stays spent: tokens taken count against the new
        burst and are paid back at the new rate; reconfiguring refills nothing.
        """
        new = _as_config(source, config)
        with self._lock:
            bucket = self._buckets.get(source)
            if bucket is None:
                self._add(source, new)
                return
            bucket.reconfigure(new.requests_per_second, new.burst_size, new.quotas)
            self._configs[source] = new

    def penalize(self, source: str, retry_after: float) -> None:
        """Grant ``source`` nothing for ``retry_after`` seconds (a 429 with Retry-After)."""
        self.bucket(source).penalize(retry_after)

    def __repr__(self) -> str:
        return f"RateLimiter(sources={self.sources!r})"


_default_limiter: RateLimiter | None = None
_default_lock = threading.Lock()


def get_rate_limiter() -> RateLimiter:
    """The process-wide :class:`RateLimiter` with the seed defaults, created on first use.

    Example:
        >>> get_rate_limiter() is get_rate_limiter()
        True
    """
    global _default_limiter
    if _default_limiter is None:
        with _default_lock:
            if _default_limiter is None:
                _default_limiter = RateLimiter()
    return _default_limiter
