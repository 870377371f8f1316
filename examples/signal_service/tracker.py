"""The signal tracker: every accepted signal in SQLite, written in batches.

`SignalTracker` keeps the ``signals`` table of ``schema.sql`` (WAL journal,
the indexes idx_confidence, idx_created_at, idx_symbol_timestamp,
idx_symbol_outcome and idx_timestamp_outcome). `SignalTracker.add` accepts
a signal into a pending batch, written in one transaction when it holds
``batch_size`` signals, when its oldest signal has waited ``flush_interval``
seconds, before every query, and on `SignalTracker.flush` and
`SignalTracker.close`.

**Unchanged signals are not stored twice.** A signal whose `Signal.sha256`
(its content without the timestamp) equals the last accepted signal's of the
same symbol is skipped: `add` returns ``False`` and counts it. The last hash
per symbol is read from the table the first time a symbol is seen, so this
holds across restarts too.

**No accepted signal is lost on SIGTERM or SIGINT.** `flush` and `close` may
be called from a signal handler: when the handler interrupted another thread's
work on the tracker it waits for that work to end; when it interrupted this
very thread in the middle of a tracker call, the flush or close is done as
that call ends (normally, or as the handler's ``sys.exit`` unwinds through
it). A batch interrupted before its commit stays pending and is written again;
inserts ignore a ``signal_id`` already stored, so nothing is written twice.
A handler for a service:

```python
def stop(signum: int, frame: object) -> None:
    tracker.close()  # writes the pending batch
    sys.exit(0)

signal.signal(signal.SIGTERM, stop)
```

`AsyncSignalTracker` is the asyncio face: every call runs on one dedicated
worker thread, so SQLite never blocks the event loop and no lock is held
across an ``await``. From a signal handler, close its `AsyncSignalTracker.tracker`.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Literal, ParamSpec, TypeVar

from argo_perf import Clock, SystemClock

from . import _validation as _validate
from .signals import Signal, format_timestamp, parse_timestamp

__all__ = [
    "OUTCOMES",
    "AsyncSignalTracker",
    "Outcome",
    "OutcomeStats",
    "SignalTracker",
    "TrackedSignal",
    "TrackerClosedError",
    "TrackerStats",
]

Outcome = Literal["win", "loss", "expired"]
"""How a signal ended: its target or a profitable exit, its stop or a loss, or neither in time."""

OUTCOMES: tuple[Outcome, ...] = ("win", "loss", "expired")

SCHEMA = (Path(__file__).parent / "schema.sql").read_text(encoding="utf-8")

_COLUMNS = (
    "signal_id, symbol, action, entry_price, target_price, stop_price, confidence, strategy, "
    "asset_type, data_source, timestamp, sha256, created_at"
)
_TRACKED_COLUMNS = f"{_COLUMNS}, outcome, exit_price, profit_loss_pct, order_id"

# Each query below is shown to use an index by tests/test_service_tracker.py.
INSERT_SQL = f"INSERT OR IGNORE INTO signals ({_COLUMNS}) VALUES ({', '.join('?' * 13)})"
LAST_SHA_SQL = "SELECT sha256 FROM signals WHERE symbol = ? ORDER BY timestamp DESC LIMIT 1"
LATEST_SQL = (
    f"SELECT {_TRACKED_COLUMNS} FROM signals WHERE symbol = ? ORDER BY timestamp DESC LIMIT ?"
)
OPEN_SQL = f"SELECT {_TRACKED_COLUMNS} FROM signals WHERE symbol = ? AND outcome IS NULL"
OUTCOME_SQL = (
    "UPDATE signals SET outcome = ?, exit_price = ?, profit_loss_pct = CASE action"
    " WHEN 'BUY' THEN (? - entry_price) * 100.0 / entry_price"
    " WHEN 'SELL' THEN (entry_price - ?) * 100.0 / entry_price ELSE 0.0 END"
    " WHERE signal_id = ?"
)
STATS_SQL = (
    "SELECT outcome, COUNT(*), SUM(profit_loss_pct) FROM signals"
    " WHERE timestamp >= ? AND timestamp < ? GROUP BY outcome"
)

_EARLIEST = "0000"  # sorts before every ISO timestamp
_LATEST = "9999"  # and this after


class TrackerClosedError(RuntimeError):
    """The tracker was closed; it takes no more signals and answers no more queries."""


@dataclass(frozen=True)
class TrackerStats:
    """What a tracker did since it was opened (a snapshot).

    Attributes:
        accepted: signals `SignalTracker.add` accepted.
        skipped: signals it skipped as unchanged.
        written: rows inserted into the table.
        pending: accepted signals not written yet.
        flushes: batches written.
    """

    accepted: int = 0
    skipped: int = 0
    written: int = 0
    pending: int = 0
    flushes: int = 0


@dataclass(frozen=True)
class TrackedSignal:
    """A stored signal with what happened to it.

    Attributes:
        signal: the signal.
        signal_id: its `Signal.signal_id`.
        created_at: when the tracker accepted it (aware UTC).
        outcome: ``win``, ``loss``, ``expired``, or ``None`` while open.
        exit_price: the price it was closed at, once closed.
        profit_loss_pct: the profit (negative: loss) in percent of the entry, once closed.
        order_id: the broker's order id, when one was placed.
    """

    signal: Signal
    signal_id: str
    created_at: datetime
    outcome: Outcome | None = None
    exit_price: float | None = None
    profit_loss_pct: float | None = None
    order_id: str | None = None


@dataclass(frozen=True)
class OutcomeStats:
    """Outcomes of the signals in a time range.

    Attributes:
        total: signals in the range.
        open: signals without an outcome yet.
        wins: signals closed as ``win``.
        losses: signals closed as ``loss``.
        expired: signals closed as ``expired``.
        win_rate: wins in percent of wins and losses (0.0 when there are none).
        avg_profit_loss_pct: the mean profit of the closed signals in percent (0.0 when none).
    """

    total: int = 0
    open: int = 0
    wins: int = 0
    losses: int = 0
    expired: int = 0
    win_rate: float = 0.0
    avg_profit_loss_pct: float = 0.0


class SignalTracker:
    """Stores signals in SQLite in batches; see the module docs for skipping and signals.

    Args:
        path: the database file (created with its table and indexes when
            missing), or ``":memory:"``.
        batch_size: pending signals that trigger a write (default 100, >= 1).
        flush_interval: seconds after which a pending signal triggers a write
            at the next `add` (default 1.0), or ``None`` for batch size only.
        clock: the time source of ``created_at`` and ``flush_interval``.

    Raises:
        ConfigError: ``batch_size`` or ``flush_interval`` out of range.
        sqlite3.Error: the database cannot be opened or created.

    Thread-safe: calls from several threads are serialised.

    Example:
        ```python
        with SignalTracker("signals.db", batch_size=50) as tracker:
            if tracker.add(signal):  # False: unchanged since the symbol's last signal
                ...
            latest = tracker.latest("AAPL", limit=5)
        ```
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        batch_size: int = 100,
        flush_interval: float | None = 1.0,
        clock: Clock | None = None,
    ) -> None:
        self._batch_size = _validate.count("batch_size", batch_size)
        self._flush_interval = _validate.optional(
            _validate.non_negative_seconds, "flush_interval", flush_interval
        )
        self._clock: Clock = clock if clock is not None else SystemClock()
        # Autocommit mode: _flush_locked begins and ends its transactions itself. The
        # connection is used by whichever thread holds the lock, hence check_same_thread.
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            self._journal_mode = str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0])
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.executescript(SCHEMA)
        except BaseException:
            conn.close()
            raise
        self._conn: sqlite3.Connection | None = conn
        # Re-entrant, so a signal handler that interrupts this thread inside a call
        # can take it; _busy tells it to defer its flush or close to the call's end.
        self._lock = threading.RLock()
        self._busy: int | None = None
        self._deferred_flush = False
        self._deferred_close = False
        self._pending: list[tuple[object, ...]] = []
        self._pending_since = 0.0
        self._last_sha: dict[str, str | None] = {}
        self._stats = TrackerStats()

    # --- the critical section -----------------------------------------------------------

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Hold the lock and mark this thread busy; on the way out, do what was deferred."""
        with self._lock:
            self._busy = threading.get_ident()
            try:
                yield
            finally:
                try:
                    self._settle()
                finally:
                    self._busy = None

    @contextmanager
    def _operation(self) -> Iterator[sqlite3.Connection]:
        """`_guard` for a call that needs the open database."""
        with self._guard():
            if self._conn is None:
                raise TrackerClosedError("the signal tracker is closed")
            yield self._conn

    def _settle(self) -> None:
        """Do what a signal handler asked for while this thread was busy (lock held)."""
        while self._deferred_flush or self._deferred_close:
            if self._deferred_close:
                self._deferred_close = self._deferred_flush = False
                self._close_locked()
            else:
                self._deferred_flush = False
                self._flush_locked()

    def _interrupted_own_call(self) -> bool:
        return self._busy == threading.get_ident()

    # --- writing ------------------------------------------------------------------------

    def add(self, signal: Signal) -> bool:
        """Accept ``signal`` into the pending batch; ``False`` when it is unchanged.

        Unchanged means its `Signal.sha256` equals the last accepted signal's
        of the same symbol; it is then counted as skipped and not stored.
        A write triggered by this call that fails raises, and the batch stays
        pending for the next write.

        Raises:
            TrackerClosedError: the tracker is closed.
            sqlite3.Error: the batch could not be written.
        """
        with self._operation() as conn:
            symbol = signal.symbol
            if symbol not in self._last_sha:
                row = conn.execute(LAST_SHA_SQL, (symbol,)).fetchone()
                self._last_sha[symbol] = None if row is None else str(row[0])
            if self._last_sha[symbol] == signal.sha256:
                self._count(skipped=1)
                return False
            now = self._clock.monotonic()
            if not self._pending:
                self._pending_since = now
            self._pending.append(_row(signal, self._clock.now()))
            self._last_sha[symbol] = signal.sha256
            self._count(accepted=1)
            interval = self._flush_interval
            if len(self._pending) >= self._batch_size or (
                interval is not None and now - self._pending_since >= interval
            ):
                self._flush_locked()
            return True

    def flush(self) -> int:
        """Write the pending batch now; the number of rows inserted.

        Safe in a signal handler (see the module docs). A no-op returning 0
        once closed.

        Raises:
            sqlite3.Error: the batch could not be written (it stays pending).
        """
        with self._lock:
            if self._interrupted_own_call():
                self._deferred_flush = True
                return 0
            with self._guard():
                return self._flush_locked()

    def close(self) -> None:
        """Write the pending batch and close the database. Idempotent.

        Safe in a signal handler (see the module docs).

        Raises:
            sqlite3.Error: the batch could not be written; the database stays
                open and the batch pending, so a later `close` can retry.
        """
        with self._lock:
            if self._interrupted_own_call():
                self._deferred_close = True
                return
            with self._guard():
                self._close_locked()

    def _flush_locked(self) -> int:
        conn = self._conn
        if conn is None or not self._pending:
            return 0
        rows = list(self._pending)
        conn.execute("BEGIN IMMEDIATE")
        try:
            written = conn.executemany(INSERT_SQL, rows).rowcount
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        # Removed only once committed: a batch interrupted before COMMIT is written again.
        del self._pending[: len(rows)]
        self._count(written=written, flushes=1)
        return written

    def _close_locked(self) -> None:
        if self._conn is None:
            return
        self._flush_locked()
        self._conn.close()
        self._conn = None

    def _count(self, **changes: int) -> None:
        stats = self._stats
        self._stats = TrackerStats(
            accepted=stats.accepted + changes.get("accepted", 0),
            skipped=stats.skipped + changes.get("skipped", 0),
            written=stats.written + changes.get("written", 0),
            pending=len(self._pending),
            flushes=stats.flushes + changes.get("flushes", 0),
        )

    # --- reading and updating -----------------------------------------------------------

    def latest(self, symbol: str, limit: int = 10) -> list[TrackedSignal]:
        """The ``limit`` newest signals of ``symbol``, newest first (pending ones included)."""
        with self._operation() as conn:
            self._flush_locked()
            return [_tracked(row) for row in conn.execute(LATEST_SQL, (symbol, limit))]

    def open_signals(self, symbol: str) -> list[TrackedSignal]:
        """The signals of ``symbol`` without an outcome yet, oldest first."""
        with self._operation() as conn:
            self._flush_locked()
            found = [_tracked(row) for row in conn.execute(OPEN_SQL, (symbol,))]
        return sorted(found, key=lambda tracked: tracked.signal.timestamp)

    def record_outcome(self, signal_id: str, outcome: Outcome, exit_price: float) -> bool:
        """Close a signal: its outcome, exit price and profit in percent of the entry.

        The profit is ``(exit - entry) / entry`` for a BUY, the opposite for a
        SELL, 0 for a HOLD. Recording again replaces the earlier outcome.
        Returns ``False`` when no signal has that id.

        Raises:
            ValueError: an unknown outcome, or an exit price that is not a
                finite positive number (`argo_perf.ConfigError`, a `ValueError`).
        """
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
        price = _validate.positive("exit_price", exit_price)
        with self._operation() as conn:
            self._flush_locked()
            cursor = conn.execute(OUTCOME_SQL, (outcome, price, price, price, signal_id))
            return cursor.rowcount > 0

    def outcome_stats(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> OutcomeStats:
        """Outcomes of the signals whose timestamp is in ``[since, until)`` (default: all)."""
        low = _EARLIEST if since is None else _iso(since)
        high = _LATEST if until is None else _iso(until)
        with self._operation() as conn:
            self._flush_locked()
            rows = conn.execute(STATS_SQL, (low, high)).fetchall()
        counts = {outcome: int(count) for outcome, count, _ in rows}
        closed = sum(count for outcome, count in counts.items() if outcome is not None)
        profit = sum(float(total) for outcome, _, total in rows if outcome is not None)
        wins, losses = counts.get("win", 0), counts.get("loss", 0)
        return OutcomeStats(
            total=sum(counts.values()),
            open=counts.get(None, 0),
            wins=wins,
            losses=losses,
            expired=counts.get("expired", 0),
            win_rate=100.0 * wins / (wins + losses) if wins + losses else 0.0,
            avg_profit_loss_pct=profit / closed if closed else 0.0,
        )

    # --- state --------------------------------------------------------------------------

    @property
    def stats(self) -> TrackerStats:
        """A snapshot of the tracker's counters."""
        return self._stats

    @property
    def closed(self) -> bool:
        """Whether `close` has run."""
        return self._conn is None

    @property
    def journal_mode(self) -> str:
        """SQLite's journal mode: ``wal`` for a file, ``memory`` for ``":memory:"``."""
        return self._journal_mode

    def __enter__(self) -> SignalTracker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"SignalTracker({state}, batch_size={self._batch_size}, stats={self._stats})"


def _iso(when: datetime) -> str:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"since and until must be aware datetimes, got {when!r}")
    return format_timestamp(when)


def _row(signal: Signal, created_at: datetime) -> tuple[object, ...]:
    return (
        signal.signal_id,
        signal.symbol,
        signal.action,
        signal.entry_price,
        signal.target_price,
        signal.stop_price,
        signal.confidence,
        signal.strategy,
        signal.asset_type,
        signal.data_source,
        signal.iso_timestamp,
        signal.sha256,
        format_timestamp(created_at),
    )


def _tracked(row: tuple[object, ...]) -> TrackedSignal:
    (
        signal_id,
        symbol,
        action,
        entry,
        target,
        stop,
        confidence,
        strategy,
        asset_type,
        data_source,
        timestamp,
        _sha,
        created_at,
        outcome,
        exit_price,
        profit,
        order_id,
    ) = row
    signal = Signal(
        symbol=str(symbol),
        action=action,  # type: ignore[arg-type]  # the table's CHECK admits only Actions
        entry_price=entry,  # type: ignore[arg-type]
        target_price=target,  # type: ignore[arg-type]
        stop_price=stop,  # type: ignore[arg-type]
        confidence=confidence,  # type: ignore[arg-type]
        strategy=str(strategy),
        asset_type=asset_type,  # type: ignore[arg-type]
        data_source=str(data_source),
        timestamp=parse_timestamp(str(timestamp)),
    )
    return TrackedSignal(
        signal=signal,
        signal_id=str(signal_id),
        created_at=parse_timestamp(str(created_at)),
        outcome=outcome,  # type: ignore[arg-type]
        exit_price=exit_price,  # type: ignore[arg-type]
        profit_loss_pct=profit,  # type: ignore[arg-type]
        order_id=None if order_id is None else str(order_id),
    )


P = ParamSpec("P")
T = TypeVar("T")


class AsyncSignalTracker:
    """The asyncio face of `SignalTracker`: the same calls, run on one worker thread.

    Args:
        tracker: the tracker to serve; `open` makes one without blocking the loop.

    Cancelling an awaiting call does not undo it: the worker finishes what it
    started. After `close`, calls raise `TrackerClosedError`.

    Example:
        ```python
        tracker = await AsyncSignalTracker.open("signals.db", batch_size=50)
        accepted = await tracker.add(signal)
        await tracker.close()
        ```
    """

    def __init__(self, tracker: SignalTracker) -> None:
        self._tracker = tracker
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="signal-tracker")
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        batch_size: int = 100,
        flush_interval: float | None = 1.0,
        clock: Clock | None = None,
    ) -> AsyncSignalTracker:
        """Open a `SignalTracker` on a thread (creating the file is I/O) and serve it."""
        tracker = await asyncio.to_thread(
            SignalTracker, path, batch_size=batch_size, flush_interval=flush_interval, clock=clock
        )
        return cls(tracker)

    @property
    def tracker(self) -> SignalTracker:
        """The sync tracker served; its `SignalTracker.close` is the one for signal handlers."""
        return self._tracker

    @property
    def stats(self) -> TrackerStats:
        """The tracker's counters."""
        return self._tracker.stats

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._closed:
            raise TrackerClosedError("the signal tracker is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def add(self, signal: Signal) -> bool:
        """`SignalTracker.add` on the worker thread."""
        return await self._run(self._tracker.add, signal)

    async def flush(self) -> int:
        """`SignalTracker.flush` on the worker thread."""
        return await self._run(self._tracker.flush)

    async def latest(self, symbol: str, limit: int = 10) -> list[TrackedSignal]:
        """`SignalTracker.latest` on the worker thread."""
        return await self._run(self._tracker.latest, symbol, limit)

    async def open_signals(self, symbol: str) -> list[TrackedSignal]:
        """`SignalTracker.open_signals` on the worker thread."""
        return await self._run(self._tracker.open_signals, symbol)

    async def record_outcome(self, signal_id: str, outcome: Outcome, exit_price: float) -> bool:
        """`SignalTracker.record_outcome` on the worker thread."""
        return await self._run(self._tracker.record_outcome, signal_id, outcome, exit_price)

    async def outcome_stats(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> OutcomeStats:
        """`SignalTracker.outcome_stats` on the worker thread."""
        return await self._run(self._tracker.outcome_stats, since, until)

    async def close(self) -> None:
        """Write the pending batch, close the database and stop the worker. Idempotent."""
        if self._closed:
            return
        await self._run(self._tracker.close)
        self._closed = True
        self._executor.shutdown(wait=False)

    async def __aenter__(self) -> AsyncSignalTracker:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncSignalTracker({self._tracker!r})"
