"""Clock: the injected time every primitive uses."""

from __future__ import annotations

import asyncio
import math
import threading
from datetime import datetime, timedelta, timezone

import pytest

from argo_perf import Clock, ManualClock, SystemClock


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(SystemClock(), Clock)
    assert isinstance(ManualClock(), Clock)


def test_system_clock_is_monotonic_and_aware_utc() -> None:
    clock = SystemClock()
    a = clock.monotonic()
    assert clock.monotonic() >= a
    assert clock.now().utcoffset() == timedelta(0)
    clock.sleep(0)
    clock.sleep(-1)
    assert repr(clock) == "SystemClock()"


async def test_system_clock_sleep_async_returns() -> None:
    await SystemClock().sleep_async(0)
    await SystemClock().sleep_async(0.001)


def test_system_clock_sleep_blocks_briefly() -> None:
    SystemClock().sleep(0.001)


def test_manual_clock_moves_only_when_advanced() -> None:
    start = datetime(2026, 3, 9, 13, 30, tzinfo=timezone.utc)
    clock = ManualClock(start)
    assert clock.monotonic() == 0.0
    assert clock.now() == start
    clock.advance(2.5)
    assert clock.monotonic() == 2.5
    assert clock.now() == start + timedelta(seconds=2.5)
    assert clock.timestamp() == start.timestamp() + 2.5
    assert "monotonic=2.5" in repr(clock)


def test_manual_clock_rejects_naive_start_and_going_backwards() -> None:
    with pytest.raises(ValueError, match="naive"):
        ManualClock(datetime(2026, 1, 1))
    clock = ManualClock()
    with pytest.raises(ValueError, match="seconds must be >= 0"):
        clock.advance(-1)
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="seconds must be"):
            clock.advance(bad)
    assert clock.monotonic() == 0.0
    assert clock.now() == datetime(2026, 1, 5, 14, 30, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match="naive"):
        clock.set(datetime(2027, 1, 1))


def test_manual_clock_set_jumps_to_a_datetime() -> None:
    clock = ManualClock(datetime(2026, 1, 5, 14, 0, tzinfo=timezone.utc))
    clock.set(datetime(2026, 1, 5, 9, 30, tzinfo=timezone(timedelta(hours=-5))))
    assert clock.monotonic() == 1800.0


def test_manual_clock_converts_other_timezones_to_utc() -> None:
    clock = ManualClock(datetime(2026, 1, 5, 9, 30, tzinfo=timezone(timedelta(hours=-5))))
    assert clock.now() == datetime(2026, 1, 5, 14, 30, tzinfo=timezone.utc)
    assert clock.now().tzinfo == timezone.utc


def test_blocked_sleep_is_woken_by_advance() -> None:
    clock = ManualClock()
    woke = threading.Event()

    def sleeper() -> None:
        clock.sleep(5.0)
        woke.set()

    thread = threading.Thread(target=sleeper)
    thread.start()
    while clock.sleepers == 0:
        threading.Event().wait(0.001)
    clock.advance(4.9)
    assert not woke.wait(0.02)
    clock.advance(0.1)
    assert woke.wait(5.0)
    thread.join()
    assert clock.sleepers == 0


async def test_awaiting_sleep_async_is_woken_by_advance() -> None:
    clock = ManualClock()
    task = asyncio.create_task(clock.sleep_async(3.0))
    await asyncio.sleep(0)
    assert clock.sleepers == 1
    clock.advance(2.0)
    await asyncio.sleep(0)
    assert not task.done()
    clock.advance(1.0)
    await asyncio.wait_for(task, 5.0)
    assert clock.sleepers == 0


async def test_sleepers_wake_in_deadline_order() -> None:
    clock = ManualClock()
    order: list[float] = []

    async def sleep(seconds: float) -> None:
        await clock.sleep_async(seconds)
        order.append(seconds)

    tasks = [asyncio.create_task(sleep(s)) for s in (3.0, 1.0, 2.0)]
    await asyncio.sleep(0)
    clock.advance(10)
    await asyncio.gather(*tasks)
    assert order == [1.0, 2.0, 3.0]


async def test_cancelled_sleep_async_leaves_no_sleeper() -> None:
    clock = ManualClock()
    task = asyncio.create_task(clock.sleep_async(3.0))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.sleepers == 0
    clock.advance(5)  # nothing left to wake


def test_zero_and_negative_sleeps_return_at_once() -> None:
    clock = ManualClock()
    clock.sleep(0)
    clock.sleep(-3)
    assert clock.monotonic() == 0.0


async def test_zero_sleep_async_yields_without_advancing() -> None:
    clock = ManualClock()
    await clock.sleep_async(0)
    assert clock.monotonic() == 0.0


def test_autoadvance_sleep_moves_time_at_once() -> None:
    clock = ManualClock(autoadvance=True)
    clock.sleep(2.0)
    assert clock.monotonic() == 2.0


async def test_autoadvance_sleep_async_moves_time() -> None:
    clock = ManualClock(autoadvance=True)
    await clock.sleep_async(1.5)
    await clock.sleep_async(0)
    assert clock.monotonic() == 1.5


async def test_a_nan_sleep_returns_at_once_like_the_system_clock() -> None:
    clock = ManualClock()
    clock.sleep(math.nan)  # would block for ever if it were queued
    task = asyncio.create_task(clock.sleep_async(math.nan))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert task.done()
    assert clock.sleepers == 0
