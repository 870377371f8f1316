"""The cache's operations, each written once as a generator of Redis requests.

An operation (`get`, `store`, `get_or_load` ...) calls the decisions in
`CacheCore` in their order and yields each piece of I/O it needs as a
request, a tuple whose first item names it:

| request | the face runs | and sends back |
| --- | --- | --- |
| `(GET, rkey)` | `GET rkey` | the reply |
| `(MGET, rkeys)` | `MGET` (per slot on a cluster) | the replies (`NodeFailure`: its node failed) |
| `(EXISTS, rkeys)` | `EXISTS rkeys...` | the count |
| `(TYPES, rkeys)` | `TYPE` of each key, pipelined | the replies |
| `(SET, rkey, data, px)` | `SET rkey data PX px` | the reply |
| `(SET_MANY, prepared)` | a pipeline of `SET`s, errors as replies | the replies |
| `(UNLINK, rkey)` | `UNLINK rkey` | the reply |
| `(CLEAR, pattern)` | `SCAN` + `UNLINK` in batches | the keys removed |
| `(LOAD, factory)` | `factory()` (awaited when awaitable, on the asyncio face) | its value |
| `(FLY, key, steps, join)` | `steps` as the key's single flight (see below) | see below |

What a request raises is thrown back into the operation, which decides what
it means. So `RedisCache` and `AsyncRedisCache` differ only in how they run a
request: directly, or with `await`.

`FLY` asks the face to run `steps` (an operation that returns a `Landing`)
once for every caller of the key: the face registers its waitable object with
`Flights.join` (or `Flights.start_refresh` when `join` is False) and
sends back `(landing, led)`, or None when it did not lead and there is
nothing to wait for: the flight it waited on was abandoned (``join``, then
the operation looks again) or another is under way (an early refresh).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping
from typing import Any, TypeAlias

from .._redis import REDIS_ERRORS
from ..errors import BackendError
from ._config import TTLArg
from ._entry import Entry
from ._flights import Landing
from ._policy import CacheCore, NodeFailure
from ._stats import CachedValue, Source

__all__ = [
    "CLEAR",
    "EXISTS",
    "FLY",
    "GET",
    "LOAD",
    "MGET",
    "SET",
    "SET_MANY",
    "TYPES",
    "UNLINK",
    "NodeFailure",
    "Steps",
    "node_by_node",
    "node_by_node_async",
]


def _by_node(client: Any, rkeys: list[str]) -> list[list[int]]:
    """The positions of ``rkeys`` grouped by the cluster node serving each."""
    groups: dict[str, list[int]] = {}
    for index, rkey in enumerate(rkeys):
        groups.setdefault(client.get_node_from_key(rkey).name, []).append(index)
    return list(groups.values())


def node_by_node(
    client: Any,
    rkeys: list[str],
    run: Callable[[list[int]], list[Any]],
    failed: Callable[[BaseException], Any],
) -> list[Any]:
    """After one cluster node failed a multi-slot request: ``run`` it node by node.

    ``run(positions)`` answers for the keys at those positions; a node that
    fails answers ``failed(error)`` for each of its keys, so only they count
    as failed. Returns the answers in the order of ``rkeys``.
    """
    replies: list[Any] = [None] * len(rkeys)
    for indexes in _by_node(client, rkeys):
        try:
            found = run(indexes)
        except REDIS_ERRORS as exc:
            found = [failed(exc)] * len(indexes)
        for i, reply in zip(indexes, found, strict=True):
            replies[i] = reply
    return replies


async def node_by_node_async(
    client: Any,
    rkeys: list[str],
    run: Callable[[list[int]], Awaitable[list[Any]]],
    failed: Callable[[BaseException], Any],
) -> list[Any]:
    """The asyncio form of `node_by_node`."""
    replies: list[Any] = [None] * len(rkeys)
    for indexes in _by_node(client, rkeys):
        try:
            found = await run(indexes)
        except REDIS_ERRORS as exc:
            found = [failed(exc)] * len(indexes)
        for i, reply in zip(indexes, found, strict=True):
            replies[i] = reply
    return replies


GET = "GET"
MGET = "MGET"
EXISTS = "EXISTS"
TYPES = "TYPES"
SET = "SET"
SET_MANY = "SET_MANY"
UNLINK = "UNLINK"
CLEAR = "CLEAR"
LOAD = "LOAD"
FLY = "FLY"


Request: TypeAlias = tuple[Any, ...]
Steps: TypeAlias = Generator[Request, Any, Any]
Found: TypeAlias = tuple[Entry | None, Source, bool]
Served: TypeAlias = tuple[Any, Source, Entry | None]


# -- reads -------------------------------------------------------------------------------


def get(core: CacheCore, key: str, default: Any) -> Steps:
    """`get` past the in-process tier's fresh hit (`CacheCore.hit`)."""
    if core.lean and core.gate.available:
        # Redis only (maxsize=0) and Redis up: the lean path, measured against a raw GET.
        rkey = core.prefix + key
        try:
            raw = yield (GET, rkey)
        except REDIS_ERRORS as exc:
            core.redis_failed(exc, "GET")
            core.counters.misses += 1
            return default
        core.redis_ok()
        return core.take(key, rkey, raw, default)
    now = core.monotonic()
    found = core.serve(*(yield from _find(core, key, now, core.recall(key))), now)
    return default if found is None else found.value


def _find(
    core: CacheCore, key: str, now: float, local: Entry | None
) -> Generator[Request, Any, Found]:
    """Ask Redis when the in-process entry ``local`` does not settle it.

    Returns (entry, its source, degraded: Redis was skipped or failed).
    """
    if not core.has_redis or (local is not None and now < local.check_at):
        return local, "memory", False
    if not core.admit():
        return local, "memory", True
    rkey = core.redis_key(key)
    seen = core.writes
    try:
        raw = yield (GET, rkey)
    except REDIS_ERRORS as exc:
        core.redis_failed(exc, "GET")
        return local, "memory", True
    core.redis_ok()
    return core.merge(key, rkey, raw, local, now, seen)


def get_with_meta(
    core: CacheCore, key: str, factory: Callable[[], Any] | None, ttl: TTLArg
) -> Generator[Request, Any, CachedValue[Any] | None]:
    if factory is not None:
        value, source, served = yield from get_or_load(core, key, factory, ttl)
        return core.meta_of(value, source, served)
    now = core.monotonic()
    entry, source, degraded = yield from _find(core, key, now, core.recall(key))
    found = core.serve(entry, source, degraded, now)
    return None if found is None else core.meta(found, now, source, degraded=degraded)


def get_many(core: CacheCore, keys: Iterable[str]) -> Generator[Request, Any, dict[str, Any]]:
    now = core.monotonic()
    wanted, result = core.split_local(keys, now)
    if not wanted:
        return result
    raws: list[Any] | None = None
    seen = core.writes
    if core.admit():
        rkeys = [core.redis_key(k) for k, _ in wanted]
        try:
            raws = yield (MGET, rkeys)
            assert raws is not None
            failed = next((raw for raw in raws if isinstance(raw, NodeFailure)), None)
            if failed is not None:  # a cluster node: the other keys were read
                core.redis_failed(failed.error, "MGET")
            absent = [rkey for rkey, raw in zip(rkeys, raws, strict=True) if raw is None]
            # MGET answers nil for a key of another type too: EXISTS tells (and only then TYPE).
            if absent and (yield (EXISTS, absent)):
                core.wrong_types(absent, (yield (TYPES, absent)))
        except REDIS_ERRORS as exc:
            raws = None
            core.redis_failed(exc, "MGET")
        else:
            core.redis_ok()
    core.merge_many(wanted, raws, now, result, seen)
    return result


# -- writes ------------------------------------------------------------------------------


def set_(core: CacheCore, key: str, value: Any, ttl: TTLArg) -> Generator[Request, Any, bool]:
    return (yield from store(core, key, value, core.resolve_ttl(key, ttl), 0.0))


def store(
    core: CacheCore,
    key: str,
    value: Any,
    ttl: float | None,
    delta: float,
    reach_redis: bool = True,
    loaded: bool = False,
) -> Generator[Request, Any, bool]:
    now = core.monotonic()
    # Encoded even without Redis: a memory-only cache refuses what the serializer
    # cannot store, so a value that works in tests works with Redis too.
    prepared = core.prepare(key, value, ttl, delta, now, loaded=loaded)
    if prepared is None or not core.has_redis:  # None: a loaded value it cannot encode
        return False
    rkey, data, px, entry = prepared
    # After a failed GET (not reach_redis) the SET would only wait out the same timeout.
    if not reach_redis or not core.admit():
        core.set_failed()
        return False
    try:
        yield (SET, rkey, data, px)
    except REDIS_ERRORS as exc:
        core.redis_failed(exc, "SET")
        core.set_failed()
        return False
    core.stored(entry)
    return True


def set_many(
    core: CacheCore, mapping: Mapping[str, Any], ttl: TTLArg
) -> Generator[Request, Any, bool]:
    now = core.monotonic()
    items = [(k, v, core.resolve_ttl(k, ttl)) for k, v in mapping.items()]
    prepared = core.prepare_many(items, now)
    if not core.has_redis:
        return False
    if not prepared:
        return True
    if not core.admit():
        core.set_failed(len(prepared))
        return False
    try:
        replies = yield (SET_MANY, prepared)
    except REDIS_ERRORS as exc:
        core.redis_failed(exc, "SET (pipeline)")
        core.set_failed(len(prepared))
        return False
    core.redis_ok()
    return core.pipeline_done(prepared, replies)


def delete(core: CacheCore, key: str) -> Generator[Request, Any, bool]:
    core.forget(key)
    if not core.has_redis or not core.admit():
        return False
    try:
        yield (UNLINK, core.redis_key(key))
    except REDIS_ERRORS as exc:
        core.redis_failed(exc, "UNLINK")
        return False
    core.redis_ok()
    # Again: a read that started before the UNLINK may have kept the old value meanwhile.
    core.forget(key)
    return True


def clear(core: CacheCore, prefix: str) -> Generator[Request, Any, int]:
    removed_local = core.forget_prefix(prefix)
    if not core.has_redis:
        return removed_local
    if not core.admit():
        raise BackendError(f"redis at {core.target} is down; only the in-process tier was cleared")
    try:
        removed: int = yield (CLEAR, core.scan_pattern(prefix))
    except REDIS_ERRORS as exc:
        raise core.redis_failed(exc, "SCAN/UNLINK") from exc
    core.redis_ok()
    # Again, as in delete: a read that started before the UNLINK may have kept a value.
    core.forget_prefix(prefix)
    return removed


# -- loaders -----------------------------------------------------------------------------


def get_or_load(
    core: CacheCore, key: str, factory: Callable[[], Any], ttl: TTLArg
) -> Generator[Request, Any, Served]:
    """(value, source, the entry served or None when the loader produced it)."""
    while True:
        now = core.monotonic()
        local = core.recall(key)
        if local is not None and now < local.check_at:
            core.counters.memory_hits += 1
            return (yield from _maybe_refresh(core, key, factory, ttl, local, "memory", now))
        # Everything past the in-process tier (the Redis GET, the decision, the load)
        # happens inside one flight per key: a caller that looked before the previous
        # flight stored its value joins or starts a flight that looks again.
        flown = yield (FLY, key, _lead(core, key, factory, ttl), True)
        if flown is None:  # the flight waited on was abandoned: look again
            continue
        landing, led = flown
        outcome = core.landed(landing, local)
        if outcome is None:
            raise landing.failure()
        if led and outcome[1] == "redis" and outcome[2] is not None:
            return (yield from _maybe_refresh(core, key, factory, ttl, outcome[2], "redis", now))
        return outcome


def _lead(
    core: CacheCore, key: str, factory: Callable[[], Any], ttl: TTLArg
) -> Generator[Request, Any, Landing]:
    """A flight's work: look the key up in Redis, and run the loader when that finds nothing."""
    now = core.monotonic()
    entry, source, degraded = yield from _find(core, key, now, core.recall(key))
    landing = core.looked_up(entry, source, degraded, now)
    if landing is not None:
        return landing
    try:
        value = yield from _load(core, key, factory, ttl, reach_redis=not degraded)
    except Exception as exc:
        return Landing(None, "loader", None, entry, exc)
    return Landing(value, "loader", None, entry, None)


def _maybe_refresh(
    core: CacheCore,
    key: str,
    factory: Callable[[], Any],
    ttl: TTLArg,
    entry: Entry,
    source: Source,
    now: float,
) -> Generator[Request, Any, Served]:
    """XFetch: refresh a fresh value early unless another caller is already loading it."""
    if not core.should_refresh_early(entry, now):
        return entry.value, source, entry
    flown = yield (FLY, key, _refresh(core, key, factory, ttl, entry, source), False)
    if flown is None:
        return entry.value, source, entry
    landing = flown[0]
    return landing.value, landing.source, landing.entry


def _refresh(
    core: CacheCore,
    key: str,
    factory: Callable[[], Any],
    ttl: TTLArg,
    entry: Entry,
    source: Source,
) -> Generator[Request, Any, Landing]:
    try:
        value = yield from _load(core, key, factory, ttl)
    except Exception:  # a failed early refresh keeps serving the current value
        return Landing(entry.value, source, entry, None, None)
    return Landing(value, "loader", None, None, None)


def _load(
    core: CacheCore, key: str, factory: Callable[[], Any], ttl: TTLArg, *, reach_redis: bool = True
) -> Generator[Request, Any, Any]:
    core.counters.loader_calls += 1
    started = core.monotonic()
    value = yield (LOAD, factory)
    delta = core.monotonic() - started
    yield from store(core, key, value, core.resolve_ttl(key, ttl), delta, reach_redis, loaded=True)
    return value
