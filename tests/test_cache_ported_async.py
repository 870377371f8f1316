"""aiocache's and cashews' test suites, ported onto our AsyncRedisCache and its Redis tier.

Each test states one behaviour that aiocache's tests (aio-libs/aiocache:
tests/acceptance/test_base.py, test_decorators.py, test_serializers.py,
test_plugins.py, tests/ut/test_base.py, tests/ut/test_decorators.py) or
cashews' tests (Krukov/cashews: tests/test_backend_commands.py, test_cache.py,
test_cache_exception.py, test_lock_decorator.py, test_wrapper.py,
test_redis_down.py, test_pickle_serializer.py, test_client_side_cache.py,
test_bugs.py) check, in our API; the comment above it names the peer test.
tests/test_cache_ported.py already ports cachetools' in-process semantics (LRU
order, eviction, in-process TTLs, default keys); nothing here repeats it.

Where our documented behaviour differs on purpose, the test asserts ours and
says so ("Differs on purpose"). Every Redis is a real redis-server (the
fixtures of conftest.py); freshness follows an injected `ManualClock`, and
expiry on the Redis tier is checked with PTTL, never by sleeping.

The adapter: `Peer` is one process's AsyncRedisCache seen with the peers'
vocabulary (``multi_get`` as a list with None for missing keys, ``multi_set``
from pairs, ``exists``) plus a raw client to look at what Redis holds (``pttl``,
``in_redis``). ``processes()`` makes one per simulated process: each has its
own in-process tier, all share the session's Redis and one clock.
``get_or_load`` is ``get_or_set`` with an ``async def`` factory, typed for mypy.

Three tests hold defects found here and fixed: a namedtuple stored with the
default JSON serializer came back from Redis as a plain tuple (subclasses of
JSON types are now refused), and mypy --strict rejected two documented asyncio
uses (``get_or_set`` with an ``async def`` factory; ``asyncio.run`` /
``create_task`` of a `cached` coroutine).

Not ported, having no meaning here:
- add / set(exist=...) / increment / incr_bits / slice_incr / expire / get_expire
  (aiocache test_add_*, test_increment_*, test_expire_*; cashews test_set_exist,
  test_incr*, test_*bits*, test_slice_incr): no such operations.
- raw commands, get_raw / set_raw, scan, get_match, get_size, get_keys_count, ping
  (test_raw*, test_scan, test_get_match, ...): not our API (Redis is read here
  with its own client instead).
- single connections and connection pools (test_single_connection, TestConn,
  acquire_conn / release_conn): redis-py's pool is not exposed.
- the API/plugin machinery (TestAPI: register, aiocache_enabled, timeout
  decorators, plugins hooks; TimingPlugin): we have `stats`, ported through
  the hit-miss-ratio plugin's test.
- per-call ``timeout=`` (test_timeout_*): our timeouts are the client's
  ``socket_timeout``; what a frozen Redis does is ported instead.
- per-call ``namespace=`` and custom ``key_builder`` of the cache
  (test_build_key, test_alt_build_key*): a cache has one namespace and version.
- NullSerializer / StringSerializer / dumps_fn / loads_fn / marshmallow schemas
  (TestNullSerializer's add, TestStringSerializer, TestAltSerializers'
  functions): our serializers are "json", "pickle" or a `Serializer` object.
- ``exists`` (test_exists_*): not documented; a stored None is told from a
  missing key with a sentinel default instead.
- the ``multi_cached`` decorator (TestMultiCachedDecorator): `cached` caches
  one key per call; get_many / set_many are ported.
- cache_read= / cache_write= / aiocache_wait_for_write= / noself / skip_cache_func
  / condition= / time_condition= / upper= / protected= (decorator switches):
  `cached` has none of them.
- locks (RedLock, OptimisticLock, cashews locked / set_lock / is_locked /
  unlock, check_interval): no lock API; the dogpile protection they serve is
  single flight, ported.
- lease expiry of cached_stampede (test_locking_dogpile_lease_expiration):
  our single flight has no lease; a loader runs as long as it takes.
- cashews' hit / dynamic / failover-with-exceptions / circuit_breaker /
  rate_limit decorators, tags, invalidate decorators, bloom filters,
  transactions, middlewares, disable control, context_cache_detect, key
  templates and the ttl_to_seconds parser ("2h"): not features of our cache.
- a ttl computed from the result (test_cache_simple_ttl_with_result): our
  callable ttl receives the function's arguments only.
- a coroutine object passed as the default of get_or_set
  (test_get_or_set_coroutine): our factory is a callable.
- pickled class schema change (test_data_change): bump ``version`` instead.
- the in-process LRU (cashews test_lru, test_lru2, test_set_get_mem_overload):
  ported from cachetools in tests/test_cache_ported.py.
- memcached-only and Valkey-only tests (too long keys, integer TTLs, _close
  internals): other backends.
- BcastClientSide's init timeout when Redis is down (test_unsafe_redis_down):
  we never raise for it; ported as test_safe_redis_down.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import inspect
import json
import pickle
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import pytest
import redis

from argo_perf import AsyncRedisCache, BackendError, ConfigError, ManualClock, cached
from argo_perf.cache import USE_DEFAULT, TTLArg
from argo_perf.testing import RedisServer

ROOMY: dict[str, Any] = {"socket_timeout": 2.0, "connect_timeout": 2.0}
SIGNING_KEY = b"0123456789abcdef0123456789abcdef"
OTHER_KEY = b"fedcba9876543210fedcba9876543210"
VALUE = Decimal("100.2")  # cashews' VALUE
WAIT = 10.0  # seconds a test waits for something to happen in real time (never asserted)
_ABSENT = object()
T = TypeVar("T")

tiers = pytest.mark.parametrize("maxsize", [10_000, 0], ids=["two-tier", "redis-only"])


# -- the adapter ----------------------------------------------------------------------


def _stable_id(value: object) -> str:
    """A test id that is the same in every process (a set's repr follows hash order)."""
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(sorted(map(repr, value))) + "}"
    return repr(value)


@dataclass
class Peer:
    """One process's AsyncRedisCache, with the peers' vocabulary and a look into Redis."""

    cache: AsyncRedisCache
    raw: redis.Redis
    clock: ManualClock

    async def multi_get(self, keys: list[str]) -> list[Any]:
        """aiocache's multi_get: a list in key order, None for a missing key."""
        found = await self.cache.get_many(keys)
        return [found.get(key) for key in keys]

    async def multi_set(self, pairs: Iterable[tuple[str, Any]], ttl: TTLArg = USE_DEFAULT) -> bool:
        return await self.cache.set_many(dict(pairs), ttl=ttl)

    async def exists(self, key: str) -> bool:
        return await self.cache.get(key, _ABSENT) is not _ABSENT

    def pttl(self, key: str) -> int:
        """Redis's PTTL of ``key``: ms left, -1 for no expiry, -2 when Redis lacks it."""
        return int(self.raw.pttl(self.cache.redis_key(key)))

    def in_redis(self, key: str) -> bool:
        return bool(self.raw.exists(self.cache.redis_key(key)))

    def tick(self, seconds: float) -> None:
        self.clock.advance(seconds)


Processes = Callable[..., Peer]


@pytest.fixture
async def processes(
    redis_url: str, redis_client: redis.Redis, clock: ManualClock
) -> AsyncIterator[Processes]:
    """``processes(**options)``: a new process's cache on the session's Redis."""
    made: list[AsyncRedisCache] = []

    def make(**options: Any) -> Peer:
        cache = AsyncRedisCache(redis_url, clock=clock, **{**ROOMY, **options})
        made.append(cache)
        return Peer(cache, redis_client, clock)

    try:
        yield make
    finally:
        for cache in made:
            await cache.close()


async def eventually(predicate: Callable[[], Awaitable[bool]]) -> None:
    """Wait (in real time, at most WAIT seconds) until ``predicate`` holds."""
    for _ in range(int(WAIT / 0.01)):
        if await predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("it did not happen")


async def _async(value: bool) -> bool:
    return value


async def get_or_load(
    cache: AsyncRedisCache, key: str, factory: Callable[[], Awaitable[T]], ttl: TTLArg = USE_DEFAULT
) -> T:
    """``cache.get_or_set`` with an ``async def`` factory, typed for mypy (it cannot infer
    the value's type from such a factory: see test_type_checkers_see_an_async_factorys_value)."""
    value: T = await cache.get_or_set(key, factory, ttl)
    return value


class AlwaysLate(random.Random):
    """XFetch's dice always near 1: an early refresh is due once expiry is a few loads away."""

    def random(self) -> float:
        return 0.999999


@dataclass
class Tick:
    """aiocache's MyType / cashews' TestDC: a class of the user's own."""

    r: int
    venue: str = "XNYS"


Quote = collections.namedtuple("Quote", ("test", "name"), defaults=[False, "test"])


class TickSerializer:
    """aiocache's MyTypeSchema: a serializer object of the user's own."""

    name = "tick"

    def dumps(self, value: Any) -> bytes:
        if not isinstance(value, Tick):
            raise TypeError(f"cannot store {type(value).__qualname__}")
        return json.dumps({"r": value.r, "venue": value.venue}).encode()

    def loads(self, data: bytes) -> Any:
        return Tick(**json.loads(data))


RAN: list[str] = []


def _record(what: str) -> str:
    RAN.append(what)
    return what


class Planted:
    """A pickle that runs code when loaded (cashews' "cos system" payloads)."""

    def __reduce__(self) -> tuple[Callable[[str], str], tuple[str]]:
        return _record, ("planted code ran",)


# -- get / set / delete (aiocache tests/acceptance/test_base.py) ------------------------


# aiocache TestCache.test_get_missing, cashews test_get_no_value: a missing key is None,
# or the default given, which is returned as the same object.
@tiers
async def test_get_of_a_missing_key_returns_none_or_the_default(
    processes: Processes, maxsize: int
) -> None:
    peer = processes(maxsize=maxsize)
    assert await peer.cache.get("key") is None
    assert await peer.cache.get("key", default=1) == 1
    assert await peer.cache.get("key", VALUE) is VALUE


# aiocache TestCache.test_get_existing, cashews test_set_get: a value set is read back,
# by this process and by another one (from Redis).
@tiers
async def test_value_set_is_read_back_by_this_and_another_process(
    processes: Processes, maxsize: int
) -> None:
    writer, reader = processes(maxsize=maxsize), processes(maxsize=maxsize)
    await writer.cache.set("key", "value")
    assert await writer.cache.get("key") == "value"
    assert await reader.cache.get("key") == "value"
    meta = await processes(maxsize=maxsize).cache.get_with_meta("key")
    assert meta is not None
    assert (meta.value, meta.source, meta.stale) == ("value", "redis", False)


# aiocache TestCache.test_multi_get, cashews test_set_get_many. Differs on purpose:
# get_many returns a dict that leaves missing keys out, not a list with None in their place.
@tiers
async def test_get_many_leaves_missing_keys_out(processes: Processes, maxsize: int) -> None:
    writer, reader = processes(maxsize=maxsize), processes(maxsize=maxsize)
    await writer.cache.set("key", VALUE)
    assert await reader.cache.get_many(["key", "no_exists"]) == {"key": VALUE}
    assert await reader.multi_get(["key", "no_exists"]) == [VALUE, None]
    assert await reader.cache.get_many([]) == {}


# aiocache TestCache.test_exists_missing / test_exists_existing (no exists here): a stored
# None is told from a missing key by a sentinel default, on both tiers.
@tiers
async def test_a_stored_none_is_told_from_a_missing_key(processes: Processes, maxsize: int) -> None:
    writer, reader = processes(maxsize=maxsize), processes(maxsize=maxsize)
    assert await reader.exists("key") is False
    await writer.cache.set("key", None)
    assert await writer.exists("key") is True
    assert await reader.exists("key") is True
    assert await reader.cache.get("key", "default") is None


# aiocache TestCache.test_delete_missing. Differs on purpose: delete returns whether the
# delete reached Redis (docs: "delete reports the same way"), not how many keys it removed.
async def test_delete_of_a_missing_key_reports_that_redis_was_reached(
    processes: Processes,
) -> None:
    peer = processes()
    assert await peer.cache.delete("key") is True
    assert await AsyncRedisCache().delete("key") is False  # memory-only: Redis never reached


# aiocache TestCache.test_delete_existing, cashews test_delete_many: a deleted key is gone
# for every process, from Redis too, and the other keys stay.
@tiers
async def test_delete_removes_the_value_for_every_process(
    processes: Processes, maxsize: int
) -> None:
    writer, reader = processes(maxsize=maxsize), processes(maxsize=maxsize)
    await writer.cache.set_many({"key1": VALUE, "key2": VALUE, "key3": VALUE})
    assert await reader.cache.get("key1") == VALUE  # a copy in the reader's tier too
    for key in ("key1", "key2", "key4"):
        assert await writer.cache.delete(key) is True
    assert await writer.cache.get("key1") is None
    assert await writer.cache.get("key2") is None
    assert not writer.in_redis("key1")
    assert await processes().cache.get("key1") is None
    assert await reader.cache.get("key3") == VALUE


# aiocache TestCache.test_set: set returns True when the value reached Redis (False for a
# memory-only cache, which has no Redis to reach).
async def test_set_returns_true_when_the_value_reached_redis(processes: Processes) -> None:
    peer = processes()
    assert await peer.cache.set("key", "value") is True
    assert peer.in_redis("key")
    assert await AsyncRedisCache().set("key", "value") is False


# aiocache TestCache.test_set_cancel_previous_ttl_handle: a rewrite restarts the TTL; the
# first write's expiry no longer applies, in either tier.
async def test_rewrite_restarts_the_ttl_on_both_tiers(processes: Processes) -> None:
    writer = processes(max_stale=0.0)
    await writer.cache.set("key", "value", ttl=4)
    writer.tick(2.1)
    assert await writer.cache.get("key") == "value"
    await writer.cache.set("key", "new_value", ttl=4)
    writer.tick(2)  # 4.1 s after the first write
    assert await writer.cache.get("key") == "new_value"
    assert await processes().cache.get("key") == "new_value"
    assert 0 < writer.pttl("key") <= 4_000
    await writer.cache.set("key", "forever", ttl=None)  # Redis's expiry is cancelled too
    assert writer.pttl("key") == -1


# aiocache TestCache.test_multi_set: set_many stores every item, read back by another process.
async def test_set_many_stores_every_item(processes: Processes) -> None:
    writer, reader = processes(), processes()
    pairs = [("key", "value"), ("random", "random_value")]
    assert await writer.multi_set(pairs) is True
    assert await reader.multi_get(["key", "random"]) == ["value", "random_value"]


# aiocache TestCache.test_multi_set_with_ttl, cashews test_set_many (expire=): every item
# expires at the TTL given; Redis keeps each for TTL + max_stale.
async def test_set_many_ttl_expires_every_item(processes: Processes) -> None:
    writer, reader = processes(), processes()
    assert await writer.multi_set([("key", "value"), ("random", "random_value")], ttl=1) is True
    for key in ("key", "random"):
        assert 55_000 < writer.pttl(key) <= 61_000
    writer.tick(1.1)
    assert await writer.multi_get(["key", "random"]) == [None, None]
    assert await reader.multi_get(["key", "random"]) == [None, None]


# aiocache TestCache.test_set_with_ttl, cashews test_expire: a value is gone once its TTL
# has passed, for every process; Redis keeps it TTL + max_stale (docs: "Redis keeps values
# ttl + max_stale seconds so other processes can do the same").
@tiers
async def test_set_ttl_expires_the_value_and_redis_keeps_it_for_max_stale(
    processes: Processes, maxsize: int
) -> None:
    writer, reader = processes(maxsize=maxsize), processes(maxsize=maxsize)
    await writer.cache.set("key", VALUE, ttl=1)
    assert await reader.cache.get("key") == VALUE
    assert 55_000 < writer.pttl("key") <= 61_000
    writer.tick(1.1)
    assert await writer.cache.get("key") is None
    assert await reader.cache.get("key") is None
    assert await processes(maxsize=maxsize).cache.get("key") is None
    assert await reader.cache.get_with_meta("key") is None  # Redis is up: nothing stale
    assert writer.in_redis("key")


# aiocache TestMemoryCache.test_set_float_ttl / TestValkeyCache.test_float_ttl: a float TTL
# reaches Redis to the millisecond (PX), not rounded up to whole seconds.
async def test_float_ttl_is_kept_to_the_millisecond_in_redis(processes: Processes) -> None:
    peer = processes(max_stale=0.0)
    assert await peer.multi_set([("key", "value"), ("random", "random_value")], ttl=100.25)
    await peer.cache.set("one", 1, ttl=100.25)
    for key in ("key", "random", "one"):
        assert 0 < peer.pttl(key) <= 100_250  # PX 100250, not EX 101
    peer.tick(100.3)
    assert await peer.multi_get(["key", "random", "one"]) == [None, None, None]


# aiocache TestCache.test_clear: clear removes the namespace's keys for every process.
async def test_clear_removes_every_key_of_the_namespace(processes: Processes) -> None:
    writer, reader = processes(), processes()
    await writer.cache.set_many({"key": "value", "random": 1})
    assert await reader.cache.get("key") == "value"
    assert await writer.cache.clear() == 2
    assert await reader.exists("key") is True  # the reader's in-process copy is its own
    assert not writer.in_redis("key")
    assert await processes().exists("key") is False
    assert await writer.exists("key") is False


# aiocache test_clear_with_namespace_memory / _valkey: clear empties its own namespace (and
# version) only.
async def test_clear_leaves_other_namespaces_and_versions_alone(processes: Processes) -> None:
    mine, newer, other = (
        processes(namespace="test"),
        processes(namespace="test", version=2),
        processes(namespace="other"),
    )
    for peer in (mine, newer, other):
        await peer.cache.set("key", peer.cache.redis_key("key"))
    assert await mine.cache.clear() == 1
    assert not mine.in_redis("key")
    assert await processes(namespace="test", version=2).cache.get("key") == "test:v2:key"
    assert await processes(namespace="other").cache.get("key") == "other:v1:key"


# cashews test_delete_match. Differs on purpose: clear takes a key prefix, not a pattern;
# glob characters in it are literal.
async def test_clear_prefix_takes_glob_characters_literally(processes: Processes) -> None:
    peer = processes()
    keys = [
        "pref:test:test",
        "pref:value:test",
        "pref:-:test",
        "pref:*:test",
        "ppref:test:test",
        "pref:test:tests",
    ]
    await peer.cache.set_many({key: key for key in keys})
    assert await peer.cache.clear("pref:*") == 1
    assert await processes().cache.get_many(keys) == {k: k for k in keys if k != "pref:*:test"}
    assert await peer.cache.clear("pref:") == 4
    assert await processes().cache.get_many(keys) == {"ppref:test:test": "ppref:test:test"}


# aiocache TestCache.test_close_pool_only_clears_resources: a closed cache is still usable;
# close only releases its connections.
async def test_cache_is_usable_after_close(processes: Processes) -> None:
    peer = processes()
    await peer.cache.set("key", "value")
    await peer.cache.close()
    assert await peer.cache.set("key", "value2") is True
    assert await peer.cache.get("key") == "value2"
    assert await processes().cache.get("key") == "value2"
    assert peer.cache.stats.redis_errors == 0


# aiocache TestMemoryCache / TestValkeyCache.test_accept_explicit_args: an unknown option is
# a TypeError.
def test_unknown_option_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        AsyncRedisCache(random_attr="wtf")  # type: ignore[call-arg]


# -- TTL arguments and keys (aiocache tests/ut/test_base.py) -----------------------------


# aiocache TestBaseCache.test_str_ttl. Differs on purpose: a TTL given as text is a
# ConfigError (docs: "A TTL that is not a positive number raises ConfigError"), and nothing
# is stored.
async def test_ttl_given_as_text_is_a_config_error(processes: Processes) -> None:
    with pytest.raises(ConfigError):
        AsyncRedisCache(default_ttl="1.5")  # type: ignore[arg-type]
    peer = processes()
    with pytest.raises(ConfigError):
        await peer.cache.set("key", "value", ttl="1.5")  # type: ignore[arg-type]
    assert await peer.exists("key") is False
    assert not peer.in_redis("key")
    with pytest.raises(ConfigError):
        cached(peer.cache, ttl="1.5")  # type: ignore[call-overload]


# aiocache TestCacheEndToEnd.test_get_default / test_get_negative_default: a stored falsy
# value is returned, not the default.
@tiers
@pytest.mark.parametrize("value", [0, 0.0, False, "", b"", [], {}, ()], ids=_stable_id)
async def test_falsy_values_are_returned_not_the_default(
    processes: Processes, maxsize: int, value: Any
) -> None:
    writer, reader = processes(maxsize=maxsize), processes(maxsize=maxsize)
    await writer.cache.set("key", value)
    got = await reader.cache.get("key", "default")
    assert got == value
    assert type(got) is type(value)
    assert await writer.cache.get("key", "default") == value


# aiocache TestBaseCache.test_set_ttl_cache_default / _default / _overriden / _none and the
# test_multi_set_ttl_* twins, cashews test_get_set_expire: no ttl means the cache's
# default_ttl, a ttl overrides it, None never expires (PTTL -1), a missing key is -2.
@pytest.mark.parametrize("many", [False, True], ids=["set", "set_many"])
async def test_ttl_default_override_and_none_reach_redis(processes: Processes, many: bool) -> None:
    peer = processes(default_ttl=100.0, max_stale=0.0)

    async def write(key: str, ttl: TTLArg = USE_DEFAULT) -> bool:
        if many:
            return await peer.cache.set_many({key: VALUE, f"{key}-2": VALUE}, ttl=ttl)
        return await peer.cache.set(key, VALUE, ttl=ttl)

    assert peer.pttl("key") == -2
    assert await write("default") is True
    assert await write("override", ttl=1000) is True
    assert await write("none", ttl=None) is True
    assert 50_000 < peer.pttl("default") <= 100_000
    assert 500_000 < peer.pttl("override") <= 1_000_000
    assert peer.pttl("none") == -1
    peer.tick(3600)
    assert await processes().cache.get_many(["default", "override", "none"]) == {"none": VALUE}


# aiocache TestBaseCache.test_build_key / test_str_build_key, cashews test_add_prefix_*:
# every Redis key is {namespace}:v{version}:{key}.
async def test_redis_key_is_namespace_version_and_key(
    processes: Processes, redis_client: redis.Redis
) -> None:
    peer = processes(namespace="my_ns", version=3)
    assert peer.cache.redis_key("key") == "my_ns:v3:key"
    await peer.cache.set("key", "value")
    assert redis_client.exists("my_ns:v3:key") == 1
    await peer.cache.delete("key")
    assert redis_client.exists("my_ns:v3:key") == 0


# cashews test_no_hash (any text key, any value): awkward keys round-trip through Redis.
@pytest.mark.parametrize(
    "key",
    ["", "_key:_!@#$%^&*()", "ключ", "a b", "new\nline", "[a]\\", "k" * 2000],
    ids=["empty", "punctuation", "cyrillic", "space", "newline", "glob", "long"],
)
async def test_awkward_keys_round_trip(processes: Processes, key: str) -> None:
    writer, reader = processes(), processes()
    value = '_value:_!@_#$%^&:*(?)".,4й'
    assert await writer.cache.set(key, value) is True
    assert await reader.cache.get(key) == value
    assert await reader.cache.get_many([key]) == {key: value}
    assert await writer.cache.delete(key) is True
    assert not writer.in_redis(key)


# -- Redis failing (aiocache ut test_*_timeouts, cashews tests/test_redis_down.py) ---------


# cashews test_safe_redis. Differs on purpose: clear raises BackendError (docs: "clear ...
# raises BackendError when Redis cannot be reached"); every other call degrades.
async def test_every_operation_degrades_when_redis_is_refused(
    fault_redis: RedisServer, clock: ManualClock
) -> None:
    fault_redis.kill()
    cache = AsyncRedisCache(fault_redis.url, clock=clock, **ROOMY)
    try:
        assert await cache.set("test", "test") is False
        assert await cache.get("absent", default="no") == "no"
        assert await cache.get("absent") is None
        assert await cache.get("test") == "test"  # the in-process tier keeps the write
        assert await cache.get_many(["absent", "absent2"]) == {}
        assert await cache.set_many({"test": "test", "test2": "test2"}, ttl=1) is False
        assert await cache.get_or_set("loaded", lambda: "value") == "value"
        assert await cache.delete("test") is False
        assert await cache.get("test") is None
        with pytest.raises(BackendError):
            await cache.clear()
        assert cache.backend == "memory"
        assert cache.stats.redis_set_failures >= 2
    finally:
        await cache.close()


# aiocache TestCacheEndToEnd.test_get_timeouts / test_set_timeouts / test_mget_timeouts /
# test_mset_timeouts / test_delete_timeouts / test_clear_timeouts. Differs on purpose: a
# frozen Redis is a socket timeout the cache absorbs, never a TimeoutError; only clear
# raises (BackendError).
async def test_frozen_redis_degrades_instead_of_timing_out(
    fault_redis: RedisServer, clock: ManualClock
) -> None:
    cache = AsyncRedisCache(fault_redis.url, clock=clock)  # the default 50 ms socket timeout
    try:
        assert await cache.set("kept", 1) is True
        fault_redis.pause()
        try:
            assert await cache.get("absent", "default") == "default"
            assert await cache.set("key", 2) is False  # not confirmed
            assert await cache.get("key") == 2
            assert await cache.get_many(["kept", "absent"]) == {"kept": 1}
            assert await cache.set_many({"a": 1, "b": 2}) is False
            assert await cache.delete("key") is False
            with pytest.raises(BackendError):
                await cache.clear()
            assert cache.backend == "memory"
            assert cache.stats.redis_errors >= 1
            assert cache.stats.short_circuited >= 1
        finally:
            fault_redis.resume()
    finally:
        await cache.close()


# aiocache TestCached.test_get_from_cache_exception (a read error is a miss: the function
# runs), cashews test_cache_decorators_on_redis_down. Differs on purpose with the
# in-process tier: its copy answers the next call (cashews calls the function again);
# without the tier (maxsize=0) the function runs every time, as in cashews.
@tiers
async def test_cached_function_still_answers_when_redis_is_down(
    fault_redis: RedisServer, clock: ManualClock, maxsize: int
) -> None:
    fault_redis.kill()
    cache = AsyncRedisCache(fault_redis.url, clock=clock, maxsize=maxsize, **ROOMY)
    calls: list[int] = []

    @cached(cache, ttl=1.0, key=lambda: "key")
    async def func() -> str:
        calls.append(1)
        return "val"

    try:
        assert await func() == "val"
        assert await func() == "val"
        assert len(calls) == (1 if maxsize else 2)
    finally:
        await cache.close()


# aiocache TestCached.test_set_catches_exception: a write Redis refuses (OOM under
# noeviction) does not fail the call; the result is returned and counted as not stored.
async def test_cached_result_is_returned_when_redis_refuses_the_write(
    fault_redis: RedisServer, clock: ManualClock
) -> None:
    with fault_redis.client() as admin:
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", 1)
        cache = AsyncRedisCache(fault_redis.url, clock=clock, **ROOMY)
        calls: list[int] = []

        @cached(cache, key=lambda: "key")
        async def func() -> int:
            calls.append(1)
            return 42

        try:
            assert await func() == 42
            assert await func() == 42
            assert len(calls) == 1
            assert cache.stats.redis_set_failures == 1
            assert admin.exists(cache.redis_key("key")) == 0
            assert await cache.set("other", 1) is False
        finally:
            await cache.close()


# -- the cached decorator (aiocache test_decorators.py, cashews tests/test_cache.py) ------


# aiocache TestCached.test_cached_ttl: the result is in the cache under the key, until its
# TTL has passed.
async def test_cached_result_is_in_the_cache_until_its_ttl(processes: Processes) -> None:
    peer = processes()
    results = iter(range(100))

    @cached(peer.cache, ttl=2, key=lambda: "key")
    async def fn() -> int:
        return next(results)

    resp1 = await fn()
    resp2 = await fn()
    assert await peer.cache.get("key") == resp1 == resp2
    assert await processes().cache.get("key") == resp1
    assert 0 < peer.pttl("key") <= 62_000
    peer.tick(2.1)
    assert await peer.cache.get("key") is None
    assert await fn() != resp1


# aiocache TestCached.test_cached_with_namespace / test_cached_without_namespace: the
# default key lives under the cache's namespace in Redis.
async def test_cached_key_lives_under_the_cache_namespace_in_redis(
    processes: Processes, redis_client: redis.Redis
) -> None:
    peer = processes(namespace="test")

    @cached(peer.cache)
    async def ns_fn() -> str:
        return "1"

    assert await ns_fn() == "1"
    key = f"{ns_fn.__module__}.{ns_fn.__qualname__}()"
    assert redis_client.exists(f"test:v1:{key}") == 1
    assert await processes(namespace="test").cache.get(key) == "1"


# aiocache TestCached.test_get_cache_key_with_key_builder: key= receives the call's keyword
# arguments.
async def test_key_builder_receives_keyword_arguments(processes: Processes) -> None:
    peer = processes()

    @cached(peer.cache, key=lambda market: market.upper())
    async def fn(market: str) -> str:
        return f"book:{market}"

    assert await fn(market="es") == "book:es"
    assert await processes().cache.get("ES") == "book:es"


# aiocache TestCached.test_calls_get_and_returns: a value already in the cache under the
# function's key is returned without calling the function, even one another process stored.
async def test_cached_function_not_called_when_another_process_stored_the_value(
    processes: Processes,
) -> None:
    writer, reader = processes(), processes()
    await writer.cache.set("key", 1)
    calls: list[int] = []

    @cached(reader.cache, key=lambda: "key")
    async def stub() -> int:
        calls.append(1)
        return 2

    assert await stub() == 1
    assert calls == []
    assert reader.cache.stats.redis_hits == 1


# aiocache TestCached.test_calls_fn_raises_exception, cashews test_cache_exc_not_cached_by_default:
# the function's exception reaches the caller and nothing is cached, in Redis either.
async def test_loader_exception_propagates_and_nothing_is_written(processes: Processes) -> None:
    peer = processes()
    calls: list[int] = []

    class CustomError(Exception):
        pass

    @cached(peer.cache, key=lambda: "key")
    async def func() -> str:
        calls.append(1)
        raise CustomError("foo")

    for _ in range(2):
        with pytest.raises(CustomError, match="foo"):
            await func()
    assert len(calls) == 2
    assert not peer.in_redis("key")
    assert peer.cache.stats.loads_in_flight == 0


# aiocache TestCached.test_keeps_signature: the wrapper keeps the function's name, doc,
# signature and coroutine-ness, and exposes it as __wrapped__.
def test_cached_keeps_the_function_name_and_signature() -> None:
    cache = AsyncRedisCache()

    async def what(self: object, a: int, b: int) -> None:
        """Dummy function."""

    wrapped = cached(cache, key=lambda self, a, b: f"{a}:{b}")(what)
    assert wrapped.__name__ == "what"
    assert wrapped.__doc__ == "Dummy function."
    assert str(inspect.signature(wrapped)) == str(inspect.signature(what))
    assert inspect.getfullargspec(inspect.unwrap(wrapped)).args == ["self", "a", "b"]
    assert inspect.unwrap(wrapped) is what
    assert inspect.iscoroutinefunction(wrapped)


# cashews test_cache_simple / test_soft_cache_simple / test_early_cache_simple: with a
# fixed key, the first result is served whatever the arguments until it expires, then the
# function runs again.
async def test_fixed_key_serves_the_first_result_until_it_expires(processes: Processes) -> None:
    peer = processes()

    @cached(peer.cache, ttl=1.0, key=lambda resp=b"ok": "key")
    async def func(resp: bytes = b"ok") -> bytes:
        return resp

    assert await func() == b"ok"
    assert await func(b"notok") == b"ok"
    assert await processes().cache.get("key") == b"ok"
    peer.tick(1.1)
    assert await func(b"notok") == b"notok"


# cashews test_cache_simple_none: a None result is cached like any other.
@tiers
async def test_none_result_is_cached(processes: Processes, maxsize: int) -> None:
    peer = processes(maxsize=maxsize)
    calls: list[int] = []

    @cached(peer.cache, key=lambda: "key")
    async def func() -> str | None:
        calls.append(1)
        return None

    assert await func() is None
    assert await func() is None
    assert len(calls) == 1
    assert peer.in_redis("key")


# cashews test_cache_simple_ttl: a callable ttl receives the function's arguments, so each
# result gets its own TTL, in Redis too.
async def test_callable_ttl_gets_the_function_arguments(processes: Processes) -> None:
    peer = processes(max_stale=0.0)
    calls: list[bytes] = []

    def _ttl(resp: bytes = b"ok") -> float:
        return 5.0 if resp == b"ok" else 7200.0

    @cached(peer.cache, ttl=_ttl, key=lambda resp=b"ok": resp.decode())
    async def func(resp: bytes = b"ok") -> bytes:
        calls.append(resp)
        return resp

    await func()
    await func()
    assert len(calls) == 1
    assert 0 < peer.pttl("ok") <= 5_000
    peer.tick(5.1)
    await func()
    assert len(calls) == 2
    await func(b"notok")
    assert len(calls) == 3
    assert 7_000_000 < peer.pttl("notok") <= 7_200_000
    peer.tick(5.1)
    await func(b"notok")
    assert len(calls) == 3


# cashews test_fail_cache_simple (failover) / test_soft_cache_on_exc: when the function
# fails, the last value is served within max_stale past its TTL, here by another process
# that reads it from Redis; past that, the exception reaches the caller.
async def test_failing_loader_gets_the_last_value_within_max_stale(processes: Processes) -> None:
    writer, other = processes(max_stale=3.0), processes(max_stale=3.0)

    class CustomError(Exception):
        pass

    async def ok() -> bytes:
        return b"ok"

    async def fail() -> bytes:
        raise CustomError

    assert await get_or_load(writer.cache, "fail", ok, ttl=1.0) == b"ok"
    writer.tick(2)
    assert await get_or_load(other.cache, "fail", fail) == b"ok"
    assert other.cache.stats.stale_served == 1
    meta = await other.cache.get_with_meta("fail", fail)
    assert meta is not None
    assert (meta.value, meta.stale) == (b"ok", True)
    writer.tick(2)  # 4 s after the write: past ttl + max_stale
    with pytest.raises(CustomError):
        await get_or_load(other.cache, "fail", fail)
    with pytest.raises(CustomError):
        await get_or_load(processes(max_stale=3.0).cache, "fail", fail)


# cashews test_early_cache_simple / test_early_cache_no_background: with early refresh, a
# value near expiry is reloaded before it expires; the caller that refreshes gets the new
# value, and the other processes read it from Redis.
async def test_early_refresh_reloads_before_expiry(processes: Processes) -> None:
    peer = processes(early_refresh=1.0, rng=AlwaysLate())
    calls: list[int] = []

    async def load() -> int:
        calls.append(1)
        peer.tick(0.5)  # the load takes 0.5 s: XFetch's delta
        return len(calls)

    assert await get_or_load(peer.cache, "key", load, ttl=10) == 1
    assert await get_or_load(peer.cache, "key", load, ttl=10) == 1  # far from expiry
    peer.tick(4)  # 5.5 s of 10 left, within the dice's reach
    assert await get_or_load(peer.cache, "key", load, ttl=10) == 2
    assert peer.cache.stats.early_refreshes == 1
    assert await processes().cache.get("key") == 2


# cashews test_early_cache_parallel (xfail there): under concurrent calls only one caller
# refreshes early; the others get the current value without waiting for it.
async def test_only_one_caller_refreshes_early(processes: Processes) -> None:
    peer = processes(early_refresh=1.0, rng=AlwaysLate())
    release = asyncio.Event()
    calls: list[int] = []

    async def load() -> int:
        calls.append(1)
        peer.tick(0.5)
        if len(calls) > 1:
            await release.wait()
        return len(calls)

    assert await get_or_load(peer.cache, "key", load, ttl=10) == 1
    peer.tick(4)
    tasks = [asyncio.ensure_future(get_or_load(peer.cache, "key", load, ttl=10)) for _ in range(10)]
    await eventually(lambda: _async(sum(t.done() for t in tasks) == 9))
    assert sorted(t.result() for t in tasks if t.done()) == [1] * 9
    release.set()
    assert sorted(await asyncio.gather(*tasks)) == [1] * 9 + [2]
    assert len(calls) == 2
    assert peer.cache.stats.early_refreshes == 1
    assert await peer.cache.get("key") == 2


# -- single flight (aiocache TestCachedStampede, cashews locked / thunder_protection) ------


# aiocache TestCachedStampede.test_cached_stampede: concurrent calls of a cached function
# write Redis once. Ours reads it once too (aiocache: two GETs per caller): the Redis
# lookup is part of the single flight.
async def test_concurrent_cached_calls_read_redis_once_and_write_once(
    processes: Processes, redis_client: redis.Redis
) -> None:
    peer = processes()
    calls: list[float] = []

    @cached(peer.cache, ttl=10)
    async def stub(arg: float) -> str:
        for _ in range(5):
            await asyncio.sleep(0)
        calls.append(arg)
        return str(arg)

    await peer.cache.set("warm", 1)  # the connection is made before the count starts
    redis_client.config_resetstat()
    assert await asyncio.gather(*(stub(0.5) for _ in range(5))) == ["0.5"] * 5
    stats: dict[str, Any] = redis_client.info("commandstats")
    assert stats["cmdstat_get"]["calls"] == 1
    assert stats["cmdstat_set"]["calls"] == 1
    assert calls == [0.5]
    assert peer.cache.stats.coalesced == 4


# cashews test_thunder_protection / test_cache_lock / test_lock_cache_parallel: concurrent
# calls run the function once per expiry; the waiting callers share its result.
async def test_each_expiry_loads_once_under_concurrency(processes: Processes) -> None:
    peer = processes()
    calls: list[int] = []

    @cached(peer.cache, ttl=1.0, key=lambda: "key")
    async def func() -> int:
        await asyncio.sleep(0.01)
        calls.append(1)
        return len(calls)

    for round_ in (1, 2):
        assert await asyncio.gather(*(func() for _ in range(10))) == [round_] * 10
        peer.tick(1.1)
    assert len(calls) == 2
    assert peer.cache.stats.coalesced == 18


# aiocache TestCachedStampede.test_locking_dogpile_task_cancellation: a loader that raises
# CancelledError cancels its caller; a caller that was waiting for that load (and was not
# cancelled) loads instead (docs: "Single flight and early refresh").
async def test_loader_cancelled_error_reaches_its_caller_and_a_waiter_loads_instead(
    processes: Processes,
) -> None:
    peer = processes()
    go = asyncio.Event()
    calls: list[int] = []

    async def load() -> str:
        calls.append(1)
        await go.wait()
        if len(calls) == 1:
            raise asyncio.CancelledError
        return "second"

    leader = asyncio.ensure_future(get_or_load(peer.cache, "key", load))
    await eventually(lambda: _async(len(calls) == 1))
    waiter = asyncio.ensure_future(get_or_load(peer.cache, "key", load))
    await eventually(lambda: _async(peer.cache.stats.coalesced == 1))
    go.set()
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert await waiter == "second"
    assert len(calls) == 2
    assert await processes().cache.get("key") == "second"


# -- get_or_set (cashews tests/test_backend_commands.py) ---------------------------------


async def _value() -> Decimal:
    return VALUE


# cashews test_get_or_set_callable / test_get_or_set_awaitable: the factory may return a
# value or be an async function; the value is stored for every process.
@pytest.mark.parametrize(
    "factory",
    [lambda: VALUE, _value, functools.partial(lambda v: v, VALUE)],
    ids=["sync", "async", "partial"],
)
async def test_get_or_set_takes_a_sync_or_async_factory(
    processes: Processes, factory: Callable[[], Any]
) -> None:
    peer = processes()
    assert await peer.cache.get_or_set("key", factory) == VALUE
    assert await peer.cache.get("key") == VALUE
    assert await processes().cache.get("key") == VALUE


# cashews test_get_or_set (default=VALUE). Differs on purpose: get_or_set takes a factory,
# not a value; a value is a TypeError and nothing is stored or left in flight.
async def test_get_or_set_needs_a_callable_factory(processes: Processes) -> None:
    peer = processes()
    with pytest.raises(TypeError):
        await peer.cache.get_or_set("key", VALUE)  # type: ignore[arg-type]
    assert await peer.exists("key") is False
    assert peer.cache.stats.loads_in_flight == 0
    assert await peer.cache.get_or_set("key", lambda: VALUE) == VALUE


# cashews test_get_or_set_no_set: an existing value is returned and kept; the factory
# does not run.
@tiers
async def test_get_or_set_keeps_an_existing_value(processes: Processes, maxsize: int) -> None:
    writer, reader = processes(maxsize=maxsize), processes(maxsize=maxsize)
    await writer.cache.set("key", VALUE)

    def factory() -> Decimal:
        raise AssertionError("the factory ran")

    assert await reader.cache.get_or_set("key", factory) == VALUE
    assert await processes().cache.get("key") == VALUE
    assert reader.cache.stats.loader_calls == 0


# -- hit / miss ratio (aiocache tests/acceptance/test_plugins.py) -------------------------


# aiocache TestHitMissRatioPlugin.test_get_hit_miss_ratio / test_multi_get_hit_miss_ratio:
# every lookup is a hit or a miss, so hits / (hits + misses) is the hit ratio.
@pytest.mark.parametrize("many", [False, True], ids=["get", "get_many"])
@pytest.mark.parametrize(
    "data",
    [
        {"testa": 1, "testb": 2, "testc": 3},
        {"testa": 1, "testz": 0},
        {},
        {"testa": 1, "testb": 2, "testc": 3, "testd": 4, "teste": 5},
    ],
    ids=["3-of-6", "1-of-6", "none", "5-of-6"],
)
async def test_hit_ratio_counts_every_lookup(
    processes: Processes, data: dict[str, int], many: bool
) -> None:
    await processes().cache.set_many(data)
    reader = processes()
    keys = ["a", "b", "c", "d", "e", "f"]
    for key in keys:
        if many:
            await reader.cache.get_many([f"test{key}"])
        else:
            await reader.cache.get(f"test{key}")
    hits = [k for k in keys if f"test{k}" in data]
    stats = reader.cache.stats
    assert stats.redis_hits + stats.memory_hits == len(hits)
    assert stats.redis_hits / (stats.redis_hits + stats.misses) == len(hits) / len(keys)


# -- serializers (aiocache test_serializers.py, cashews test_pickle_serializer.py) --------

AIOCACHE_JSON_TYPES = (1, 2.0, "hi", True, ["1", 1], {"key": "value"})


# aiocache TestJsonSerializer.test_set_get_types / test_multi_set_multi_get_types: JSON's
# types round-trip through Redis with set/get and set_many/get_many.
@pytest.mark.parametrize("obj", AIOCACHE_JSON_TYPES, ids=_stable_id)
async def test_json_types_round_trip_through_redis(processes: Processes, obj: Any) -> None:
    writer = processes()
    assert await writer.cache.set("key", obj) is True
    assert await writer.multi_set([("key1", obj)]) is True
    reader = processes()
    assert await reader.cache.get("key") == obj
    assert await reader.multi_get(["key1"]) == [obj]


# cashews test_set_get, test_set_get_bytes, test_serialize_dates_value,
# test_serialize_array_value / _diff_value: the documented types come back with their type
# (docs: "Serialization and safety"), from another process.
@pytest.mark.parametrize(
    "value",
    [
        VALUE,
        Decimal("231.50"),
        b"10",
        datetime(2000, 1, 10, 10, tzinfo=timezone(timedelta(hours=-5))),
        date(2020, 12, 31),
        UUID(int=1),
        ("test", "to"),
        ["test", b"to"],
        [(1, 2), (3, 4)],
        [{"test": True}],
        [{1: True}, Decimal("0.1")],
        {None: 1, 100: "x"},
        [],
    ],
    ids=_stable_id,
)
async def test_documented_types_round_trip_with_their_type(
    processes: Processes, value: Any
) -> None:
    await processes().cache.set("key", value)
    got = await processes().cache.get("key")
    assert got == value
    assert type(got) is type(value)
    assert repr(got) == repr(value)  # nested types too (tuples in lists, int keys, zeros)


# cashews test_set_no_ser, test_serialize_array_value ({"test"}), aiocache TestJsonSerializer
# (MyType excluded): what JSON cannot store is a TypeError naming the type at set, in a
# memory-only cache too, and nothing is stored.
@pytest.mark.parametrize(
    "value",
    [object(), {"test"}, Tick(1), timedelta(days=10), (Tick(2), Decimal("10.1"))],
    ids=["object", "set", "dataclass", "timedelta", "tuple-of-dataclass"],
)
async def test_value_json_cannot_store_is_a_type_error_naming_it(
    processes: Processes, value: Any
) -> None:
    peer = processes()
    for cache in (peer.cache, AsyncRedisCache()):
        with pytest.raises(TypeError, match=r"cannot cache .* of type \w+"):
            await cache.set("key", value)
        assert await cache.get("key", "absent") == "absent"
    assert not peer.in_redis("key")


# cashews test_serialize_collections_value: a namedtuple comes back as itself. With JSON,
# the writer's in-process tier returns the namedtuple but every other process gets a plain
# tuple from Redis (no TypeError at set), contrary to "what works without Redis works with it".
async def test_namedtuple_comes_back_as_itself_or_is_refused_with_json(
    processes: Processes,
) -> None:
    writer, reader = processes(), processes()
    quote = Quote(name="test", test="lol")
    try:
        await writer.cache.set("key", quote)
    except TypeError:
        return  # refused at set, as for any other type JSON cannot keep: fine
    assert type(await writer.cache.get("key")) is Quote
    got = await reader.cache.get("key")
    assert got == quote
    assert type(got) is Quote


# aiocache TestPickleSerializer, cashews test_serialize_simple_value /
# test_serialize_collections_value / test_serialize_array_value: with "pickle" and a
# signing key, any picklable value round-trips with its type, with set/get and
# set_many/get_many.
@pytest.mark.parametrize(
    "value",
    [
        "test",
        b"test",
        "1_1",
        b"0",
        0,
        2,
        1.234,
        Decimal("1.001"),
        True,
        False,
        "",
        None,
        {"hi": True},
        Tick(r=1),
        Quote(name="test", test="lol"),
        Quote(),
        {"test", 1},
        (Tick(2), Decimal("10.1")),
        timedelta(days=10),
        datetime(2000, 1, 10, 10),
    ],
    ids=_stable_id,
)
async def test_pickle_with_signing_key_round_trips_any_value(
    processes: Processes, value: Any
) -> None:
    options = {"serializer": "pickle", "signing_key": SIGNING_KEY}
    writer = processes(**options)
    await writer.cache.set("key", value)
    await writer.cache.set_many({"key1": value, "key2": value})
    reader = processes(**options)
    got = await reader.cache.get("key", "absent")
    assert got == value
    assert type(got) is type(value)
    assert await reader.cache.get("key2", "absent") == value
    assert await reader.cache.get_many(["key1", "key2"]) == {"key1": value, "key2": value}


# aiocache TestPickleSerializer (PickleSerializer() needs nothing). Differs on purpose:
# pickle without a signing key is a ConfigError (docs: "Pickle is available only with a
# signing key").
def test_pickle_needs_a_signing_key() -> None:
    with pytest.raises(ConfigError):
        AsyncRedisCache(serializer="pickle")


# aiocache TestAltSerializers.test_get_set_alt_serializer_class: a serializer object of the
# user's own stores the user's class.
async def test_custom_serializer_object_round_trips(processes: Processes) -> None:
    my_obj = Tick(r=7)
    await processes(serializer=TickSerializer()).cache.set("key", my_obj)
    got = await processes(serializer=TickSerializer()).cache.get("key")
    assert got == my_obj
    assert type(got) is Tick


# aiocache TestNullSerializer.test_set_get_types / test_multi_set_multi_get_types: the
# in-process tier hands out the stored object itself (docs: "as cachetools does").
@pytest.mark.parametrize("obj", AIOCACHE_JSON_TYPES, ids=_stable_id)
async def test_in_process_tier_hands_out_the_stored_object(processes: Processes, obj: Any) -> None:
    peer = processes()
    assert await peer.cache.set("key", obj) is True
    assert await peer.cache.get("key") is obj
    assert await peer.multi_set([("key1", obj)]) is True
    assert (await peer.multi_get(["key1"]))[0] is obj


# cashews test_mutation. Differs on purpose: the in-process tier holds the object itself
# (docs: "do not mutate cached values"), so a mutation after set shows in this process;
# Redis holds the value as it was at set, as other processes and a Redis-only cache see.
async def test_mutating_a_stored_object_changes_only_this_process_copy(
    processes: Processes,
) -> None:
    writer, lean = processes(), processes(maxsize=0)
    obj = [1, 2, 3]
    await writer.cache.set("key", obj)
    await lean.cache.set("lean", obj)
    obj.append(4)
    assert await writer.cache.get("key") == [1, 2, 3, 4]
    assert await processes().cache.get("key") == [1, 2, 3]
    assert await lean.cache.get("lean") == [1, 2, 3]


# cashews test_unsecure_value / test_unsecure_value_many. Differs on purpose: a planted
# pickle is a counted miss, never an exception (docs: "It never raises"), and never runs.
async def test_planted_pickle_is_a_counted_miss_and_never_runs(
    processes: Processes, redis_client: redis.Redis
) -> None:
    options = {"serializer": "pickle", "signing_key": SIGNING_KEY}
    reader = processes(**options)
    attacker = processes(serializer="pickle", signing_key=OTHER_KEY)
    await attacker.cache.set("signed", Planted())  # signed, with another key
    RAN.clear()
    redis_client.set(reader.cache.redis_key("bare"), pickle.dumps(Planted()))
    assert await reader.cache.get("signed", "default") == "default"
    assert await reader.cache.get("bare", "default") == "default"
    assert await reader.cache.get_many(["signed", "bare"]) == {}
    assert RAN == []
    assert reader.cache.stats.signature_failures == 2
    assert reader.cache.stats.decode_failures == 2


# cashews test_replace_values: a value copied under another key fails its signature (the
# HMAC covers the Redis key).
async def test_value_copied_under_another_key_fails_its_signature(
    processes: Processes, redis_client: redis.Redis
) -> None:
    peer = processes(serializer="pickle", signing_key=SIGNING_KEY)
    await peer.cache.set("key", "key")
    data = redis_client.get(peer.cache.redis_key("key"))
    assert data is not None
    redis_client.set(peer.cache.redis_key("replace"), data)
    assert await peer.cache.get("replace") is None
    assert peer.cache.stats.signature_failures == 1


# cashews test_pickle_error_value: garbage under a key is the default, counted, never raised.
@pytest.mark.parametrize("serializer", ["json", "pickle"])
async def test_garbage_in_redis_is_the_default(
    processes: Processes, redis_client: redis.Redis, serializer: str
) -> None:
    peer = processes(serializer=serializer, signing_key=SIGNING_KEY)
    redis_client.set(peer.cache.redis_key("key"), b"nopickledata")
    assert await peer.cache.get("key", default="default") == "default"
    assert await peer.cache.get_or_set("key", lambda: "loaded") == "loaded"
    stats = peer.cache.stats
    assert stats.decode_failures + stats.signature_failures == 2


# cashews test_diff_types_get_many / test_incr_set: a key holding another Redis type (or an
# INCR counter) is a counted miss for get and get_many; set replaces it.
async def test_keys_of_other_redis_types_are_counted_misses(
    processes: Processes, redis_client: redis.Redis
) -> None:
    peer = processes()
    redis_client.incr(peer.cache.redis_key("key"))
    redis_client.hset(peer.cache.redis_key("key2"), "field", 1)
    await peer.cache.set("ok", VALUE)
    assert await peer.cache.get_many(["key", "key2", "ok"]) == {"ok": VALUE}
    assert peer.cache.stats.decode_failures == 2
    assert await peer.cache.get("key2", "default") == "default"
    assert await peer.cache.set("key2", "test") is True
    assert await processes().cache.get("key2") == "test"


# cashews test_cache_from_hash_to_no_hash: a reader with another serializer (here JSON
# reading pickled, signed values) misses instead of misreading.
async def test_reader_with_another_serializer_misses(processes: Processes) -> None:
    await processes(serializer="pickle", signing_key=SIGNING_KEY).cache.set("key", VALUE)
    reader = processes()
    assert await reader.cache.get("key", "default") == "default"
    assert reader.cache.stats.decode_failures == 1


# cashews test_cache_from_no_hash_to_hash. Differs on purpose: a cache with a signing key
# refuses unsigned values (cashews reads them) (docs: "a value planted in a shared Redis ...
# is ignored").
async def test_signing_reader_refuses_unsigned_values(processes: Processes) -> None:
    await processes().cache.set("key", VALUE)
    reader = processes(signing_key=SIGNING_KEY)
    assert await reader.cache.get("key", "default") == "default"
    assert reader.cache.stats.signature_failures == 1


# -- the in-process tier and other processes (cashews test_client_side_cache.py) ----------


# cashews test_set_none_bcast. Differs on purpose: a miss is not remembered (cashews' local
# tier keeps "absent"), so a value another process writes next is read at once.
async def test_a_miss_is_not_remembered(processes: Processes) -> None:
    reader, writer = processes(), processes()
    assert await reader.cache.get("key") is None
    assert await reader.exists("key") is False
    await writer.cache.set("key", "val", ttl=10_000)
    assert await reader.cache.get("key") == "val"
    assert await reader.exists("key") is True


# cashews test_set_get_bcast / test_rewrite_bcast / test_del_bcast: with coherent=True a
# copy is dropped when another process rewrites or deletes the key.
async def test_coherent_copy_follows_another_process_writes_and_deletes(
    processes: Processes,
) -> None:
    reader, writer = processes(coherent=True), processes()
    await eventually(lambda: _async(reader.cache.stats.coherent))
    await writer.cache.set("key", b"value")
    assert await reader.cache.get("key") == b"value"
    await writer.cache.set("key", b"new")

    async def seen(value: bytes | None) -> bool:
        return bool(await reader.cache.get("key") == value)

    await eventually(lambda: seen(b"new"))
    await writer.cache.delete("key")
    await eventually(lambda: seen(None))
    assert reader.cache.stats.invalidations >= 2


# cashews test_safe_redis_down (BcastClientSide): a coherent cache built while Redis is
# down starts and serves its in-process tier.
async def test_coherent_cache_starts_with_redis_down(
    fault_redis: RedisServer, clock: ManualClock
) -> None:
    fault_redis.kill()
    cache = AsyncRedisCache(fault_redis.url, coherent=True, clock=clock, **ROOMY)
    try:
        assert await cache.set("key", 1) is False
        assert await cache.get("key") == 1
        assert cache.stats.coherent is False
    finally:
        await cache.close()


# cashews test_issue_382: a cached coroutine can run on another event loop, in a thread
# (asyncio.run in an executor), and the results are shared.
async def test_cached_coroutine_runs_on_another_loop_in_a_thread(processes: Processes) -> None:
    peer = processes()
    calls: list[int] = []

    @cached(peer.cache, ttl=60, key=lambda item_id: f"item:{item_id}")
    async def get_item(item_id: int) -> str:
        calls.append(item_id)
        return f"item_{item_id}"

    def sync_get_item(item_id: int) -> str:
        # asyncio.run wants a Coroutine (see test_type_checkers_see_a_cached_coroutine).
        async def call() -> str:
            return await get_item(item_id)

        return asyncio.run(call())

    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, sync_get_item, 123) == "item_123"
    assert await get_item(123) == "item_123"
    assert await get_item(124) == "item_124"
    assert await loop.run_in_executor(None, sync_get_item, 124) == "item_124"
    assert calls == [123, 124]
    assert await processes().cache.get("item:124") == "item_124"


# -- what type checkers see (the same behaviours, under mypy --strict) -------------------


def _mypy_strict(tmp_path: Path, lines: list[str]) -> tuple[list[str], list[str]]:
    """Run ``mypy --strict`` on a module of ``lines``: the revealed types, and the errors."""
    import mypy.api as mypy_api  # the dev extra, as in tests/test_resilience.py

    source = tmp_path / "typed.py"
    source.write_text("\n".join(lines) + "\n")
    out, _, _ = mypy_api.run(["--strict", "--no-error-summary", str(source)])
    said = out.splitlines()
    revealed = [line.split("Revealed type is ")[1] for line in said if "Revealed type" in line]
    errors = [line for line in said if ": error:" in line]
    return [text.replace("builtins.", "") for text in revealed], errors


# cashews test_get_or_set_awaitable, under mypy: the documented use, get_or_set with an
# ``async def`` factory, is typed as the factory's value.
def test_type_checkers_see_an_async_factorys_value(tmp_path: Path) -> None:
    revealed, errors = _mypy_strict(
        tmp_path,
        [
            "from argo_perf import AsyncRedisCache",
            "async def load() -> float:",
            "    return 231.5",
            "async def main(cache: AsyncRedisCache) -> None:",
            "    reveal_type(await cache.get_or_set('AAPL', load))",
            "    assert await cache.get_or_set('AAPL', load, ttl=10.0) == 231.5",
        ],
    )
    assert errors == []
    assert revealed == ['"float"']


# cashews test_issue_382 (asyncio.run(get_item(...))), under mypy: calling a cached
# ``async def`` gives a coroutine, which asyncio.run and asyncio.create_task accept.
def test_type_checkers_see_a_cached_coroutine(tmp_path: Path) -> None:
    revealed, errors = _mypy_strict(
        tmp_path,
        [
            "import asyncio",
            "from argo_perf import AsyncRedisCache, cached",
            "@cached(AsyncRedisCache(), ttl=60.0)",
            "async def get_item(item_id: int) -> str:",
            "    return f'item_{item_id}'",
            "async def main() -> None:",
            "    task = asyncio.create_task(get_item(123))",
            "    reveal_type(await task)",
            "reveal_type(asyncio.run(get_item(123)))",
        ],
    )
    assert errors == []
    assert revealed == ['"str"', '"str"']
