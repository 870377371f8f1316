"""tenacity's test suite, ported onto the ``retry=`` layer of `resilient` through a thin adapter.

Each test states one behaviour that tenacity's tests check (jd/tenacity,
tests/test_tenacity.py, tests/test_asyncio.py, tests/test_after.py), in our API;
the comment above it names the tenacity test. tenacity mostly calls a strategy
on a hand-made ``RetryCallState``; here every strategy runs for real inside a
decorated function, and what it decided is read from *when* each attempt was
made on a `ManualClock` (sleeps advance virtual time at once).

The adapter: `Vendor` is tenacity's ``NoIOErrorAfterCount`` family (a scripted
source: errors in turn, then an answer, each attempt's time recorded), `Face`
decorates it as a sync or an ``async def`` function and calls it, `gaps` turns
attempt times into the waits between them.

Where docs/resilient.md says our behaviour differs on purpose, the test asserts
ours and says so: the call ends with the last attempt's own error (never
``RetryError``, whatever ``reraise`` and ``retry_error_cls``); ``before``,
``retry_error_callback``, strategies retrying on results, coroutine strategies
and ``AsyncRetrying`` are refused with `ConfigError`; the strategies are
consulted only after a failure; ``Retrying.sleep`` is not used.

Not ported, having no meaning here:
- repr/str/name of ``Retrying`` and ``RetryCallState`` (tenacity's own objects);
- ``statistics`` (not documented by ``resilient``; it keeps its retry state per call);
- ``retry_with`` and the ``.retry`` attribute (we have no such attributes: decorate again);
- the iterator/context-manager forms (``for attempt in Retrying()``) and calling a
  ``Retrying`` directly (``resilient`` only decorates);
- pickling, typing (typeguard) checks, tornado and trio;
- legacy string strategies (``stop="stop_after_attempt"``), ``wait_exponential_jitter``'s
  deprecated ``initial``, and the argument checks of tenacity's own constructors;
- the statistical test of ``wait_random_exponential`` (tenacity's arithmetic, not ours);
- strategies called with a returned value (``Future.construct(..., False)``): ours are
  consulted only after a failure, and those retrying on results are refused (tested below).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import logging
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    Retrying,
    TryAgain,
    after_log,
    before_sleep_log,
    retry_all,
    retry_always,
    retry_any,
    retry_if_exception,
    retry_if_exception_cause_type,
    retry_if_exception_message,
    retry_if_exception_type,
    retry_if_not_exception_message,
    retry_if_not_exception_type,
    retry_if_not_result,
    retry_if_result,
    retry_never,
    retry_unless_exception_type,
    stop_after_attempt,
    stop_after_delay,
    stop_all,
    stop_any,
    stop_before_delay,
    wait_chain,
    wait_combine,
    wait_exception,
    wait_exponential,
    wait_exponential_jitter,
    wait_fixed,
    wait_incrementing,
    wait_none,
    wait_random,
    wait_random_exponential,
)
from tenacity import asyncio as tasyncio

from argo_perf import ConfigError, ManualClock, resilient
from argo_perf.resilience import Resilience

IO_MESSAGE = "Hi there, I'm an IOError"
NAME_MESSAGE = "Hi there, I'm a NameError"
CUSTOM_MESSAGE = "This is a Custom exception class"


class CustomError(Exception):
    """tenacity's CustomError: an exception whose str is its value."""


# -- the adapter ----------------------------------------------------------------------


class Vendor:
    """A scripted source: raises ``errors`` in turn, then returns ``answer``.

    tenacity's ``NoIOErrorAfterCount(n)`` is ``Vendor(clock, io_errors(n))``.
    Each attempt's start is recorded on the clock in `at`; ``takes`` seconds of
    virtual time pass during each attempt (a slow vendor).
    """

    def __init__(
        self,
        clock: ManualClock,
        errors: list[Exception],
        answer: Any = True,
        takes: float = 0.0,
    ) -> None:
        self.clock = clock
        self.errors = list(errors)
        self.answer = answer
        self.takes = takes
        self.at: list[float] = []

    @property
    def attempts(self) -> int:
        return len(self.at)

    def go(self) -> Any:
        self.at.append(self.clock.monotonic())
        if self.takes:
            self.clock.advance(self.takes)
        if self.errors:
            raise self.errors.pop(0)
        return self.answer


def io_errors(count: int) -> list[Exception]:
    return [OSError(IO_MESSAGE) for _ in range(count)]


def name_errors(count: int) -> list[Exception]:
    return [NameError(NAME_MESSAGE) for _ in range(count)]


def custom_errors(count: int) -> list[Exception]:
    return [CustomError(CUSTOM_MESSAGE) for _ in range(count)]


def caused(error: Exception, cause: Exception) -> Exception:
    """``error`` raised ``from cause`` (tenacity's NoNameErrorCauseAfterCount)."""
    error.__cause__ = cause
    return error


def gaps(times: list[float]) -> list[float]:
    """The waits between consecutive attempts."""
    return [later - earlier for earlier, later in itertools.pairwise(times)]


class Fetch:
    """A `Vendor` call decorated by a `Resilience`, as a sync or an ``async def`` function."""

    def __init__(self, face: str, decorator: Resilience) -> None:
        self.face = face
        if face == "sync":

            def fetch(vendor: Vendor) -> Any:
                return vendor.go()

            self.original: Callable[..., Any] = fetch
            self._sync = decorator(fetch)
        else:

            async def fetch_async(vendor: Vendor) -> Any:
                await asyncio.sleep(0)
                return vendor.go()

            self.original = fetch_async
            self._async = decorator(fetch_async)

    def __call__(self, vendor: Vendor) -> Any:
        if self.face == "sync":
            return self._sync(vendor)
        return asyncio.run(self._async(vendor))


class Face:
    """How a test calls: ``face.retrying(clock, **tenacity_kwargs)(vendor)``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def decorate(self, decorator: Resilience) -> Fetch:
        return Fetch(self.name, decorator)

    def retrying(self, clock: ManualClock, **kwargs: Any) -> Fetch:
        """A function decorated with ``retry=Retrying(**kwargs)`` on ``clock``."""
        return self.decorate(resilient("tenacity", retry=Retrying(**kwargs), clock=clock))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(autoadvance=True)


@pytest.fixture(params=["sync", "async"])
def face(request: pytest.FixtureRequest) -> Face:
    return Face(request.param)


def refused(retrying: object) -> ConfigError:
    """The `ConfigError` raised when decorating with ``retry=retrying``."""
    with pytest.raises(ConfigError) as caught:
        resilient("tenacity", retry=retrying)  # type: ignore[arg-type]
    return caught.value


# -- stop strategies --------------------------------------------------------------------


# tenacity: TestStopConditions.test_stop_after_attempt; test_asyncio.py test_stop_after_attempt
def test_stop_after_attempt_makes_that_many_attempts(face: Face, clock: ManualClock) -> None:
    vendor = Vendor(clock, io_errors(5))
    fetch = face.retrying(clock, stop=stop_after_attempt(3))

    with pytest.raises(OSError, match=IO_MESSAGE):  # ours: the last error, not RetryError
        fetch(vendor)
    assert vendor.attempts == 3


# tenacity: TestStopConditions.test_stop_after_delay (a number and a timedelta)
@pytest.mark.parametrize("delay", [9, timedelta(seconds=9)])
def test_stop_after_delay_stops_once_that_much_clock_time_has_passed(
    face: Face, clock: ManualClock, delay: float | timedelta
) -> None:
    vendor = Vendor(clock, io_errors(10))
    fetch = face.retrying(clock, stop=stop_after_delay(delay), wait=wait_fixed(3))

    with pytest.raises(OSError, match=IO_MESSAGE):
        fetch(vendor)
    assert vendor.at == [0.0, 3.0, 6.0, 9.0]  # 9 s since the start: stop, at the boundary


# tenacity: TestStopConditions.test_stop_after_delay (seconds_since_start ends with the outcome)
def test_stop_after_delay_counts_the_attempts_own_time(face: Face, clock: ManualClock) -> None:
    vendor = Vendor(clock, io_errors(10), takes=5.0)
    fetch = face.retrying(clock, stop=stop_after_delay(8))

    with pytest.raises(OSError, match=IO_MESSAGE):
        fetch(vendor)
    assert vendor.at == [0.0, 5.0]  # the second failure ends 10 s after the start


# tenacity: TestStopConditions.test_stop_before_delay
def test_stop_before_delay_stops_when_the_next_sleep_would_cross_it(
    face: Face, clock: ManualClock
) -> None:
    before = Vendor(clock, io_errors(10))
    with pytest.raises(OSError, match=IO_MESSAGE):
        face.retrying(clock, stop=stop_before_delay(10), wait=wait_fixed(4))(before)
    assert before.at == [0.0, 4.0, 8.0]  # 8 + 4 would reach 10: no fourth attempt

    after = Vendor(clock, io_errors(10))
    start = clock.monotonic()
    with pytest.raises(OSError, match=IO_MESSAGE):
        face.retrying(clock, stop=stop_after_delay(10), wait=wait_fixed(4))(after)
    assert [t - start for t in after.at] == [0.0, 4.0, 8.0, 12.0]


# tenacity: TestStopConditions.test_never_stop; TestDecoratorWrapper.test_defaults
def test_a_default_retrying_retries_any_exception_until_success_without_waiting(
    face: Face, clock: ManualClock
) -> None:
    io = Vendor(clock, io_errors(5))
    named = Vendor(clock, name_errors(5))
    custom = Vendor(clock, custom_errors(5))
    fetch = face.retrying(clock)

    assert fetch(io) is True
    assert fetch(named) is True
    assert fetch(custom) is True
    assert io.at == [0.0] * 6
    assert named.attempts == custom.attempts == 6


# tenacity: TestStopConditions.test_stop_or, test_stop_any
@pytest.mark.parametrize("combine", ["|", "stop_any"])
@pytest.mark.parametrize(("wait", "attempts"), [(6.0, 3), (1.0, 4)])
def test_stops_combined_with_or_stop_at_the_first_to_fire(
    face: Face, clock: ManualClock, combine: str, wait: float, attempts: int
) -> None:
    by_delay, by_attempts = stop_after_delay(10), stop_after_attempt(4)
    stop = by_delay | by_attempts if combine == "|" else stop_any(by_delay, by_attempts)
    vendor = Vendor(clock, io_errors(20))

    with pytest.raises(OSError, match=IO_MESSAGE):
        face.retrying(clock, stop=stop, wait=wait_fixed(wait))(vendor)
    assert vendor.attempts == attempts  # 6 s apart: 12 s passed at the third; 1 s: 4 attempts


# tenacity: TestStopConditions.test_stop_and, test_stop_all
@pytest.mark.parametrize("combine", ["&", "stop_all"])
@pytest.mark.parametrize(("wait", "attempts"), [(6.0, 4), (1.0, 11)])
def test_stops_combined_with_and_stop_when_all_have_fired(
    face: Face, clock: ManualClock, combine: str, wait: float, attempts: int
) -> None:
    by_delay, by_attempts = stop_after_delay(10), stop_after_attempt(4)
    stop = by_delay & by_attempts if combine == "&" else stop_all(by_delay, by_attempts)
    vendor = Vendor(clock, io_errors(20))

    with pytest.raises(OSError, match=IO_MESSAGE):
        face.retrying(clock, stop=stop, wait=wait_fixed(wait))(vendor)
    assert vendor.attempts == attempts  # 6 s apart: the 4th attempt; 1 s: 10 s at the 11th


# tenacity: TestStopConditions.test_stop_func_with_retry_state
def test_a_plain_stop_function_sees_attempt_number_and_clock_time(
    face: Face, clock: ManualClock
) -> None:
    def stop(state: RetryCallState) -> bool:
        return state.attempt_number == state.seconds_since_start

    vendor = Vendor(clock, io_errors(10))
    with pytest.raises(OSError, match=IO_MESSAGE):
        face.retrying(clock, stop=stop, wait=wait_fixed(2))(vendor)
    assert vendor.at == [0.0, 2.0]  # the 2nd attempt fails 2 s after the start


# -- wait strategies ----------------------------------------------------------------------


# tenacity: TestWaitConditions.test_no_sleep
def test_no_wait_by_default(face: Face, clock: ManualClock) -> None:
    vendor = Vendor(clock, io_errors(3))

    assert face.retrying(clock, stop=stop_after_attempt(5))(vendor) is True
    assert vendor.at == [0.0, 0.0, 0.0, 0.0]


# tenacity: TestWaitConditions.test_fixed_sleep; TestDecoratorWrapper.test_with_wait
@pytest.mark.parametrize("seconds", [1, timedelta(seconds=1)])
def test_wait_fixed_waits_that_long_on_the_clock(
    face: Face, clock: ManualClock, seconds: float | timedelta
) -> None:
    vendor = Vendor(clock, io_errors(5))

    assert face.retrying(clock, wait=wait_fixed(seconds))(vendor) is True
    assert gaps(vendor.at) == [1.0] * 5


# tenacity: TestWaitConditions.test_incrementing_sleep
@pytest.mark.parametrize(
    ("start", "increment"),
    [(500, 100), (timedelta(seconds=500), timedelta(seconds=100))],
)
def test_wait_incrementing_adds_its_increment_each_attempt(
    face: Face, clock: ManualClock, start: float | timedelta, increment: float | timedelta
) -> None:
    vendor = Vendor(clock, io_errors(3))
    fetch = face.retrying(clock, wait=wait_incrementing(start=start, increment=increment))

    assert fetch(vendor) is True
    assert gaps(vendor.at) == [500.0, 600.0, 700.0]


# tenacity: TestWaitConditions.test_random_sleep, test_random_sleep_withoutmin_
@pytest.mark.parametrize(
    ("wait", "low", "high"),
    [
        (wait_random(min=1, max=20), 1.0, 20.0),
        (wait_random(min=timedelta(seconds=1), max=timedelta(seconds=20)), 1.0, 20.0),
        (wait_random(max=2), 0.0, 2.0),
    ],
)
def test_wait_random_waits_a_random_time_within_its_bounds(
    face: Face, clock: ManualClock, wait: wait_random, low: float, high: float
) -> None:
    vendor = Vendor(clock, io_errors(40))

    assert face.retrying(clock, wait=wait)(vendor) is True
    waits = gaps(vendor.at)
    assert len(set(waits)) > 1
    assert all(low - 1e-9 <= w <= high + 1e-9 for w in waits)


# tenacity: TestWaitConditions.test_exponential, test_exponential_with_max_wait,
# test_exponential_with_min_wait, test_exponential_with_max_wait_and_multiplier,
# test_exponential_with_min_wait_and_multiplier, test_exponential_with_min_wait_andmax__wait
@pytest.mark.parametrize(
    ("wait", "expected"),
    [
        (wait_exponential(), [1, 2, 4, 8, 16, 32, 64, 128]),
        (wait_exponential(max=40), [1, 2, 4, 8, 16, 32, 40, 40]),
        (wait_exponential(min=20), [20, 20, 20, 20, 20, 32, 64, 128]),
        (wait_exponential(max=50, multiplier=1), [1, 2, 4, 8, 16, 32, 50, 50]),
        (wait_exponential(min=20, multiplier=2), [20, 20, 20, 20, 32, 64, 128, 256]),
        (wait_exponential(min=10, max=100), [10, 10, 10, 10, 16, 32, 64, 100]),
        (
            wait_exponential(min=timedelta(seconds=10), max=timedelta(seconds=100)),
            [10, 10, 10, 10, 16, 32, 64, 100],
        ),
    ],
)
def test_wait_exponential_doubles_within_its_bounds(
    face: Face, clock: ManualClock, wait: wait_exponential, expected: list[float]
) -> None:
    vendor = Vendor(clock, io_errors(8))

    assert face.retrying(clock, wait=wait)(vendor) is True
    assert gaps(vendor.at) == pytest.approx(expected)


# tenacity: TestWaitConditions.test_wait_func
def test_a_plain_wait_function_sees_attempt_number_and_clock_time(
    face: Face, clock: ManualClock
) -> None:
    def wait(state: RetryCallState) -> float:
        seconds = state.seconds_since_start
        assert seconds is not None
        return state.attempt_number * seconds

    vendor = Vendor(clock, io_errors(3), takes=1.0)

    assert face.retrying(clock, wait=wait)(vendor) is True
    # 1st fails at 1 s: waits 1*1; 2nd fails at 3 s: 2*3; 3rd fails at 10 s: 3*10
    assert vendor.at == [0.0, 2.0, 9.0, 40.0]


# tenacity: TestWaitConditions.test_wait_combine, test_wait_double_sum,
# test_wait_triple_sum, test_wait_arbitrary_sum
@pytest.mark.parametrize(
    ("wait", "low", "high"),
    [
        (wait_combine(wait_random(0, 3), wait_fixed(5)), 5.0, 8.0),
        (wait_random(0, 3) + wait_fixed(5), 5.0, 8.0),
        (wait_fixed(1) + wait_random(0, 3) + wait_fixed(5), 6.0, 9.0),
        (sum([wait_fixed(1), wait_random(0, 3), wait_fixed(5), wait_none()]), 6.0, 9.0),
    ],
    ids=["wait_combine", "double_sum", "triple_sum", "arbitrary_sum"],
)
def test_combined_waits_add_up(
    face: Face, clock: ManualClock, wait: Any, low: float, high: float
) -> None:
    vendor = Vendor(clock, io_errors(20))

    assert face.retrying(clock, wait=wait)(vendor) is True
    assert all(low - 1e-9 <= w <= high + 1e-9 for w in gaps(vendor.at))


# tenacity: TestWaitConditions.test_wait_chain
def test_wait_chain_uses_one_strategy_per_attempt_then_the_last(
    face: Face, clock: ManualClock
) -> None:
    wait = wait_chain(*[wait_fixed(1)] * 2, *[wait_fixed(4)] * 2, wait_fixed(8))
    vendor = Vendor(clock, io_errors(9))

    assert face.retrying(clock, wait=wait)(vendor) is True
    assert gaps(vendor.at) == [1, 1, 4, 4, 8, 8, 8, 8, 8]


# tenacity: TestWaitConditions.test_wait_chain_multiple_invocations
def test_wait_chain_starts_over_on_every_call(face: Face, clock: ManualClock) -> None:
    fetch = face.retrying(
        clock,
        wait=wait_chain(*[wait_fixed(i + 1) for i in range(3)]),
        stop=stop_after_attempt(5),
    )
    for _ in range(2):
        vendor = Vendor(clock, io_errors(5))
        with pytest.raises(OSError, match=IO_MESSAGE):
            fetch(vendor)
        assert gaps(vendor.at) == [1, 2, 3, 3]


# tenacity: TestWaitConditions.test_wait_random_exponential
@pytest.mark.parametrize(
    ("wait", "bounds"),
    [
        (wait_random_exponential(0.5, 60.0), [0.5, 1, 2, 4, 8, 16, 32, 60, 60]),
        (wait_random_exponential(10, 5), [5] * 9),
    ],
)
def test_wait_random_exponential_stays_under_its_exponential_bound(
    face: Face, clock: ManualClock, wait: wait_random_exponential, bounds: list[float]
) -> None:
    vendor = Vendor(clock, io_errors(9))

    assert face.retrying(clock, wait=wait)(vendor) is True
    assert all(0 <= w <= bound + 1e-9 for w, bound in zip(gaps(vendor.at), bounds, strict=True))


# tenacity: TestWaitConditions.test_wait_random_exponential ("min wait")
def test_wait_random_exponential_respects_its_minimum(face: Face, clock: ManualClock) -> None:
    vendor = Vendor(clock, io_errors(1))

    assert face.retrying(clock, wait=wait_random_exponential(min=5))(vendor) is True
    assert gaps(vendor.at) == pytest.approx([5.0])  # min 5, first bound 1: 5


# tenacity: TestWaitConditions.test_wait_exponential_jitter, test_wait_exponential_jitter_min,
# test_wait_exponential_jitter_multiplier
@pytest.mark.parametrize(
    ("wait", "ranges"),
    [
        (
            wait_exponential_jitter(max=60),
            [(1, 2), (2, 3), (4, 5), (8, 9), (16, 17), (32, 33), (60, 60), (60, 60)],
        ),
        (wait_exponential_jitter(max=60, jitter=1, min=5), [(5, 5), (5, 5), (5, 5), (8, 9)]),
        (wait_exponential_jitter(multiplier=10, max=60, jitter=0), [(10, 10), (20, 20), (40, 40)]),
    ],
    ids=["max", "min", "multiplier"],
)
def test_wait_exponential_jitter_adds_at_most_its_jitter(
    face: Face, clock: ManualClock, wait: wait_exponential_jitter, ranges: list[tuple[int, int]]
) -> None:
    vendor = Vendor(clock, io_errors(len(ranges)))

    assert face.retrying(clock, wait=wait)(vendor) is True
    for w, (low, high) in zip(gaps(vendor.at), ranges, strict=True):
        assert low - 1e-9 <= w <= high + 1e-9


# tenacity: TestWaitConditions.test_wait_exception
def test_wait_exception_waits_what_the_error_asks(face: Face, clock: ManualClock) -> None:
    def seconds_for(error: BaseException) -> float:
        return 3.5 if isinstance(error, ValueError) else 10.0

    vendor = Vendor(clock, [ValueError(), KeyError("k")])

    assert face.retrying(clock, wait=wait_exception(seconds_for))(vendor) is True
    assert vendor.at == [0.0, 3.5, 13.5]


# tenacity: TestWaitConditions.test_wait_retry_state_attributes (the failing call; a
# returned value is never shown to the strategies here, see the tests on results below)
def test_the_wait_sees_the_call_and_its_error(face: Face, clock: ManualClock) -> None:
    seen: list[tuple[Any, ...]] = []

    def wait(state: RetryCallState) -> float:
        assert state.outcome is not None
        seen.append(
            (
                state.fn,
                state.args,
                state.kwargs,
                str(state.outcome.exception()),
                state.attempt_number,
                state.start_time,
                state.outcome_timestamp,
            )
        )
        return 0.0

    clock.advance(7.0)
    vendor = Vendor(clock, [Exception("Broken")])
    fetch = face.retrying(clock, wait=wait)

    assert fetch(vendor) is True
    assert seen == [(fetch.original, (vendor,), {}, "Broken", 1, 7.0, 7.0)]


# -- retry predicates ----------------------------------------------------------------------


# tenacity: TestDecoratorWrapper.test_retry_if_exception_of_type
@pytest.mark.parametrize(
    ("retried", "errors"),
    [(OSError, io_errors), (CustomError, custom_errors)],
)
def test_retry_if_exception_type_retries_that_type_only(
    face: Face,
    clock: ManualClock,
    retried: type[Exception],
    errors: Callable[[int], list[Exception]],
) -> None:
    fetch = face.retrying(clock, retry=retry_if_exception_type(retried))
    assert fetch(Vendor(clock, errors(5))) is True

    other = Vendor(clock, name_errors(5))
    with pytest.raises(NameError):
        fetch(other)
    assert other.attempts == 1


# tenacity: TestDecoratorWrapper.test_with_stop_on_exception (retry_if_exception_type
# with stop_after_attempt: the error itself once attempts run out)
def test_retry_if_exception_type_with_a_stop_ends_with_that_error(
    face: Face, clock: ManualClock
) -> None:
    vendor = Vendor(clock, io_errors(5))
    fetch = face.retrying(clock, retry=retry_if_exception_type(IOError), stop=stop_after_attempt(3))

    with pytest.raises(OSError, match=IO_MESSAGE):
        fetch(vendor)
    assert vendor.attempts == 3


# tenacity: TestDecoratorWrapper.test_retry_except_exception_of_type
def test_retry_if_not_exception_type_retries_every_other_type(
    face: Face, clock: ManualClock
) -> None:
    fetch = face.retrying(clock, retry=retry_if_not_exception_type(IOError))
    assert fetch(Vendor(clock, name_errors(5))) is True

    io = Vendor(clock, io_errors(5))
    with pytest.raises(OSError, match=IO_MESSAGE):
        fetch(io)
    assert io.attempts == 1


# tenacity: TestDecoratorWrapper.test_retry_if_exception_message (message and match),
# test_retry_if_exception_message_match
@pytest.mark.parametrize(
    "strategy",
    [
        retry_if_exception_message(message=CUSTOM_MESSAGE),
        retry_if_exception_message(match=CUSTOM_MESSAGE[:3] + ".*"),
    ],
    ids=["message", "match"],
)
def test_retry_if_exception_message_retries_errors_saying_that(
    face: Face, clock: ManualClock, strategy: retry_if_exception_message
) -> None:
    fetch = face.retrying(clock, retry=strategy, stop=stop_after_attempt(5))
    assert fetch(Vendor(clock, custom_errors(3))) is True

    other = Vendor(clock, io_errors(3))
    with pytest.raises(OSError, match=IO_MESSAGE):
        fetch(other)
    assert other.attempts == 1


# tenacity: TestRetryConditions.test_retry_if_exception_message_empty_message
def test_retry_if_exception_message_matches_an_empty_message(
    face: Face, clock: ManualClock
) -> None:
    fetch = face.retrying(clock, retry=retry_if_exception_message(message=""))
    assert fetch(Vendor(clock, [RuntimeError(), RuntimeError()])) is True

    boom = Vendor(clock, [RuntimeError("boom")])
    with pytest.raises(RuntimeError, match="boom"):
        fetch(boom)
    assert boom.attempts == 1


# tenacity: TestDecoratorWrapper.test_retry_if_exception_cause_type
def test_retry_if_exception_cause_type_retries_errors_caused_by_that_type(
    face: Face, clock: ManualClock
) -> None:
    fetch = face.retrying(clock, retry=retry_if_exception_cause_type(NameError))
    io_from_name = [caused(OSError(), NameError(NAME_MESSAGE)) for _ in range(5)]
    assert fetch(Vendor(clock, io_from_name)) is True

    name_from_io = Vendor(clock, [caused(NameError(), OSError(IO_MESSAGE)) for _ in range(5)])
    with pytest.raises(NameError):
        fetch(name_from_io)
    assert name_from_io.attempts == 1


# tenacity: test_asyncio.py test_retry_with_async_exc (with a sync predicate: ours)
def test_retry_if_exception_retries_what_its_predicate_accepts(
    face: Face, clock: ManualClock
) -> None:
    fetch = face.retrying(clock, retry=retry_if_exception(lambda e: isinstance(e, CustomError)))
    vendor = Vendor(clock, custom_errors(2))

    assert fetch(vendor) is True
    assert vendor.attempts == 3


# tenacity: TestRetryConditions.test_retry_any, test_retry_or, test_retry_or_coalesces
@pytest.mark.parametrize("combine", ["|", "retry_any"])
def test_retry_predicates_combined_with_or_retry_when_any_accepts(
    face: Face, clock: ManualClock, combine: str
) -> None:
    io, custom = retry_if_exception_type(OSError), retry_if_exception_message(match="This is")
    strategy = io | custom if combine == "|" else retry_any(io, custom)
    fetch = face.retrying(clock, retry=strategy)

    assert fetch(Vendor(clock, [*io_errors(2), *custom_errors(2)])) is True
    named = Vendor(clock, name_errors(2))
    with pytest.raises(NameError):
        fetch(named)
    assert named.attempts == 1


# tenacity: TestRetryConditions.test_retry_all, test_retry_and, test_retry_and_coalesces
@pytest.mark.parametrize("combine", ["&", "retry_all"])
def test_retry_predicates_combined_with_and_retry_when_all_accept(
    face: Face, clock: ManualClock, combine: str
) -> None:
    io, hi = retry_if_exception_type(OSError), retry_if_exception_message(match="Hi there")
    strategy = io & hi if combine == "&" else retry_all(io, hi)
    fetch = face.retrying(clock, retry=strategy)

    assert fetch(Vendor(clock, io_errors(3))) is True
    other = Vendor(clock, [OSError("disk full"), *io_errors(2)])
    with pytest.raises(OSError, match="disk full"):
        fetch(other)
    assert other.attempts == 1


# tenacity: TestRetryConditions.test_retry_or_with_plain_function (composed both ways)
@pytest.mark.parametrize("side", ["strategy | plain", "plain | strategy"])
def test_a_plain_predicate_composes_with_a_strategy(
    face: Face, clock: ManualClock, side: str
) -> None:
    def is_custom(state: RetryCallState) -> bool:
        return state.outcome is not None and isinstance(state.outcome.exception(), CustomError)

    io = retry_if_exception_type(OSError)
    strategy = io | is_custom if side == "strategy | plain" else is_custom | io
    fetch = face.retrying(clock, retry=strategy)

    assert fetch(Vendor(clock, [*io_errors(1), *custom_errors(1)])) is True
    named = Vendor(clock, name_errors(1))
    with pytest.raises(NameError):
        fetch(named)
    assert named.attempts == 1


# tenacity: TestRetryConditions.test_retry_try_again
def test_try_again_is_retried_whatever_the_predicate(face: Face, clock: ManualClock) -> None:
    vendor = Vendor(clock, [TryAgain(), TryAgain()])
    fetch = face.retrying(clock, stop=stop_after_attempt(5), retry=retry_never)

    assert fetch(vendor) is True
    assert vendor.attempts == 3


# tenacity: TestRetryConditions.test_retry_try_again_forever,
# test_retry_try_again_forever_reraise. Ours (documented): the last attempt's own
# error, TryAgain, whatever reraise says, never RetryError.
@pytest.mark.parametrize("reraise", [False, True])
def test_try_again_until_the_stop_ends_with_try_again(
    face: Face, clock: ManualClock, reraise: bool
) -> None:
    vendor = Vendor(clock, [TryAgain() for _ in range(10)])
    fetch = face.retrying(clock, stop=stop_after_attempt(5), retry=retry_never, reraise=reraise)

    with pytest.raises(TryAgain):
        fetch(vendor)
    assert vendor.attempts == 5


# tenacity: TestRetryConditions.test_retry_try_again_with_cause_reraise,
# test_retry_try_again_from_cause_reraise; test_asyncio.py test_reraise_try_again_with_cause.
# Ours (documented: reraise is not used, the call ends with the last attempt's own
# error): TryAgain reaches the caller, its cause kept.
def test_try_again_from_a_cause_ends_with_try_again_chained_to_it(
    face: Face, clock: ManualClock
) -> None:
    class UnderlyingError(Exception):
        pass

    errors: list[Exception] = [caused(TryAgain(), UnderlyingError("boom")) for _ in range(2)]
    vendor = Vendor(clock, errors)
    fetch = face.retrying(clock, stop=stop_after_attempt(2), retry=retry_never, reraise=True)

    with pytest.raises(TryAgain) as caught:
        fetch(vendor)
    assert isinstance(caught.value.__cause__, UnderlyingError)
    assert vendor.attempts == 2


# tenacity: TestDecoratorWrapper.test_retry_until_exception_of_type_attempt_number,
# test_retry_until_exception_of_type_no_type, test_retry_until_exception_of_type_wrong_exception.
# Ours (documented): retry_unless_exception_type retries returned values, so it is refused.
@pytest.mark.parametrize(
    "strategy",
    [retry_unless_exception_type(NameError), retry_unless_exception_type()],
    ids=["NameError", "no type"],
)
def test_retry_unless_exception_type_is_refused(strategy: retry_unless_exception_type) -> None:
    assert refused(Retrying(retry=strategy)).parameter == "retry.retry"


# tenacity: TestRetryConditions.test_retry_if_result, test_retry_if_not_result,
# test_retry_any, test_retry_all, test_retry_and, test_retry_or,
# test_retry_and_with_plain_function; TestDecoratorWrapper.test_with_wait,
# test_with_stop_on_return_value. Ours (documented): strategies retrying on a
# returned value are refused when decorating ("raise an exception for a result you want retried").
@pytest.mark.parametrize(
    "strategy",
    [
        retry_if_result(lambda x: x is None),
        retry_if_not_result(lambda x: x == 1),
        retry_any(retry_if_result(lambda x: x == 1), retry_if_result(lambda x: x == 2)),
        retry_all(retry_if_result(lambda x: x == 1), retry_if_result(lambda x: x > 0)),
        retry_if_result(lambda x: x == 1) & retry_if_result(lambda x: isinstance(x, int)),
        retry_if_result(lambda x: x == "foo") | retry_if_result(lambda x: isinstance(x, int)),
        retry_if_result(lambda x: x == 1) & (lambda state: True),
        (lambda state: True) & retry_if_result(lambda x: x == 1),
        retry_if_exception_type() | retry_if_result(lambda x: x is None),
    ],
    ids=[
        "if_result",
        "if_not_result",
        "any",
        "all",
        "and",
        "or",
        "and plain",
        "plain and",
        "exception or result",
    ],
)
def test_strategies_that_retry_a_returned_value_are_refused(strategy: Any) -> None:
    assert refused(Retrying(retry=strategy, stop=stop_after_attempt(3))).parameter == (
        "retry.retry"
    )


# tenacity: TestDecoratorWrapper.test_retry_if_not_exception_message_delay (it retries
# every returned value until the message comes) and retry_always. Ours, documented: such
# strategies are refused (retry_if_exception(lambda e: ...) retries failures only).
@pytest.mark.parametrize(
    "strategy",
    [retry_if_not_exception_message(message=NAME_MESSAGE), retry_always],
    ids=["if_not_exception_message", "retry_always"],
)
def test_every_strategy_that_retries_a_returned_value_is_refused(strategy: Any) -> None:
    assert refused(Retrying(retry=strategy)).parameter == "retry.retry"


# tenacity: TestReraiseExceptions.test_reraise_no_exception,
# test_reraise_timeout_from_retry_error. Ours (documented): the strategies are
# consulted only after a failure, so a plain predicate saying "retry" never sees a value.
def test_a_returned_value_is_the_answer_whatever_a_plain_predicate_would_say(
    face: Face, clock: ManualClock
) -> None:
    vendor = Vendor(clock, io_errors(1), answer=42)
    fetch = face.retrying(clock, stop=stop_after_attempt(5), retry=lambda state: True)

    assert fetch(vendor) == 42
    assert vendor.attempts == 2


# -- how a call ends ----------------------------------------------------------------------


# tenacity: TestReraiseExceptions.test_reraise_by_default (reraise=True),
# test_reraise_from_retry_error (reraise=False: RetryError, then .reraise());
# TestContextManager/TestInvokeAsCallable test_retry_error, test_reraise.
# Ours (documented): the last attempt's own error either way, never RetryError.
@pytest.mark.parametrize("reraise", [False, True])
def test_the_call_ends_with_the_last_attempts_own_error(
    face: Face, clock: ManualClock, reraise: bool
) -> None:
    errors: list[Exception] = [KeyError("first"), KeyError("Bad key")]
    vendor = Vendor(clock, errors)
    fetch = face.retrying(clock, wait=wait_fixed(0.1), stop=stop_after_attempt(2), reraise=reraise)

    with pytest.raises(KeyError, match="Bad key") as caught:
        fetch(vendor)
    assert not isinstance(caught.value, RetryError)
    assert vendor.attempts == 2


# tenacity: TestRetryWith.test_retry_error_cls_should_be_preserved.
# Ours (documented): retry_error_cls is not used.
def test_retry_error_cls_is_not_used(face: Face, clock: ManualClock) -> None:
    class Remapped(Exception):
        pass

    vendor = Vendor(clock, [Exception("raised for test purposes")] * 3)
    fetch = face.retrying(clock, stop=stop_after_attempt(2), retry_error_cls=Remapped)

    with pytest.raises(Exception, match="raised for test purposes") as caught:
        fetch(vendor)
    assert type(caught.value) is Exception


# tenacity: TestRetryErrorCallback.test_retry_error_callback,
# TestRetryWith.test_retry_error_callback_should_be_preserved.
# Ours (documented): refused, "use resilient(..., fallback=...)".
def test_retry_error_callback_is_refused() -> None:
    retrying = Retrying(stop=stop_after_attempt(3), retry_error_callback=lambda state: None)

    error = refused(retrying)
    assert error.parameter == "retry.retry_error_callback"
    assert "fallback" in str(error)


# tenacity: TestRetryErrorCallback.test_retry_error_callback, in our API: the
# fallback answers once, after the last attempt.
def test_the_fallback_answers_once_the_retries_are_over(face: Face, clock: ManualClock) -> None:
    answered: list[Vendor] = []

    def fallback(vendor: Vendor) -> str:
        answered.append(vendor)
        return f"keeps raising errors after {vendor.attempts} attempts"

    vendor = Vendor(clock, [Exception("This exception should not be raised")] * 5)
    resilience = resilient(
        "tenacity", retry=Retrying(stop=stop_after_attempt(3)), fallback=fallback, clock=clock
    )

    assert face.decorate(resilience)(vendor) == "keeps raising errors after 3 attempts"
    assert answered == [vendor]


# -- before, after, before_sleep ----------------------------------------------------------


# tenacity: TestBeforeAfterAttempts.test_before_attempts.
# Ours (documented): a before hook is refused, use before_sleep.
def test_a_before_hook_is_refused() -> None:
    retrying = Retrying(stop=stop_after_attempt(1), before=lambda state: None)

    error = refused(retrying)
    assert error.parameter == "retry.before"
    assert "before_sleep" in str(error)


# tenacity: TestBeforeAfterAttempts.test_after_attempts
def test_after_runs_after_each_failed_attempt(face: Face, clock: ManualClock) -> None:
    after: list[int] = []
    vendor = Vendor(clock, [Exception("testing after_attempts handler")] * 2)
    fetch = face.retrying(
        clock,
        wait=wait_fixed(0.1),
        stop=stop_after_attempt(3),
        after=lambda state: after.append(state.attempt_number),
    )

    assert fetch(vendor) is True
    assert after == [1, 2]


# tenacity: TestBeforeAfterAttempts.test_before_sleep
def test_before_sleep_runs_before_each_wait_and_sees_it(face: Face, clock: ManualClock) -> None:
    seen: list[tuple[int, float, float]] = []

    def before_sleep(state: RetryCallState) -> None:
        assert state.next_action is not None
        seen.append((state.attempt_number, state.next_action.sleep, clock.monotonic()))

    vendor = Vendor(clock, [Exception("testing before_sleep_attempts handler")] * 2)
    fetch = face.retrying(
        clock, wait=wait_fixed(0.01), stop=stop_after_attempt(3), before_sleep=before_sleep
    )

    assert fetch(vendor) is True
    assert seen == [(1, 0.01, 0.0), (2, 0.01, pytest.approx(0.01))]


@pytest.fixture
def captured(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], list[str]]]:
    """The formatted records of the logger ``tenacity.ported``, at INFO and above."""
    name = "tenacity.ported"
    with caplog.at_level(logging.INFO, logger=name):
        fmt = logging.Formatter().format
        yield lambda: [fmt(r) for r in caplog.records if r.name == name]


# tenacity: TestBeforeAfterAttempts.test_before_sleep_log_raises
def test_before_sleep_log_says_each_retry_and_its_error(
    face: Face, clock: ManualClock, captured: Callable[[], list[str]]
) -> None:
    hook = before_sleep_log(logging.getLogger("tenacity.ported"), logging.INFO)
    fetch = face.retrying(
        clock, wait=wait_fixed(0.01), stop=stop_after_attempt(3), before_sleep=hook
    )

    assert fetch(Vendor(clock, io_errors(2))) is True
    pattern = (
        r"^Retrying .*fetch\w* in 0\.01 seconds as it raised OSError: Hi there, I'm an IOError\.$"
    )
    records = captured()
    assert len(records) == 2
    assert all(re.match(pattern, record) for record in records)


# tenacity: TestBeforeAfterAttempts.test_before_sleep_log_raises_with_exc_info
def test_before_sleep_log_with_exc_info_adds_the_traceback(
    face: Face, clock: ManualClock, captured: Callable[[], list[str]]
) -> None:
    hook = before_sleep_log(logging.getLogger("tenacity.ported"), logging.INFO, exc_info=True)
    fetch = face.retrying(
        clock, wait=wait_fixed(0.01), stop=stop_after_attempt(3), before_sleep=hook
    )

    assert fetch(Vendor(clock, io_errors(2))) is True
    pattern = re.compile(
        r"^Retrying .* in 0\.01 seconds as it raised OSError: Hi there, I'm an IOError\.\n"
        r"Traceback \(most recent call last\):\n.*$",
        flags=re.MULTILINE,
    )
    records = captured()
    assert len(records) == 2
    assert all(pattern.match(record) for record in records)


# tenacity: test_after.py TestAfterLogFormat.test_01_default (seconds since the start:
# the injected clock's)
def test_after_log_says_the_attempt_and_the_clocks_seconds(
    face: Face, clock: ManualClock, captured: Callable[[], list[str]]
) -> None:
    hook = after_log(logging.getLogger("tenacity.ported"), logging.INFO)
    fetch = face.retrying(clock, wait=wait_fixed(2), stop=stop_after_attempt(3), after=hook)

    assert fetch(Vendor(clock, io_errors(2))) is True
    records = captured()
    assert len(records) == 2
    assert re.match(r"^Finished call to '.*fetch\w*' after 0\(s\), this was the 1st", records[0])
    assert re.match(r"^Finished call to '.*fetch\w*' after 2\(s\), this was the 2nd", records[1])


# tenacity: test_asyncio.py (AsyncRetrying awaits async def hooks) with
# TestBeforeAfterAttempts.test_after_attempts, test_before_sleep. Ours: an async def
# hook on an async def function must run, or be refused like a coroutine strategy.
@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
async def test_async_def_hooks_are_awaited_or_refused(clock: ManualClock) -> None:
    seen: list[tuple[str, int]] = []

    async def after(state: RetryCallState) -> None:
        seen.append(("after", state.attempt_number))

    async def before_sleep(state: RetryCallState) -> None:
        seen.append(("before_sleep", state.attempt_number))

    hooks: dict[str, Any] = {"after": after, "before_sleep": before_sleep}  # not typed for it
    try:
        resilience = resilient(
            "tenacity", retry=Retrying(stop=stop_after_attempt(2), **hooks), clock=clock
        )
    except ConfigError:
        return  # refused when decorating: as for coroutine strategies

    @resilience
    async def fetch(vendor: Vendor) -> Any:
        return vendor.go()

    assert await fetch(Vendor(clock, io_errors(1))) is True
    assert seen == [("after", 1), ("before_sleep", 1)]


# -- enabled, sleep, the decorated function ----------------------------------------------


# tenacity: TestEnabled.test_enabled_false_skips_retry, test_enabled_false_via_retry_with,
# test_enabled_false_iter_raises_original_exception; TestAsyncEnabled.test_enabled_false_skips_retry
def test_a_disabled_retrying_makes_one_attempt(face: Face, clock: ManualClock) -> None:
    vendor = Vendor(clock, [ValueError("fail")] * 3)

    with pytest.raises(ValueError, match="fail"):
        face.retrying(clock, enabled=False, stop=stop_after_attempt(3))(vendor)
    assert vendor.attempts == 1


# tenacity: TestEnabled.test_enabled_false_preserves_attributes,
# test_enabled_false_iter_succeeds_on_first_attempt
def test_a_disabled_retrying_answers_once(face: Face, clock: ManualClock) -> None:
    vendor = Vendor(clock, [], answer="ok")

    assert face.retrying(clock, enabled=False, stop=stop_after_attempt(3))(vendor) == "ok"
    assert vendor.attempts == 1


# tenacity: TestEnabled.test_enabled_true_retries_normally; test_asyncio.py test_retry
def test_an_enabled_retrying_retries(face: Face, clock: ManualClock) -> None:
    vendor = Vendor(clock, [ValueError("fail")] * 2)

    assert face.retrying(clock, enabled=True, stop=stop_after_attempt(3))(vendor) is True
    assert vendor.attempts == 3


# tenacity: TestMockingSleep.test_decorated; test_asyncio.py
# test_sync_function_with_async_sleep. Ours (documented): Retrying's sleep is not used,
# waits sleep on clock=.
def test_the_retryings_sleep_is_not_used(face: Face, clock: ManualClock) -> None:
    slept: list[float] = []
    vendor = Vendor(clock, io_errors(2))
    fetch = face.retrying(clock, sleep=slept.append, wait=wait_fixed(1))

    assert fetch(vendor) is True
    assert slept == []
    assert vendor.at == [0.0, 1.0, 2.0]


# tenacity: test_asyncio.py TestAsyncio.test_iscoroutinefunction
def test_a_decorated_async_function_is_a_coroutine_function(clock: ManualClock) -> None:
    @resilient("tenacity", retry=Retrying(), clock=clock)
    async def fetch(vendor: Vendor) -> Any:
        return vendor.go()

    assert inspect.iscoroutinefunction(fetch)


# tenacity: TestDecoratorWrapper.test_retry_preserves_argument_defaults; test_asyncio.py
# test_retry_preserves_argument_defaults. Ours (documented): the signature is kept (for type
# checkers and inspect), defaults included; the wrapper's own __defaults__ are not copied.
def test_the_signature_keeps_the_arguments_defaults(clock: ManualClock) -> None:
    resilience = resilient("tenacity", retry=Retrying(stop=stop_after_attempt(3)), clock=clock)

    def with_defaults(a: int = 1) -> int:
        return a

    def with_kwdefaults(*, a: int = 1) -> int:
        return a

    async def async_with_defaults(a: int = 1) -> int:
        return a

    for fn in (with_defaults, with_kwdefaults, async_with_defaults):
        assert inspect.signature(resilience(fn)) == inspect.signature(fn)
    assert resilience(with_defaults)() == 1
    assert resilience(with_kwdefaults)() == 1


# tenacity: TestDecoratorWrapper.test_retry_function_object (and a functools.partial)
@pytest.mark.parametrize("kind", ["object", "partial"])
def test_a_callable_object_is_decorated_or_refused_with_a_config_error(
    clock: ManualClock, kind: str
) -> None:
    class Hello:
        def __call__(self) -> str:
            return "Hello"

    def greet(greeting: str) -> str:
        return greeting

    fn: Callable[[], str] = Hello() if kind == "object" else functools.partial(greet, "Hello")
    resilience = resilient("tenacity", retry=Retrying(stop=stop_after_attempt(3)), clock=clock)
    try:
        hello = resilience(fn)
    except ConfigError as error:
        refusal = error
    else:
        assert hello() == "Hello"
        return
    assert refusal.parameter == "fn"  # documented: "fn is not a function"


# -- async only ----------------------------------------------------------------------------


# tenacity: test_asyncio.py TestAsyncio.test_attempt_number_is_correct_for_interleaved_coroutines
async def test_interleaved_async_calls_keep_their_own_attempt_numbers(
    clock: ManualClock,
) -> None:
    attempts: list[tuple[Vendor, int]] = []

    @resilient(
        "tenacity",
        retry=Retrying(after=lambda state: attempts.append((state.args[0], state.attempt_number))),
        clock=clock,
    )
    async def fetch(vendor: Vendor) -> Any:
        await asyncio.sleep(0)
        return vendor.go()

    first, second = Vendor(clock, io_errors(3)), Vendor(clock, io_errors(3))
    assert list(await asyncio.gather(fetch(first), fetch(second))) == [True, True]

    assert [n for vendor, n in attempts if vendor is first] == [1, 2, 3]
    assert [n for vendor, n in attempts if vendor is second] == [1, 2, 3]
    assert {vendor for vendor, _ in attempts[::2]} == {first}  # interleaved, as in tenacity
    assert {vendor for vendor, _ in attempts[1::2]} == {second}


# tenacity: test_asyncio.py TestAsyncio.test_retry_using_async_retying.
# Ours (documented): AsyncRetrying is refused; a Retrying's strategies serve async functions.
def test_async_retrying_is_refused() -> None:
    error = refused(AsyncRetrying())
    assert error.parameter == "retry"
    assert "async functions too" in str(error)


# tenacity: test_asyncio.py TestContextManager.test_retry_with_async_result,
# test_retry_with_async_exc, test_retry_with_async_result_or, _ror, _and, _rand.
# Ours (documented): coroutine strategies are refused.
async def _lt_3(x: float) -> bool:
    return x < 3


async def _is_custom(e: BaseException) -> bool:
    return isinstance(e, CustomError)


@pytest.mark.parametrize(
    "strategy",
    [
        tasyncio.retry_if_result(_lt_3),
        tasyncio.retry_if_exception(_is_custom),
        tasyncio.retry_if_result(_lt_3) | retry_if_exception(lambda e: True),
        retry_if_result(lambda x: x < 3) | tasyncio.retry_if_exception(_is_custom),
        tasyncio.retry_if_result(_lt_3) & retry_if_result(lambda x: x > 0),
        retry_if_result(lambda x: x > 0) & tasyncio.retry_if_result(_lt_3),
        retry_if_exception_type(OSError) | tasyncio.retry_if_exception(_is_custom),
    ],
    ids=["result", "exc", "result_or", "result_ror", "result_and", "result_rand", "exc_ror"],
)
def test_coroutine_retry_strategies_are_refused(strategy: Any) -> None:
    assert refused(Retrying(retry=strategy)).parameter == "retry.retry"


# tenacity: test_asyncio.py (async wait/stop callables under AsyncRetrying).
# Ours (documented): coroutine stop and wait strategies are refused too.
@pytest.mark.parametrize("name", ["stop", "wait"])
def test_coroutine_stop_and_wait_strategies_are_refused(name: str) -> None:
    async def strategy(state: RetryCallState) -> Any:
        return 0

    strategies: dict[str, Any] = {name: strategy}
    assert refused(Retrying(**strategies)).parameter == f"retry.{name}"
