"""cachetools' test suite, ported onto our RedisCache through a thin adapter.

Each test states one behaviour that cachetools' tests check (tkem/cachetools,
tests/__init__.py, test_lru.py, test_ttl.py, test_tlru.py, test_cached.py,
test_cachedmethod.py, test_func.py, test_keys.py, test_threading.py), in our
API; the comment above it names the cachetools test. Where our documented
behaviour differs on purpose (string keys built from ``repr``, TTLs that must
be positive seconds, values kept past their TTL for ``max_stale``, counters
that only grow), the test asserts ours and says so.

The adapter: `Adapted` gives a memory-only `RedisCache` cachetools' mapping
face (``cache[k] = v``, ``cache[k]``, ``k in cache``, ``len``, ``update``,
``clear``), with ``str(k)`` as our key and a `ManualClock` that `tick` moves,
as cachetools' ``Timer`` does. ``k in cache`` is a `get`, which, unlike
cachetools' ``in``, counts as a use of the key for the LRU order; no test
below depends on the difference.

Not ported, having no meaning here:
- getsizeof and currsize (test_defaults' sizes, test_*getsizeof*): our tier is
  bounded by entries only.
- popitem and pop (test_pop, test_popitem*): no such operations; `delete` removes a key.
- the mutable-mapping protocol (iteration, ``del cache[k]`` raising KeyError): not our API.
- a custom ``__missing__`` (test_missing, test_missing_getsizeof): our loader
  is `get_or_set` / `cached`, ported below.
- pickling a cache (test_pickle, test_pickle_maxsize): a RedisCache holds a lock
  and connections, it is not a value.
- ``expire()`` and its returned items (test_ttl_expire, test_ttu_expire): no
  such method; what expires when is ported.
- the auto-ticking timer (test_ttl_atomic, test_ttu_atomic): our clock is a
  ManualClock, moved only by the test.
- lock=, condition=, info=, cache_info(), cache_parameters(), wrapper.cache and
  cache_key attributes, per-instance caches of ``cachedmethod`` (slots,
  immutable dicts, __set_name__): `cached` has none of them; single flight,
  stats and `clear(prefix)` are ported instead.
- key objects (test_addkeys, test_pickle in test_keys): our keys are strings.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from argo_perf import AsyncRedisCache, ConfigError, ManualClock, RedisCache, cached
from argo_perf.cache import USE_DEFAULT, TTLArg

WAIT = 10.0  # seconds a thread waits for the others before the test gives up (never asserted)
ROOMY: dict[str, Any] = {"socket_timeout": 2.0, "connect_timeout": 2.0}
_ABSENT = object()


# -- the adapter ----------------------------------------------------------------------


@dataclass
class Adapted:
    """A memory-only RedisCache seen through cachetools' mapping face."""

    cache: RedisCache
    clock: ManualClock

    def __setitem__(self, key: object, value: object) -> None:
        self.cache.set(str(key), value)

    def __getitem__(self, key: object) -> Any:
        value = self.cache.get(str(key), _ABSENT)
        if value is _ABSENT:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return self.cache.get(str(key), _ABSENT) is not _ABSENT

    def __len__(self) -> int:
        return self.cache.stats.memory_entries

    def update(self, mapping: Mapping[object, object]) -> None:
        self.cache.set_many({str(k): v for k, v in mapping.items()})

    def clear(self) -> int:
        return self.cache.clear()

    def tick(self, seconds: float = 1.0) -> None:
        self.clock.advance(seconds)


def adapted(
    maxsize: int,
    ttl: float | Callable[[str], float | None] | None = None,
    max_stale: float = 60.0,
) -> Adapted:
    """cachetools' ``LRUCache(maxsize)``, or a ``TTLCache`` / ``TLRUCache`` with ``ttl``."""
    clock = ManualClock()
    return Adapted(
        RedisCache(maxsize=maxsize, default_ttl=ttl, max_stale=max_stale, clock=clock), clock
    )


def wait_until(predicate: Callable[[], bool]) -> None:
    """Wait (in real time, at most WAIT seconds) for other threads to get somewhere."""
    pause = threading.Event()
    for _ in range(int(WAIT / 0.005)):
        if predicate():
            return
        pause.wait(0.005)
    raise AssertionError("the other threads did not get there")


class Counter:
    """cachetools' test function: returns how many times it ran before (0, 1, 2 ...)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *args: Any, **kwargs: Any) -> int:
        return self.func(*args, **kwargs)

    def func(self, *args: Any, **kwargs: Any) -> int:
        """The function to cache (a bound method: it has a name, for the default key)."""
        result = self.count
        self.count += 1
        return result


@pytest.fixture
def redis_caches(redis_url: str, clock: ManualClock) -> Iterator[Callable[..., RedisCache]]:
    """Caches on the session's real redis-server (one per process they stand for)."""
    made: list[RedisCache] = []

    def make(**kwargs: Any) -> RedisCache:
        cache = RedisCache(redis_url, clock=clock, **ROOMY, **kwargs)
        made.append(cache)
        return cache

    try:
        yield make
    finally:
        for cache in made:
            cache.close()


# -- the generic cache (tests/__init__.py) --------------------------------------------


# test_defaults (without getsizeof / currsize): an empty cache reports its bound and no entries.
def test_new_cache_is_empty_and_reports_its_maxsize() -> None:
    cache = adapted(maxsize=1)
    assert len(cache) == 0
    assert cache.cache.config.maxsize == 1
    assert repr(cache.cache).startswith("RedisCache")


# test_insert: inserting past maxsize keeps maxsize entries, the newest among them.
def test_insert_past_maxsize_keeps_the_newest() -> None:
    cache = adapted(maxsize=2)
    cache.update({1: 1, 2: 2})
    assert len(cache) == 2
    assert (cache[1], cache[2]) == (1, 2)

    cache[3] = 3
    assert len(cache) == 2
    assert cache[3] == 3
    assert 1 in cache or 2 in cache

    cache[4] = 4
    assert len(cache) == 2
    assert cache[4] == 4
    assert 1 in cache or 2 in cache or 3 in cache


# test_update: updating existing keys replaces their values without adding entries.
def test_update_replaces_existing_values() -> None:
    cache = adapted(maxsize=2)
    cache.update({1: 1, 2: 2})
    cache.update({1: 1, 2: 2})
    assert len(cache) == 2
    assert (cache[1], cache[2]) == (1, 2)

    cache.update({1: "a", 2: "b"})
    assert len(cache) == 2
    assert (cache[1], cache[2]) == ("a", "b")


# test_delete: a deleted key is gone, the others stay. Differs on purpose: deleting a
# missing key is no KeyError; `delete` returns False, which means "did not reach Redis"
# (always, for a memory-only cache).
def test_delete_removes_only_that_key() -> None:
    cache = adapted(maxsize=2)
    cache.update({1: 1, 2: 2})

    assert cache.cache.delete("2") is False
    assert len(cache) == 1
    assert cache[1] == 1
    assert 2 not in cache

    cache.cache.delete("1")
    assert len(cache) == 0
    assert 1 not in cache

    assert cache.cache.delete("1") is False  # cachetools: KeyError
    assert len(cache) == 0


# test_delete, on the Redis tier: a delete reaches Redis, so no other process reads the key.
def test_delete_reaches_redis(redis_caches: Callable[..., RedisCache]) -> None:
    writer, reader = redis_caches(), redis_caches()
    assert writer.set("1", 1) is True
    assert writer.delete("1") is True
    assert reader.get("1") is None
    assert writer.get("1") is None


# test_missing (the part about get): get returns the default for a missing key,
# and loads nothing; only get_or_set runs a loader (our __missing__).
def test_get_returns_the_default_and_get_or_set_loads() -> None:
    cache = adapted(maxsize=2)
    assert cache.cache.get("5") is None
    assert cache.cache.get("5", 25) == 25
    assert len(cache) == 0
    assert cache.cache.get_or_set("5", lambda: 5) == 5
    assert cache.cache.get_or_set("5", lambda: 6) == 5
    assert cache[5] == 5


# test_clear / test_clear_empty: clear empties the cache, which then works as before.
def test_clear_empties_and_the_cache_stays_usable() -> None:
    cache = adapted(maxsize=2)
    assert cache.clear() == 0  # an empty cache: nothing to remove, no error
    cache.update({1: 1, 2: 2})
    assert cache.clear() == 2  # a memory-only cache reports the entries it removed
    assert len(cache) == 0
    assert 1 not in cache
    assert 2 not in cache

    cache[3] = 3
    cache[4] = 4
    assert len(cache) == 2
    assert (cache[3], cache[4]) == (3, 4)
    cache[5] = 5
    assert len(cache) == 2
    assert 5 in cache


# test_clear, on the Redis tier: clear removes the values from Redis, for every process.
def test_clear_removes_values_from_redis(redis_caches: Callable[..., RedisCache]) -> None:
    writer = redis_caches()
    writer.set_many({"1": 1, "2": 2})
    assert writer.clear() == 2  # the Redis keys removed
    assert writer.stats.memory_entries == 0
    assert redis_caches().get_many(["1", "2"]) == {}
    assert writer.set("3", 3) is True
    assert redis_caches().get("3") == 3


# -- LRU (test_lru.py; test_ttl_lru, test_ttu_lru) --------------------------------------


# test_lru / test_ttl_lru / test_ttu_lru: the least recently used key goes first, and a
# read makes a key recently used, with or without a TTL.
@pytest.mark.parametrize("ttl", [None, 1.0], ids=["no-ttl", "ttl"])
def test_least_recently_used_is_evicted_first(ttl: float | None) -> None:
    cache = adapted(maxsize=2, ttl=ttl)
    cache[1] = 1
    cache[2] = 2
    cache[3] = 3
    assert len(cache) == 2
    assert (cache[2], cache[3]) == (2, 3)
    assert 1 not in cache

    assert cache[2] == 2
    cache[4] = 4
    assert len(cache) == 2
    assert (cache[2], cache[4]) == (2, 4)
    assert 3 not in cache

    cache[5] = 5
    assert len(cache) == 2
    assert (cache[4], cache[5]) == (4, 5)
    assert 2 not in cache


# test_lru_update_existing: writing an existing key makes it the most recently used.
def test_overwriting_a_key_makes_it_recently_used() -> None:
    cache = adapted(maxsize=2)
    cache[1] = 1
    cache[2] = 2
    cache[1] = "updated"
    cache[3] = 3
    assert cache[1] == "updated"
    assert 3 in cache
    assert 2 not in cache


# test_lru_clear / test_ttl_clear / test_tlru_clear: after clear the LRU order starts
# afresh, and TTLs still apply.
def test_clear_resets_lru_order_and_ttls_still_apply() -> None:
    cache = adapted(maxsize=2, ttl=2.0)
    cache[1] = 1
    cache[2] = 2
    cache.clear()
    assert len(cache) == 0

    cache[3] = 3
    cache[4] = 4
    assert cache[3] == 3  # 3 is now the most recently used
    cache[5] = 5  # evicts 4
    assert len(cache) == 2
    assert 3 in cache
    assert 5 in cache
    assert 4 not in cache

    cache[42] = 42
    cache.tick(3)
    assert 42 not in cache


# test_lru, through `cached` (test_cached.py's wrapper reads cache[k], which makes k
# recently used): a hit of a cached function is a use of its key.
def test_cached_hit_counts_as_use_for_lru(clock: ManualClock) -> None:
    cache = RedisCache(maxsize=2, clock=clock)
    calls: list[int] = []

    @cached(cache, key=lambda n: f"n:{n}")
    def square(n: int) -> int:
        calls.append(n)
        return n * n

    square(1)
    square(2)
    assert square(1) == 1  # a hit: 1 is now the most recently used
    square(3)  # evicts 2, the least recently used
    assert square(1) == 1
    assert calls == [1, 2, 3]


# test_lru, through the asyncio face's `cached`: the same rule.
async def test_async_cached_hit_counts_as_use_for_lru(clock: ManualClock) -> None:
    cache = AsyncRedisCache(maxsize=2, clock=clock)
    calls: list[int] = []

    @cached(cache, key=lambda n: f"n:{n}")
    async def square(n: int) -> int:
        calls.append(n)
        return n * n

    await square(1)
    await square(2)
    assert await square(1) == 1
    await square(3)
    assert await square(1) == 1
    assert calls == [1, 2, 3]


# test_lru, through get_many: a key read by get_many is recently used.
def test_get_many_hit_counts_as_use_for_lru() -> None:
    cache = adapted(maxsize=2)
    cache[1] = 1
    cache[2] = 2
    assert cache.cache.get_many(["1"]) == {"1": 1}
    cache[3] = 3  # evicts 2
    assert 1 in cache
    assert 2 not in cache


# test_lru, through get_with_meta: a key read by get_with_meta is recently used.
def test_get_with_meta_hit_counts_as_use_for_lru() -> None:
    cache = adapted(maxsize=2)
    cache[1] = 1
    cache[2] = 2
    meta = cache.cache.get_with_meta("1")
    assert meta is not None
    assert meta.value == 1
    cache[3] = 3  # evicts 2
    assert 1 in cache
    assert 2 not in cache


# test_lru, on the Redis tier. Differs on purpose: eviction bounds the in-process tier
# only; an evicted key is still read from Redis.
def test_evicted_key_is_still_read_from_redis(redis_caches: Callable[..., RedisCache]) -> None:
    cache = redis_caches(maxsize=1)
    cache.set("1", 1)
    cache.set("2", 2)
    assert cache.stats.memory_entries == 1
    meta = cache.get_with_meta("1")
    assert meta is not None
    assert (meta.value, meta.source) == (1, "redis")


# -- TTL (test_ttl.py) ----------------------------------------------------------------


# test_ttl / test_ttl_timer: a value is fresh for ttl seconds of the injected clock and
# gone from the moment ttl has passed.
def test_value_expires_when_its_ttl_has_passed() -> None:
    cache = adapted(maxsize=2, ttl=2.0)
    cache[1] = 1
    assert cache[1] == 1

    cache.tick()
    assert cache[1] == 1
    cache[2] = 2
    assert (cache[1], cache[2]) == (1, 2)

    cache.tick()  # 1 was written 2 s ago: expired
    assert 1 not in cache
    assert cache[2] == 2
    cache[3] = 3
    assert 1 not in cache
    assert (cache[2], cache[3]) == (2, 3)

    cache.tick()
    assert 1 not in cache
    assert 2 not in cache
    assert cache[3] == 3

    cache.tick()
    assert 3 not in cache
    with pytest.raises(KeyError):
        cache[3]


# test_ttl, on the Redis tier: a value read back from Redis by another process expires
# at the writer's TTL too.
def test_value_expires_on_the_redis_tier(
    redis_caches: Callable[..., RedisCache], clock: ManualClock
) -> None:
    writer, reader = redis_caches(), redis_caches()
    assert writer.set("1", 1, ttl=2.0) is True
    clock.advance(1)
    assert reader.get("1") == 1
    clock.advance(1)
    assert reader.get("1") is None
    assert redis_caches().get("1") is None
    assert writer.get("1") is None


# test_ttl (len drops as values expire). Differs on purpose: an expired value stays in the
# in-process tier for max_stale, served when a loader fails (docs: "When Redis fails").
def test_expired_value_is_kept_for_max_stale() -> None:
    cache = adapted(maxsize=2, ttl=1.0, max_stale=60.0)
    cache[1] = 1
    cache.tick(2)
    assert 1 not in cache
    assert len(cache) == 1

    def failing() -> int:
        raise RuntimeError("vendor down")

    assert cache.cache.get_or_set("1", failing) == 1
    cache.tick(60)
    with pytest.raises(RuntimeError, match="vendor down"):
        cache.cache.get_or_set("1", failing)


# test_ttl (cachetools' expire() drops expired items before evicting live ones). Ours
# evicts in least-recently-used order only (docs/cache.md): an expired entry keeps its
# place until it is the least recently used, and a fresh one used less recently goes
# first. Expiry is lazy, as in most LRU caches with a TTL.
def test_eviction_follows_use_not_expiry() -> None:
    cache = adapted(maxsize=2, max_stale=0.0)
    cache.cache.set("live", 1, ttl=100.0)
    cache.cache.set("dead", 2, ttl=1.0)
    cache.tick(2)  # "dead" expired; with max_stale=0 nothing can serve it
    cache[3] = 3
    assert cache.cache.get("live") is None  # the least recently used went first
    assert cache[3] == 3


# test_ttl_expire / test_ttu_expire: each key expires ttl after its own write.
def test_each_key_expires_ttl_after_its_own_write() -> None:
    cache = adapted(maxsize=3, ttl=3.0)
    cache[1] = 1
    cache.tick()
    cache[2] = 2
    cache.tick()
    cache[3] = 3
    assert (cache[1], cache[2], cache[3]) == (1, 2, 3)

    cache.tick()  # t=3
    assert 1 not in cache
    assert (cache[2], cache[3]) == (2, 3)
    cache.tick()  # t=4
    assert 2 not in cache
    assert cache[3] == 3
    cache.tick()  # t=5
    assert 3 not in cache


# test_ttl_tuple_key / test_ttu_tuple_key: a composite key (a cached function of several
# arguments; ours are strings) expires like any other.
def test_composite_key_expires(clock: ManualClock) -> None:
    cache = RedisCache(maxsize=1, clock=clock)
    calls = Counter()

    @cached(cache, ttl=1.0)
    def answer(a: int, b: int, c: int) -> int:
        calls()
        return 42

    assert answer(1, 2, 3) == 42
    assert answer(1, 2, 3) == 42
    assert calls.count == 1
    clock.advance(1)
    assert answer(1, 2, 3) == 42
    assert calls.count == 2


# test_ttl_datetime. Differs on purpose: a TTL is seconds; a timedelta is a ConfigError.
def test_ttl_must_be_seconds_not_timedelta() -> None:
    cache = adapted(maxsize=1)
    with pytest.raises(ConfigError, match="ttl"):
        cache.cache.set("1", 1, ttl=timedelta(days=1))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="default_ttl"):
        RedisCache(default_ttl=timedelta(days=1))  # type: ignore[arg-type]
    assert len(cache) == 0


# TTLTestCache's default ttl=math.inf (and LRUCache's none): such values never expire.
@pytest.mark.parametrize("ttl", [None, math.inf], ids=["none", "inf"])
def test_ttl_none_or_inf_never_expires(ttl: float | None) -> None:
    cache = adapted(maxsize=1, ttl=ttl)
    cache[1] = 1
    cache.tick(10**9)
    assert cache[1] == 1


# -- TLRU: a TTL per item (test_tlru.py) ------------------------------------------------


# test_ttu: each value has its own time to use; ours is a callable default_ttl of the key
# (here the key is the value, as ttu = t + v + 1), or ttl= per write.
@pytest.mark.parametrize("per_write", [False, True], ids=["default_ttl-callable", "ttl-arg"])
def test_each_value_has_its_own_ttl(per_write: bool) -> None:
    cache = adapted(maxsize=6, ttl=lambda key: float(key) + 1)

    def put(v: int) -> None:
        if per_write:
            cache.cache.set(str(v), v, ttl=v + 1.0)
        else:
            cache[v] = v

    put(1)  # t=0, fresh until 2
    assert cache[1] == 1
    cache.tick()
    assert cache[1] == 1
    put(2)  # t=1, fresh until 4
    assert (cache[1], cache[2]) == (1, 2)
    cache.tick()  # t=2
    assert 1 not in cache
    assert cache[2] == 2
    put(3)  # t=2, fresh until 6
    cache.tick()  # t=3
    assert (cache[2], cache[3]) == (2, 3)
    put(1)  # t=3, fresh until 5
    assert (cache[1], cache[2], cache[3]) == (1, 2, 3)
    cache.tick()  # t=4
    assert cache[1] == 1
    assert 2 not in cache
    assert cache[3] == 3
    cache.tick()  # t=5
    assert 1 not in cache
    assert cache[3] == 3
    cache.tick()  # t=6
    assert 3 not in cache


# test_ttu_expired. Differs on purpose: a TTL that is not > 0 (an item already expired)
# is a ConfigError, not a silent no-op; either way nothing is stored and nothing evicted.
def test_ttl_not_positive_stores_nothing_and_evicts_nothing() -> None:
    cache = adapted(maxsize=1, ttl=lambda key: float(key))
    cache[1] = None
    assert 1 in cache
    for key in (0, -1):
        with pytest.raises(ConfigError, match="ttl"):
            cache[key] = None
        assert key not in cache
        assert 1 in cache
        assert len(cache) == 1
    with pytest.raises(ConfigError, match="ttl"):
        cache.cache.set("2", 2, ttl=0)
    assert 1 in cache


# test_ttu_expired, through `cached`: a callable ttl that gives a result no time to live.
# Differs on purpose (documented: a TTL that is not a positive number raises ConfigError).
def test_cached_ttl_callable_not_positive_is_a_config_error(clock: ManualClock) -> None:
    cache = RedisCache(clock=clock)

    @cached(cache, ttl=lambda n: float(n))
    def ident(n: int) -> int:
        return n

    assert ident(1) == 1
    with pytest.raises(ConfigError, match="ttl"):
        ident(0)
    assert cache.stats.memory_entries == 1


# test_ttu_reverse_insert: keys expire in the order of their deadlines, not of their writes.
def test_keys_expire_by_deadline_not_by_insertion_order() -> None:
    cache = adapted(maxsize=4)
    for v in (3, 2, 1):
        cache.cache.set(str(v), v, ttl=float(v))
    assert (cache[1], cache[2], cache[3]) == (1, 2, 3)
    cache.tick()
    assert 1 not in cache
    assert (cache[2], cache[3]) == (2, 3)
    cache.tick()
    assert 2 not in cache
    assert cache[3] == 3
    cache.tick()
    assert 3 not in cache


# test_ttu_heap_cleanup: rewriting keys many times keeps one entry each, the last value,
# fresh for its TTL from the last write.
def test_rewrites_keep_the_last_value_and_restart_its_ttl() -> None:
    cache = adapted(maxsize=4, ttl=1.0)
    cache[1] = 1
    cache[2] = 2
    for i in range(5):
        cache.tick(0.5)
        cache[1] = 10 + i
        cache[2] = 20 + i
    assert len(cache) == 2
    assert (cache[1], cache[2]) == (14, 24)
    cache[3] = 3
    cache[4] = 4
    assert len(cache) == 4
    cache.tick()
    for key in (1, 2, 3, 4):
        assert key not in cache


# -- the decorator (test_cached.py, test_func.py, test_threading.py) ----------------------


# test_decorator: results are cached per key. Differs on purpose: the default key is the
# arguments' repr, so 1 and 1.0 are two keys (cachetools' hashkey makes them one).
def test_cached_function_is_called_once_per_key(clock: ManualClock) -> None:
    cache = RedisCache(maxsize=2, clock=clock)
    wrapper = cached(cache)(Counter().func)

    assert cache.stats.memory_entries == 0
    assert wrapper(0) == 0
    assert cache.stats.memory_entries == 1
    assert wrapper(1) == 1
    assert cache.stats.memory_entries == 2
    assert wrapper(1) == 1
    assert wrapper(1.0) == 2  # cachetools: 1 (a hit)
    assert wrapper(1.0) == 2
    assert cache.stats.memory_entries == 2


# test_decorator_typed / test_func's test_decorator_typed: values of different types that
# compare equal have different keys (our default key is typed by repr).
def test_default_key_is_typed(clock: ManualClock) -> None:
    cache = RedisCache(clock=clock)
    wrapper = cached(cache)(Counter().func)
    assert [wrapper(0), wrapper(1), wrapper(1), wrapper(1.0), wrapper(1.0), wrapper(True)] == [
        0,
        1,
        1,
        2,
        2,
        3,
    ]


# test_decorator_wrapped: __wrapped__ is the function itself and bypasses the cache; name
# and docstring are kept (test_cachedmethod's test_decorator_wrapped).
def test_wrapped_function_bypasses_the_cache(clock: ManualClock) -> None:
    cache = RedisCache(clock=clock)
    calls = Counter()

    def get(n: int) -> int:
        """docstring"""
        return calls(n)

    wrapper = cached(cache)(get)
    assert wrapper.__wrapped__ is get  # type: ignore[attr-defined]
    assert wrapper.__wrapped__(0) == 0  # type: ignore[attr-defined]
    assert cache.stats.memory_entries == 0
    assert wrapper(0) == 1
    assert wrapper(0) == 1
    assert cache.stats.memory_entries == 1
    assert wrapper.__name__ == "get"
    assert wrapper.__doc__ == "docstring"


# test_decorator_clear (wrapper.cache_clear()): ours is clear(prefix) on the function's
# keys; the function then runs again, and other keys stay.
def test_clearing_a_functions_keys_makes_it_run_again(clock: ManualClock) -> None:
    cache = RedisCache(clock=clock)
    wrapper = cached(cache, key=lambda n: f"counter:{n}")(Counter().func)
    cache.set("other", "kept")

    assert wrapper(0) == 0
    assert wrapper(0) == 0
    assert cache.clear("counter:") == 1
    assert wrapper(0) == 1
    assert cache.get("other") == "kept"


# test_decorator_info / test_func's test_decorator: hits, misses and entries are counted.
# Differs on purpose: counters are the cache's, and they only grow (clear does not reset them).
def test_cached_calls_are_counted_as_hits_and_misses(clock: ManualClock) -> None:
    cache = RedisCache(maxsize=2, clock=clock)
    wrapper = cached(cache)(Counter().func)

    def info() -> tuple[int, int, int, int]:
        stats = cache.stats
        return stats.hits, stats.misses, cache.config.maxsize, stats.memory_entries

    assert info() == (0, 0, 2, 0)
    assert wrapper(0) == 0
    assert info() == (0, 1, 2, 1)
    assert wrapper(1) == 1
    assert info() == (0, 2, 2, 2)
    assert wrapper(0) == 0
    assert info() == (1, 2, 2, 2)
    cache.clear()
    assert info() == (1, 2, 2, 0)  # cachetools: (0, 0, 2, 0)
    assert wrapper(0) == 2
    assert info() == (1, 3, 2, 1)


# test_zero_size_cache_decorator / test_func's test_decorator_nocache and
# test_decorator_unbound. Differs on purpose: a memory-only cache must be bounded
# (maxsize 0 or None is a ConfigError).
@pytest.mark.parametrize("maxsize", [0, None])
def test_memory_only_cache_needs_a_positive_maxsize(maxsize: int | None) -> None:
    with pytest.raises(ConfigError, match="maxsize"):
        RedisCache(maxsize=maxsize)  # type: ignore[arg-type]


# test_zero_size_cache_decorator, on the Redis tier: with maxsize=0 nothing is kept in
# process, and the function still runs once per key (its results live in Redis).
def test_zero_size_tier_caches_in_redis_only(redis_caches: Callable[..., RedisCache]) -> None:
    cache = redis_caches(maxsize=0)
    wrapper = cached(cache, key=lambda n: f"counter:{n}")(Counter().func)
    assert wrapper(0) == 0
    assert cache.stats.memory_entries == 0
    assert wrapper(0) == 0
    assert cache.stats.redis_hits == 1


# NoneWrapperTest / test_func's test_decorator_user_function. Differs on purpose: cached
# needs a RedisCache or AsyncRedisCache (None, or the function itself, is a ConfigError).
def test_cached_needs_a_cache() -> None:
    with pytest.raises(ConfigError, match="cache"):
        cached(None)  # type: ignore[call-overload]
    with pytest.raises(ConfigError, match="cache"):
        cached(Counter().func)  # type: ignore[call-overload]


# test_decorator_cond_error (test_cachedmethod.py): an exception is raised to the caller,
# nothing is cached, and the next call runs the function again (no load left pending).
def test_exception_is_not_cached(clock: ManualClock) -> None:
    cache = RedisCache(clock=clock)
    calls = Counter()

    @cached(cache)
    def failing(n: int) -> int:
        calls()
        raise ValueError("test error")

    for _ in range(2):
        with pytest.raises(ValueError, match="test error"):
            failing(0)
    assert calls.count == 2
    assert cache.stats.memory_entries == 0
    assert cache.stats.loads_in_flight == 0


# test_nospace / test_value_too_large (test_cachedmethod.py): a result the cache cannot
# store is still returned, and the function runs again next time. Ours: a value the
# serializer cannot encode (counted in stats.encode_failures).
def test_result_that_cannot_be_stored_is_still_returned(clock: ManualClock) -> None:
    cache = RedisCache(clock=clock)
    calls = Counter()

    @cached(cache)
    def tags(n: int) -> set[int]:
        calls()
        return {n}

    assert tags(1) == {1}
    assert tags(1) == {1}
    assert calls.count == 2
    assert cache.stats.memory_entries == 0
    assert cache.stats.encode_failures == 2


# test_decorator_needs_rlock: the cache holds no lock while it builds a key or runs the
# function, so a key (repr) or a function that calls the cached function does not deadlock.
def test_cached_function_may_be_called_from_its_key_and_itself(clock: ManualClock) -> None:
    cache = RedisCache(clock=clock)
    calls: list[int] = []

    @cached(cache)
    def fib(n: Any) -> int:
        calls.append(int(n))
        return int(n) if int(n) < 2 else fib(int(n) - 1) + fib(int(n) - 2)

    class Recursive:
        def __int__(self) -> int:
            return 10

        def __repr__(self) -> str:
            fib(3)  # runs while the key of fib(Recursive()) is being built
            return "Recursive(10)"

    assert fib(20) == 6765
    assert sorted(calls) == list(range(21))
    assert fib(Recursive()) == 55
    assert calls.count(10) == 2  # fib(10) and fib(Recursive()) are two keys


# test_cached_stampede (test_threading.py): concurrent calls of one key run the function
# once. Differs on purpose: every caller that got the loaded value counts as a miss
# (docs: a loader's value is a miss), the waiting ones also as coalesced.
def test_concurrent_calls_run_the_function_once(clock: ManualClock) -> None:
    cache = RedisCache(maxsize=1, clock=clock)
    release = threading.Event()
    calls: list[int] = []
    results: list[int] = []
    nthreads = 10

    @cached(cache)
    def slow() -> int:
        calls.append(1)
        release.wait(WAIT)
        return 42

    threads = [threading.Thread(target=lambda: results.append(slow())) for _ in range(nthreads)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: cache.stats.coalesced == nthreads - 1)
    finally:
        release.set()
        for thread in threads:
            thread.join(WAIT)
    assert calls == [1]
    assert results == [42] * nthreads
    stats = cache.stats
    assert (stats.loader_calls, stats.coalesced, stats.misses, stats.hits) == (1, 9, 10, 0)
    assert slow() == 42
    assert cache.stats.hits == 1


# -- keys (test_keys.py, test_cachedmethod.py) --------------------------------------------


def _keyed() -> tuple[Callable[..., int], Counter]:
    cache = RedisCache(clock=ManualClock())
    calls = Counter()

    @cached(cache)
    def func(*args: Any, **kwargs: Any) -> int:
        return calls()

    return func, calls


# test_hashkey (equal arguments, equal keys): the same arguments share one load,
# keyword arguments in any order included.
def test_same_arguments_share_one_key() -> None:
    func, calls = _keyed()
    assert func() == func()
    assert func(1, 2, 3) == func(1, 2, 3)
    assert func(1, 2, 3, x=0) == func(1, 2, 3, x=0)
    assert func(1, x=0, y=1) == func(1, y=1, x=0)
    assert calls.count == 4


# test_hashkey / test_typedkey (different arguments, different keys): order, a keyword's
# value and a keyword's name all tell keys apart.
def test_different_arguments_have_different_keys() -> None:
    func, calls = _keyed()
    results = {
        func(1, 2, 3),
        func(3, 2, 1),
        func(1, 2, 3, x=None),
        func(1, 2, 3, x=0),
        func(1, 2, 3, y=0),
        func(1.0, 2.0, 3.0),  # cachetools' hashkey: equal to (1, 2, 3); ours is typed
    }
    assert len(results) == calls.count == 6


# test_hashkey (hash(key({})) raises TypeError). Differs on purpose: the key is built from
# repr, so an unhashable argument is fine.
def test_unhashable_argument_is_a_valid_key() -> None:
    func, calls = _keyed()
    assert func({}) == func({})
    assert func([1, 2]) == func([1, 2])
    assert calls.count == 2


# test_methodkey / test_typedmethodkey / test_shared_cache / test_decorator_unhashable:
# a method's key leaves out ``self`` when key= says so, so instances share results and
# self need not be hashable. Differs on purpose: without key=, a self whose repr is its
# address is a TypeError (documented), not silently dropped.
def test_method_key_given_by_key_argument(clock: ManualClock) -> None:
    cache = RedisCache(clock=clock)
    calls = Counter()

    class Cached:
        __hash__ = None  # type: ignore[assignment]

        @cached(cache, key=lambda self, value: f"get:{value!r}")
        def get(self, value: Any) -> int:
            return calls()

        @cached(cache)
        def no_key(self, value: Any) -> int:
            return calls()

    first, second = Cached(), Cached()
    assert first.get(0) == 0
    assert second.get(0) == 0
    assert first.get(1) == 1
    assert second.get(1.0) == 2  # typed, like typedmethodkey
    with pytest.raises(TypeError, match="key="):
        first.no_key(0)
    assert calls.count == 3


# -- TTL argument forms (USE_DEFAULT vs explicit), for TTLCache(ttl=...) ---------------


# TTLCache(maxsize, ttl): the cache-wide ttl applies when a write gives none, and a write's
# own ttl overrides it.
@pytest.mark.parametrize(("ttl", "fresh_for"), [(USE_DEFAULT, 2.0), (5.0, 5.0)])
def test_default_ttl_applies_unless_a_write_gives_one(ttl: TTLArg, fresh_for: float) -> None:
    cache = adapted(maxsize=1, ttl=2.0)
    cache.cache.set("1", 1, ttl=ttl)
    cache.tick(fresh_for - 0.5)
    assert cache[1] == 1
    cache.tick(0.5)
    assert 1 not in cache
