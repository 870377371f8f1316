"""RedisTokenBucket against real redis-server processes (killed, frozen and restarted)."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
import redis.asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from argo_perf import (
    ConfigError,
    ManualClock,
    Quota,
    RateLimitConfig,
    RateLimiter,
    RateLimitExceeded,
    RedisBucketStats,
    RedisTokenBucket,
    TokenBucket,
)
from argo_perf._redis import BackendHealth
from argo_perf.testing import RedisServer, join_redis_probes, join_redis_probes_async

ROOT = Path(__file__).resolve().parent.parent


def redis_now(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


async def _until_sleeping(clock: ManualClock, sleepers: int = 1) -> None:
    """Let the event loop run until ``sleepers`` waiters sleep on ``clock`` (a round trip)."""
    for _ in range(5000):
        if clock.sleepers >= sleepers:
            return
        await asyncio.sleep(0.001)
    raise AssertionError("no waiter started sleeping")


def test_bad_construction_is_a_config_error(redis_url: str) -> None:
    with pytest.raises(ConfigError, match="key"):
        RedisTokenBucket(redis_url, "", 1, 1)
    with pytest.raises(ConfigError, match="fallback_share"):
        RedisTokenBucket(redis_url, "k", 1, 1, fallback_share=0)
    with pytest.raises(ConfigError, match="prefix"):
        RedisTokenBucket(redis_url, "k", 1, 1, prefix=None)  # type: ignore[call-overload]
    with pytest.raises(ConfigError, match="url"):
        RedisTokenBucket("http://example.com", "k", 1, 1)
    with pytest.raises(ConfigError, match="url_or_client"):
        RedisTokenBucket(42, "k", 1, 1)  # type: ignore[call-overload]
    with pytest.raises(ConfigError, match="rate"):
        RedisTokenBucket(redis_url, "k", 0, 1)


def test_grants_the_burst_then_denies(redis_url: str, redis_client: redis.Redis) -> None:
    with RedisTokenBucket(redis_url, "vendor", rate=0.5, burst=3) as bucket:
        assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]
        assert bucket.backend == "redis"
        assert bucket.stats.redis_calls == 4
        assert bucket.key == "argo_perf:ratelimit:{vendor}"
        # The key outlives the state (full again in 6 s at 0.5/s) by at most 2 s.
        assert 0.998 < _expiry_after_state(redis_client, bucket.key, _latest_tat) < 2.002
        with pytest.raises(ValueError, match="burst"):
            bucket.try_acquire(4)
        assert "vendor" in repr(bucket)


async def test_idle_keys_expire(
    redis_url: str, redis_client: redis.Redis, clock: ManualClock
) -> None:
    # Measured against the state Redis holds, not against the wall time between calls:
    # the key expires 1 to 2 s after the bucket is full again (a second boundary).
    with RedisTokenBucket(redis_url, "idle", rate=0.01, burst=1) as bucket:
        assert bucket.try_acquire()
        assert 0.998 < _expiry_after_state(redis_client, bucket.key, _latest_tat) < 2.002
    # The queue exists only while a reservation waits, and ends with its last one.
    async with RedisTokenBucket(redis_url, "idle-queue", rate=0.1, burst=1, clock=clock) as bucket:
        assert await bucket.acquire_async()
        waiter = asyncio.create_task(bucket.acquire_async())
        await _until_sleeping(clock)
        # Two seconds after the last waiter's grant (to the millisecond).
        beyond = _expiry_after_state(redis_client, bucket.queue_key, _latest_grant)
        assert 1.998 < beyond < 2.003
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert redis_client.exists(bucket.queue_key) == 0
        assert bucket.stats.cancelled == 1


def _latest_tat(state: bytes) -> float:
    """The latest theoretical arrival time in a bucket's state, in seconds of Redis TIME."""
    return max(int(value) for value in state.split()) / 1e6


def _latest_grant(queue: bytes) -> float:
    """The latest grant time in a one-window queue (``id base`` then 4 fields per waiter)."""
    fields = queue.split()
    return max(float(grant) for grant in fields[3::4]) / 1e6


def _expiry_after_state(client: redis.Redis, key: str, latest: Callable[[bytes], float]) -> float:
    """Seconds from the latest time ``key``'s state names to the key's expiry.

    TIME, PTTL and GET run in one transaction, so they see the same instant
    whenever the test gets to run them.
    """
    with client.pipeline(transaction=True) as pipe:
        pipe.time()
        pipe.pttl(key)
        pipe.get(key)
        (seconds, micros), pttl, state = pipe.execute()
    assert pttl > 0
    assert state is not None
    expires: float = seconds + micros / 1e6 + pttl / 1e3
    # PTTL counts whole milliseconds: the result is good to a millisecond or two.
    return expires - latest(state)


def test_processes_sharing_a_key_share_one_limit(redis_url: str) -> None:
    a = RedisTokenBucket(redis_url, "shared", rate=0.1, burst=4)
    b = RedisTokenBucket(redis_url, "shared", rate=0.1, burst=4)
    granted = [a.try_acquire(), b.try_acquire(), a.try_acquire(2), b.try_acquire()]
    assert granted == [True, True, True, False]
    a.close()
    b.close()


def test_a_client_clock_running_ahead_gains_nothing(redis_url: str) -> None:
    ahead = ManualClock()
    ahead.advance(3600)  # this process's clock is an hour ahead
    fast = RedisTokenBucket(redis_url, "skew", rate=0.1, burst=2, clock=ahead)
    normal = RedisTokenBucket(redis_url, "skew", rate=0.1, burst=2)
    assert fast.try_acquire(2)
    assert not normal.try_acquire()
    assert not fast.try_acquire()


def test_waiting_acquire_reserves_and_sleeps_what_redis_says(
    redis_url: str, clock: ManualClock
) -> None:
    bucket = RedisTokenBucket(redis_url, "wait", rate=1, burst=2, clock=clock)
    other = RedisTokenBucket(redis_url, "wait", rate=1, burst=2)
    assert bucket.try_acquire(2)
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(bucket.acquire(2, timeout=5)))
    thread.start()
    while clock.sleepers == 0:
        threading.Event().wait(0.001)
    # Reserved in Redis: another process's 1-token request does not overtake it.
    assert not other.try_acquire()
    calls = bucket.stats.redis_calls
    clock.advance(2)
    thread.join(5)
    assert result == [True]
    assert bucket.stats.redis_calls == calls + 1  # the waiter confirms its grant once
    assert bucket.acquire(2, timeout=0.5) is False  # too long: refused at once
    assert clock.sleepers == 0


async def test_async_face_and_cancelled_waiter_refund(
    redis_url: str, redis_client: redis.Redis, clock: ManualClock
) -> None:
    async with RedisTokenBucket(redis_url, "async", rate=1, burst=2, clock=clock) as bucket:
        assert await bucket.acquire_async(2)
        assert not await bucket.acquire_async(1, timeout=0.1)
        before = float((redis_client.get(bucket.key) or b"0").split()[0])
        waiter = asyncio.create_task(bucket.acquire_async(2))
        await _until_sleeping(clock)
        reserved = float((redis_client.get(bucket.key) or b"0").split()[0])
        assert reserved == pytest.approx(before + 2e6)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert float((redis_client.get(bucket.key) or b"0").split()[0]) == pytest.approx(before)
        waiter = asyncio.create_task(bucket.acquire_async(1))
        await _until_sleeping(clock)
        clock.advance(1)
        assert await waiter


async def test_penalize_holds_every_process_back(redis_url: str) -> None:
    sync_bucket = RedisTokenBucket(redis_url, "pen", rate=100, burst=100)
    async_client = redis.asyncio.Redis.from_url(redis_url)
    async_bucket = RedisTokenBucket(async_client, "pen", rate=100, burst=100)
    sync_bucket.penalize(30)
    assert not sync_bucket.try_acquire()
    assert not await async_bucket.acquire_async(timeout=0)
    await async_bucket.penalize_async(60)
    assert not await async_bucket.acquire_async(timeout=29)
    with pytest.raises(TypeError, match="sync client"):
        async_bucket.try_acquire()
    async_bucket.penalize(1)  # no sync client: only the local fallback is penalized
    sync_only = RedisTokenBucket(redis.Redis.from_url(redis_url), "pen", rate=1, burst=1)
    with pytest.raises(TypeError, match="asyncio client"):
        await sync_only.acquire_async()
    assert async_bucket.backend == "redis"
    await async_client.aclose()  # the caller's own client: the bucket leaves it open


def test_quotas_are_enforced_in_redis(redis_url: str) -> None:
    bucket = RedisTokenBucket(redis_url, "quota", rate=1000, burst=10, quotas=[Quota(3, 86400)])
    assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]
    assert bucket.acquire(1, timeout=60) is False


def test_script_is_reloaded_after_noscript(redis_url: str, redis_client: redis.Redis) -> None:
    bucket = RedisTokenBucket(redis_url, "reload", rate=1, burst=5)
    redis_client.script_flush()
    assert bucket.try_acquire()
    redis_client.script_flush()
    assert bucket.try_acquire()
    assert bucket.stats.script_loads == 2


async def test_script_is_reloaded_after_noscript_async(
    redis_url: str, redis_client: redis.Redis
) -> None:
    bucket = RedisTokenBucket(redis_url, "reload", rate=1, burst=5)
    redis_client.script_flush()
    assert await bucket.acquire_async()
    assert bucket.stats.script_loads == 1
    await bucket.aclose()


def test_garbage_state_counts_as_a_full_bucket(redis_url: str, redis_client: redis.Redis) -> None:
    bucket = RedisTokenBucket(redis_url, "bad", rate=1, burst=2)
    for junk in (b"not a number", b"inf", b"nan -inf", b""):
        redis_client.set(bucket.key, junk)
        assert bucket.try_acquire(2)
        assert not bucket.try_acquire()
        redis_client.delete(bucket.key)


def test_wrong_type_key_is_a_counted_miss_not_a_crash(
    redis_url: str, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    bucket = RedisTokenBucket(redis_url, "wrongtype", rate=1, burst=4, fallback_share=0.5)
    redis_client.rpush(bucket.key, "x")
    assert bucket.try_acquire()  # decided by the fallback bucket (burst 2)
    assert bucket.stats.errors == 1
    assert bucket.stats.fallback_calls == 1
    assert bucket.backend == "redis"  # an answer with an error is not an outage
    assert "script failed" in caplog.text


async def test_a_refund_never_gives_back_tokens_reserved_on_top(
    redis_url: str, redis_client: redis.Redis, clock: ManualClock
) -> None:
    # A hundredth of the rate of the in-process case: the test's milliseconds refill nothing.
    async with RedisTokenBucket(redis_url, "middle", rate=0.04, burst=5, clock=clock) as bucket:
        assert await bucket.acquire_async(3)
        before = redis_client.get(bucket.key)
        assert await bucket.wait_time_async(3) == pytest.approx(25, abs=0.5)
        first = asyncio.create_task(bucket.acquire_async(3))
        await _until_sleeping(clock)
        after_first = redis_client.get(bucket.key)
        assert await bucket.wait_time_async(3) == pytest.approx(100, abs=0.5)
        second = asyncio.create_task(bucket.acquire_async(3))
        await _until_sleeping(clock, 2)
        state = redis_client.get(bucket.key)
        # Reserved on top: the second's grant at 100 s keeps what it was scheduled
        # against; only what it does not need comes back (the local bucket's rule).
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        after_refund = redis_client.get(bucket.key)
        assert after_refund is not None
        assert state is not None
        assert int(state) - int(after_refund) == pytest.approx(50e6, abs=1)
        # Not 100, beside the second's tokens.
        assert await bucket.wait_time_async(3) == pytest.approx(125, abs=0.5)
        third = asyncio.create_task(bucket.acquire_async(3))
        await _until_sleeping(clock, 2)
        third.cancel()  # the latest: its tokens come back
        await asyncio.gather(third, return_exceptions=True)
        assert redis_client.get(bucket.key) == after_refund
        second.cancel()  # no waiter left: the first's come back too
        await asyncio.gather(second, return_exceptions=True)
        assert redis_client.get(bucket.key) == before != after_first
        assert bucket.stats.cancelled == 3


async def test_cancelled_waiters_give_everything_back_in_redis_once_none_is_left(
    redis_url: str, redis_client: redis.Redis, clock: ManualClock
) -> None:
    async with RedisTokenBucket(redis_url, "middle-async", 0.04, 5, clock=clock) as bucket:
        assert await bucket.acquire_async(3)
        before = redis_client.get(bucket.key)
        first = asyncio.create_task(bucket.acquire_async(3))
        await _until_sleeping(clock)
        second = asyncio.create_task(bucket.acquire_async(3))
        await _until_sleeping(clock, 2)
        state = redis_client.get(bucket.key)
        first.cancel()  # in arrival order, as timeouts fire
        with pytest.raises(asyncio.CancelledError):
            await first
        # Part comes back; the second's grant keeps what it was scheduled against.
        middle = redis_client.get(bucket.key)
        assert int(before or 0) < int(middle or 0) < int(state or 0)
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
        assert redis_client.get(bucket.key) == before


def test_interrupted_blocking_acquire_gives_its_tokens_back(
    redis_url: str, redis_client: redis.Redis
) -> None:
    class Interrupted(Exception):
        pass

    class InterruptingClock(ManualClock):
        def sleep(self, seconds: float) -> None:
            raise Interrupted

    bucket = RedisTokenBucket(redis_url, "interrupt", rate=1, burst=1, clock=InterruptingClock())
    assert bucket.try_acquire()
    before = redis_client.get(bucket.key)
    with pytest.raises(Interrupted):
        bucket.acquire()
    assert redis_client.get(bucket.key) == before


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    burst=st.integers(1, 8),
    quota=st.one_of(st.none(), st.integers(1, 12)),
    requests=st.lists(st.integers(1, 8), max_size=15),
)
def test_the_script_decides_as_the_in_process_arithmetic(
    redis_url: str, redis_client: redis.Redis, burst: int, quota: int | None, requests: list[int]
) -> None:
    # Rates so slow that the milliseconds the test takes refill nothing.
    quotas = [] if quota is None else [Quota(quota, 1e6)]
    local = TokenBucket(1e-6, burst, quotas=quotas, clock=ManualClock())
    shared = RedisTokenBucket(redis_url, "parity", 1e-6, burst, quotas=quotas)
    redis_client.delete(shared.key)
    most = min([burst, *(q.limit for q in quotas)])
    for tokens in requests:
        if tokens > most:
            continue
        assert shared.try_acquire(tokens) == local.try_acquire(tokens)
    shared.close()


def test_killed_redis_falls_back_to_a_share_and_returns(
    fault_redis: RedisServer, clock: ManualClock
) -> None:
    bucket = RedisTokenBucket(fault_redis.url, "outage", rate=10, burst=8, clock=clock)
    assert bucket.try_acquire(8)
    fault_redis.kill()
    results = [bucket.try_acquire() for _ in range(6)]
    # Local share: a quarter of burst 8 is 2; never unlimited.
    assert sum(results) == 2
    assert bucket.backend == "memory"
    assert bucket.stats.fallback_calls == 6
    # Requests larger than the fallback's burst take all of it instead of failing forever.
    clock.advance(1)
    assert bucket.acquire(5, timeout=0)
    fault_redis.start()
    assert not bucket.try_acquire(5)  # still skipping Redis until the probe is due
    clock.advance(1.0)
    bucket.try_acquire()  # answered by the fallback; starts the background probe
    join_redis_probes()
    assert bucket.try_acquire(8)  # Redis restarted empty: the bucket is full
    assert bucket.backend == "redis"


def test_frozen_redis_times_out_into_the_fallback(
    fault_redis: RedisServer, clock: ManualClock
) -> None:
    bucket = RedisTokenBucket(fault_redis.url, "frozen", rate=10, burst=8, clock=clock)
    assert bucket.try_acquire()
    fault_redis.pause()
    try:
        results = [bucket.try_acquire() for _ in range(5)]
        assert bucket.backend == "memory"
        assert sum(results) == 2
        assert bucket.stats.errors == 3  # then the gate stops touching Redis
    finally:
        fault_redis.resume()
    clock.advance(1.0)
    bucket.try_acquire()  # starts the background probe
    join_redis_probes()
    assert bucket.try_acquire()
    assert bucket.backend == "redis"


async def test_killed_redis_async_face_falls_back(
    fault_redis: RedisServer, clock: ManualClock
) -> None:
    bucket = RedisTokenBucket(fault_redis.url, "outage", rate=10, burst=4, clock=clock)
    assert await bucket.acquire_async(4)
    fault_redis.kill()
    results = [await bucket.acquire_async(timeout=0) for _ in range(4)]
    assert sum(results) == 1
    assert bucket.backend == "memory"
    fault_redis.start()
    clock.advance(1.0)
    await bucket.acquire_async(timeout=0)  # starts the background probe, a task on this loop
    await join_redis_probes_async()
    assert await bucket.acquire_async()
    assert bucket.backend == "redis"
    await bucket.aclose()


_WORKER = textwrap.dedent(
    """
    import json, sys, time
    from argo_perf import RedisTokenBucket
    url, seconds, mode = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    bucket = RedisTokenBucket(url, "accuracy", rate=40, burst=10)
    granted = 0
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        if mode == "try":
            granted += bucket.try_acquire()
        else:
            granted += bucket.acquire(timeout=max(0.0, stop - time.monotonic()))
    print(json.dumps({"granted": granted, "errors": bucket.stats.errors}))
    """
)


@pytest.mark.parametrize("mode", ["try", "wait"])
def test_processes_hammering_one_bucket_stay_within_the_limit(
    redis_url: str, redis_client: redis.Redis, mode: str
) -> None:
    seconds = 0.8
    start = redis_now(redis_client)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, redis_url, str(seconds), mode],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for _ in range(3)
    ]
    reports = [json.loads(proc.communicate(timeout=60)[0]) for proc in procs]
    end = redis_now(redis_client)
    total = sum(report["granted"] for report in reports)
    assert all(report["errors"] == 0 for report in reports)
    # Redis TIME bounds the run from outside, so this is exact: never above the limit.
    assert total <= 10 + 40 * (end - start)
    assert total >= 10 + 40 * seconds * 0.5  # and the limit was actually used


async def test_no_caller_waits_for_the_probe_of_a_frozen_server(
    fault_redis: RedisServer, clock: ManualClock
) -> None:
    bucket = RedisTokenBucket(fault_redis.url, "probe-frozen", rate=10, burst=4, clock=clock)
    fault_redis.kill()
    for _ in range(3):
        await bucket.acquire_async(timeout=0)
    assert bucket.backend == "memory"
    fault_redis.start()
    fault_redis.pause()
    try:
        clock.advance(1.0)
        errors = bucket.stats.errors
        # The probe pings the frozen server in the background; the callers are
        # answered by the fallback at once, and none of them pays the timeout.
        for _ in range(3):
            await asyncio.wait_for(bucket.acquire_async(timeout=0), 0.04)
        await join_redis_probes_async()
        assert bucket.backend == "memory"
        assert bucket.stats.errors == errors
    finally:
        fault_redis.resume()
    clock.advance(1.0)
    await bucket.acquire_async(timeout=0)
    await join_redis_probes_async()
    assert await bucket.acquire_async()
    assert bucket.backend == "redis"
    await bucket.aclose()


def test_an_error_reply_means_redis_is_up(fault_redis: RedisServer, clock: ManualClock) -> None:
    bucket = RedisTokenBucket(fault_redis.url, "error-reply", rate=10, burst=4, clock=clock)
    with fault_redis.client() as admin:
        admin.rpush(bucket.key, "x")  # every script call gets WRONGTYPE: Redis answers
        for _ in range(5):
            bucket.try_acquire()
        assert bucket.stats.errors == 5
        assert bucket.backend == "redis"  # answered errors never take Redis for down
        admin.delete(bucket.key)
    calls = bucket.stats.redis_calls
    assert bucket.try_acquire()
    assert bucket.stats.redis_calls == calls + 1
    bucket.close()


# -- penalties hold queued waiters; cancelled waiters give capacity back ---------------


async def test_penalize_holds_back_a_waiter_queued_before_it(
    redis_url: str, clock: ManualClock
) -> None:
    async with RedisTokenBucket(redis_url, "pen-queued", rate=1, burst=1, clock=clock) as bucket:
        other_process = RedisTokenBucket(redis_url, "pen-queued", rate=1, burst=1)
        assert await bucket.acquire_async()
        waiter = asyncio.create_task(bucket.acquire_async())
        await _until_sleeping(clock)  # due in 1 s
        other_process.penalize(10)
        clock.advance(1)  # its old grant time: it wakes, learns of the penalty, sleeps on
        await _until_sleeping(clock)
        assert not waiter.done()
        clock.advance(8.9)
        await asyncio.sleep(0.01)
        assert not waiter.done()
        clock.advance(0.2)
        assert await waiter
        other_process.close()


def test_penalize_holds_back_a_blocked_thread_in_redis(redis_url: str, clock: ManualClock) -> None:
    bucket = RedisTokenBucket(redis_url, "pen-thread", rate=1, burst=1, clock=clock)
    assert bucket.try_acquire()
    done: list[bool] = []
    thread = threading.Thread(target=lambda: done.append(bucket.acquire()))
    thread.start()
    while clock.sleepers == 0:
        threading.Event().wait(0.001)
    bucket.penalize(5)
    clock.advance(1)
    while clock.sleepers == 0 and thread.is_alive():
        threading.Event().wait(0.001)
    assert done == []
    clock.advance(4.1)
    thread.join(5)
    assert done == [True]
    bucket.close()


async def test_waiters_cancelled_in_arrival_order_give_everything_back_in_redis(
    redis_url: str, redis_client: redis.Redis, clock: ManualClock
) -> None:
    async with RedisTokenBucket(redis_url, "abc", rate=0.01, burst=1, clock=clock) as bucket:
        assert await bucket.acquire_async()
        before = redis_client.get(bucket.key)
        waiters = []
        for count in range(1, 51):  # a timeout storm: 50 waiters, timing out in order
            waiters.append(asyncio.create_task(bucket.acquire_async()))
            await _until_sleeping(clock, count)
        for task in waiters:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert redis_client.get(bucket.key) == before
        assert redis_client.exists(bucket.queue_key) == 0
        assert 99 < await asyncio.to_thread(_wait_of_next, redis_url) <= 100


def _wait_of_next(redis_url: str) -> float:
    with RedisTokenBucket(redis_url, "abc", rate=0.01, burst=1) as bucket:
        return bucket.wait_time()


_counter = iter(range(10**9))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    burst=st.integers(1, 4),
    quota=st.booleans(),
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("reserve"), st.integers(1, 4)),
            st.tuples(st.just("cancel"), st.integers(0, 30)),
            st.tuples(st.just("penalize"), st.integers(1, 5)),
            st.tuples(st.just("reconfigure"), st.integers(1, 4)),
        ),
        max_size=25,
    ),
)
def test_the_script_decides_as_the_local_arithmetic(
    redis_url: str, burst: int, quota: bool, ops: list[tuple[str, int]]
) -> None:
    """Waits, reservations, refunds in any order, penalties and reconfiguration:
    Redis answers as `_TokenMath` does.

    The rate is one token per 1000 s (or 500 s), so the milliseconds the test
    takes refill nothing that a 1 s tolerance would see; the local arithmetic
    runs at t=0. Waiters sleep on a manual clock that never moves: they stay queued.
    """
    from argo_perf.ratelimit._gcra import _TokenMath, _windows

    def quotas_for(burst: int) -> list[Quota]:
        return [Quota(burst + 2, 1000.0 * (burst + 10))] if quota else []

    def most(burst: int) -> int:
        return min([burst, *(int(q.limit) for q in quotas_for(burst))])

    async def scenario() -> None:
        clock = ManualClock()
        rate, size = 0.001, burst
        # A generous socket timeout: a starved CPU must not turn a reply into the fallback's.
        bucket = RedisTokenBucket(
            f"{redis_url}?socket_timeout=1.0",
            f"model-{next(_counter)}",
            rate,
            size,
            quotas=quotas_for(size),
            clock=clock,
        )
        local = _TokenMath(_windows(rate, size, quotas_for(size)), float(most(size)))
        queued: list[tuple[asyncio.Task[bool], object]] = []
        try:
            for op, n in ops:
                if op == "reserve":
                    if n > most(size):
                        continue
                    wait = local.wait_time(0.0, n)
                    assert await bucket.wait_time_async(n) == pytest.approx(wait, abs=1.0)
                    ours = local.reserve(0.0, n, math.inf)
                    assert ours == wait
                    task = asyncio.create_task(bucket.acquire_async(n))
                    if ours == 0.0:
                        assert await task
                    else:
                        queued.append((task, local.pending[-1]))
                        await _until_sleeping(clock, len(queued))
                elif op == "cancel" and queued:
                    task, reservation = queued.pop(n % len(queued))
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                    local.refund(0.0, reservation)  # type: ignore[arg-type]
                elif op == "penalize":
                    local.penalize(0.0, n * 1000.0)
                    await bucket.penalize_async(n * 1000.0)
                elif op == "reconfigure":
                    rate, size = (0.002 if rate == 0.001 else 0.001), n
                    windows = _windows(rate, size, quotas_for(size))
                    local = local.rescaled(0.0, windows, float(most(size)))
                    await bucket.reconfigure_async(rate, size, quotas_for(size))
            # What a newcomer for every token would wait, and what is there now.
            need = most(size)
            theirs = await bucket.wait_time_async(need)
            assert theirs == pytest.approx(local.wait_time(0.0, need), abs=1.0)
            assert await bucket.available_async() == pytest.approx(local.available(0.0), abs=0.01)
        finally:
            for task, _ in queued:
                task.cancel()
            await asyncio.gather(*(task for task, _ in queued), return_exceptions=True)
            await bucket.aclose()
            bucket.close()

    asyncio.run(scenario())


def test_redis_bucket_has_the_local_surface(redis_url: str, redis_client: redis.Redis) -> None:
    with RedisTokenBucket(redis_url, "surface", rate=0.01, burst=4) as bucket:
        assert bucket.available == pytest.approx(4, abs=0.01)
        assert bucket.wait_time(4) == 0.0
        assert bucket.try_acquire(3)
        assert bucket.available == pytest.approx(1, abs=0.01)
        assert bucket.wait_time(2) == pytest.approx(100, abs=0.5)
        # Reconfigured: the 3 spent tokens stay spent, paid back at the new rate.
        bucket.reconfigure(0.02, 4)
        assert bucket.wait_time(2) == pytest.approx(50, abs=0.5)
        other = RedisTokenBucket(redis_url, "surface", rate=0.01, burst=4)
        other.reconfigure(0.02, 4)  # another process switching too: rescaled once
        assert bucket.wait_time(2) == pytest.approx(50, abs=0.5)
        other.close()
        bucket.penalize(1000)
        assert bucket.available == 0.0
        stats = bucket.stats
        assert isinstance(stats, RedisBucketStats)
        assert (stats.granted, stats.penalties, stats.rate) == (1, 1, 0.02)
        assert stats.redis_calls == 10


def test_redis_bucket_answers_from_the_fallback_while_redis_is_down(
    fault_redis: RedisServer, clock: ManualClock
) -> None:
    bucket = RedisTokenBucket(fault_redis.url, "down", rate=1, burst=8, clock=clock)
    fault_redis.kill()
    for _ in range(3):
        bucket.try_acquire()
    assert bucket.backend == "memory"
    assert bucket.available == pytest.approx(0.0)  # the fallback's 2 tokens are spent
    assert bucket.wait_time() == pytest.approx(4.0)  # at a quarter of the rate
    assert bucket.stats.denied == 1
    bucket.reconfigure(2, 8)
    assert bucket.fallback.rate == 0.5


# -- the Redis link: clients, gate, translation -----------------------------------------


def _connected(server: RedisServer) -> int:
    """Clients connected to ``server``, not counting the one asking."""
    with server.client() as client:
        return len(client.client_list()) - 1


def test_a_url_bucket_closes_the_client_of_an_event_loop_that_ended(
    fault_redis: RedisServer,
) -> None:
    bucket = RedisTokenBucket(fault_redis.url, "loops", rate=100, burst=100)
    assert asyncio.run(bucket.acquire_async())
    assert _connected(fault_redis) == 1
    assert asyncio.run(bucket.acquire_async())  # a second loop: its own client
    # The first loop's client was closed when the second loop asked for its own.
    assert _connected(fault_redis) == 1
    assert bucket.try_acquire()
    bucket.close()
    assert _connected(fault_redis) == 0


def test_the_gate_can_be_injected_and_shared(redis_url: str) -> None:
    gate = BackendHealth("shared")
    a = RedisTokenBucket(redis_url, "a", 1, 1, health=gate)
    b = RedisTokenBucket(redis_url, "b", 1, 1, health=gate)
    assert a.health is gate is b.health
    with pytest.raises(ConfigError, match="health"):
        RedisTokenBucket(redis_url, "c", 1, 1, health=object())  # type: ignore[call-overload]


def test_the_older_keyword_client_or_url_still_works(redis_url: str) -> None:
    with pytest.warns(DeprecationWarning, match="url_or_client"):
        bucket = RedisTokenBucket(client_or_url=redis_url, key="old", rate=1, burst=1)
    assert bucket.try_acquire()
    bucket.close()
    with pytest.raises(TypeError, match="url_or_client"):
        RedisTokenBucket(redis_url, "k", 1, 1, client_or_url=redis_url)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="key"):
        RedisTokenBucket(client_or_url=redis_url)  # type: ignore[call-overload]


def test_a_passed_in_client_is_left_open(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    bucket = RedisTokenBucket(client, "mine", rate=1, burst=1)
    assert bucket.try_acquire()
    bucket.close()
    assert client.ping()
    client.close()


# -- a registry on Redis: one link for every source ------------------------------------


def test_a_redis_limiter_gives_every_source_a_shared_bucket(redis_url: str) -> None:
    configs = {"massive": RateLimitConfig(0.1, 2), "xai": RateLimitConfig(0.1, 1)}
    one = RateLimiter(configs, redis=redis_url)
    other = RateLimiter(configs, redis=redis_url)  # another process
    assert isinstance(one.get("massive"), RedisTokenBucket)
    assert one.try_acquire("massive")
    assert other.try_acquire("massive")
    assert not one.try_acquire("massive")
    assert other.try_acquire("xai")
    assert not one.try_acquire("xai")
    stats = one.stats["massive"]
    assert isinstance(stats, RedisBucketStats)
    assert stats.redis_calls == 2
    one.close()
    other.close()


def test_a_redis_limiter_opens_one_client_for_all_its_sources(fault_redis: RedisServer) -> None:
    configs = {name: RateLimitConfig(100, 100) for name in ("a", "b", "c", "d")}
    limiter = RateLimiter(configs, default=RateLimitConfig(1, 1), redis=fault_redis.url)
    for name in (*configs, "unknown"):
        assert limiter.try_acquire(name)
    assert _connected(fault_redis) == 1  # one client, one pool, one connection in use

    async def use() -> None:
        for name in configs:
            await limiter.wait_for_permission(name)

    asyncio.run(use())
    assert _connected(fault_redis) == 2  # and one asyncio client for the loop
    limiter.close()
    assert _connected(fault_redis) == 0


def test_a_redis_limiter_has_one_gate_for_all_its_sources(
    fault_redis: RedisServer, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    configs = {name: RateLimitConfig(10, 8) for name in ("a", "b", "c")}
    limiter = RateLimiter(configs, redis=fault_redis.url, clock=clock)
    assert all(limiter.try_acquire(name) for name in configs)
    fault_redis.kill()
    caplog.set_level(logging.INFO, logger="argo_perf.backend")
    for name in configs:  # one failure each: three in a row for the one gate
        limiter.try_acquire(name)
    buckets = [limiter.get(name) for name in configs]
    assert all(isinstance(b, RedisTokenBucket) and b.backend == "memory" for b in buckets)
    assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1
    fault_redis.start()
    clock.advance(1.0)
    limiter.try_acquire("b")  # starts the one probe
    join_redis_probes()  # which brings every source back
    assert all(isinstance(b, RedisTokenBucket) and b.backend == "redis" for b in buckets)
    assert len([r for r in caplog.records if "reachable again" in r.getMessage()]) == 1
    limiter.close()


async def test_a_redis_limiter_waits_and_reports_on_the_async_face(redis_url: str) -> None:
    limiter = RateLimiter({"sonar": RateLimitConfig(0.01, 1)}, redis=redis_url)
    await limiter.wait_for_permission("sonar", timeout=0)
    with pytest.raises(RateLimitExceeded) as info:
        await limiter.wait_for_permission("sonar", timeout=1)
    assert info.value.retry_after == pytest.approx(100, abs=0.5)
    await limiter.aclose()
