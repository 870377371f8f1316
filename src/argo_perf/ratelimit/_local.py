"""`TokenBucket`: the token arithmetic kept in process, behind a lock."""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterable

from .. import _validate as check
from ..clock import Clock, _given_or_system
from ._gcra import (
    _EPSILON,
    Quota,
    _check_timeout,
    _checked_quotas,
    _Reservation,
    _TokenMath,
    _windows,
)
from ._stats import BucketStats


class _Counters:
    """What a bucket counts; read through a frozen `BucketStats` snapshot."""

    __slots__ = ("cancelled", "denied", "granted", "penalties", "waited")

    def __init__(self) -> None:
        self.granted = self.denied = self.waited = self.cancelled = self.penalties = 0


class TokenBucket:
    """An in-process token bucket: ``rate`` tokens per second, at most ``burst`` at once.

    The bucket starts full. `try_acquire` never waits; `acquire`
    blocks the calling thread and `acquire_async` suspends the calling
    task until the tokens exist. Waiters are served first come, first served:
    a waiter reserves its tokens when it arrives and sleeps (on ``clock``)
    exactly until they exist, so a later request, however small, cannot take
    them first. When the tokens would not be there within ``timeout`` the call
    returns False at once, takes nothing and does not wait. A cancelled
    `acquire_async` (or an interrupted `acquire`) hands its tokens
    back as soon as no waiter still queued was scheduled against them: at once
    when it was the last in the queue, and otherwise when the waiters behind
    it are granted or give up too. So waiters timing out in arrival order (a
    timeout storm) leave the bucket as if they had never come, and the bucket
    never grants more than its limit. `penalize` holds back waiters
    already queued as well as new requests.

    Thread-safe; the sync and async faces may be used together.

    Args:
        rate: tokens added per second (> 0).
        burst: bucket size, the most tokens available at once (>= 1).
        quotas: extra windows that must also admit each acquire, e.g.
            ``[Quota(25, 86_400)]`` for 25 a day.
        clock: time source and sleeper (default `SystemClock`).

    Raises:
        ConfigError: a non-positive rate, a burst below 1, or a bad quota.

    Examples:
        >>> bucket = TokenBucket(rate=5, burst=10)
        >>> bucket.try_acquire()
        True
        >>> bucket.acquire(3, timeout=1.0)
        True
    """

    # Slots: with thousands of sources (one bucket each), a grant reads the
    # bucket's fields from the object itself, not from a dict beside it.
    __slots__ = (
        "__weakref__",
        "_clock",
        "_counters",
        "_lock",
        "_math",
        "_max",
        "_now",
        "_reserve",
        "burst",
        "quotas",
        "rate",
    )

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        quotas: Iterable[Quota] = (),
        clock: Clock | None = None,
    ) -> None:
        self.rate = check.rate("rate", rate)
        self.burst = check.at_least("burst", burst, 1)
        self.quotas = _checked_quotas(quotas)
        self._clock = _given_or_system(clock)
        self._lock = threading.Lock()
        self._now = self._clock.monotonic
        self._counters = _Counters()
        self._use(_TokenMath(_windows(self.rate, self.burst, self.quotas), self._max_tokens()))

    def _use(self, token_math: _TokenMath) -> None:
        # The bound method and the limit are cached: try_acquire is on every request.
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
        counters = self._counters
        lock = self._lock
        lock.acquire()  # cheaper than ``with`` on CPython, and this is the hot path
        try:
            if self._reserve(self._now(), tokens, 0.0) == 0.0:
                counters.granted += 1
                return True
            counters.denied += 1
            return False
        finally:
            lock.release()

    def _take_at_hand(self) -> bool:
        """Take one token if it is there now; a grant is counted, a refusal is not.

        The fast path of a caller that, refused, goes on to `acquire` with its
        own timeout (`resilient`): that acquire decides the request and counts
        it, granted, waited for or denied, so one request counts one refusal at
        most. No check of ``tokens``: one always fits the burst.
        """
        lock = self._lock
        lock.acquire()
        try:
            if self._reserve(self._now(), 1, 0.0) == 0.0:
                self._counters.granted += 1
                return True
            return False
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
        wait, reservation = self._begin(tokens, timeout)
        if wait == 0.0:
            return True
        try:
            while wait > 0.0:
                self._clock.sleep(wait)
                wait = self._still_to_wait(reservation)
        except BaseException:  # interrupted: the reservation is void
            self._refund(reservation)
            raise
        return wait == 0.0

    async def acquire_async(self, tokens: float = 1, timeout: float | None = None) -> bool:
        """Take ``tokens``, suspending the task until they exist (see `acquire`).

        When the task is cancelled while it waits, its tokens go back to the
        bucket (all of them when it was the last waiter; see the class notes)
        and `asyncio.CancelledError` propagates.
        """
        wait, reservation = self._begin(tokens, timeout)
        if wait == 0.0:
            return True
        try:
            while wait > 0.0:
                await self._clock.sleep_async(wait)
                wait = self._still_to_wait(reservation)
        except BaseException:
            self._refund(reservation)
            raise
        return wait == 0.0

    def _begin(self, tokens: float, timeout: float | None) -> tuple[float, _Reservation | None]:
        """Decide an acquire: 0.0 granted, < 0 denied, or the wait of its reservation."""
        if not 0 < tokens <= self._max:
            raise self._too_many(tokens)
        # The default needs no check: no call on the hot path.
        max_wait = math.inf if timeout is None else _check_timeout(timeout)
        counters = self._counters
        lock = self._lock
        lock.acquire()
        try:
            wait = self._reserve(self._now(), tokens, max_wait)
            if wait == 0.0:
                counters.granted += 1
                return 0.0, None
            if wait < 0.0:
                counters.denied += 1
                return wait, None
            counters.waited += 1
            pending = self._math.pending
            assert isinstance(pending, deque)  # the reservation that waits was just queued
            return wait, pending[-1]
        finally:
            lock.release()

    def _still_to_wait(self, reservation: _Reservation | None) -> float:
        # A penalty imposed while this waiter slept moved its grant time.
        with self._lock:
            wait = reservation.grant - self._clock.monotonic() if reservation else 0.0
            if wait > _EPSILON:
                return wait
            self._counters.granted += 1
            return 0.0

    def _refund(self, reservation: _Reservation | None) -> None:
        with self._lock:
            if reservation is not None:
                self._counters.cancelled += 1
                self._math.refund(self._clock.monotonic(), reservation)

    @property
    def stats(self) -> BucketStats:
        """A snapshot of the counters (see `BucketStats`)."""
        counters = self._counters
        return BucketStats(
            rate=self.rate,
            burst=self.burst,
            granted=counters.granted,
            denied=counters.denied,
            waited=counters.waited,
            cancelled=counters.cancelled,
            penalties=counters.penalties,
        )

    def wait_time(self, tokens: float = 1) -> float:
        """Seconds until ``tokens`` could be taken (0.0 when now); takes nothing.

        Raises:
            ValueError: ``tokens`` is not positive or exceeds the burst (they
                could never be taken), as for `try_acquire`.
        """
        if not 0 < tokens <= self._max:
            raise self._too_many(tokens)
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

        Raises:
            ConfigError: ``retry_after`` is negative or not finite (a `ValueError`).
        """
        retry_after = check.non_negative_seconds("retry_after", retry_after)
        with self._lock:
            self._counters.penalties += 1
            self._math.penalize(self._clock.monotonic(), retry_after)

    def reconfigure(self, rate: float, burst: float, quotas: Iterable[Quota] = ()) -> None:
        """Change the rate, burst and quotas in place, keeping what has been spent.

        Tokens taken (and reserved by waiters) stay taken: they count against
        the new burst and are paid back at the new rate; nothing is refilled by
        reconfiguring. Quotas are matched by position; a new one starts full.

        Raises:
            ConfigError: as the constructor.
        """
        rate = check.rate("rate", rate)
        burst = check.at_least("burst", burst, 1)
        quotas = _checked_quotas(quotas)
        windows = _windows(rate, burst, quotas)
        with self._lock:
            self.rate, self.burst, self.quotas = rate, burst, quotas
            now = self._clock.monotonic()
            self._use(self._math.rescaled(now, windows, self._max_tokens()))

    def __repr__(self) -> str:
        quotas = f", quotas={list(self.quotas)!r}" if self.quotas else ""
        return f"TokenBucket(rate={self.rate:g}, burst={self.burst:g}{quotas})"
