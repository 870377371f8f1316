"""aiolimiter's and limits' (in-memory) test suites, restated on TokenBucket / RateLimiter.

Each test names the peer test it comes from. The peers' vocabulary maps onto ours
through `_Limit`, a thin adapter over a real `TokenBucket` ("``amount`` per
``period``" is ``TokenBucket(amount / period, amount)``: the bucket starts full
and refills continuously). Where our documented behaviour intentionally differs
(strict first come, first served; impossible requests raise; a token bucket is not
a moving window), the test asserts ours and says so. Time is a `ManualClock`.
"""

from __future__ import annotations

import asyncio
import math
import threading
import warnings
from collections.abc import Iterable
from typing import Any

import pytest

from argo_perf import (
    ManualClock,
    Quota,
    RateLimitConfig,
    RateLimiter,
    RateLimitExceeded,
    TokenBucket,
)

# -- the adapter -------------------------------------------------------------------


class _Limit:
    """The peers' verbs on a real `TokenBucket`: ``amount`` requests per ``period`` seconds."""

    def __init__(self, amount: float, period: float, clock: ManualClock) -> None:
        self.amount = amount
        self.bucket = TokenBucket(amount / period, amount, clock=clock)

    def hit(self, cost: float = 1) -> bool:
        """limits' ``hit``: take ``cost`` now or not at all."""
        return self.bucket.try_acquire(cost)

    def test(self, cost: float = 1) -> bool:
        """limits' ``test`` / aiolimiter's ``has_capacity``: would ``cost`` be granted now?"""
        return self.bucket.wait_time(cost) == 0.0

    @property
    def remaining(self) -> int:
        """limits' ``get_window_stats().remaining``: whole requests that fit now."""
        return math.floor(self.bucket.available + 1e-9)

    @property
    def reset_in(self) -> float:
        """limits' ``reset_time - now``: seconds until the bucket is full again."""
        return self.bucket.wait_time(self.amount)


async def _settle() -> None:
    """Let woken tasks run (a `ManualClock` wakes them through the loop)."""
    for _ in range(5):
        await asyncio.sleep(0)


async def _advance_to(clock: ManualClock, when: float) -> None:
    clock.advance(when - clock.monotonic())
    await _settle()


def _pending(tasks: Iterable[asyncio.Task[Any]]) -> int:
    return sum(not task.done() for task in tasks)


# -- aiolimiter ----------------------------------------------------------------------


def test_limit_attributes_are_the_configured_rate_and_burst(clock: ManualClock) -> None:
    # aiolimiter test_attributes (max_rate=42 per time_period=81 is rate 42/81, burst 42)
    limit = _Limit(42, 81, clock)
    assert limit.bucket.rate == pytest.approx(42 / 81)
    assert limit.bucket.burst == 42
    assert (limit.bucket.stats.rate, limit.bucket.stats.burst) == (limit.bucket.rate, 42)


async def test_has_capacity_until_the_burst_is_taken(clock: ManualClock) -> None:
    # aiolimiter test_has_capacity (its has_capacity(42) is wait_time_says_never below)
    limit = _Limit(1, 60, clock)
    assert limit.test()
    assert await limit.bucket.acquire_async()
    assert not limit.test()
    assert limit.bucket.wait_time() == pytest.approx(60)


def test_wait_time_for_more_than_the_burst_says_never(clock: ManualClock) -> None:
    # aiolimiter test_has_capacity: has_capacity(42) on a limiter of 1 is False, for good
    bucket = TokenBucket(1 / 60, 1, clock=clock)
    for tokens in (42, 0, -1, math.nan):
        with pytest.raises(ValueError, match="burst"):
            bucket.wait_time(tokens)


async def test_acquiring_more_than_the_burst_raises_on_every_face(clock: ManualClock) -> None:
    # aiolimiter test_over_acquire
    bucket = TokenBucket(1 / 60, 1, clock=clock)
    limiter = RateLimiter({"src": RateLimitConfig(1 / 60, 1)}, clock=clock)
    with pytest.raises(ValueError, match="burst"):
        await bucket.acquire_async(42)
    with pytest.raises(ValueError, match="burst"):
        bucket.acquire(42)
    with pytest.raises(ValueError, match="burst"):
        bucket.try_acquire(42)
    with pytest.raises(ValueError, match="burst"):
        await limiter.wait_for_permission("src", tokens=42)
    assert bucket.try_acquire()
    assert limiter.try_acquire("src")
    assert clock.sleepers == 0


@pytest.mark.parametrize("face", ["bucket.acquire_async", "limiter.wait_for_permission"])
async def test_waiters_beyond_the_burst_are_released_at_the_rate(
    clock: ManualClock, face: str
) -> None:
    # aiolimiter test_acquire (5 per 10 s, 10 tasks); at t=3 it has capacity to spare,
    # we do not: the 0.5 token is reserved by the waiter due at t=4 (first come, first served).
    limiter = RateLimiter({"src": RateLimitConfig(0.5, 5)}, clock=clock)
    bucket = limiter.get("src")

    async def acquire() -> None:
        if face == "bucket.acquire_async":
            assert await bucket.acquire_async()
        else:
            await limiter.wait_for_permission("src")

    tasks = [asyncio.create_task(acquire()) for _ in range(10)]
    await _settle()
    assert _pending(tasks) == 5
    await _advance_to(clock, 3)
    assert _pending(tasks) == 4
    assert bucket.wait_time() == pytest.approx(9)  # behind the 4 queued: at t=12
    await _advance_to(clock, 7)
    assert _pending(tasks) == 2
    await _advance_to(clock, 11)
    assert _pending(tasks) == 0
    await asyncio.gather(*tasks)
    assert (bucket.stats.granted, bucket.stats.waited) == (10, 5)


async def test_a_waiter_sleeps_exactly_until_its_tokens_exist(clock: ManualClock) -> None:
    # aiolimiter test_acquire_wait_time
    bucket = TokenBucket(1, 3, clock=clock)
    assert await bucket.acquire_async(1)
    task = asyncio.create_task(bucket.acquire_async(3))
    await _advance_to(clock, 0.999)
    assert not task.done()
    await _advance_to(clock, 1)
    assert task.done()
    assert task.result() is True


@pytest.mark.parametrize(
    "face", ["bucket.acquire", "bucket.acquire_async", "limiter.wait_for_permission"]
)
async def test_a_timeout_equal_to_the_refill_time_is_granted(face: str) -> None:
    # aiolimiter test_acquire_wait_time, with the wait as the caller's timeout
    clock = ManualClock(autoadvance=True)
    limiter = RateLimiter({"src": RateLimitConfig(10, 10)}, clock=clock)
    bucket = limiter.get("src")
    assert bucket.try_acquire(10)
    if face == "bucket.acquire":
        assert bucket.acquire(1, timeout=0.1)
    elif face == "bucket.acquire_async":
        assert await bucket.acquire_async(1, timeout=0.1)
    else:
        await limiter.wait_for_permission("src", timeout=0.1)  # "retry after 0.100s"
    assert clock.monotonic() == pytest.approx(0.1)


async def test_a_smaller_later_request_does_not_overtake_a_waiter(clock: ManualClock) -> None:
    # aiolimiter test_decreasing_acquire: there the 1-token request overtakes the 3-token
    # waiter and delays it to t=2; ours serves strictly in arrival order (documented).
    bucket = TokenBucket(1, 3, clock=clock)
    assert await bucket.acquire_async(1)
    big = asyncio.create_task(bucket.acquire_async(3))
    await _settle()
    assert not bucket.try_acquire(1)
    small = asyncio.create_task(bucket.acquire_async(1))
    await _advance_to(clock, 1)
    assert big.done()
    assert not small.done()
    await _advance_to(clock, 2)
    assert small.done()


async def test_a_smaller_later_request_does_not_overtake_a_blocked_thread(
    clock: ManualClock,
) -> None:
    # aiolimiter test_decreasing_acquire, the waiter on the sync face: arrival order holds
    # across faces (documented), where aiolimiter would let the 1-token request in first.
    bucket = TokenBucket(1, 3, clock=clock)
    assert bucket.try_acquire(1)
    granted_at: list[float] = []

    def big() -> None:
        assert bucket.acquire(3)
        granted_at.append(clock.monotonic())

    thread = threading.Thread(target=big)
    thread.start()
    while clock.sleepers == 0:  # the thread is blocked in acquire
        threading.Event().wait(0.001)
    assert not bucket.try_acquire(1)
    small = asyncio.create_task(bucket.acquire_async(1))
    await _settle()
    clock.advance(1)
    thread.join(5)
    await _settle()
    assert granted_at == [1.0]
    assert not small.done()
    await _advance_to(clock, 2)
    assert small.done()


async def test_a_cancelled_waiter_leaves_the_one_behind_it_its_turn(clock: ManualClock) -> None:
    # aiolimiter test_task_cancelled: there the second waiter moves up to t=1; ours keeps
    # the grant time it was given (t=4), as documented ("waiters already queued keep their turn").
    bucket = TokenBucket(1, 3, clock=clock)
    assert await bucket.acquire_async(1)
    tasks = [asyncio.create_task(bucket.acquire_async(3)) for _ in range(2)]
    await _settle()
    tasks[0].cancel()
    await _settle()
    assert tasks[0].cancelled()
    await _advance_to(clock, 3.999)
    assert not tasks[1].done()
    assert not bucket.try_acquire()  # its tokens stay taken: no newcomer beside it
    await _advance_to(clock, 4)
    assert tasks[1].done()
    assert bucket.stats.cancelled == 1
    await _advance_to(clock, 5)
    assert bucket.try_acquire()
    assert not bucket.try_acquire()


def test_a_bucket_reused_across_event_loops_keeps_working(clock: ManualClock) -> None:
    # aiolimiter test_multiple_loops: it warns on reuse; ours has no loop state, and the
    # waiters asyncio.run cancels at the end of a loop hand their tokens back.
    bucket = TokenBucket(1, 1, clock=clock)

    async def crowd() -> int:
        tasks = [asyncio.create_task(bucket.acquire_async()) for _ in range(5)]
        await _settle()
        return sum(task.done() for task in tasks)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert asyncio.run(crowd()) == 1
        assert bucket.stats.cancelled == 4
        assert clock.sleepers == 0
        assert bucket.wait_time() == pytest.approx(1)  # as if the 4 had never come
        clock.advance(1)
        assert asyncio.run(crowd()) == 1
    assert (bucket.stats.granted, bucket.stats.cancelled) == (2, 8)


# -- limits (in-memory strategies) -------------------------------------------------------


def test_the_burst_is_granted_then_refused_until_it_refills(clock: ManualClock) -> None:
    # limits test_fixed_window / test_moving_window_stats (10 per 2 s): full again after 2 s
    limit = _Limit(10, 2, clock)
    assert all(limit.hit() for _ in range(10))
    assert not limit.hit()
    assert limit.remaining == 0
    assert limit.reset_in == pytest.approx(2)


def test_an_unused_limit_has_everything_remaining(clock: ManualClock) -> None:
    # limits test_fixed_window_empty_stats / test_moving_window_empty_stats
    limit = _Limit(10, 2, clock)
    assert limit.remaining == 10
    assert limit.reset_in == 0.0


def test_cost_counts_as_that_many_requests_per_identifier(clock: ManualClock) -> None:
    # limits test_fixed_window_multiple_cost / test_acquire_entry_custom_amount; a cost above
    # the limit is a False hit there, a ValueError here ("impossible requests fail fast").
    limiter = RateLimiter({}, default=RateLimitConfig(10 / 120, 10), clock=clock)
    with pytest.raises(ValueError, match="burst"):
        limiter.try_acquire("k1", 11)
    assert limiter.try_acquire("k2", 5)
    assert limiter.get("k2").available == pytest.approx(5)
    assert limiter.get("k2").wait_time(6) > 0
    assert not limiter.try_acquire("k2", 6)
    assert limiter.try_acquire("k2", 5)  # the refused 6 took nothing
    assert limiter.get("k1").available == pytest.approx(10)  # identifiers are independent


def test_testing_a_limit_takes_nothing(clock: ManualClock) -> None:
    # limits test_test_fixed_window / test_test_moving_window (2 per hour)
    limit = _Limit(2, 3600, clock)
    assert limit.hit()
    assert limit.test()
    assert limit.hit()
    assert not limit.test()
    assert not limit.hit()
    assert limit.bucket.stats.denied == 1  # test() is not counted as a request


async def test_hit_and_test_on_the_asyncio_faces(clock: ManualClock) -> None:
    # limits aio test_test_fixed_window / test_test_moving_window (hit = acquire with timeout=0)
    limiter = RateLimiter({"src": RateLimitConfig(2 / 3600, 2)}, clock=clock)
    bucket = limiter.get("src")
    assert await bucket.acquire_async(timeout=0)
    await limiter.wait_for_permission("src", timeout=0)
    assert not await bucket.acquire_async(timeout=0)
    with pytest.raises(RateLimitExceeded) as info:
        await limiter.wait_for_permission("src", timeout=0)
    assert info.value.retry_after == pytest.approx(1800)
    assert clock.sleepers == 0


def test_a_bucket_emptied_by_one_costly_hit_is_full_again_after_a_period(
    clock: ManualClock,
) -> None:
    # limits test_sliding_window_counter_total_reset / test_expiry_acquire_entry
    limit = _Limit(10, 1, clock)
    assert limit.hit(10)
    assert not limit.hit()
    assert limit.remaining == 0
    clock.advance(1)
    assert limit.remaining == 10
    assert limit.reset_in == 0.0


def test_time_until_full_counts_from_each_hit(clock: ManualClock) -> None:
    # limits test_moving_window_stats (2 per minute, hits at 0 s and 1 s: reset in 58 s at 2 s)
    limit = _Limit(2, 60, clock)
    assert limit.hit()
    clock.advance(1)
    assert limit.hit()
    clock.advance(1)
    assert not limit.hit()
    assert limit.remaining == 0
    assert limit.reset_in == pytest.approx(58)


def test_a_token_bucket_refills_continuously_unlike_a_moving_window(clock: ManualClock) -> None:
    # limits test_moving_window (10 per 2 s): there only 5 more fit at t=1.3 after 5 at t=0;
    # a token bucket has refilled to its burst by then (burst + rate * t, documented).
    limit = _Limit(10, 2, clock)
    assert all(limit.hit() for _ in range(5))
    clock.advance(1.3)
    assert all(limit.hit() for _ in range(10))
    assert not limit.hit()


def test_the_documented_quota_recipe_never_grants_more_than_the_limit_in_any_period(
    clock: ManualClock,
) -> None:
    # limits test_moving_window: "10 in any 2 s" as docs' Quota(b, b * period / (limit - b))
    bucket = TokenBucket(1000, 10, quotas=[Quota(5, 5 * 2 / (10 - 5))], clock=clock)
    grants: list[float] = []
    for _ in range(200):  # a greedy caller for 10 s
        while bucket.try_acquire():
            grants.append(clock.monotonic())
        clock.advance(0.05)
    assert len(grants) >= 25
    for start in grants:
        assert sum(start <= t <= start + 2 + 1e-9 for t in grants) <= 10


def test_costs_mix_within_what_remains(clock: ManualClock) -> None:
    # limits test_moving_window_multiple_cost (10 per 2 s)
    limit = _Limit(10, 2, clock)
    assert limit.hit(5)
    assert all(limit.hit() for _ in range(4))
    assert not limit.test(2)
    assert not limit.hit(2)
    assert limit.hit()  # a refused larger cost does not block a smaller one that fits
    clock.advance(1)  # 5 more at 5 per second
    assert all(limit.hit() for _ in range(5))
    assert limit.remaining == 0
    assert not limit.hit(2)


def test_a_spent_cost_is_refilled_at_the_rate(clock: ManualClock) -> None:
    # limits test_moving_window_varying_cost (5 per minute); no clear() here, so time refills
    limit = _Limit(5, 60, clock)
    assert limit.hit(5)
    assert not limit.hit(2)
    clock.advance(23.999)
    assert not limit.hit(2)
    clock.advance(0.001)
    assert limit.hit(2)


def test_a_huge_cost_is_counted_exactly(clock: ManualClock) -> None:
    # limits test_moving_window_huge_cost (a million per 2 s)
    limit = _Limit(1_000_000, 2, clock)
    assert limit.hit()
    assert limit.hit(999_999)
    assert limit.remaining == 0
    assert not limit.hit()
    clock.advance(1)
    assert limit.remaining == 500_000
    assert limit.hit(500_000)
    assert not limit.hit()


def test_concurrent_threads_get_exactly_the_burst(clock: ManualClock) -> None:
    # limits integration TestConcurrency.test_moving_window (100 threads, 5 per minute)
    bucket = TokenBucket(5 / 60, 5, clock=clock)
    start = threading.Barrier(100)
    granted: list[bool] = []

    def hit() -> None:
        start.wait()
        granted.append(bucket.try_acquire())

    threads = [threading.Thread(target=hit) for _ in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert granted.count(True) == 5
    assert (bucket.stats.granted, bucket.stats.denied) == (5, 95)


async def test_concurrent_tasks_get_exactly_the_burst(clock: ManualClock) -> None:
    # limits integration TestConcurrency async test_moving_window (100 tasks, 5 per minute)
    limiter = RateLimiter({}, default=RateLimitConfig(5 / 60, 5), clock=clock)

    async def hit(key: str) -> bool:
        await asyncio.sleep(0)
        try:
            await limiter.wait_for_permission(key, timeout=0)
        except RateLimitExceeded:
            return False
        return True

    results = await asyncio.gather(*(hit("shared") for _ in range(100)))
    assert results.count(True) == 5
    others = await asyncio.gather(*(hit(f"key-{i}") for i in range(100)))
    assert all(others)  # each identifier has its own limit


def test_equal_limits_are_equal_and_hashable() -> None:
    # limits test_equality / test_hashabilty (on RateLimitItem)
    config = RateLimitConfig(1, 2, quotas=(Quota(5, 10),))
    assert config == RateLimitConfig(1, 2, quotas=(Quota(5, 10),))
    assert config != RateLimitConfig(1, 2)
    assert config != RateLimitConfig(2, 2, quotas=(Quota(5, 10),))
    assert len({config, RateLimitConfig(1, 2, quotas=(Quota(5, 10),)), RateLimitConfig(1, 2)}) == 2
