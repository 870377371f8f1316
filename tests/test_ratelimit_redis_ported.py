"""limits' (Redis storage and strategies) and PyrateLimiter's (Redis bucket) tests, on Redis.

Restated on `RedisTokenBucket` and a Redis-backed `RateLimiter`, against the real
redis-server of the fixtures. Each test names the peer test it comes from. The
peers' vocabulary maps onto ours through `_RedisLimit`, a thin adapter over a real
`RedisTokenBucket` ("``amount`` per ``period``" is ``RedisTokenBucket(amount /
period, amount)``; limits' ``clear`` and PyrateLimiter's ``flush`` delete the
bucket's keys, the only reset Redis needs). The in-memory port is
tests/test_ratelimit_ported.py; this file does not repeat it.

The bucket runs on Redis TIME, so waits are real: a test that needs a denial uses
a rate so slow that the test's milliseconds refill nothing, and a test that needs
a refill uses periods of a tenth of a second. No test asserts a wall-clock
duration; they assert grants, denials, `wait_time` bounds and Redis state.

Where our documented behaviour intentionally differs (a token bucket refills
continuously instead of by windows; a cost beyond the burst, or of zero, raises
instead of returning False; a Redis error is never raised, the local fallback
decides), the test asserts ours and says so.

Not ported (no meaning for us):
- limits test_pluggable_storage_*: no storage plug-in API; Redis is the only shared backend.
- limits sliding-window-counter tests (previous-window weighting, timestamped keys):
  GCRA has no counter windows.
- limits fixed-window reset times aligned to window starts (``fixed_start``): no fixed windows.
- limits test_expiry_acquire_entry / _sliding_window_entry: one state key (its expiry is
  ported once, below).
- limits sentinel variants (custom prefix, auth): a prefix on a Sentinel master is a prefix
  on Redis; tests/test_redis_sentinel.py has the bucket there.
- limits redis-cluster auth / startup_nodes arguments: we take a ``redis+cluster://`` URL
  (tests/test_redis_cluster.py).
- limits memcached / mongodb storages: not Redis.
- PyrateLimiter test_bucket_03 (peek) and the item names: we store no items, only arrival times.
- PyrateLimiter leak()'s count of removed items: nothing to remove; the state ages in place.
- PyrateLimiter failing_rate: we report ``retry_after`` / `wait_time`, not which rate failed.
- PyrateLimiter factories, decorator, pickle, sqlite / postgres / multiprocess buckets:
  not our API, or not Redis.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot

from argo_perf import (
    ConfigError,
    ManualClock,
    Quota,
    RateLimitConfig,
    RateLimiter,
    RateLimitExceeded,
    RedisBucketStats,
    RedisTokenBucket,
)
from argo_perf.testing import RedisCluster, RedisServer

ROOT = Path(__file__).resolve().parent.parent

# -- the adapter -------------------------------------------------------------------


class _RedisLimit:
    """The peers' verbs on a real `RedisTokenBucket`: ``amount`` requests per ``period`` s."""

    def __init__(
        self,
        url: str,
        key: str,
        amount: float,
        period: float,
        client: redis.Redis,
        *,
        prefix: str = "argo_perf:ratelimit:",
        clock: ManualClock | None = None,
    ) -> None:
        self.amount = amount
        self.client = client
        self.bucket = RedisTokenBucket(
            url, key, amount / period, amount, prefix=prefix, clock=clock
        )

    # limits
    def hit(self, cost: float = 1) -> bool:
        """limits' ``hit`` / PyrateLimiter's ``put``: take ``cost`` now or not at all."""
        return self.bucket.try_acquire(cost)

    async def ahit(self, cost: float = 1) -> bool:
        return await self.bucket.acquire_async(cost, timeout=0)

    def test(self, cost: float = 1) -> bool:
        """limits' ``test``: would ``cost`` be granted now (taking nothing)?"""
        return self.bucket.wait_time(cost) == 0.0

    async def atest(self, cost: float = 1) -> bool:
        return await self.bucket.wait_time_async(cost) == 0.0

    @property
    def remaining(self) -> int:
        """limits' ``get_window_stats().remaining``: whole requests that fit now."""
        return math.floor(self.bucket.available + 1e-6)

    async def aremaining(self) -> int:
        return math.floor(await self.bucket.available_async() + 1e-6)

    @property
    def reset_in(self) -> float:
        """limits' ``reset_time - now``: seconds until the bucket is full again."""
        return self.bucket.wait_time(self.amount)

    def clear(self) -> None:
        """limits' ``clear`` / PyrateLimiter's ``flush``: forget the bucket's state."""
        self.client.delete(self.bucket.key, self.bucket.queue_key, self.bucket.config_key)

    # PyrateLimiter
    def count(self) -> float:
        """PyrateLimiter's ``count``: the weight inside the bucket now."""
        return self.amount - self.bucket.available

    def waiting(self, weight: float = 1) -> float:
        """PyrateLimiter's ``waiting`` (in seconds, not milliseconds)."""
        return self.bucket.wait_time(weight)

    def state(self) -> bytes | None:
        value = self.client.get(self.bucket.key)
        assert not isinstance(value, str)
        return value

    def close(self) -> None:
        self.bucket.close()


def redis_now(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return float(seconds) + micros / 1e6


async def _until_sleeping(clock: ManualClock, sleepers: int = 1) -> None:
    """Let the event loop run until ``sleepers`` waiters sleep on ``clock`` (a round trip)."""
    for _ in range(5000):
        if clock.sleepers >= sleepers:
            return
        await asyncio.sleep(0.001)
    raise AssertionError("no waiter started sleeping")


SLOW = 1000.0  # a period so long that nothing refills while a test runs


# -- limits: storages ----------------------------------------------------------------


async def test_a_bucket_from_a_redis_url_decides_in_redis_on_both_faces(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # limits TestConcreteStorages.test_storage_string / test_storage_check (redis), and aio twin
    limit = _RedisLimit(redis_url, "check", 2, SLOW, redis_client)
    assert limit.hit()
    assert await limit.ahit()
    assert not limit.hit()
    assert limit.bucket.backend == "redis"
    assert limit.bucket.stats.redis_calls == 3
    assert limit.bucket.stats.fallback_calls == 0
    await limit.bucket.aclose()
    limit.close()


async def test_a_bucket_on_a_unix_socket_with_a_password_decides_in_redis(
    redis_factory: Callable[..., RedisServer],
) -> None:
    # limits TestConcreteStorages.test_storage_string (redis-uds, redis-uds-auth), and aio twin
    with tempfile.TemporaryDirectory(prefix="argo-rl-") as directory:
        sock = Path(directory) / "redis.sock"
        server = redis_factory(extra_args=["--unixsocket", str(sock), "--unixsocketperm", "700"])
        with server.client() as admin:
            admin.config_set("requirepass", "sekret")
        bucket = RedisTokenBucket(f"unix://:sekret@{sock}", "uds", 2 / SLOW, 2)
        assert bucket.try_acquire()
        assert await bucket.acquire_async(timeout=0)
        assert not bucket.try_acquire()
        assert bucket.backend == "redis"
        assert (bucket.stats.redis_calls, bucket.stats.errors) == (3, 0)
        await bucket.aclose()
        bucket.close()


@pytest.mark.parametrize(
    "url", ["blah://", "redis+sentinel://localhost:26379", "redis+sentinel://localhost:26379/"]
)
def test_a_malformed_url_is_a_config_error(url: str) -> None:
    # limits TestBaseStorage.test_invalid_storage_string (a sentinel URL without its service)
    with pytest.raises(ConfigError, match="url"):
        RedisTokenBucket(url, "k", 1, 1)
    with pytest.raises(ConfigError, match="redis"):
        RateLimiter({"src": RateLimitConfig(1, 1)}, redis=url)


async def test_an_idle_key_expires_soon_after_the_bucket_is_full_and_reads_empty_before(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # limits test_expiry_incr (and aio twin); PyrateLimiter test_bucket_leak (the state ages out)
    limit = _RedisLimit(redis_url, "expiry", 1, 0.1, redis_client)  # 1 per 0.1 s
    for face in ("sync", "async"):
        limit.clear()
        assert limit.hit() if face == "sync" else await limit.ahit()
        with redis_client.pipeline(transaction=True) as pipe:
            pipe.time()
            pipe.pttl(limit.bucket.key)
            pipe.get(limit.bucket.key)
            (seconds, micros), pttl, state = pipe.execute()
        full_again = int(state) / 1e6  # one window: the theoretical arrival time
        expires = seconds + micros / 1e6 + pttl / 1e3
        # The key outlives the state by at most two seconds (to the millisecond).
        assert 0 < expires - full_again <= 2.002
        await asyncio.sleep(0.15)  # past the state's time, long before the key expires
        # limits' get() == 0: what is left of the state counts for nothing.
        assert limit.remaining == 1
        assert limit.reset_in == 0.0
    await limit.bucket.aclose()
    limit.close()


def test_a_cost_counts_as_that_many_requests_in_redis(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # limits test_incr_custom_amount (1, then 11 after a cost of 10)
    limit = _RedisLimit(redis_url, "custom-amount", 11, SLOW * 11, redis_client)
    assert limit.hit(1)
    first = limit.state()
    assert limit.hit(10)
    second = limit.state()
    assert first is not None
    assert second is not None
    interval_us = SLOW * 1e6  # one request's share of time, in Redis microseconds
    assert int(second) - int(first) == 10 * interval_us
    assert limit.remaining == 0
    assert limit.count() == pytest.approx(11, abs=1e-3)
    limit.close()


async def test_a_cost_beyond_the_limit_raises_and_a_denied_cost_takes_nothing(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # limits test_acquire_entry_custom_amount / test_fixed_window_multiple_cost (and aio twins).
    # Intentional difference: a cost of 11 on a limit of 10 raises ValueError at once
    # (it could never be granted) instead of returning False.
    k1 = _RedisLimit(redis_url, "k1", 10, SLOW, redis_client)
    k2 = _RedisLimit(redis_url, "k2", 10, SLOW, redis_client)
    calls: list[Callable[[], object]] = [
        lambda: k1.hit(11),
        lambda: k1.test(11),
        lambda: k1.bucket.acquire(11, timeout=0),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="burst"):
            call()
    with pytest.raises(ValueError, match="burst"):
        await k1.bucket.acquire_async(11)
    assert redis_client.keys("*") == []  # nothing reached Redis
    assert k2.hit(5)
    assert k2.remaining == 5
    before, ttl_before = k2.state(), redis_client.pttl(k2.bucket.key)
    assert not k2.test(6)
    assert not k2.hit(6)
    assert not await k2.ahit(6)
    # Denied: the state is what it was, and its expiry was not pushed back.
    assert k2.state() == before
    assert redis_client.pttl(k2.bucket.key) <= ttl_before
    assert redis_client.exists(k2.bucket.queue_key) == 0
    assert k2.hit(5)
    assert k1.remaining == 10  # another key, untouched
    await k1.bucket.aclose()
    k1.close()
    k2.close()


def test_deleting_the_keys_clears_a_bucket(redis_url: str, redis_client: redis.Redis) -> None:
    # limits test_storage_clear / test_moving_window_varying_cost; PyrateLimiter test_bucket_flush
    limit = _RedisLimit(redis_url, "clear", 5, SLOW, redis_client)
    other = _RedisLimit(redis_url, "clear", 5, SLOW, redis_client)  # another process
    assert limit.hit(5)
    assert not limit.hit(2)
    assert other.count() == pytest.approx(5, abs=1e-3)
    limit.clear()
    assert redis_client.keys("*") == []
    assert other.remaining == 5  # every process sees the flush
    assert limit.hit()
    assert limit.remaining == 4
    limit.close()
    other.close()


def test_every_key_lives_under_its_prefix_so_deleting_a_prefix_resets_those_buckets(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # limits test_storage_reset (10 keys in each of two namespaces; reset() removes 20).
    # We have no reset(); a prefix scan finds exactly one key per used bucket.
    limiter = RateLimiter(default=RateLimitConfig(10 / SLOW, 10), redis=redis_url)
    others = [
        RedisTokenBucket(redis_url, str(i), 10 / SLOW, 10, prefix="OTHER:") for i in range(10)
    ]
    for i, bucket in enumerate(others):
        assert limiter.try_acquire(str(i))
        assert bucket.try_acquire()
    ours = list(redis_client.scan_iter(match="argo_perf:ratelimit:*"))
    theirs = list(redis_client.scan_iter(match="OTHER:*"))
    assert (len(ours), len(theirs), redis_client.dbsize()) == (10, 10, 20)
    assert redis_client.delete(*ours) == 10
    assert all(limiter.get(str(i)).available == 10 for i in range(10))
    assert all(bucket.available == pytest.approx(9, abs=1e-3) for bucket in others)
    limiter.close()
    for bucket in others:
        bucket.close()


async def test_a_custom_prefix_names_every_key_of_the_bucket(
    redis_url: str, redis_client: redis.Redis, clock: ManualClock
) -> None:
    # limits TestRedisStorage.test_custom_prefix (redis), and its aio twin
    limit = _RedisLimit(
        redis_url, "test", 1, SLOW, redis_client, prefix="my-custom-prefix:", clock=clock
    )
    assert limit.bucket.key == "my-custom-prefix:{test}"
    assert await limit.ahit()
    assert redis_client.keys("*") == [b"my-custom-prefix:{test}"]
    waiter = asyncio.create_task(limit.bucket.acquire_async())
    await _until_sleeping(clock)
    assert sorted(redis_client.keys("*")) == [
        b"my-custom-prefix:{test}",
        b"my-custom-prefix:{test}:queue",
    ]
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert redis_client.keys("*") == [b"my-custom-prefix:{test}"]
    await limit.bucket.aclose()
    limit.close()


@pytest.mark.parametrize("prefix", ["my-custom-prefix:", "", "app:{tenant}:"])
def test_a_custom_prefix_keeps_the_bucket_in_one_slot_on_a_cluster(
    cluster: RedisCluster, prefix: str
) -> None:
    # limits TestRedisStorage.test_custom_prefix (redis-cluster)
    with RedisTokenBucket(cluster.url, "test", 2 / SLOW, 2, prefix=prefix) as bucket:
        keys = (bucket.key, bucket.queue_key, bucket.config_key)
        assert len({key_slot(key.encode()) for key in keys}) == 1
        assert [bucket.try_acquire() for _ in range(3)] == [True, True, False]
        bucket.reconfigure(2 / SLOW, 3)  # the script that touches the third key
        assert bucket.try_acquire()
        assert bucket.stats.errors == 0
        with cluster.client() as client:
            assert client.exists(bucket.key) == 1


def test_a_key_that_would_empty_the_hash_tag_is_refused(cluster: RedisCluster) -> None:
    # limits TestRedisStorage.test_custom_prefix (redis-cluster), with a caller's own key:
    # "}vendor" would make "{prefix}{}vendor}" an empty hash tag, the bucket's keys in
    # different slots; refused at construction (any other key keeps them in one slot).
    with pytest.raises(ConfigError, match="hash tag"):
        RedisTokenBucket(cluster.url, "}vendor", 2 / SLOW, 2)
    with RedisTokenBucket(cluster.url, "ven}dor", 2 / SLOW, 2) as bucket:
        keys = (bucket.key, bucket.queue_key, bucket.config_key)
        assert [bucket.try_acquire() for _ in range(3)] == [True, True, False]
        bucket.reconfigure(2 / SLOW, 3)
        assert bucket.stats.errors == 0
        assert len({key_slot(key.encode()) for key in keys}) == 1


async def test_a_redis_error_never_reaches_the_caller_on_any_face(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # limits TestStorageErrors (wrap_exceptions True/False). Intentional difference: limits
    # raises the (wrapped) storage error; ours counts it and the local fallback decides.
    bucket = RedisTokenBucket(redis_url, "wrongtype", rate=10, burst=8, fallback_share=0.5)
    redis_client.rpush(bucket.key, "x")  # every script call gets WRONGTYPE
    assert bucket.try_acquire()
    assert bucket.acquire(timeout=0)
    assert 0 <= bucket.wait_time() <= 0.2
    assert 0 <= bucket.available <= 4
    bucket.penalize(0.01)
    bucket.reconfigure(10, 8)
    assert isinstance(await bucket.acquire_async(timeout=0), bool)
    assert 0 <= await bucket.wait_time_async() <= 0.2
    assert 0 <= await bucket.available_async() <= 4
    await bucket.penalize_async(0.01)
    await bucket.reconfigure_async(10, 8)
    stats = bucket.stats
    assert (stats.errors, stats.redis_calls, stats.fallback_calls) == (11, 0, 3)
    assert bucket.backend == "redis"  # Redis answered: not an outage
    assert redis_client.lrange(bucket.key, 0, -1) == [b"x"]  # and nothing overwrote it
    await bucket.aclose()
    bucket.close()


# -- limits: strategies ----------------------------------------------------------------


def test_the_limit_is_granted_then_denied_with_the_time_to_refill(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # limits TestFixedWindow.test_fixed_window. Intentional difference: no fixed window; the
    # bucket is full again ``period`` after the burst was taken (continuous refill).
    limit = _RedisLimit(redis_url, "fixed", 10, SLOW, redis_client)
    assert [limit.hit() for _ in range(10)] == [True] * 10
    assert not limit.hit()
    assert limit.remaining == 0
    assert limit.reset_in == pytest.approx(SLOW, abs=0.5)
    limit.close()


async def test_the_limit_is_granted_then_denied_on_the_asyncio_face(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # limits aio TestFixedWindow.test_fixed_window
    limit = _RedisLimit(redis_url, "fixed-aio", 10, SLOW, redis_client)
    assert [await limit.ahit() for _ in range(10)] == [True] * 10
    assert not await limit.ahit()
    assert await limit.aremaining() == 0
    assert await limit.bucket.wait_time_async(10) == pytest.approx(SLOW, abs=0.5)
    await limit.bucket.aclose()
    limit.close()


async def test_an_unused_bucket_has_everything_remaining_and_writes_nothing(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # limits test_fixed_window_empty_stats / test_moving_window_empty_stats (and aio twins).
    # Intentional difference: a moving window says reset at now + period; a full bucket
    # is full now (reset_in 0).
    limit = _RedisLimit(redis_url, "empty", 10, 2, redis_client)
    assert limit.remaining == 10
    assert await limit.aremaining() == 10
    assert limit.reset_in == 0.0
    assert limit.test(10)
    assert await limit.atest(10)
    assert redis_client.keys("*") == []  # reading a bucket never writes state
    await limit.bucket.aclose()
    limit.close()


async def test_testing_a_limit_takes_nothing_in_redis(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # limits test_test_fixed_window / test_test_moving_window / test_test_sliding_window_counter
    limit = _RedisLimit(redis_url, "test", 2, SLOW, redis_client)
    assert limit.hit()
    state = limit.state()
    assert limit.test()
    assert await limit.atest()
    assert limit.state() == state
    assert limit.hit()
    assert not limit.test()
    assert not await limit.atest()
    assert not limit.hit()
    await limit.bucket.aclose()
    limit.close()


def test_a_bucket_emptied_at_once_is_full_again_after_its_period(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # limits test_sliding_window_counter_total_reset (cost = the whole limit, then 2 periods)
    limit = _RedisLimit(redis_url, "total-reset", 10, 0.1, redis_client)
    assert limit.hit(10)
    assert 0 <= limit.reset_in <= 0.1
    time.sleep(0.15)
    assert limit.remaining == 10
    assert limit.reset_in == 0.0
    assert limit.hit(10)
    limit.close()


def test_the_bucket_refills_continuously_in_redis_time(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # limits test_moving_window / test_moving_window_multiple_cost. Intentional difference:
    # tokens come back one by one at the rate, not when a past hit leaves the window.
    limit = _RedisLimit(redis_url, "refill", 10, 0.1, redis_client)  # 100 per second
    start = redis_now(redis_client)
    assert limit.hit(5)
    assert all(limit.hit() for _ in range(5))
    time.sleep(0.05)  # at least 5 tokens back
    more = 0
    while more < 1000 and limit.hit():  # bounded, should the machine crawl
        more += 1
    elapsed = redis_now(redis_client) - start
    assert more >= 5
    assert 10 + more <= 10 + 100 * elapsed  # GCRA's bound, in Redis time: exact
    limit.close()


def test_a_spent_limit_reports_the_wait_for_one_request_and_for_all(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # limits test_moving_window_stats (2 per minute: reset in 58 s). Intentional difference:
    # the first token is back after 30 s, the whole limit after 60 s.
    limit = _RedisLimit(redis_url, "stats", 2, 60, redis_client)
    assert limit.hit()
    assert limit.hit()
    assert not limit.hit()
    assert limit.remaining == 0
    assert limit.waiting(1) == pytest.approx(30, abs=0.5)
    assert limit.reset_in == pytest.approx(60, abs=0.5)
    limit.close()


def test_a_huge_cost_is_counted_exactly_in_redis(redis_url: str, redis_client: redis.Redis) -> None:
    # limits test_moving_window_huge_cost (a million per period)
    limit = _RedisLimit(redis_url, "huge", 1_000_000, SLOW * 1_000_000, redis_client)
    assert limit.hit()
    first = limit.state()
    assert limit.hit(1_000_000 - 1)
    second = limit.state()
    assert first is not None
    assert second is not None
    assert int(second) - int(first) == (1_000_000 - 1) * SLOW * 1e6
    assert limit.remaining == 0
    assert not limit.hit()
    limit.clear()
    assert limit.remaining == 1_000_000
    limit.close()


def test_concurrent_threads_get_exactly_the_limit_from_redis(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # limits TestConcurrency.test_fixed_window / test_moving_window (100 threads, 5 per minute)
    limit = _RedisLimit(redis_url, "threads", 5, 60, redis_client)
    hits: list[None] = []
    lock = threading.Lock()

    def hit() -> None:
        time.sleep(random.random() / 1000)
        if limit.hit():
            with lock:
                hits.append(None)

    threads = [threading.Thread(target=hit) for _ in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(hits) == 5
    stats = limit.bucket.stats
    assert (stats.granted, stats.denied, stats.errors, stats.fallback_calls) == (5, 95, 0, 0)
    limit.close()


async def test_concurrent_tasks_get_exactly_the_limit_from_redis(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # limits TestAsyncConcurrency.test_fixed_window / test_moving_window (100 tasks)
    limit = _RedisLimit(redis_url, "tasks", 5, 60, redis_client)
    hits: list[None] = []

    async def hit() -> None:
        await asyncio.sleep(random.random() / 1000)
        if await limit.ahit():
            hits.append(None)

    await asyncio.gather(*[hit() for _ in range(100)])
    assert len(hits) == 5
    stats = limit.bucket.stats
    assert (stats.granted, stats.denied, stats.errors, stats.fallback_calls) == (5, 95, 0, 0)
    await limit.bucket.aclose()
    limit.close()


# -- PyrateLimiter: the Redis bucket ---------------------------------------------------


async def test_a_weight_of_the_whole_limit_is_put_at_once(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # PyrateLimiter test_redis_bucket_batches_large_weight / test_async_redis_..._large_weight
    for face in ("sync", "async"):
        limit = _RedisLimit(redis_url, f"weight-{face}", 1001, SLOW * 1001, redis_client)
        assert limit.hit(1001) if face == "sync" else await limit.ahit(1001)
        assert limit.count() == pytest.approx(1001, abs=1e-3)
        limit.clear()
        assert limit.count() == 0
        await limit.bucket.aclose()
        limit.close()


def test_weights_fill_the_bucket_and_an_overflowing_weight_takes_nothing(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # PyrateLimiter test_bucket_01 (20 per period). Intentional difference: a weight of 30
    # on a limit of 20 raises ValueError (it could never fit) instead of returning False.
    limit = _RedisLimit(redis_url, "bucket-01", 20, SLOW, redis_client)
    assert limit.waiting() == 0.0
    assert limit.hit()
    assert limit.hit(10)
    assert limit.count() == pytest.approx(11, abs=1e-3)
    assert not limit.hit(20)
    assert limit.count() == pytest.approx(11, abs=1e-3)
    assert limit.hit(9)
    assert limit.count() == pytest.approx(20, abs=1e-3)
    assert not limit.hit()
    with pytest.raises(ValueError, match="burst"):
        limit.hit(30)
    limit.close()


def test_two_rates_both_bound_what_redis_grants(redis_url: str, redis_client: redis.Redis) -> None:
    # PyrateLimiter test_bucket_02 (30 per second and 50 per 2 s), a tenth of the periods
    bucket = RedisTokenBucket(redis_url, "bucket-02", rate=300, burst=30, quotas=[Quota(50, 0.2)])
    start = redis_now(redis_client)
    granted = 0
    stop = time.monotonic() + 0.3
    while time.monotonic() < stop:
        granted += bucket.try_acquire()
    elapsed = redis_now(redis_client) - start
    assert granted <= 30 + 300 * elapsed  # the rate's bound
    assert granted <= 50 + 250 * elapsed  # the quota's bound
    assert granted >= 30
    assert bucket.stats.errors == 0
    bucket.close()


def test_waiting_says_when_a_weight_fits_and_that_long_a_timeout_suffices(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # PyrateLimiter test_bucket_waiting (3 per 500 ms; weights 1, 2, 3)
    slow = _RedisLimit(redis_url, "waiting-slow", 3, 300, redis_client)  # a token per 100 s
    assert slow.waiting() == 0.0
    assert slow.hit(3)
    assert not slow.hit()
    for weight in (1, 2, 3):
        assert slow.waiting(weight) == pytest.approx(100 * weight, abs=0.5)
    # Just short of it: refused at once, nothing reserved, nothing queued.
    state = slow.state()
    assert not slow.bucket.acquire(1, timeout=slow.waiting(1) - 0.5)
    assert slow.state() == state
    assert redis_client.exists(slow.bucket.queue_key) == 0
    slow.close()
    # A timeout of what waiting() said is enough (a token per 1/30 s: real, short waits).
    fast = _RedisLimit(redis_url, "waiting-fast", 3, 0.1, redis_client)
    for weight in (1, 2, 3):
        assert fast.bucket.acquire(3)  # empty it (after its refill, when needed)
        wait = fast.waiting(weight)
        assert 0 <= wait <= weight / 30
        assert fast.bucket.acquire(weight, timeout=wait)
    assert (fast.bucket.stats.granted, fast.bucket.stats.denied) == (6, 0)
    fast.close()


async def test_flushing_while_a_waiter_sleeps_neither_wedges_nor_fails_it(
    redis_url: str, redis_client: redis.Redis, clock: ManualClock
) -> None:
    # PyrateLimiter test_bucket_flush, with a waiter queued when the bucket is flushed
    limit = _RedisLimit(redis_url, "flush", 2, SLOW, redis_client, clock=clock)
    assert limit.hit(2)
    waiter = asyncio.create_task(limit.bucket.acquire_async())
    await _until_sleeping(clock)
    limit.clear()
    assert limit.remaining == 2  # flushed: full, for every process
    assert limit.hit()
    clock.advance(SLOW)
    assert await waiter  # its grant stands; nothing fails
    assert limit.bucket.stats.errors == 0
    assert redis_client.exists(limit.bucket.queue_key) == 0
    await limit.bucket.aclose()
    limit.close()


async def test_the_queue_key_expires_soon_after_the_last_waiter_is_granted(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # PyrateLimiter test_bucket_leak (once the items are done, nothing is left behind).
    # Ours (documented): the queue key expires within 2 s of the last grant, or goes at
    # the next acquire.
    limit = _RedisLimit(redis_url, "leak", 1, 0.05, redis_client)  # a token per 50 ms
    assert limit.hit()
    assert await limit.bucket.acquire_async(timeout=1)  # waits about 50 ms, real
    assert limit.bucket.stats.waited == 1
    assert 0 < redis_client.pttl(limit.bucket.queue_key) <= 2_000
    await limit.bucket.aclose()
    limit.close()


def test_many_puts_within_the_limit_are_all_granted_and_counted(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # PyrateLimiter test_bucket_performance (10k puts within 30000 per 50 s; no timing here)
    # 3 tokens per 1000 s: a request is 333333333.33... microseconds of Redis time (not whole).
    limit = _RedisLimit(redis_url, "many", 3000, 1_000_000, redis_client)
    assert [limit.hit() for _ in range(2000)] == [True] * 2000
    assert limit.count() == pytest.approx(2000, abs=0.5)
    limit.close()


async def test_weight_zero_is_refused_on_every_face(redis_url: str) -> None:
    # PyrateLimiter test_limiter_01 / test_limiter_async_factory_get_weight0. Intentional
    # difference: weight 0 "passes through" there; ours raises ValueError (not positive).
    bucket = RedisTokenBucket(redis_url, "zero", 1, 1)
    limiter = RateLimiter({"src": RateLimitConfig(1, 1)}, redis=redis_url)
    calls: list[Callable[[], object]] = [
        lambda: bucket.try_acquire(0),
        lambda: bucket.acquire(0),
        lambda: bucket.wait_time(0),
        lambda: limiter.try_acquire("src", 0),
        lambda: limiter.wait_for_permission_sync("src", tokens=0),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="tokens"):
            call()
    with pytest.raises(ValueError, match="tokens"):
        await bucket.acquire_async(0)
    with pytest.raises(ValueError, match="tokens"):
        await limiter.wait_for_permission("src", tokens=0)
    assert bucket.stats.redis_calls == 0
    await bucket.aclose()
    bucket.close()
    await limiter.aclose()


async def test_concurrent_waiters_on_a_redis_limiter_are_served_in_arrival_order(
    redis_url: str, clock: ManualClock
) -> None:
    # PyrateLimiter test_limiter_concurrency (concurrent acquires beyond a limit of 3)
    limiter = RateLimiter({"demo": RateLimitConfig(1 / 100, 3)}, redis=redis_url, clock=clock)
    first = [asyncio.create_task(limiter.wait_for_permission("demo")) for _ in range(3)]
    await asyncio.gather(*first)
    fourth = asyncio.create_task(limiter.wait_for_permission("demo"))
    await _until_sleeping(clock, 1)
    fifth = asyncio.create_task(limiter.wait_for_permission("demo"))
    await _until_sleeping(clock, 2)
    clock.advance(100)  # the fourth's grant time, not the fifth's
    await fourth
    assert not fifth.done()
    clock.advance(100)
    await fifth
    stats = limiter.stats["demo"]
    assert (stats.granted, stats.waited, stats.denied) == (5, 2, 0)
    await limiter.aclose()


async def test_waiters_that_cannot_be_served_within_their_timeout_are_refused_at_once(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # PyrateLimiter test_wait_too_long (500 acquires with a 10 ms timeout; 10 per second
    # there, a hundredth of that here: a refused waiter could be served 10 s later at best)
    limiter = RateLimiter({"mytest": RateLimitConfig(0.1, 10)}, redis=redis_url)

    async def acquire() -> float | None:
        try:
            await limiter.wait_for_permission("mytest", timeout=0.01)
        except RateLimitExceeded as exc:
            return exc.retry_after
        return None

    results = await asyncio.gather(*[acquire() for _ in range(500)])
    refusals = [retry for retry in results if retry is not None]
    assert len(refusals) == 490  # the burst of 10 granted, no more
    assert all(9 < retry <= 10 for retry in refusals)
    assert redis_client.exists("argo_perf:ratelimit:{mytest}:queue") == 0  # none reserved
    stats = limiter.stats["mytest"]
    assert isinstance(stats, RedisBucketStats)
    assert stats.errors == 0
    await limiter.aclose()


_WORKER = textwrap.dedent(
    """
    import json, sys
    from argo_perf import RateLimitConfig, RateLimiter
    limiter = RateLimiter({"mytask": RateLimitConfig(0.001, 25)}, redis=sys.argv[1])
    granted = sum(limiter.try_acquire("mytask") for _ in range(20))
    stats = limiter.stats["mytask"]
    print(json.dumps({"granted": granted, "errors": stats.errors}))
    limiter.close()
    """
)


def test_processes_sharing_a_redis_limiter_get_exactly_its_burst_together(
    redis_url: str,
) -> None:
    # PyrateLimiter test_multiprocessing test_mp_bucket (a limit shared by a process pool)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, redis_url], stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        for _ in range(3)
    ]
    reports = [json.loads(proc.communicate(timeout=60)[0]) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    assert sum(report["granted"] for report in reports) == 25
    assert all(report["errors"] == 0 for report in reports)
