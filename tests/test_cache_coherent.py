"""Coherent mode: invalidations keep the in-process tier in step with Redis.

Real redis-server processes; a second process for the two-process rule; the
TCP proxy, SIGSTOP and kill for a lost channel. Waiting for the tracking
thread's effect is bounded polling, never a timing assertion.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from argo_perf import AsyncRedisCache, ConfigError, RedisCache
from argo_perf._redis import TRACKER_THREAD_NAME
from argo_perf.cache import _operations as ops
from argo_perf.clock import ManualClock
from argo_perf.testing import RedisServer, TcpProxy

ROOMY: dict[str, Any] = {"socket_timeout": 2.0, "connect_timeout": 2.0}
# Short heartbeats and probes so a lost channel is noticed and healed quickly.
QUICK: dict[str, Any] = {"heartbeat": 0.1, "probe_interval": 0.1}


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for the tracking thread's effect (bounded; not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.001)


def coherent(url: str, **kwargs: Any) -> RedisCache:
    cache = RedisCache(url, namespace="co", coherent=True, **{**ROOMY, **kwargs})
    wait_until(lambda: cache.stats.coherent)
    return cache


@pytest.fixture
def pair(redis_url: str) -> Iterator[tuple[RedisCache, RedisCache]]:
    """Two coherent caches on one server, as two processes would hold them."""
    a, b = coherent(redis_url), coherent(redis_url)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def dropped(cache: RedisCache, count: int) -> Callable[[], bool]:
    return lambda: cache.stats.invalidated_entries >= count


def written(cache: RedisCache, write: Callable[[], object], keys: int) -> None:
    """Run ``write`` and wait until ``cache`` has heard its ``keys`` invalidations."""
    before = cache.stats.invalidations
    write()
    wait_until(lambda: cache.stats.invalidations >= before + keys)


# -- invalidations -------------------------------------------------------------------


def test_a_write_by_another_cache_drops_the_local_copy(pair: tuple[RedisCache, RedisCache]) -> None:
    a, b = pair
    written(b, lambda: a.set("AAPL", 1.0), 1)
    assert b.get("AAPL") == 1.0
    assert b.get_with_meta("AAPL").source == "memory"  # type: ignore[union-attr]
    base = b.stats.invalidated_entries
    assert a.set("AAPL", 2.0) is True
    wait_until(dropped(b, base + 1))
    meta = b.get_with_meta("AAPL")
    assert meta is not None
    assert (meta.value, meta.source, meta.stale) == (2.0, "redis", False)
    assert b.get_with_meta("AAPL").source == "memory"  # type: ignore[union-attr]


def test_deletes_expiry_and_raw_writes_under_the_prefix_invalidate(
    pair: tuple[RedisCache, RedisCache], redis_client: redis.Redis
) -> None:
    a, b = pair
    written(b, lambda: a.set_many({"A": 1, "B": 2, "C": 3}), 3)
    assert b.get_many(["A", "B", "C"]) == {"A": 1, "B": 2, "C": 3}
    before = b.stats.invalidations
    a.delete("A")
    redis_client.unlink(b.redis_key("B"))
    redis_client.pexpire(b.redis_key("C"), 1)  # a change of TTL is a write too
    wait_until(lambda: not redis_client.exists(b.redis_key("C")))  # expired: one more
    wait_until(lambda: b.stats.invalidations >= before + 4)
    assert b.get_many(["A", "B", "C"]) == {}


def test_keys_never_read_are_reported_and_other_prefixes_are_not(
    pair: tuple[RedisCache, RedisCache], redis_client: redis.Redis
) -> None:
    _, b = pair
    before = b.stats.invalidations
    redis_client.set("elsewhere:x", b"1")
    redis_client.set(b.redis_key("never-read"), b"1")
    wait_until(lambda: b.stats.invalidations == before + 1)
    assert b.stats.invalidated_entries == 0


def test_a_flush_drops_every_copy(
    pair: tuple[RedisCache, RedisCache], redis_client: redis.Redis
) -> None:
    a, b = pair
    written(b, lambda: a.set_many({"A": 1, "B": 2}), 2)
    assert b.get_many(["A", "B"]) == {"A": 1, "B": 2}
    redis_client.flushdb()
    wait_until(lambda: b.stats.memory_entries == 0)
    assert b.get("A") is None


def test_own_writes_come_back_as_invalidations_and_are_read_again(
    pair: tuple[RedisCache, RedisCache],
) -> None:
    a, _ = pair
    a.set("K", "v")
    wait_until(dropped(a, 1))
    assert a.get_with_meta("K").source == "redis"  # type: ignore[union-attr]
    assert a.get_with_meta("K").source == "memory"  # type: ignore[union-attr]


def test_a_read_in_flight_when_its_key_is_invalidated_keeps_nothing(
    redis_url: str, redis_client: redis.Redis, clock: ManualClock
) -> None:
    """The race Redis documents: a GET answered before a write, applied after its invalidation."""
    b = coherent(redis_url, local_ttl=1.0, clock=clock)
    core = b._core
    for local in (False, True):
        written(b, lambda: b.set("K", "old"), 1)  # its own invalidation dropped the copy
        if local:  # with an in-process entry, due for a check, that the invalidation drops
            assert b.get("K") == "old"
            clock.advance(2.0)
        steps = ops.get(core, "K", None)
        request = next(steps)
        assert request[0] == ops.GET
        rkey = request[1]
        raw = redis_client.get(rkey)  # what Redis answered before the write
        written(b, lambda rkey=rkey: redis_client.set(rkey, b"garbage"), 1)  # the write, heard
        assert core.recall("K") is None
        with pytest.raises(StopIteration) as done:
            steps.send(raw)
        assert done.value.value == "old"  # that read returns what it read ...
        assert core.recall("K") is None  # ... but does not keep it
    b.close()


def test_async_cache_is_coherent_too(redis_url: str) -> None:
    writer = RedisCache(redis_url, namespace="co", **ROOMY)

    async def main() -> tuple[Any, Any, bool]:
        cache = AsyncRedisCache(redis_url, namespace="co", coherent=True, **ROOMY)
        await until(lambda: cache.stats.coherent)
        writer.set("ETH-USD", 3400.0)
        await until(lambda: cache.stats.invalidations == 1)
        first = await cache.get("ETH-USD")
        writer.set("ETH-USD", 3500.0)
        await until(lambda: cache.stats.invalidated_entries == 1)
        second = await cache.get("ETH-USD")
        await cache.close()
        return first, second, any(t.name == TRACKER_THREAD_NAME for t in _threads_of(cache))

    assert asyncio.run(main()) == (3400.0, 3500.0, False)
    writer.close()


async def until(condition: Callable[[], bool]) -> None:
    """`wait_until` for a coroutine: the tracking thread runs while the loop sleeps."""
    deadline = time.monotonic() + 10.0
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.001)


def _threads_of(cache: RedisCache | AsyncRedisCache) -> list[threading.Thread]:
    coherence = cache._coherence
    assert coherence is not None
    thread = coherence._tracker._thread
    return [thread] if thread.is_alive() else []


def test_an_async_client_passed_in_is_tracked_with_its_own_address(redis_url: str) -> None:
    import redis.asyncio

    async def main() -> float:
        client = redis.asyncio.Redis.from_url(redis_url, socket_timeout=2.0)
        cache = AsyncRedisCache(client, namespace="co", coherent=True)
        await until(lambda: cache.stats.coherent)
        await client.set(cache.redis_key("X"), b"garbage")
        await until(lambda: cache.stats.invalidations >= 1)
        await cache.close()
        await client.aclose()
        return cache.stats.invalidations

    assert asyncio.run(main()) >= 1


# -- the two-process rule ------------------------------------------------------------------

PEER = """
import json, sys, time
from argo_perf import RedisCache
cache = RedisCache(sys.argv[1], namespace="peer", coherent=True, socket_timeout=2.0)
while not cache.stats.coherent:
    time.sleep(0.001)
print("ready", flush=True)
for line in sys.stdin:
    key, seen = json.loads(line)
    deadline = time.monotonic() + 10.0
    while cache.stats.invalidations < seen and time.monotonic() < deadline:
        time.sleep(0.0001)
    meta = cache.get_with_meta(key)
    print(json.dumps([meta.value, meta.stale, meta.source]), flush=True)
"""


def test_another_process_reads_the_new_value_once_its_invalidation_arrived(
    redis_url: str,
) -> None:
    writer = RedisCache(redis_url, namespace="peer", **ROOMY)
    peer = subprocess.Popen(
        [sys.executable, "-c", PEER, redis_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert peer.stdin is not None
    assert peer.stdout is not None
    try:
        assert peer.stdout.readline().strip() == "ready"
        answers = []
        for trial in range(300):
            assert writer.set("AAPL", trial) is True
            peer.stdin.write(json.dumps(["AAPL", trial + 1]) + "\n")
            peer.stdin.flush()
            answers.append(json.loads(peer.stdout.readline()))
        # Each read came after its invalidation: the new value, fresh, never an older one.
        assert answers == [[trial, False, "redis"] for trial in range(300)]
    finally:
        peer.stdin.close()
        peer.wait(timeout=10)
        writer.close()


# -- a lost channel --------------------------------------------------------------------------


def test_killed_server_old_copies_are_only_stale_and_coherence_returns(
    fault_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    cache = coherent(fault_redis.url, **QUICK)
    written(cache, lambda: cache.set("AAPL", 1.0), 1)
    assert cache.get("AAPL") == 1.0
    with caplog.at_level(logging.INFO, logger="argo_perf.cache"):
        fault_redis.kill()
        wait_until(lambda: not cache.stats.coherent)
        for _ in range(5):
            meta = cache.get_with_meta("AAPL")
            assert meta is not None
            assert (meta.value, meta.stale, meta.source) == (1.0, True, "memory")
            assert cache.get("AAPL") == 1.0  # still served (stale) while Redis is down
        fault_redis.restart()

        # Back on both: the channel, and the gate (whose probe a call starts).
        def back() -> bool:
            cache.get("MSFT")
            return cache.stats.coherent and cache.backend == "redis"

        wait_until(back)
    with fault_redis.client() as other:
        other.set(cache.redis_key("AAPL"), b"not an envelope")  # what Redis holds now wins
    assert cache.get("AAPL", "gone") == "gone"
    stats = cache.stats
    assert stats.channel_reconnects == 1
    lines = [r.getMessage() for r in caplog.records if "invalidation channel" in r.getMessage()]
    assert len([m for m in lines if "lost" in m]) == 1
    assert len([m for m in lines if "is back" in m]) == 1
    cache.close()


def test_frozen_server_copies_turn_stale_and_are_revalidated_after(
    fault_redis: RedisServer,
) -> None:
    cache = coherent(fault_redis.url, socket_timeout=0.2, connect_timeout=2.0, **QUICK)
    cache.set("AAPL", 1.0)
    wait_until(dropped(cache, 1))
    assert cache.get("AAPL") == 1.0
    fault_redis.pause()
    try:
        wait_until(lambda: not cache.stats.coherent)
        meta = cache.get_with_meta("AAPL")
        assert meta is not None
        assert (meta.value, meta.stale) == (1.0, True)
    finally:
        fault_redis.resume()
    wait_until(lambda: cache.stats.coherent)
    with fault_redis.client() as other:
        other.set(cache.redis_key("AAPL"), b"not an envelope")
    assert cache.get("AAPL", "gone") == "gone"
    assert cache.stats.channel_reconnects >= 1
    cache.close()


def test_cut_channel_never_serves_an_old_copy_as_fresh(fault_redis: RedisServer) -> None:
    with TcpProxy(fault_redis.host, fault_redis.port) as proxy:
        writer = RedisCache(fault_redis.url, namespace="co", **ROOMY)
        cache = coherent(proxy.url, socket_timeout=0.2, connect_timeout=0.5, **QUICK)
        written(cache, lambda: writer.set("AAPL", 1.0), 1)
        assert cache.get("AAPL") == 1.0
        proxy.drop()  # new connections through the proxy get no answer ...
        proxy.cut()  # ... and the open ones, the channel's included, are closed
        wait_until(lambda: not cache.stats.coherent)
        writer.set("AAPL", 2.0)  # an invalidation the cache cannot hear
        for _ in range(5):
            meta = cache.get_with_meta("AAPL")
            assert meta is not None
            assert meta.value == 1.0
            assert meta.stale
        proxy.heal()

        def healed() -> bool:  # each read may start the gate's probe
            meta = cache.get_with_meta("AAPL")
            assert meta is not None
            assert meta.value == 2.0 or meta.stale  # the old copy never served as fresh
            return meta.value == 2.0 and not meta.stale

        wait_until(healed)
        wait_until(lambda: cache.stats.coherent)
        assert cache.stats.channel_reconnects == 1
        cache.close()
        writer.close()


def test_channel_cut_alone_reads_redis_until_it_is_back(fault_redis: RedisServer) -> None:
    with TcpProxy(fault_redis.host, fault_redis.port) as proxy:
        writer = RedisCache(fault_redis.url, namespace="co", **ROOMY)
        cache = coherent(proxy.url, **{**ROOMY, **QUICK})
        written(cache, lambda: writer.set("AAPL", 1.0), 1)
        assert cache.get("AAPL") == 1.0
        proxy.cut()
        wait_until(lambda: cache.stats.channel_reconnects == 1 and cache.stats.coherent)
        writer.set("AAPL", 2.0)
        assert cache.get("AAPL") == 2.0  # the copy from before the cut was not trusted
        cache.close()
        writer.close()


def test_redis_unreachable_makes_old_copies_stale_before_the_channel_notices(
    fault_redis: RedisServer,
) -> None:
    # A heartbeat too long to notice anything during the test: the gate tells first.
    cache = coherent(fault_redis.url, socket_timeout=0.2, heartbeat=60.0, failure_threshold=1)
    cache.set("AAPL", 1.0)
    wait_until(dropped(cache, 1))
    assert cache.get("AAPL") == 1.0
    fault_redis.pause()
    try:
        assert cache.get("MSFT") is None  # times out: the gate goes down
        assert cache.backend == "memory"
        meta = cache.get_with_meta("AAPL")
        assert meta is not None
        assert (meta.value, meta.stale) == (1.0, True)
        # A value loaded during the outage is this process's newest: fresh for its TTL.
        assert cache.get_or_set("AAPL", lambda: 1.5) == 1.5
        meta = cache.get_with_meta("AAPL")
        assert meta is not None
        assert (meta.value, meta.stale) == (1.5, False)
    finally:
        fault_redis.resume()
    cache.close()


def test_until_the_channel_is_up_every_read_asks_redis(fault_redis: RedisServer) -> None:
    with TcpProxy(fault_redis.host, fault_redis.port) as proxy:
        writer = RedisCache(fault_redis.url, namespace="co", **ROOMY)
        writer.set("AAPL", 1.0)
        proxy.drop()
        cache = RedisCache(proxy.url, namespace="co", coherent=True, **ROOMY, **QUICK)
        proxy.heal()
        # Whether or not the channel is up yet, the copy is never trusted beyond Redis.
        assert cache.get("AAPL") == 1.0
        writer.set("AAPL", 2.0)
        wait_until(lambda: cache.get("AAPL") == 2.0)
        cache.close()
        writer.close()


# -- ACL ------------------------------------------------------------------------------------


def test_an_acl_user_with_the_documented_rights_is_coherent(
    redis_url: str, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    rights = ["~co:*", "+@read", "+@write", "+@keyspace", "+ping", "+client|id"]
    rights += ["+client|tracking", "+subscribe"]
    redis_client.acl_setuser("app", enabled=True, passwords=["+pw"], reset_channels=True)
    redis_client.execute_command("ACL", "SETUSER", "app", *rights)
    url = redis_url.replace("redis://", "redis://app:pw@")
    with caplog.at_level(logging.WARNING, logger="argo_perf.cache"):
        refused = RedisCache(url, namespace="co", coherent=True, **ROOMY, **QUICK)
        wait_until(lambda: any("could not be opened" in r.getMessage() for r in caplog.records))
        assert refused.set("K", 1) is True
        assert [refused.get("K") for _ in range(3)] == [1, 1, 1]
        assert refused.stats.memory_hits == 0
        assert not refused.stats.coherent
        time.sleep(0.3)  # a few retries: still one line
        assert len([r for r in caplog.records if "could not be opened" in r.getMessage()]) == 1
        assert all("pw@" not in r.getMessage() for r in caplog.records)
        refused.close()
    redis_client.execute_command("ACL", "SETUSER", "app", "&__redis__:invalidate")
    cache = coherent(url)
    writer = RedisCache(url, namespace="co", **ROOMY)
    writer.set("K", 1)
    wait_until(lambda: cache.stats.invalidations >= 1)
    cache.close()
    writer.close()
    redis_client.acl_deluser("app")


# -- configuration and life cycle ----------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"coherent": True}, "coherent"),  # memory-only: nothing to be coherent with
        ({"coherent": "yes"}, "coherent"),
        ({"heartbeat": 0}, "heartbeat"),
    ],
)
def test_bad_coherent_options_name_the_parameter(kwargs: dict[str, Any], parameter: str) -> None:
    with pytest.raises(ConfigError, match=parameter):
        RedisCache(**kwargs)


def test_unsupported_connection_kinds_are_refused(redis_server: RedisServer) -> None:
    class Custom(redis.Connection):
        pass

    pool = redis.ConnectionPool(connection_class=Custom, host="127.0.0.1", port=redis_server.port)
    with pytest.raises(ConfigError, match="coherent"):
        RedisCache(redis.Redis(connection_pool=pool), coherent=True)


def test_no_in_process_tier_needs_no_channel(redis_url: str) -> None:
    cache = RedisCache(redis_url, coherent=True, maxsize=0, **ROOMY)
    assert cache._coherence is None
    assert not cache.stats.coherent
    cache.close()


def test_close_and_garbage_collection_end_the_tracking_thread(redis_url: str) -> None:
    cache = coherent(redis_url)
    threads = _threads_of(cache)
    assert threads
    cache.close()
    assert not threads[0].is_alive()
    cache = coherent(redis_url, heartbeat=0.05)
    thread = _threads_of(cache)[0]
    del cache
    gc.collect()
    thread.join(5.0)
    assert not thread.is_alive()


def test_coherent_mode_off_keeps_copies_until_their_ttl(redis_url: str) -> None:
    a = RedisCache(redis_url, namespace="co", **ROOMY)
    b = RedisCache(redis_url, namespace="co", **ROOMY)
    a.set("K", 1)
    assert b.get("K") == 1
    a.set("K", 2)
    assert b.get("K") == 1  # the documented behaviour without coherent mode
    assert b.stats.invalidations == 0
    assert not b.stats.coherent
