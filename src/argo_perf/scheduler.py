"""`PriorityScheduler`: the most volatile symbols first, within a deadline, none starved."""

from __future__ import annotations

import asyncio
import enum
import inspect
import math
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from . import _validate as check
from .clock import Clock, _given_or_system
from .errors import ConfigError
from .volatility import VolatilityTracker

__all__ = [
    "PriorityScheduler",
    "ScheduleReport",
    "SchedulerStats",
    "SymbolResult",
    "SymbolStatus",
]

T = TypeVar("T")


class SymbolStatus(enum.Enum):
    """How one symbol's call ended in a `PriorityScheduler.run`."""

    DONE = "done"
    """The call returned; its value is in `SymbolResult.value`."""
    FAILED = "failed"
    """The call raised; the exception is in `SymbolResult.error`."""
    CANCELLED = "cancelled"
    """The call was started and cancelled: the deadline came, the run was cancelled, or the
    call raised `asyncio.CancelledError` itself."""
    NOT_STARTED = "not_started"
    """The call was never started: the deadline came (or the run was cancelled) first."""


# Not slots: on Python 3.10 a frozen slotted generic dataclass fails in SymbolResult[int](...).
@dataclass(frozen=True)
class SymbolResult(Generic[T]):
    """The outcome of one symbol in a `PriorityScheduler.run`.

    Times are the scheduler clock's ``monotonic()`` seconds.

    Examples:
        ```python
        report = await scheduler.run(symbols, fetch, deadline=4.0)
        for result in report.values():
            if result.status is SymbolStatus.FAILED:
                log.warning("%s failed: %r", result.symbol, result.error)
        ```
    """

    symbol: str
    """The symbol."""
    status: SymbolStatus
    """How the call ended."""
    value: T | None = None
    """What the call returned (`SymbolStatus.DONE` only, else None)."""
    error: BaseException | None = None
    """What the call raised (`SymbolStatus.FAILED` only, else None)."""
    started: float | None = None
    """When the call was started; None when it was not."""
    finished: float | None = None
    """When the call ended (returned, raised or was cancelled); None when not started."""

    @property
    def ok(self) -> bool:
        """Whether the call returned (`SymbolStatus.DONE`)."""
        return self.status is SymbolStatus.DONE

    @property
    def elapsed(self) -> float | None:
        """Seconds from start to end of the call; None when it was not started."""
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started


@dataclass(frozen=True)
class ScheduleReport(Mapping[str, SymbolResult[T]]):
    """What a `PriorityScheduler.run` did: a read-only mapping of symbol to `SymbolResult`.

    One entry per distinct symbol, iterated in the order the symbols were
    scheduled. Times are the scheduler clock's ``monotonic()`` seconds.

    Examples:
        ```python
        report = await scheduler.run(["BTC-USD", "AAPL"], fetch, deadline=4.0)
        prices = {symbol: r.value for symbol, r in report.items() if r.ok}
        metrics.skipped += len(report.not_started) + len(report.cancelled)
        ```
    """

    results: tuple[SymbolResult[T], ...]
    """Every symbol's result, in schedule order."""
    started: float
    """When the run started."""
    finished: float
    """When the run ended (every call it started had ended)."""
    deadline_reached: bool
    """Whether the deadline came before every call had ended."""
    _by_symbol: dict[str, SymbolResult[T]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_symbol", {r.symbol: r for r in self.results})

    def __getitem__(self, symbol: str) -> SymbolResult[T]:
        return self._by_symbol[symbol]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_symbol)

    def __len__(self) -> int:
        return len(self.results)

    def _with(self, status: SymbolStatus) -> tuple[str, ...]:
        return tuple(r.symbol for r in self.results if r.status is status)

    @property
    def done(self) -> tuple[str, ...]:
        """The symbols whose call returned, in schedule order."""
        return self._with(SymbolStatus.DONE)

    @property
    def failed(self) -> tuple[str, ...]:
        """The symbols whose call raised, in schedule order."""
        return self._with(SymbolStatus.FAILED)

    @property
    def cancelled(self) -> tuple[str, ...]:
        """The symbols whose call was cancelled, in schedule order."""
        return self._with(SymbolStatus.CANCELLED)

    @property
    def not_started(self) -> tuple[str, ...]:
        """The symbols never started, in schedule order."""
        return self._with(SymbolStatus.NOT_STARTED)

    @property
    def elapsed(self) -> float:
        """Seconds the run took."""
        return self.finished - self.started


@dataclass(frozen=True, slots=True)
class SchedulerStats:
    """A snapshot of a `PriorityScheduler`'s counters, taken by `PriorityScheduler.stats`.

    Counters count from the scheduler's creation and are never reset; one
    per symbol and run for the four outcomes.
    """

    max_skips: int
    """The scheduler's ageing limit (see `PriorityScheduler`)."""
    runs: int = 0
    """Runs ended (deadline or not, cancelled ones included)."""
    done: int = 0
    """Calls that returned."""
    failed: int = 0
    """Calls that raised."""
    cancelled: int = 0
    """Calls started and cancelled."""
    not_started: int = 0
    """Symbols never started in their run."""
    deadlines: int = 0
    """Runs that reached their deadline with calls still running or not started."""
    overdue: int = 0
    """Symbols put first by ageing (once per run in which they were)."""


# The outcome of one call, as its task returns it: the task itself never raises
# (except when cancelled), so nothing is left unretrieved whatever happens.
_Ended = tuple[SymbolStatus, Any, BaseException | None, float]


class PriorityScheduler:
    """Runs one async call per symbol, the most volatile first, within a deadline.

    **Order.** `order` puts the symbols in the order a run starts them:

    1. *overdue* symbols first: those skipped (not started, or cancelled) in
       ``max_skips`` consecutive runs, the longest-skipped first;
    2. then symbols of *unknown* volatility (never observed by the tracker, or
       forgotten by it): they need a price before they can be ranked;
    3. then the others, highest `VolatilityTracker.volatility` first.

    Ties keep the input order. A symbol given twice is scheduled once, at its
    first place in the input.

    **Runs.** `run` starts the calls in that order, at most ``concurrency`` at
    a time; when ``deadline`` seconds (on the clock) have passed since the
    start, the calls still running are cancelled and those not started are
    left out. Each symbol is reported as done, failed, cancelled or not
    started. A call that raises is reported with its exception and never
    affects the others.

    **Ageing.** A symbol counts as *skipped* in a run when it was given to
    the run and its call was not started or was cancelled; a call that
    returned or raised ends the streak. A symbol skipped ``max_skips`` runs in
    a row is overdue and goes first in the next run's order, so a calm symbol
    is processed at least once every ``max_skips + 1`` runs as long as each run
    completes at least the symbols overdue in it. Streaks are kept for the
    symbols of the latest run only: a symbol left out of a run starts afresh
    when it comes back.

    Args:
        volatility: where volatilities come from; None: every symbol is of
            unknown volatility (input order, with ageing).
        max_skips: runs in a row a symbol may be skipped before it is put
            first (an int >= 1; default 5).
        clock: the time for deadlines and timings (default `SystemClock`).

    Raises:
        ConfigError: ``volatility`` not a `VolatilityTracker`, ``max_skips``
            not an int >= 1.

    Thread-safe: `order` and `stats` may be called from any thread; runs may
    overlap (each updates the streaks when it ends).

    Examples:
        ```python
        tracker = VolatilityTracker()
        scheduler = PriorityScheduler(tracker, max_skips=3)


        async def refresh(symbol: str) -> float:
            price = await vendor.price(symbol)
            tracker.observe(symbol, price)
            return price


        report = await scheduler.run(symbols, refresh, concurrency=8, deadline=4.0)
        ```
    """

    def __init__(
        self,
        volatility: VolatilityTracker | None = None,
        *,
        max_skips: int = 5,
        clock: Clock | None = None,
    ) -> None:
        if volatility is not None and not isinstance(volatility, VolatilityTracker):
            raise ConfigError(
                "volatility", type(volatility).__name__, "must be a VolatilityTracker or None"
            )
        self.volatility = volatility
        self.max_skips = check.count("max_skips", max_skips)
        self._clock: Clock = _given_or_system(clock)
        self._lock = threading.Lock()
        # symbol -> consecutive runs skipped, for the latest run's symbols; replaced whole.
        self._skips: dict[str, int] = {}
        self._counts = dict.fromkeys(
            ("runs", "done", "failed", "cancelled", "not_started", "deadlines", "overdue"), 0
        )

    def skips(self, symbol: str) -> int:
        """Consecutive runs ``symbol`` was skipped in, up to the latest (0 when unknown)."""
        return self._skips.get(symbol, 0)

    def order(self, symbols: Iterable[str]) -> list[str]:
        """The distinct ``symbols`` in the order a run would start them (see the class docs).

        Raises:
            TypeError: ``symbols`` is a string (one symbol, not an iterable of
                them), or holds something else than strings.
            ValueError: a symbol is empty.

        Examples:
            >>> PriorityScheduler().order(["AAPL", "MSFT", "AAPL"])
            ['AAPL', 'MSFT']
        """
        return self._plan(symbols)[0]

    def _plan(self, symbols: Iterable[str]) -> tuple[list[str], int]:
        """The order, and how many of its symbols are overdue."""
        if isinstance(symbols, str):
            raise TypeError(f"symbols must be an iterable of symbols, not a string: {symbols!r}")
        distinct = list(dict.fromkeys(symbols))
        for symbol in distinct:
            if not isinstance(symbol, str):
                raise TypeError(f"symbols must be strings, got {symbol!r}")
            if not symbol:
                raise ValueError(f"symbols must not be empty, got {symbol!r}")
        skips, limit, tracker = self._skips, self.max_skips, self.volatility

        def key(symbol: str) -> tuple[int, int, int, float]:
            streak = skips.get(symbol, 0)
            overdue = streak >= limit
            if tracker is None or symbol not in tracker:
                return (not overdue, -streak if overdue else 0, 0, 0.0)
            return (not overdue, -streak if overdue else 0, 1, -tracker.volatility(symbol))

        ordered = sorted(distinct, key=key)  # stable: ties keep the input order
        return ordered, sum(skips.get(symbol, 0) >= limit for symbol in ordered)

    async def run(
        self,
        symbols: Iterable[str],
        fn: Callable[[str], Awaitable[T]],
        *,
        concurrency: int = 4,
        deadline: float | None = None,
    ) -> ScheduleReport[T]:
        """Call ``await fn(symbol)`` for each symbol, in `order`, within ``deadline``.

        Args:
            symbols: the symbols of this run (a symbol given twice runs once).
            fn: an async function of one symbol; what it returns is reported.
            concurrency: calls running at once at most (an int >= 1; default 4).
            deadline: seconds from the start of the run, on the scheduler's
                clock, after which the calls still running are cancelled and
                the others are not started; None or ``math.inf``: no deadline.

        Returns:
            A `ScheduleReport`: every symbol's `SymbolResult`, in schedule order.
            It is returned once every call started has ended (a cancelled call
            that ignores its cancellation holds the run up).

        Raises:
            ConfigError: ``concurrency`` not an int >= 1, ``deadline``
                not > 0, or ``fn`` not callable (before anything is started).
            TypeError, ValueError: as `order`.
            asyncio.CancelledError: the run itself was cancelled; every call it
                started is cancelled and has ended when this propagates (the
                streaks are updated as for a run that ended then).

        A ``fn`` that returns something not awaitable fails with a `TypeError`
        reported for its symbol.
        """
        concurrency = check.count("concurrency", concurrency)
        limit = check.optional(check.positive_seconds_or_inf, "deadline", deadline)
        check.function("fn", fn, "an async function of a symbol")
        plan, overdue = self._plan(symbols)
        clock = self._clock
        start = clock.monotonic()
        ended: dict[str, _Ended] = {}
        started: dict[str, float] = {}
        running: dict[asyncio.Task[_Ended], str] = {}
        timer = None
        if limit is not None and limit != math.inf:
            timer = asyncio.ensure_future(_sleep_until(clock, start + limit))
        next_up = 0
        try:
            while True:
                while next_up < len(plan) and len(running) < concurrency:
                    symbol = plan[next_up]
                    next_up += 1
                    started[symbol] = clock.monotonic()
                    running[asyncio.ensure_future(_call(fn, symbol, clock))] = symbol
                if not running:
                    break
                watched: set[asyncio.Future[Any]] = set(running)
                if timer is not None:
                    watched.add(timer)
                finished, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    if task is not timer:
                        ended[running.pop(task)] = _outcome(task, clock)
                if timer is not None and timer.done():
                    break
        finally:
            # The deadline was reached if it came with calls running or not started
            # (not when the run itself was cancelled).
            reached = timer is not None and timer.done() and not timer.cancelled()
            reached = reached and (bool(running) or next_up < len(plan))
            if timer is not None:
                timer.cancel()
            if running:
                await _cancel(running, ended, clock)
            report: ScheduleReport[T] = _report(
                plan, started, ended, start, clock.monotonic(), reached
            )
            self._record(report, overdue)
        return report

    def _record(self, report: ScheduleReport[Any], overdue: int) -> None:
        processed = (SymbolStatus.DONE, SymbolStatus.FAILED)
        with self._lock:
            # Only this run's symbols are remembered: the map stays as large as a run.
            self._skips = {
                symbol: 0 if result.status in processed else self._skips.get(symbol, 0) + 1
                for symbol, result in report.items()
            }
            counts = self._counts
            counts["runs"] += 1
            counts["overdue"] += overdue
            counts["deadlines"] += report.deadline_reached
            for result in report.results:
                counts[result.status.value] += 1

    @property
    def stats(self) -> SchedulerStats:
        """A snapshot of the counters (see `SchedulerStats`)."""
        with self._lock:
            return SchedulerStats(self.max_skips, **self._counts)

    def __repr__(self) -> str:
        return f"PriorityScheduler(max_skips={self.max_skips}, tracked={len(self._skips)})"


def _report(
    plan: list[str],
    started: dict[str, float],
    ended: dict[str, _Ended],
    start: float,
    end: float,
    reached: bool,
) -> ScheduleReport[T]:
    results: list[SymbolResult[T]] = []
    for symbol in plan:
        if symbol not in ended:
            results.append(SymbolResult(symbol, SymbolStatus.NOT_STARTED))
            continue
        status, value, error, finished = ended[symbol]
        results.append(SymbolResult(symbol, status, value, error, started[symbol], finished))
    return ScheduleReport(tuple(results), start, end, reached)


async def _sleep_until(clock: Clock, when: float) -> None:
    # Measured from the run's start, however late this task begins.
    while (left := when - clock.monotonic()) > 0:
        await clock.sleep_async(left)


async def _call(fn: Callable[[str], Awaitable[T]], symbol: str, clock: Clock) -> _Ended:
    """Run one call; its outcome as a value (cancellation propagates)."""
    try:
        awaitable = fn(symbol)
        if not inspect.isawaitable(awaitable):
            raise TypeError(
                f"fn must be an async function of a symbol; fn({symbol!r}) returned {awaitable!r}"
            )
        value = await awaitable
    except Exception as exc:  # reported for this symbol; the others go on
        return (SymbolStatus.FAILED, None, exc, clock.monotonic())
    return (SymbolStatus.DONE, value, None, clock.monotonic())


async def _cancel(
    running: dict[asyncio.Task[_Ended], str], ended: dict[str, _Ended], clock: Clock
) -> None:
    """Cancel the calls still running and wait until each has ended; record how."""
    for task in running:
        task.cancel()
    await asyncio.wait(running)
    for task, symbol in running.items():
        # Ended before the cancellation reached it, or ignored it: as it ended.
        ended[symbol] = _outcome(task, clock)
    running.clear()


def _outcome(task: asyncio.Task[_Ended], clock: Clock) -> _Ended:
    """How a finished call's task ended.

    A task the run did not cancel may still end cancelled: ``fn`` raised
    `asyncio.CancelledError` itself (an inner timeout, a closed session). That
    is the symbol's cancellation, not the run's.
    """
    if task.cancelled():
        return (SymbolStatus.CANCELLED, None, None, clock.monotonic())
    return task.result()
