"""Injected time.

Every primitive in argo_perf takes its time from a `Clock` passed as the
keyword ``clock=``. Intervals come from `Clock.monotonic`; market time
comes from `Clock.now`, an aware UTC datetime. Waiting goes through
`Clock.sleep` and `Clock.sleep_async`, so a `ManualClock`
can drive blocking and asynchronous waiting logic in tests without real
sleeping.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Protocol, runtime_checkable

from . import _validate
from .errors import ConfigError

__all__ = ["Clock", "ManualClock", "SystemClock"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@runtime_checkable
class Clock(Protocol):
    """The source of time for every primitive.

    Implementations must be safe to call from several threads.
    """

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never goes backwards (for intervals)."""
        ...

    def now(self) -> datetime:
        """The current wall-clock time as an aware UTC datetime (for market time)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds`` (no-op when ``seconds <= 0``)."""
        ...

    async def sleep_async(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds`` (yields once when ``seconds <= 0``)."""
        ...


class SystemClock:
    """The real clock: `time.monotonic`, UTC now, `time.sleep`, `asyncio.sleep`.

    Examples:
        >>> clock = SystemClock()
        >>> clock.now().tzinfo is not None
        True
    """

    __slots__ = ()

    # The builtins themselves rather than wrappers: primitives bind ``clock.monotonic``
    # once and call it on their hot paths, where an extra Python frame would cost more
    # than the rest of a cache hit.
    monotonic = staticmethod(time.monotonic)
    """`time.monotonic`."""

    timestamp = staticmethod(time.time)
    """`time.time`: ``now()`` as POSIX seconds, for values shared between processes."""

    def now(self) -> datetime:
        """Return the current time as an aware UTC datetime."""
        return datetime.now(timezone.utc)

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds`` with `time.sleep`."""
        if seconds > 0:
            time.sleep(seconds)

    async def sleep_async(self, seconds: float) -> None:
        """Suspend for ``seconds`` with `asyncio.sleep`."""
        await asyncio.sleep(max(seconds, 0.0))

    def __repr__(self) -> str:
        return "SystemClock()"


def _given_or_system(clock: object, parameter: str = "clock") -> Clock:
    """The clock a constructor was given, or a `SystemClock` for None.

    Anything that is not a `Clock` is refused at construction with a
    `ConfigError`, instead of an ``AttributeError`` at the first call.
    """
    if clock is None:
        return SystemClock()
    if not isinstance(clock, Clock):
        raise ConfigError(
            parameter,
            clock,
            "must be a Clock (monotonic(), now(), sleep(), sleep_async()), "
            "e.g. SystemClock() or ManualClock(), or None",
        )
    return clock


class _Waiter:
    """One sleeper on a `ManualClock`: a thread event or an asyncio future."""

    __slots__ = ("event", "future", "loop")

    def __init__(
        self,
        event: threading.Event | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        future: asyncio.Future[None] | None = None,
    ) -> None:
        self.event = event
        self.loop = loop
        self.future = future

    def wake(self) -> None:
        if self.event is not None:
            self.event.set()
        elif self.loop is not None and self.future is not None:
            self.loop.call_soon_threadsafe(_resolve, self.future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class ManualClock:
    """A clock that moves only when told to, for deterministic tests.

    ``monotonic()`` starts at ``0.0`` and ``now()`` at ``start`` (default
    2026-01-05 14:30 UTC, a Monday during the NYSE session); `advance`
    moves both forward together and wakes every sleeper whose deadline has
    been reached, blocked threads and awaiting tasks alike.

    With ``autoadvance=False`` (the default) `sleep` blocks and
    `sleep_async` waits until another thread or task calls
    `advance`; this tests code that waits while something else
    happens. With ``autoadvance=True`` a sleep moves virtual time forward by
    its own duration at once, so single-threaded code that waits runs
    instantly.

    Examples:
        >>> clock = ManualClock()
        >>> clock.advance(1.5)
        >>> clock.monotonic()
        1.5
    """

    def __init__(self, start: datetime | None = None, *, autoadvance: bool = False) -> None:
        if start is None:
            start = datetime(2026, 1, 5, 14, 30, tzinfo=timezone.utc)
        if not isinstance(start, datetime):
            raise ConfigError("start", start, "must be an aware datetime or None")
        if start.tzinfo is None or start.utcoffset() is None:
            raise ConfigError("start", start, "must be an aware datetime, not a naive one")
        _validate.flag("autoadvance", autoadvance)
        self._start = start.astimezone(timezone.utc)
        self._offset = 0.0
        self._autoadvance = autoadvance
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._sleepers: list[tuple[float, int, _Waiter]] = []

    def monotonic(self) -> float:
        """Virtual seconds advanced since construction."""
        return self._offset

    def now(self) -> datetime:
        """``start`` plus the virtual seconds advanced, as an aware UTC datetime."""
        return self._start + timedelta(seconds=self._offset)

    def timestamp(self) -> float:
        """``now()`` as POSIX seconds, for code that needs epoch time."""
        return (self.now() - _EPOCH).total_seconds()

    @property
    def sleepers(self) -> int:
        """How many threads and tasks are waiting on this clock now."""
        with self._lock:
            return len(self._sleepers)

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake the sleepers whose deadline passed.

        Raises:
            ValueError: ``seconds`` is negative (time never goes backwards), NaN,
                infinite or not a number (a `ConfigError`, which is a `ValueError`).
        """
        seconds = _validate.non_negative_seconds("seconds", seconds)
        with self._lock:
            self._offset += seconds
            due = self._pop_due()
        for waiter in due:
            waiter.wake()

    def set(self, when: datetime) -> None:
        """Advance to the aware datetime ``when`` (which must not be in the past)."""
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError(f"when must be an aware datetime, got naive {when!r}")
        self.advance((when - self.now()).total_seconds())

    def _pop_due(self) -> list[_Waiter]:
        due: list[_Waiter] = []
        while self._sleepers and self._sleepers[0][0] <= self._offset:
            due.append(heapq.heappop(self._sleepers)[2])
        return due

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of virtual time (see the class docs for the two modes)."""
        if not seconds > 0:  # NaN too, as SystemClock.sleep does
            return
        if self._autoadvance:
            self.advance(seconds)
            return
        event = threading.Event()
        with self._lock:
            heapq.heappush(
                self._sleepers, (self._offset + seconds, next(self._seq), _Waiter(event=event))
            )
        event.wait()

    async def sleep_async(self, seconds: float) -> None:
        """Await ``seconds`` of virtual time (see the class docs for the two modes)."""
        if not seconds > 0 or self._autoadvance:
            if seconds > 0:
                self.advance(seconds)
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        waiter = _Waiter(loop=loop, future=future)
        with self._lock:
            # The deadline is read under the lock: an advance() from another
            # thread in between must not leave this sleeper behind a past deadline.
            entry = (self._offset + seconds, next(self._seq), waiter)
            heapq.heappush(self._sleepers, entry)
        try:
            await future
        finally:
            # A cancelled sleeper must not stay in the heap and be "woken" later.
            with self._lock:
                if entry in self._sleepers:
                    self._sleepers.remove(entry)
                    heapq.heapify(self._sleepers)

    def __repr__(self) -> str:
        return f"ManualClock(now={self.now().isoformat()}, monotonic={self._offset})"
