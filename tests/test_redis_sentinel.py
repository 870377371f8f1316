"""Every Redis-backed piece on a master found through Sentinel (``redis+sentinel://``).

The session's group (a master, a replica, three sentinels: ``sentinels``
fixture) is shared; the failover test leaves the old master dead, and the next
test's fixture brings it back as a replica of the new one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from argo_perf import (
    AsyncRedisCache,
    ConfigError,
    RateLimitConfig,
    RateLimiter,
    RedisCache,
    RedisTokenBucket,
)
from argo_perf._redis import RedisLink, is_outage, redact_url
from argo_perf._redis._url import parse_topology
from argo_perf.breaker import RedisBreakerState
from argo_perf.testing import RedisSentinelGroup


def test_the_cache_and_the_bucket_on_a_sentinel_url(sentinels: RedisSentinelGroup) -> None:
    with RedisCache(sentinels.url, maxsize=0) as cache:
        assert cache.set_many({"AAPL": 1.0, "MSFT": 2.0}) is True
        assert cache.get_many(["AAPL", "MSFT"]) == {"AAPL": 1.0, "MSFT": 2.0}
        assert sentinels.url in repr(cache)
    with sentinels.master().client() as client:
        assert client.exists("argo_perf:v1:AAPL") == 1
    with RedisTokenBucket(sentinels.url, "vendor:xai", rate=0.001, burst=2) as bucket:
        assert [bucket.try_acquire() for _ in range(3)] == [True, True, False]
        assert bucket.stats.redis_calls == 3


async def test_the_async_pieces_on_a_sentinel_url(sentinels: RedisSentinelGroup) -> None:
    cache = AsyncRedisCache(sentinels.url, maxsize=0)
    assert await cache.set("AAPL", 1.0) is True
    assert await cache.get("AAPL") == 1.0
    await cache.close()
    limiter = RateLimiter({"massive": RateLimitConfig(0.001, 1)}, redis=sentinels.url)
    await limiter.wait_for_permission("massive", timeout=0)
    assert limiter.try_acquire("massive") is False
    await limiter.aclose()
    state = RedisBreakerState(sentinels.url)
    await state.publish_open_async("massive", "p1", 30.0)
    remaining = await state.open_remaining_async("massive")
    assert remaining is not None
    assert 29.0 < remaining <= 30.0
    await state.aclose()


def test_a_sentinel_managed_client_passed_in_is_used_and_described(
    sentinels: RedisSentinelGroup,
) -> None:
    client = sentinels.client()
    cache = RedisCache(client)
    assert cache.set("AAPL", 1.0) is True
    assert RedisCache(client).get("AAPL") == 1.0
    link = RedisLink(client)
    assert link.target.startswith("redis+sentinel://127.0.0.1:")
    assert link.target.endswith(f"/{sentinels.service}/0")
    assert not link.cluster
    client.close()


def test_no_master_known_to_the_sentinels_is_an_outage() -> None:
    cache = RedisCache("redis+sentinel://127.0.0.1:1/mymaster", failure_threshold=1)
    assert cache.set("AAPL", 1.0) is False
    assert cache.get("AAPL") == 1.0
    assert cache.backend == "memory"
    cache.close()
    assert is_outage(redis.sentinel.MasterNotFoundError("No master found"))


def test_sentinel_urls_are_taken_apart() -> None:
    topology = parse_topology(
        "redis+sentinel://app:p%40ss@h1,h2:26380/prices/2"
        "?sentinel_password=s3cret&socket_timeout=0.1&max_connections=4"
    )
    assert list(topology.nodes) == [("h1", 26379), ("h2", 26380)]
    assert (topology.service, topology.db) == ("prices", 2)
    assert (topology.username, topology.password) == ("app", "p@ss")
    assert topology.options == {
        "sentinel_password": "s3cret",
        "socket_timeout": 0.1,
        "max_connections": 4,
    }
    assert "s3cret" not in repr(topology)
    assert "p@ss" not in repr(topology)


def test_passwords_of_sentinel_urls_are_redacted() -> None:
    url = "redis+sentinel://app:hunter2@h1:26379,h2:26380/prices/0?sentinel_password=s3cret"
    assert (
        redact_url(url)
        == "redis+sentinel://app:***@h1:26379,h2:26380/prices/0?sentinel_password=***"
    )
    link = RedisLink(url)
    assert "hunter2" not in repr(link)
    assert "s3cret" not in link.target
    link.close()


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+sentinel://h1:26379", "service"),
        ("redis+sentinel://h1:26379/", "service"),
        ("redis+sentinel://h1:26379/svc/x", "database"),
        ("redis+sentinel://h1:26379/svc/0/1", "database"),
        ("redis+sentinel://h1:26379/svc?db=1", "unknown option"),
        ("redis+sentinel://:pw@h1:abc/svc", "host:port"),
        ("redis+sentinel://h1:26379/svc?socket_timeout=soon", "socket_timeout"),
        ("redis+sentinel://h1:26379/svc?socket_timeout=-1", "socket_timeout"),
    ],
)
def test_malformed_sentinel_urls_are_refused_at_construction(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        RedisTokenBucket(url, "k", 1, 1)


# -- failover -------------------------------------------------------------------------


class _Watch:
    """Calls every piece in turn and notes, per piece, when it is back on Redis."""

    def __init__(self, url: str) -> None:
        self.cache = RedisCache(url)
        self.bucket = RedisTokenBucket(url, "vendor:massive", rate=5, burst=5)
        self.limiter = RateLimiter({"sonar": RateLimitConfig(5, 5)}, redis=url)
        self.state = RedisBreakerState(url)
        self.served = self.calls = self.granted = 0
        self.back: dict[str, float] = {}

    def round(self, now: float, promoted: float | None) -> None:
        self.calls += 1
        if self.cache.get("AAPL") == 1.0:
            self.served += 1
        self.granted += self.bucket.try_acquire()
        self.limiter.try_acquire("sonar")
        self.state.open_remaining("massive")
        if promoted is None:
            return
        on_redis = {
            "cache": self.cache.backend == "redis" and self.cache.set("MSFT", 2.0),
            "bucket": self.bucket.backend == "redis",
            "limiter": self.limiter.bucket("sonar").backend == "redis",
            "breaker state": self.state.health.available,
        }
        for piece, back in on_redis.items():
            if back and piece not in self.back:
                self.back[piece] = now - promoted

    def close(self) -> None:
        for piece in (self.cache, self.bucket, self.limiter, self.state):
            piece.close()


def test_every_piece_keeps_serving_through_a_failover_and_returns_to_redis(
    sentinels: RedisSentinelGroup,
) -> None:
    watch = _Watch(sentinels.url)
    assert watch.cache.set("AAPL", 1.0) is True
    old = sentinels.master()
    times: dict[str, Any] = {}

    def wait_for_promotion() -> None:
        times["new"] = sentinels.promoted(old, timeout=20.0)
        times["promoted"] = time.monotonic()

    started = time.monotonic()
    old.kill()
    killed = time.monotonic()
    waiter = threading.Thread(target=wait_for_promotion)
    waiter.start()
    try:
        while len(watch.back) < 4 and time.monotonic() - killed < 20.0:
            watch.round(time.monotonic(), times.get("promoted"))
            time.sleep(0.01)
    finally:
        waiter.join()
        watch.close()
    elapsed = time.monotonic() - started
    assert times["new"] is not old
    assert watch.served == watch.calls  # the in-process tier answered throughout
    assert set(watch.back) == {"cache", "bucket", "limiter", "breaker state"}
    # Redis grants at most burst + rate * t; the fallback bucket at most its share
    # (fallback_share 0.25) of both while Redis is out.
    fallback = watch.bucket.fallback
    bound = 5 + 5 * elapsed + fallback.burst + fallback.rate * elapsed
    assert watch.granted <= bound
    print(
        f"\nfailover: promotion {times['promoted'] - killed:.2f}s after the kill; back on "
        + ", ".join(f"{k} {v:.2f}s" for k, v in watch.back.items())
        + f" after it; {watch.calls} rounds, {watch.served} cache reads served, "
        f"{watch.granted} tokens granted (bound {bound:.1f}), "
        f"{watch.bucket.stats.fallback_calls} by the fallback"
    )


# -- coherent mode ------------------------------------------------------------------


def _wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait for the tracking thread's effect (bounded; not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def test_coherent_cache_follows_the_master_through_a_failover(
    sentinels: RedisSentinelGroup,
) -> None:
    options: dict[str, Any] = {"socket_timeout": 1.0, "connect_timeout": 1.0}
    cache = RedisCache(
        sentinels.url,
        namespace="co",
        coherent=True,
        heartbeat=0.1,
        probe_interval=0.1,
        failure_threshold=1,
        **options,
    )
    writer = RedisCache(sentinels.url, namespace="co", maxsize=0, **options)
    _wait_until(lambda: cache.stats.coherent)
    assert writer.set("AAPL", 1.0) is True
    _wait_until(lambda: cache.stats.invalidations >= 1)
    assert cache.get("AAPL") == 1.0
    before = cache.stats.invalidated_entries
    assert writer.set("AAPL", 2.0) is True  # another client's write drops the copy
    _wait_until(lambda: cache.stats.invalidated_entries > before)
    assert cache.get("AAPL") == 2.0
    assert cache.get_with_meta("AAPL").source == "memory"  # type: ignore[union-attr]
    old = sentinels.master()
    with old.client() as client:  # the replica has the value: the failover keeps it
        assert client.execute_command("WAIT", 1, 5000) >= 1
    old.kill()
    _wait_until(lambda: not cache.stats.coherent)
    new = sentinels.promoted(old, timeout=20.0)
    assert new is not old

    def back() -> bool:  # no copy from before the failover is ever served as fresh
        meta = cache.get_with_meta("AAPL")
        # A miss is allowed too: what is tested is that no copy from before the
        # failover is served as fresh.
        assert meta is None or meta.stale or meta.source == "redis"
        return cache.stats.coherent

    _wait_until(back)
    assert cache.stats.channel_reconnects == 1
    with new.client() as client:  # the channel is on the promoted master
        client.set(cache.redis_key("AAPL"), b"not an envelope")
    _wait_until(lambda: cache.get("AAPL", "gone") == "gone")
    cache.close()
    writer.close()


async def test_async_coherent_cache_on_a_sentinel_client_passed_in(
    sentinels: RedisSentinelGroup,
) -> None:
    import redis.asyncio.sentinel

    sentinel = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        [(s.host, s.port) for s in sentinels.sentinels], sentinel_kwargs={"socket_timeout": 1.0}
    )
    client = sentinel.master_for(sentinels.service, socket_timeout=1.0)
    cache = AsyncRedisCache(client, namespace="co", coherent=True)
    deadline = time.monotonic() + 10.0
    while not cache.stats.coherent:
        assert time.monotonic() < deadline, "the channel did not come up"
        await asyncio.sleep(0.005)
    assert await cache.set("AAPL", 1.0) is True
    with sentinels.master().client() as other:
        other.set(cache.redis_key("AAPL"), b"not an envelope")
    while cache.stats.invalidations < 2:
        assert time.monotonic() < deadline, "no invalidation"
        await asyncio.sleep(0.005)
    assert await cache.get("AAPL", "gone") == "gone"
    await cache.close()
    await client.aclose()


def test_coherent_cache_leaves_a_master_demoted_without_being_stopped(
    sentinels: RedisSentinelGroup, caplog: pytest.LogCaptureFixture
) -> None:
    # A manual failover leaves the old master running (its connections open) as a
    # replica: the sentinels' announcements on it move the channel.
    cache = RedisCache(
        sentinels.url, namespace="co", coherent=True, heartbeat=0.1, probe_interval=0.1
    )
    _wait_until(lambda: cache.stats.coherent)
    old = sentinels.master()
    with caplog.at_level(logging.WARNING, logger="argo_perf.cache"):
        with sentinels.sentinels[0].client() as sentinel:
            sentinel.execute_command("SENTINEL", "FAILOVER", sentinels.service)
        new = sentinels.promoted(old, timeout=20.0)
        _wait_until(lambda: cache.stats.channel_reconnects >= 1 and cache.stats.coherent)
    lost = [r.getMessage() for r in caplog.records if "invalidation channel" in r.getMessage()]
    assert f"the sentinels name 127.0.0.1:{new.port} as the master now" in lost[0]
    assert cache.set("AAPL", 1.0) is True
    _wait_until(lambda: cache.get_with_meta("AAPL").source == "memory")  # type: ignore[union-attr]
    with new.client() as client:  # heard on the promoted master
        client.set(cache.redis_key("AAPL"), b"not an envelope")
    _wait_until(lambda: cache.get("AAPL", "gone") == "gone")
    assert old.running
    cache.close()
