"""Batcher: single-key calls within a window become one batch call; each caller gets its own answer.

Time is a ManualClock; threads and tasks are synchronized by polling the
batcher's and the clock's state (bounded waits, never timing assertions).
"""

from __future__ import annotations

import asyncio
import gc
import math
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from argo_perf import Batcher, BatcherStats, ConfigError, ManualClock, MissingKeyError

WINDOW = 0.01


class Down(Exception):
    """A vendor failure, naming the batch (by its index) that raised it."""


class Interrupt(BaseException):
    """Stands for KeyboardInterrupt without disturbing the test runner."""


class Vendor:
    """A batch endpoint that records its calls and answers ``key -> (key, call index)``."""

    def __init__(
        self,
        *,
        failing: Callable[[int, list[Any]], bool] = lambda index, keys: False,
        missing: frozenset[Any] = frozenset(),
        bad: frozenset[Any] = frozenset(),
    ) -> None:
        self.calls: list[list[Any]] = []
        self.failing = failing
        self.missing = missing
        self.bad = bad

    def answer(self, keys: list[Any]) -> dict[Any, Any]:
        index = len(self.calls)
        self.calls.append(list(keys))
        if self.failing(index, keys):
            raise Down(index)
        answer: dict[Any, Any] = {"unasked": "ignored"}
        for key in keys:
            if key in self.bad:
                answer[key] = LookupError(f"unknown symbol {key!r}")
            elif key not in self.missing:
                answer[key] = (key, index)
        return answer

    async def answer_async(self, keys: list[Any]) -> dict[Any, Any]:
        await asyncio.sleep(0)  # a real await between the call and the answer
        return self.answer(keys)


def wait_until(condition: Callable[[], bool]) -> None:
    """Wait for other threads' effect (bounded; not a timing assertion)."""
    deadline = time.monotonic() + 5.0
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.001)


async def until(condition: Callable[[], bool]) -> None:
    """Let the event loop run until ``condition`` holds (bounded)."""
    for _ in range(5000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition not reached")


def spawn(*coroutines: Coroutine[Any, Any, Any]) -> list[asyncio.Task[Any]]:
    return [asyncio.ensure_future(coroutine) for coroutine in coroutines]


async def load_all(batcher: Batcher[Any, Any], keys: list[Any]) -> list[Any]:
    """Each key's value or exception, from one task per key started together."""
    return await asyncio.gather(*(batcher.load_async(key) for key in keys), return_exceptions=True)


# -- construction ---------------------------------------------------------------------


@pytest.mark.parametrize("max_size", [0, -1, 1.5, True, "10", None])
def test_max_size_must_be_an_int_of_at_least_one(max_size: Any) -> None:
    with pytest.raises(ConfigError, match="max_size") as info:
        Batcher(Vendor().answer, max_size=max_size)
    assert info.value.value is max_size


@pytest.mark.parametrize("window", [-0.001, math.inf, math.nan, "0.01", None, True])
def test_window_must_be_finite_seconds_of_at_least_zero(window: Any) -> None:
    with pytest.raises(ConfigError, match="window") as info:
        Batcher(Vendor().answer, window=window)
    assert info.value.value is window


def test_batch_fn_must_be_callable() -> None:
    with pytest.raises(ConfigError, match="batch_fn"):
        Batcher({"AAPL": 1.0})  # type: ignore[call-overload]


def test_repr_names_the_function_and_the_settings() -> None:
    def fetch_quotes(symbols: list[str]) -> dict[str, float]:
        return {}

    batcher = Batcher(fetch_quotes, max_size=50, window=0.005)
    assert repr(batcher) == (
        "Batcher(test_repr_names_the_function_and_the_settings.<locals>.fetch_quotes, "
        "max_size=50, window=0.005)"
    )
    assert (batcher.max_size, batcher.window) == (50, 0.005)


def test_stats_start_at_zero() -> None:
    assert Batcher(Vendor().answer).stats == BatcherStats()


# -- the asyncio face: windows -----------------------------------------------------------


async def test_calls_within_the_window_become_one_call_after_the_window(
    clock: ManualClock,
) -> None:
    vendor = Vendor()
    batcher = Batcher(vendor.answer_async, window=WINDOW, clock=clock)
    tasks = spawn(*(batcher.load_async(symbol) for symbol in ["AAPL", "MSFT", "NVDA"]))
    await until(lambda: clock.sleepers == 1 and batcher.stats.keys_requested == 3)
    clock.advance(WINDOW / 2)
    await asyncio.sleep(0)
    assert vendor.calls == []  # the window is still open
    late = spawn(batcher.load_async("TSLA"))
    await until(lambda: batcher.stats.keys_requested == 4)
    clock.advance(WINDOW / 2)
    assert await asyncio.gather(*tasks, *late) == [
        ("AAPL", 0),
        ("MSFT", 0),
        ("NVDA", 0),
        ("TSLA", 0),
    ]
    assert vendor.calls == [["AAPL", "MSFT", "NVDA", "TSLA"]]


async def test_a_full_window_is_fetched_at_once_and_the_next_call_opens_another(
    clock: ManualClock,
) -> None:
    vendor = Vendor()
    batcher = Batcher(vendor.answer_async, max_size=3, window=WINDOW, clock=clock)
    first = spawn(batcher.load_async(0))
    await until(lambda: clock.sleepers == 1)  # the window's timer sleeps
    first += spawn(batcher.load_async(1), batcher.load_async(2))
    assert await asyncio.gather(*first) == [(0, 0), (1, 0), (2, 0)]  # no clock advance
    assert clock.sleepers == 0  # the full window's timer was cancelled
    second = spawn(*(batcher.load_async(n) for n in range(3, 5)))
    await until(lambda: clock.sleepers == 1)
    assert vendor.calls == [[0, 1, 2]]
    clock.advance(WINDOW)
    assert await asyncio.gather(*second) == [(3, 1), (4, 1)]
    assert batcher.stats.largest_batch == 3


async def test_max_size_one_fetches_every_call_alone(clock: ManualClock) -> None:
    vendor = Vendor()
    batcher = Batcher(vendor.answer_async, max_size=1, window=WINDOW, clock=clock)
    assert await asyncio.gather(batcher.load_async("a"), batcher.load_async("b")) == [
        ("a", 0),
        ("b", 1),
    ]
    assert clock.sleepers == 0


async def test_window_zero_batches_the_calls_of_one_event_loop_iteration() -> None:
    vendor = Vendor()
    batcher = Batcher(vendor.answer_async, window=0)
    values = await asyncio.gather(*(batcher.load_async(n) for n in range(20)))
    assert values == [(n, 0) for n in range(20)]
    assert vendor.calls == [list(range(20))]
    assert await batcher.load_async(99) == (99, 1)


async def test_a_sync_batch_function_serves_load_async() -> None:
    vendor = Vendor()
    batcher = Batcher(vendor.answer, window=0)
    assert await asyncio.gather(batcher.load_async("a"), batcher.load_async("b")) == [
        ("a", 0),
        ("b", 0),
    ]


# -- what each caller gets -----------------------------------------------------------------


async def test_duplicate_keys_in_a_window_are_fetched_once_for_every_caller() -> None:
    vendor = Vendor()
    batcher = Batcher(vendor.answer_async, window=0)
    keys = ["AAPL", "MSFT", "AAPL", "AAPL", "MSFT", "NVDA"]
    values = await asyncio.gather(*(batcher.load_async(key) for key in keys))
    assert values == [(key, 0) for key in keys]
    assert vendor.calls == [["AAPL", "MSFT", "NVDA"]]
    stats = batcher.stats
    assert (stats.keys_requested, stats.duplicates, stats.keys_fetched) == (6, 3, 3)


async def test_a_duplicate_key_does_not_count_towards_max_size() -> None:
    vendor = Vendor()
    batcher = Batcher(vendor.answer_async, max_size=2, window=0)
    await asyncio.gather(*(batcher.load_async(key) for key in ["a", "a", "a", "b", "c"]))
    assert vendor.calls == [["a", "b"], ["c"]]


async def test_a_missing_key_fails_its_callers_only_and_extra_keys_are_ignored() -> None:
    vendor = Vendor(missing=frozenset({"ZZZZ"}))
    batcher = Batcher(vendor.answer_async, window=0)
    results = await load_all(batcher, ["AAPL", "ZZZZ", "ZZZZ"])
    assert results[0] == ("AAPL", 0)
    for error in results[1:]:
        assert isinstance(error, MissingKeyError)
        assert isinstance(error, KeyError)
        assert error.key == "ZZZZ"
        assert "'ZZZZ'" in str(error)
    assert results[1] is not results[2]  # a fresh error for each caller
    assert batcher.stats.missing_keys == 1


async def test_a_key_answered_with_an_exception_raises_it_in_its_callers_only() -> None:
    vendor = Vendor(bad=frozenset({"XXXX"}))
    batcher = Batcher(vendor.answer_async, window=0)
    results = await load_all(batcher, ["XXXX", "AAPL", "XXXX"])
    assert results[1] == ("AAPL", 0)
    assert isinstance(results[0], LookupError)
    assert results[2] is results[0]
    assert batcher.stats.key_errors == 1


async def test_a_failing_batch_fails_its_callers_and_no_others() -> None:
    vendor = Vendor(failing=lambda index, keys: index == 0)
    batcher = Batcher(vendor.answer_async, max_size=2, window=0)
    results = await load_all(batcher, list(range(4)))
    assert [type(r) for r in results[:2]] == [Down, Down]
    assert results[2:] == [(2, 1), (3, 1)]
    stats = batcher.stats
    assert (stats.batches, stats.failed_batches) == (2, 1)


async def test_each_caller_raises_the_batch_error_from_its_own_traceback() -> None:
    vendor = Vendor(failing=lambda index, keys: True)
    batcher = Batcher(vendor.answer_async, window=0)

    async def depth(key: int) -> int:
        try:
            await batcher.load_async(key)
        except Down as error:
            frames = traceback.extract_tb(error.__traceback__)
            assert frames[-1].name == "answer"  # the vendor's own frame is kept
            return len(frames)
        raise AssertionError("no error")

    depths = await asyncio.gather(*(depth(n) for n in range(5)))
    assert len(set(depths)) == 1  # no caller's traceback carries the others' frames


async def test_a_result_that_is_not_a_mapping_fails_the_batch() -> None:
    async def listing(keys: list[str]) -> Any:
        return [1.0 for _ in keys]

    batcher: Batcher[str, float] = Batcher(listing, window=0)
    with pytest.raises(TypeError, match="mapping of keys to values, got list"):
        await batcher.load_async("AAPL")
    assert batcher.stats.failed_batches == 1


async def test_a_mapping_that_fails_to_read_fails_the_batch() -> None:
    class Broken(Mapping[str, float]):
        def __getitem__(self, key: str) -> float:
            raise RuntimeError("unreadable")

        def __iter__(self) -> Any:
            return iter(())

        def __len__(self) -> int:
            return 0

    batcher = Batcher(lambda keys: Broken(), window=0)
    with pytest.raises(RuntimeError, match="unreadable"):
        await batcher.load_async("AAPL")


async def test_an_unhashable_key_is_a_type_error() -> None:
    batcher = Batcher(Vendor().answer, window=0)
    with pytest.raises(TypeError, match="key must be hashable, got list"):
        batcher.load(["AAPL"])
    with pytest.raises(TypeError, match="key must be hashable, got list"):
        await batcher.load_async(["AAPL"])
    assert batcher.stats.keys_requested == 0


async def test_stats_count_batches_keys_and_in_flight() -> None:
    seen: list[int] = []

    async def fetch(keys: list[int]) -> dict[int, int]:
        seen.append(batcher.stats.in_flight)
        return {key: key for key in keys}

    batcher = Batcher(fetch, max_size=3, window=0)
    await asyncio.gather(*(batcher.load_async(n) for n in [1, 2, 3, 4, 4]))
    assert seen == [2, 2]  # both windows were closed before either batch call ran
    assert batcher.stats == BatcherStats(
        keys_requested=5,
        duplicates=1,
        batches=2,
        keys_fetched=4,
        largest_batch=3,
    )


# -- 200 concurrent tasks with errors ------------------------------------------------------


def windows_of(keys: list[Any], max_size: int) -> list[list[Any]]:
    """The batches calls made in this order form when none ends by time: the specification."""
    batches: list[list[Any]] = [[]]
    for key in keys:
        if key in batches[-1]:
            continue
        batches[-1].append(key)
        if len(batches[-1]) == max_size:
            batches.append([])
    return [batch for batch in batches if batch]


def check_own_answers(
    keys: list[Any], results: list[Any], vendor: Vendor, batcher: Batcher[Any, Any]
) -> None:
    """Every caller got exactly its own key's answer from a batch that held its key."""
    failed = set()
    for index, batch in enumerate(vendor.calls):
        assert len(batch) == len(set(batch)) <= batcher.max_size
        if vendor.failing(index, batch):
            failed.add(index)
    for key, result in zip(keys, results, strict=True):
        if isinstance(result, tuple):
            assert result[0] == key
            assert key in vendor.calls[result[1]]
            assert result[1] not in failed
        elif isinstance(result, Down):
            (index,) = result.args
            assert index in failed
            assert key in vendor.calls[index]
        elif isinstance(result, MissingKeyError):
            assert result.key == key
            assert key in vendor.missing
        else:
            assert isinstance(result, LookupError)
            assert key in vendor.bad
            assert str(key) in str(result)
    stats = batcher.stats
    assert stats.keys_requested == len(keys)
    assert stats.batches == len(vendor.calls)
    assert stats.keys_fetched == sum(map(len, vendor.calls)) == len(keys) - stats.duplicates
    assert stats.failed_batches == len(failed)
    assert stats.in_flight == 0


async def test_200_concurrent_tasks_each_get_their_own_result_or_error(
    clock: ManualClock,
) -> None:
    keys = [f"S{n * 3 // 4:03d}" for n in range(190)]  # duplicates within a window
    keys += keys[:10]  # and keys fetched in an earlier window
    vendor = Vendor(
        failing=lambda index, batch: index % 3 == 1,
        missing=frozenset({"S007", "S042", "S101"}),
        bad=frozenset({"S013", "S149"}),
    )
    batcher = Batcher(vendor.answer_async, max_size=16, window=WINDOW, clock=clock)
    tasks = spawn(*(batcher.load_async(key) for key in keys))
    await until(lambda: batcher.stats.keys_requested == 200)
    clock.advance(WINDOW)  # the last, partly filled window
    results = await asyncio.gather(*tasks, return_exceptions=True)
    check_own_answers(keys, results, vendor, batcher)
    assert vendor.calls == windows_of(keys, 16)
    assert batcher.stats.duplicates > 40
    outcomes = {type(result) for result in results}
    assert outcomes == {tuple, Down, MissingKeyError, LookupError}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    keys=st.lists(st.integers(0, 60), min_size=1, max_size=200),
    max_size=st.integers(1, 40),
    failing=st.frozensets(st.integers(0, 30)),
    missing=st.frozensets(st.integers(0, 60)),
    bad=st.frozensets(st.integers(0, 60)),
)
def test_every_task_gets_its_own_answer_for_any_keys_and_failures(
    keys: list[int],
    max_size: int,
    failing: frozenset[int],
    missing: frozenset[int],
    bad: frozenset[int],
) -> None:
    vendor = Vendor(failing=lambda index, batch: index in failing, missing=missing, bad=bad)
    batcher = Batcher(vendor.answer_async, max_size=max_size, window=0)

    results = asyncio.run(load_all(batcher, keys))
    check_own_answers(keys, results, vendor, batcher)
    assert vendor.calls == windows_of(keys, max_size)


# -- cancellation (asyncio) ------------------------------------------------------------------


async def test_a_cancelled_caller_does_not_cancel_the_batch_for_the_others(
    clock: ManualClock,
) -> None:
    vendor = Vendor()
    batcher = Batcher(vendor.answer_async, window=WINDOW, clock=clock)
    opener, follower, other = spawn(*(batcher.load_async(key) for key in "abc"))
    await until(lambda: batcher.stats.keys_requested == 3)
    opener.cancel()  # the task that opened the window
    follower.cancel()
    await asyncio.sleep(0)
    clock.advance(WINDOW)
    assert await other == ("c", 0)
    assert vendor.calls == [["a", "b", "c"]]
    assert opener.cancelled()
    assert follower.cancelled()


async def test_a_cancelled_caller_waiting_on_a_running_batch_leaves_it_running() -> None:
    release = asyncio.Event()

    async def slow(keys: list[str]) -> dict[str, str]:
        await release.wait()
        return {key: key.upper() for key in keys}

    batcher = Batcher(slow, window=0)
    leaving, staying = spawn(batcher.load_async("a"), batcher.load_async("b"))
    await until(lambda: batcher.stats.in_flight == 1)
    leaving.cancel()
    await asyncio.sleep(0)
    release.set()
    assert await staying == "B"
    assert leaving.cancelled()


@pytest.mark.parametrize("kind", ["async def", "sync"])
async def test_a_batch_call_raising_cancelled_error_itself_fails_its_batch(kind: str) -> None:
    calls: list[list[str]] = []

    def fetch(keys: list[str]) -> dict[str, str]:
        calls.append(keys)
        if len(calls) == 1:
            raise asyncio.CancelledError  # e.g. an inner request cancelled under it
        return {key: key.upper() for key in keys}

    async def fetch_async(keys: list[str]) -> dict[str, str]:
        await asyncio.sleep(0)
        return fetch(keys)

    batcher = Batcher(fetch_async if kind == "async def" else fetch, window=0)
    loads = [batcher.load_async("a"), batcher.load_async("b")]
    outcomes = await asyncio.gather(*loads, return_exceptions=True)
    # Not taken for the batch task's own cancellation: no caller tries again.
    assert [type(outcome) for outcome in outcomes] == [asyncio.CancelledError] * 2
    assert calls == [["a", "b"]]
    stats = batcher.stats
    assert (stats.failed_batches, stats.abandoned, stats.batches, stats.in_flight) == (1, 0, 1, 0)
    assert await batcher.load_async("c") == "C"  # the next batch is made as usual


async def test_a_cancelled_batch_call_sends_its_callers_to_another_batch() -> None:
    calls: list[list[str]] = []
    entered = asyncio.Event()

    async def fetch(keys: list[str]) -> dict[str, str]:
        calls.append(keys)
        if len(calls) == 1:
            entered.set()
            await asyncio.Event().wait()  # until its task is cancelled
        return {key: key.upper() for key in keys}

    batcher = Batcher(fetch, window=0)
    loads = asyncio.gather(batcher.load_async("a"), batcher.load_async("b"))
    await entered.wait()
    for task in list(batcher._tasks):  # the loop closing, say, cancels the batch's task
        task.cancel()
    assert await loads == ["A", "B"]
    assert calls == [["a", "b"], ["a", "b"]]
    stats = batcher.stats
    assert (stats.abandoned, stats.failed_batches, stats.batches, stats.in_flight) == (1, 0, 2, 0)


def test_an_event_loop_closing_with_a_window_open_leaves_nothing_waiting() -> None:
    clock = ManualClock()
    batcher = Batcher(Vendor().answer_async, window=WINDOW, clock=clock)

    async def main() -> None:
        spawn(batcher.load_async("a"))
        await until(lambda: clock.sleepers == 1)
        # main returns: asyncio.run cancels the caller and the window's timer

    asyncio.run(main())
    assert clock.sleepers == 0
    assert (batcher.stats.abandoned, batcher.stats.batches) == (1, 0)


async def test_load_refuses_a_coroutine_batch_function() -> None:
    batcher = Batcher(Vendor().answer_async)
    with pytest.raises(TypeError, match="load_async"):
        batcher.load("AAPL")


def test_load_fails_a_batch_whose_plain_function_returns_an_awaitable() -> None:
    vendor = Vendor()
    batcher = Batcher(lambda keys: vendor.answer_async(keys), window=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TypeError, match="returned an awaitable"):
            batcher.load("AAPL")
        gc.collect()  # the coroutine was closed: no "never awaited" warning
    assert vendor.calls == []


# -- the sync face: threads ----------------------------------------------------------------


class Caller(threading.Thread):
    """A thread that loads one key and keeps what it got (value or exception)."""

    def __init__(self, batcher: Batcher[Any, Any], key: Any) -> None:
        super().__init__(daemon=True)
        self.batcher = batcher
        self.key = key
        self.result: Any = None

    def run(self) -> None:
        try:
            self.result = self.batcher.load(self.key)
        except BaseException as exc:
            self.result = exc


def start(batcher: Batcher[Any, Any], keys: list[Any]) -> list[Caller]:
    callers = [Caller(batcher, key) for key in keys]
    for caller in callers:
        caller.start()
    return callers


def close_windows_until_answered(clock: ManualClock, callers: list[Caller]) -> None:
    """Close each window the callers open until every one has its answer.

    Threads sent to a new batch may meet in one window or, one woken later than
    the other, open one each: how many is up to the scheduler, not the Batcher.
    """

    def answered() -> bool:
        if clock.sleepers:
            clock.advance(WINDOW)
        return not any(caller.is_alive() for caller in callers)

    wait_until(answered)


def finish(callers: list[Caller]) -> list[Any]:
    for caller in callers:
        caller.join(5)
        assert not caller.is_alive()
    return [caller.result for caller in callers]


def test_threads_within_the_window_become_one_call_after_the_window(
    clock: ManualClock,
) -> None:
    vendor = Vendor()
    batcher = Batcher(vendor.answer, window=WINDOW, clock=clock)
    opener = start(batcher, ["AAPL"])
    wait_until(lambda: clock.sleepers == 1)  # the opener sleeps out the window
    callers = opener + start(batcher, ["MSFT", "AAPL", "NVDA"])
    wait_until(lambda: batcher.stats.keys_requested == 4)
    assert vendor.calls == []
    clock.advance(WINDOW)
    assert finish(callers) == [("AAPL", 0), ("MSFT", 0), ("AAPL", 0), ("NVDA", 0)]
    assert vendor.calls == [["AAPL", "MSFT", "NVDA"]]


def test_the_thread_that_fills_a_window_fetches_it_at_once(clock: ManualClock) -> None:
    vendor = Vendor()
    batcher = Batcher(vendor.answer, max_size=3, window=WINDOW, clock=clock)
    (opener,) = start(batcher, ["a"])
    wait_until(lambda: clock.sleepers == 1)
    others = start(batcher, ["b", "c"])
    assert finish(others) == [("b", 0), ("c", 0)]  # no clock advance
    assert opener.is_alive()  # the opener gets its value when its sleep ends
    clock.advance(WINDOW)
    assert finish([opener]) == [("a", 0)]
    assert vendor.calls == [["a", "b", "c"]]


def test_window_zero_threads_fetch_at_once() -> None:
    vendor = Vendor()
    batcher = Batcher(vendor.answer, window=0)
    assert [batcher.load("a"), batcher.load("b")] == [("a", 0), ("b", 1)]


def test_threads_each_get_their_own_result_or_error(clock: ManualClock) -> None:
    keys = [n % 30 for n in range(40)]
    vendor = Vendor(
        failing=lambda index, batch: index == 1,
        missing=frozenset({3, 17}),
        bad=frozenset({5}),
    )
    batcher = Batcher(vendor.answer, max_size=8, window=WINDOW, clock=clock)
    callers = start(batcher, keys)
    wait_until(lambda: batcher.stats.keys_requested == 40)

    def done() -> bool:
        return not any(caller.is_alive() for caller in callers)

    while not done():
        wait_until(lambda: clock.sleepers > 0 or done())
        clock.advance(WINDOW)  # every opener asleep ends its window
    check_own_answers(keys, finish(callers), vendor, batcher)


class InterruptingClock(ManualClock):
    """A ManualClock whose first sleep raises `Interrupt` once ``go`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.go = threading.Event()
        self.interrupted = False

    def sleep(self, seconds: float) -> None:
        if not self.interrupted:
            self.interrupted = True
            self.go.wait(5)
            raise Interrupt
        super().sleep(seconds)


def test_an_interrupted_opener_sends_the_other_threads_to_another_batch() -> None:
    clock = InterruptingClock()
    vendor = Vendor()
    batcher = Batcher(vendor.answer, window=WINDOW, clock=clock)
    (opener,) = start(batcher, ["a"])
    wait_until(lambda: batcher.stats.keys_requested == 1)
    others = start(batcher, ["b", "a"])
    wait_until(lambda: batcher.stats.keys_requested == 3)
    clock.go.set()
    assert isinstance(finish([opener])[0], Interrupt)
    wait_until(lambda: clock.sleepers == 1)  # one of the others opened a new window
    close_windows_until_answered(clock, others)
    assert sorted(key for key, _ in finish(others)) == ["a", "b"]
    assert sorted(key for call in vendor.calls for key in call) == ["a", "b"]
    stats = batcher.stats
    assert (stats.abandoned, stats.keys_requested) == (1, 3)
    assert stats.batches == len(vendor.calls)


def window_of_three_threads(
    fetch: Callable[[list[str]], dict[str, str]], clock: ManualClock
) -> tuple[Batcher[str, str], Caller, list[Caller]]:
    """Threads asking for "a" (the opener), then "b" and "c", in one window that has ended."""
    batcher = Batcher(fetch, window=WINDOW, clock=clock)
    (opener,) = start(batcher, ["a"])
    wait_until(lambda: clock.sleepers == 1)
    others = start(batcher, ["b", "c"])
    wait_until(lambda: batcher.stats.keys_requested == 3)
    clock.advance(WINDOW)
    return batcher, opener, others


def test_a_batch_call_interrupted_sends_the_other_threads_to_another_batch(
    clock: ManualClock,
) -> None:
    calls: list[list[str]] = []

    def fetch(keys: list[str]) -> dict[str, str]:
        calls.append(keys)
        if len(calls) == 1:
            raise Interrupt
        return {key: key.upper() for key in keys}

    batcher, opener, others = window_of_three_threads(fetch, clock)
    assert isinstance(finish([opener])[0], Interrupt)
    wait_until(lambda: clock.sleepers == 1)
    close_windows_until_answered(clock, others)
    assert finish(others) == ["B", "C"]
    assert calls[0] == ["a", "b", "c"]
    # The other threads meet in one new batch, or (one woken later) in two.
    assert sorted(key for call in calls[1:] for key in call) == ["b", "c"]
    assert batcher.stats.abandoned == 1
    assert batcher.stats.in_flight == 0


def test_a_batch_call_raising_cancelled_error_fails_the_threads_batch(
    clock: ManualClock,
) -> None:
    calls: list[list[str]] = []

    def fetch(keys: list[str]) -> dict[str, str]:
        calls.append(keys)
        raise asyncio.CancelledError  # no task of a thread is cancelled: its own error

    batcher, opener, others = window_of_three_threads(fetch, clock)
    outcomes = finish([opener, *others])
    assert [type(outcome) for outcome in outcomes] == [asyncio.CancelledError] * 3
    assert calls == [["a", "b", "c"]]
    assert (batcher.stats.failed_batches, batcher.stats.abandoned) == (1, 0)


def test_threads_and_tasks_batch_separately(clock: ManualClock) -> None:
    vendor = Vendor()
    batcher = Batcher(vendor.answer, window=WINDOW, clock=clock)
    (thread,) = start(batcher, ["t"])
    wait_until(lambda: clock.sleepers == 1)

    async def main() -> Any:
        task = asyncio.ensure_future(batcher.load_async("a"))
        await until(lambda: clock.sleepers == 2)
        clock.advance(WINDOW)
        return await task

    assert asyncio.run(main()) in {("a", 0), ("a", 1)}
    assert finish([thread])[0] in {("t", 0), ("t", 1)}
    assert sorted(vendor.calls) == [["a"], ["t"]]
