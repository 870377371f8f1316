"""PriorityScheduler: order by volatility, bounded concurrency, deadlines, ageing."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from argo_perf import (
    ConfigError,
    ManualClock,
    PriorityScheduler,
    ScheduleReport,
    SchedulerStats,
    SymbolResult,
    SymbolStatus,
    VolatilityTracker,
)

T = TypeVar("T")

START = datetime(2026, 1, 5, 15, tzinfo=timezone.utc)


def tracker_with(moves: dict[str, float]) -> VolatilityTracker:
    """A tracker that has seen each symbol alternate by ``move`` (relative) every 5 s."""
    tracker = VolatilityTracker()
    for symbol, move in moves.items():
        price = 100.0
        for i in range(8):
            tracker.observe(symbol, price, START + timedelta(seconds=5 * i))
            price *= 1 + move if i % 2 == 0 else 1 / (1 + move)
    return tracker


async def settle() -> None:
    """Let every ready task run until it waits again (no wall time: loop turns only)."""
    for _ in range(100):
        await asyncio.sleep(0)


async def drive(clock: ManualClock, run: Coroutine[Any, Any, T], *steps: float) -> T:
    """Start ``run``, then advance ``clock`` by each step once everything waits."""
    task = asyncio.ensure_future(run)
    for step in steps:
        await settle()
        clock.advance(step)
    await settle()
    assert task.done(), "the run did not end after the last step"
    return task.result()


def sleeper(
    clock: ManualClock, seconds: dict[str, float], cancelled: list[str] | None = None
) -> Callable[[str], Awaitable[str]]:
    """An async call that takes ``seconds[symbol]`` (default 1) on the clock, returns the
    symbol lowered, and notes in ``cancelled`` the symbols whose call saw its cancellation."""

    async def call(symbol: str) -> str:
        try:
            await clock.sleep_async(seconds.get(symbol, 1.0))
        except asyncio.CancelledError:
            if cancelled is not None:
                cancelled.append(symbol)
            raise
        return symbol.lower()

    return call


# -- order ---------------------------------------------------------------------------


def test_order_puts_the_most_volatile_first_and_keeps_ties_in_input_order() -> None:
    tracker = tracker_with({"CALM": 0.0005, "WILD": 0.01, "MID": 0.002, "MID2": 0.002})
    scheduler = PriorityScheduler(tracker)
    assert tracker.volatility("MID") == tracker.volatility("MID2")
    assert scheduler.order(["CALM", "MID2", "MID", "WILD"]) == ["WILD", "MID2", "MID", "CALM"]
    assert scheduler.order(["MID", "CALM", "MID2", "WILD"]) == ["WILD", "MID", "MID2", "CALM"]


def test_symbols_never_observed_go_first_as_they_need_a_price() -> None:
    tracker = tracker_with({"CALM": 0.0005, "WILD": 0.01})
    scheduler = PriorityScheduler(tracker)
    assert scheduler.order(["CALM", "NEW1", "WILD", "NEW2"]) == ["NEW1", "NEW2", "WILD", "CALM"]
    tracker.forget("WILD")  # forgotten (e.g. evicted) counts as never observed
    assert scheduler.order(["CALM", "WILD"]) == ["WILD", "CALM"]


def test_a_symbol_seen_without_a_move_ranks_as_calm_not_unknown() -> None:
    tracker = tracker_with({"WILD": 0.01})
    tracker.observe("FLAT", 50.0, START)
    tracker.observe("FLAT", 50.0, START + timedelta(seconds=5))
    assert PriorityScheduler(tracker).order(["FLAT", "NEW", "WILD"]) == ["NEW", "WILD", "FLAT"]


def test_without_a_tracker_the_input_order_is_kept() -> None:
    assert PriorityScheduler().order(["B", "A", "C"]) == ["B", "A", "C"]


def test_a_symbol_given_twice_is_scheduled_once_at_its_first_place() -> None:
    scheduler = PriorityScheduler(tracker_with({"A": 0.001, "B": 0.01}))
    assert scheduler.order(["A", "B", "A", "B", "C", "C"]) == ["C", "B", "A"]


def test_order_refuses_a_string_and_what_is_not_a_symbol() -> None:
    scheduler = PriorityScheduler()
    with pytest.raises(TypeError, match="not a string"):
        scheduler.order("AAPL")
    with pytest.raises(TypeError, match="strings"):
        scheduler.order(["AAPL", 42])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="empty"):
        scheduler.order(["AAPL", ""])


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["A", "B", "C", "D", "E", "F"]),
            st.one_of(st.none(), st.sampled_from([0.0005, 0.002, 0.01])),
        ),
        max_size=10,
    )
)
def test_order_is_unknown_first_then_by_falling_volatility_ties_in_input_order(
    draws: list[tuple[str, float | None]],
) -> None:
    moves = {symbol: move for symbol, move in draws if move is not None}
    tracker = tracker_with(moves)
    symbols = [symbol for symbol, _ in draws]
    ordered = PriorityScheduler(tracker).order(symbols)
    distinct = list(dict.fromkeys(symbols))
    assert sorted(ordered) == sorted(distinct)
    unknown = [s for s in distinct if s not in tracker]
    assert ordered[: len(unknown)] == unknown
    known = ordered[len(unknown) :]
    for first, second in itertools.pairwise(known):
        a, b = tracker.volatility(first), tracker.volatility(second)
        assert a >= b
        if a == b:
            assert distinct.index(first) < distinct.index(second)


# -- configuration ---------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "3", None])
def test_max_skips_must_be_an_int_of_at_least_one(value: object) -> None:
    with pytest.raises(ConfigError, match="max_skips") as info:
        PriorityScheduler(max_skips=value)  # type: ignore[arg-type]
    assert info.value.value == value


def test_volatility_must_be_a_tracker() -> None:
    with pytest.raises(ConfigError, match="volatility"):
        PriorityScheduler({"AAPL": 0.3})  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0, -2, 2.0, True, "4"])
async def test_concurrency_must_be_an_int_of_at_least_one(value: object) -> None:
    calls: list[str] = []

    async def call(symbol: str) -> None:
        calls.append(symbol)

    with pytest.raises(ConfigError, match="concurrency") as info:
        await PriorityScheduler().run(["A"], call, concurrency=value)  # type: ignore[arg-type]
    assert info.value.value == value
    assert repr(value) in str(info.value)
    assert calls == []


@pytest.mark.parametrize("value", [0, -1.0, math.nan, "5"])
async def test_deadline_must_be_positive_seconds(value: object) -> None:
    async def call(symbol: str) -> None:
        raise AssertionError("never called")

    with pytest.raises(ConfigError, match="deadline"):
        await PriorityScheduler().run(["A"], call, deadline=value)  # type: ignore[arg-type]


async def test_fn_must_be_callable() -> None:
    with pytest.raises(ConfigError, match="fn"):
        await PriorityScheduler().run(["A"], "fetch")  # type: ignore[arg-type]


# -- runs ------------------------------------------------------------------------------


async def test_calls_start_in_order_never_more_than_concurrency_at_once(
    clock: ManualClock,
) -> None:
    scheduler = PriorityScheduler(tracker_with({"A": 0.01, "B": 0.005, "C": 0.002}), clock=clock)
    started: list[str] = []
    running = peak = 0

    async def call(symbol: str) -> str:
        nonlocal running, peak
        started.append(symbol)
        running += 1
        peak = max(peak, running)
        await clock.sleep_async({"A": 3.0, "B": 1.0}.get(symbol, 1.0))
        running -= 1
        return symbol

    symbols = ["D", "E", "C", "B", "A"]
    report = await drive(clock, scheduler.run(symbols, call, concurrency=2), 1, 1, 1, 1)
    assert started == ["D", "E", "A", "B", "C"]
    assert peak == 2
    assert list(report) == ["D", "E", "A", "B", "C"]
    assert report.done == ("D", "E", "A", "B", "C")
    assert {s: r.value for s, r in report.items()} == {s: s for s in report}
    assert not report.deadline_reached
    # D and E at 0; A and B when they ended at 1; C when B ended at 2; A ran 3 s.
    assert [report[s].started for s in report] == [0, 0, 1, 1, 2]
    assert report["A"].elapsed == 3.0
    assert report.elapsed == 4.0


async def test_the_deadline_cancels_running_calls_and_leaves_the_rest_not_started(
    clock: ManualClock,
) -> None:
    scheduler = PriorityScheduler(clock=clock)
    seen_cancel: list[str] = []
    call = sleeper(clock, {"A": 1.0, "B": 10.0, "C": 2.0}, seen_cancel)
    run = scheduler.run(["A", "B", "C", "D", "E"], call, concurrency=2, deadline=2.5)
    task = asyncio.ensure_future(run)
    await settle()
    clock.advance(2.4)  # A done at 1, C started at 1 and done at 3: still running
    await settle()
    assert not task.done()
    clock.advance(0.1)  # the deadline, on the injected clock
    await settle()
    report = task.result()
    assert report.done == ("A",)
    assert report.cancelled == ("B", "C")
    assert report.not_started == ("D", "E")
    assert sorted(seen_cancel) == ["B", "C"]
    assert report.deadline_reached
    assert report["B"].status is SymbolStatus.CANCELLED
    assert (report["B"].started, report["B"].finished) == (0.0, 2.5)
    assert report["D"] == SymbolResult("D", SymbolStatus.NOT_STARTED)
    assert report["D"].elapsed is None
    assert not report["D"].ok
    assert report.elapsed == 2.5
    assert clock.sleepers == 0  # nothing left behind: no call, no timer


async def test_a_run_that_ends_before_its_deadline_reports_no_deadline(
    clock: ManualClock,
) -> None:
    scheduler = PriorityScheduler(clock=clock)
    report = await drive(clock, scheduler.run(["A", "B"], sleeper(clock, {}), deadline=5), 1.0)
    assert report.done == ("A", "B")
    assert not report.deadline_reached
    assert clock.sleepers == 0  # the deadline's timer is gone too
    report = await drive(clock, scheduler.run(["A"], sleeper(clock, {}), deadline=math.inf), 1.0)
    assert report.done == ("A",)


async def test_a_failing_call_is_reported_and_never_cancels_the_others(
    clock: ManualClock,
) -> None:
    scheduler = PriorityScheduler(clock=clock)
    boom = RuntimeError("vendor down")

    async def call(symbol: str) -> str:
        await clock.sleep_async(1.0 if symbol == "BAD" else 2.0)
        if symbol == "BAD":
            raise boom
        return symbol

    report = await drive(clock, scheduler.run(["BAD", "A", "B"], call, concurrency=3), 1, 1)
    assert report.failed == ("BAD",)
    assert report["BAD"].error is boom
    assert report["BAD"].value is None
    assert report.done == ("A", "B")


async def test_a_call_raising_cancelled_error_itself_is_its_symbols_not_the_runs() -> None:
    # A vendor client may end a call with CancelledError of its own (an inner
    # timeout, a closed session): the run itself was not cancelled.
    async def call(symbol: str) -> str:
        await asyncio.sleep(0)
        if symbol == "BAD":
            raise asyncio.CancelledError
        return symbol

    scheduler = PriorityScheduler()
    report = await scheduler.run(["BAD", "A", "B"], call, concurrency=2)
    assert report.cancelled == ("BAD",)
    assert report.done == ("A", "B")
    assert scheduler.stats.cancelled == 1


async def test_a_call_that_is_not_async_fails_its_symbol_only() -> None:
    def not_async(symbol: str) -> str:
        return symbol

    report: ScheduleReport[str] = await PriorityScheduler().run(
        ["A"],
        not_async,  # type: ignore[arg-type]
    )
    assert isinstance(report["A"].error, TypeError)
    assert "async" in str(report["A"].error)


async def test_a_call_that_swallows_its_cancellation_is_reported_as_it_ended(
    clock: ManualClock,
) -> None:
    async def stubborn(symbol: str) -> str:
        try:
            await clock.sleep_async(10)
        except asyncio.CancelledError:
            return "kept going"
        return "never"

    report = await drive(
        clock, PriorityScheduler(clock=clock).run(["A"], stubborn, deadline=1), 1.0
    )
    assert report["A"].status is SymbolStatus.DONE
    assert report["A"].value == "kept going"
    assert report.deadline_reached


async def test_cancelling_the_run_cancels_every_call_it_started_and_propagates(
    clock: ManualClock,
) -> None:
    scheduler = PriorityScheduler(clock=clock)
    cancelled: list[str] = []
    call = sleeper(clock, {}, cancelled)
    task = asyncio.ensure_future(scheduler.run(["A", "B", "C"], call, concurrency=2))
    await settle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(cancelled) == ["A", "B"]
    assert clock.sleepers == 0
    # The run counts: nothing was processed, every symbol was skipped once.
    assert [scheduler.skips(s) for s in "ABC"] == [1, 1, 1]
    assert scheduler.stats == SchedulerStats(
        max_skips=5, runs=1, cancelled=2, not_started=1, deadlines=0
    )


async def test_an_empty_run_reports_nothing() -> None:
    async def call(symbol: str) -> None:
        raise AssertionError("never called")

    report = await PriorityScheduler().run([], call, deadline=1)
    assert len(report) == 0
    assert not report.deadline_reached


async def test_runs_on_the_system_clock_by_default() -> None:
    async def call(symbol: str) -> str:
        return symbol

    report: ScheduleReport[str] = await PriorityScheduler().run(["A", "A", "B"], call)
    assert report.done == ("A", "B")
    assert report["A"].elapsed is not None
    assert report["A"].elapsed >= 0


# -- ageing ----------------------------------------------------------------------------


async def _cycle(
    clock: ManualClock, scheduler: PriorityScheduler, symbols: Iterable[str]
) -> ScheduleReport[str]:
    """One run with room for two 1-second calls: two at once, deadline 1.5 s."""
    run = scheduler.run(symbols, sleeper(clock, {}), concurrency=2, deadline=1.5)
    return await drive(clock, run, 1.0, 0.5)


async def test_a_calm_symbol_is_processed_at_least_every_max_skips_plus_one_runs(
    clock: ManualClock,
) -> None:
    tracker = tracker_with({"A": 0.02, "B": 0.01, "C": 0.002, "D": 0.001})
    scheduler = PriorityScheduler(tracker, max_skips=2, clock=clock)
    symbols = ["D", "C", "B", "A"]
    history = []
    for _ in range(7):
        expected = scheduler.order(symbols)[:2]
        report = await _cycle(clock, scheduler, symbols)
        assert list(report.done) == expected  # the two first in the order, every run
        history.append("".join(report.done))
        assert all(scheduler.skips(symbol) <= 2 for symbol in symbols)
    assert history == ["AB", "AB", "CD", "AB", "AB", "CD", "AB"]
    stats = scheduler.stats
    assert (stats.runs, stats.overdue, stats.done, stats.deadlines) == (7, 4, 14, 7)
    assert stats.cancelled == 14
    assert stats.not_started == 0


async def test_overdue_symbols_go_first_longest_skipped_first(clock: ManualClock) -> None:
    tracker = tracker_with({"A": 0.02, "B": 0.01, "C": 0.002, "D": 0.001, "E": 0.0005})
    scheduler = PriorityScheduler(tracker, max_skips=1, clock=clock)
    assert (await _cycle(clock, scheduler, ["A", "B", "C", "D"])).done == ("A", "B")
    # C, D skipped once: overdue; E is new to the scheduler but known to the tracker.
    assert scheduler.order(["E", "D", "C", "B", "A"]) == ["C", "D", "A", "B", "E"]
    assert (await _cycle(clock, scheduler, ["A", "B", "C", "D", "E"])).done == ("C", "D")
    assert [scheduler.skips(s) for s in "ABCDE"] == [1, 1, 0, 0, 1]
    assert (await _cycle(clock, scheduler, ["A", "B", "C", "D", "E"])).done == ("A", "B")
    assert [scheduler.skips(s) for s in "ABCDE"] == [0, 0, 1, 1, 2]
    assert scheduler.order(["A", "B", "C", "D", "E"])[:3] == ["E", "C", "D"]


async def test_a_failed_call_ends_the_streak_as_a_processed_one(clock: ManualClock) -> None:
    scheduler = PriorityScheduler(max_skips=1, clock=clock)

    async def fail(symbol: str) -> None:
        raise ValueError(symbol)

    await scheduler.run(["A"], fail)
    assert scheduler.skips("A") == 0
    run = scheduler.run(["A", "B"], sleeper(clock, {}), concurrency=1, deadline=0.5)
    report = await drive(clock, run, 0.5)
    assert report.cancelled == ("A",)
    assert report.not_started == ("B",)
    assert (scheduler.skips("A"), scheduler.skips("B")) == (1, 1)


async def test_a_symbol_left_out_of_a_run_starts_afresh(clock: ManualClock) -> None:
    scheduler = PriorityScheduler(max_skips=3, clock=clock)
    await drive(clock, scheduler.run(["A", "B"], sleeper(clock, {}), deadline=0.5), 0.5)
    assert scheduler.skips("B") == 1
    await drive(clock, scheduler.run(["A"], sleeper(clock, {}), deadline=0.5), 0.5)
    assert scheduler.skips("B") == 0
    assert repr(scheduler) == "PriorityScheduler(max_skips=3, tracked=1)"
