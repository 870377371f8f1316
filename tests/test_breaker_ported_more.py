"""circuitbreaker's and aiobreaker's test suites, ported onto our CircuitBreaker.

Each test states one behaviour that a peer's tests check, in our API; the comment
above it names the peer test (fabfuel/circuitbreaker: tests/test_functional.py and
tests/test_unit.py; arlyon/aiobreaker: test/test_circuit_async.py,
test/test_configuration.py, test/tests-old.py). What tests/test_breaker_ported.py
already ports from pybreaker (of which aiobreaker is a fork) is not repeated: here
aiobreaker's tests run on the asyncio faces, and circuitbreaker's on every kind of
decorated function.

The adapter: circuitbreaker parametrizes its tests over four kinds of function (sync
and async, function and generator); `of_kind` builds each around a `Dependency` (a
real small function standing in for circuitbreaker's Mock) and `resolve` runs a call
of any kind to its result. aiobreaker runs its tests on a memory and a Redis storage:
`Backing` builds a breaker in this process or shared through a real redis-server,
and `through` runs a coroutine function through one of our three asyncio faces
(``call_async``, the decorator, ``async with``). Both peers close the circuit on the
first successful trial call, so the adapter's ``success_threshold`` is 1 (ours is 2
by default; tests/test_breaker_ported.py covers that). Time is a `ManualClock`.

Not ported, having no meaning here: circuitbreaker's ``fallback_function`` (catch
`CircuitOpenError` instead), ``last_failure``, ``open_until`` as a datetime, an
exception predicate as ``expected_exception`` and aiobreaker's ``exclude`` predicates
(we classify by type only), the ``circuit()`` factory's positional arguments,
``half_open()`` (the open time passing is the way in), and aiobreaker's tests that
tests/test_breaker_ported.py already ports from pybreaker on the sync face.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol, TypeVar

import pytest
import redis

from argo_perf import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerRegistry,
    CircuitOpenError,
    CircuitState,
    ConfigError,
    ManualClock,
)
from argo_perf.breaker import Listener, RedisBreakerState, Transition

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
KINDS = ("sync-function", "sync-generator", "async-function", "async-generator")
ASYNC_FACES = ("call_async", "decorator", "async with")
WAIT = 10.0  # seconds a task waits for another before the test gives up (never asserted)
T = TypeVar("T")


# -- circuitbreaker's adapter: four kinds of function ------------------------------------


class AnyKind(Protocol):
    """A function of any of the four kinds, taking any arguments."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...


class Dependency:
    """The protected function's body: records its calls, returns a value or raises."""

    def __init__(self) -> None:
        self.value = object()
        self.error: type[Exception] | None = None
        self.calls: list[tuple[tuple[object, ...], dict[str, object]]] = []

    def __call__(self, *args: object, **kwargs: object) -> object:
        self.calls.append((args, kwargs))
        if self.error is not None:
            raise self.error("Connection refused")
        return self.value


def of_kind(kind: str, inner: Callable[..., object]) -> AnyKind:
    """circuitbreaker's function_factory: a function of ``kind`` around ``inner``."""

    def _sync(*args: object, **kwargs: object) -> object:
        return inner(*args, **kwargs)

    def _sync_gen(*args: object, **kwargs: object) -> Iterator[object]:
        yield inner(*args, **kwargs)

    async def _async(*args: object, **kwargs: object) -> object:
        return inner(*args, **kwargs)

    async def _async_gen(*args: object, **kwargs: object) -> AsyncIterator[object]:
        yield inner(*args, **kwargs)

    functions: dict[str, AnyKind] = {
        "sync-function": _sync,
        "sync-generator": _sync_gen,
        "async-function": _async,
        "async-generator": _async_gen,
    }
    return functions[kind]


async def resolve(kind: str, outcome: Any) -> Any:
    """circuitbreaker's resolve_call: the result of a call of any kind."""
    if kind == "sync-function":
        return outcome
    if kind == "sync-generator":
        return list(outcome)
    if kind == "async-function":
        return await outcome
    return [item async for item in outcome]


def result_of(kind: str, value: object) -> object:
    """What `resolve` gives for a function of ``kind`` returning (or yielding) ``value``."""
    return [value] if kind.endswith("generator") else value


def own_face(breaker: CircuitBreaker, kind: str, fn: AnyKind) -> Any:
    """A call of ``fn`` through the face our docs give its kind (circuitbreaker's
    call / call_async / call_generator / call_async_generator)."""
    if kind == "sync-function":
        return breaker.call(fn)
    if kind == "async-function":
        return breaker.call_async(fn)
    return breaker(fn)()  # streams: decorate (docs/breaker.md, Faces)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


# -- aiobreaker's adapter: storages and asyncio faces ------------------------------------


@dataclass
class Backing:
    """Where a breaker keeps its state: this process only, or shared through Redis."""

    clock: ManualClock
    shared: RedisBreakerState | None = None
    client: redis.Redis | None = None

    def breaker(
        self,
        *,
        fail_max: int = 5,  # the peers' default and ours
        timeout: float = 60.0,
        success_threshold: int = 1,  # the peers close on the first successful trial
        listeners: list[Listener] | None = None,
        name: str = "aiobreaker",
    ) -> CircuitBreaker:
        config = CircuitBreakerConfig(
            failure_threshold=fail_max, timeout=timeout, success_threshold=success_threshold
        )
        return CircuitBreaker(
            name, config, clock=self.clock, shared=self.shared, listeners=listeners or []
        )

    def open_time_passes(self, seconds: float) -> None:
        """Move time on by ``seconds``; a shared opening ends with it, as its TTL would."""
        self.clock.advance(seconds)
        if self.client is not None:
            for key in self.client.scan_iter(match="*:open"):
                self.client.delete(key)


@pytest.fixture(params=["memory", "redis"])
async def backing(request: pytest.FixtureRequest, clock: ManualClock) -> AsyncIterator[Backing]:
    """aiobreaker runs its tests on a memory and a Redis storage: so do we."""
    if request.param == "memory":
        yield Backing(clock)
        return
    url: str = request.getfixturevalue("redis_url")
    shared = RedisBreakerState(url)
    client = redis.Redis.from_url(url)
    try:
        yield Backing(clock, shared, client)
    finally:
        await shared.aclose()
        shared.close()
        client.close()


@pytest.fixture(params=ASYNC_FACES)
def face(request: pytest.FixtureRequest) -> str:
    face: str = request.param
    return face


async def through(face: str, breaker: CircuitBreaker, fn: Callable[[], Awaitable[T]]) -> T:
    """Await ``fn()`` through one of the asyncio faces."""
    if face == "call_async":
        return await breaker.call_async(fn)
    if face == "decorator":
        return await breaker(fn)()
    async with breaker:
        return await fn()


class DummyException(Exception):
    def __init__(self, val: int = 0) -> None:
        super().__init__(val)
        self.val = val


async def func_exception_async() -> NoReturn:
    raise DummyException


async def func_succeed_async() -> bool:
    return True


class Counted:
    """aiobreaker's func_succeed_counted_async."""

    def __init__(self) -> None:
        self.call_count = 0

    async def __call__(self) -> bool:
        self.call_count += 1
        return True


async def fail_times(face: str, breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        with pytest.raises(DummyException):
            await through(face, breaker, func_exception_async)


def fail_counter(breaker: CircuitBreaker) -> int:
    """The peers' ``fail_counter`` / ``failure_count`` while closed: the current run."""
    return breaker.stats.consecutive_failures


# == circuitbreaker: tests/test_functional.py (every kind of decorated function) ==========


# circuitbreaker: test_circuit_pass_through
async def test_a_decorated_function_of_every_kind_passes_its_result_through(
    kind: str, clock: ManualClock
) -> None:
    dependency = Dependency()
    decorated = CircuitBreaker("circuit_success", clock=clock)(of_kind(kind, dependency))
    assert await resolve(kind, decorated()) == result_of(kind, dependency.value)
    assert dependency.calls == [((), {})]


# circuitbreaker: test_circuitbreaker_monitor (CircuitBreakerMonitor is our registry)
async def test_the_registry_tells_open_breakers_from_closed_ones(
    kind: str, clock: ManualClock
) -> None:
    registry = CircuitBreakerRegistry(
        {
            "circuit_success": CircuitBreakerConfig(),
            "circuit_failure": CircuitBreakerConfig(failure_threshold=1),
            "threshold_1": CircuitBreakerConfig(failure_threshold=1),
            "threshold_2": CircuitBreakerConfig(failure_threshold=2, timeout=1.0),
            "threshold_3": CircuitBreakerConfig(failure_threshold=3, timeout=1.0),
        },
        clock=clock,
    )
    failing = Dependency()
    failing.error = OSError
    decorated = {name: registry[name](of_kind(kind, Dependency())) for name in registry}
    decorated["circuit_failure"] = registry["circuit_failure"](of_kind(kind, failing))
    states = [s.state for s in registry.stats.values()]
    assert (len(registry), states.count("closed"), states.count("open")) == (5, 5, 0)
    with pytest.raises(OSError, match="Connection refused"):
        await resolve(kind, decorated["circuit_failure"]())
    states = [s.state for s in registry.stats.values()]
    assert (len(registry), states.count("closed"), states.count("open")) == (5, 4, 1)
    assert registry.stats["circuit_failure"].state == "open"


# circuitbreaker: test_threshold_hit_prevents_consequent_calls
async def test_threshold_one_rejects_the_next_call_of_every_kind_without_running_it(
    kind: str, clock: ManualClock
) -> None:
    breaker = CircuitBreaker("threshold_1", CircuitBreakerConfig(failure_threshold=1), clock=clock)
    dependency = Dependency()
    dependency.error = OSError
    decorated = breaker(of_kind(kind, dependency))
    assert breaker.state is CLOSED
    with pytest.raises(OSError, match="Connection refused"):
        await resolve(kind, decorated())
    assert breaker.state is OPEN
    with pytest.raises(CircuitOpenError):
        await resolve(kind, decorated())
    assert dependency.calls == [((), {})]


# circuitbreaker: test_circuitbreaker_recover_half_open. Differs on purpose: our run of
# failures ends when the circuit opens (circuitbreaker's failure_count stays at 3), so
# circuitbreaker's failure_count is our stats.failures here.
async def test_every_kind_recovers_to_half_open_and_a_failed_probe_reopens(
    kind: str, backing: Backing
) -> None:
    breaker = backing.breaker(fail_max=3, timeout=1.0, name="threshold_3")
    dependency = Dependency()
    decorated = breaker(of_kind(kind, dependency))
    assert breaker.state is CLOSED
    assert await resolve(kind, decorated()) == result_of(kind, dependency.value)
    dependency.error = OSError
    for failures in (1, 2):
        with pytest.raises(OSError, match="Connection refused"):
            await resolve(kind, decorated())
        assert breaker.state is CLOSED
        assert fail_counter(breaker) == failures
    with pytest.raises(OSError, match="Connection refused"):
        await resolve(kind, decorated())
    assert breaker.state is OPEN
    assert breaker.stats.failures == 3
    assert 0 < breaker.stats.retry_after <= 1
    for _ in range(2):
        with pytest.raises(CircuitOpenError):
            await resolve(kind, decorated())
        assert breaker.state is OPEN
        assert breaker.stats.failures == 3
        assert 0 < breaker.stats.retry_after <= 1
    backing.open_time_passes(1.0)
    assert breaker.state is HALF_OPEN
    assert breaker.stats.retry_after == 0.0
    with pytest.raises(
        OSError, match="Connection refused"
    ):  # the probe runs and fails with its own error
        await resolve(kind, decorated())
    assert breaker.state is OPEN
    assert breaker.stats.failures == 4
    assert 0 < breaker.stats.retry_after <= 1
    with pytest.raises(CircuitOpenError):
        await resolve(kind, decorated())
    assert len(dependency.calls) == 5


# circuitbreaker: test_circuitbreaker_reopens_after_successful_calls
async def test_every_kind_closes_after_a_successful_probe_and_stays_closed(
    kind: str, backing: Backing
) -> None:
    breaker = backing.breaker(fail_max=2, timeout=1.0, name="threshold_2")
    dependency = Dependency()
    decorated = breaker(of_kind(kind, dependency))
    assert breaker.name == "threshold_2"
    assert (breaker.state, fail_counter(breaker)) == (CLOSED, 0)
    assert await resolve(kind, decorated())
    dependency.error = OSError
    with pytest.raises(OSError, match="Connection refused"):
        await resolve(kind, decorated())
    assert (breaker.state, fail_counter(breaker)) == (CLOSED, 1)
    with pytest.raises(OSError, match="Connection refused"):
        await resolve(kind, decorated())
    assert (breaker.state, breaker.stats.failures) == (OPEN, 2)
    assert 0 < breaker.stats.retry_after <= 1
    with pytest.raises(CircuitOpenError):
        await resolve(kind, decorated())
    dependency.error = None  # the dependency is back, but the open time is not over
    with pytest.raises(CircuitOpenError):
        await resolve(kind, decorated())
    assert (breaker.state, breaker.stats.failures) == (OPEN, 2)
    backing.open_time_passes(1.0)
    assert breaker.state is HALF_OPEN
    assert breaker.stats.failures == 2
    assert await resolve(kind, decorated()) == result_of(kind, dependency.value)
    assert (breaker.state, fail_counter(breaker)) == (CLOSED, 0)
    for _ in range(3):
        assert await resolve(kind, decorated()) == result_of(kind, dependency.value)
    assert breaker.state is CLOSED
    assert len(dependency.calls) == 7


# == circuitbreaker: tests/test_unit.py ===================================================


# circuitbreaker: test_circuitbreaker_unnamed__str__. Differs on purpose: a breaker has
# no default name (circuitbreaker takes the function's __qualname__); decorating a
# function does not rename it.
def test_a_breaker_needs_a_name_and_decorating_keeps_it(clock: ManualClock) -> None:
    with pytest.raises(ConfigError, match="name"):
        CircuitBreaker("", clock=clock)
    breaker = CircuitBreaker("Foobar", clock=clock)

    @breaker
    def fetch() -> bool:
        return True

    assert breaker.name == "Foobar"
    assert "'Foobar'" in str(breaker)


# circuitbreaker: test_circuitbreaker_error__str__. Differs on purpose: the message
# names the circuit and the time left; it carries no failure count or last failure.
def test_a_rejection_message_names_the_circuit_and_the_time_left(clock: ManualClock) -> None:
    config = CircuitBreakerConfig(failure_threshold=1, timeout=30.0)
    breaker = CircuitBreaker("Foobar", config, clock=clock)
    with pytest.raises(OSError, match="Connection refused"):
        breaker.call(_raise, OSError("Connection refused"))
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(_raise, OSError("Connection refused"))
    text = str(info.value)
    assert text.startswith("circuit 'Foobar' is open")
    assert "30.000s" in text


# circuitbreaker: test_circuitbreaker_wrapper_matches_function_type
def test_the_wrapper_is_a_function_of_the_same_kind(kind: str, clock: ManualClock) -> None:
    function = of_kind(kind, Dependency())
    wrapper = CircuitBreaker("Foobar", clock=clock)(function)
    is_async, is_generator = kind.startswith("async-"), kind.endswith("-generator")
    assert (
        inspect.isgeneratorfunction(function)
        == inspect.isgeneratorfunction(wrapper)
        == (not is_async and is_generator)
    )
    assert (
        inspect.iscoroutinefunction(function)
        == inspect.iscoroutinefunction(wrapper)
        == (is_async and not is_generator)
    )
    assert (
        inspect.isasyncgenfunction(function)
        == inspect.isasyncgenfunction(wrapper)
        == (is_async and is_generator)
    )


# circuitbreaker: test_circuitbreaker_should_save_last_exception_on_failure_call (we keep
# no last failure: the failure is counted, and the caller gets the very error raised)
async def test_the_face_of_each_kind_counts_its_failure_and_reraises_it(
    kind: str, clock: ManualClock
) -> None:
    breaker = CircuitBreaker("Foobar", clock=clock)
    raised: list[BaseException] = []

    def inner() -> NoReturn:
        error = OSError("Connection refused")
        raised.append(error)
        raise error

    with pytest.raises(OSError, match="Connection refused") as info:
        await resolve(kind, own_face(breaker, kind, of_kind(kind, inner)))
    assert info.value is raised[0]
    assert (breaker.stats.failures, fail_counter(breaker)) == (1, 1)


# circuitbreaker: test_circuitbreaker_should_save_last_exception_on_failure_call, through
# call_generator. Differs on purpose (docs/breaker.md, Faces): breaker.call(gen_fn)
# judges only the creation of the generator object; decorate a stream instead.
def test_call_on_a_generator_function_judges_only_its_creation(clock: ManualClock) -> None:
    breaker = CircuitBreaker("Foobar", clock=clock)
    stream = breaker.call(of_kind("sync-generator", _raise), OSError("Connection refused"))
    assert inspect.isgenerator(stream)
    with pytest.raises(OSError, match="Connection refused"):
        list(stream)
    stats = breaker.stats
    assert (stats.calls, stats.successes, stats.failures) == (1, 1, 0)


# circuitbreaker: test_circuitbreaker_should_clear_last_exception_on_success_call (a
# success clears the run of failures, through each kind's face)
async def test_a_success_through_the_face_of_each_kind_clears_the_run_of_failures(
    kind: str, clock: ManualClock
) -> None:
    breaker = CircuitBreaker("Foobar", clock=clock)
    dependency = Dependency()
    dependency.error = OSError
    with pytest.raises(OSError, match="Connection refused"):
        await resolve(kind, own_face(breaker, kind, of_kind(kind, dependency)))
    assert fail_counter(breaker) == 1
    dependency.error = None
    result = await resolve(kind, own_face(breaker, kind, of_kind(kind, dependency)))
    assert result == result_of(kind, dependency.value)
    assert fail_counter(breaker) == 0


# circuitbreaker: test_circuitbreaker_should_not_call_function_if_open (it patches
# `opened` to True: our force_open). No fallback: the caller gets CircuitOpenError,
# and no part of the function runs, not even a generator's code before its first yield.
async def test_a_forced_open_circuit_runs_no_kind_of_function(
    kind: str, clock: ManualClock
) -> None:
    breaker = CircuitBreaker("WithFallback", clock=clock)
    dependency = Dependency()
    decorated = breaker(of_kind(kind, dependency))
    breaker.force_open()
    with pytest.raises(CircuitOpenError) as info:
        await resolve(kind, decorated("test2", test="test"))
    assert info.value.retry_after == float("inf")
    assert dependency.calls == []
    breaker.reset()
    await resolve(kind, decorated("test2", test="test"))
    assert dependency.calls == [(("test2",), {"test": "test"})]


class FooError(Exception):
    def __init__(self, val: int | None = None) -> None:
        super().__init__(val)
        self.val = val


class BarError(Exception):
    pass


def _raise(error: BaseException) -> NoReturn:
    raise error


# circuitbreaker: test_circuit_decorator_with_args, test_breaker_expected_exception_is_
# custom_exception, test_breaker_constructor_expected_exception_is_exception_list,
# test_breaker_default_constructor_traps_Exception (failure_types is expected_exception;
# an error outside it counts as a success, as circuitbreaker's reset() does)
@pytest.mark.parametrize(
    ("failure_types", "failing", "not_failing"),
    [
        ((KeyError,), [KeyError()], [Exception(), FooError()]),
        ((FooError,), [FooError()], [Exception()]),
        ((FooError, BarError), [FooError(), BarError()], [Exception()]),
        ((Exception,), [Exception(), FooError()], []),
    ],
)
def test_failure_types_name_the_errors_that_count_as_failures(
    failure_types: tuple[type[Exception], ...],
    failing: list[Exception],
    not_failing: list[Exception],
    clock: ManualClock,
) -> None:
    config = CircuitBreakerConfig(failure_threshold=10, failure_types=failure_types)
    breaker = CircuitBreaker("foobar", config, clock=clock)
    for error in failing:
        with pytest.raises(type(error)):
            breaker.call(_raise, error)
        assert fail_counter(breaker) == 1
        breaker.call(len, "")
    for error in not_failing:
        with pytest.raises(type(error)):
            breaker.call(_raise, error)
        assert fail_counter(breaker) == 0
    stats = breaker.stats
    assert (stats.failures, stats.successes) == (len(failing), len(failing) + len(not_failing))


# circuitbreaker: test_constructor_mistake_name_bytes, test_constructor_mistake_name_unicode
@pytest.mark.parametrize("mistake", [b"foobar", "foobar"])
def test_a_string_as_failure_types_is_refused(mistake: object) -> None:
    with pytest.raises(ConfigError, match="failure_types"):
        CircuitBreakerConfig(failure_types=mistake)  # type: ignore[arg-type]


class Widget:
    pass


# circuitbreaker: test_constructor_mistake_expected_exception. Differs on purpose: a lone
# exception type must be given in a tuple too (circuitbreaker takes it bare).
@pytest.mark.parametrize("mistake", [Widget, (Widget,), FooError, [FooError]])
def test_failure_types_that_are_not_a_tuple_of_exception_types_are_refused(
    mistake: object,
) -> None:
    with pytest.raises(ConfigError, match="failure_types"):
        CircuitBreakerConfig(failure_types=mistake)  # type: ignore[arg-type]


# circuitbreaker: test_advanced_usage_circuitbreaker_subclass, ..._subclass_with_list,
# ..._default_expected_exception (a subclass's class-level defaults are a registry's
# default configuration here; the other fields keep our defaults)
def test_a_registry_default_configuration_serves_every_name(clock: ManualClock) -> None:
    nervous = dataclasses.replace(
        CircuitBreakerConfig(), failure_threshold=1, failure_types=(FooError, BarError)
    )
    registry = CircuitBreakerRegistry(default=nervous, clock=clock)
    for name in ("my", "mine"):
        breaker = registry[name]
        assert breaker.config == nervous
        assert breaker.config.timeout == CircuitBreakerConfig().timeout
        with pytest.raises(Exception):  # noqa: B017, PT011 - the plain Exception itself
            breaker.call(_raise, Exception())
        assert breaker.state is CLOSED
        with pytest.raises(BarError):
            breaker.call(_raise, BarError())
        assert breaker.state is OPEN


# == aiobreaker: test/test_circuit_async.py (every asyncio face, memory and Redis) =========


# aiobreaker: test_successful_call_async
async def test_async_a_successful_call_keeps_the_circuit_closed(
    face: str, backing: Backing
) -> None:
    breaker = backing.breaker()
    assert await through(face, breaker, func_succeed_async) is True
    assert fail_counter(breaker) == 0
    assert breaker.state is CLOSED


# aiobreaker: test_one_failed_call (async)
async def test_async_one_failed_call_is_counted_and_keeps_the_circuit_closed(
    face: str, backing: Backing
) -> None:
    breaker = backing.breaker()
    await fail_times(face, breaker, 1)
    assert fail_counter(breaker) == 1
    assert breaker.state is CLOSED


# aiobreaker: test_one_successful_call_after_failed_call (async)
async def test_async_a_success_after_a_failure_clears_the_failure_count(
    face: str, backing: Backing
) -> None:
    breaker = backing.breaker()
    await fail_times(face, breaker, 1)
    assert fail_counter(breaker) == 1
    assert await through(face, breaker, func_succeed_async) is True
    assert fail_counter(breaker) == 0
    assert breaker.state is CLOSED


# aiobreaker: test_several_failed_calls (async). Differs on purpose: the call that trips
# re-raises its own error (aiobreaker raises CircuitBreakerError from it).
async def test_async_the_failure_that_reaches_fail_max_opens_and_reraises_its_own_error(
    face: str, backing: Backing
) -> None:
    breaker = backing.breaker(fail_max=3)
    await fail_times(face, breaker, 3)
    assert breaker.stats.failures == 3
    assert breaker.state is OPEN
    with pytest.raises(CircuitOpenError):
        await through(face, breaker, func_exception_async)


# aiobreaker: test_failed_call_after_timeout (async). The failed probe re-raises its own
# error (aiobreaker raises CircuitBreakerError).
async def test_async_a_failed_probe_after_the_open_time_reopens_the_circuit(
    face: str, backing: Backing
) -> None:
    breaker = backing.breaker(fail_max=3, timeout=1.0)
    await fail_times(face, breaker, 2)
    assert breaker.state is CLOSED
    await fail_times(face, breaker, 1)
    assert breaker.stats.failures == 3
    backing.open_time_passes(2.0)
    await fail_times(face, breaker, 1)
    assert breaker.stats.failures == 4
    assert breaker.state is OPEN


# aiobreaker: test_successful_after_timeout (async)
async def test_async_a_successful_probe_closes_the_circuit_and_runs_only_once(
    face: str, backing: Backing
) -> None:
    breaker = backing.breaker(fail_max=3, timeout=1.0)
    counted = Counted()
    await fail_times(face, breaker, 2)
    assert breaker.state is CLOSED
    await fail_times(face, breaker, 1)
    assert breaker.state is OPEN
    with pytest.raises(CircuitOpenError):
        await through(face, breaker, counted)
    assert breaker.stats.failures == 3
    backing.open_time_passes(2.0)
    assert await through(face, breaker, counted) is True
    assert fail_counter(breaker) == 0
    assert breaker.state is CLOSED
    assert counted.call_count == 1


# aiobreaker: test_successful_after_wait (its time_until_open is our retry_after). The
# tripping call re-raises its own error; the next one carries the time to wait.
async def test_async_waiting_the_rejections_retry_after_is_enough_to_be_admitted(
    face: str, backing: Backing
) -> None:
    breaker = backing.breaker(fail_max=1, timeout=1.0)
    counted = Counted()
    await fail_times(face, breaker, 1)
    with pytest.raises(CircuitOpenError) as info:
        await through(face, breaker, counted)
    assert info.value.retry_after == pytest.approx(1.0)
    backing.open_time_passes(info.value.retry_after)
    assert await through(face, breaker, counted) is True
    assert counted.call_count == 1


# aiobreaker: test_failed_call_when_half_open (async; the open time passing is our
# half_open(), and the failed probe re-raises its own error)
async def test_async_a_failed_call_in_half_open_reopens_the_circuit(
    face: str, backing: Backing
) -> None:
    breaker = backing.breaker()
    await fail_times(face, breaker, 5)
    backing.open_time_passes(60.0)
    assert breaker.state is HALF_OPEN
    assert fail_counter(breaker) == 0
    await fail_times(face, breaker, 1)
    assert breaker.stats.failures == 6
    assert breaker.state is OPEN


# aiobreaker: test_successful_call_when_half_open (async)
async def test_async_a_successful_call_in_half_open_closes_the_circuit(
    face: str, backing: Backing
) -> None:
    breaker = backing.breaker()
    await fail_times(face, breaker, 5)
    backing.open_time_passes(60.0)
    assert breaker.state is HALF_OPEN
    assert await through(face, breaker, func_succeed_async) is True
    assert fail_counter(breaker) == 0
    assert breaker.state is CLOSED


# aiobreaker: test_close (async; open() and close() are force_open() and reset())
async def test_async_a_forced_open_circuit_rejects_until_reset(face: str, backing: Backing) -> None:
    breaker = backing.breaker(fail_max=3)
    counted = Counted()
    breaker.force_open()
    assert (breaker.state, fail_counter(breaker)) == (OPEN, 0)
    with pytest.raises(CircuitOpenError) as info:
        await through(face, breaker, counted)
    assert info.value.retry_after == float("inf")
    breaker.reset()
    assert (breaker.state, fail_counter(breaker)) == (CLOSED, 0)
    assert await through(face, breaker, counted) is True
    assert counted.call_count == 1


# aiobreaker: test_generator (in test_circuit_async.py), on an async generator: a value
# sent in, an error raised after it is a failure; a stream run to the end a success.
async def test_an_error_raised_after_asend_is_a_failure_and_a_full_stream_a_success(
    backing: Backing,
) -> None:
    breaker = backing.breaker()

    @breaker
    async def func_succeed() -> AsyncGenerator[bool, int]:
        """Docstring"""
        yield True

    @breaker
    async def func_exception() -> AsyncGenerator[bool, int]:
        """Docstring"""
        x = yield True
        raise DummyException(x)

    s = func_succeed()
    e = func_exception()
    assert await e.__anext__() is True
    with pytest.raises(DummyException) as info:
        await e.asend(7)
    assert info.value.val == 7
    assert fail_counter(breaker) == 1
    assert await s.__anext__() is True
    with pytest.raises(StopAsyncIteration):
        await s.__anext__()
    assert fail_counter(breaker) == 0
    assert func_succeed.__doc__ == "Docstring"


# == aiobreaker: test/tests-old.py, the concurrency tests, with tasks ======================


# aiobreaker: test_half_open_thread_safety, with asyncio tasks instead of threads: the
# trial call holds its permit (and, shared, the probe lease) while the others are
# turned away.
async def test_half_open_lets_one_trial_call_through_among_concurrent_tasks(
    face: str, backing: Backing
) -> None:
    seen: list[Transition] = []
    breaker = backing.breaker(fail_max=1, timeout=0.01, listeners=[seen.append])
    await fail_times(face, breaker, 1)
    backing.open_time_passes(0.01)
    release = asyncio.Event()
    ran: list[int] = []

    async def trial() -> NoReturn:
        ran.append(1)
        await release.wait()
        raise DummyException

    turned_away: list[object] = []
    four_turned_away = asyncio.Event()

    def done(task: asyncio.Task[NoReturn]) -> None:
        turned_away.append(task)
        if len(turned_away) == 4:
            four_turned_away.set()

    tasks = [asyncio.create_task(through(face, breaker, trial)) for _ in range(5)]
    for task in tasks:
        task.add_done_callback(done)
    try:
        await asyncio.wait_for(four_turned_away.wait(), WAIT)
    finally:
        release.set()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert sum(isinstance(o, CircuitOpenError) for o in outcomes) == 4
    assert sum(isinstance(o, DummyException) for o in outcomes) == 1
    assert ran == [1]
    assert [t.new for t in seen].count(HALF_OPEN) == 1
    assert breaker.state is OPEN


# aiobreaker: test_fail_max_thread_safety, with asyncio tasks: calls in flight when the
# circuit opens are counted as stale; the circuit opens once, at exactly fail_max.
async def test_failures_from_concurrent_tasks_open_the_circuit_once_at_fail_max(
    face: str, backing: Backing
) -> None:
    breaker = backing.breaker()
    ran: list[int] = []

    async def err() -> NoReturn:
        ran.append(1)
        await asyncio.sleep(0)
        raise DummyException

    async def trigger_error() -> None:
        for _ in range(20):
            with suppress(DummyException, CircuitOpenError):
                await through(face, breaker, err)

    await asyncio.gather(*(trigger_error() for _ in range(3)))
    stats = breaker.stats
    assert (stats.state, stats.opened) == ("open", 1)
    assert stats.failures == len(ran)
    assert stats.failures - stats.stale == 5
    assert stats.rejections == 60 - len(ran)


# == aiobreaker: test/test_configuration.py, the decorator ================================


# aiobreaker: test_decorator_arguments. Differs on purpose: our decorator takes no
# arguments (there is no ignore_on_call); `@breaker()` is a TypeError.
def test_the_decorator_takes_no_arguments(clock: ManualClock) -> None:
    breaker = CircuitBreaker("aiobreaker", clock=clock)
    with pytest.raises(TypeError):
        breaker()  # type: ignore[call-overload]


# aiobreaker: test_decorator_positional_arguments (`@breaker(True)` raises TypeError).
def test_decorating_something_that_is_not_callable_is_refused(clock: ManualClock) -> None:
    breaker = CircuitBreaker("aiobreaker", clock=clock)
    with pytest.raises((TypeError, ConfigError)):
        breaker(True)  # type: ignore[call-overload]


# aiobreaker: test_double_count (calling a decorated function through call)
@pytest.mark.parametrize("via", ["call", "call_async"])
async def test_calling_a_decorated_function_through_call_counts_one_failure(
    via: str, clock: ManualClock
) -> None:
    breaker = CircuitBreaker("aiobreaker", clock=clock)

    @breaker
    def err() -> None:  # NoReturn would match the decorator's coroutine overload
        raise DummyException

    @breaker
    async def aerr() -> NoReturn:
        raise DummyException

    assert fail_counter(breaker) == 0
    if via == "call":
        with pytest.raises(DummyException):
            breaker.call(err)
    else:
        with pytest.raises(DummyException):
            await breaker.call_async(aerr)
    assert fail_counter(breaker) == 1
    assert breaker.stats.calls == 1


# aiobreaker: test_double_count, in half-open: the outer call holds the only probe
# permit, so the inner one is rejected, and that rejection fails the probe.
@pytest.mark.parametrize("via", ["call", "call_async", "with", "async with"])
async def test_a_decorated_function_called_through_its_breaker_can_probe_and_close(
    via: str, clock: ManualClock
) -> None:
    config = CircuitBreakerConfig(failure_threshold=1, success_threshold=1, timeout=1.0)
    breaker = CircuitBreaker("aiobreaker", config, clock=clock)

    @breaker
    def suc() -> bool:
        return True

    @breaker
    async def asuc() -> bool:
        return True

    with pytest.raises(DummyException):
        breaker.call(_raise, DummyException())
    clock.advance(1.0)
    if via == "call":
        assert breaker.call(suc) is True
    elif via == "call_async":
        assert await breaker.call_async(asuc) is True
    elif via == "with":
        with breaker:
            assert suc() is True
    else:
        async with breaker:
            assert await asuc() is True
    assert breaker.state is CLOSED
