"""Cache counters and logs: every lookup counted once, refused writes reported without a flood.

Every Redis here is a real redis-server; time is a ManualClock.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest
import redis

from argo_perf import AsyncRedisCache, CacheConfig, ConfigError, ManualClock, RedisCache, cached
from argo_perf.testing import RedisServer

ROOMY: dict[str, Any] = {"socket_timeout": 2.0, "connect_timeout": 2.0}


def _lookups(cache: RedisCache | AsyncRedisCache) -> int:
    stats = cache.stats
    return stats.hits + stats.misses


# -- hits + misses = lookups -----------------------------------------------------------


def test_loader_calls_through_cached_are_misses(clock: ManualClock) -> None:
    cache = RedisCache(clock=clock, default_ttl=10.0)
    calls: list[str] = []

    @cached(cache)
    def quote(symbol: str) -> float:
        calls.append(symbol)
        return 231.5

    for _ in range(5):
        for symbol in ("AAPL", "MSFT", "NVDA", "AMZN"):
            quote(symbol)
        clock.advance(4.0)  # every third round the values have expired
    stats = cache.stats
    assert stats.misses == len(calls) == stats.loader_calls
    assert stats.hits + stats.misses == 20


def test_every_read_path_counts_each_lookup_once(
    redis_url: str, redis_client: redis.Redis, clock: ManualClock
) -> None:
    cache = RedisCache(redis_url, **ROOMY, clock=clock, default_ttl=10.0, max_stale=30.0)
    lookups = 0

    def check(n: int) -> None:
        nonlocal lookups
        lookups += n
        assert _lookups(cache) == lookups

    cache.set("AAPL", 1.0)
    cache.get("AAPL")  # memory hit
    check(1)
    cache.get("nothing")  # miss
    check(1)
    RedisCache(redis_url, **ROOMY, clock=clock).set("MSFT", 2.0)
    cache.get_with_meta("MSFT")  # redis hit
    check(1)
    cache.get_many(["AAPL", "MSFT", "none-1", "none-2"])
    check(4)
    cache.get_or_set("AAPL", lambda: 0.0)  # hit
    cache.get_or_set("NVDA", lambda: 3.0)  # loader
    cache.get_with_meta("AMZN", lambda: 4.0)  # loader
    check(3)
    clock.advance(11.0)

    def broken() -> float:
        raise OSError("vendor down")

    assert cache.get_or_set("AAPL", broken) == 1.0  # stale, served after a failed load
    check(1)
    redis_client.rpush("argo_perf:v1:LIST", b"x")
    cache.get("LIST")
    cache.get_many(["LIST"])
    check(2)
    stats = cache.stats
    assert stats.decode_failures == 2  # the list, by GET and by MGET
    assert stats.stale_served == 1


async def test_async_read_paths_count_each_lookup_once(
    redis_url: str, redis_client: redis.Redis, clock: ManualClock
) -> None:
    cache = AsyncRedisCache(redis_url, **ROOMY, clock=clock, default_ttl=10.0)

    @cached(cache)
    async def quote(symbol: str) -> float:
        return 231.5

    await cache.set("AAPL", 1.0)
    await cache.get("AAPL")
    await cache.get("nothing")
    await cache.get_with_meta("AAPL")
    await cache.get_many(["AAPL", "x"])
    await quote("AAPL")
    await quote("AAPL")
    redis_client.hset("argo_perf:v1:HASH", "a", "b")
    assert await cache.get_many(["HASH", "y"]) == {}
    assert _lookups(cache) == 9
    assert cache.stats.misses == 5
    assert cache.stats.decode_failures == 1
    await cache.close()


def test_get_many_counts_keys_of_another_type_as_decode_failures(
    redis_url: str, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    cache = RedisCache(redis_url, **ROOMY, maxsize=0)
    cache.set("AAPL", 1.0)
    redis_client.rpush("argo_perf:v1:LIST", b"x")
    redis_client.sadd("argo_perf:v1:SET", b"x")
    with caplog.at_level(logging.WARNING, logger="argo_perf.cache"):
        assert cache.get_many(["AAPL", "LIST", "SET", "none"]) == {"AAPL": 1.0}
    assert cache.stats.decode_failures == 2
    assert cache.stats.misses == 3
    assert any("argo_perf:v1:LIST" in r.getMessage() for r in caplog.records)


# -- refused writes: one line when they start, a count once a minute and when they end -----


def _full(server: RedisServer) -> redis.Redis:
    client = server.client()
    client.config_set("maxmemory", client.info("memory")["used_memory"] // 2)
    return client


@pytest.mark.parametrize("face", ["sync", "async"])
async def test_refused_writes_are_reported_without_flooding_the_log(
    redis_factory: Callable[..., RedisServer],
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
    face: str,
) -> None:
    server = redis_factory(extra_args=["--maxmemory", "64mb", "--maxmemory-policy", "noeviction"])
    sync_cache = RedisCache(server.url, **ROOMY, clock=clock, maxsize=0)
    async_cache = AsyncRedisCache(server.url, **ROOMY, clock=clock, maxsize=0)

    async def set_(key: str, value: float) -> bool:
        if face == "sync":
            return sync_cache.set(key, value)
        return await async_cache.set(key, value)

    async def set_many(mapping: dict[str, float]) -> bool:
        if face == "sync":
            return sync_cache.set_many(mapping)
        return await async_cache.set_many(mapping)

    assert await set_("warm", 1.0)
    client = _full(server)
    with caplog.at_level(logging.INFO, logger="argo_perf"):
        for i in range(200):
            assert await set_(f"k{i}", float(i)) is False
        assert await set_many({"a": 1.0, "b": 2.0}) is False
        refusals = [r for r in caplog.records if "refused" in r.getMessage()]
        assert len(refusals) == 1  # the first one
        clock.advance(60.0)
        assert await set_("late", 1.0) is False
        refusals = [r for r in caplog.records if "refused" in r.getMessage()]
        assert len(refusals) == 2
        assert "201 more" in refusals[1].getMessage()
        client.config_set("maxmemory", "0")
        assert await set_("back", 1.0) is True
        lines = [r.getMessage() for r in caplog.records if r.name.startswith("argo_perf")]
    assert len(lines) == 3
    assert "accepts writes again" in lines[2]
    client.close()
    sync_cache.close()
    await async_cache.close()


# -- undecodable values: one line when they start, a count once a minute -------------------


@pytest.mark.parametrize("face", ["sync", "async"])
@pytest.mark.parametrize("maxsize", [0, 100], ids=["redis-only", "two-tier"])
async def test_undecodable_values_are_reported_without_flooding_the_log(
    redis_url: str,
    redis_client: redis.Redis,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
    face: str,
    maxsize: int,
) -> None:
    redis_client.set("argo_perf:v1:GARBAGE", b"\xff not an envelope")
    redis_client.rpush("argo_perf:v1:LIST", b"x")
    sync_cache = RedisCache(redis_url, **ROOMY, clock=clock, maxsize=maxsize)
    async_cache = AsyncRedisCache(redis_url, **ROOMY, clock=clock, maxsize=maxsize)

    async def read_all() -> None:
        if face == "sync":
            assert sync_cache.get("GARBAGE") is None
            assert sync_cache.get("LIST") is None
            assert sync_cache.get_many(["GARBAGE", "LIST"]) == {}
            assert sync_cache.get_with_meta("LIST") is None
        else:
            assert await async_cache.get("GARBAGE") is None
            assert await async_cache.get("LIST") is None
            assert await async_cache.get_many(["GARBAGE", "LIST"]) == {}
            assert await async_cache.get_with_meta("LIST") is None

    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name.startswith("argo_perf")]

    with caplog.at_level(logging.INFO, logger="argo_perf"):
        for _ in range(100):
            await read_all()
        assert len(lines()) == 1  # the first one, with the key and the reason
        assert "argo_perf:v1:GARBAGE" in lines()[0]
        clock.advance(60.0)
        await read_all()
        assert len(lines()) == 2
        # 5 failures a round: the 499 after the first, and the one that reports them.
        assert "500 more" in lines()[1]
    cache = sync_cache if face == "sync" else async_cache
    assert cache.stats.decode_failures == 505  # still counted every time
    sync_cache.close()
    await async_cache.close()


@pytest.mark.parametrize("face", ["sync", "async"])
async def test_unverified_values_are_reported_without_flooding_the_log(
    redis_url: str,
    redis_client: redis.Redis,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
    face: str,
) -> None:
    signed = {"signing_key": b"0123456789abcdef"}
    RedisCache(redis_url, **ROOMY).set("FORGED", 1.0)  # unsigned, where signed are expected
    sync_cache = RedisCache(redis_url, **ROOMY, clock=clock, maxsize=0, **signed)
    async_cache = AsyncRedisCache(redis_url, **ROOMY, clock=clock, maxsize=0, **signed)
    with caplog.at_level(logging.INFO, logger="argo_perf"):
        for _ in range(50):
            if face == "sync":
                assert sync_cache.get("FORGED") is None
            else:
                assert await async_cache.get("FORGED") is None
        messages = [r.getMessage() for r in caplog.records if r.name.startswith("argo_perf")]
    assert len(messages) == 1
    assert "argo_perf:v1:FORGED" in messages[0]
    assert "not signed" in messages[0]
    cache = sync_cache if face == "sync" else async_cache
    assert cache.stats.signature_failures == 50
    sync_cache.close()
    await async_cache.close()


def test_cache_config_is_validated_once_and_exposed(clock: ManualClock) -> None:
    cache = RedisCache(clock=clock, namespace="prices", default_ttl=10, signing_key=b"k" * 16)
    config = cache.config
    assert isinstance(config, CacheConfig)
    assert (config.namespace, config.default_ttl, config.max_stale) == ("prices", 10.0, 60.0)
    assert "kkkk" not in repr(config)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.maxsize = 1  # type: ignore[misc]
    with pytest.raises(ConfigError, match="jitter"):
        CacheConfig(jitter=1.0)
    with pytest.raises(ConfigError, match="signing_key") as info:
        CacheConfig(signing_key=b"short-secret")
    assert "short-secret" not in str(info.value)


def test_stats_gauge_the_in_process_tier_and_flights(clock: ManualClock) -> None:
    cache = RedisCache(clock=clock, maxsize=2)
    assert (cache.stats.memory_entries, cache.stats.loads_in_flight) == (0, 0)
    for key in "abc":
        cache.set(key, 1)
    inside: list[int] = []

    def load() -> int:
        inside.append(cache.stats.loads_in_flight)
        return 2

    assert cache.get_or_set("d", load) == 2
    assert inside == [1]
    assert (cache.stats.memory_entries, cache.stats.loads_in_flight) == (2, 0)


def test_in_process_hits_from_many_threads_are_all_counted() -> None:
    cache = RedisCache(default_ttl=None)
    cache.set("AAPL", 231.5)
    per_thread, threads = 20_000, 8

    def read() -> None:
        for _ in range(per_thread):
            cache.get("AAPL")

    workers = [threading.Thread(target=read) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert cache.stats.memory_hits == per_thread * threads
