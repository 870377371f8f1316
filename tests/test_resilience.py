"""resilient: the order of the layers, retries, stale values and fallbacks, outcomes, both faces."""

from __future__ import annotations

import asyncio
import contextlib
import doctest
import inspect
import itertools
import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tenacity import (
    AsyncRetrying,
    Retrying,
    TryAgain,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    wait_fixed,
)

from argo_perf import (
    AsyncRedisCache,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    CircuitState,
    ConfigError,
    ManualClock,
    RateLimitConfig,
    RateLimiter,
    RateLimitExceeded,
    RedisCache,
    RedisTokenBucket,
    ResilientResult,
    TokenBucket,
    resilience,
    resilient,
)
from argo_perf.resilience import DEFAULT_MAX_WAIT, Resilience
from argo_perf.resilience import _decorator as resilience_decorator
from argo_perf.resilience import _result as resilience_result
from argo_perf.resilience import _retry as retry_module

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


class VendorDown(Exception):
    pass


class TooManyRequests(Exception):
    """A vendor's 429, carrying its Retry-After in seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"retry after {retry_after}")
        self.retry_after = retry_after


class Recording:
    """A recorder of our own that satisfies the `Recorder` protocol."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, float | None]] = []
        self.tracked: list[tuple[str, Any, Any, Any]] = []

    def record_request(self, source: str, outcome: str, seconds: float | None = None) -> None:
        self.requests.append((source, outcome, seconds))

    def track(
        self, source: str, *, cache: Any = None, bucket: Any = None, breaker: Any = None
    ) -> None:
        self.tracked.append((source, cache, bucket, breaker))

    @property
    def outcomes(self) -> list[str]:
        return [outcome for _, outcome, _ in self.requests]


def next_answer(answers: list[Any]) -> float:
    """The scripted vendor's next answer: an exception is raised, a number returned."""
    answer = answers.pop(0)
    if isinstance(answer, Exception):
        raise answer
    return float(answer)


def in_thread(fn: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    """Run ``fn`` in a started thread; what it raises is collected in the list."""
    caught: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            caught.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, caught


def fixed(attempts: int, seconds: float = 1.0) -> Retrying:
    return Retrying(stop=stop_after_attempt(attempts), wait=wait_fixed(seconds))


async def _until_sleeping(clock: ManualClock) -> None:
    """Let the event loop run until a task sleeps on ``clock``."""
    for _ in range(5000):
        if clock.sleepers:
            return
        await asyncio.sleep(0.001)
    raise AssertionError("nothing started sleeping")


def _until_sleeping_sync(clock: ManualClock) -> None:
    """Wait until a thread sleeps on ``clock``."""
    for _ in range(5000):
        if clock.sleepers:
            return
        threading.Event().wait(0.001)
    raise AssertionError("nothing started sleeping")


@pytest.fixture
def auto() -> ManualClock:
    """Virtual time that sleeps move forward at once."""
    return ManualClock(autoadvance=True)


# -- the order of the layers ------------------------------------------------------------


def test_a_cache_hit_takes_no_token_and_no_breaker_permit(auto: ManualClock) -> None:
    bucket = TokenBucket(1, 5, clock=auto)
    breaker = CircuitBreaker("massive", clock=auto)
    calls: list[str] = []

    @resilient("massive", cache=RedisCache(clock=auto), ttl=10.0, limiter=bucket, breaker=breaker)
    def price(symbol: str) -> float:
        calls.append(symbol)
        return 231.5

    assert price("AAPL") == 231.5
    granted, judged = bucket.stats.granted, breaker.stats.calls
    for _ in range(3):
        assert price("AAPL") == 231.5
    assert calls == ["AAPL"]
    assert (bucket.stats.granted, breaker.stats.calls) == (granted, judged) == (1, 1)


async def test_an_async_cache_hit_takes_no_token_and_no_breaker_permit(auto: ManualClock) -> None:
    bucket = TokenBucket(1, 5, clock=auto)
    breaker = CircuitBreaker("massive", clock=auto)
    calls: list[str] = []

    @resilient(
        "massive", cache=AsyncRedisCache(clock=auto), ttl=10.0, limiter=bucket, breaker=breaker
    )
    async def price(symbol: str) -> float:
        calls.append(symbol)
        return 231.5

    results = [await price("AAPL") for _ in range(4)]
    assert results == [231.5] * 4
    assert calls == ["AAPL"]
    assert (bucket.stats.granted, breaker.stats.calls) == (1, 1)


def test_every_attempt_takes_a_token_and_the_breaker_judges_the_call_once(
    auto: ManualClock,
) -> None:
    bucket = TokenBucket(100, 100, clock=auto)
    breaker = CircuitBreaker("xai", CircuitBreakerConfig(failure_threshold=2), clock=auto)
    answers: list[Any] = [VendorDown(), VendorDown(), 0.7]

    @resilient("xai", limiter=bucket, breaker=breaker, retry=fixed(3), clock=auto)
    def sentiment(symbol: str) -> float:
        return next_answer(answers)

    assert sentiment("AAPL") == 0.7
    assert bucket.stats.granted == 3
    stats = breaker.stats
    assert (stats.calls, stats.successes, stats.failures) == (1, 1, 0)
    assert breaker.state is CLOSED  # two failed attempts of one call do not trip it


def test_an_open_circuit_turns_a_call_away_before_it_takes_a_token(auto: ManualClock) -> None:
    bucket = TokenBucket(1, 5, clock=auto)
    breaker = CircuitBreaker("massive", clock=auto)
    breaker.force_open()
    recorder = Recording()

    @resilient("massive", limiter=bucket, breaker=breaker, metrics=recorder, clock=auto)
    def price(symbol: str) -> float:
        raise AssertionError("not called")

    with pytest.raises(CircuitOpenError) as caught:
        price("AAPL")
    assert caught.value.name == "massive"
    assert bucket.stats.granted == 0
    assert breaker.stats.rejections == 1
    assert recorder.requests == [("massive", "rejected", None)]


def test_a_circuit_that_moved_on_between_the_look_and_the_permit_still_admits(
    auto: ManualClock,
) -> None:
    # The look before the token saw OPEN; by the permit the open time is over.
    breaker = CircuitBreaker("massive", CircuitBreakerConfig(failure_threshold=1), clock=auto)

    class Moving(CircuitBreaker):
        @property
        def state(self) -> CircuitState:
            return OPEN

    moving = Moving("massive", clock=auto)

    @resilient("massive", limiter=TokenBucket(1, 5, clock=auto), breaker=moving, clock=auto)
    def price(symbol: str) -> float:
        return 231.5

    assert price("AAPL") == 231.5
    assert moving.stats.successes == 1
    assert breaker.state is CLOSED


def test_the_circuit_opening_during_a_backoff_stops_the_retries(clock: ManualClock) -> None:
    breaker = CircuitBreaker("massive", CircuitBreakerConfig(failure_threshold=2), clock=clock)
    attempts: list[float] = []

    @resilient("massive", breaker=breaker, retry=fixed(3), clock=clock)
    def price(symbol: str) -> float:
        attempts.append(clock.monotonic())
        raise VendorDown(symbol)

    @resilient("massive", breaker=breaker, clock=clock)
    def other(symbol: str) -> float:
        raise VendorDown(symbol)

    thread, caught = in_thread(lambda: price("AAPL"))
    _until_sleeping_sync(clock)  # the first attempt failed; the caller sleeps its backoff
    for _ in range(2):  # meanwhile other callers fail and open the circuit
        with pytest.raises(VendorDown):
            other("MSFT")
    assert breaker.state is OPEN
    clock.advance(1.0)
    thread.join(5)
    assert attempts == [0.0]
    assert isinstance(caught[0], CircuitOpenError)
    assert isinstance(caught[0].__cause__, VendorDown)


async def test_async_the_circuit_opening_during_a_backoff_stops_the_retries(
    clock: ManualClock,
) -> None:
    breaker = CircuitBreaker("massive", CircuitBreakerConfig(failure_threshold=2), clock=clock)
    attempts: list[float] = []
    recorder = Recording()

    @resilient("massive", breaker=breaker, retry=fixed(3), metrics=recorder, clock=clock)
    async def price(symbol: str) -> float:
        attempts.append(clock.monotonic())
        raise VendorDown(symbol)

    @resilient("massive", breaker=breaker, clock=clock)
    async def other(symbol: str) -> float:
        raise VendorDown(symbol)

    task = asyncio.create_task(price("AAPL"))
    await _until_sleeping(clock)
    for _ in range(2):
        with pytest.raises(VendorDown):
            await other("MSFT")
    clock.advance(1.0)
    with pytest.raises(CircuitOpenError) as caught:
        await task
    assert attempts == [0.0]
    assert isinstance(caught.value.__cause__, VendorDown)
    assert caught.value.retry_after > 0
    assert recorder.requests == [("massive", "rejected", 1.0)]  # it did call the source


def test_a_circuit_opened_and_half_open_after_a_long_backoff_stops_the_retries(
    auto: ManualClock,
) -> None:
    config = CircuitBreakerConfig(failure_threshold=1, timeout=5.0)
    breaker = CircuitBreaker("massive", config, clock=auto)
    attempts: list[float] = []

    def open_meanwhile(state: Any) -> None:  # another caller's failure during the backoff
        # Another thread: a call made here, inside this call, would be part of it.
        def fail_elsewhere() -> None:
            with contextlib.suppress(VendorDown):
                breaker.call(_fail)

        other = threading.Thread(target=fail_elsewhere)
        other.start()
        other.join()

    retry = Retrying(stop=stop_after_attempt(3), wait=wait_fixed(10.0), before_sleep=open_meanwhile)

    @resilient("massive", breaker=breaker, retry=retry, clock=auto)
    def price(symbol: str) -> float:
        attempts.append(auto.monotonic())
        raise VendorDown(symbol)

    with pytest.raises(CircuitOpenError):
        price("AAPL")
    assert attempts == [0.0]
    assert breaker.state is HALF_OPEN  # waiting for a probe; this call was not one


def _fail() -> None:
    raise VendorDown()


def test_a_half_open_probe_retries_within_its_permit(auto: ManualClock) -> None:
    config = CircuitBreakerConfig(failure_threshold=1, success_threshold=1, timeout=5.0)
    breaker = CircuitBreaker("massive", config, clock=auto)
    with contextlib.suppress(VendorDown):
        breaker.call(_fail)
    auto.advance(5.0)
    assert breaker.state is HALF_OPEN
    answers: list[Any] = [VendorDown(), 231.5]

    @resilient("massive", breaker=breaker, retry=fixed(2), clock=auto)
    def price(symbol: str) -> float:
        return next_answer(answers)

    assert price("AAPL") == 231.5
    assert breaker.state is CLOSED


def test_a_circuit_closed_again_by_other_probes_lets_the_retry_run(auto: ManualClock) -> None:
    config = CircuitBreakerConfig(failure_threshold=1, success_threshold=1, timeout=5.0)
    breaker = CircuitBreaker("massive", config, clock=auto)
    answers: list[Any] = [VendorDown(), 231.5]

    def reopen_and_probe(state: Any) -> None:
        with contextlib.suppress(VendorDown):
            breaker.call(_fail)
        auto.advance(5.0)
        breaker.call(lambda: None)  # another caller's probe closes it again

    retry = Retrying(
        stop=stop_after_attempt(2), wait=wait_fixed(1.0), before_sleep=reopen_and_probe
    )

    @resilient("massive", breaker=breaker, retry=retry, clock=auto)
    def price(symbol: str) -> float:
        return next_answer(answers)

    assert price("AAPL") == 231.5


async def test_async_an_open_circuit_turns_a_call_away_before_it_takes_a_token(
    auto: ManualClock,
) -> None:
    bucket = TokenBucket(1, 5, clock=auto)
    breaker = CircuitBreaker("massive", clock=auto)
    breaker.force_open()

    @resilient("massive", limiter=bucket, breaker=breaker, clock=auto)
    async def price(symbol: str) -> float:
        raise AssertionError("not called")

    with pytest.raises(CircuitOpenError) as caught:
        await price("AAPL")
    assert caught.value.retry_after == float("inf")
    assert bucket.stats.granted == 0


async def test_a_circuit_opening_while_a_retry_waits_for_its_token_stops_it(
    clock: ManualClock,
) -> None:
    bucket = TokenBucket(1, 1, clock=clock)
    breaker = CircuitBreaker("massive", CircuitBreakerConfig(failure_threshold=1), clock=clock)
    attempts: list[float] = []

    @resilient("massive", limiter=bucket, breaker=breaker, retry=fixed(3, 0.0), clock=clock)
    async def price(symbol: str) -> float:
        attempts.append(clock.monotonic())
        raise VendorDown(symbol)

    task = asyncio.create_task(price("AAPL"))
    await _until_sleeping(clock)  # the retry waits for the bucket's next token
    with contextlib.suppress(VendorDown):
        breaker.call(_fail)  # another caller opens the circuit meanwhile
    clock.advance(1.0)
    with pytest.raises(CircuitOpenError):
        await task
    assert attempts == [0.0]
    assert bucket.stats.granted == 2  # the token came, but no attempt was made with it


def test_sync_a_circuit_opening_while_a_retry_waits_for_its_token_stops_it(
    clock: ManualClock,
) -> None:
    bucket = TokenBucket(1, 1, clock=clock)
    breaker = CircuitBreaker("massive", CircuitBreakerConfig(failure_threshold=1), clock=clock)
    attempts: list[float] = []

    @resilient("massive", limiter=bucket, breaker=breaker, retry=fixed(3, 0.0), clock=clock)
    def price(symbol: str) -> float:
        attempts.append(clock.monotonic())
        raise VendorDown(symbol)

    thread, caught = in_thread(lambda: price("AAPL"))
    _until_sleeping_sync(clock)
    with contextlib.suppress(VendorDown):
        breaker.call(_fail)
    clock.advance(1.0)
    thread.join(5)
    assert attempts == [0.0]
    assert isinstance(caught[0], CircuitOpenError)


def test_a_circuit_open_error_is_never_retried(auto: ManualClock) -> None:
    attempts: list[str] = []

    @resilient("massive", retry=fixed(5), clock=auto)
    def price(symbol: str) -> float:
        attempts.append(symbol)
        raise CircuitOpenError("inner", 3.0)

    with pytest.raises(CircuitOpenError):
        price("AAPL")
    assert attempts == ["AAPL"]


# -- retries --------------------------------------------------------------------------


def test_a_retry_waits_at_least_the_servers_retry_after(auto: ManualClock) -> None:
    attempts: list[float] = []
    answers: list[Any] = [TooManyRequests(5.0), VendorDown(), 231.5]

    @resilient("massive", retry=fixed(3, 1.0), clock=auto)
    def price(symbol: str) -> float:
        attempts.append(auto.monotonic())
        return next_answer(answers)

    assert price("AAPL") == 231.5
    assert attempts == [0.0, 5.0, 6.0]  # 5 s for the 429, then the strategy's 1 s


async def test_async_a_retry_waits_at_least_the_servers_retry_after(auto: ManualClock) -> None:
    attempts: list[float] = []
    answers: list[Any] = [TooManyRequests(5.0), 231.5]

    @resilient("massive", retry=fixed(3, 1.0), clock=auto)
    async def price(symbol: str) -> float:
        attempts.append(auto.monotonic())
        return next_answer(answers)

    assert await price("AAPL") == 231.5
    assert attempts == [0.0, 5.0]


def test_a_retry_after_longer_than_max_wait_ends_the_retries(auto: ManualClock) -> None:
    attempts: list[float] = []

    @resilient("massive", retry=fixed(3), max_wait=30.0, clock=auto)
    def price(symbol: str) -> float:
        attempts.append(auto.monotonic())
        raise TooManyRequests(60.0)

    with pytest.raises(TooManyRequests):
        price("AAPL")
    assert attempts == [0.0]


def test_retries_end_with_the_last_attempts_own_error(auto: ManualClock) -> None:
    errors = [VendorDown("first"), VendorDown("second"), VendorDown("third")]

    @resilient("massive", retry=3, clock=auto)
    def price(symbol: str) -> float:
        raise errors.pop(0)

    with pytest.raises(VendorDown, match="third"):
        price("AAPL")
    assert not errors


async def test_async_retries_end_with_the_last_attempts_own_error(auto: ManualClock) -> None:
    errors = [VendorDown("first"), VendorDown("second")]

    @resilient("massive", retry=2, clock=auto)
    async def price(symbol: str) -> float:
        raise errors.pop(0)

    with pytest.raises(VendorDown, match="second"):
        await price("AAPL")


def test_an_int_retry_is_that_many_attempts_with_a_growing_wait(auto: ManualClock) -> None:
    attempts: list[float] = []

    @resilient("massive", retry=4, clock=auto)
    def price(symbol: str) -> float:
        attempts.append(auto.monotonic())
        raise VendorDown()

    with pytest.raises(VendorDown):
        price("AAPL")
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert len(attempts) == 4
    for gap, base in zip(gaps, (0.1, 0.2, 0.4), strict=True):
        assert base <= gap <= base + 0.1


def test_the_retry_strategies_of_a_retrying_object_decide(auto: ManualClock) -> None:
    attempts: list[str] = []
    retry = Retrying(
        retry=retry_if_exception_type(VendorDown), stop=stop_after_attempt(5), wait=wait_fixed(1)
    )

    @resilient("massive", retry=retry, clock=auto)
    def price(symbol: str) -> float:
        attempts.append(symbol)
        raise ValueError("bad symbol")

    with pytest.raises(ValueError, match="bad symbol"):
        price("AAPL")
    assert attempts == ["AAPL"]


def test_stop_after_delay_counts_the_injected_clocks_time(auto: ManualClock) -> None:
    attempts: list[float] = []
    retry = Retrying(stop=stop_after_delay(10.0), wait=wait_fixed(3.0))

    @resilient("massive", retry=retry, clock=auto)
    def price(symbol: str) -> float:
        attempts.append(auto.monotonic())
        raise VendorDown()

    with pytest.raises(VendorDown):
        price("AAPL")
    assert attempts == [0.0, 3.0, 6.0, 9.0, 12.0]


def test_try_again_is_retried_whatever_the_predicate(auto: ManualClock) -> None:
    answers: list[Any] = [TryAgain(), 231.5]
    retry = Retrying(
        retry=retry_if_exception_type(VendorDown), stop=stop_after_attempt(3), wait=wait_fixed(1)
    )

    @resilient("massive", retry=retry, clock=auto)
    def price(symbol: str) -> float:
        return next_answer(answers)

    assert price("AAPL") == 231.5


def test_after_and_before_sleep_see_tenacitys_retry_state(auto: ManualClock) -> None:
    seen: list[tuple[str, int, float]] = []
    retry = Retrying(
        stop=stop_after_attempt(3),
        wait=wait_fixed(2.0),
        after=lambda state: seen.append(("after", state.attempt_number, state.upcoming_sleep)),
        before_sleep=lambda state: seen.append(
            ("before_sleep", state.attempt_number, state.next_action.sleep)
        ),
    )

    @resilient("massive", retry=retry, clock=auto)
    def price(symbol: str) -> float:
        raise VendorDown()

    with pytest.raises(VendorDown):
        price("AAPL")
    assert [(hook, attempt) for hook, attempt, _ in seen] == [
        ("after", 1),
        ("before_sleep", 1),
        ("after", 2),
        ("before_sleep", 2),
        ("after", 3),
    ]
    assert [sleep for hook, _, sleep in seen if hook == "before_sleep"] == [2.0, 2.0]


def test_a_first_success_builds_no_retry_machinery(
    auto: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[object] = []
    original = retry_module.RetryCallState

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(retry_module, "RetryCallState", counting)
    answers: list[Any] = [231.5, VendorDown(), 232.0]

    @resilient("massive", retry=fixed(3), clock=auto)
    def price(symbol: str) -> float:
        return next_answer(answers)

    assert price("AAPL") == 231.5
    assert built == []
    assert price("AAPL") == 232.0
    assert len(built) == 1


def test_a_retry_without_a_token_in_time_is_not_made(auto: ManualClock) -> None:
    bucket = TokenBucket(0.01, 1, clock=auto)  # one token, then one per 100 s
    attempts: list[float] = []

    @resilient("massive", limiter=bucket, retry=fixed(3), max_wait=5.0, clock=auto)
    def price(symbol: str) -> float:
        attempts.append(auto.monotonic())
        raise VendorDown("down")

    with pytest.raises(VendorDown, match="down"):
        price("AAPL")
    assert attempts == [0.0]


async def test_async_a_retry_without_a_token_in_time_is_not_made(auto: ManualClock) -> None:
    bucket = TokenBucket(0.01, 1, clock=auto)

    @resilient("massive", limiter=bucket, retry=fixed(3), max_wait=0.0, clock=auto)
    async def price(symbol: str) -> float:
        raise VendorDown("down")

    with pytest.raises(VendorDown):
        await price("AAPL")
    assert bucket.stats.granted == 1


def test_a_disabled_retrying_makes_one_attempt(auto: ManualClock) -> None:
    attempts: list[str] = []
    retry = Retrying(stop=stop_after_attempt(3), enabled=False)

    @resilient("massive", retry=retry, clock=auto)
    def price(symbol: str) -> float:
        attempts.append(symbol)
        raise VendorDown()

    with pytest.raises(VendorDown):
        price("AAPL")
    assert attempts == ["AAPL"]


# -- rate limiting --------------------------------------------------------------------


def test_a_call_waits_for_a_token_up_to_max_wait(auto: ManualClock) -> None:
    bucket = TokenBucket(1, 1, clock=auto)
    at: list[float] = []

    @resilient("massive", limiter=bucket, max_wait=2.0, clock=auto)
    def price(symbol: str) -> float:
        at.append(auto.monotonic())
        return 231.5

    price("AAPL")
    price("AAPL")
    assert at == [0.0, 1.0]


def test_no_token_within_max_wait_is_rate_limited(auto: ManualClock) -> None:
    bucket = TokenBucket(0.1, 1, clock=auto)
    recorder = Recording()

    @resilient("alpha_vantage", limiter=bucket, max_wait=2.0, metrics=recorder, clock=auto)
    def price(symbol: str) -> float:
        return 231.5

    price("AAPL")
    with pytest.raises(RateLimitExceeded) as caught:
        price("AAPL")
    assert caught.value.source == "alpha_vantage"
    assert caught.value.retry_after == pytest.approx(10.0)
    assert auto.monotonic() == 0.0  # it did not wait: the token would come too late
    assert recorder.outcomes == ["ok", "rate_limited"]


async def test_async_no_token_within_max_wait_is_rate_limited(auto: ManualClock) -> None:
    bucket = TokenBucket(0.1, 1, clock=auto)

    @resilient("alpha_vantage", limiter=bucket, max_wait=0.0, clock=auto)
    async def price(symbol: str) -> float:
        return 231.5

    assert await price("AAPL") == 231.5
    with pytest.raises(RateLimitExceeded):
        await price("AAPL")


def _bucket(kind: str, request: Any, clock: ManualClock, rate: float) -> Any:
    """A bucket of ``rate`` tokens a second, one at most: in process, or in Redis."""
    if kind == "local":
        return TokenBucket(rate, 1, clock=clock)
    url = request.getfixturevalue("redis_url")
    return RedisTokenBucket(url, f"refusals-{request.node.name}", rate, 1, clock=clock)


def _counts(bucket: Any) -> tuple[int, int, int]:
    stats = bucket.stats
    return stats.granted, stats.denied, stats.waited


@pytest.mark.parametrize("kind", ["local", "redis"])
def test_a_call_that_waits_for_its_token_counts_no_refusal(
    kind: str, request: Any, auto: ManualClock
) -> None:
    bucket = _bucket(kind, request, auto, 1.0)
    answers: list[Any] = [231.5, 231.5, VendorDown(), 231.5]

    @resilient("massive", limiter=bucket, retry=fixed(2, 0.0), clock=auto)
    def price(symbol: str) -> float:
        return next_answer(answers)

    price("AAPL")
    price("AAPL")  # waits a second for its token
    assert _counts(bucket) == (2, 0, 1)
    price("AAPL")  # waits, fails, and its retry waits again
    assert _counts(bucket) == (4, 0, 3)


@pytest.mark.parametrize("kind", ["local", "redis"])
def test_a_call_that_gives_up_on_its_token_counts_one_refusal(
    kind: str, request: Any, auto: ManualClock
) -> None:
    bucket = _bucket(kind, request, auto, 0.01)
    answers: list[Any] = [231.5, 231.5, 231.5]

    @resilient("massive", limiter=bucket, max_wait=2.0, clock=auto)
    def price(symbol: str) -> float:
        return next_answer(answers)

    @resilient("massive", limiter=bucket, max_wait=0.0, clock=auto)
    def at_once(symbol: str) -> float:
        return next_answer(answers)

    price("AAPL")
    for call in (price, at_once):
        with pytest.raises(RateLimitExceeded):
            call("AAPL")
    assert _counts(bucket) == (1, 2, 0)


@pytest.mark.parametrize("kind", ["local", "redis"])
async def test_async_a_call_counts_one_refusal_only_when_it_gives_up(
    kind: str, request: Any, auto: ManualClock
) -> None:
    bucket = _bucket(kind, request, auto, 1.0)
    answers: list[Any] = [231.5, 231.5, VendorDown(), 231.5]

    @resilient("massive", limiter=bucket, retry=fixed(2, 0.0), clock=auto)
    async def price(symbol: str) -> float:
        return next_answer(answers)

    @resilient("massive", limiter=bucket, max_wait=0.0, clock=auto)
    async def at_once(symbol: str) -> float:
        return 231.5

    await price("AAPL")
    await price("AAPL")  # waits a second for its token
    await price("AAPL")  # waits, fails, and its retry waits again
    assert _counts(bucket) == (4, 0, 3)
    with pytest.raises(RateLimitExceeded):
        await at_once("AAPL")
    assert _counts(bucket) == (4, 1, 3)


def test_a_rate_limiter_gives_the_sources_bucket(auto: ManualClock) -> None:
    limiter = RateLimiter({"xai": RateLimitConfig(1, 2)}, clock=auto)
    recorder = Recording()

    @resilient("xai", limiter=limiter, metrics=recorder, clock=auto)
    def sentiment(symbol: str) -> float:
        return 0.7

    sentiment("AAPL")
    assert limiter.stats["xai"].granted == 1
    assert recorder.tracked == [("xai", None, limiter.get("xai"), None)]


def test_a_rate_limiter_without_the_source_or_a_default_is_refused() -> None:
    with pytest.raises(ConfigError, match="nobody"):
        resilient("nobody", limiter=RateLimiter({"xai": RateLimitConfig(1, 2)}))


def test_a_rate_limiter_with_a_default_makes_the_sources_bucket() -> None:
    limiter = RateLimiter({}, default=RateLimitConfig(1, 2))
    resilient("nobody", limiter=limiter)
    assert "nobody" in limiter


def test_a_redis_token_bucket_counts_every_attempt(redis_url: str, auto: ManualClock) -> None:
    bucket = RedisTokenBucket(redis_url, "resilient-sync", 100, 100, clock=auto)
    answers: list[Any] = [VendorDown(), 231.5]

    @resilient("massive", limiter=bucket, retry=fixed(2), clock=auto)
    def price(symbol: str) -> float:
        return next_answer(answers)

    try:
        assert price("AAPL") == 231.5
        assert bucket.stats.granted == 2
    finally:
        bucket.close()


async def test_async_redis_cache_and_bucket_compose(redis_url: str, auto: ManualClock) -> None:
    bucket = RedisTokenBucket(redis_url, "resilient-async", 0.001, 1, clock=auto)
    cache = AsyncRedisCache(redis_url, clock=auto)
    recorder = Recording()

    @resilient(
        "massive", cache=cache, ttl=10.0, limiter=bucket, max_wait=0.0, metrics=recorder, clock=auto
    )
    async def price(symbol: str) -> float:
        return 231.5

    try:
        assert await price("AAPL") == 231.5
        assert await price("AAPL") == 231.5  # from the cache: no token needed
        with pytest.raises(RateLimitExceeded) as caught:
            await price("MSFT")  # the only token is spent
        assert caught.value.retry_after is not None
        assert caught.value.retry_after > 0
        assert recorder.outcomes == ["ok", "cached", "rate_limited"]
    finally:
        await cache.close()
        await bucket.aclose()


# -- stale values and fallbacks -------------------------------------------------------


def test_a_failed_call_serves_a_stale_value_the_caller_can_tell(auto: ManualClock) -> None:
    cache = RedisCache(clock=auto, max_stale=60.0)
    recorder = Recording()
    answers: list[Any] = [231.5, VendorDown()]

    @resilient("massive", cache=cache, ttl=10.0, metrics=recorder, clock=auto)
    def price(symbol: str) -> float:
        return next_answer(answers)

    assert price.with_meta("AAPL") == ResilientResult(231.5, "ok", False, 0.0)
    auto.advance(15.0)
    assert price.with_meta("AAPL") == ResilientResult(231.5, "stale", True, 15.0)
    assert recorder.outcomes == ["ok", "stale"]


async def test_async_an_open_circuit_serves_a_stale_value(auto: ManualClock) -> None:
    cache = AsyncRedisCache(clock=auto, max_stale=60.0)
    breaker = CircuitBreaker("massive", clock=auto)
    recorder = Recording()

    @resilient("massive", cache=cache, ttl=10.0, breaker=breaker, metrics=recorder, clock=auto)
    async def price(symbol: str) -> float:
        return 231.5

    await price("AAPL")
    auto.advance(20.0)
    breaker.force_open()
    result = await price.with_meta("AAPL")
    assert (result.value, result.outcome, result.stale, result.age) == (231.5, "stale", True, 20.0)
    assert recorder.requests[-1] == ("massive", "stale", None)  # the source was not called


def test_without_a_stale_value_the_fallback_answers(auto: ManualClock) -> None:
    cache = RedisCache(clock=auto, max_stale=5.0)
    recorder = Recording()
    calls: list[str] = []

    def last_close(symbol: str) -> float:
        calls.append(symbol)
        return 230.0

    @resilient("massive", cache=cache, ttl=10.0, fallback=last_close, metrics=recorder, clock=auto)
    def price(symbol: str) -> float:
        raise VendorDown()

    assert price.with_meta("AAPL") == ResilientResult(230.0, "fallback", False, None)
    assert price("AAPL") == 230.0
    assert calls == ["AAPL", "AAPL"]  # a fallback value is not cached
    assert recorder.outcomes == ["fallback", "fallback"]


def test_a_value_past_max_stale_is_not_served(auto: ManualClock) -> None:
    cache = RedisCache(clock=auto, max_stale=5.0)
    answers: list[Any] = [231.5, VendorDown()]

    @resilient("massive", cache=cache, ttl=10.0, fallback=lambda symbol: 0.0, clock=auto)
    def price(symbol: str) -> float:
        return next_answer(answers)

    price("AAPL")
    auto.advance(16.0)
    assert price.with_meta("AAPL").outcome == "fallback"


async def test_async_fallbacks_may_be_sync_or_async(auto: ManualClock) -> None:
    async def from_archive(symbol: str, *, venue: str = "XNYS") -> float:
        return 229.0

    @resilient("massive", fallback=from_archive, clock=auto)
    async def price(symbol: str, *, venue: str = "XNYS") -> float:
        raise VendorDown()

    @resilient("massive", fallback=lambda symbol: 228.0, clock=auto)
    async def quote(symbol: str) -> float:
        raise VendorDown()

    assert await price("AAPL", venue="ARCX") == 229.0
    assert await quote("AAPL") == 228.0


def test_a_failing_fallback_raises_its_own_error_and_records_the_calls_outcome(
    auto: ManualClock,
) -> None:
    recorder = Recording()

    def broken(symbol: str) -> float:
        raise KeyError(symbol)

    @resilient("massive", fallback=broken, metrics=recorder, clock=auto)
    def price(symbol: str) -> float:
        raise VendorDown()

    with pytest.raises(KeyError) as caught:
        price("AAPL")
    assert isinstance(caught.value.__context__, VendorDown)
    assert recorder.outcomes == ["error"]


async def test_async_a_failing_fallback_raises_its_own_error(auto: ManualClock) -> None:
    recorder = Recording()

    async def broken(symbol: str) -> float:
        raise KeyError(symbol)

    @resilient("massive", fallback=broken, metrics=recorder, clock=auto)
    async def price(symbol: str) -> float:
        raise CircuitOpenError("massive", 1.0)

    with pytest.raises(KeyError):
        await price("AAPL")
    assert recorder.outcomes == ["rejected"]


def test_without_stale_value_or_fallback_the_error_reaches_the_caller(auto: ManualClock) -> None:
    @resilient("massive", cache=RedisCache(clock=auto), clock=auto)
    def price(symbol: str) -> float:
        raise VendorDown("down")

    with pytest.raises(VendorDown, match="down"):
        price("AAPL")


def test_the_cache_key_and_a_callable_ttl_see_the_functions_arguments(auto: ManualClock) -> None:
    cache = RedisCache(clock=auto)
    asked: list[str] = []

    def ttl_for(symbol: str) -> float:
        asked.append(symbol)
        return 30.0

    @resilient("massive", cache=cache, ttl=ttl_for, key=lambda symbol: f"price:{symbol}")
    def price(symbol: str) -> float:
        return 231.5

    price("AAPL")
    assert asked == ["AAPL"]
    assert cache.get("price:AAPL") == 231.5
    auto.advance(29.0)
    assert price.with_meta("AAPL").outcome == "cached"
    auto.advance(1.0)
    assert price.with_meta("AAPL").outcome == "ok"


# -- outcomes -------------------------------------------------------------------------


def test_every_outcome_is_recorded_with_the_time_spent_calling_the_source(
    auto: ManualClock,
) -> None:
    recorder = Recording()
    cache = RedisCache(clock=auto, max_stale=60.0)
    breaker = CircuitBreaker("massive", CircuitBreakerConfig(failure_threshold=1), clock=auto)
    bucket = TokenBucket(1, 1, clock=auto)
    answers: list[Any] = [231.5, VendorDown(), VendorDown()]

    @resilient(
        "massive",
        cache=cache,
        ttl=10.0,
        limiter=bucket,
        breaker=breaker,
        metrics=recorder,
        max_wait=0.0,
        clock=auto,
    )
    def price(symbol: str) -> float:
        auto.advance(0.25)  # the vendor takes a quarter of a second
        return next_answer(answers)

    @resilient("massive", limiter=bucket, breaker=breaker, fallback=lambda s: 0.0, metrics=recorder)
    def quote(symbol: str) -> float:
        raise AssertionError("not called: the circuit is open")

    @resilient("massive", metrics=recorder, clock=auto)
    def broken(symbol: str) -> float:
        auto.advance(0.5)
        raise VendorDown()

    price("AAPL")  # ok
    price("AAPL")  # cached
    with pytest.raises(RateLimitExceeded):
        price("MSFT")  # rate_limited: the bucket's one token is spent
    auto.advance(20.0)
    price("AAPL")  # stale: the vendor failed (and the circuit opened)
    assert quote("AAPL") == 0.0  # fallback after a rejection
    with pytest.raises(CircuitOpenError):
        price("MSFT")  # rejected
    with pytest.raises(VendorDown):
        broken("AAPL")  # error
    assert recorder.requests == [
        ("massive", "ok", 0.25),
        ("massive", "cached", None),
        ("massive", "rate_limited", None),
        ("massive", "stale", 0.25),
        ("massive", "fallback", None),
        ("massive", "rejected", None),
        ("massive", "error", 0.5),
    ]
    assert [tracked[0] for tracked in recorder.tracked] == ["massive"] * 3
    assert recorder.tracked[0][1:] == (cache, bucket, breaker)


def test_a_recorded_latency_includes_the_retries(auto: ManualClock) -> None:
    recorder = Recording()
    answers: list[Any] = [VendorDown(), 231.5]

    @resilient("massive", retry=fixed(2, 1.0), metrics=recorder, clock=auto)
    def price(symbol: str) -> float:
        auto.advance(0.5)
        return next_answer(answers)

    price("AAPL")
    assert recorder.requests == [("massive", "ok", 2.0)]


async def test_callers_waiting_for_one_shared_load_are_recorded_as_cached() -> None:
    clock = ManualClock()
    recorder = Recording()
    release = asyncio.Event()
    calls: list[str] = []

    @resilient(
        "massive", cache=AsyncRedisCache(clock=clock), ttl=10.0, metrics=recorder, clock=clock
    )
    async def price(symbol: str) -> float:
        calls.append(symbol)
        await release.wait()
        return 231.5

    tasks = [asyncio.create_task(price.with_meta("AAPL")) for _ in range(5)]
    await asyncio.sleep(0.01)
    release.set()
    results = await asyncio.gather(*tasks)
    assert calls == ["AAPL"]
    assert sorted(result.outcome for result in results) == ["cached"] * 4 + ["ok"]
    assert sorted(recorder.outcomes) == ["cached"] * 4 + ["ok"]


def test_a_recorder_that_raises_does_not_fail_the_call(
    auto: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(Recording):
        def record_request(self, source: str, outcome: str, seconds: float | None = None) -> None:
            raise RuntimeError("metrics backend down")

    @resilient("massive", metrics=Broken(), clock=auto)
    def price(symbol: str) -> float:
        return 231.5

    with caplog.at_level(logging.ERROR, logger="argo_perf.resilience"):
        assert price("AAPL") == 231.5
        assert price("AAPL") == 231.5
    assert len([r for r in caplog.records if "recording a request" in r.message]) == 1


@settings(max_examples=40, deadline=None)
@given(
    answers=st.lists(st.booleans(), min_size=1, max_size=30),
    attempts=st.integers(min_value=1, max_value=4),
)
def test_each_call_is_recorded_once_and_each_attempt_takes_one_token(
    answers: list[bool], attempts: int
) -> None:
    clock = ManualClock(autoadvance=True)
    bucket = TokenBucket(1000, 1000, clock=clock)
    breaker = CircuitBreaker("massive", CircuitBreakerConfig(failure_threshold=1000), clock=clock)
    recorder = Recording()
    script = list(answers)
    vendor_calls = 0

    @resilient(
        "massive",
        limiter=bucket,
        breaker=breaker,
        retry=fixed(attempts),
        metrics=recorder,
        clock=clock,
    )
    def price(symbol: str) -> float:
        nonlocal vendor_calls
        vendor_calls += 1
        if script.pop(0) if script else True:
            return 231.5
        raise VendorDown()

    calls = 0
    while script:
        calls += 1
        with contextlib.suppress(VendorDown):
            price("AAPL")
    assert len(recorder.requests) == calls == breaker.stats.calls
    assert bucket.stats.granted == vendor_calls <= calls * attempts
    ok = recorder.outcomes.count("ok")
    assert ok == breaker.stats.successes
    assert recorder.outcomes.count("error") == calls - ok == breaker.stats.failures


# -- timeouts -------------------------------------------------------------------------


async def test_async_a_slow_attempt_times_out_and_is_retried(auto: ManualClock) -> None:
    never = asyncio.Event()
    answers: list[Any] = ["hang", 231.5]
    cancelled: list[bool] = []

    @resilient("massive", retry=fixed(2), timeout=0.01, clock=auto)
    async def price(symbol: str) -> float:
        answer = answers.pop(0)
        if answer == "hang":
            try:
                await never.wait()
            except asyncio.CancelledError:
                cancelled.append(True)
                raise
        return float(answer)

    assert await price("AAPL") == 231.5
    assert cancelled == [True]


async def test_async_a_timeout_error_is_raised_when_no_attempt_answers(auto: ManualClock) -> None:
    never = asyncio.Event()

    @resilient("massive", timeout=0.01, clock=auto)
    async def price(symbol: str) -> float:
        await never.wait()
        return 0.0

    with pytest.raises(TimeoutError, match=r"massive did not answer within 0\.01 s"):
        await price("AAPL")


async def test_async_a_timeout_error_of_the_function_itself_passes_unchanged() -> None:
    @resilient("massive", timeout=60.0)
    async def price(symbol: str) -> float:
        raise TimeoutError("the vendor's own")

    with pytest.raises(TimeoutError, match="the vendor's own"):
        await price("AAPL")


def test_sync_a_slow_attempt_times_out_in_its_worker_thread(auto: ManualClock) -> None:
    release = threading.Event()
    answers: list[Any] = ["hang", 231.5]
    threads: list[str] = []

    @resilient("massive", retry=fixed(2), timeout=0.01, clock=auto)
    def price(symbol: str) -> float:
        threads.append(threading.current_thread().name)
        answer = answers.pop(0)
        if answer == "hang":
            release.wait(10)  # abandoned by the caller, released below
            return -1.0
        return float(answer)

    try:
        assert price("AAPL") == 231.5
    finally:
        release.set()
    assert threads == ["argo_perf call to massive"] * 2


def test_sync_errors_and_timeouts_of_the_function_pass_through_the_worker() -> None:
    @resilient("massive", timeout=60.0)
    def price(symbol: str) -> float:
        raise TimeoutError("the vendor's own")

    @resilient("massive", timeout=60.0)
    def quote(symbol: str) -> float:
        return 231.5

    with pytest.raises(TimeoutError, match="the vendor's own"):
        price("AAPL")
    assert quote("AAPL") == 231.5


def test_sync_a_timeout_error_is_raised_when_no_attempt_answers() -> None:
    release = threading.Event()

    @resilient("massive", timeout=0.01)
    def price(symbol: str) -> float:
        release.wait(10)
        return 0.0

    try:
        with pytest.raises(TimeoutError, match="massive did not answer"):
            price("AAPL")
    finally:
        release.set()


def test_sync_a_hung_vendor_leaves_a_bounded_number_of_threads_behind() -> None:
    from argo_perf.resilience._sync import MAX_OVERDUE

    release = threading.Event()
    name = "argo_perf call to hung"

    @resilient("hung", timeout=0.001)
    def price(symbol: str) -> float:
        release.wait(30)
        return 231.5

    def running() -> int:
        return sum(thread.name == name for thread in threading.enumerate())

    try:
        for _ in range(MAX_OVERDUE + 40):
            with pytest.raises(TimeoutError, match="hung did not answer"):
                price("AAPL")
        assert running() == MAX_OVERDUE
        with pytest.raises(TimeoutError, match="still running past their timeout"):
            price("AAPL")
    finally:
        release.set()
    for thread in threading.enumerate():
        if thread.name == name:
            thread.join(10)
    # Once they have returned, attempts get threads (and answers) again.
    assert price("AAPL") == 231.5


def test_sync_callers_arriving_together_at_a_hung_vendor_then_start_no_thread() -> None:
    # Callers already waiting when the bound is reached all leave a thread behind
    # (the bound is MAX_OVERDUE plus the callers waiting then); later attempts none.
    from argo_perf.resilience._sync import MAX_OVERDUE

    release = threading.Event()
    name = "argo_perf call to hung-burst"
    callers = MAX_OVERDUE + 16
    start = threading.Barrier(callers)
    timeouts: list[TimeoutError] = []

    @resilient("hung-burst", timeout=0.2)
    def price(symbol: str) -> float:
        release.wait(30)
        return 231.5

    def call() -> None:
        start.wait()
        try:
            price("AAPL")
        except TimeoutError as error:
            timeouts.append(error)

    threads = [threading.Thread(target=call) for _ in range(callers)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert len(timeouts) == callers
        left = sum(thread.name == name for thread in threading.enumerate())
        assert MAX_OVERDUE <= left <= callers
        for _ in range(10):
            with pytest.raises(TimeoutError, match="still running past their timeout"):
                price("AAPL")
        assert sum(thread.name == name for thread in threading.enumerate()) == left
    finally:
        release.set()
    for thread in threading.enumerate():
        if thread.name == name:
            thread.join(10)


class _Interrupted(BaseException):
    """What a SIGINT (KeyboardInterrupt) or a signal-based deadline raises in the caller."""


def test_an_attempt_abandoned_by_an_interrupted_caller_counts_as_overdue() -> None:
    from argo_perf.resilience._sync import MAX_OVERDUE

    # The caller is interrupted while it waits (KeyboardInterrupt, a SIGALRM
    # deadline): its worker thread runs on, but `overdue` only grows on the
    # timeout branch, so such attempts are never counted and the cap never holds.
    release = threading.Event()
    name = "argo_perf call to hung-interrupted"
    entered = threading.Semaphore(0)

    @resilient("hung-interrupted", timeout=30.0)
    def price(symbol: str) -> float:
        entered.release()
        release.wait(30)
        return 231.5

    armed = threading.Event()  # one interruption per attempt
    interrupted = threading.Event()

    def interrupt(signum: int, frame: object) -> None:
        if armed.is_set():
            armed.clear()
            interrupted.set()
            raise _Interrupted

    main = threading.get_ident()
    skip = threading.Event()

    def send_when_entered() -> None:
        if not entered.acquire(timeout=10) or skip.is_set():
            return
        # Again and again: a signal landing just before the caller blocks is only
        # handled when its wait ends.
        while not interrupted.wait(0.005):
            signal.pthread_kill(main, signal.SIGUSR1)

    previous = signal.signal(signal.SIGUSR1, interrupt)
    try:
        for _ in range(MAX_OVERDUE + 8):
            skip.clear()
            interrupted.clear()
            armed.set()
            sender = threading.Thread(target=send_when_entered)
            sender.start()
            try:
                price("AAPL")
            except _Interrupted:
                pass
            except TimeoutError:  # the cap: no thread started, nothing to interrupt
                armed.clear()
                skip.set()
                entered.release()
            sender.join(10)
        assert sum(thread.name == name for thread in threading.enumerate()) <= MAX_OVERDUE
    finally:
        signal.signal(signal.SIGUSR1, previous)
        release.set()
    for thread in threading.enumerate():
        if thread.name == name:
            thread.join(10)


# -- cancellation ---------------------------------------------------------------------


async def test_a_call_cancelled_while_waiting_for_a_token_hands_it_back() -> None:
    clock = ManualClock()
    bucket = TokenBucket(1, 1, clock=clock)
    breaker = CircuitBreaker("massive", clock=clock)
    recorder = Recording()

    @resilient("massive", limiter=bucket, breaker=breaker, metrics=recorder, clock=clock)
    async def price(symbol: str) -> float:
        return 231.5

    await price("AAPL")
    task = asyncio.create_task(price("MSFT"))
    await _until_sleeping(clock)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert bucket.stats.cancelled == 1
    assert breaker.stats.calls == 1
    assert recorder.outcomes == ["ok"]  # a cancelled call is not recorded
    clock.advance(1.0)
    assert bucket.try_acquire()  # the refunded reservation left the bucket as before


async def test_a_probe_cancelled_during_its_backoff_gives_its_permit_back() -> None:
    clock = ManualClock()
    config = CircuitBreakerConfig(failure_threshold=1, timeout=5.0)
    breaker = CircuitBreaker("massive", config, clock=clock)
    with contextlib.suppress(VendorDown):
        breaker.call(_fail)
    clock.advance(5.0)

    @resilient("massive", breaker=breaker, retry=fixed(3), clock=clock)
    async def price(symbol: str) -> float:
        raise VendorDown()

    task = asyncio.create_task(price("AAPL"))
    await _until_sleeping(clock)
    assert breaker.stats.probes_in_flight == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.state is HALF_OPEN
    assert breaker.stats.probes_in_flight == 0
    assert breaker.try_acquire() is not None  # the next caller may probe at once


# -- both faces -----------------------------------------------------------------------


def test_the_decorated_function_keeps_its_signature_name_and_docs() -> None:
    def price(symbol: str, *, venue: str = "XNYS") -> float:
        """The last trade."""
        return 231.5

    async def quote(symbol: str) -> float:
        """The best bid."""
        return 231.4

    wrapped = resilient("massive")(price)
    awrapped = resilient("massive")(quote)
    assert inspect.signature(wrapped) == inspect.signature(price)
    assert (wrapped.__name__, wrapped.__doc__) == ("price", "The last trade.")
    assert inspect.iscoroutinefunction(awrapped)
    assert inspect.iscoroutinefunction(awrapped.with_meta)
    assert not inspect.iscoroutinefunction(wrapped)
    assert wrapped.with_meta.__name__ == "with_meta"


class Vendor:
    """A vendor client whose methods are decorated: ``self`` is bound as for any method."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[tuple[str, str]] = []

    @resilient("massive", retry=2, clock=ManualClock(autoadvance=True))
    def quote(self, symbol: str) -> float:
        """The last trade."""
        self.seen.append((self.name, symbol))
        return 231.5

    @resilient("massive", retry=2, clock=ManualClock(autoadvance=True))
    async def quote_async(self, symbol: str) -> float:
        self.seen.append((self.name, symbol))
        return 231.4


def test_a_decorated_method_binds_self_for_the_call_and_with_meta() -> None:
    vendor = Vendor("one")
    assert vendor.quote("AAPL") == 231.5
    assert vendor.quote.with_meta("MSFT") == ResilientResult(231.5, "ok", False, 0.0)
    assert vendor.seen == [("one", "AAPL"), ("one", "MSFT")]
    # Through the class, self is passed explicitly, as for any function.
    assert Vendor.quote(vendor, "IBM") == 231.5
    assert Vendor.quote.with_meta(vendor, "IBM").value == 231.5
    assert list(inspect.signature(vendor.quote).parameters) == ["symbol"]
    assert Vendor.quote.__doc__ == "The last trade."
    # Its repr names the method and the class, not the instance's own repr.
    assert repr(vendor.quote) == "<bound resilient method Vendor.quote of Vendor object>"


async def test_async_a_decorated_method_binds_self_for_the_call_and_with_meta() -> None:
    vendor = Vendor("two")
    assert await vendor.quote_async("AAPL") == 231.4
    assert (await vendor.quote_async.with_meta("MSFT")).outcome == "ok"
    assert vendor.seen == [("two", "AAPL"), ("two", "MSFT")]
    assert inspect.iscoroutinefunction(vendor.quote_async)
    assert inspect.iscoroutinefunction(vendor.quote_async.with_meta)


def test_a_cached_method_is_keyed_by_the_key_function(auto: ManualClock) -> None:
    cache = RedisCache(clock=auto)

    class Desk:
        def __init__(self, venue: str) -> None:
            self.venue = venue
            self.calls = 0

        @resilient("massive", cache=cache, ttl=10.0, key=lambda self, s: f"{self.venue}:{s}")
        def price(self, symbol: str) -> float:
            self.calls += 1
            return 231.5 if self.venue == "XNYS" else 230.0

        @resilient("massive", cache=cache, ttl=10.0)
        def unkeyed(self, symbol: str) -> float:
            return 1.0

    nyse, other = Desk("XNYS"), Desk("XNAS")
    assert nyse.price.with_meta("AAPL").outcome == "ok"
    assert nyse.price.with_meta("AAPL").outcome == "cached"
    assert Desk("XNYS").price("AAPL") == 231.5  # another instance, the same key
    assert other.price("AAPL") == 230.0
    assert (nyse.calls, other.calls) == (1, 1)
    # self's repr is its address: without key= the call is refused, naming it.
    with pytest.raises(TypeError, match=r"'self'.*key="):
        nyse.unkeyed("AAPL")


async def test_async_with_meta_tells_the_outcome(auto: ManualClock) -> None:
    @resilient("massive", cache=AsyncRedisCache(clock=auto), ttl=10.0, clock=auto)
    async def price(symbol: str) -> float:
        return 231.5

    assert await price.with_meta("AAPL") == ResilientResult(231.5, "ok", False, 0.0)
    auto.advance(2.0)
    assert await price.with_meta("AAPL") == ResilientResult(231.5, "cached", False, 2.0)


async def test_async_limiter_breaker_and_retry_compose(auto: ManualClock) -> None:
    bucket = TokenBucket(100, 100, clock=auto)
    breaker = CircuitBreaker("xai", clock=auto)
    recorder = Recording()
    answers: list[Any] = [VendorDown(), VendorDown(), 0.7]

    @resilient("xai", limiter=bucket, breaker=breaker, retry=fixed(3), metrics=recorder, clock=auto)
    async def sentiment(symbol: str) -> float:
        return next_answer(answers)

    assert await sentiment("AAPL") == 0.7
    assert bucket.stats.granted == 3
    assert breaker.stats.successes == 1
    assert recorder.requests == [("xai", "ok", 2.0)]


def test_threads_share_the_primitives_without_losing_a_call() -> None:
    bucket = TokenBucket(1e6, 1e6)
    breaker = CircuitBreaker("massive")
    recorder = Recording()
    lock = threading.Lock()
    calls = 0

    @resilient("massive", limiter=bucket, breaker=breaker, retry=2, metrics=recorder)
    def price(symbol: str) -> float:
        nonlocal calls
        with lock:
            calls += 1
        return 231.5

    def worker() -> None:
        for _ in range(50):
            price("AAPL")

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == bucket.stats.granted == 400
    assert breaker.stats.calls == 400
    assert recorder.outcomes == ["ok"] * 400


def test_one_resilience_decorates_several_functions() -> None:
    recorder = Recording()
    shield = resilient("massive", metrics=recorder)
    assert isinstance(shield, Resilience)
    assert shield.source == "massive"
    assert repr(shield) == "Resilience(source='massive', layers=['metrics'])"

    @shield
    def price(symbol: str) -> float:
        return 231.5

    @shield
    async def quote(symbol: str) -> float:
        return 231.4

    assert price("AAPL") == 231.5
    assert asyncio.run(quote("AAPL")) == 231.4
    assert len(recorder.tracked) == 2


def test_max_wait_defaults_to_ten_seconds() -> None:
    assert DEFAULT_MAX_WAIT == 10.0


# -- configuration --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"source": ""}, "source"),
        ({"source": 5}, "source"),
        ({"cache": "redis://localhost"}, "cache"),
        ({"ttl": 10.0}, "ttl"),
        ({"key": lambda s: s}, "key"),
        ({"cache": RedisCache(), "ttl": -1}, "ttl"),
        ({"cache": RedisCache(), "key": "AAPL"}, "key"),
        ({"limiter": 5}, "limiter"),
        ({"breaker": "massive"}, "breaker"),
        ({"retry": 0}, "retry"),
        ({"retry": True}, "retry"),
        ({"retry": "3"}, "retry"),
        ({"retry": AsyncRetrying()}, "retry"),
        ({"retry": Retrying(retry=retry_if_result(lambda r: r is None))}, "retry.retry"),
        ({"retry": Retrying(before=lambda state: None)}, "retry.before"),
        ({"retry": Retrying(retry_error_callback=lambda s: 0)}, "retry.retry_error_callback"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": float("inf")}, "timeout"),
        ({"fallback": 230.0}, "fallback"),
        ({"metrics": object()}, "metrics"),
        ({"max_wait": -1}, "max_wait"),
        ({"max_wait": None}, "max_wait"),
        ({"clock": "system"}, "clock"),
    ],
)
def test_bad_configuration_is_refused_naming_the_parameter(
    kwargs: dict[str, Any], parameter: str
) -> None:
    source = kwargs.pop("source", "massive")
    with pytest.raises(ConfigError) as caught:
        resilient(source, **kwargs)
    assert caught.value.parameter == parameter


def test_an_async_retry_strategy_is_refused() -> None:
    async def wait(state: Any) -> float:
        return 1.0

    with pytest.raises(ConfigError) as caught:
        resilient("massive", retry=Retrying(wait=wait))
    assert caught.value.parameter == "retry.wait"


def test_a_result_strategy_inside_a_combination_is_refused() -> None:
    strategy = retry_if_exception_type(VendorDown) | retry_if_result(lambda r: r is None)
    with pytest.raises(ConfigError):
        resilient("massive", retry=Retrying(retry=strategy))


def test_functions_of_the_wrong_kind_are_refused_when_decorated() -> None:
    async def quote(symbol: str) -> float:
        return 231.4

    def price(symbol: str) -> float:
        return 231.5

    def ticks(symbol: str) -> Any:
        yield 1.0

    with pytest.raises(ConfigError, match="AsyncRedisCache"):
        resilient("massive", cache=RedisCache())(quote)
    with pytest.raises(ConfigError, match="RedisCache for a sync"):
        resilient("massive", cache=AsyncRedisCache())(price)
    with pytest.raises(ConfigError) as caught:
        resilient("massive", fallback=quote)(price)
    assert caught.value.parameter == "fallback"
    with pytest.raises(ConfigError, match="generator"):
        resilient("massive")(ticks)
    with pytest.raises(ConfigError) as caught:
        resilient("massive")(42)  # type: ignore[call-overload]
    assert caught.value.parameter == "fn"


def _mypy_strict(tmp_path: Any, lines: list[str]) -> tuple[list[str], list[str]]:
    """Run ``mypy --strict`` on a module of ``lines``: the revealed types, and the errors."""
    import mypy.api as mypy_api  # the dev extra (scripts/test installs it): never skipped

    source = tmp_path / "typed.py"
    source.write_text("\n".join(lines) + "\n")
    out, _, _ = mypy_api.run(["--strict", "--no-error-summary", str(source)])
    said = out.splitlines()
    revealed = [line.split("Revealed type is ")[1] for line in said if "Revealed type" in line]
    errors = [line for line in said if ": error:" in line]
    return [text.replace("builtins.", "") for text in revealed], errors


def test_type_checkers_see_the_decorated_functions_signature(tmp_path: Any) -> None:
    revealed, errors = _mypy_strict(
        tmp_path,
        [
            "from argo_perf import AsyncRedisCache, RedisCache, resilient",
            "@resilient('massive', cache=RedisCache(), ttl=10.0)",
            "def price(symbol: str, *, venue: str = 'XNYS') -> float:",
            "    return 1.0",
            "@resilient('massive', cache=AsyncRedisCache())",
            "async def quote(symbol: str) -> float:",
            "    return 1.0",
            "reveal_type(price('AAPL'))",
            "reveal_type(price.with_meta('AAPL').value)",
            "async def main() -> None:",
            "    reveal_type(await quote('AAPL'))",
            "    reveal_type(await quote.with_meta('AAPL'))",
            "price(1)",
        ],
    )
    assert revealed == [
        '"float"',
        '"float"',
        '"float"',
        '"argo_perf.resilience._result.ResilientResult[float]"',
    ]
    assert len(errors) == 1
    assert 'incompatible type "int"; expected "str"' in errors[0]


def test_type_checkers_bind_a_decorated_method_to_its_instance(tmp_path: Any) -> None:
    revealed, errors = _mypy_strict(
        tmp_path,
        [
            "from argo_perf import resilient",
            "class Vendor:",
            "    @resilient('massive', retry=3)",
            "    def quote(self, symbol: str, *, venue: str = 'XNYS') -> float:",
            "        return 1.0",
            "    @resilient('massive')",
            "    async def book(self, symbol: str) -> int:",
            "        return 1",
            "reveal_type(Vendor().quote('AAPL'))",
            "reveal_type(Vendor().quote.with_meta('AAPL', venue='XNAS').value)",
            "reveal_type(Vendor.quote(Vendor(), 'AAPL'))",
            "async def main() -> None:",
            "    reveal_type(await Vendor().book('AAPL'))",
            "    reveal_type(await Vendor().book.with_meta('AAPL'))",
            "Vendor().quote(1)",
        ],
    )
    assert revealed == [
        '"float"',
        '"float"',
        '"float"',
        '"int"',
        '"argo_perf.resilience._result.ResilientResult[int]"',
    ]
    assert len(errors) == 1, errors
    assert 'incompatible type "int"; expected "str"' in errors[0]


@pytest.mark.parametrize("module", [resilience, resilience_decorator, resilience_result])
def test_doctests(module: Any) -> None:
    result = doctest.testmod(module)
    assert result.failed == 0
    assert result.attempted > 0


def test_a_partial_is_cached_only_with_a_key_of_its_own() -> None:
    import functools

    def quote(symbol: str) -> float:
        return {"AAPL": 231.5, "MSFT": 410.0}[symbol]

    cache = RedisCache(maxsize=16)
    # Two partials share a name and take no arguments: a default key would mix them up.
    with pytest.raises(ConfigError, match="key"):
        resilient("massive", cache=cache)(functools.partial(quote, "AAPL"))
    aapl = resilient("massive", cache=cache, key=lambda: "AAPL")(functools.partial(quote, "AAPL"))
    msft = resilient("massive", cache=cache, key=lambda: "MSFT")(functools.partial(quote, "MSFT"))
    assert (aapl(), msft(), aapl()) == (231.5, 410.0, 231.5)


async def test_an_object_with_an_async_call_is_an_async_function() -> None:
    class Quote:
        async def __call__(self, symbol: str) -> float:
            return 231.5

    fetch = resilient("massive", retry=2)(Quote())
    assert await fetch("AAPL") == 231.5
