"""pybreaker's test suite, ported onto our CircuitBreaker through a thin adapter.

Each test states one behaviour that pybreaker's tests check (danielfm/pybreaker,
tests/pybreaker_test.py), in our API; the comment above it names the pybreaker test.
Where our documented behaviour differs on purpose (defaults, the tripping call's
error, listeners, what Redis shares), the test asserts ours and says so.

The adapter: `Backing` builds a breaker from pybreaker's arguments (``fail_max``,
``reset_timeout``, ``success_threshold``, ``exclude``, ``listeners``), with its
state in this process or shared through a real redis-server (pybreaker's
``CircuitMemoryStorage`` and ``CircuitRedisStorage``), and `fail_counter` reads
pybreaker's ``fail_counter``. Time is a `ManualClock`; Redis measures a shared
opening in real time, so `Backing.open_time_passes` also ends the shared opening
the way its TTL would.

Not ported, having no meaning here: pybreaker's state-object internals
(``_create_new_state``, the mocked ``CircuitOpenState``), tornado futures,
``add_listeners``, exclusion by a predicate on the exception (we classify by
type only), ``throw_new_error_on_trip`` (ours always re-raises the tripping
error), a settable fallback state, and ``cluster_mode`` (our keys carry a hash
tag; tests/test_redis_cluster.py covers a cluster). pybreaker's test_generator
is already ported in tests/test_breaker.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import traceback
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, NoReturn

import pytest
import redis

from argo_perf import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    CircuitState,
    ManualClock,
)
from argo_perf.breaker import Listener, RedisBreakerState, Transition
from argo_perf.testing import RedisServer

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
DEFAULTS = CircuitBreakerConfig()
WAIT = 10.0  # seconds a thread waits for another before the test gives up (never asserted)


# -- the adapter ----------------------------------------------------------------------


@dataclass
class Backing:
    """Where a breaker keeps its state: this process only, or shared through Redis."""

    clock: ManualClock
    shared: RedisBreakerState | None = None
    client: redis.Redis | None = None

    def breaker(
        self,
        *,
        fail_max: int = 5,  # pybreaker's default and ours
        reset_timeout: float = 60.0,
        success_threshold: int = DEFAULTS.success_threshold,
        exclude: tuple[type[BaseException], ...] = (),
        listeners: Iterable[Listener] = (),
        name: str = "pybreaker",
    ) -> CircuitBreaker:
        """A breaker built from pybreaker's arguments.

        ``exclude`` adds to our ignored types (which by default already hold
        cancellation, ``KeyboardInterrupt`` and ``GeneratorExit``);
        ``success_threshold`` defaults to ours, 2 (pybreaker's is 1).
        """
        config = CircuitBreakerConfig(
            failure_threshold=fail_max,
            timeout=reset_timeout,
            success_threshold=success_threshold,
            ignored_types=DEFAULTS.ignored_types + exclude,
        )
        return CircuitBreaker(
            name, config, clock=self.clock, shared=self.shared, listeners=list(listeners)
        )

    def open_time_passes(self, seconds: float) -> None:
        """Move time on by ``seconds``; a shared opening ends with it, as its TTL would."""
        self.clock.advance(seconds)
        if self.client is not None:
            for key in self.client.scan_iter(match="*:open"):
                self.client.delete(key)


def fail_counter(breaker: CircuitBreaker) -> int:
    """pybreaker's ``fail_counter``: the current run of failures."""
    return breaker.stats.consecutive_failures


@pytest.fixture(params=["memory", "redis"])
def backing(request: pytest.FixtureRequest, clock: ManualClock) -> Iterator[Backing]:
    """pybreaker runs its storage-based tests on memory and on Redis: so do we."""
    if request.param == "memory":
        yield Backing(clock)
        return
    url: str = request.getfixturevalue("redis_url")
    shared = RedisBreakerState(url)
    client = redis.Redis.from_url(url)
    try:
        yield Backing(clock, shared, client)
    finally:
        shared.close()
        client.close()


@pytest.fixture
def memory(clock: ManualClock) -> Backing:
    return Backing(clock)


@pytest.fixture
def on_redis(redis_url: str, clock: ManualClock) -> Iterator[Backing]:
    shared = RedisBreakerState(redis_url)
    client = redis.Redis.from_url(redis_url)
    try:
        yield Backing(clock, shared, client)
    finally:
        shared.close()
        client.close()


def err() -> NoReturn:
    raise NotImplementedError


def suc() -> bool:
    return True


def fail_times(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        with pytest.raises(NotImplementedError):
            breaker.call(err)


def moves(seen: list[Transition]) -> list[tuple[CircuitState, CircuitState, str]]:
    return [(t.old, t.new, t.reason) for t in seen]


def commands(client: redis.Redis) -> int:
    """Commands the server has run so far (INFO itself not counted)."""
    stats: dict[str, Any] = client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")


def run_threads(target: Callable[[], object], n: int) -> None:
    threads = [threading.Thread(target=target) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# -- calls and states (pybreaker's storage-based tests, on memory and on Redis) ----------


# pybreaker: test_successful_call
def test_a_successful_call_keeps_the_circuit_closed(backing: Backing) -> None:
    breaker = backing.breaker()
    assert breaker.call(suc) is True
    assert fail_counter(breaker) == 0
    assert breaker.state is CLOSED


# pybreaker: test_one_failed_call
def test_one_failed_call_is_counted_and_keeps_the_circuit_closed(backing: Backing) -> None:
    breaker = backing.breaker()
    fail_times(breaker, 1)
    assert fail_counter(breaker) == 1
    assert breaker.state is CLOSED


# pybreaker: test_one_successful_call_after_failed_call
def test_a_success_after_a_failure_clears_the_failure_count(backing: Backing) -> None:
    breaker = backing.breaker()
    fail_times(breaker, 1)
    assert fail_counter(breaker) == 1
    assert breaker.call(suc) is True
    assert fail_counter(breaker) == 0
    assert breaker.state is CLOSED


# pybreaker: test_several_failed_calls_setting_absent, test_throw_new_error_on_trip_true.
# Differs on purpose: the call that trips re-raises its own error (pybreaker's default
# raises CircuitBreakerError from it); our run of failures ends when the circuit opens.
def test_the_failure_that_reaches_fail_max_opens_and_reraises_its_own_error(
    backing: Backing,
) -> None:
    breaker = backing.breaker(fail_max=3)
    fail_times(breaker, 2)
    with pytest.raises(NotImplementedError):
        breaker.call(err)
    assert breaker.state is OPEN
    assert breaker.stats.failures == 3


# pybreaker: test_throw_new_error_on_trip_false (our only behaviour)
def test_an_open_circuit_rejects_calls_without_running_them(backing: Backing) -> None:
    breaker = backing.breaker(fail_max=3)
    fail_times(breaker, 3)
    ran: list[int] = []
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(ran.append, 1)
    assert ran == []
    assert info.value.name == "pybreaker"
    assert info.value.retry_after == pytest.approx(60.0)
    stats = breaker.stats
    assert (stats.state, stats.failures, stats.rejections) == ("open", 3, 1)


# pybreaker: test_traceback_in_circuitbreaker_error. Differs on purpose: there is no
# new error to chain from; the tripping error itself keeps the failing frame.
def test_the_tripping_error_keeps_its_own_traceback(backing: Backing) -> None:
    breaker = backing.breaker(fail_max=3)
    fail_times(breaker, 2)
    with pytest.raises(NotImplementedError) as info:
        breaker.call(err)
    text = "".join(traceback.format_exception(info.value))
    assert "NotImplementedError" in text
    assert "in err" in text
    assert breaker.state is OPEN


# pybreaker: test_failed_call_after_timeout. Differs on purpose: the failed probe
# re-raises its own error (pybreaker raises CircuitBreakerError).
def test_a_failed_probe_after_the_open_time_reopens_the_circuit(backing: Backing) -> None:
    breaker = backing.breaker(fail_max=3, reset_timeout=0.5)
    fail_times(breaker, 2)
    assert breaker.state is CLOSED
    fail_times(breaker, 1)
    assert breaker.state is OPEN
    backing.open_time_passes(0.5)
    with pytest.raises(NotImplementedError):
        breaker.call(err)
    assert breaker.stats.failures == 4
    assert breaker.state is OPEN


# pybreaker: test_successful_after_timeout (success_threshold=1, pybreaker's default)
def test_a_successful_probe_closes_the_circuit_and_runs_only_once(backing: Backing) -> None:
    breaker = backing.breaker(fail_max=3, reset_timeout=1.0, success_threshold=1)
    calls: list[int] = []

    def counted() -> bool:
        calls.append(1)
        return True

    fail_times(breaker, 3)
    with pytest.raises(CircuitOpenError):
        breaker.call(err)
    with pytest.raises(CircuitOpenError):
        breaker.call(counted)
    assert breaker.stats.failures == 3
    backing.open_time_passes(1.0)
    assert breaker.call(counted) is True
    assert fail_counter(breaker) == 0
    assert breaker.state is CLOSED
    assert calls == [1]


# pybreaker: test_failed_call_when_halfopen. We have no half_open(): the open time
# passing is the way in; the failed probe re-raises its own error.
def test_a_failed_call_in_half_open_reopens_the_circuit(backing: Backing) -> None:
    breaker = backing.breaker()
    fail_times(breaker, 5)
    backing.open_time_passes(60.0)
    assert breaker.state is HALF_OPEN
    assert fail_counter(breaker) == 0
    with pytest.raises(NotImplementedError):
        breaker.call(err)
    assert breaker.stats.failures == 6
    assert breaker.state is OPEN


# pybreaker: test_successful_call_when_halfopen (success_threshold=1, pybreaker's default)
def test_a_success_in_half_open_closes_after_success_threshold(backing: Backing) -> None:
    breaker = backing.breaker(success_threshold=1)
    fail_times(breaker, 5)
    backing.open_time_passes(60.0)
    assert breaker.state is HALF_OPEN
    assert breaker.call(suc) is True
    assert fail_counter(breaker) == 0
    assert breaker.state is CLOSED


# pybreaker: test_success_threshold_default_behavior. Differs on purpose: our default
# success_threshold is 2, so one successful probe leaves the circuit half-open.
def test_by_default_two_successful_probes_close_the_circuit(backing: Backing) -> None:
    breaker = backing.breaker(fail_max=3, reset_timeout=0.1)
    fail_times(breaker, 3)
    backing.open_time_passes(0.1)
    assert breaker.call(suc) is True
    assert breaker.state is HALF_OPEN
    assert breaker.call(suc) is True
    assert breaker.state is CLOSED


# pybreaker: test_success_threshold_multiple_successes_required,
# test_success_threshold_redis_storage (the same with Redis)
def test_success_threshold_three_needs_three_successful_probes(backing: Backing) -> None:
    breaker = backing.breaker(fail_max=3, reset_timeout=0.1, success_threshold=3)
    fail_times(breaker, 3)
    backing.open_time_passes(0.1)
    for _ in range(2):
        assert breaker.call(suc) is True
        assert breaker.state is HALF_OPEN
    assert breaker.call(suc) is True
    assert breaker.state is CLOSED
    assert fail_counter(breaker) == 0


# pybreaker: test_success_threshold_failure_resets_counter. The failed probe re-raises
# its own error (pybreaker raises CircuitBreakerError).
def test_a_failed_probe_reopens_and_the_next_half_open_counts_successes_from_zero(
    backing: Backing,
) -> None:
    breaker = backing.breaker(fail_max=3, reset_timeout=0.1, success_threshold=3)
    fail_times(breaker, 3)
    backing.open_time_passes(0.1)
    breaker.call(suc)
    breaker.call(suc)
    assert breaker.state is HALF_OPEN
    fail_times(breaker, 1)
    assert breaker.state is OPEN
    backing.open_time_passes(0.1)
    breaker.call(suc)
    breaker.call(suc)
    assert breaker.state is HALF_OPEN  # the two earlier successes no longer count
    breaker.call(suc)
    assert breaker.state is CLOSED


# pybreaker: test_close (close() is our reset())
def test_reset_closes_an_open_circuit_and_clears_the_failure_count(backing: Backing) -> None:
    breaker = backing.breaker(fail_max=3)
    fail_times(breaker, 3)
    with pytest.raises(CircuitOpenError):
        breaker.call(err)
    assert breaker.state is OPEN
    breaker.reset()
    assert fail_counter(breaker) == 0
    assert breaker.state is CLOSED


# pybreaker: test_transition_events, through the states' own causes (we have no
# open()/half_open()/close(); listeners get a Transition with its reason).
def test_listeners_hear_every_transition_in_order(backing: Backing) -> None:
    seen: list[Transition] = []
    breaker = backing.breaker(fail_max=1, success_threshold=1, listeners=[seen.append])
    assert breaker.state is CLOSED
    fail_times(breaker, 1)
    assert breaker.state is OPEN
    backing.open_time_passes(60.0)
    assert breaker.state is HALF_OPEN
    breaker.call(suc)
    assert breaker.state is CLOSED
    assert moves(seen) == [
        (CLOSED, OPEN, "tripped"),
        (OPEN, HALF_OPEN, "timeout elapsed"),
        (HALF_OPEN, CLOSED, "probes succeeded"),
    ]
    assert {t.name for t in seen} == {"pybreaker"}


# pybreaker: test_transition_events, by hand (open() and close() are force_open() and reset())
def test_forcing_open_and_resetting_are_transitions_listeners_hear(backing: Backing) -> None:
    seen: list[Transition] = []
    breaker = backing.breaker(listeners=[seen.append])
    breaker.force_open()
    assert breaker.state is OPEN
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(suc)
    assert info.value.retry_after == float("inf")
    breaker.reset()
    assert breaker.state is CLOSED
    assert moves(seen) == [(CLOSED, OPEN, "forced open"), (OPEN, CLOSED, "reset")]


# pybreaker: test_call_events. Differs on purpose: listeners hear transitions only (no
# before_call/success/failure hooks); each call's outcome is counted in stats.
def test_calls_that_change_no_state_tell_listeners_nothing_and_show_in_stats(
    backing: Backing,
) -> None:
    seen: list[Transition] = []
    breaker = backing.breaker(listeners=[seen.append])
    assert breaker.call(suc) is True
    fail_times(breaker, 1)
    assert seen == []
    stats = breaker.stats
    assert (stats.calls, stats.successes, stats.failures) == (2, 1, 1)


# pybreaker: test_contextmanager
def test_a_decorated_generator_under_contextmanager_judges_what_the_block_raises(
    backing: Backing,
) -> None:
    breaker = backing.breaker(fail_max=2)

    class Foo:
        @contextmanager
        @breaker
        def wrapper(self) -> Iterator[None]:
            try:
                yield
            except NotImplementedError:
                raise ValueError("translated") from None

        def foo(self) -> None:
            with self.wrapper():
                raise NotImplementedError

    with pytest.raises(ValueError, match="translated"):
        Foo().foo()
    assert fail_counter(breaker) == 1
    with Foo().wrapper():
        pass
    assert fail_counter(breaker) == 0
    assert breaker.stats.successes == 1
    for _ in range(2):
        with pytest.raises(ValueError, match="translated"):
            Foo().foo()
    ran: list[int] = []
    with pytest.raises(CircuitOpenError), Foo().wrapper():  # rejected at the first next()
        ran.append(1)
    assert ran == []


# pybreaker: test_notify_not_called_on_init
def test_building_a_breaker_tells_its_listeners_nothing(backing: Backing) -> None:
    seen: list[Transition] = []
    breaker = backing.breaker(listeners=[seen.append])
    assert breaker.state is CLOSED
    assert seen == []


# -- configuration (pybreaker's CircuitBreakerConfigurationTestCase) ---------------------


# pybreaker: test_default_params. Differs on purpose: success_threshold is 2 (pybreaker:
# 1) and cancellation, KeyboardInterrupt and GeneratorExit are ignored (pybreaker: none).
def test_the_defaults_are_ours(clock: ManualClock) -> None:
    breaker = CircuitBreaker("pybreaker", clock=clock)
    config = breaker.config
    assert config == DEFAULTS
    assert (config.failure_threshold, config.timeout, config.success_threshold) == (5, 60.0, 2)
    assert config.ignored_types == (asyncio.CancelledError, KeyboardInterrupt, GeneratorExit)
    assert config.failure_types == (Exception,)
    assert fail_counter(breaker) == 0
    assert breaker.state is CLOSED


# pybreaker: test_new_with_custom_reset_timeout
def test_a_custom_timeout_sets_the_open_time_and_keeps_the_other_defaults(
    memory: Backing,
) -> None:
    breaker = memory.breaker(reset_timeout=30.0)
    assert dataclasses.replace(breaker.config, timeout=60.0) == DEFAULTS
    fail_times(breaker, 5)
    assert breaker.stats.retry_after == pytest.approx(30.0)


# pybreaker: test_new_with_custom_fail_max
def test_a_custom_failure_threshold_sets_the_trip_point(memory: Backing) -> None:
    breaker = memory.breaker(fail_max=10)
    assert dataclasses.replace(breaker.config, failure_threshold=5) == DEFAULTS
    fail_times(breaker, 9)
    assert breaker.state is CLOSED
    fail_times(breaker, 1)
    assert breaker.state is OPEN


# pybreaker: test_new_with_custom_excluded_exceptions. Our ignored_types replaces the
# defaults when given: ignoring Exception means no failure ever counts.
def test_ignored_types_count_for_nothing_and_never_open(clock: ManualClock) -> None:
    config = CircuitBreakerConfig(ignored_types=(Exception,))
    breaker = CircuitBreaker("pybreaker", config, clock=clock)
    assert breaker.config.ignored_types == (Exception,)
    fail_times(breaker, 10)
    stats = breaker.stats
    assert (stats.state, stats.ignored, stats.failures) == ("closed", 10, 0)


# pybreaker: test_fail_max_setter. Our configuration is frozen; reconfigure() swaps it
# in place (the trip rules start from empty counters, as documented).
def test_reconfigure_changes_the_failure_threshold(memory: Backing) -> None:
    breaker = memory.breaker()
    with pytest.raises(dataclasses.FrozenInstanceError):
        breaker.config.failure_threshold = 10  # type: ignore[misc]
    breaker.reconfigure(dataclasses.replace(breaker.config, failure_threshold=10))
    assert breaker.config.failure_threshold == 10
    fail_times(breaker, 9)
    assert breaker.state is CLOSED
    fail_times(breaker, 1)
    assert breaker.state is OPEN


# pybreaker: test_reset_timeout_setter. As documented, an open circuit keeps its
# deadline; the new timeout applies from the next opening.
def test_reconfigure_changes_the_timeout_of_the_next_opening(memory: Backing) -> None:
    breaker = memory.breaker(fail_max=1)
    fail_times(breaker, 1)
    breaker.reconfigure(dataclasses.replace(breaker.config, timeout=30.0))
    assert breaker.config.timeout == 30.0
    assert breaker.stats.retry_after == pytest.approx(60.0)
    memory.open_time_passes(60.0)
    fail_times(breaker, 1)  # the probe fails
    assert breaker.stats.retry_after == pytest.approx(30.0)


# pybreaker: test_success_threshold_property
def test_reconfigure_changes_the_success_threshold(memory: Backing) -> None:
    breaker = memory.breaker(fail_max=1, success_threshold=5)
    assert breaker.config.success_threshold == 5
    breaker.reconfigure(dataclasses.replace(breaker.config, success_threshold=1))
    fail_times(breaker, 1)
    memory.open_time_passes(60.0)
    breaker.call(suc)
    assert breaker.state is CLOSED


# pybreaker: test_call_with_no_args, test_call_with_args, test_call_with_kwargs
def test_call_passes_positional_and_keyword_arguments(memory: Backing) -> None:
    breaker = memory.breaker()

    def pair(arg1: int, arg2: str) -> list[object]:
        return [arg1, arg2]

    def keywords(**kwargs: int) -> dict[str, int]:
        return kwargs

    assert breaker.call(suc) is True
    assert breaker.call(pair, 42, "abc") == [42, "abc"]
    assert breaker.call(keywords, a=1, b=2) == {"a": 1, "b": 2}


# pybreaker: test_call_async_with_no_args, test_call_async_with_args,
# test_call_async_with_kwargs (tornado coroutines there, asyncio here)
async def test_call_async_passes_positional_and_keyword_arguments(memory: Backing) -> None:
    breaker = memory.breaker()

    async def yes() -> bool:
        return True

    async def pair(arg1: int, arg2: str) -> list[object]:
        return [arg1, arg2]

    async def keywords(**kwargs: int) -> dict[str, int]:
        return kwargs

    assert await breaker.call_async(yes) is True
    assert await breaker.call_async(pair, 42, "abc") == [42, "abc"]
    assert await breaker.call_async(keywords, a=1, b=2) == {"a": 1, "b": 2}


# pybreaker: test_add_listener, test_remove_listener (we have no add_listeners and no
# public list of listeners: what a listener hears is the test)
def test_listeners_can_be_added_later_and_removed(memory: Backing) -> None:
    heard: list[str] = []

    def first(transition: Transition) -> None:
        heard.append(f"first {transition.new.value}")

    def second(transition: Transition) -> None:
        heard.append(f"second {transition.new.value}")

    breaker = memory.breaker()
    breaker.add_listener(first)
    breaker.add_listener(second)
    breaker.force_open()
    assert heard == ["first open", "second open"]
    breaker.remove_listener(first)
    breaker.remove_listener(first)  # one that is not there is ignored
    breaker.reset()
    assert heard == ["first open", "second open", "second closed"]


# pybreaker: test_excluded_exceptions. Differs on purpose: pybreaker counts an excluded
# error as a success (the run of failures restarts); our ignored types count for
# nothing, so the run goes on. Subclasses are ignored too.
def test_ignored_exceptions_and_their_subclasses_leave_the_failure_count_alone(
    memory: Backing,
) -> None:
    breaker = memory.breaker(exclude=(LookupError,))
    fail_times(breaker, 1)
    assert fail_counter(breaker) == 1
    with pytest.raises(LookupError):
        breaker.call(_raise, LookupError())
    assert fail_counter(breaker) == 1
    fail_times(breaker, 1)
    assert fail_counter(breaker) == 2
    with pytest.raises(KeyError):
        breaker.call(_raise, KeyError("k"))
    assert fail_counter(breaker) == 2
    assert breaker.stats.ignored == 2


# pybreaker: test_excluded_exceptions, in pybreaker's sense: an error outside
# failure_types counts as a success (the dependency answered) and ends the run.
def test_errors_outside_failure_types_count_as_successes(clock: ManualClock) -> None:
    config = CircuitBreakerConfig(failure_types=(NotImplementedError,))
    breaker = CircuitBreaker("pybreaker", config, clock=clock)
    fail_times(breaker, 1)
    assert fail_counter(breaker) == 1
    with pytest.raises(LookupError):
        breaker.call(_raise, LookupError())
    assert fail_counter(breaker) == 0
    fail_times(breaker, 1)
    with pytest.raises(KeyError):
        breaker.call(_raise, KeyError("k"))
    assert fail_counter(breaker) == 0
    assert breaker.stats.successes == 2


def _raise(error: BaseException) -> NoReturn:
    raise error


# pybreaker: test_add_excluded_exception, test_add_excluded_exceptions,
# test_remove_excluded_exception (through reconfigure)
def test_reconfigure_adds_and_removes_an_ignored_type(memory: Backing) -> None:
    breaker = memory.breaker()
    base = breaker.config
    breaker.reconfigure(
        dataclasses.replace(base, ignored_types=(*base.ignored_types, NotImplementedError))
    )
    fail_times(breaker, 1)
    assert fail_counter(breaker) == 0
    breaker.reconfigure(base)
    fail_times(breaker, 1)
    assert fail_counter(breaker) == 1


# pybreaker: test_decorator
def test_the_decorator_keeps_name_and_doc_and_counts(memory: Backing) -> None:
    breaker = memory.breaker()

    @breaker
    def good(value: bool) -> bool:
        "Docstring"
        return value

    @breaker
    def bad(value: bool) -> bool:
        "Docstring"
        raise NotImplementedError

    assert (good.__doc__, bad.__doc__) == ("Docstring", "Docstring")
    assert (good.__name__, bad.__name__) == ("good", "bad")
    with pytest.raises(NotImplementedError):
        bad(True)
    assert fail_counter(breaker) == 1
    assert good(True) is True
    assert fail_counter(breaker) == 0


# pybreaker: test_decorator_call_future (a tornado coroutine there, async def here)
async def test_the_decorator_on_a_coroutine_function_keeps_name_and_doc_and_counts(
    memory: Backing,
) -> None:
    breaker = memory.breaker()

    @breaker
    async def good(value: bool) -> bool:
        "Docstring"
        return value

    @breaker
    async def bad(value: bool) -> bool:
        "Docstring"
        raise NotImplementedError

    assert (good.__doc__, bad.__doc__) == ("Docstring", "Docstring")
    assert (good.__name__, bad.__name__) == ("good", "bad")
    with pytest.raises(NotImplementedError):
        await bad(True)
    assert fail_counter(breaker) == 1
    assert await good(True) is True
    assert fail_counter(breaker) == 0


# pybreaker: test_name (the getter half): the name is shown in errors, transitions, stats
def test_the_name_is_kept_and_shown_everywhere(memory: Backing) -> None:
    seen: list[Transition] = []
    breaker = memory.breaker(name="test_breaker", fail_max=1, listeners=[seen.append])
    assert breaker.name == "test_breaker"
    fail_times(breaker, 1)
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(suc)
    assert (info.value.name, seen[0].name, breaker.stats.name) == ("test_breaker",) * 3
    assert "test_breaker" in repr(breaker)


# pybreaker: test_name (the setter half). Ours is read-only: errors, transitions, logs,
# stats and the shared state all carry the name the breaker was built with.
def test_a_breaker_name_is_read_only(memory: Backing) -> None:
    seen: list[Transition] = []
    breaker = memory.breaker(name="test_breaker", fail_max=1, listeners=[seen.append])
    with pytest.raises(AttributeError):
        breaker.name = "breaker_test"  # type: ignore[misc]
    fail_times(breaker, 1)
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(suc)
    assert (info.value.name, seen[0].name, breaker.stats.name) == ("test_breaker",) * 3


# pybreaker: test_generator, with test_excluded_exceptions' exclude=[LookupError] written
# as ignored_types=(LookupError,). docs/breaker.md (Faces) and the decorator's docstring:
# "a consumer that stops early (break, close()) counts for nothing and gives a half-open
# permit back" - with no condition on ignored_types.
def test_a_stream_closed_early_counts_nothing_whatever_the_ignored_types(
    clock: ManualClock,
) -> None:
    config = CircuitBreakerConfig(
        failure_threshold=1, success_threshold=1, timeout=1.0, ignored_types=(LookupError,)
    )
    breaker = CircuitBreaker("pybreaker", config, clock=clock)

    @breaker
    def prices() -> Generator[float, None, None]:
        yield from (1.0, 2.0, 3.0)

    fail_times(breaker, 1)
    clock.advance(1.0)
    stream = prices()
    assert next(stream) == 1.0  # the probe
    stream.close()
    stats = breaker.stats
    assert (stats.state, stats.successes, stats.ignored) == ("half_open", 0, 1)


# -- Redis (pybreaker's CircuitBreakerRedisTestCase and storage tests) -------------------


# pybreaker: test_namespace. Differs on purpose: counters stay in the process; only an
# opening (and a probe lease) is written, under the prefix, with the name hash-tagged.
def test_shared_keys_live_under_the_prefix_and_only_an_opening_writes(
    redis_url: str, redis_client: redis.Redis, clock: ManualClock
) -> None:
    shared = RedisBreakerState(redis_url, prefix="my_app:")
    try:
        backing = Backing(clock, shared)
        breaker = backing.breaker(fail_max=3)
        fail_times(breaker, 1)
        assert redis_client.keys() == []
        fail_times(breaker, 2)
        assert redis_client.keys() == [b"my_app:{pybreaker}:open"]
        assert 59_000 < redis_client.pttl("my_app:{pybreaker}:open") <= 60_000
    finally:
        shared.close()


# pybreaker: test_fallback_state. Differs on purpose: there is no fallback state; with
# Redis unreachable the local breaker decides alone (closed, and it still trips).
def test_with_redis_down_the_local_breaker_decides(
    fault_redis: RedisServer, clock: ManualClock
) -> None:
    shared = RedisBreakerState(fault_redis.url, clock=clock)
    try:
        breaker = Backing(clock, shared).breaker(fail_max=3)
        fault_redis.kill()
        assert breaker.state is CLOSED
        assert breaker.call(suc) is True
        fail_times(breaker, 3)
        assert breaker.state is OPEN
        assert shared.stats.errors >= 1
    finally:
        shared.close()


# pybreaker: test_missing_state. Differs on purpose: a missing shared opening makes no
# state of its own; each process keeps its local open time, then probes.
def test_a_missing_shared_opening_leaves_each_process_to_its_own_open_time(
    on_redis: Backing,
) -> None:
    assert on_redis.client is not None
    first = on_redis.breaker(fail_max=1, success_threshold=1)
    second = on_redis.breaker(fail_max=3, success_threshold=1)
    fail_times(first, 1)
    fail_times(second, 1)  # learns the opening from Redis
    assert second.state is OPEN
    on_redis.client.flushall()  # the shared state is gone
    with pytest.raises(CircuitOpenError):
        second.call(suc)
    on_redis.clock.advance(60.0)
    assert second.call(suc) is True
    assert second.state is CLOSED


# pybreaker: test_default_state (on Redis). Differs on purpose: a breaker joining an
# open shared circuit starts closed and learns of the opening at its first failure.
def test_a_breaker_joining_an_open_shared_circuit_opens_at_its_first_failure(
    on_redis: Backing,
) -> None:
    fail_times(on_redis.breaker(fail_max=1), 1)  # another process trips
    seen: list[Transition] = []
    joining = on_redis.breaker(listeners=[seen.append])
    assert joining.state is CLOSED
    assert joining.call(suc) is True  # a closed success never asks Redis
    fail_times(joining, 1)
    assert joining.state is OPEN
    assert moves(seen) == [(CLOSED, OPEN, "opened elsewhere")]
    with pytest.raises(CircuitOpenError) as info:
        joining.call(suc)
    assert 50.0 < info.value.retry_after <= 60.0


# pybreaker: test_failure_count_not_reset_during_creation,
# test_state_opened_at_not_reset_during_creation
def test_building_a_breaker_leaves_the_shared_opening_alone(
    on_redis: Backing, redis_client: redis.Redis
) -> None:
    fail_times(on_redis.breaker(fail_max=1), 1)
    ttl = redis_client.pttl("argo_perf:breaker:{pybreaker}:open")
    before = commands(redis_client)
    joining = on_redis.breaker()
    assert joining.state is CLOSED
    assert commands(redis_client) == before
    assert 0 < redis_client.pttl("argo_perf:breaker:{pybreaker}:open") <= ttl


# pybreaker: test_close, on CircuitRedisStorage (where close() closes the shared state).
# docs/breaker.md: "reset() closes and clears the rules' counters"; a failure then
# starts a new run of failure_threshold.
def test_a_reset_shared_breaker_needs_fail_max_failures_to_open_again(
    on_redis: Backing,
) -> None:
    seen: list[Transition] = []
    breaker = on_redis.breaker(fail_max=3, listeners=[seen.append])
    fail_times(breaker, 3)
    breaker.reset()
    assert breaker.state is CLOSED
    assert fail_counter(breaker) == 0
    fail_times(breaker, 1)
    assert breaker.state is CLOSED, moves(seen)[-1]


# -- threads (pybreaker's CircuitBreakerThreadsTestCase and its Redis twin) ----------------


class SpecificError(Exception):
    pass


# pybreaker: test_fail_thread_safety (both: memory and Redis)
def test_failures_from_many_threads_are_all_counted(backing: Backing) -> None:
    breaker = backing.breaker(fail_max=3000, reset_timeout=1.0)

    @breaker
    def failing() -> None:
        raise SpecificError

    def trigger_error() -> None:
        for _ in range(500):
            with pytest.raises(SpecificError):
                failing()

    run_threads(trigger_error, 3)
    stats = breaker.stats
    assert (stats.state, stats.failures, stats.consecutive_failures) == ("closed", 1500, 1500)


# pybreaker: test_success_thread_safety. As documented, successes on the closed fast
# path are counted without a lock: under contention stats may miss a few, never add.
def test_successes_from_many_threads_all_run_and_never_open(memory: Backing) -> None:
    breaker = memory.breaker(fail_max=3000, reset_timeout=1.0)
    ran: list[int] = []

    @breaker
    def succeeding() -> bool:
        ran.append(1)  # list.append is atomic
        return True

    def trigger_success() -> None:
        for _ in range(500):
            assert succeeding() is True

    run_threads(trigger_success, 3)
    stats = breaker.stats
    assert len(ran) == 1500
    assert stats.state == "closed"
    assert (stats.failures, stats.rejections) == (0, 0)
    assert 0 < stats.successes <= 1500


# pybreaker: test_success_thread_safety (Redis). Ours: closed successes never touch Redis.
def test_shared_successes_from_many_threads_never_touch_redis(
    on_redis: Backing, redis_client: redis.Redis
) -> None:
    breaker = on_redis.breaker(fail_max=3000)

    @breaker
    def succeeding() -> bool:
        return True

    def trigger_success() -> None:
        for _ in range(500):
            succeeding()

    before = commands(redis_client)
    run_threads(trigger_success, 3)
    assert commands(redis_client) == before
    assert breaker.state is CLOSED


# pybreaker: test_half_open_thread_safety. The trial call holds its permit until the
# four other threads have been turned away.
def test_half_open_lets_one_trial_call_through_across_threads(memory: Backing) -> None:
    seen: list[Transition] = []
    breaker = memory.breaker(fail_max=1, reset_timeout=0.01, listeners=[seen.append])
    fail_times(breaker, 1)
    memory.clock.advance(0.01)
    start = threading.Barrier(5)
    entered, release = threading.Event(), threading.Event()
    rejected = threading.Semaphore(0)
    ran: list[int] = []

    @breaker
    def trial() -> None:
        ran.append(1)
        entered.set()
        release.wait(WAIT)
        raise SpecificError

    def trigger_failure() -> None:
        start.wait(WAIT)
        try:
            trial()
        except CircuitOpenError:
            rejected.release()
        except SpecificError:
            pass

    threads = [threading.Thread(target=trigger_failure) for _ in range(5)]
    for thread in threads:
        thread.start()
    try:
        assert entered.wait(WAIT)
        for _ in range(4):
            assert rejected.acquire(timeout=WAIT)
    finally:
        release.set()
        for thread in threads:
            thread.join()
    assert ran == [1]
    assert [t.new for t in seen].count(HALF_OPEN) == 1
    assert breaker.state is OPEN


# pybreaker: test_half_open_thread_safety (its Redis twin; pybreaker's builds a memory
# breaker there). Ours: two processes in half-open run one trial call between them.
def test_two_processes_in_half_open_run_one_trial_call_between_them(on_redis: Backing) -> None:
    processes = [on_redis.breaker(fail_max=1, success_threshold=1) for _ in range(2)]
    for breaker in processes:
        fail_times(breaker, 1)
    on_redis.open_time_passes(60.0)
    start = threading.Barrier(4)
    entered, release = threading.Event(), threading.Event()
    rejected = threading.Semaphore(0)
    ran: list[int] = []

    def trial() -> bool:
        ran.append(1)
        entered.set()
        release.wait(WAIT)
        return True

    def caller(breaker: CircuitBreaker) -> Callable[[], None]:
        def call() -> None:
            start.wait(WAIT)
            try:
                breaker.call(trial)
            except CircuitOpenError:
                rejected.release()

        return call

    threads = [threading.Thread(target=caller(b)) for b in processes for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        assert entered.wait(WAIT)
        for _ in range(3):
            assert rejected.acquire(timeout=WAIT)
    finally:
        release.set()
        for thread in threads:
            thread.join()
    assert ran == [1]
    assert sorted(b.state.value for b in processes) == ["closed", "open"]


# pybreaker: test_fail_max_thread_safety. A run can end only once: the circuit opens
# exactly at fail_max; calls that were in flight then are counted as stale.
def test_failures_from_many_threads_open_the_circuit_once_at_fail_max(memory: Backing) -> None:
    breaker = memory.breaker(fail_max=3000, reset_timeout=1.0)
    ran: list[int] = []

    @breaker
    def failing() -> None:
        ran.append(1)
        raise SpecificError

    def trigger_error() -> None:
        for _ in range(2000):
            with suppress(SpecificError, CircuitOpenError):
                failing()

    run_threads(trigger_error, 3)
    stats = breaker.stats
    assert (stats.state, stats.opened) == ("open", 1)
    assert stats.failures == len(ran)
    assert stats.failures - stats.stale == 3000
    assert stats.rejections == 6000 - len(ran)


# pybreaker: test_fail_max_thread_safety (Redis). Differs on purpose: the failure count
# is per process (pybreaker shares it); what is shared is the opening, which each
# process adopts at its next failure. No process runs more than fail_max failures.
def test_failure_counts_are_per_process_and_an_opening_is_shared(on_redis: Backing) -> None:
    heard: list[Transition] = []
    first = on_redis.breaker(fail_max=3)
    second = on_redis.breaker(fail_max=5, listeners=[heard.append])
    fail_times(first, 2)
    fail_times(second, 2)
    assert (first.state, second.state) == (CLOSED, CLOSED)  # four failures, not pooled
    fail_times(first, 1)
    assert first.state is OPEN
    fail_times(second, 1)  # its third failure, below its own fail_max
    assert second.state is OPEN
    assert moves(heard) == [(CLOSED, OPEN, "opened elsewhere")]

    seen: list[Transition] = []
    processes = [
        on_redis.breaker(name="many", fail_max=300, listeners=[seen.append]) for _ in range(3)
    ]

    def hammer(breaker: CircuitBreaker) -> Callable[[], None]:
        def run() -> None:
            for _ in range(600):
                with suppress(NotImplementedError, CircuitOpenError):
                    breaker.call(err)

        return run

    threads = [threading.Thread(target=hammer(b)) for b in processes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for breaker in processes:
        stats = breaker.stats
        assert (stats.state, stats.opened) == ("open", 1)
        assert stats.failures - stats.stale <= 300
    reasons = [t.reason for t in seen]
    assert len(reasons) == 3
    assert "tripped" in reasons
    assert set(reasons) <= {"tripped", "opened elsewhere"}


# -- the context manager (pybreaker's CircuitBreakerContextManagerTestCase) ----------------


class CallingError(Exception):
    pass


# pybreaker: test_calling (calling() is `with breaker:`). Differs on purpose: the block
# that trips re-raises its own error; success_threshold=1 is pybreaker's default.
def test_a_with_block_trips_rejects_without_running_and_closes_after_the_open_time(
    memory: Backing,
) -> None:
    breaker = memory.breaker(fail_max=2, reset_timeout=0.01, success_threshold=1)
    ran: list[int] = []

    def do_raise() -> None:
        with breaker:
            raise CallingError

    def do_succeed() -> None:
        with breaker:
            ran.append(1)

    with pytest.raises(CallingError):
        do_raise()
    with pytest.raises(CallingError):
        do_raise()
    assert breaker.stats.failures == 2
    assert breaker.state is OPEN
    with pytest.raises(CircuitOpenError):
        do_succeed()
    assert ran == []
    memory.clock.advance(0.01)
    do_succeed()
    assert ran == [1]
    assert fail_counter(breaker) == 0
    assert breaker.state is CLOSED
