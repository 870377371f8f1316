"""TokenBucket, RateLimiter and their arithmetic: specifications run on a ManualClock."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from argo_perf import (
    BucketStats,
    ConfigError,
    ManualClock,
    Quota,
    RateLimitConfig,
    RateLimiter,
    RateLimitExceeded,
    TokenBucket,
    get_rate_limiter,
)
from argo_perf._redis import BackendHealth
from argo_perf.ratelimit import DEFAULT_CONFIGS
from argo_perf.ratelimit._gcra import _Reservation, _TokenMath, _windows

# -- configuration ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "burst", "parameter"),
    [
        (0, 1, "rate"),
        (-1.0, 1, "rate"),
        (math.nan, 1, "rate"),
        (math.inf, 1, "rate"),
        (True, 1, "rate"),
        ("5", 1, "rate"),
        (1, 0, "burst"),
        (1, 0.5, "burst"),
        (1, math.inf, "burst"),
    ],
)
def test_bad_rate_or_burst_is_a_config_error_naming_the_parameter(
    rate: object, burst: object, parameter: str
) -> None:
    with pytest.raises(ConfigError) as info:
        TokenBucket(rate, burst)  # type: ignore[arg-type]
    assert info.value.parameter == parameter
    assert repr(info.value.value) in str(info.value)


def test_bad_quotas_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="limit"):
        Quota(0, 60)
    with pytest.raises(ConfigError, match="period"):
        Quota(5, 0)
    with pytest.raises(ConfigError, match="quotas"):
        TokenBucket(1, 1, quotas=[(5, 60)])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="quotas"):
        RateLimitConfig(1, 1, quotas=[(5, 60)])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "parameter", "value"),
    [
        (lambda b: b.acquire(1, timeout=-1), "timeout", -1),
        (lambda b: b.acquire(1, timeout=math.nan), "timeout", math.nan),
        (lambda b: b.acquire(1, timeout=True), "timeout", True),
        (lambda b: b.penalize(-1), "retry_after", -1),
        (lambda b: b.penalize(math.inf), "retry_after", math.inf),
        (lambda b: b.reconfigure(0, 1), "rate", 0),
        (lambda b: b.reconfigure(1, True), "burst", True),
    ],
)
def test_bad_arguments_on_use_are_config_errors_naming_them(
    call: Callable[[TokenBucket], object], parameter: str, value: object
) -> None:
    bucket = TokenBucket(1, 1, clock=ManualClock())
    with pytest.raises(ConfigError) as info:
        call(bucket)
    assert isinstance(info.value, ValueError)  # as before, for generic handlers
    assert info.value.parameter == parameter
    assert repr(value) in str(info.value)


def test_a_health_gate_without_redis_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="health"):
        RateLimiter({}, health=BackendHealth("nowhere"))


def test_config_from_a_plain_mapping() -> None:
    config = RateLimitConfig.from_mapping(
        {"requests_per_second": 5, "burst_size": 5, "quotas": [{"limit": 25, "period": 86400}]}
    )
    assert config == RateLimitConfig(5, 5, (Quota(25, 86400),))
    assert Quota(25, 86400).rate == pytest.approx(25 / 86400)
    with pytest.raises(ConfigError, match="unknown keys"):
        RateLimitConfig.from_mapping({"requests_per_second": 5, "burst": 5})
    with pytest.raises(ConfigError, match="incomplete"):
        RateLimitConfig.from_mapping({"requests_per_second": 5})
    with pytest.raises(ConfigError, match="quotas"):
        RateLimitConfig.from_mapping({"requests_per_second": 5, "burst_size": 1, "quotas": 3})
    with pytest.raises(ConfigError, match="mapping"):
        Quota.from_mapping([25, 60])  # type: ignore[arg-type]


def test_too_many_tokens_raise_value_error_at_once(clock: ManualClock) -> None:
    bucket = TokenBucket(1, 5, quotas=[Quota(3, 60)], clock=clock)
    for call in (bucket.try_acquire, bucket.acquire):
        with pytest.raises(ValueError, match="burst"):
            call(4)
        with pytest.raises(ValueError, match="burst"):
            call(0)
    with pytest.raises(ValueError, match="burst"):
        asyncio.run(bucket.acquire_async(6))
    with pytest.raises(ValueError, match="timeout"):
        bucket.acquire(1, timeout=-1)
    with pytest.raises(ValueError, match="retry_after"):
        bucket.penalize(-1)
    with pytest.raises(ValueError, match="retry_after"):
        bucket.penalize(float("inf"))  # would block every waiter for good
    assert bucket.try_acquire()
    assert clock.sleepers == 0


# -- in-process bucket -----------------------------------------------------------


def test_bucket_starts_full_and_refills_at_its_rate(clock: ManualClock) -> None:
    bucket = TokenBucket(rate=2, burst=4, clock=clock)
    assert [bucket.try_acquire() for _ in range(5)] == [True] * 4 + [False]
    assert bucket.wait_time() == pytest.approx(0.5)
    clock.advance(0.5)
    assert bucket.try_acquire()
    assert not bucket.try_acquire()
    clock.advance(100)
    assert bucket.available == pytest.approx(4)
    assert bucket.try_acquire(4)
    assert "rate=2" in repr(bucket)


def test_exact_refills_are_not_lost_to_rounding(clock: ManualClock) -> None:
    bucket = TokenBucket(rate=3, burst=1, clock=clock)
    for _ in range(1000):
        assert bucket.try_acquire()
        clock.advance(1 / 3)


def test_acquire_that_cannot_succeed_in_time_returns_false_at_once(clock: ManualClock) -> None:
    bucket = TokenBucket(rate=1, burst=2, clock=clock)
    assert bucket.try_acquire(2)
    assert bucket.acquire(1, timeout=0.5) is False
    assert asyncio.run(bucket.acquire_async(2, timeout=1.5)) is False
    assert clock.sleepers == 0
    clock.advance(1)
    assert bucket.try_acquire()  # the denials took nothing


def test_blocking_acquire_sleeps_exactly_until_the_tokens_exist(clock: ManualClock) -> None:
    bucket = TokenBucket(rate=1, burst=3, clock=clock)
    assert bucket.try_acquire(3)
    done = threading.Event()
    thread = threading.Thread(target=lambda: done.set() if bucket.acquire(2) else None)
    thread.start()
    while clock.sleepers == 0:
        threading.Event().wait(0.001)
    clock.advance(1.999)
    assert not done.wait(0.05)
    clock.advance(0.001)
    thread.join(5)
    assert done.is_set()


def test_autoadvance_clock_runs_waiting_code_instantly() -> None:
    clock = ManualClock(autoadvance=True)
    bucket = TokenBucket(rate=10, burst=1, clock=clock)
    for _ in range(20):
        assert bucket.acquire()
    assert clock.monotonic() == pytest.approx(1.9)


async def test_acquire_async_with_tokens_available_does_not_sleep(clock: ManualClock) -> None:
    bucket = TokenBucket(rate=1, burst=2, clock=clock)
    assert await bucket.acquire_async()
    assert await bucket.acquire_async(timeout=0)
    assert not await bucket.acquire_async(timeout=0)


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_waiter_for_five_tokens_is_not_overtaken_by_one_token_requests(
    clock: ManualClock,
) -> None:
    bucket = TokenBucket(rate=1, burst=5, clock=clock)
    assert bucket.try_acquire(5)
    big = asyncio.create_task(bucket.acquire_async(5))
    await _settle()
    for _ in range(4):
        clock.advance(1)
        await _settle()
        assert not bucket.try_acquire(1)
        assert not big.done()
    clock.advance(1)
    assert await big
    assert not bucket.try_acquire(1)


async def test_waiters_are_served_in_arrival_order(clock: ManualClock) -> None:
    bucket = TokenBucket(rate=2, burst=3, clock=clock)
    assert bucket.try_acquire(3)
    served: list[int] = []

    async def waiter(i: int, tokens: int) -> None:
        await bucket.acquire_async(tokens)
        served.append(i)

    sizes = [3, 1, 2, 1, 3, 1]
    tasks = []
    for i, tokens in enumerate(sizes):
        tasks.append(asyncio.create_task(waiter(i, tokens)))
        await _settle()
    while not all(task.done() for task in tasks):
        clock.advance(0.25)
        await _settle()
    assert served == list(range(len(sizes)))
    assert clock.monotonic() == pytest.approx(sum(sizes) / 2, abs=0.25)


async def test_cancelled_waiter_gives_its_place_back(clock: ManualClock) -> None:
    bucket = TokenBucket(rate=1, burst=2, clock=clock)
    assert bucket.try_acquire(2)
    first = asyncio.create_task(bucket.acquire_async(2))
    await _settle()
    assert bucket.wait_time(1) == pytest.approx(3)  # queued behind the first waiter
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert bucket.wait_time(1) == pytest.approx(1)
    clock.advance(1)
    assert bucket.try_acquire(1)
    assert clock.sleepers == 0


async def test_cancelled_waiter_does_not_delay_those_behind_it(clock: ManualClock) -> None:
    bucket = TokenBucket(rate=1, burst=1, clock=clock)
    assert bucket.try_acquire()
    first = asyncio.create_task(bucket.acquire_async())
    await _settle()
    second = asyncio.create_task(bucket.acquire_async())
    await _settle()
    first.cancel()
    await _settle()
    clock.advance(2)
    await _settle()
    assert await second


async def test_cancelled_waiter_in_the_middle_keeps_what_later_waiters_need(
    clock: ManualClock,
) -> None:
    bucket = TokenBucket(rate=4, burst=5, clock=clock)
    assert bucket.try_acquire(3)
    first = asyncio.create_task(bucket.acquire_async(3, timeout=1))  # due at 0.25
    await _settle()
    second = asyncio.create_task(bucket.acquire_async(3, timeout=1))  # due at 1.0
    await _settle()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    # 3 tokens at 0 and 3 at 1.0: the next 3 exist at 1.25, not at 1.0 beside the second's.
    assert bucket.wait_time(3) == pytest.approx(1.25)
    third = asyncio.create_task(bucket.acquire_async(3, timeout=1.25))
    await _settle()
    clock.advance(1)
    await _settle()
    assert await second
    assert not third.done()
    clock.advance(0.25)
    assert await third


def test_a_refund_respects_penalties_and_due_reservations() -> None:
    math_ = _TokenMath(_windows(1, 2, ()), 2.0)
    assert math_.reserve(0, 2, 0) == 0.0
    assert math_.reserve(0, 2, 5) == 2.0
    reservation = math_.pending[-1]
    math_.penalize(0, 10)
    math_.refund(0, reservation)  # the penalty still holds
    assert math_.wait_time(0, 1) == pytest.approx(10)
    assert math_.reserve(10, 2, 5) == 1.0
    reservation = math_.pending[-1]
    math_.refund(11, reservation)  # its tokens were due: they count as taken
    assert math_.wait_time(11, 2) == pytest.approx(2)
    assert not math_.pending


def test_a_waiter_cancelled_after_a_reconfigure_gives_its_tokens_back() -> None:
    math_ = _TokenMath(_windows(1, 2, ()), 2.0)
    assert math_.reserve(0, 2, 0) == 0.0
    assert math_.reserve(0, 2, 5) == 2.0
    math_ = math_.rescaled(0, _windows(2, 2, ()), 2.0)  # twice the rate: 4 tokens owe 2 s
    assert math_.wait_time(0, 2) == pytest.approx(2)
    math_.refund(0, math_.pending[-1])
    assert math_.wait_time(0, 2) == pytest.approx(1)


def test_interrupted_blocking_acquire_gives_its_tokens_back(clock: ManualClock) -> None:
    class Interrupted(Exception):
        pass

    class InterruptingClock(ManualClock):
        def sleep(self, seconds: float) -> None:
            raise Interrupted

    clock = InterruptingClock()
    bucket = TokenBucket(rate=1, burst=1, clock=clock)
    assert bucket.try_acquire()
    with pytest.raises(Interrupted):
        bucket.acquire()
    assert bucket.wait_time() == pytest.approx(1)


def test_threads_never_take_more_than_the_burst(clock: ManualClock) -> None:
    bucket = TokenBucket(rate=1, burst=100, clock=clock)
    granted: list[bool] = []

    def hammer() -> None:
        granted.extend(bucket.try_acquire() for _ in range(200))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(granted) == 100


# -- several windows ---------------------------------------------------------------


def test_acquire_needs_every_window_and_a_denial_takes_from_none(clock: ManualClock) -> None:
    bucket = TokenBucket(rate=5, burst=5, quotas=[Quota(25, 86_400)], clock=clock)
    granted = 0
    for _ in range(100):
        granted += bucket.try_acquire()
        clock.advance(0.1)
    assert granted == 25  # the daily quota, reached within seconds
    assert not bucket.try_acquire()
    assert bucket.stats.granted == 25
    assert bucket.stats.denied == 76
    assert bucket.wait_time() == pytest.approx(86_400 / 25 - 10 + 0.1 * 5, rel=0.01)


def test_quota_denial_leaves_the_rate_window_untouched(clock: ManualClock) -> None:
    bucket = TokenBucket(rate=1, burst=2, quotas=[Quota(3, 100)], clock=clock)
    assert bucket.try_acquire(2)
    assert not bucket.try_acquire()  # main window empty: the quota keeps its token
    clock.advance(1)
    assert bucket.try_acquire()  # the quota's third token
    clock.advance(10)
    assert not bucket.try_acquire()
    assert bucket.available < 1  # the quota is the tightest window
    bucket.reconfigure(1, 2)  # without the quota: the rate window is full again
    assert bucket.available == pytest.approx(2)


async def test_waiting_with_quotas_is_scheduled_by_the_tightest_window(
    clock: ManualClock,
) -> None:
    bucket = TokenBucket(rate=10, burst=1, quotas=[Quota(2, 10)], clock=clock)
    assert bucket.try_acquire()
    assert bucket.try_acquire() is False
    clock.advance(0.1)
    assert bucket.try_acquire()
    waiter = asyncio.create_task(bucket.acquire_async())
    await _settle()
    assert bucket.wait_time() > 5
    clock.advance(4.8)
    await _settle()
    assert not waiter.done()
    clock.advance(0.2)
    assert await waiter
    assert not bucket.try_acquire()


# -- penalties and reconfiguration ---------------------------------------------


def test_penalize_grants_nothing_until_retry_after(clock: ManualClock) -> None:
    bucket = TokenBucket(rate=10, burst=10, quotas=[Quota(100, 60)], clock=clock)
    bucket.penalize(30)
    clock.advance(29.9)
    assert not bucket.try_acquire()
    clock.advance(0.1)
    assert bucket.try_acquire()
    assert not bucket.try_acquire()
    bucket.penalize(0)  # never shortens a penalty nor refills


def test_reconfigure_keeps_what_was_spent(clock: ManualClock) -> None:
    bucket = TokenBucket(rate=1, burst=5, clock=clock)
    assert bucket.try_acquire(5)
    bucket.reconfigure(10, 5)
    assert not bucket.try_acquire()  # nothing refilled by reconfiguring
    clock.advance(0.1)  # the 5 spent tokens are paid back at the new rate of 10/s
    assert bucket.try_acquire(1)
    assert not bucket.try_acquire(1)
    bucket.reconfigure(10, 10)  # the 5 spent still count against the larger burst
    assert bucket.try_acquire(5)
    assert not bucket.try_acquire(1)
    bucket.reconfigure(10, 10, [Quota(2, 60)])  # a new window starts full
    clock.advance(10)
    assert bucket.try_acquire(2)
    assert not bucket.try_acquire(1)
    bucket.reconfigure(10, 20)  # quota dropped; the 2 just spent still count
    assert bucket.try_acquire(18)
    assert not bucket.try_acquire(1)
    assert bucket.quotas == ()
    with pytest.raises(ConfigError):
        bucket.reconfigure(0, 1)


# -- invariants --------------------------------------------------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("try"), st.integers(1, 5)),
        st.tuples(st.just("reserve"), st.integers(1, 5), st.floats(0, 20)),
        st.tuples(st.just("advance"), st.floats(0, 3)),
        st.tuples(st.just("cancel"), st.integers(0, 50)),
    ),
    max_size=60,
)


def _assert_within_every_window(
    grants: list[tuple[float, float]], windows: list[tuple[float, float]]
) -> None:
    """Tokens granted in any interval [s, t] <= burst + rate * (t - s), for every window."""
    grants = sorted(grants)
    for rate, burst in windows:
        for i, (start, _) in enumerate(grants):
            total = 0.0
            for when, tokens in grants[i:]:
                total += tokens
                assert total <= burst + rate * (when - start) + 1e-6, (rate, burst, grants)


@settings(max_examples=150, deadline=None)
@given(
    rate=st.floats(0.1, 50),
    burst=st.integers(5, 20),
    quota=st.one_of(st.none(), st.tuples(st.integers(5, 40), st.floats(1, 100))),
    ops=operations,
)
# A waiter cancelled in the middle of the queue must not hand back the tokens the
# waiter behind it was scheduled against.
@example(
    rate=4.0,
    burst=5,
    quota=None,
    ops=[("try", 3), ("reserve", 3, 1.0), ("reserve", 3, 1.0), ("cancel", 0), ("reserve", 3, 1.0)],
)
def test_granted_never_exceeds_burst_plus_rate_times_elapsed(
    rate: float, burst: int, quota: tuple[int, float] | None, ops: list[tuple[object, ...]]
) -> None:
    quotas = [] if quota is None else [Quota(*quota)]
    windows = [(rate, float(burst))] + [(q.rate, q.limit) for q in quotas]
    math_ = _TokenMath(_windows(rate, burst, quotas), float(burst))
    now = 0.0
    granted: list[tuple[float, float]] = []
    pending: list[_Reservation] = []
    for op in ops:
        if op[0] == "advance":
            now += op[1]  # type: ignore[operator]
            granted += [(p.grant, p.tokens) for p in pending if p.grant <= now]
            pending = [p for p in pending if p.grant > now]
        elif op[0] == "cancel":
            if pending:
                math_.refund(now, pending.pop(op[1] % len(pending)))  # type: ignore[operator]
        else:
            tokens = float(op[1])  # type: ignore[arg-type]
            max_wait = 0.0 if op[0] == "try" else float(op[2])  # type: ignore[arg-type]
            wait = math_.reserve(now, tokens, max_wait)
            assert wait <= max_wait
            if wait == 0.0:
                granted.append((now, tokens))
            elif wait > 0:
                assert math_.pending[-1].grant == now + wait
                pending.append(math_.pending[-1])
    granted += [(p.grant, p.tokens) for p in pending]
    _assert_within_every_window(granted, windows)


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 5), min_size=1, max_size=12),
    rate=st.floats(0.5, 10),
)
def test_reservations_are_granted_in_arrival_order(sizes: list[int], rate: float) -> None:
    math_ = _TokenMath(_windows(rate, 5, ()), 5.0)
    now = 0.0
    grant_times = []
    for tokens in sizes:
        grant_times.append(now + math_.reserve(now, tokens, math.inf))
        now += 0.01
    assert grant_times == sorted(grant_times)


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(1, 3), st.floats(0, 1)), max_size=40),
)
def test_blocking_face_keeps_the_invariant(steps: list[tuple[int, float]]) -> None:
    clock = ManualClock(autoadvance=True)
    bucket = TokenBucket(rate=4, burst=3, clock=clock)
    grants: list[tuple[float, float]] = []
    for tokens, pause in steps:
        if bucket.acquire(tokens, timeout=1.0):
            grants.append((clock.monotonic(), tokens))
        clock.advance(pause)
    _assert_within_every_window(grants, [(4.0, 3.0)])


# -- the registry ------------------------------------------------------------------


def test_registry_has_the_seed_defaults() -> None:
    limiter = RateLimiter()
    assert limiter.sources == ["alpha_vantage", "massive", "sonar", "xai"]
    assert limiter.config("massive") == RateLimitConfig(5, 10)
    assert limiter.config("alpha_vantage") == RateLimitConfig(0.2, 5)
    assert limiter.config("xai") == RateLimitConfig(1, 5)
    assert limiter.config("sonar") == RateLimitConfig(1, 5)
    assert dict(DEFAULT_CONFIGS) == {s: limiter.config(s) for s in limiter.sources}
    assert get_rate_limiter() is get_rate_limiter()
    assert "massive" in repr(limiter)


def test_unknown_source_is_a_config_error_unless_a_default_is_set(clock: ManualClock) -> None:
    limiter = RateLimiter({"massive": {"requests_per_second": 5, "burst_size": 10}}, clock=clock)
    with pytest.raises(ConfigError, match="nobody"):
        limiter.try_acquire("nobody")
    with_default = RateLimiter({}, default={"requests_per_second": 1, "burst_size": 1}, clock=clock)
    assert with_default.try_acquire("a")
    assert with_default.try_acquire("b")  # each unknown source has a bucket of its own
    assert not with_default.try_acquire("a")
    assert with_default.bucket("a") is with_default.bucket("a")


def test_registry_rejects_bad_configs() -> None:
    with pytest.raises(ConfigError, match="configs"):
        RateLimiter([("a", RateLimitConfig(1, 1))])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="source"):
        RateLimiter({"": RateLimitConfig(1, 1)})
    with pytest.raises(ConfigError, match="configs"):
        RateLimiter({"a": 5})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="burst_size"):
        RateLimiter({"a": {"requests_per_second": 1, "burst_size": 0}})


async def test_wait_for_permission_raises_when_it_gives_up(clock: ManualClock) -> None:
    limiter = RateLimiter({"xai": RateLimitConfig(1, 2)}, clock=clock)
    await limiter.wait_for_permission("xai")
    await limiter.wait_for_permission("xai", timeout=0)
    with pytest.raises(RateLimitExceeded) as info:
        await limiter.wait_for_permission("xai", timeout=0.5)
    assert info.value.source == "xai"
    assert info.value.retry_after == pytest.approx(1)
    waiter = asyncio.create_task(limiter.wait_for_permission("xai", timeout=2))
    await _settle()
    clock.advance(1)
    await waiter
    with pytest.raises(RateLimitExceeded):
        limiter.wait_for_permission_sync("xai", timeout=0.1)
    clock.advance(1)
    limiter.wait_for_permission_sync("xai", timeout=0)


def test_reconfigure_and_penalize_through_the_registry(clock: ManualClock) -> None:
    limiter = RateLimiter({"massive": RateLimitConfig(5, 10)}, clock=clock)
    assert limiter.try_acquire("massive", 10)
    limiter.reconfigure("massive", {"requests_per_second": 50, "burst_size": 10})
    assert limiter.config("massive") == RateLimitConfig(50, 10)
    assert not limiter.try_acquire("massive")
    clock.advance(0.2)
    assert limiter.try_acquire("massive", 10)
    limiter.penalize("massive", 60)
    clock.advance(59)
    assert not limiter.try_acquire("massive")
    clock.advance(1)
    assert limiter.try_acquire("massive")
    with pytest.raises(ConfigError, match=r"known: \['massive'\]\), got 'sonar'"):
        limiter.reconfigure("sonar", RateLimitConfig(1, 5))
    limiter.configure("sonar", RateLimitConfig(1, 5))
    assert limiter.try_acquire("sonar", 5)
    limiter.reconfigure("sonar", RateLimitConfig(1, 2))
    assert limiter.config("sonar") == RateLimitConfig(1, 2)


# -- penalties hold for waiters already queued ------------------------------------------


async def _granted_at(clock: ManualClock, acquire: object, seen: list[float]) -> None:
    assert await acquire is not False  # type: ignore[misc]
    seen.append(clock.monotonic())


async def _step_until(clock: ManualClock, end: float, step: float = 0.5) -> None:
    while clock.monotonic() < end:
        clock.advance(step)
        await _settle()


async def test_penalize_holds_back_async_waiters_already_queued(clock: ManualClock) -> None:
    bucket = TokenBucket(rate=1, burst=1, clock=clock)
    assert bucket.try_acquire()
    seen: list[float] = []
    waiters = [
        asyncio.create_task(_granted_at(clock, bucket.acquire_async(), seen)) for _ in range(2)
    ]
    await _settle()  # due at t=1 and t=2
    bucket.penalize(10)
    await _step_until(clock, 9.5)
    assert seen == []
    assert not bucket.try_acquire()
    await _step_until(clock, 12)
    await asyncio.gather(*waiters)
    assert seen == [10.0, 11.0]  # one token at the end of the penalty, then the rate


def test_penalize_holds_back_a_blocked_thread(clock: ManualClock) -> None:
    bucket = TokenBucket(rate=1, burst=1, clock=clock)
    assert bucket.try_acquire()
    done: list[float] = []
    thread = threading.Thread(target=lambda: done.append(bucket.acquire() and clock.monotonic()))
    thread.start()
    while clock.sleepers == 0:
        threading.Event().wait(0.001)
    bucket.penalize(5)
    clock.advance(1)  # the old grant time: the thread wakes, and sleeps on
    while clock.sleepers == 0 and thread.is_alive():
        threading.Event().wait(0.001)
    assert done == []
    clock.advance(4)
    thread.join(5)
    assert done == [5.0]


async def test_penalize_through_the_registry_holds_queued_waiters(clock: ManualClock) -> None:
    limiter = RateLimiter({"xai": RateLimitConfig(1, 1)}, clock=clock)
    assert limiter.try_acquire("xai")
    seen: list[float] = []
    waiter = asyncio.create_task(_granted_at(clock, limiter.wait_for_permission("xai"), seen))
    await _settle()
    limiter.penalize("xai", 3)
    await _step_until(clock, 2.5)
    assert seen == []
    await _step_until(clock, 3)
    await waiter
    assert seen == [3.0]


def test_penalize_moves_waiters_under_every_window() -> None:
    math_ = _TokenMath(_windows(1, 5, [Quota(10, 100)]), 5.0)
    assert math_.reserve(0, 5, 0) == 0.0
    assert math_.reserve(0, 3, 10) == pytest.approx(3)
    math_.penalize(0, 20)
    # Every window has one token at t=20 and refills at its rate after it: the
    # quota (one token per 10 s) has the 3 tokens at t=40.
    assert math_.pending[-1].grant == pytest.approx(40)
    assert math_.wait_time(0, 1) == pytest.approx(50)


# -- cancelled waiters give their capacity back ------------------------------------------


async def test_waiters_cancelled_in_arrival_order_give_everything_back(
    clock: ManualClock,
) -> None:
    bucket = TokenBucket(rate=1, burst=1, clock=clock)
    assert bucket.try_acquire()
    a, b, c = (asyncio.create_task(bucket.acquire_async()) for _ in range(3))
    await _settle()
    assert bucket.wait_time() == pytest.approx(4)
    for task in (a, b, c):  # how timeouts fire
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert bucket.wait_time() == pytest.approx(1)


async def test_a_timeout_storm_leaves_the_bucket_at_its_rate(clock: ManualClock) -> None:
    bucket = TokenBucket(rate=10, burst=1, clock=clock)
    assert bucket.try_acquire()
    # 50 callers give up after 0.05 s each, as asyncio.wait_for(..., 0.05) would:
    # their timeouts fire in arrival order.
    waiters = [asyncio.create_task(bucket.acquire_async()) for _ in range(50)]
    await _settle()
    clock.advance(0.05)
    for task in waiters:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert bucket.wait_time() == pytest.approx(0.05)  # the rate: 0.1 s after the last grant
    clock.advance(0.05)
    assert bucket.try_acquire()


async def test_cancelled_registry_waiters_give_their_capacity_back(clock: ManualClock) -> None:
    limiter = RateLimiter({"sonar": RateLimitConfig(1, 1)}, clock=clock)
    assert limiter.try_acquire("sonar")
    tasks = [asyncio.create_task(limiter.wait_for_permission("sonar")) for _ in range(5)]
    await _settle()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert limiter.bucket("sonar").wait_time() == pytest.approx(1)


def _replay(grants: list[tuple[float, float]], rate: float, burst: float) -> float:
    tat = -math.inf
    for grant, tokens in grants:
        tat = max(tat, grant) + tokens / rate
    return tat


@settings(max_examples=150, deadline=None)
@given(
    burst=st.integers(1, 4),
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("arrive"), st.integers(1, 4)),
            st.tuples(st.just("cancel"), st.integers(0, 30)),
            st.tuples(st.just("advance"), st.integers(1, 8)),
        ),
        max_size=40,
    ),
)
@example(burst=1, ops=[("arrive", 1)] * 4 + [("cancel", 0)] * 3)
def test_random_arrivals_and_cancellations_neither_over_grant_nor_lose(
    burst: int, ops: list[tuple[str, int]]
) -> None:
    """Grants fit the bucket; once no waiter is left, only the grants made count."""
    rate = 1.0

    async def scenario() -> None:
        clock = ManualClock()
        bucket = TokenBucket(rate=rate, burst=burst, clock=clock)
        grants: list[tuple[int, float, float]] = []  # arrival, time, tokens
        live: list[asyncio.Task[None]] = []

        async def waiter(arrival: int, tokens: float) -> None:
            assert await bucket.acquire_async(tokens)
            grants.append((arrival, clock.monotonic(), tokens))

        for arrival, (op, n) in enumerate(ops):
            if op == "arrive" and n <= burst:
                live.append(asyncio.create_task(waiter(arrival, n)))
            elif op == "cancel" and live:
                task = live.pop(n % len(live))
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            elif op == "advance":
                for _ in range(n):  # quarter seconds: every grant time is on this grid
                    clock.advance(0.25)
                    await _settle()
            await _settle()
            live = [task for task in live if not task.done()]
        for task in live:
            task.cancel()
        await asyncio.gather(*live, return_exceptions=True)
        # Nothing over-granted: in time order, every grant fits the bucket.
        tat = -math.inf
        for _, when, tokens in sorted(grants, key=lambda g: (g[1], g[0])):
            tat = max(tat, when) + tokens / rate
            assert tat - burst / rate <= when + 1e-9
        # Nothing lost: the bucket holds exactly the grants made (in arrival order).
        now = clock.monotonic()
        expected = _replay([(when, tokens) for _, when, tokens in sorted(grants)], rate, burst)
        assert bucket.wait_time() == pytest.approx(max(0.0, max(expected, now) + 1 - burst - now))

    asyncio.run(scenario())


# -- stats and registry verbs ------------------------------------------------------


async def test_stats_are_a_frozen_snapshot_of_what_the_bucket_did(clock: ManualClock) -> None:
    bucket = TokenBucket(rate=1, burst=2, clock=clock)
    assert bucket.try_acquire(2)
    assert not bucket.try_acquire()
    assert not await bucket.acquire_async(timeout=0)
    waiter = asyncio.create_task(bucket.acquire_async())
    await _settle()
    clock.advance(1)
    assert await waiter
    cancelled = asyncio.create_task(bucket.acquire_async())
    await _settle()
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    bucket.penalize(1)
    stats = bucket.stats
    assert stats == BucketStats(
        rate=1.0, burst=2.0, granted=2, denied=2, waited=2, cancelled=1, penalties=1
    )
    with pytest.raises(AttributeError):
        stats.granted = 0  # type: ignore[misc]


def test_registry_verbs(clock: ManualClock) -> None:
    limiter = RateLimiter({"b": RateLimitConfig(1, 1), "a": RateLimitConfig(1, 1)}, clock=clock)
    assert limiter.names() == ["a", "b"] == list(limiter) == limiter.sources
    assert "a" in limiter
    assert "z" not in limiter
    assert len(limiter) == 2
    assert limiter.get("a") is limiter.bucket("a")
    with pytest.raises(ConfigError, match=r"known: \['a', 'b'\]"):
        limiter.get("z")
    limiter.configure("z", {"requests_per_second": 2, "burst_size": 3})
    assert limiter.get("z").burst == 3
    assert limiter.try_acquire("z", 3)
    limiter.configure("z", RateLimitConfig(2, 5))  # a live bucket keeps what it spent
    assert not limiter.try_acquire("z", 3)
    assert limiter.stats["z"].granted == 1
    assert set(limiter.stats) == {"a", "b", "z"}
    with pytest.raises(ConfigError, match="source"):
        limiter.configure("", RateLimitConfig(1, 1))


def test_a_thousand_sources_hold_under_800_bytes_each() -> None:
    import gc
    import tracemalloc

    sources = [f"vendor{i:04d}" for i in range(1000)]
    configs = dict.fromkeys(sources, RateLimitConfig(5.0, 10))
    gc.collect()
    tracemalloc.start()
    try:
        limiter = RateLimiter(configs)
        for source in sources:
            assert limiter.try_acquire(source)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # About 700 bytes on CPython 3.11 (860 before the bucket's fields moved to slots).
    assert held / len(sources) < 800


def test_a_token_bucket_can_be_weakly_referenced() -> None:
    import weakref

    bucket = TokenBucket(5, 10)
    assert weakref.ref(bucket)() is bucket
