"""The reference service's SQLite signal tracker: schema, batches, skips, queries, signals."""

from __future__ import annotations

import signal as signals
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import examples.signal_service.tracker as tracker_module
import pytest
from examples.signal_service import (
    AsyncSignalTracker,
    Signal,
    SignalTracker,
    TrackerClosedError,
)

from argo_perf import ConfigError, ManualClock

ROOT = Path(__file__).resolve().parent.parent
UTC = timezone.utc
AT = datetime(2026, 1, 6, 15, 0, tzinfo=UTC)
INDEXES = {
    "idx_confidence",
    "idx_created_at",
    "idx_symbol_timestamp",
    "idx_symbol_outcome",
    "idx_timestamp_outcome",
}


def make_signal(n: int = 0, symbol: str = "AAPL", **changes: Any) -> Signal:
    fields: dict[str, Any] = {
        "symbol": symbol,
        "action": "BUY",
        "entry_price": 100.0 + n,
        "target_price": 104.0 + n,
        "stop_price": 98.0 + n,
        "confidence": 60.0,
        "strategy": "momentum_sentiment",
        "asset_type": "stock",
        "data_source": "massive",
        "timestamp": AT + timedelta(seconds=5 * n),
    }
    fields.update(changes)
    return Signal(**fields)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "signals.db"


@pytest.fixture
def tracker(db: Path) -> Iterator[SignalTracker]:
    with SignalTracker(db, batch_size=10, flush_interval=None, clock=ManualClock(AT)) as opened:
        yield opened


def rows(db: Path, sql: str = "SELECT COUNT(*) FROM signals") -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql).fetchall()


def test_the_table_has_the_designed_columns_and_exactly_the_designed_indexes(
    tracker: SignalTracker, db: Path
) -> None:
    columns = [row[1] for row in rows(db, "PRAGMA table_info(signals)")]
    assert columns == [
        "id",
        "signal_id",
        "symbol",
        "action",
        "entry_price",
        "target_price",
        "stop_price",
        "confidence",
        "strategy",
        "asset_type",
        "data_source",
        "timestamp",
        "outcome",
        "exit_price",
        "profit_loss_pct",
        "sha256",
        "order_id",
        "created_at",
    ]
    declared = rows(db, "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
    assert {name for (name,) in declared} == INDEXES
    unique = rows(db, "PRAGMA index_list(signals)")
    assert {row[1] for row in unique if row[2]} == {"sqlite_autoindex_signals_1"}  # signal_id


def test_the_journal_is_wal(tracker: SignalTracker, db: Path) -> None:
    assert tracker.journal_mode == "wal"
    assert rows(db, "PRAGMA journal_mode") == [("wal",)]


def test_reopening_keeps_the_table_and_its_rows(db: Path) -> None:
    with SignalTracker(db) as first:
        first.add(make_signal(1))
    with SignalTracker(db) as second:
        assert [t.signal for t in second.latest("AAPL")] == [make_signal(1)]


def test_signals_wait_in_the_batch_until_it_is_full(tracker: SignalTracker, db: Path) -> None:
    for n in range(9):
        assert tracker.add(make_signal(n))
    assert rows(db) == [(0,)]
    assert tracker.stats.pending == 9
    tracker.add(make_signal(9))
    assert rows(db) == [(10,)]
    stats = tracker.stats
    assert (stats.accepted, stats.written, stats.pending, stats.flushes) == (10, 10, 0, 1)


def test_a_batch_is_written_once_its_oldest_signal_waited_the_interval(db: Path) -> None:
    clock = ManualClock(AT)
    with SignalTracker(db, batch_size=100, flush_interval=2.0, clock=clock) as tracker:
        tracker.add(make_signal(0))
        clock.advance(1.0)
        tracker.add(make_signal(1))
        assert rows(db) == [(0,)]
        clock.advance(1.0)
        tracker.add(make_signal(2))
        assert rows(db) == [(3,)]


def test_flush_and_close_write_the_pending_batch(tracker: SignalTracker, db: Path) -> None:
    tracker.add(make_signal(0))
    assert tracker.flush() == 1
    assert tracker.flush() == 0
    tracker.add(make_signal(1))
    tracker.close()
    assert rows(db) == [(2,)]
    assert tracker.closed
    tracker.close()  # idempotent
    assert tracker.flush() == 0
    with pytest.raises(TrackerClosedError):
        tracker.add(make_signal(2))
    with pytest.raises(TrackerClosedError):
        tracker.latest("AAPL")


def test_an_unchanged_signal_is_skipped_even_after_a_restart(db: Path) -> None:
    with SignalTracker(db) as tracker:
        assert tracker.add(make_signal(0))
        assert not tracker.add(make_signal(0, timestamp=AT + timedelta(minutes=1)))
        assert tracker.add(make_signal(0, symbol="MSFT"))  # per symbol
        assert tracker.stats.skipped == 1
    with SignalTracker(db) as reopened:
        assert not reopened.add(make_signal(0, timestamp=AT + timedelta(minutes=2)))
        assert reopened.add(make_signal(1))
        assert reopened.add(make_signal(0, timestamp=AT + timedelta(minutes=3)))  # changed back
    assert rows(db) == [(4,)]


def test_a_signal_stored_before_is_not_stored_twice(tracker: SignalTracker, db: Path) -> None:
    assert tracker.add(make_signal(0))
    assert tracker.add(make_signal(1))
    assert tracker.add(make_signal(0))  # differs from the last one, but its id is stored
    assert tracker.flush() == 2
    assert rows(db) == [(2,)]
    assert tracker.stats.accepted == 3


def test_latest_is_newest_first_and_includes_the_pending_batch(tracker: SignalTracker) -> None:
    for n in range(5):
        tracker.add(make_signal(n))
    tracker.add(make_signal(0, symbol="MSFT"))
    latest = tracker.latest("AAPL", limit=3)
    assert [t.signal for t in latest] == [make_signal(n) for n in (4, 3, 2)]
    first = latest[0]
    assert first.signal_id == make_signal(4).signal_id
    assert first.created_at == AT
    assert (first.outcome, first.exit_price, first.profit_loss_pct, first.order_id) == (
        None,
        None,
        None,
        None,
    )


def test_outcomes_record_the_profit_by_direction(tracker: SignalTracker) -> None:
    buy = make_signal(0)
    sell = make_signal(1, action="SELL", target_price=96.0, stop_price=103.0)
    hold = make_signal(2, action="HOLD", target_price=102.0, stop_price=102.0)
    for signal in (buy, sell, hold):
        tracker.add(signal)
    assert tracker.record_outcome(buy.signal_id, "win", 104.0)
    assert tracker.record_outcome(sell.signal_id, "loss", 103.0)
    assert tracker.record_outcome(hold.signal_id, "expired", 90.0)
    assert not tracker.record_outcome("nothing", "win", 1.0)
    closed = {t.signal_id: t for t in tracker.latest("AAPL")}
    assert closed[buy.signal_id].profit_loss_pct == pytest.approx(4.0)
    assert closed[sell.signal_id].profit_loss_pct == pytest.approx(-200.0 / 101.0)
    assert closed[hold.signal_id].profit_loss_pct == 0.0
    assert closed[sell.signal_id].outcome == "loss"
    assert closed[sell.signal_id].exit_price == 103.0


def test_bad_outcomes_are_refused(tracker: SignalTracker) -> None:
    with pytest.raises(ValueError, match="outcome"):
        tracker.record_outcome("x", "won", 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="exit_price"):
        tracker.record_outcome("x", "win", 0.0)


def test_open_signals_are_those_without_an_outcome(tracker: SignalTracker) -> None:
    for n in range(3):
        tracker.add(make_signal(n))
    tracker.record_outcome(make_signal(1).signal_id, "win", 110.0)
    assert [t.signal for t in tracker.open_signals("AAPL")] == [make_signal(0), make_signal(2)]


def test_outcome_stats_count_a_time_range(tracker: SignalTracker) -> None:
    for n in range(6):
        tracker.add(make_signal(n))
    tracker.record_outcome(make_signal(0).signal_id, "win", 103.0)  # +3 %
    tracker.record_outcome(make_signal(1).signal_id, "loss", 100.0)  # -0.99 %
    tracker.record_outcome(make_signal(2).signal_id, "win", 104.04)  # +2 %
    tracker.record_outcome(make_signal(3).signal_id, "expired", 103.0)  # 0 %
    stats = tracker.outcome_stats()
    assert (stats.total, stats.open, stats.wins, stats.losses, stats.expired) == (6, 2, 2, 1, 1)
    assert stats.win_rate == pytest.approx(200.0 / 3)
    assert stats.avg_profit_loss_pct == pytest.approx((3.0 - 100.0 / 101.0 + 2.0 + 0.0) / 4)
    early = tracker.outcome_stats(until=AT + timedelta(seconds=10))  # signals 0 and 1
    assert (early.total, early.wins, early.losses) == (2, 1, 1)
    late = tracker.outcome_stats(since=AT + timedelta(seconds=20))  # signals 4 and 5
    assert (late.total, late.open, late.win_rate, late.avg_profit_loss_pct) == (2, 2, 0.0, 0.0)
    with pytest.raises(ValueError, match="aware"):
        tracker.outcome_stats(since=datetime(2026, 1, 6))


@pytest.mark.parametrize(
    ("query", "index"),
    [
        ("LATEST_SQL", "idx_symbol_timestamp"),
        ("LAST_SHA_SQL", "idx_symbol_timestamp"),
        ("OPEN_SQL", "idx_symbol_outcome"),
        ("OUTCOME_SQL", "sqlite_autoindex_signals_1"),  # the UNIQUE signal_id
        ("STATS_SQL", "idx_timestamp_outcome"),
    ],
)
def test_each_query_uses_an_index(tracker: SignalTracker, db: Path, query: str, index: str) -> None:
    for n in range(30):
        tracker.add(make_signal(n, symbol=("AAPL", "MSFT", "BTC-USD")[n % 3]))
    tracker.flush()
    sql: str = getattr(tracker_module, query)
    with closing(sqlite3.connect(db)) as conn:
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", ["x"] * sql.count("?"))]
    assert plan[0].startswith(f"SEARCH signals USING INDEX {index} ("), plan
    assert not any(step.startswith("SCAN") for step in plan), plan


def test_adds_from_several_threads_are_all_stored(tracker: SignalTracker, db: Path) -> None:
    def work(symbol: str) -> None:
        for n in range(40):
            assert tracker.add(make_signal(n, symbol=symbol))

    threads = [threading.Thread(target=work, args=(f"S{k}",)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tracker.flush()
    assert rows(db) == [(160,)]


class InterruptingClock(ManualClock):
    """A clock whose ``now()`` runs a handler once, as a signal arriving inside a tracker call."""

    def __init__(self) -> None:
        super().__init__(AT)
        self.handler: Callable[[], object] | None = None

    def now(self) -> datetime:
        handler, self.handler = self.handler, None
        if handler is not None:
            handler()
        return super().now()


def test_a_close_from_a_handler_inside_a_call_is_done_as_the_call_ends(db: Path) -> None:
    clock = InterruptingClock()
    tracker = SignalTracker(db, batch_size=100, flush_interval=None, clock=clock)
    tracker.add(make_signal(0))
    clock.handler = tracker.close
    assert tracker.add(make_signal(1))  # the handler ran inside: the call still completes
    assert tracker.closed
    assert rows(db) == [(2,)]


def test_a_handler_that_exits_inside_a_call_still_writes_the_batch(db: Path) -> None:
    clock = InterruptingClock()
    tracker = SignalTracker(db, batch_size=100, flush_interval=None, clock=clock)
    for n in range(3):
        tracker.add(make_signal(n))

    def stop() -> None:
        tracker.close()
        sys.exit(0)

    clock.handler = stop
    with pytest.raises(SystemExit):
        tracker.add(make_signal(3))  # interrupted before it was accepted
    assert tracker.closed
    assert rows(db) == [(3,)]


def test_a_flush_from_a_handler_inside_a_call_is_done_as_the_call_ends(db: Path) -> None:
    clock = InterruptingClock()
    with SignalTracker(db, batch_size=100, flush_interval=None, clock=clock) as tracker:
        tracker.add(make_signal(0))
        clock.handler = lambda: tracker.flush()  # returns 0: deferred
        tracker.add(make_signal(1))
        assert rows(db) == [(2,)]
        assert tracker.stats.pending == 0


# A service's shutdown: a handler closes the tracker and exits, whichever face is in use.
CHILD = r"""
import asyncio, signal, sys
from datetime import datetime, timedelta, timezone
from examples.signal_service import AsyncSignalTracker, Signal, SignalTracker

path, face, name = sys.argv[1], sys.argv[2], sys.argv[3]
start = datetime(2026, 1, 6, 15, 0, tzinfo=timezone.utc)


def make(n):
    return Signal("AAPL", "BUY", 100.0 + n / 100, 104.0, 98.0, 60.0, "test", "stock",
                  "massive", start + timedelta(seconds=n))


def install(tracker):
    def stop(signum, frame):
        tracker.close()
        sys.exit(0)
    signal.signal(getattr(signal, name), stop)


if face == "sync":
    tracker = SignalTracker(path, batch_size=10**9, flush_interval=None)
    install(tracker)
    n = 0
    while True:
        if tracker.add(make(n)):
            print(make(n).signal_id, flush=True)
        n += 1
else:
    async def main():
        tracker = await AsyncSignalTracker.open(path, batch_size=10**9, flush_interval=None)
        install(tracker.tracker)
        n = 0
        while True:
            if await tracker.add(make(n)):
                print(make(n).signal_id, flush=True)
            n += 1

    asyncio.run(main())
"""


@pytest.mark.parametrize(("face", "name"), [("sync", "SIGTERM"), ("async", "SIGINT")])
def test_a_killed_service_keeps_every_accepted_signal(db: Path, face: str, name: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), face, name],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        accepted: list[str] = []
        while len(accepted) < 300:
            line = child.stdout.readline()
            if not line:
                break
            accepted.append(line.strip())
        assert len(accepted) == 300, child.stderr.read() if child.stderr else ""
        assert rows(db) == [(0,)]  # all of them still in the pending batch
        child.send_signal(getattr(signals, name))
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    accepted += out.split()
    stored = {signal_id for (signal_id,) in rows(db, "SELECT signal_id FROM signals")}
    assert set(accepted) <= stored
    assert len(stored) >= len(accepted)


async def test_the_async_face_runs_the_database_on_one_worker_thread(db: Path) -> None:
    threads: set[str] = set()

    class Recording(ManualClock):
        def now(self) -> datetime:
            threads.add(threading.current_thread().name)
            return super().now()

    async with await AsyncSignalTracker.open(db, batch_size=2, clock=Recording(AT)) as tracker:
        for n in range(5):
            assert await tracker.add(make_signal(n))
        assert not await tracker.add(make_signal(4, timestamp=AT + timedelta(hours=1)))
        assert await tracker.flush() == 1
        latest = await tracker.latest("AAPL", limit=2)
        assert [t.signal for t in latest] == [make_signal(4), make_signal(3)]
        assert await tracker.record_outcome(make_signal(0).signal_id, "win", 101.0)
        assert len(await tracker.open_signals("AAPL")) == 4
        stats = await tracker.outcome_stats()
        assert (stats.total, stats.wins) == (5, 1)
        assert tracker.stats.written == 5
        assert tracker.tracker.journal_mode == "wal"
    assert len(threads) == 1
    assert threads.pop().startswith("signal-tracker")
    assert tracker.tracker.closed
    await tracker.close()  # idempotent
    with pytest.raises(TrackerClosedError):
        await tracker.add(make_signal(9))


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 1.5}, "batch_size"),
        ({"flush_interval": -1.0}, "flush_interval"),
        ({"flush_interval": float("inf")}, "flush_interval"),
    ],
)
def test_bad_tracker_settings_name_the_parameter(
    db: Path, kwargs: dict[str, Any], parameter: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        SignalTracker(db, **kwargs)
    assert raised.value.parameter == parameter


def test_a_memory_database_works_without_wal() -> None:
    with SignalTracker(":memory:") as tracker:
        tracker.add(make_signal(0))
        assert tracker.journal_mode == "memory"
        assert len(tracker.latest("AAPL")) == 1
        assert "open" in repr(tracker)
    assert "closed" in repr(tracker)
