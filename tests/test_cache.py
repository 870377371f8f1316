"""RedisCache and AsyncRedisCache: two tiers, outages, safe decoding, single flight.

Every Redis here is a real redis-server; time is a ManualClock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from argo_perf import (
    AsyncRedisCache,
    BackendError,
    CachedValue,
    ConfigError,
    ManualClock,
    RedisCache,
    Serializer,
    cached,
    get_redis_cache,
)
from argo_perf._redis import PROBE_THREAD_NAME, BackendHealth
from argo_perf.cache import USE_DEFAULT
from argo_perf.cache._default import _reset_default_cache
from argo_perf.cache._envelope import _HEAD, _MAGIC, _TIMES
from argo_perf.testing import RedisServer, join_redis_probes

KEY = b"0123456789abcdef-signing"
# Generous timeouts for servers that are not meant to time out, so a loaded machine
# does not turn a slow answer into an outage; the freeze tests use FROZEN.
ROOMY: dict[str, Any] = {"socket_timeout": 2.0, "connect_timeout": 2.0}
FROZEN: dict[str, Any] = {"socket_timeout": 0.2, "connect_timeout": 2.0}


def wait_until(condition: Callable[[], bool]) -> None:
    """Wait for a background thread's effect (bounded; not a timing assertion)."""
    deadline = time.monotonic() + 5.0
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.001)


def join_probe(cache: RedisCache) -> None:
    """Wait for the cache's background probe (a thread named for it) to report.

    The probe may have reported already (a refused connection answers at once).
    """
    join_redis_probes()


async def join_async_probe(cache: AsyncRedisCache) -> None:
    """Wait for the cache's background probe (a task on this loop) to report."""
    others = asyncio.all_tasks() - {asyncio.current_task()}
    await asyncio.gather(*others, return_exceptions=True)


def raw_client(server: RedisServer) -> redis.Redis:
    return server.client()


# -- memory-only ------------------------------------------------------------------------


def test_memory_only_cache_needs_no_argument(clock: ManualClock) -> None:
    cache = RedisCache(clock=clock, default_ttl=10.0)
    assert cache.backend == "memory"
    assert cache.set("AAPL", 231.5) is False  # no Redis to reach
    assert cache.get("AAPL") == 231.5
    clock.advance(10.0)
    assert cache.get("AAPL", "gone") == "gone"  # expired; no outage, so nothing stale
    stats = cache.stats
    assert (stats.memory_hits, stats.misses, stats.sets) == (1, 1, 1)
    assert stats.redis_set_failures == 0
    assert stats.hits == 1


def test_ttl_none_never_expires_and_use_default_takes_the_cache_default(
    clock: ManualClock,
) -> None:
    cache = RedisCache(clock=clock, default_ttl=5.0)
    cache.set("forever", 1, ttl=None)
    cache.set("default", 2, ttl=USE_DEFAULT)
    cache.set("short", 3, ttl=1)
    clock.advance(2.0)
    assert cache.get_many(["forever", "default", "short"]) == {"forever": 1, "default": 2}
    clock.advance(10**6)
    assert cache.get("forever") == 1
    assert cache.get("default") is None


def test_ttl_callable_is_asked_per_key(clock: ManualClock) -> None:
    asked: list[str] = []

    def ttl_for(symbol: str) -> float:
        asked.append(symbol)
        return 10.0 if symbol.endswith("-USD") else 300.0

    cache = RedisCache(clock=clock, default_ttl=ttl_for)
    cache.set("BTC-USD", 1.0)
    cache.set("AAPL", 2.0)
    cache.set_many({"ETH-USD": 3.0}, ttl=lambda key: 1.0)
    clock.advance(20.0)
    assert cache.get_many(["BTC-USD", "AAPL", "ETH-USD"]) == {"AAPL": 2.0}
    assert asked == ["BTC-USD", "AAPL"]


def test_bad_ttl_from_a_callable_raises_config_error(clock: ManualClock) -> None:
    cache = RedisCache(clock=clock)
    with pytest.raises(ConfigError, match="ttl"):
        cache.set("x", 1, ttl=lambda key: -1.0)
    with pytest.raises(ConfigError, match="ttl"):
        cache.set("x", 1, ttl=0)


def test_jitter_shortens_ttls_within_the_fraction(clock: ManualClock) -> None:
    cache = RedisCache(clock=clock, default_ttl=100.0, jitter=0.2, rng=random.Random(1))
    for i in range(50):
        cache.set(f"k{i}", i)
    clock.advance(80.0)
    assert len(cache.get_many([f"k{i}" for i in range(50)])) == 50
    clock.advance(20.0)
    assert cache.get_many([f"k{i}" for i in range(50)]) == {}


def test_in_process_tier_is_bounded_lru(clock: ManualClock) -> None:
    cache = RedisCache(clock=clock, maxsize=2)
    cache.set("a", 1)
    cache.set("b", 2)
    cache.get("a")
    cache.set("c", 3)
    assert cache.get("b") is None
    assert cache.get_many(["a", "c"]) == {"a": 1, "c": 3}


def test_delete_and_clear_by_prefix_in_memory(clock: ManualClock) -> None:
    cache = RedisCache(clock=clock)
    cache.set_many({"px:AAPL": 1, "px:MSFT": 2, "news:AAPL": 3})
    assert cache.delete("px:AAPL") is False  # memory-only: nothing reached Redis
    assert cache.get("px:AAPL") is None
    assert cache.clear("px:") == 1
    assert cache.get_many(["px:MSFT", "news:AAPL"]) == {"news:AAPL": 3}
    assert cache.clear() == 1


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"serializer": "pickle"}, "serializer"),
        ({"serializer": "yaml"}, "serializer"),
        ({"serializer": object()}, "serializer"),
        ({"signing_key": b"short"}, "signing_key"),
        ({"signing_key": "a-str-key-of-enough-length"}, "signing_key"),
        ({"namespace": ""}, "namespace"),
        ({"namespace": "a:b"}, "namespace"),
        ({"version": -1}, "version"),
        ({"version": True}, "version"),
        ({"maxsize": 0}, "maxsize"),
        ({"maxsize": -5}, "maxsize"),
        ({"default_ttl": 0}, "default_ttl"),
        ({"default_ttl": "10"}, "default_ttl"),
        ({"default_ttl": USE_DEFAULT}, "default_ttl"),
        ({"max_stale": -1.0}, "max_stale"),
        ({"max_stale": float("nan")}, "max_stale"),
        ({"local_ttl": 0}, "local_ttl"),
        ({"jitter": 1.0}, "jitter"),
        ({"jitter": True}, "jitter"),
        ({"early_refresh": -1}, "early_refresh"),
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"probe_interval": 0}, "probe_interval"),
        ({"probe_interval": float("inf")}, "probe_interval"),
        ({"probe_interval": "1"}, "probe_interval"),
        ({"failure_threshold": 2.5}, "failure_threshold"),
        ({"failure_threshold": "3"}, "failure_threshold"),
        ({"early_refresh": float("inf")}, "early_refresh"),
        ({"socket_timeout": 0}, "socket_timeout"),
        ({"socket_timeout": float("inf")}, "socket_timeout"),
        ({"connect_timeout": "1"}, "connect_timeout"),
        ({"local_ttl": float("nan")}, "local_ttl"),
        ({"health": object()}, "health"),
    ],
)
def test_bad_configuration_names_the_parameter(kwargs: dict[str, Any], parameter: str) -> None:
    with pytest.raises(ConfigError) as info:
        RedisCache(**kwargs)
    assert info.value.parameter == parameter
    with pytest.raises(ConfigError):
        AsyncRedisCache(**kwargs)


def test_bad_urls_and_clients_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="url"):
        RedisCache("http://localhost")
    with pytest.raises(ConfigError, match="url_or_client"):
        RedisCache(redis.asyncio.Redis())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="url_or_client"):
        AsyncRedisCache(redis.Redis())  # type: ignore[arg-type]


def test_custom_serializer_name_is_checked() -> None:
    class Bad:
        name = "x" * 17

        def dumps(self, value: Any) -> bytes:
            return b""

        def loads(self, data: bytes) -> Any:
            return None

    with pytest.raises(ConfigError, match=r"serializer\.name"):
        RedisCache(serializer=Bad())


def test_repr_and_logs_never_show_the_password(caplog: pytest.LogCaptureFixture) -> None:
    cache = RedisCache("redis://:s3cret@127.0.0.1:1/0", failure_threshold=1)
    assert "s3cret" not in repr(cache)
    assert "***" in repr(cache)
    with caplog.at_level(logging.WARNING, logger="argo_perf"):
        assert cache.get("x") is None
    assert cache.backend == "memory"
    assert caplog.records
    assert all("s3cret" not in r.getMessage() for r in caplog.records)
    cache.close()


# -- with Redis -------------------------------------------------------------------------


def test_round_trip_through_redis_in_a_versioned_json_envelope(
    redis_url: str, redis_client: redis.Redis, clock: ManualClock
) -> None:
    cache = RedisCache(redis_url, **ROOMY, namespace="sig", version=3, clock=clock, maxsize=0)
    assert cache.redis_key("AAPL") == "sig:v3:AAPL"
    assert cache.set("AAPL", {"price": 231.5, "n": [1, 2]}, ttl=10.0) is True
    raw = redis_client.get("sig:v3:AAPL")
    assert raw is not None
    assert raw.startswith(_MAGIC)
    assert b'{"price":231.5,"n":[1,2]}' in raw
    assert 10_000 < redis_client.pttl("sig:v3:AAPL") <= 70_000  # ttl + max_stale
    assert cache.get("AAPL") == {"price": 231.5, "n": [1, 2]}
    clock.advance(4.0)
    meta = cache.get_with_meta("AAPL")
    assert meta == CachedValue({"price": 231.5, "n": [1, 2]}, pytest.approx(4.0), "redis", False)
    clock.advance(6.0)
    assert cache.get("AAPL") is None  # stale in Redis, but Redis answered: a miss
    assert cache.stats.redis_hits == 2
    assert cache.stats.misses == 1
    cache.close()


def test_schema_versions_share_a_redis_without_seeing_each_other(
    redis_url: str, clock: ManualClock
) -> None:
    v1 = RedisCache(redis_url, **ROOMY, version=1, clock=clock, maxsize=0)
    v2 = RedisCache(redis_url, **ROOMY, version=2, clock=clock, maxsize=0)
    v1.set("AAPL", {"px": 1})
    v2.set("AAPL", {"price": 1, "currency": "USD"})
    assert v1.get("AAPL") == {"px": 1}
    assert v2.get("AAPL") == {"price": 1, "currency": "USD"}
    assert v1.clear() == 1
    assert v2.get("AAPL") is not None


def test_values_set_by_another_process_are_read_from_redis(
    redis_url: str, clock: ManualClock
) -> None:
    writer = RedisCache(redis_url, **ROOMY, clock=clock)
    reader = RedisCache(redis_url, **ROOMY, clock=clock, local_ttl=1.0)
    writer.set("AAPL", 1.0, ttl=60)
    assert reader.get_with_meta("AAPL") == CachedValue(1.0, 0.0, "redis", False)
    assert reader.get_with_meta("AAPL") == CachedValue(1.0, 0.0, "memory", False)
    writer.set("AAPL", 2.0, ttl=60)
    assert reader.get("AAPL") == 1.0  # within local_ttl the in-process tier answers
    clock.advance(1.0)
    assert reader.get("AAPL") == 2.0
    writer.delete("AAPL")
    clock.advance(1.0)
    assert reader.get("AAPL") is None


def test_get_many_uses_memory_first_then_one_mget(
    redis_url: str, redis_client: redis.Redis, clock: ManualClock
) -> None:
    writer = RedisCache(redis_url, **ROOMY, clock=clock)
    reader = RedisCache(redis_url, **ROOMY, clock=clock)
    writer.set_many({"a": 1, "b": 2, "c": 3})
    reader.set("a", 1)
    before = redis_client.info("commandstats").get("cmdstat_mget", {}).get("calls", 0)
    assert reader.get_many(["a", "b", "c", "nope"]) == {"a": 1, "b": 2, "c": 3}
    after = redis_client.info("commandstats")["cmdstat_mget"]["calls"]
    assert after - before == 1
    assert reader.get_many(["a", "b", "c"]) == {"a": 1, "b": 2, "c": 3}
    assert redis_client.info("commandstats")["cmdstat_mget"]["calls"] == after
    stats = reader.stats
    assert (stats.memory_hits, stats.redis_hits, stats.misses) == (4, 2, 1)


def test_set_many_is_one_pipeline(redis_url: str, redis_client: redis.Redis) -> None:
    cache = RedisCache(redis_url, **ROOMY)
    assert cache.set_many({}) is True
    assert cache.set_many({f"k{i}": i for i in range(20)}, ttl=5.0) is True
    assert len(redis_client.keys("argo_perf:v1:k*")) == 20


def test_clear_uses_scan_and_unlink_in_batches(redis_url: str, redis_client: redis.Redis) -> None:
    redis_client.config_resetstat()
    cache = RedisCache(redis_url, **ROOMY, namespace="ns")
    cache.set_many({f"px:{i}": i for i in range(1200)})
    cache.set_many({"px*:odd": 1, "other": 2})
    redis_client.set("unrelated", b"x")
    assert cache.clear("px*") == 1  # glob characters in the prefix are literal
    assert cache.clear("px:") == 1200
    assert cache.get("other") == 2
    assert redis_client.get("unrelated") == b"x"
    stats = redis_client.info("commandstats")
    assert "cmdstat_keys" not in stats
    assert stats["cmdstat_unlink"]["calls"] >= 3


def test_existing_clients_are_used_and_not_closed(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    with RedisCache(client) as cache:
        cache.set("x", 1)
    assert client.ping()
    assert RedisCache(client).get("x") == 1
    client.close()


def test_a_client_that_decodes_responses_is_a_config_error(redis_url: str) -> None:
    # Every value would come back as str and be a decode failure: refuse it up front.
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    with pytest.raises(ConfigError) as info:
        RedisCache(client)
    assert info.value.parameter == "url_or_client"
    aclient = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    with pytest.raises(ConfigError, match="decode_responses"):
        AsyncRedisCache(aclient)
    client.close()


def test_custom_serializer_round_trips_and_mismatches_are_misses(redis_url: str) -> None:
    class Upper:
        name = "upper"

        def dumps(self, value: Any) -> bytes:
            return str(value).upper().encode()

        def loads(self, data: bytes) -> Any:
            return data.decode()

    assert isinstance(Upper(), Serializer)
    custom = RedisCache(redis_url, **ROOMY, serializer=Upper(), maxsize=0)
    plain = RedisCache(redis_url, **ROOMY, maxsize=0)
    custom.set("x", "abc")
    assert custom.get("x") == "ABC"
    assert plain.get("x") is None
    assert plain.stats.decode_failures == 1


def test_values_that_cannot_be_serialized_raise_type_error(redis_url: str) -> None:
    cache = RedisCache(redis_url, **ROOMY)
    with pytest.raises(TypeError):
        cache.set("x", object())
    assert cache.get("x") is None


def test_signed_json_and_pickle_round_trip(redis_url: str, redis_client: redis.Redis) -> None:
    signed = RedisCache(redis_url, **ROOMY, signing_key=KEY, maxsize=0)
    signed.set("j", [1, 2])
    assert signed.get("j") == [1, 2]
    unsigned = RedisCache(redis_url, **ROOMY, maxsize=0)
    assert unsigned.get("j") == [1, 2]  # JSON is safe to read without checking
    unsigned.set("u", 1)
    assert signed.get("u") is None
    assert signed.stats.signature_failures == 1

    pickled = RedisCache(redis_url, **ROOMY, serializer="pickle", signing_key=KEY, maxsize=0)
    assert pickled.set("t", (1, {2, 3}))
    assert pickled.get("t") == (1, {2, 3})
    # A signed value copied under another key does not verify there.
    redis_client.set("argo_perf:v1:copy", redis_client.get("argo_perf:v1:t") or b"")
    assert pickled.get("copy") is None
    other_key = RedisCache(
        redis_url, **ROOMY, serializer="pickle", signing_key=b"another-key-16-bytes"
    )
    assert other_key.get("t") is None
    assert other_key.stats.signature_failures == 1


class _Planted:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


def _envelope(name: bytes, payload: bytes, *, flags: int = 0, sig: bytes = b"") -> bytes:
    header = _HEAD.pack(_MAGIC, 1, flags, len(name)) + name
    return header + _TIMES.pack(time.time(), 60.0, 0.0) + sig + payload


def test_a_planted_pickle_never_executes(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    target = tmp_path / "pwned"
    evil = pickle.dumps(_Planted(target))
    rkey = "argo_perf:v1:AAPL"
    pickled = RedisCache(redis_url, **ROOMY, serializer="pickle", signing_key=KEY, maxsize=0)
    plain = RedisCache(redis_url, **ROOMY, maxsize=0)
    attempts = [
        evil,  # a bare pickle
        _envelope(b"pickle", evil),  # unsigned envelope
        _envelope(b"pickle", evil, flags=1, sig=b"\x00" * 32),  # forged signature
        _envelope(b"pickle", evil, flags=1, sig=b"short"),  # truncated signature
    ]
    for planted in attempts:
        redis_client.set(rkey, planted)
        assert pickled.get("AAPL", "default") == "default"
        assert plain.get("AAPL") is None
        assert pickled.get_many(["AAPL"]) == {}
    assert not target.exists()
    assert pickled.stats.signature_failures == 6
    assert pickled.stats.decode_failures == 2  # the bare pickle is not even an envelope
    assert plain.stats.decode_failures == 4


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"\x00\x01garbage",
        b"AP" + b"\xff" * 40,
        _envelope(b"json", b"{not json"),
        _envelope(b"json", b"1", flags=0)[:-1] + b"",
        b"AP\x02" + b"\x00" * 40,  # a future envelope version
        _HEAD.pack(_MAGIC, 1, 0, 4) + b"json" + _TIMES.pack(float("nan"), 1.0, 0.0) + b"1",
        _HEAD.pack(_MAGIC, 1, 0, 4) + b"json" + b"\x00" * 10,  # truncated times
        json.dumps({"d": 1}).encode(),
    ],
    # Stable ids: two envelopes carry the time they were made.
    ids=[
        "empty",
        "not-an-envelope",
        "bad-header",
        "bad-json",
        "truncated-body",
        "future-version",
        "nan-times",
        "truncated-times",
        "bare-json",
    ],
)
def test_garbage_bytes_are_a_counted_miss(
    redis_url: str, redis_client: redis.Redis, garbage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    cache = RedisCache(redis_url, **ROOMY, maxsize=0)
    redis_client.set("argo_perf:v1:x", garbage)
    with caplog.at_level(logging.WARNING, logger="argo_perf.cache"):
        value = cache.get("x", "default")
    if garbage == _envelope(b"json", b"1", flags=0)[:-1]:
        assert value == "default"  # empty payload
    assert value == "default"
    assert cache.stats.decode_failures == 1
    assert cache.stats.misses == 1
    assert any("argo_perf:v1:x" in r.getMessage() for r in caplog.records)


def test_a_value_of_another_redis_type_is_a_counted_miss(
    redis_url: str, redis_client: redis.Redis
) -> None:
    cache = RedisCache(redis_url, **ROOMY, maxsize=0)
    redis_client.rpush("argo_perf:v1:AAPL", b"1", b"2")
    redis_client.hset("argo_perf:v1:MSFT", "a", "b")
    assert cache.get("AAPL", "default") == "default"
    assert cache.get_with_meta("MSFT") is None
    assert cache.get_many(["AAPL", "MSFT"]) == {}
    assert cache.backend == "redis"  # Redis answered; it is not an outage
    stats = cache.stats
    assert stats.decode_failures == 4  # get_many finds them too
    assert stats.misses == 4
    assert cache.set("AAPL", 1.0) is True  # SET replaces the list
    assert cache.get("AAPL") == 1.0


# -- outages ------------------------------------------------------------------------------


def test_killed_redis_serves_the_in_process_tier_then_comes_back(
    fault_redis: RedisServer, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    cache = RedisCache(fault_redis.url, **ROOMY, clock=clock, default_ttl=10.0, max_stale=30.0)
    assert cache.set("AAPL", 231.5) is True
    fault_redis.kill()
    assert cache.get("AAPL") == 231.5  # fresh in the in-process tier: Redis not asked
    assert cache.set("MSFT", 410.0) is False  # refused: kept in memory only
    assert cache.get("MSFT") == 410.0
    clock.advance(15.0)  # both past their TTL, within max_stale
    with caplog.at_level(logging.INFO, logger="argo_perf"):
        for _ in range(10):
            assert cache.get("AAPL") == 231.5
        assert cache.get_with_meta("MSFT") == CachedValue(410.0, 15.0, "memory", True)
    stats = cache.stats
    assert stats.redis_errors == 3  # the set above and two reads: threshold is 3
    assert cache.backend == "memory"
    assert stats.short_circuited == 9
    assert stats.stale_served == 11
    assert stats.redis_set_failures == 1
    downs = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(downs) == 1

    fault_redis.restart()  # empty data
    assert cache.get("AAPL") == 231.5  # the probe is not due yet
    clock.advance(1.0)
    assert cache.get("AAPL") == 231.5  # this call hands the probe to a background thread
    join_probe(cache)
    assert cache.backend == "redis"
    assert cache.get("AAPL") is None  # Redis answered (empty): a stale value is not served
    assert cache.set("AAPL", 232.0) is True
    assert cache.get("AAPL") == 232.0
    clock.advance(100.0)
    assert cache.get("MSFT") is None  # past max_stale
    ups = [r for r in caplog.records if "reachable again" in r.getMessage()]
    assert len(ups) <= 1


def test_frozen_redis_costs_at_most_threshold_timeouts(
    fault_redis: RedisServer, clock: ManualClock
) -> None:
    cache = RedisCache(
        fault_redis.url,
        **FROZEN,
        clock=clock,
        default_ttl=10.0,
        local_ttl=1.0,
        failure_threshold=3,
    )
    cache.set("AAPL", 231.5)
    clock.advance(1.0)  # past local_ttl: every read would ask Redis
    fault_redis.pause()
    try:
        for _ in range(20):
            assert cache.get("AAPL") == 231.5
        stats = cache.stats
        assert stats.redis_errors == 3  # three calls paid the socket timeout
        assert stats.short_circuited == 17
        assert cache.get_many(["AAPL", "nope"]) == {"AAPL": 231.5}
        assert cache.set("AAPL", 1.0) is False
        assert cache.delete("x") is False
        with pytest.raises(BackendError):
            cache.clear()
        clock.advance(1.0)
        cache.get("AAPL")  # probe in the background: it times out too
        join_probe(cache)
        assert cache.backend == "memory"
        assert cache.stats.redis_errors == 3  # neither the clear nor the probe paid again
    finally:
        fault_redis.resume()
    clock.advance(1.0)
    cache.get("AAPL")
    join_probe(cache)
    assert cache.backend == "redis"
    assert cache.set("AAPL", 2.0) is True
    assert cache.get_many(["AAPL"]) == {"AAPL": 2.0}


def test_outage_during_writes_keeps_values_readable(
    fault_redis: RedisServer, clock: ManualClock
) -> None:
    cache = RedisCache(fault_redis.url, **ROOMY, clock=clock, failure_threshold=1, local_ttl=0.5)
    fault_redis.kill()
    assert cache.set_many({"a": 1, "b": 2}) is False
    assert cache.stats.redis_set_failures == 2
    assert cache.set_many({"c": 3}) is False  # skipped: Redis is down
    assert cache.set("d", 4) is False
    fault_redis.restart()
    clock.advance(1.0)
    cache.get("zzz")
    join_probe(cache)
    # Redis is back and empty: values it never received still come from memory.
    assert cache.get_many(["a", "b", "c", "d"]) == {"a": 1, "b": 2, "c": 3, "d": 4}
    assert cache.get_with_meta("a") == CachedValue(1, 1.0, "memory", False)


def test_maxmemory_noeviction_set_reports_failure_and_reads_keep_working(
    redis_factory: Callable[..., RedisServer], clock: ManualClock
) -> None:
    server = redis_factory(extra_args=["--maxmemory", "64mb", "--maxmemory-policy", "noeviction"])
    cache = RedisCache(server.url, **ROOMY, clock=clock, maxsize=0)
    assert cache.set("AAPL", 231.5) is True
    client = server.client()
    # Shrink the limit below what is in use: every write is now refused, reads are not.
    client.config_set("maxmemory", client.info("memory")["used_memory"] // 2)
    with pytest.raises(redis.ResponseError, match="maxmemory"):
        client.set("probe", b"x")
    assert cache.set("MSFT", 410.0) is False
    assert cache.set_many({"a": 1, "b": 2}) is False
    stats = cache.stats
    assert stats.redis_set_failures == 3
    assert cache.backend == "redis"  # Redis answered: full, not down
    assert cache.get("AAPL") == 231.5
    assert cache.get_many(["AAPL"]) == {"AAPL": 231.5}
    client.close()


async def test_async_cache_round_trip_and_outage(
    fault_redis: RedisServer, clock: ManualClock
) -> None:
    cache = AsyncRedisCache(
        fault_redis.url, **ROOMY, clock=clock, default_ttl=10.0, failure_threshold=2
    )
    assert await cache.set("AAPL", 231.5) is True
    assert await cache.set_many({"a": 1, "b": 2}) is True
    assert await cache.get_many(["AAPL", "a", "b", "c"]) == {"AAPL": 231.5, "a": 1, "b": 2}
    assert await cache.delete("b") is True
    other = AsyncRedisCache(fault_redis.url, **ROOMY, clock=clock, maxsize=0)
    assert await other.get_with_meta("AAPL") == CachedValue(231.5, 0.0, "redis", False)
    assert await other.get_many(["a", "b"]) == {"a": 1}
    assert await other.clear() == 2
    fault_redis.kill()
    clock.advance(12.0)
    for _ in range(5):
        assert await cache.get("AAPL") == 231.5  # stale, Redis refused
    assert cache.backend == "memory"
    assert await cache.get_with_meta("AAPL") == CachedValue(231.5, 12.0, "memory", True)
    assert await cache.set("x", 1) is False
    assert await cache.set_many({"y": 2}) is False
    assert await cache.delete("y") is False
    assert await cache.get_many(["x", "y", "AAPL"]) == {"x": 1, "AAPL": 231.5}
    assert await other.get("AAPL") is None
    assert await other.set_many({"z": 1}) is False
    assert await other.delete("z") is False
    with pytest.raises(BackendError):
        await other.clear()
    fault_redis.restart()
    clock.advance(1.0)
    await cache.get("zzz")
    await join_async_probe(cache)
    assert cache.backend == "redis"
    assert await cache.set("AAPL", 1.0) is True
    await cache.close()
    await other.close()


async def test_async_frozen_redis(fault_redis: RedisServer, clock: ManualClock) -> None:
    cache = AsyncRedisCache(fault_redis.url, **FROZEN, clock=clock, local_ttl=1.0)
    await cache.set("AAPL", 231.5)
    clock.advance(1.0)
    fault_redis.pause()
    try:
        for _ in range(10):
            assert await cache.get("AAPL") == 231.5
        assert cache.stats.redis_errors == 3
        clock.advance(1.0)
        await cache.get("AAPL")
        await join_async_probe(cache)
        assert cache.backend == "memory"
    finally:
        fault_redis.resume()
    clock.advance(1.0)
    await cache.get("AAPL")
    await join_async_probe(cache)
    assert cache.backend == "redis"
    await cache.close()


async def test_async_memory_only_and_bad_data(
    redis_url: str, redis_client: redis.Redis, clock: ManualClock
) -> None:
    mem = AsyncRedisCache(clock=clock)
    assert await mem.set("a", 1) is False
    assert await mem.set_many({"b": 2}) is False
    assert await mem.get_many(["a", "b", "c"]) == {"a": 1, "b": 2}
    assert await mem.delete("a") is False
    assert await mem.clear() == 1
    async with AsyncRedisCache(redis_url, **ROOMY, maxsize=0) as cache:
        redis_client.set("argo_perf:v1:g", b"garbage")
        redis_client.rpush("argo_perf:v1:l", b"1")
        assert await cache.get("g") is None
        assert await cache.get("l") is None
        assert cache.stats.decode_failures == 2
        assert "AsyncRedisCache" in repr(cache)


# -- loaders and single flight ------------------------------------------------------------


def test_get_or_set_loads_once_and_stores_in_both_tiers(redis_url: str, clock: ManualClock) -> None:
    cache = RedisCache(redis_url, **ROOMY, clock=clock)
    calls: list[int] = []

    def load() -> float:
        calls.append(1)
        return 231.5

    assert cache.get_or_set("AAPL", load, ttl=10) == 231.5
    assert cache.get_or_set("AAPL", load, ttl=10) == 231.5
    assert RedisCache(redis_url, **ROOMY, clock=clock).get("AAPL") == 231.5
    assert len(calls) == 1
    assert cache.stats.loader_calls == 1


def test_failing_loader_serves_stale_within_max_stale_else_raises(clock: ManualClock) -> None:
    cache = RedisCache(clock=clock, default_ttl=10.0, max_stale=5.0)
    cache.set("AAPL", 231.5)
    clock.advance(12.0)

    def broken() -> float:
        raise TimeoutError("vendor down")

    assert cache.get_or_set("AAPL", broken) == 231.5
    assert cache.stats.stale_served == 1
    clock.advance(5.0)
    with pytest.raises(TimeoutError):
        cache.get_or_set("AAPL", broken)
    disabled = RedisCache(clock=clock, default_ttl=10.0, max_stale=0)
    disabled.set("x", 1)
    clock.advance(10.0)
    with pytest.raises(TimeoutError):
        disabled.get_or_set("x", broken)


def test_concurrent_misses_run_the_loader_once(clock: ManualClock) -> None:
    cache = RedisCache(clock=clock)
    release = threading.Event()
    calls: list[int] = []

    def load() -> float:
        calls.append(1)
        release.wait(5.0)
        return 231.5

    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get_or_set("AAPL", load)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    wait_until(lambda: cache.stats.coalesced == 7)
    release.set()
    for t in threads:
        t.join(5.0)
    assert results == [231.5] * 8
    assert len(calls) == 1
    assert cache.stats.loads_in_flight == 0


def test_a_failing_first_caller_does_not_hang_the_others(clock: ManualClock) -> None:
    cache = RedisCache(clock=clock)
    release = threading.Event()

    def load() -> float:
        release.wait(5.0)
        raise ConnectionError("vendor down")

    errors: list[BaseException] = []

    def call() -> None:
        try:
            cache.get_or_set("AAPL", load)
        except ConnectionError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    wait_until(lambda: cache.stats.coalesced == 3)
    release.set()
    for t in threads:
        t.join(5.0)
    assert len(errors) == 4
    assert cache.stats.loader_calls == 1


class _Interrupted(BaseException):
    pass


def test_an_interrupted_first_caller_hands_the_load_to_a_waiter(clock: ManualClock) -> None:
    cache = RedisCache(clock=clock)
    release = threading.Event()
    calls: list[str] = []

    def first() -> float:
        calls.append("first")
        release.wait(5.0)
        raise _Interrupted

    def second() -> float:
        calls.append("second")
        return 2.0

    outcome: list[Any] = []

    def leader() -> None:
        try:
            cache.get_or_set("AAPL", first)
        except _Interrupted:
            outcome.append("interrupted")

    t1 = threading.Thread(target=leader)
    t1.start()
    wait_until(lambda: calls == ["first"])
    t2 = threading.Thread(target=lambda: outcome.append(cache.get_or_set("AAPL", second)))
    t2.start()
    wait_until(lambda: cache.stats.coalesced == 1)
    release.set()
    t1.join(5.0)
    t2.join(5.0)
    assert sorted(map(str, outcome)) == ["2.0", "interrupted"]
    assert calls == ["first", "second"]


def test_a_waiter_on_a_failing_load_gets_its_own_stale_value(clock: ManualClock) -> None:
    cache = RedisCache(clock=clock, default_ttl=1.0)
    cache.set("AAPL", 1.0)
    clock.advance(2.0)
    release = threading.Event()

    def load() -> float:
        release.wait(5.0)
        raise ValueError("bad payload")

    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get_or_set("AAPL", load)))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    wait_until(lambda: cache.stats.coalesced == 2)
    release.set()
    for t in threads:
        t.join(5.0)
    assert results == [1.0, 1.0, 1.0]
    assert cache.stats.stale_served == 3


def test_xfetch_refreshes_a_hot_key_before_it_expires(clock: ManualClock) -> None:
    cache = RedisCache(clock=clock, default_ttl=10.0, early_refresh=1.0, rng=random.Random(3))
    values = iter([1.0, 2.0, 3.0])

    def load() -> float:
        clock.advance(2.0)  # the vendor takes two seconds
        return next(values)

    assert cache.get_or_set("AAPL", load) == 1.0
    assert cache.get_or_set("AAPL", load) == 1.0  # far from expiry: no refresh
    clock.advance(9.99)
    assert cache.get_or_set("AAPL", load) == 2.0  # refreshed before expiry
    assert cache.stats.early_refreshes == 1

    def broken() -> float:
        clock.advance(0.5)
        raise OSError("vendor down")

    clock.advance(9.99)
    assert cache.get_or_set("AAPL", broken) == 2.0  # a failed early refresh keeps the value
    assert cache.stats.early_refreshes == 2


def test_xfetch_does_not_wait_for_a_refresh_already_running(clock: ManualClock) -> None:
    cache = RedisCache(clock=clock, default_ttl=10.0, early_refresh=1000.0)
    started = threading.Event()
    release = threading.Event()

    def first() -> float:
        clock.advance(1.0)  # the load took a second: XFetch's delta
        return 1.0

    cache.get_or_set("AAPL", first)

    def slow() -> float:
        started.set()
        release.wait(5.0)
        return 2.0

    t = threading.Thread(target=lambda: cache.get_or_set("AAPL", slow))
    t.start()
    started.wait(5.0)
    assert cache.get_or_set("AAPL", slow) == 1.0  # the refresh is running: serve current
    release.set()
    t.join(5.0)
    assert cache.get("AAPL") == 2.0


async def test_async_single_flight_and_cancellation(clock: ManualClock) -> None:
    cache = AsyncRedisCache(clock=clock)
    release = asyncio.Event()
    calls: list[int] = []

    async def load() -> float:
        calls.append(1)
        await release.wait()
        return 231.5

    first = asyncio.ensure_future(cache.get_or_set("AAPL", load))
    others = [asyncio.ensure_future(cache.get_or_set("AAPL", load)) for _ in range(5)]
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*others) == [231.5] * 5
    assert first.cancelled()
    assert calls == [1]
    assert cache.stats.coalesced == 5
    assert await cache.get("AAPL") == 231.5
    assert cache.stats.loads_in_flight == 0


async def test_async_failing_loader_reaches_every_waiter_or_serves_stale(
    clock: ManualClock,
) -> None:
    cache = AsyncRedisCache(clock=clock, default_ttl=1.0)
    release = asyncio.Event()

    async def load() -> float:
        await release.wait()
        raise ConnectionError("vendor down")

    tasks = [asyncio.ensure_future(cache.get_or_set("AAPL", load)) for _ in range(3)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    await cache.set("AAPL", 1.0)
    clock.advance(2.0)
    assert await cache.get_or_set("AAPL", load) == 1.0
    assert await cache.get_or_set("MSFT", lambda: 5.0) == 5.0  # a plain value is fine


async def test_async_xfetch(clock: ManualClock) -> None:
    cache = AsyncRedisCache(clock=clock, default_ttl=10.0, early_refresh=1.0)
    values = iter([1.0, 2.0])

    async def load() -> float:
        clock.advance(2.0)
        return next(values)

    assert await cache.get_or_set("AAPL", load) == 1.0
    clock.advance(9.99)
    assert await cache.get_or_set("AAPL", load) == 2.0
    clock.advance(9.99)

    async def broken() -> float:
        clock.advance(1.0)
        raise OSError("down")

    assert await cache.get_or_set("AAPL", broken) == 2.0
    assert cache.stats.early_refreshes == 2


# -- the decorator and the default cache -----------------------------------------------


def test_cached_decorates_sync_functions(redis_url: str, clock: ManualClock) -> None:
    cache = RedisCache(redis_url, **ROOMY, clock=clock)
    calls: list[str] = []

    @cached(cache, ttl=10.0)
    def price(symbol: str, *, venue: str = "xnys") -> float:
        """Price of a symbol."""
        calls.append(symbol)
        return 231.5

    @cached(cache, key=lambda symbol: f"news:{symbol}")
    def news(symbol: str) -> list[str]:
        return [symbol]

    assert price("AAPL") == price("AAPL") == 231.5
    assert price("AAPL", venue="x") == 231.5
    assert calls == ["AAPL", "AAPL"]
    assert price.__doc__ == "Price of a symbol."
    assert news("AAPL") == ["AAPL"]
    assert cache.get("news:AAPL") == ["AAPL"]


async def test_cached_decorates_async_functions(clock: ManualClock) -> None:
    cache = AsyncRedisCache(clock=clock)
    calls: list[str] = []

    @cached(cache, ttl=10.0, key=lambda symbol: symbol)
    async def price(symbol: str) -> float:
        calls.append(symbol)
        await asyncio.sleep(0)
        return 231.5

    results = await asyncio.gather(*(price("AAPL") for _ in range(5)))
    assert results == [231.5] * 5
    assert calls == ["AAPL"]


def test_cached_rejects_a_mismatched_cache() -> None:
    async def afn() -> int:
        return 1

    def fn() -> int:
        return 1

    with pytest.raises(ConfigError, match="AsyncRedisCache"):
        cached(RedisCache())(afn)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="RedisCache"):
        cached(AsyncRedisCache())(fn)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="cache"):
        cached(object())  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"ttl": -1.0}, "ttl"),
        ({"ttl": 0}, "ttl"),
        ({"ttl": "10"}, "ttl"),
        ({"key": "AAPL"}, "key"),
    ],
)
def test_cached_rejects_bad_ttl_and_key_when_decorating(
    kwargs: dict[str, Any], parameter: str
) -> None:
    with pytest.raises(ConfigError) as info:
        cached(RedisCache(), **kwargs)
    assert info.value.parameter == parameter


def test_get_redis_cache_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    _reset_default_cache()
    monkeypatch.delenv("ARGO_PERF_REDIS_URL", raising=False)
    try:
        cache = get_redis_cache()
        assert cache is get_redis_cache()
        assert cache.backend == "memory"
        _reset_default_cache()
        monkeypatch.setenv("ARGO_PERF_REDIS_URL", redis_url)
        shared = get_redis_cache()
        assert shared.set("x", 1) is True
        assert shared.backend == "redis"
    finally:
        _reset_default_cache()


def test_get_with_meta_with_a_loader_says_where_the_value_came_from(
    redis_url: str, clock: ManualClock
) -> None:
    cache = RedisCache(redis_url, **ROOMY, clock=clock, default_ttl=10.0)
    assert cache.get_with_meta("AAPL", lambda: 231.5) == CachedValue(231.5, 0.0, "loader", False)
    clock.advance(3.0)
    assert cache.get_with_meta("AAPL", lambda: 0.0) == CachedValue(231.5, 3.0, "memory", False)
    assert RedisCache(redis_url, **ROOMY, clock=clock).get_with_meta(
        "AAPL", lambda: 0.0
    ) == CachedValue(231.5, 3.0, "redis", False)
    clock.advance(10.0)

    def broken() -> float:
        raise OSError("vendor down")

    assert cache.get_with_meta("AAPL", broken) == CachedValue(231.5, 13.0, "memory", True)


async def test_async_get_with_meta_with_a_loader(clock: ManualClock) -> None:
    cache = AsyncRedisCache(clock=clock, default_ttl=10.0)

    async def load() -> float:
        return 231.5

    async def broken() -> float:
        raise OSError("vendor down")

    assert await cache.get_with_meta("AAPL", load) == CachedValue(231.5, 0.0, "loader", False)
    assert await cache.get_with_meta("AAPL", broken) == CachedValue(231.5, 0.0, "memory", False)
    clock.advance(11.0)
    assert await cache.get_with_meta("AAPL", broken) == CachedValue(231.5, 11.0, "memory", True)
    with pytest.raises(OSError, match="vendor down"):
        await cache.get_with_meta("MSFT", broken)


def test_redis_only_cache_counts_failures_and_falls_back_to_misses(
    fault_redis: RedisServer, clock: ManualClock
) -> None:
    cache = RedisCache(fault_redis.url, **ROOMY, clock=clock, maxsize=0, failure_threshold=2)
    assert cache.namespace == "argo_perf"
    assert cache.version == 1
    cache.set("AAPL", 1.0)
    fault_redis.kill()
    assert [cache.get("AAPL", "d") for _ in range(4)] == ["d"] * 4
    stats = cache.stats
    assert (stats.redis_errors, stats.short_circuited, stats.misses) == (2, 2, 4)
    assert cache.backend == "memory"


async def test_async_redis_only_cache_and_a_loop_change(
    fault_redis: RedisServer, clock: ManualClock
) -> None:
    cache = AsyncRedisCache(fault_redis.url, **ROOMY, clock=clock, maxsize=0, failure_threshold=1)
    await cache.set("AAPL", 1.0)
    assert await cache.get("AAPL") == 1.0
    fault_redis.kill()
    assert await cache.get("AAPL", "d") == "d"
    assert cache.backend == "memory"

    async def hang() -> float:
        await asyncio.Event().wait()
        raise AssertionError("never released")  # pragma: no cover

    def strand() -> tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]]:
        """A load started on another event loop, which then stops running."""

        async def start() -> asyncio.Future[Any]:
            task = asyncio.ensure_future(cache.get_or_set("MSFT", hang))
            for _ in range(5):
                await asyncio.sleep(0)
            return task

        loop = asyncio.new_event_loop()
        return loop, loop.run_until_complete(start())

    other_loop, stranded = await asyncio.to_thread(strand)
    assert cache.stats.loads_in_flight == 1
    assert await cache.get_or_set("MSFT", lambda: 2.0) == 2.0  # not waiting for the other loop

    def finish() -> None:
        stranded.cancel()
        other_loop.run_until_complete(asyncio.gather(stranded, return_exceptions=True))
        other_loop.close()

    await asyncio.to_thread(finish)
    await cache.close()


def test_every_operation_survives_a_refused_connection(
    fault_redis: RedisServer, clock: ManualClock
) -> None:
    cache = RedisCache(fault_redis.url, **ROOMY, clock=clock, failure_threshold=100)
    cache.set("a", 1)
    fault_redis.kill()
    assert cache.get_many(["a", "b"]) == {"a": 1}
    assert cache.set_many({"c": 3}) is False
    assert cache.delete("a") is False
    with pytest.raises(BackendError, match="redis at"):
        cache.clear()
    assert cache.get_or_set("d", lambda: 4) == 4
    assert cache.stats.redis_errors == 5  # get_or_set's GET failed: its SET did not try
    assert cache.backend == "redis"  # below the threshold: still trying


async def test_every_async_operation_survives_a_refused_connection(
    fault_redis: RedisServer, clock: ManualClock
) -> None:
    cache = AsyncRedisCache(fault_redis.url, **ROOMY, clock=clock, failure_threshold=100)
    await cache.set("a", 1)
    fault_redis.kill()
    assert await cache.get_many(["a", "b"]) == {"a": 1}
    assert await cache.set_many({"c": 3}) is False
    assert await cache.delete("a") is False
    with pytest.raises(BackendError, match="redis at"):
        await cache.clear()
    assert await cache.get_or_set("d", lambda: 4) == 4
    assert cache.stats.redis_errors == 5  # get_or_set's GET failed: its SET did not try
    await cache.close()


@settings(max_examples=60, deadline=None)
@given(
    ttl=st.floats(min_value=0.01, max_value=1000.0),
    max_stale=st.floats(min_value=0.0, max_value=1000.0),
    elapsed=st.floats(min_value=0.0, max_value=3000.0),
)
def test_freshness_and_staleness_windows(ttl: float, max_stale: float, elapsed: float) -> None:
    clock = ManualClock()
    cache = RedisCache(clock=clock, max_stale=max_stale)
    cache.set("k", 1, ttl=ttl)
    clock.advance(elapsed)
    fresh = elapsed < ttl
    assert (cache.get("k") == 1) is fresh

    def broken() -> int:
        raise OSError("down")

    if fresh or elapsed < ttl + max_stale:
        meta = cache.get_with_meta("k", broken)
        assert meta is not None
        assert meta.stale is not fresh
    else:
        with pytest.raises(OSError, match="down"):
            cache.get_or_set("k", broken)


def test_the_in_process_tier_is_safe_under_threads() -> None:
    cache = RedisCache(maxsize=16)
    errors: list[BaseException] = []

    def hammer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for i in range(3000):
                key = f"k{rng.randrange(40)}"
                op = rng.randrange(4)
                if op == 0:
                    cache.set(key, i)
                elif op == 1:
                    cache.get(key)
                elif op == 2:
                    cache.get_many([key, "k1", "k2"])
                else:
                    cache.get_or_set(key, lambda: 0)
        except BaseException as exc:  # pragma: no cover - only on failure
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert cache.stats.memory_entries <= 16


def test_unix_socket_urls_and_infinite_ttls(
    redis_factory: Callable[..., RedisServer], tmp_path: Path, clock: ManualClock
) -> None:
    sock = tmp_path / "redis.sock"
    redis_factory(extra_args=["--unixsocket", str(sock), "--unixsocketperm", "700"])
    cache = RedisCache(f"unix://{sock}", **ROOMY, clock=clock, max_stale=float("inf"))
    assert repr(cache).startswith("RedisCache(target='unix://")
    assert cache.set("forever", 1, ttl=float("inf")) is True
    assert cache.set("stale-forever", 2, ttl=1.0) is True
    raw = redis.Redis(unix_socket_path=str(sock))
    assert raw.pttl(cache.redis_key("forever")) == -1
    assert raw.pttl(cache.redis_key("stale-forever")) == -1
    raw.close()
    clock.advance(10**6)
    assert cache.get("forever") == 1
    cache.close()


def test_a_failing_loader_is_reported_once_per_minute_not_per_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    cache = RedisCache(clock=clock, max_stale=600.0)
    assert cache.get_or_set("AAPL", lambda: 1.0, ttl=1.0) == 1.0

    def failing() -> float:
        raise ConnectionError("vendor down")

    caplog.set_level(logging.WARNING, logger="argo_perf")
    for _ in range(5):
        clock.advance(2.0)
        assert cache.get_or_set("AAPL", failing, ttl=1.0) == 1.0
    assert len(caplog.records) == 1
    clock.advance(60.0)
    assert cache.get_or_set("AAPL", failing, ttl=1.0) == 1.0
    assert len(caplog.records) == 2
    assert "4 more stale values served" in caplog.records[1].getMessage()
    assert cache.stats.stale_served == 6


async def test_a_probe_cancelled_before_it_ran_does_not_strand_the_gate(
    fault_redis: RedisServer, clock: ManualClock
) -> None:
    client = redis.asyncio.Redis.from_url(
        fault_redis.url, socket_timeout=2.0, socket_connect_timeout=2.0
    )
    gate = BackendHealth("shared", clock=clock)
    cache = AsyncRedisCache(client, clock=clock, health=gate)
    fault_redis.kill()
    for _ in range(3):
        await cache.get("AAPL")
    assert cache.backend == "memory"
    clock.advance(1.0)
    await cache.get("AAPL")  # hands out the probe: a task that has not run yet
    await cache.close()  # cancels it before it ran; the client is not the cache's
    fault_redis.start()
    clock.advance(1.0)
    await cache.get("AAPL")  # a closed cache starts no probe ...
    await join_async_probe(cache)
    assert cache.backend == "memory"
    other = AsyncRedisCache(client, clock=clock, health=gate)
    await other.get("AAPL")  # ... one still open on the same gate gets the next one
    await join_async_probe(other)
    assert other.backend == "redis"
    await client.aclose()


def test_a_read_racing_a_write_never_replaces_the_newer_value(
    redis_url: str, clock: ManualClock
) -> None:
    reading = threading.Event()
    release = threading.Event()

    class Paused:
        """JSON whose decoding waits, to hold a reader between its GET and storing what it read."""

        name = "paused"
        pause = False

        def dumps(self, value: Any) -> bytes:
            return json.dumps(value).encode()

        def loads(self, data: bytes) -> Any:
            if self.pause:
                reading.set()
                assert release.wait(5.0)
            return json.loads(data)

    RedisCache(redis_url, **ROOMY, serializer=Paused(), clock=clock).set("AAPL", "old")
    serializer = Paused()
    cache = RedisCache(redis_url, **ROOMY, serializer=serializer, clock=clock)
    serializer.pause = True
    got: list[Any] = []
    reader = threading.Thread(target=lambda: got.append(cache.get("AAPL")))
    reader.start()
    assert reading.wait(5.0)  # the reader has GET "old" and is decoding it
    serializer.pause = False
    assert cache.set("AAPL", "new") is True
    release.set()
    reader.join(5.0)
    assert got == ["old"]  # what Redis said when it asked
    assert cache.get("AAPL") == "new"  # but it did not replace this process's newer write


def test_a_read_racing_a_delete_does_not_bring_the_value_back(
    redis_url: str, clock: ManualClock
) -> None:
    reading = threading.Event()
    release = threading.Event()

    class Paused:
        name = "paused"
        pause = False

        def dumps(self, value: Any) -> bytes:
            return json.dumps(value).encode()

        def loads(self, data: bytes) -> Any:
            if self.pause:
                reading.set()
                assert release.wait(5.0)
            return json.loads(data)

    serializer = Paused()
    cache = RedisCache(redis_url, **ROOMY, serializer=serializer, clock=clock, local_ttl=1.0)
    cache.set("AAPL", 231.5)
    clock.advance(1.0)  # the in-process entry asks Redis again
    serializer.pause = True
    reader = threading.Thread(target=cache.get, args=("AAPL",))
    reader.start()
    assert reading.wait(5.0)  # the reader has GET the value and is decoding it
    serializer.pause = False
    assert cache.delete("AAPL") is True
    release.set()
    reader.join(5.0)
    assert cache.get("AAPL") is None


def test_set_many_with_an_unserializable_value_stores_nothing(redis_url: str) -> None:
    cache = RedisCache(redis_url, **ROOMY)
    with pytest.raises(TypeError):
        cache.set_many({"a": 1, "b": object()})
    assert cache.get("a") is None
    assert cache.stats.sets == 0


async def test_async_set_many_with_an_unserializable_value_stores_nothing(redis_url: str) -> None:
    cache = AsyncRedisCache(redis_url, **ROOMY)
    with pytest.raises(TypeError):
        await cache.set_many({"a": 1, "b": object()})
    assert await cache.get("a") is None
    assert cache.stats.sets == 0
    await cache.close()


def test_a_write_that_missed_redis_is_not_replaced_by_the_older_value_there(
    fault_redis: RedisServer, clock: ManualClock
) -> None:
    cache = RedisCache(fault_redis.url, **ROOMY, clock=clock, local_ttl=1.0, failure_threshold=1)
    assert cache.set("AAPL", "old") is True
    with raw_client(fault_redis) as client:
        old = client.get(cache.redis_key("AAPL"))
    fault_redis.kill()
    clock.advance(1.0)
    assert cache.set("AAPL", "new") is False  # kept in the in-process tier only
    fault_redis.start()
    with raw_client(fault_redis) as client:
        client.set(cache.redis_key("AAPL"), old)  # Redis still holds the older value
    clock.advance(1.0)
    assert cache.get("AAPL") == "new"  # hands out the probe
    join_probe(cache)
    assert cache.backend == "redis"
    assert cache.get("AAPL") == "new"  # asked Redis (local_ttl passed): its value is older
    assert cache.get_many(["AAPL"]) == {"AAPL": "new"}


def test_a_probe_thread_that_cannot_start_neither_raises_nor_strands_the_gate(
    fault_redis: RedisServer, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = RedisCache(fault_redis.url, **ROOMY, clock=clock, failure_threshold=1)
    fault_redis.kill()
    assert cache.get("AAPL") is None
    assert cache.backend == "memory"
    fault_redis.start()
    clock.advance(1.0)
    with monkeypatch.context() as patch:

        def refuse(self: threading.Thread) -> None:
            raise RuntimeError("can't create new thread at interpreter shutdown")

        patch.setattr(threading.Thread, "start", refuse)
        assert cache.get("AAPL") is None  # the probe could not start: skip Redis, no error
    clock.advance(1.0)
    assert cache.get("AAPL") is None  # the next probe is handed out again
    join_probe(cache)
    assert cache.backend == "redis"


# -- the Redis link: a shared gate, per-loop clients, public gate stats ------------------


def test_caches_sharing_a_gate_skip_redis_together(
    fault_redis: RedisServer, clock: ManualClock
) -> None:
    gate = BackendHealth("shared", failure_threshold=1, clock=clock)
    first = RedisCache(fault_redis.url, **ROOMY, clock=clock, health=gate)
    second = RedisCache(fault_redis.url, **ROOMY, clock=clock, health=gate, namespace="other")
    fault_redis.kill()
    assert first.get("AAPL") is None  # one outage takes the shared gate down ...
    assert second.backend == "memory"
    assert second.get("AAPL") is None  # ... and the other cache skips Redis at once
    assert second.stats.redis_errors == 0
    assert second.stats.short_circuited == 1
    fault_redis.start()
    clock.advance(1.0)
    second.get("AAPL")  # hands out the probe: a background PING for both
    join_probe(second)
    assert first.backend == "redis"
    assert first.stats.backend_transitions == 2  # down, then up again


def test_backend_transitions_count_the_gate_changes(
    fault_redis: RedisServer, clock: ManualClock
) -> None:
    assert RedisCache(clock=clock).stats.backend_transitions == 0  # memory-only
    cache = RedisCache(fault_redis.url, **ROOMY, clock=clock, failure_threshold=1)
    assert cache.set("AAPL", 1.0) is True
    assert cache.stats.backend_transitions == 0
    fault_redis.kill()
    assert cache.set("AAPL", 2.0) is False
    assert cache.stats.backend_transitions == 1
    fault_redis.start()
    clock.advance(1.0)
    assert cache.get("MSFT") is None
    join_probe(cache)
    assert cache.stats.backend_transitions == 2


def test_an_async_cache_from_a_url_works_on_each_event_loop(redis_server: RedisServer) -> None:
    cache = AsyncRedisCache(redis_server.url, **ROOMY, maxsize=0)  # every read asks Redis

    async def write() -> bool:
        return await cache.set("loops:AAPL", 231.5)

    async def read() -> Any:
        return await cache.get("loops:AAPL")

    async def finish() -> None:
        await cache.delete("loops:AAPL")
        await cache.close()

    assert asyncio.run(write()) is True
    assert asyncio.run(read()) == 231.5  # a new loop: its own client, not the closed loop's
    asyncio.run(finish())
    assert cache.stats.redis_errors == 0
    assert cache.backend == "redis"


async def test_an_async_probe_is_a_task_on_the_callers_loop(
    fault_redis: RedisServer, clock: ManualClock
) -> None:
    cache = AsyncRedisCache(fault_redis.url, **ROOMY, clock=clock, failure_threshold=1)
    fault_redis.kill()
    assert await cache.get("AAPL") is None
    fault_redis.start()
    clock.advance(1.0)
    assert await cache.get("AAPL") is None  # skipped: the probe runs in a task meanwhile
    assert not any(t.name == PROBE_THREAD_NAME for t in threading.enumerate())
    await join_async_probe(cache)
    assert cache.backend == "redis"
    assert cache.stats.redis_errors == 1  # the probe is not a caller's request
    await cache.close()
