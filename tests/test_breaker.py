"""CircuitBreaker: states, trip rules, half-open permits, classification, faces."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from typing import Any

import pytest
from tenacity import Retrying, stop_after_attempt, wait_fixed

from argo_perf import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerRegistry,
    CircuitOpenError,
    CircuitState,
    ConfigError,
    ManualClock,
    RateLimitExceeded,
)
from argo_perf.breaker import (
    ConsecutiveFailures,
    FailureRate,
    SlowCallRate,
    Transition,
    backoff,
    retry_after_of,
    retry_unless_circuit_open,
    wait_retry_after,
)

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


class VendorDown(Exception):
    pass


def fail() -> None:
    raise VendorDown("down")


def ok() -> str:
    return "ok"


def trip(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        with pytest.raises(VendorDown):
            breaker.call(fail)


def make(clock: ManualClock, **kwargs: Any) -> CircuitBreaker:
    return CircuitBreaker("vendor", CircuitBreakerConfig(**kwargs), clock=clock)


# -- configuration ------------------------------------------------------------------


def test_seed_configuration_works_as_written() -> None:
    config = CircuitBreakerConfig(failure_threshold=5, success_threshold=2, timeout=60.0)
    assert (config.failure_threshold, config.success_threshold, config.timeout) == (5, 2, 60.0)
    assert CircuitBreaker("massive", config).state is CLOSED


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"failure_threshold": True}, "failure_threshold"),
        ({"failure_threshold": None}, "failure_threshold"),
        ({"success_threshold": 0}, "success_threshold"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": float("inf")}, "timeout"),
        ({"timeout": "60"}, "timeout"),
        ({"half_open_permits": 0}, "half_open_permits"),
        ({"probe_timeout": -1.0}, "probe_timeout"),
        ({"failure_types": [Exception]}, "failure_types"),
        ({"ignored_types": (int,)}, "ignored_types"),
        ({"failure_if_result": 3}, "failure_if_result"),
        ({"retry_after_of": "x"}, "retry_after_of"),
        ({"trip": 5}, "trip"),
    ],
)
def test_bad_configuration_names_parameter_and_value(
    kwargs: dict[str, Any], parameter: str
) -> None:
    with pytest.raises(ConfigError) as info:
        CircuitBreakerConfig(**kwargs)
    assert info.value.parameter == parameter


@pytest.mark.parametrize(
    ("build", "parameter"),
    [
        (lambda: ConsecutiveFailures(0), "threshold"),
        (lambda: FailureRate(0.0, last_calls=10), "threshold"),
        (lambda: FailureRate(1.5, last_calls=10), "threshold"),
        (lambda: FailureRate(0.5), "last_calls"),
        (lambda: FailureRate(0.5, last_calls=10, window=5.0), "last_calls"),
        (lambda: FailureRate(0.5, last_calls=5, minimum_calls=6), "minimum_calls"),
        (lambda: FailureRate(0.5, last_calls=5, minimum_calls=0), "minimum_calls"),
        (lambda: FailureRate(0.5, last_calls=0), "last_calls"),
        (lambda: FailureRate(0.5, last_calls="20"), "last_calls"),  # type: ignore[arg-type]
        (lambda: FailureRate(0.5, last_calls=2.5), "last_calls"),  # type: ignore[arg-type]
        (lambda: FailureRate("0.5", last_calls=10), "threshold"),  # type: ignore[arg-type]
        (lambda: FailureRate(0.5, window=-1.0), "window"),
        (lambda: FailureRate(0.5, window=10.0, buckets=0), "buckets"),
        (lambda: SlowCallRate(0.5, slow_call_duration=0.0, last_calls=5), "slow_call_duration"),
        (lambda: backoff(0.0), "initial"),
        (lambda: backoff(2.0, 1.0), "maximum"),
        (lambda: backoff(multiplier=0.5), "multiplier"),
        (lambda: backoff(jitter=1.0), "jitter"),
        (lambda: CircuitBreaker(""), "name"),
        (lambda: CircuitBreaker("x", {"failure_threshold": 1}), "config"),  # type: ignore[arg-type]
        (lambda: wait_retry_after(maximum=-1), "maximum"),
        (lambda: wait_retry_after(maximum=float("nan")), "maximum"),
        (lambda: retry_unless_circuit_open("x"), "inner"),  # type: ignore[arg-type]
        (lambda: CircuitBreaker("x", shared="redis://localhost/0"), "shared"),  # type: ignore[arg-type]
        (lambda: CircuitBreaker("x", listeners=[print, 3]), "listeners"),  # type: ignore[list-item]
        (lambda: CircuitBreaker("x").add_listener(None), "listener"),  # type: ignore[arg-type]
        (lambda: CircuitBreakerRegistry(shared="redis://h/0"), "shared"),  # type: ignore[arg-type]
        (lambda: CircuitBreakerRegistry(listeners=(1,)), "listeners"),  # type: ignore[arg-type]
        (lambda: CircuitBreakerRegistry().add_listener(1), "listener"),  # type: ignore[arg-type]
        (lambda: CircuitBreakerRegistry(default={"failure_threshold": 3}), "default"),  # type: ignore[arg-type]
        (lambda: CircuitBreakerRegistry({"x": 1}), "configs['x']"),  # type: ignore[dict-item]
    ],
)
def test_bad_policy_arguments_raise_config_error(build: Any, parameter: str) -> None:
    with pytest.raises(ConfigError) as info:
        build()
    assert info.value.parameter == parameter


def test_trip_rules_alone_may_replace_the_consecutive_rule() -> None:
    config = CircuitBreakerConfig(failure_threshold=None, trip=FailureRate(0.5, last_calls=4))
    assert not isinstance(config.rule(), ConsecutiveFailures)


# -- the three states ---------------------------------------------------------------


def test_opens_after_consecutive_failures_and_the_tripping_call_reraises(
    clock: ManualClock,
) -> None:
    breaker = make(clock, failure_threshold=3)
    trip(breaker, 2)
    assert breaker.call(ok) == "ok"  # a success starts the count again
    trip(breaker, 2)
    assert breaker.state is CLOSED
    with pytest.raises(VendorDown, match="down"):
        breaker.call(fail)
    assert breaker.state is OPEN


def test_rejections_raise_a_new_error_each_time_with_retry_after(clock: ManualClock) -> None:
    breaker = make(clock, failure_threshold=1, timeout=30.0)
    calls = []
    trip(breaker, 1)
    clock.advance(10.0)
    errors = []
    for _ in range(2):
        with pytest.raises(CircuitOpenError) as info:
            breaker.call(calls.append, 1)
        errors.append(info.value)
    assert calls == []
    assert errors[0] is not errors[1]
    assert errors[0].name == "vendor"
    assert errors[0].retry_after == pytest.approx(20.0)
    assert errors[0].__traceback__ is not None
    assert breaker.metrics().rejections == 2


def test_half_open_admits_one_probe_and_rejects_the_others_at_once(clock: ManualClock) -> None:
    breaker = make(clock, failure_threshold=1, timeout=5.0)
    trip(breaker, 1)
    clock.advance(5.0)
    assert breaker.state is HALF_OPEN
    probe = breaker.try_acquire()
    assert probe is not None
    assert breaker.try_acquire() is None
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(ok)
    assert info.value.retry_after == pytest.approx(60.0)  # until the probe's probe_timeout
    probe.on_success()
    assert breaker.state is HALF_OPEN  # success_threshold is 2
    assert breaker.call(ok) == "ok"
    assert breaker.state is CLOSED


def test_failed_probe_reopens_with_the_next_backoff_step(clock: ManualClock) -> None:
    breaker = make(
        clock, failure_threshold=1, timeout=backoff(1.0, 8.0, jitter=0.0), success_threshold=1
    )
    trip(breaker, 1)
    assert breaker.metrics().retry_after == 1.0
    for expected in (2.0, 4.0, 8.0, 8.0):
        clock.advance(breaker.metrics().retry_after)
        trip(breaker, 1)  # the probe fails
        assert breaker.metrics().retry_after == expected
    clock.advance(8.0)
    breaker.call(ok)
    trip(breaker, 1)
    assert breaker.metrics().retry_after == 1.0  # closing started the attempts again


def test_several_permits(clock: ManualClock) -> None:
    breaker = make(clock, failure_threshold=1, timeout=1.0, half_open_permits=3)
    trip(breaker, 1)
    clock.advance(1.0)
    permits = [breaker.try_acquire() for _ in range(4)]
    assert [p is not None for p in permits] == [True, True, True, False]


def test_hung_probe_gives_its_permit_back_and_its_late_result_is_stale(
    clock: ManualClock,
) -> None:
    breaker = make(clock, failure_threshold=1, timeout=1.0, probe_timeout=10.0)
    trip(breaker, 1)
    clock.advance(1.0)
    hung = breaker.try_acquire()
    assert hung is not None
    clock.advance(9.0)
    assert breaker.try_acquire() is None
    clock.advance(1.0)
    second = breaker.try_acquire()
    assert second is not None
    hung.on_failure()  # arrives late: must not reopen the circuit
    assert breaker.state is HALF_OPEN
    assert breaker.metrics().stale == 1
    second.on_success()
    hung.on_success()  # reported twice: ignored
    assert breaker.metrics().stale == 1


async def test_cancelled_probe_gives_its_permit_back(clock: ManualClock) -> None:
    breaker = make(clock, failure_threshold=1, timeout=1.0)
    trip(breaker, 1)
    clock.advance(1.0)
    started = asyncio.Event()

    async def hangs() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.ensure_future(breaker.call_async(hangs))
    await started.wait()
    assert breaker.try_acquire() is None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.try_acquire() is not None
    assert breaker.metrics().ignored == 1


def test_results_of_calls_started_before_a_change_do_not_move_the_new_state(
    clock: ManualClock,
) -> None:
    breaker = make(clock, failure_threshold=2, timeout=1.0, success_threshold=1)
    early = breaker.try_acquire()
    assert early is not None
    trip(breaker, 2)
    clock.advance(1.0)
    breaker.call(ok)  # probe closes it again
    assert breaker.state is CLOSED
    trip(breaker, 1)
    early.on_failure()  # started in an older CLOSED generation
    assert breaker.state is CLOSED
    assert breaker.metrics().consecutive_failures == 1
    assert breaker.metrics().stale == 1


# -- classification -------------------------------------------------------------------


def test_classification_failure_ignored_and_other_types(clock: ManualClock) -> None:
    breaker = make(
        clock, failure_threshold=2, failure_types=(VendorDown,), ignored_types=(KeyError,)
    )

    def raises(exc: BaseException) -> None:
        raise exc

    for exc in (KeyError("k"), ValueError("v"), KeyError("k")):
        with pytest.raises(type(exc)):
            breaker.call(raises, exc)
    metrics = breaker.metrics()
    assert (metrics.ignored, metrics.successes, metrics.failures) == (2, 1, 0)
    trip(breaker, 2)
    assert breaker.state is OPEN


@pytest.mark.parametrize("exc", [asyncio.CancelledError(), KeyboardInterrupt(), GeneratorExit()])
def test_cancellation_and_interrupts_are_ignored_by_default(
    clock: ManualClock, exc: BaseException
) -> None:
    breaker = make(clock, failure_threshold=1)

    def raises() -> None:
        raise exc

    with pytest.raises(type(exc)):
        breaker.call(raises)
    assert breaker.state is CLOSED
    assert breaker.metrics().ignored == 1


def test_a_result_predicate_judges_returned_values(clock: ManualClock) -> None:
    breaker = make(
        clock, failure_threshold=2, failure_if_result=lambda r: r.get("error") is not None
    )
    assert breaker.call(dict, error="quota") == {"error": "quota"}
    breaker.call(dict, price=1.0)
    breaker.call(dict, error="quota")
    breaker.call(dict, error="quota")
    assert breaker.state is OPEN


def test_a_raising_predicate_counts_a_success_and_is_logged(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    breaker = make(clock, failure_threshold=1, failure_if_result=lambda r: 1 / 0)
    breaker.call(ok)
    assert breaker.state is CLOSED
    assert "failure_if_result raised" in caplog.text


def test_the_failing_call_retry_after_sets_the_open_time(clock: ManualClock) -> None:
    breaker = make(clock, failure_threshold=1, timeout=60.0)

    def limited() -> None:
        raise RateLimitExceeded("xai", 7.5)

    with pytest.raises(RateLimitExceeded):
        breaker.call(limited)
    assert breaker.metrics().retry_after == 7.5


def test_retry_after_reader_can_be_turned_off_and_its_errors_are_logged(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    off = make(clock, failure_threshold=1, retry_after_of=None)
    with pytest.raises(RateLimitExceeded):
        off.call(_raise, RateLimitExceeded("xai", 7.5))
    assert off.metrics().retry_after == 60.0
    bad = make(clock, failure_threshold=1, retry_after_of=lambda e: 1 / 0)
    with pytest.raises(VendorDown):
        bad.call(fail)
    assert bad.metrics().retry_after == 60.0
    assert "retry_after_of raised" in caplog.text


@pytest.mark.parametrize("value", ["soon", -5.0, float("nan"), float("inf"), True])
def test_a_bad_value_from_a_custom_retry_after_reader_is_logged_and_ignored(
    clock: ManualClock, caplog: pytest.LogCaptureFixture, value: object
) -> None:
    breaker = make(clock, failure_threshold=1, timeout=60.0, retry_after_of=lambda e: value)
    with pytest.raises(VendorDown):  # the call's own error, not a TypeError
        breaker.call(fail)
    assert breaker.state is OPEN
    assert breaker.metrics().retry_after == 60.0
    assert "retry_after_of returned" in caplog.text


def _raise(exc: BaseException) -> None:
    raise exc


@pytest.mark.parametrize(
    ("value", "expected"),
    [(7, 7.0), (0.5, 0.5), (0, None), (-1, None), (True, None), ("5", None), (float("inf"), None)],
)
def test_retry_after_of_reads_only_positive_finite_numbers(value: object, expected: Any) -> None:
    err = VendorDown()
    err.retry_after = value  # type: ignore[attr-defined]
    assert retry_after_of(err) == expected


def test_bad_timeout_functions_fall_back_to_sixty_seconds(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    for timeout in (lambda n: 1 / 0, lambda n: -1.0):
        breaker = make(clock, failure_threshold=1, timeout=timeout)
        trip(breaker, 1)
        assert breaker.metrics().retry_after == 60.0
    assert "timeout function" in caplog.text


def test_backoff_jitter_stays_within_bounds_and_never_overflows() -> None:
    open_for = backoff(1.0, 60.0, jitter=0.2, rng=random.Random(7))
    values = [open_for(n) for n in range(1, 2000)]
    assert all(0.8 <= v <= 72.0 for v in values)
    assert values[-1] >= 48.0
    assert backoff(3.0, 3.0, multiplier=1.0, jitter=0.0)(50) == 3.0


# -- trip rules -----------------------------------------------------------------------


def test_failure_rate_over_the_last_calls_with_minimum_calls(clock: ManualClock) -> None:
    rule = FailureRate(0.5, last_calls=4, minimum_calls=4)
    breaker = make(clock, failure_threshold=None, trip=rule)
    trip(breaker, 2)  # 2 of 2, but under minimum_calls
    breaker.call(ok)
    assert breaker.state is CLOSED
    assert breaker.metrics().failure_rate == pytest.approx(2 / 3)
    breaker.call(ok)  # 2 of 4: 50 % reaches the threshold
    assert breaker.state is OPEN


def test_count_window_forgets_the_oldest_call(clock: ManualClock) -> None:
    breaker = make(
        clock, failure_threshold=None, trip=FailureRate(0.75, last_calls=4, minimum_calls=4)
    )
    trip(breaker, 2)
    for _ in range(4):
        breaker.call(ok)
    trip(breaker, 2)  # window: ok ok F F -> 50 %
    assert breaker.state is CLOSED
    trip(breaker, 1)  # ok F F F -> 75 %
    assert breaker.state is OPEN


def test_failure_rate_over_a_time_window_expires_old_buckets(clock: ManualClock) -> None:
    rule = FailureRate(0.5, window=10.0, buckets=5, minimum_calls=3)
    breaker = make(clock, failure_threshold=None, trip=rule)
    trip(breaker, 2)
    clock.advance(11.0)  # both failures expire with their bucket
    breaker.call(ok)
    breaker.call(ok)
    assert breaker.metrics().failure_rate == 0.0
    trip(breaker, 1)  # 1 of 3
    assert breaker.state is CLOSED
    clock.advance(4.0)
    trip(breaker, 1)  # 2 of 4
    assert breaker.state is OPEN
    clock.advance(1000.0)
    assert breaker.metrics().failure_rate == 0.0


def test_slow_call_rate_opens_on_slow_calls(clock: ManualClock) -> None:
    rule = SlowCallRate(0.5, slow_call_duration=2.0, last_calls=4, minimum_calls=2)
    breaker = make(clock, failure_threshold=5, trip=rule)

    def slow() -> str:
        clock.advance(3.0)
        return "late"

    breaker.call(ok)
    assert breaker.metrics().slow_call_rate == 0.0
    breaker.call(slow)
    assert breaker.state is OPEN
    assert breaker.metrics().slow_calls == 1


def test_a_slow_probe_counts_as_failed(clock: ManualClock) -> None:
    rule = SlowCallRate(1.0, slow_call_duration=2.0, last_calls=1, minimum_calls=1)
    breaker = make(clock, failure_threshold=None, trip=rule, timeout=1.0)

    def slow() -> str:
        clock.advance(3.0)
        return "late"

    breaker.call(slow)
    clock.advance(1.0)
    breaker.call(slow)
    assert breaker.state is OPEN


def test_rules_combine_with_or() -> None:
    rule = (
        ConsecutiveFailures(3)
        | FailureRate(0.5, last_calls=10)
        | SlowCallRate(0.5, slow_call_duration=1.0, window=60.0)
    )
    assert len(rule.rules) == 3
    assert rule.slow_threshold() == 1.0
    assert rule.measures_duration


# -- manual control, listeners, metrics ------------------------------------------------


def test_force_open_disable_and_reset(clock: ManualClock) -> None:
    breaker = make(clock, failure_threshold=1)
    breaker.force_open()
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(ok)
    assert info.value.retry_after == float("inf")
    clock.advance(1e6)
    assert breaker.state is OPEN
    assert breaker.metrics().forced_open
    breaker.disable()
    trip(breaker, 3)
    assert breaker.state is CLOSED
    assert breaker.metrics().failures == 3
    assert breaker.metrics().disabled
    breaker.reset()
    trip(breaker, 1)
    assert breaker.state is OPEN
    breaker.reset()
    assert breaker.call(ok) == "ok"


def test_listeners_hear_transitions_in_the_order_they_happened_across_threads(
    clock: ManualClock,
) -> None:
    entered, release = threading.Event(), threading.Event()
    heard: list[Transition] = []

    def slow_on_trip(t: Transition) -> None:
        if t.old is CLOSED:
            entered.set()
            release.wait(5)

    breaker = make(clock, failure_threshold=1, timeout=1.0)
    breaker.add_listener(slow_on_trip)
    breaker.add_listener(heard.append)
    tripping = threading.Thread(target=trip, args=(breaker, 1))
    tripping.start()
    assert entered.wait(5)  # the trip is being told, slowly, on that thread
    clock.advance(1.0)
    threading.Timer(0.05, release.set).start()
    assert breaker.call(ok) == "ok"  # OPEN -> HALF_OPEN here, told after the trip
    tripping.join(5)
    assert [(t.old, t.new) for t in heard] == [(CLOSED, OPEN), (OPEN, HALF_OPEN)]


def test_listeners_run_outside_the_lock_and_their_errors_are_logged(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Transition] = []
    breaker = make(clock, failure_threshold=1, timeout=1.0, success_threshold=1)

    def reads_state(t: Transition) -> None:
        # Would deadlock if called with the (non-reentrant) lock held.
        seen.append(t)
        breaker.metrics()

    def broken(t: Transition) -> None:
        raise RuntimeError("listener bug")

    breaker.add_listener(reads_state)
    breaker.add_listener(broken)
    with caplog.at_level(logging.INFO, logger="argo_perf.breaker"):
        trip(breaker, 1)
        clock.advance(1.0)
        breaker.call(ok)
    assert [(t.old, t.new, t.reason) for t in seen] == [
        (CLOSED, OPEN, "tripped"),
        (OPEN, HALF_OPEN, "timeout elapsed"),
        (HALF_OPEN, CLOSED, "probes succeeded"),
    ]
    assert seen[0].open_for == 1.0
    assert "a transition listener raised" in caplog.text
    breaker.remove_listener(broken)
    breaker.remove_listener(broken)
    caplog.clear()
    breaker.force_open()
    assert seen[-1].reason == "forced open"  # the listener left in place still hears
    assert "a transition listener raised" not in caplog.text


def test_metrics_snapshot(clock: ManualClock) -> None:
    breaker = make(clock, failure_threshold=3)
    breaker.call(ok)
    breaker.call(ok)
    trip(breaker, 2)
    metrics = breaker.metrics()
    assert (metrics.calls, metrics.successes, metrics.failures) == (4, 2, 2)
    assert metrics.consecutive_failures == 2
    assert metrics.failure_rate == 0.5
    assert metrics.slow_call_rate is None
    assert metrics.state is CLOSED
    assert repr(breaker) == "CircuitBreaker(name='vendor', state=closed)"


# -- faces ----------------------------------------------------------------------------


def test_sync_decorator_keeps_metadata_and_counts(clock: ManualClock) -> None:
    breaker = make(clock, failure_threshold=2)

    @breaker
    def fetch(symbol: str, *, fail: bool = False) -> str:
        """Fetch a price."""
        if fail:
            raise VendorDown(symbol)
        return symbol

    assert fetch.__name__ == "fetch"
    assert fetch.__doc__ == "Fetch a price."
    assert fetch.breaker is breaker  # type: ignore[attr-defined]
    assert fetch("AAPL") == "AAPL"
    for _ in range(2):
        with pytest.raises(VendorDown):
            fetch("AAPL", fail=True)
    with pytest.raises(CircuitOpenError):
        fetch("AAPL")
    assert breaker.metrics().rejections == 1


async def test_async_decorator_and_call_async(clock: ManualClock) -> None:
    breaker = make(clock, failure_threshold=2, timeout=1.0, success_threshold=1)

    @breaker
    async def fetch(symbol: str, fail: bool = False) -> str:
        await asyncio.sleep(0)
        if fail:
            raise VendorDown(symbol)
        return symbol

    assert await fetch("BTC-USD") == "BTC-USD"
    for _ in range(2):
        with pytest.raises(VendorDown):
            await fetch("BTC-USD", fail=True)
    with pytest.raises(CircuitOpenError):
        await fetch("BTC-USD")
    with pytest.raises(CircuitOpenError):
        await breaker.call_async(fetch.__wrapped__, "BTC-USD")  # type: ignore[attr-defined]
    clock.advance(1.0)
    assert await fetch("BTC-USD") == "BTC-USD"
    assert breaker.state is CLOSED
    with pytest.raises(VendorDown):
        await breaker.call_async(fetch.__wrapped__, "X", True)  # type: ignore[attr-defined]


async def test_async_slow_path_with_a_result_predicate(clock: ManualClock) -> None:
    breaker = make(clock, failure_threshold=1, failure_if_result=lambda r: r is None)

    async def answer(value: object) -> object:
        return value

    assert await breaker.call_async(answer, 1) == 1
    with pytest.raises(VendorDown):
        await breaker.call_async(_async_raise, VendorDown())
    assert breaker.state is OPEN


async def _async_raise(exc: BaseException) -> None:
    raise exc


def test_with_block(clock: ManualClock) -> None:
    breaker = make(clock, failure_threshold=1)
    with breaker:
        pass

    def nested() -> None:
        with breaker:
            with breaker:  # a nested block runs on the outer one's admission
                pass
            raise VendorDown

    with pytest.raises(VendorDown):
        nested()
    assert breaker.state is OPEN
    with pytest.raises(CircuitOpenError), breaker:
        pass
    assert breaker.metrics().calls == 2  # the nested block is part of its outer call
    with pytest.raises(RuntimeError, match="exit without"):
        breaker.__exit__(None, None, None)


async def test_async_with_block(clock: ManualClock) -> None:
    breaker = make(clock, failure_threshold=1)
    async with breaker:
        await asyncio.sleep(0)
    with pytest.raises(VendorDown):
        async with breaker:
            raise VendorDown
    with pytest.raises(CircuitOpenError):
        async with breaker:
            pass


def test_permit_api(clock: ManualClock) -> None:
    breaker = make(clock, failure_threshold=2, failure_if_result=lambda r: r == "error")
    permit = breaker.try_acquire()
    assert permit is not None
    permit.on_result("error")
    assert "done=True" in repr(permit)
    second = breaker.try_acquire()
    assert second is not None
    second.release()
    third = breaker.try_acquire()
    assert third is not None
    third.on_failure(RateLimitExceeded("xai", 3.0))
    assert breaker.state is OPEN
    assert breaker.metrics().retry_after == 3.0
    assert breaker.try_acquire() is None


def test_registry_one_breaker_per_name() -> None:
    clock = ManualClock()
    seen: list[Transition] = []
    registry = CircuitBreakerRegistry(
        {"xai": CircuitBreakerConfig(failure_threshold=1)},
        default=CircuitBreakerConfig(failure_threshold=4),
        clock=clock,
    )
    massive = registry.get("massive")
    registry.add_listener(seen.append)
    assert registry["massive"] is massive
    assert registry["xai"].config.failure_threshold == 1
    assert massive.config.failure_threshold == 4
    assert "xai" in registry
    assert sorted(registry) == ["massive", "xai"]
    assert len(registry) == 2
    trip(registry["xai"], 1)
    trip(massive, 4)
    assert [t.name for t in seen] == ["xai", "massive"]
    assert registry.metrics()["xai"].state is OPEN
    registry.reset_all()
    assert registry["xai"].state is CLOSED


def test_one_config_serves_many_breakers_without_sharing_counts(clock: ManualClock) -> None:
    config = CircuitBreakerConfig(failure_threshold=None, trip=FailureRate(0.5, last_calls=2))
    first = CircuitBreaker("a", config, clock=clock)
    second = CircuitBreaker("b", config, clock=clock)
    trip(first, 2)
    assert first.state is OPEN
    assert second.state is CLOSED


def test_the_system_clock_is_the_default() -> None:
    breaker = CircuitBreaker("live", CircuitBreakerConfig(failure_threshold=1, timeout=30.0))
    trip(breaker, 1)
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(ok)
    assert 0 < info.value.retry_after <= 30.0


# -- concurrency ----------------------------------------------------------------------


def test_four_threads_run_their_calls_through_one_breaker_at_the_same_time() -> None:
    """Each call waits inside the breaker until all four are inside: no lock is held."""
    breaker = CircuitBreaker("vendor", CircuitBreakerConfig(trip=FailureRate(0.5, last_calls=8)))
    inside = threading.Barrier(4, timeout=10.0)
    results: list[str] = []
    errors: list[BaseException] = []

    @breaker
    def blocking_fetch(symbol: str) -> str:
        inside.wait()  # raises BrokenBarrierError if the others cannot get in
        return symbol

    def worker(symbol: str) -> None:
        try:
            results.append(blocking_fetch(symbol))
            results.append(breaker.call(blocking_fetch.__wrapped__, symbol))  # type: ignore[attr-defined]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,)) for s in "ABCD"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == sorted("ABCD" * 2)
    assert breaker.metrics().calls == 8


def test_threads_hammering_a_flapping_breaker_keep_its_invariants() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(
        "vendor",
        CircuitBreakerConfig(failure_threshold=3, timeout=0.001, half_open_permits=2),
        clock=clock,
    )

    def work(i: int) -> None:
        if i % 3:
            raise VendorDown

    def worker(seed: int) -> None:
        for i in range(2000):
            with contextlib.suppress(VendorDown, CircuitOpenError):
                breaker.call(work, i + seed)
            if i % 50 == 0:
                clock.advance(0.001)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    metrics = breaker.metrics()
    # Successes and rejections are counted without a lock: allow a lost update.
    assert metrics.calls + metrics.rejections == pytest.approx(8000, rel=0.01)
    assert metrics.opened > 0


# -- tenacity -------------------------------------------------------------------------


def test_retry_never_retries_a_circuit_open_error(clock: ManualClock) -> None:
    breaker = make(clock, failure_threshold=2)
    attempts = []

    @breaker
    def flaky() -> None:
        attempts.append(1)
        raise VendorDown

    retrying = Retrying(
        retry=retry_unless_circuit_open(),
        stop=stop_after_attempt(5),
        sleep=lambda s: None,
        reraise=True,
    )
    with pytest.raises(CircuitOpenError):
        retrying(flaky)
    assert len(attempts) == 2  # the third attempt was rejected and not retried


def test_wait_strategy_honours_retry_after() -> None:
    waits: list[float] = []
    calls = iter([RateLimitExceeded("xai", 4.0), VendorDown(), None])

    def vendor() -> str:
        exc = next(calls)
        if exc is not None:
            raise exc
        return "ok"

    retrying = Retrying(
        retry=retry_unless_circuit_open(),
        wait=wait_retry_after(wait_fixed(1.0), maximum=3.5),
        sleep=waits.append,
        stop=stop_after_attempt(5),
    )
    assert retrying(vendor) == "ok"
    assert waits == [3.5, 1.0]
    assert wait_retry_after(wait_fixed(float("nan")))(_state_for(VendorDown())) == 60.0


def _state_for(exc: BaseException) -> Any:
    from tenacity import RetryCallState

    state = RetryCallState(Retrying(), fn=None, args=(), kwargs={})
    state.set_exception((type(exc), exc, None))
    return state


# -- compiled wrappers ----------------------------------------------------------------


def test_wrappers_keep_every_kind_of_parameter(clock: ManualClock) -> None:
    import inspect

    breaker = make(clock)
    default: list[int] = []

    def fetch(a, b=default, /, c=2, *rest, k, m=3, **extra):  # type: ignore[no-untyped-def]
        return (a, b, c, rest, k, m, extra)

    wrapped = breaker(fetch)
    assert inspect.signature(wrapped) == inspect.signature(fetch)
    assert wrapped(1, k=5) == (1, [], 2, (), 5, 3, {})
    assert wrapped(1, k=5)[1] is default  # the function's own default object
    assert wrapped(1, [2], 3, 4, 5, k=6, q=7) == (1, [2], 3, (4, 5), 6, 3, {"q": 7})
    with pytest.raises(TypeError, match="fetch"):
        wrapped()  # a wrong call is the caller's bug, not the vendor's failure
    assert breaker.metrics().calls == 3

    def only_positional(a, /):  # type: ignore[no-untyped-def]
        return a

    def only_keywords(*, k):  # type: ignore[no-untyped-def]
        return k

    assert breaker(only_positional)(1) == 1
    assert breaker(only_keywords)(k=2) == 2


def test_other_callables_get_the_generic_wrapper(clock: ManualClock) -> None:
    import functools
    import linecache

    breaker = make(clock, failure_threshold=1)

    def clash(_argo_core: int) -> int:
        return _argo_core

    assert breaker(clash)(4) == 4
    assert breaker(len)([1, 2]) == 2
    assert breaker(functools.partial(pow, 2))(3) == 8
    wrapped = breaker(fail)
    with pytest.raises(VendorDown) as info:
        wrapped()
    frames = [str(f.path) for f in info.traceback]
    assert any("argo_perf.breaker wrapper" in f for f in frames)
    assert any(linecache.getline(f, 3) for f in frames if "argo_perf.breaker wrapper" in f)
    with pytest.raises(CircuitOpenError):
        breaker(len)([1])


def test_circuit_open_error_pickles_and_formats_lazily() -> None:
    import pickle

    err = pickle.loads(pickle.dumps(CircuitOpenError("xai", 2.5)))
    assert (err.name, err.retry_after) == ("xai", 2.5)
    assert str(err) == "circuit 'xai' is open; retry after 2.500s"


# -- generators: protected for their whole iteration ----------------------------------


def test_decorated_generator_counts_failures_raised_while_iterating(clock: ManualClock) -> None:
    # pybreaker's test_generator, ported.
    breaker = make(clock, failure_threshold=5, timeout=30.0)
    counts: list[int] = []

    @breaker
    def suspicious_generator() -> Any:
        yield 1
        counts.append(breaker.metrics().failures)
        yield 2
        raise VendorDown("mid-stream")

    stream = suspicious_generator()
    assert next(stream) == 1
    assert next(stream) == 2
    assert counts == [0]
    with pytest.raises(VendorDown):
        next(stream)
    assert breaker.metrics().failures == 1
    for _ in range(4):
        with pytest.raises(VendorDown):
            list(suspicious_generator())
    metrics = breaker.metrics()
    assert (metrics.state, metrics.failures, metrics.successes) == (OPEN, 5, 0)


def test_open_circuit_rejects_a_generator_at_its_first_next(clock: ManualClock) -> None:
    # circuitbreaker's generator variants: a failing stream opens the circuit,
    # the next stream is rejected when iteration starts, not when it is created.
    breaker = make(clock, failure_threshold=1, timeout=10.0, success_threshold=1)
    started: list[int] = []

    @breaker
    def circuit_generator(fail_at: int | None = None) -> Any:
        started.append(1)
        for i in range(3):
            if i == fail_at:
                raise OSError("feed dropped")
            yield i

    assert list(circuit_generator()) == [0, 1, 2]
    with pytest.raises(OSError, match="feed dropped"):
        list(circuit_generator(fail_at=1))
    stream = circuit_generator()  # created: nothing runs yet
    with pytest.raises(CircuitOpenError) as info:
        next(stream)
    assert info.value.retry_after == pytest.approx(10.0)
    assert len(started) == 2
    clock.advance(10.0)
    assert list(circuit_generator()) == [0, 1, 2]  # the probe: the whole stream
    assert breaker.state is CLOSED


def test_generator_wrappers_keep_the_function_kind_and_delegate(clock: ManualClock) -> None:
    import inspect

    breaker = make(clock, failure_threshold=1)

    @breaker
    def echo() -> Any:
        received = yield "ready"
        try:
            yield f"got {received}"
        except KeyError:
            yield "handled"
        return "done"

    async def agen() -> Any:
        yield 1

    assert inspect.isgeneratorfunction(echo)
    assert inspect.isasyncgenfunction(breaker(agen))
    assert echo.__name__ == "echo"
    stream = echo()
    assert next(stream) == "ready"
    assert stream.send("x") == "got x"
    assert stream.throw(KeyError()) == "handled"
    with pytest.raises(StopIteration) as stop:
        next(stream)
    assert stop.value.value == "done"
    assert breaker.metrics().successes == 1


def test_a_generator_closed_early_counts_nothing_and_frees_a_probe(clock: ManualClock) -> None:
    breaker = make(clock, failure_threshold=1, timeout=1.0, success_threshold=1)

    @breaker
    def prices() -> Any:
        yield from (1.0, 2.0, 3.0)

    trip(breaker, 1)
    clock.advance(1.0)
    stream = prices()
    assert next(stream) == 1.0  # holds the only half-open permit
    assert breaker.try_acquire() is None
    stream.close()
    metrics = breaker.metrics()
    assert (metrics.ignored, metrics.state) == (1, HALF_OPEN)
    assert list(prices()) == [1.0, 2.0, 3.0]
    assert breaker.state is CLOSED


async def test_decorated_async_generator_counts_failures_and_rejects_when_open(
    clock: ManualClock,
) -> None:
    breaker = make(clock, failure_threshold=2, timeout=5.0)

    @breaker
    async def ticks(fail: bool) -> Any:
        yield 1
        if fail:
            raise VendorDown("mid-stream")
        yield 2

    assert [x async for x in ticks(False)] == [1, 2]
    for _ in range(2):
        with pytest.raises(VendorDown):
            [x async for x in ticks(True)]
    metrics = breaker.metrics()
    assert (metrics.state, metrics.failures, metrics.successes) == (OPEN, 2, 1)
    stream = ticks(False)
    with pytest.raises(CircuitOpenError):
        await stream.__anext__()


async def test_async_generator_delegates_send_throw_and_close(clock: ManualClock) -> None:
    breaker = make(clock, failure_threshold=1)
    closed: list[bool] = []

    @breaker
    async def echo() -> Any:
        try:
            received = yield "ready"
            try:
                yield f"got {received}"
            except KeyError:
                yield "handled"
            yield "more"
        finally:
            closed.append(True)

    stream = echo()
    assert await stream.__anext__() == "ready"
    assert await stream.asend("x") == "got x"
    assert await stream.athrow(KeyError()) == "handled"
    await stream.aclose()
    assert closed == [True]
    assert breaker.metrics().ignored == 1
    stream = echo()
    assert await stream.__anext__() == "ready"
    with pytest.raises(ValueError, match="boom"):
        await stream.athrow(ValueError("boom"))
    assert breaker.state is OPEN


# -- retry_after, the error's constructor, when OPEN -> HALF_OPEN is reported ---------


def test_retry_after_is_positive_while_a_half_open_probe_is_in_flight(clock: ManualClock) -> None:
    breaker = make(clock, failure_threshold=1, timeout=5.0, probe_timeout=40.0)
    trip(breaker, 1)
    clock.advance(5.0)
    probe = breaker.try_acquire()
    assert probe is not None
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(ok)
    assert info.value.retry_after == pytest.approx(40.0)
    assert breaker.metrics().retry_after == pytest.approx(40.0)
    clock.advance(30.0)
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(ok)
    assert info.value.retry_after == pytest.approx(10.0)
    probe.release()
    assert breaker.metrics().retry_after == 0.0


async def test_async_rejection_in_half_open_carries_a_positive_retry_after(
    clock: ManualClock,
) -> None:
    breaker = make(clock, failure_threshold=1, timeout=1.0, probe_timeout=7.0)
    trip(breaker, 1)
    clock.advance(1.0)
    assert breaker.try_acquire() is not None

    async def fetch() -> str:
        return "ok"

    with pytest.raises(CircuitOpenError) as info:
        await breaker.call_async(fetch)
    assert info.value.retry_after == pytest.approx(7.0)
    with pytest.raises(CircuitOpenError) as info:
        await breaker(fetch)()
    assert info.value.retry_after == pytest.approx(7.0)


def test_circuit_open_error_constructor_matches_its_annotations() -> None:
    err = CircuitOpenError(name="xai", retry_after=1.5)
    assert (err.name, err.retry_after) == ("xai", 1.5)
    assert str(err) == "circuit 'xai' is open; retry after 1.500s"
    with pytest.raises(TypeError):
        CircuitOpenError("xai")  # type: ignore[call-arg]


def test_open_to_half_open_is_reported_when_a_state_read_sees_it(clock: ManualClock) -> None:
    seen: list[tuple[CircuitState, CircuitState, str]] = []
    breaker = make(clock, failure_threshold=1, timeout=5.0)
    breaker.add_listener(lambda t: seen.append((t.old, t.new, t.reason)))
    trip(breaker, 1)
    clock.advance(5.0)
    assert breaker.state is HALF_OPEN
    assert seen[-1] == (OPEN, HALF_OPEN, "timeout elapsed")
    assert breaker.metrics().state is HALF_OPEN
    assert len(seen) == 2  # reported once


def test_reset_after_the_open_time_reports_half_open_then_closed(clock: ManualClock) -> None:
    seen: list[tuple[CircuitState, CircuitState, str]] = []
    breaker = make(clock, failure_threshold=1, timeout=5.0)
    breaker.add_listener(lambda t: seen.append((t.old, t.new, t.reason)))
    trip(breaker, 1)
    clock.advance(6.0)
    breaker.reset()  # no call, no state read in between
    assert seen == [
        (CLOSED, OPEN, "tripped"),
        (OPEN, HALF_OPEN, "timeout elapsed"),
        (HALF_OPEN, CLOSED, "reset"),
    ]


def test_metrics_reports_the_state_its_read_sees(clock: ManualClock) -> None:
    seen: list[CircuitState] = []
    breaker = make(clock, failure_threshold=1, timeout=5.0)
    breaker.add_listener(lambda t: seen.append(t.new))
    trip(breaker, 1)
    clock.advance(5.0)
    assert breaker.metrics().state is HALF_OPEN
    assert seen == [OPEN, HALF_OPEN]


def test_rejections_show_and_pickle_as_circuit_open_error(clock: ManualClock) -> None:
    import pickle

    breaker = make(clock, failure_threshold=1, timeout=9.0)
    trip(breaker, 1)
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(ok)
    err = info.value
    assert repr(err) == "CircuitOpenError('vendor', 9.0)"
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is CircuitOpenError
    assert (again.name, again.retry_after) == ("vendor", 9.0)


# -- what a breaker holds ---------------------------------------------------------------


def _bytes_per_breaker(first_call: bool) -> float:
    import gc
    import tracemalloc

    names = [f"vendor{i:04d}" for i in range(1000)]
    gc.collect()
    tracemalloc.start()
    try:
        registry = CircuitBreakerRegistry()
        for name in names:
            breaker = registry.get(name)
            if first_call:
                breaker.call(len, name)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return held / len(names)


def test_a_breaker_builds_a_face_only_when_it_is_first_used() -> None:
    breaker = CircuitBreaker("massive")
    assert "call" not in vars(breaker)
    assert "call_async" not in vars(breaker)
    assert breaker.call(len, "abc") == 3
    assert "call" in vars(breaker)
    assert "call_async" not in vars(breaker)
    assert asyncio.run(breaker.call_async(asyncio.sleep, 0, "x")) == "x"
    assert breaker.call is breaker.call  # built once, then an attribute like any other


def test_thousands_of_breakers_hold_what_their_callers_use() -> None:
    # About 940 bytes before the first call and 1,900 after it on CPython 3.11
    # (2,800 when both faces were built for every breaker up front).
    assert _bytes_per_breaker(first_call=False) < 1_500
    assert _bytes_per_breaker(first_call=True) < 2_500


def test_threads_using_a_new_breaker_at_once_share_one_state() -> None:
    breaker = CircuitBreaker("massive", CircuitBreakerConfig(failure_threshold=1000))
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def use() -> None:
        start.wait()
        try:
            for _ in range(200):
                breaker.call(len, "abc")
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert breaker.stats.successes == 8 * 200


async def test_a_task_started_inside_a_call_is_judged_on_its_own_once_the_call_ended(
    clock: ManualClock,
) -> None:
    # asyncio.create_task copies the context: a task started inside a call (here a
    # half-open probe, the slow path) must not run on that call's admission after it.
    config = CircuitBreakerConfig(failure_threshold=1, success_threshold=1, timeout=1.0)
    breaker = CircuitBreaker("massive", config, clock=clock)
    later: list[asyncio.Task[str]] = []
    go = asyncio.Event()

    async def background() -> str:
        await go.wait()
        return await breaker.call_async(_aok)

    async def probe() -> str:
        later.append(asyncio.create_task(background()))
        return "ok"

    with contextlib.suppress(VendorDown):
        breaker.call(_fail)
    clock.advance(1.0)
    assert await breaker.call_async(probe) == "ok"  # the probe closes the circuit
    with contextlib.suppress(VendorDown):
        breaker.call(_fail)  # and it opens again
    clock.advance(1.0)
    permit = breaker.try_acquire()  # half-open: another caller holds the one probe permit
    assert permit is not None
    go.set()
    with pytest.raises(CircuitOpenError):  # not admitted on the ended probe's admission
        await later[0]
    permit.release()


async def test_a_task_started_inside_a_with_block_is_judged_after_the_block(
    clock: ManualClock,
) -> None:
    breaker = CircuitBreaker("massive", CircuitBreakerConfig(failure_threshold=1), clock=clock)
    go = asyncio.Event()

    async def background() -> None:
        await go.wait()
        with contextlib.suppress(VendorDown):
            await breaker.call_async(_afail)

    async with breaker:
        task = asyncio.create_task(background())
    go.set()
    await task
    assert breaker.state is OPEN


def _fail() -> None:
    raise VendorDown


async def _afail() -> None:
    raise VendorDown


async def _aok() -> str:
    return "ok"
