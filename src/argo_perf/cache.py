"""A two-tier cache: a bounded in-process tier in front of Redis that survives Redis outages.

:class:`RedisCache` (redis-py) and :class:`AsyncRedisCache` (redis.asyncio) are
thin faces over one policy (:mod:`argo_perf._cache_core`): they read and write
Redis, the core decides what is fresh, what may be served stale, what the
bytes in Redis mean and whether Redis may be touched at all.

Example:
    >>> from argo_perf import RedisCache
    >>> cache = RedisCache()  # memory-only; pass a redis:// URL for the Redis tier
    >>> cache.set("AAPL", 231.5, ttl=10)
    False
    >>> cache.get("AAPL")
    231.5
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
import random
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeAlias, TypeVar, cast, overload

import redis.asyncio.cluster
import redis.cluster
from redis.exceptions import RedisClusterException
from typing_extensions import ParamSpec

from ._cache_core import (
    USE_DEFAULT,
    CacheCore,
    CachedValue,
    CacheStats,
    Entry,
    Landing,
    Serializer,
    Source,
    TTLArg,
    UseDefault,
    _check_ttl,
)
from ._redis import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_SOCKET_TIMEOUT,
    REDIS_ERRORS,
    Admission,
    AsyncRedisClient,
    SyncRedisClient,
    async_client,
    describe_client,
    redact_url,
    sync_client,
    to_backend_error,
)
from .clock import Clock
from .errors import BackendError, ConfigError

__all__ = [
    "USE_DEFAULT",
    "AsyncRedisCache",
    "CacheStats",
    "CachedValue",
    "RedisCache",
    "Serializer",
    "UseDefault",
    "cached",
    "get_redis_cache",
]

logger = logging.getLogger("argo_perf.cache")

T = TypeVar("T")
P = ParamSpec("P")

_SCAN_COUNT = 500

# What a Redis call may raise: redis-py's errors, socket errors, and cluster errors
# such as a slot no node covers (RedisClusterException is not a RedisError).
_ERRORS: tuple[type[BaseException], ...] = (*REDIS_ERRORS, RedisClusterException)


def _target(url_or_client: object) -> str:
    if url_or_client is None:
        return "memory"
    if isinstance(url_or_client, str):
        return redact_url(url_or_client)
    return describe_client(url_or_client)  # type: ignore[arg-type]


def _check_bytes_client(client: object) -> None:
    """Refuse a client that decodes replies: every value would read back as a decode failure."""
    get_encoder = getattr(client, "get_encoder", None)
    if get_encoder is not None and getattr(get_encoder(), "decode_responses", False):
        raise ConfigError(
            "url_or_client",
            _target(client),
            "must not decode responses (decode_responses=True): the cache stores bytes",
        )


class _Face:
    """What both faces share that is not I/O: construction, properties, repr."""

    _core: CacheCore

    def _build_core(
        self,
        url_or_client: object,
        *,
        namespace: str,
        version: int,
        default_ttl: float | Callable[[str], float | None] | None,
        max_stale: float,
        maxsize: int,
        local_ttl: float | None,
        jitter: float,
        early_refresh: float,
        serializer: str | Serializer,
        signing_key: bytes | None,
        failure_threshold: int,
        probe_interval: float,
        clock: Clock | None,
        rng: random.Random | None,
    ) -> None:
        self._core = CacheCore(
            has_redis=url_or_client is not None,
            target=_target(url_or_client),
            namespace=namespace,
            version=version,
            default_ttl=default_ttl,
            max_stale=max_stale,
            maxsize=maxsize,
            local_ttl=local_ttl,
            jitter=jitter,
            early_refresh=early_refresh,
            serializer=serializer,
            signing_key=signing_key,
            failure_threshold=failure_threshold,
            probe_interval=probe_interval,
            clock=clock,
            rng=rng,
        )

    @property
    def backend(self) -> str:
        """``"redis"`` while Redis is used; ``"memory"`` when memory-only or Redis is down."""
        return self._core.backend

    @property
    def stats(self) -> CacheStats:
        """A snapshot of the counters (see :class:`CacheStats`)."""
        return self._core.stats()

    @property
    def namespace(self) -> str:
        """The key prefix's namespace; Redis keys are ``{namespace}:v{version}:{key}``."""
        return self._core.namespace

    @property
    def version(self) -> int:
        """The schema version in every Redis key."""
        return self._core.version

    def redis_key(self, key: str) -> str:
        """The Redis key under which ``key`` is stored."""
        return self._core.redis_key(key)

    def __repr__(self) -> str:
        core = self._core
        return (
            f"{type(self).__name__}(target={core.target!r}, namespace={core.namespace!r}, "
            f"version={core.version}, backend={core.backend!r})"
        )


class RedisCache(_Face):
    """A thread-safe two-tier cache: bounded in-process LRU tier in front of Redis (redis-py).

    Reads try the in-process tier first (a fresh hit costs well under a
    microsecond), then Redis; values read from Redis are kept in the
    in-process tier until they expire. Writes go to both tiers.

    When Redis fails (refused, or no answer within ``socket_timeout``), the
    call falls back to the in-process tier and the failure is counted. After
    ``failure_threshold`` consecutive failures no call touches Redis any more:
    a single background probe per ``probe_interval`` seconds pings it and the
    cache returns to Redis by itself when it answers. Meanwhile ``get``
    serves what the in-process tier holds, including values past their TTL
    within ``max_stale`` seconds (marked stale by :meth:`get_with_meta`).
    Bad bytes in Redis (garbage, another Redis type, a value that fails its
    signature) are a counted miss and a log line, never an exception.

    Args:
        url_or_client: a ``redis://``, ``rediss://`` or ``unix://`` URL, an existing
            ``redis.Redis`` client (used as it is, not closed by :meth:`close`), or
            None (default) for a memory-only cache.
        namespace: first part of every Redis key (default ``"argo_perf"``).
        version: schema version in every Redis key (default 1): bump it when the
            cached values change shape, and old and new services can share a Redis.
        default_ttl: seconds a value stays fresh when ``set`` is not given a
            ``ttl`` (default 60.0); None means "never expires"; a callable
            ``key -> seconds`` (e.g. ``AdaptiveTTL.ttl_for``) is asked per key.
        max_stale: seconds past its TTL a value may still be served when Redis
            or a loader fails (default 60.0; 0 disables serving stale). Redis keeps
            values ``ttl + max_stale`` seconds so other processes can do the same.
        maxsize: entries in the in-process tier (default 10 000, least recently
            used evicted first); 0 turns the tier off (Redis only).
        local_ttl: at most this many seconds the in-process tier answers for a key
            without asking Redis again (default None: until the value expires), so
            writes by other processes are seen within ``local_ttl``.
        jitter: a fraction in [0, 1) (default 0): each TTL is shortened by up to
            this fraction at random, so keys written together do not expire together.
        early_refresh: the XFetch ``beta`` (default 0: off; 1.0 is the usual value).
            With it, ``get_or_set`` and :func:`cached` refresh a hot key before it
            expires, with a probability that grows as expiry nears and with the
            time the loader took.
        serializer: ``"json"`` (default), ``"pickle"`` (requires ``signing_key``)
            or a :class:`Serializer`. Values are stored in a versioned envelope.
        signing_key: bytes (at least 16) for an HMAC-SHA256 over every stored
            value and its key; values that do not verify are ignored.
        socket_timeout: seconds a Redis command may take (default 0.05), for URLs.
        connect_timeout: seconds a connect may take (default 0.05), for URLs.
        failure_threshold: consecutive Redis failures before Redis is skipped (default 3).
        probe_interval: seconds between probes while Redis is skipped (default 1.0).
        clock: the time source (default :class:`~argo_perf.SystemClock`).
        rng: the random source for jitter and early refresh (default a new ``random.Random``).

    Raises:
        ConfigError: a parameter is out of range, ``"pickle"`` without a
            ``signing_key``, or ``url_or_client`` is not a redis URL or sync client
            (or is a client built with ``decode_responses=True``).

    Example:
        >>> cache = RedisCache(namespace="prices", default_ttl=10.0)
        >>> cache.get_or_set("BTC-USD", lambda: 97_000.0)
        97000.0
        >>> cache.get_with_meta("BTC-USD").source
        'memory'
    """

    def __init__(
        self,
        url_or_client: str | SyncRedisClient | None = None,
        *,
        namespace: str = "argo_perf",
        version: int = 1,
        default_ttl: float | Callable[[str], float | None] | None = 60.0,
        max_stale: float = 60.0,
        maxsize: int = 10_000,
        local_ttl: float | None = None,
        jitter: float = 0.0,
        early_refresh: float = 0.0,
        serializer: str | Serializer = "json",
        signing_key: bytes | None = None,
        socket_timeout: float | None = DEFAULT_SOCKET_TIMEOUT,
        connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
        failure_threshold: int = 3,
        probe_interval: float = 1.0,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._build_core(
            url_or_client,
            namespace=namespace,
            version=version,
            default_ttl=default_ttl,
            max_stale=max_stale,
            maxsize=maxsize,
            local_ttl=local_ttl,
            jitter=jitter,
            early_refresh=early_refresh,
            serializer=serializer,
            signing_key=signing_key,
            failure_threshold=failure_threshold,
            probe_interval=probe_interval,
            clock=clock,
            rng=rng,
        )
        self._client: SyncRedisClient | None = None
        self._owned = False
        if url_or_client is not None:
            self._client, self._owned = sync_client(
                url_or_client, socket_timeout=socket_timeout, connect_timeout=connect_timeout
            )
            _check_bytes_client(self._client)
        self._flights: dict[str, _Flight] = {}
        self._flights_lock = threading.Lock()
        self._probe_thread: threading.Thread | None = None

    # -- reads ---------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """Return the fresh value for ``key``, or ``default``.

        In-process tier first, then Redis. While Redis is failing or skipped, a
        value past its TTL but within ``max_stale`` is returned too. Never raises
        for Redis trouble or bad data in Redis.
        """
        core = self._core
        memory = core.memory
        entry: Entry | None = None
        if memory is not None:
            with core.lock:
                # try/except, not memory.get or contextlib.suppress: the cheapest hit path.
                try:  # noqa: SIM105
                    entry = memory[key]
                except KeyError:
                    pass
            if entry is not None and core.monotonic() < entry.check_at:
                core.counters.memory_hits += 1
                return entry.value
        elif self._client is not None and core.gate.available:
            # Redis only (maxsize=0) and Redis up: the lean path, measured against a raw GET.
            rkey = core.prefix + key
            try:
                raw = self._client.get(rkey)
            except _ERRORS as exc:
                core.redis_failed(exc, "GET")
                core.counters.misses += 1
                return default
            core.redis_ok()
            return core.take(key, rkey, raw, default)
        now = core.monotonic()
        found = core.serve(*self._find(key, now, entry), now)
        return default if found is None else found.value

    def get_with_meta(
        self,
        key: str,
        factory: Callable[[], Any] | None = None,
        ttl: TTLArg = USE_DEFAULT,
    ) -> CachedValue | None:
        """Like :meth:`get`, but return the value with its age, source and staleness (or None).

        With a ``factory`` it behaves like :meth:`get_or_set` and never returns
        None: ``source`` is ``"loader"`` when the factory produced the value, and
        ``stale`` is True when the factory failed and an older value was served.

        Example:
            >>> cache = RedisCache()
            >>> cache.get_with_meta("AAPL", lambda: 231.5).source
            'loader'
            >>> cache.get_with_meta("AAPL").source
            'memory'
        """
        core = self._core
        if factory is not None:
            value, source, served = self._get_or_load(key, factory, ttl)
            return core.meta_of(value, source, served)
        now = core.monotonic()
        entry, source, degraded = self._find(key, now, core.recall(key))
        found = core.serve(entry, source, degraded, now)
        return None if found is None else core.meta(found, now, source)

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Return ``{key: value}`` for the keys that have a value; missing keys are left out.

        The in-process tier answers first; the rest are fetched with one MGET.
        """
        core = self._core
        now = core.monotonic()
        wanted, result = core.split_local(keys, now)
        if not wanted:
            return result
        raws: list[Any] | None = None
        seen = core.writes
        if self._client is not None and self._admit():
            try:
                raws = self._mget([core.redis_key(k) for k, _ in wanted])
            except _ERRORS as exc:
                core.redis_failed(exc, "MGET")
            else:
                core.redis_ok()
        core.merge_many(wanted, raws, now, result, seen)
        return result

    def _mget(self, rkeys: list[str]) -> list[Any]:
        """MGET (per slot on a cluster); keys MGET could not read are checked for another type."""
        client = self._client
        assert client is not None
        if isinstance(client, redis.cluster.RedisCluster):
            raws = client.mget_nonatomic(rkeys)
        else:
            raws = cast(list[Any], client.mget(rkeys))
        absent = [rkey for rkey, raw in zip(rkeys, raws, strict=True) if raw is None]
        # MGET answers nil for a key of another type too: EXISTS tells (and only then TYPE).
        if absent and client.exists(*absent):
            pipe = client.pipeline(transaction=False)
            for rkey in absent:
                pipe.type(rkey)
            self._core.wrong_types(absent, pipe.execute())
        return raws

    def _admit(self) -> bool:
        decision = self._core.admit()
        if decision is Admission.PROBE:
            self._start_probe()
        return decision is Admission.CALL

    def _find(self, key: str, now: float, local: Entry | None) -> tuple[Entry | None, Source, bool]:
        """Ask Redis when the in-process entry ``local`` does not settle it.

        Returns (entry, its source, degraded: Redis was skipped or failed).
        """
        core = self._core
        if self._client is None or (local is not None and now < local.check_at):
            return local, "memory", False
        if not self._admit():
            return local, "memory", True
        rkey = core.redis_key(key)
        seen = core.writes
        try:
            raw = self._client.get(rkey)
        except _ERRORS as exc:
            core.redis_failed(exc, "GET")
            return local, "memory", True
        core.redis_ok()
        return core.merge(key, rkey, raw, local, now, seen)

    def _start_probe(self) -> None:
        # The probe runs off the caller's thread so no caller waits for a frozen Redis.
        thread = threading.Thread(target=self._probe, name="argo-perf-cache-probe", daemon=True)
        self._probe_thread = thread
        try:
            thread.start()
        except RuntimeError as exc:  # no new threads (e.g. at interpreter shutdown)
            self._core.probe_failed(exc)  # the gate must hear back; the caller skips Redis

    def _probe(self) -> None:
        assert self._client is not None
        try:
            self._client.ping()
        except BaseException as exc:  # the gate must hear back, whatever happened
            self._core.probe_failed(exc)
        else:
            self._core.redis_ok()

    # -- writes --------------------------------------------------------------------

    def set(self, key: str, value: Any, ttl: TTLArg = USE_DEFAULT) -> bool:
        """Store ``value`` under ``key`` in both tiers; return True when it reached Redis.

        ``ttl``: seconds, None (never expires), a callable ``key -> seconds``, or
        :data:`USE_DEFAULT` (default: the cache's ``default_ttl``). A False
        return means the value is held by the in-process tier only (Redis down,
        out of memory, or a memory-only cache); it is counted in
        ``stats.redis_set_failures`` when Redis was configured.

        Raises:
            TypeError: the serializer cannot encode ``value``.
            ConfigError: the TTL (or what a TTL callable returned) is not > 0 seconds.
        """
        core = self._core
        return self._store(key, value, core.resolve_ttl(key, ttl), 0.0)

    def _store(
        self,
        key: str,
        value: Any,
        ttl: float | None,
        delta: float,
        reach_redis: bool = True,
        loaded: bool = False,
    ) -> bool:
        core = self._core
        now = core.monotonic()
        if self._client is None:
            core.store_local(key, value, ttl, delta, now)
            return False
        prepared = core.prepare(key, value, ttl, delta, now, loaded=loaded)
        if prepared is None:  # a loaded value the serializer cannot encode
            return False
        rkey, data, px, entry = prepared
        if not reach_redis or not self._admit():
            core.set_failed()
            return False
        try:
            self._client.set(rkey, data, px=px)
        except _ERRORS as exc:
            core.redis_failed(exc, "SET")
            core.set_failed()
            return False
        core.stored(entry)
        return True

    def set_many(self, mapping: Mapping[str, Any], ttl: TTLArg = USE_DEFAULT) -> bool:
        """Store every item (one Redis pipeline); return True when all reached Redis."""
        core = self._core
        now = core.monotonic()
        items = [(k, v, core.resolve_ttl(k, ttl)) for k, v in mapping.items()]
        if self._client is None:
            for k, v, t in items:
                core.store_local(k, v, t, 0.0, now)
            return False
        prepared = core.prepare_many(items, now)
        if not prepared:
            return True
        if not self._admit():
            core.set_failed(len(prepared))
            return False
        pipe = self._client.pipeline(transaction=False)
        for rkey, data, px, _ in prepared:
            pipe.set(rkey, data, px=px)
        try:
            replies = pipe.execute(raise_on_error=False)
        except _ERRORS as exc:
            core.redis_failed(exc, "SET (pipeline)")
            core.set_failed(len(prepared))
            return False
        core.redis_ok()
        return core.pipeline_done(prepared, replies)

    def delete(self, key: str) -> bool:
        """Remove ``key`` from both tiers; return True when the delete reached Redis.

        When it did not (Redis down, or a memory-only cache), only the
        in-process copy is gone and Redis may still hold the value.
        """
        core = self._core
        core.forget(key)
        if self._client is None or not self._admit():
            return False
        try:
            self._client.unlink(core.redis_key(key))
        except _ERRORS as exc:
            core.redis_failed(exc, "UNLINK")
            return False
        core.redis_ok()
        # Again: a read that started before the UNLINK may have kept the old value meanwhile.
        core.forget(key)
        return True

    def clear(self, prefix: str = "") -> int:
        """Remove every key starting with ``prefix`` in this namespace and version.

        Redis keys are found with SCAN (never KEYS) and removed with UNLINK.
        Returns the number of Redis keys removed (the in-process entries removed
        for a memory-only cache).

        Raises:
            BackendError: Redis could not be reached (the in-process tier is cleared anyway).
        """
        core = self._core
        removed_local = core.forget_prefix(prefix)
        if self._client is None:
            return removed_local
        if not self._admit():
            raise BackendError(
                f"redis at {core.target} is down; only the in-process tier was cleared"
            )
        removed = 0
        try:
            batch: list[bytes] = []
            for rkey in self._client.scan_iter(match=core.scan_pattern(prefix), count=_SCAN_COUNT):
                batch.append(rkey)
                if len(batch) >= _SCAN_COUNT:
                    removed += cast(int, self._client.unlink(*batch))  # type: ignore[redundant-cast,unused-ignore]
                    batch.clear()
            if batch:
                removed += cast(int, self._client.unlink(*batch))  # type: ignore[redundant-cast,unused-ignore]
        except _ERRORS as exc:
            core.redis_failed(exc, "SCAN/UNLINK")
            raise to_backend_error(exc, core.target) from exc
        core.redis_ok()
        # Again, as in delete: a read that started before the UNLINK may have kept a value.
        core.forget_prefix(prefix)
        return removed

    # -- loaders -------------------------------------------------------------------

    def get_or_set(self, key: str, factory: Callable[[], T], ttl: TTLArg = USE_DEFAULT) -> T:
        """Return the fresh value for ``key``, or call ``factory()`` once, store and return it.

        Concurrent callers missing the same key wait for one ``factory`` call
        (single flight: one call per key per expiry, the Redis lookup included).
        When the lookup's GET failed, the value is kept in the in-process tier
        without trying Redis again for the SET. A value the serializer cannot
        encode is returned but not cached (``stats.encode_failures``). When
        ``factory`` raises, a value within ``max_stale`` is returned instead;
        without one the exception propagates to every waiting caller. A caller
        interrupted while loading (KeyboardInterrupt, SystemExit) lets a waiting
        caller load instead of leaving it hanging.
        """
        return cast(T, self._get_or_load(key, factory, ttl)[0])

    def _get_or_load(
        self, key: str, factory: Callable[[], Any], ttl: TTLArg
    ) -> tuple[Any, Source, Entry | None]:
        """(value, source, the entry served or None when the loader produced it)."""
        core = self._core
        while True:
            now = core.monotonic()
            local = core.recall(key)
            if local is not None and now < local.check_at:
                core.counters.memory_hits += 1
                return self._maybe_refresh(key, factory, ttl, local, "memory", now)
            # Everything past the in-process tier (the Redis GET, the decision, the load)
            # happens inside one flight per key: a caller that looked before the previous
            # flight stored its value joins or starts a flight that looks again.
            with self._flights_lock:
                flight = self._flights.get(key)
                leader = flight is None
                if flight is None:
                    flight = self._flights[key] = _Flight()
            if leader:
                landing = self._lead(key, factory, ttl, flight)
            else:
                core.counters.coalesced += 1
                flight.done.wait()
                if flight.abandoned:
                    continue
                landing = flight.landing
            outcome = core.landed(landing, local)
            if outcome is None:
                raise landing.failure()
            if leader and outcome[1] == "redis" and outcome[2] is not None:
                return self._maybe_refresh(key, factory, ttl, outcome[2], "redis", now)
            return outcome

    def _lead(self, key: str, factory: Callable[[], Any], ttl: TTLArg, flight: _Flight) -> Landing:
        core = self._core
        try:
            now = core.monotonic()
            entry, source, degraded = self._find(key, now, core.recall(key))
            landing = core.looked_up(entry, source, now)
            if landing is None:
                try:
                    value = self._call_loader(key, factory, ttl, reach_redis=not degraded)
                except Exception as exc:
                    landing = Landing(None, "loader", None, entry, exc)
                else:
                    landing = Landing(value, "loader", None, entry, None)
            flight.landing = landing
            return landing
        except BaseException:
            flight.abandoned = True
            raise
        finally:
            with self._flights_lock:
                if self._flights.get(key) is flight:
                    del self._flights[key]
            flight.done.set()

    def _maybe_refresh(
        self,
        key: str,
        factory: Callable[[], Any],
        ttl: TTLArg,
        entry: Entry,
        source: Source,
        now: float,
    ) -> tuple[Any, Source, Entry | None]:
        """XFetch: refresh a fresh value early unless another caller is already loading it."""
        core = self._core
        if not core.should_refresh_early(entry, now):
            return entry.value, source, entry
        with self._flights_lock:
            if key in self._flights:
                return entry.value, source, entry
            flight = self._flights[key] = _Flight()
        core.counters.early_refreshes += 1
        landing = Landing(entry.value, source, entry, None, None)
        try:
            landing = Landing(self._call_loader(key, factory, ttl), "loader", None, None, None)
        except Exception:  # a failed early refresh keeps serving the current value
            pass
        except BaseException:
            flight.abandoned = True
            raise
        finally:
            flight.landing = landing
            with self._flights_lock:
                if self._flights.get(key) is flight:
                    del self._flights[key]
            flight.done.set()
        return landing.value, landing.source, landing.entry

    def _call_loader(
        self, key: str, factory: Callable[[], Any], ttl: TTLArg, *, reach_redis: bool = True
    ) -> Any:
        core = self._core
        core.counters.loader_calls += 1
        started = core.monotonic()
        value = factory()
        delta = core.monotonic() - started
        # After a failed GET the SET would only wait out the same timeout again.
        self._store(key, value, core.resolve_ttl(key, ttl), delta, reach_redis, loaded=True)
        return value

    # -- lifecycle -----------------------------------------------------------------

    def close(self) -> None:
        """Close the Redis client when this cache created it from a URL (idempotent)."""
        if self._client is not None and self._owned:
            self._client.close()

    def __enter__(self) -> RedisCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncRedisCache(_Face):
    """The asyncio twin of :class:`RedisCache` over ``redis.asyncio`` (same policy, same options).

    Every method that may touch Redis is a coroutine; the in-process tier and
    the outage handling behave exactly as in :class:`RedisCache`. Use one
    instance per event loop. ``get_or_set`` takes a factory returning an
    awaitable (an ``async def``) or a plain value; a caller cancelled while
    waiting for a shared load does not cancel the load for the others.

    Example:
        >>> import asyncio
        >>> async def main():
        ...     cache = AsyncRedisCache()  # memory-only
        ...     await cache.set("ETH-USD", 3400.0, ttl=10)
        ...     return await cache.get("ETH-USD")
        >>> asyncio.run(main())
        3400.0
    """

    def __init__(
        self,
        url_or_client: str | AsyncRedisClient | None = None,
        *,
        namespace: str = "argo_perf",
        version: int = 1,
        default_ttl: float | Callable[[str], float | None] | None = 60.0,
        max_stale: float = 60.0,
        maxsize: int = 10_000,
        local_ttl: float | None = None,
        jitter: float = 0.0,
        early_refresh: float = 0.0,
        serializer: str | Serializer = "json",
        signing_key: bytes | None = None,
        socket_timeout: float | None = DEFAULT_SOCKET_TIMEOUT,
        connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
        failure_threshold: int = 3,
        probe_interval: float = 1.0,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._build_core(
            url_or_client,
            namespace=namespace,
            version=version,
            default_ttl=default_ttl,
            max_stale=max_stale,
            maxsize=maxsize,
            local_ttl=local_ttl,
            jitter=jitter,
            early_refresh=early_refresh,
            serializer=serializer,
            signing_key=signing_key,
            failure_threshold=failure_threshold,
            probe_interval=probe_interval,
            clock=clock,
            rng=rng,
        )
        self._client: AsyncRedisClient | None = None
        self._owned = False
        if url_or_client is not None:
            self._client, self._owned = async_client(
                url_or_client, socket_timeout=socket_timeout, connect_timeout=connect_timeout
            )
            _check_bytes_client(self._client)
        self._flights: dict[str, asyncio.Future[Landing]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- reads ---------------------------------------------------------------------

    async def get(self, key: str, default: Any = None) -> Any:
        """See :meth:`RedisCache.get`."""
        core = self._core
        memory = core.memory
        entry: Entry | None = None
        if memory is not None:
            with core.lock:
                # try/except, not memory.get or contextlib.suppress: the cheapest hit path.
                try:  # noqa: SIM105
                    entry = memory[key]
                except KeyError:
                    pass
            if entry is not None and core.monotonic() < entry.check_at:
                core.counters.memory_hits += 1
                return entry.value
        elif self._client is not None and core.gate.available:
            # Redis only (maxsize=0) and Redis up: the lean path, measured against a raw GET.
            rkey = core.prefix + key
            try:
                raw = await self._client.get(rkey)
            except _ERRORS as exc:
                core.redis_failed(exc, "GET")
                core.counters.misses += 1
                return default
            core.redis_ok()
            return core.take(key, rkey, raw, default)
        now = core.monotonic()
        found = core.serve(*await self._find(key, now, entry), now)
        return default if found is None else found.value

    async def get_with_meta(
        self,
        key: str,
        factory: Callable[[], Any] | None = None,
        ttl: TTLArg = USE_DEFAULT,
    ) -> CachedValue | None:
        """See :meth:`RedisCache.get_with_meta`."""
        core = self._core
        if factory is not None:
            value, source, served = await self._get_or_load(key, factory, ttl)
            return core.meta_of(value, source, served)
        now = core.monotonic()
        entry, source, degraded = await self._find(key, now, core.recall(key))
        found = core.serve(entry, source, degraded, now)
        return None if found is None else core.meta(found, now, source)

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """See :meth:`RedisCache.get_many` (one MGET for what the in-process tier lacks)."""
        core = self._core
        now = core.monotonic()
        wanted, result = core.split_local(keys, now)
        if not wanted:
            return result
        raws: list[Any] | None = None
        seen = core.writes
        if self._client is not None and self._admit():
            try:
                raws = await self._mget([core.redis_key(k) for k, _ in wanted])
            except _ERRORS as exc:
                core.redis_failed(exc, "MGET")
            else:
                core.redis_ok()
        core.merge_many(wanted, raws, now, result, seen)
        return result

    async def _mget(self, rkeys: list[str]) -> list[Any]:
        """See :meth:`RedisCache._mget`."""
        client = self._client
        assert client is not None
        if isinstance(client, redis.asyncio.cluster.RedisCluster):
            raws = await client.mget_nonatomic(rkeys)
        else:
            raws = await cast(Awaitable[list[Any]], client.mget(rkeys))
        absent = [rkey for rkey, raw in zip(rkeys, raws, strict=True) if raw is None]
        if absent and await client.exists(*absent):
            pipe = client.pipeline(transaction=False)
            for rkey in absent:
                pipe.type(rkey)
            self._core.wrong_types(absent, await pipe.execute())
        return raws

    def _admit(self) -> bool:
        decision = self._core.admit()
        if decision is Admission.PROBE:
            task = asyncio.get_running_loop().create_task(self._probe())
            self._tasks.add(task)
            task.add_done_callback(self._probe_done)
        return decision is Admission.CALL

    def _probe_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        # A probe cancelled before it ran (close(), its event loop shutting down) never
        # reached its own except clause; the gate must hear back, or it never probes again.
        if task.cancelled() or task.exception() is not None:
            self._core.probe_failed(asyncio.CancelledError())

    async def _find(
        self, key: str, now: float, local: Entry | None
    ) -> tuple[Entry | None, Source, bool]:
        core = self._core
        if self._client is None or (local is not None and now < local.check_at):
            return local, "memory", False
        if not self._admit():
            return local, "memory", True
        rkey = core.redis_key(key)
        seen = core.writes
        try:
            raw = await self._client.get(rkey)
        except _ERRORS as exc:
            core.redis_failed(exc, "GET")
            return local, "memory", True
        core.redis_ok()
        return core.merge(key, rkey, raw, local, now, seen)

    async def _probe(self) -> None:
        assert self._client is not None
        try:
            await cast(Awaitable[Any], self._client.ping())
        except Exception as exc:  # cancellation and the like: see _probe_done
            self._core.probe_failed(exc)
        else:
            self._core.redis_ok()

    # -- writes --------------------------------------------------------------------

    async def set(self, key: str, value: Any, ttl: TTLArg = USE_DEFAULT) -> bool:
        """See :meth:`RedisCache.set`."""
        return await self._store(key, value, self._core.resolve_ttl(key, ttl), 0.0)

    async def _store(
        self,
        key: str,
        value: Any,
        ttl: float | None,
        delta: float,
        reach_redis: bool = True,
        loaded: bool = False,
    ) -> bool:
        core = self._core
        now = core.monotonic()
        if self._client is None:
            core.store_local(key, value, ttl, delta, now)
            return False
        prepared = core.prepare(key, value, ttl, delta, now, loaded=loaded)
        if prepared is None:  # a loaded value the serializer cannot encode
            return False
        rkey, data, px, entry = prepared
        if not reach_redis or not self._admit():
            core.set_failed()
            return False
        try:
            await cast(Awaitable[Any], self._client.set(rkey, data, px=px))
        except _ERRORS as exc:
            core.redis_failed(exc, "SET")
            core.set_failed()
            return False
        core.stored(entry)
        return True

    async def set_many(self, mapping: Mapping[str, Any], ttl: TTLArg = USE_DEFAULT) -> bool:
        """See :meth:`RedisCache.set_many`."""
        core = self._core
        now = core.monotonic()
        items = [(k, v, core.resolve_ttl(k, ttl)) for k, v in mapping.items()]
        if self._client is None:
            for k, v, t in items:
                core.store_local(k, v, t, 0.0, now)
            return False
        prepared = core.prepare_many(items, now)
        if not prepared:
            return True
        if not self._admit():
            core.set_failed(len(prepared))
            return False
        pipe = self._client.pipeline(transaction=False)
        for rkey, data, px, _ in prepared:
            pipe.set(rkey, data, px=px)
        try:
            replies = await pipe.execute(raise_on_error=False)
        except _ERRORS as exc:
            core.redis_failed(exc, "SET (pipeline)")
            core.set_failed(len(prepared))
            return False
        core.redis_ok()
        return core.pipeline_done(prepared, replies)

    async def delete(self, key: str) -> bool:
        """See :meth:`RedisCache.delete`."""
        core = self._core
        core.forget(key)
        if self._client is None or not self._admit():
            return False
        try:
            await self._client.unlink(core.redis_key(key))
        except _ERRORS as exc:
            core.redis_failed(exc, "UNLINK")
            return False
        core.redis_ok()
        # Again: a read that started before the UNLINK may have kept the old value meanwhile.
        core.forget(key)
        return True

    async def clear(self, prefix: str = "") -> int:
        """See :meth:`RedisCache.clear`."""
        core = self._core
        removed_local = core.forget_prefix(prefix)
        if self._client is None:
            return removed_local
        if not self._admit():
            raise BackendError(
                f"redis at {core.target} is down; only the in-process tier was cleared"
            )
        removed = 0
        try:
            batch: list[bytes] = []
            async for rkey in self._client.scan_iter(
                match=core.scan_pattern(prefix), count=_SCAN_COUNT
            ):
                batch.append(rkey)
                if len(batch) >= _SCAN_COUNT:
                    removed += await self._client.unlink(*batch)
                    batch.clear()
            if batch:
                removed += await self._client.unlink(*batch)
        except _ERRORS as exc:
            core.redis_failed(exc, "SCAN/UNLINK")
            raise to_backend_error(exc, core.target) from exc
        core.redis_ok()
        # Again, as in delete: a read that started before the UNLINK may have kept a value.
        core.forget_prefix(prefix)
        return removed

    # -- loaders -------------------------------------------------------------------

    async def get_or_set(
        self, key: str, factory: Callable[[], Awaitable[T] | T], ttl: TTLArg = USE_DEFAULT
    ) -> T:
        """See :meth:`RedisCache.get_or_set`.

        The shared load runs in its own task: a caller that is cancelled stops
        waiting, and the others still get the value. When the load itself is
        cancelled (the factory raised ``CancelledError``), the caller that
        started it gets the ``CancelledError`` and a waiting caller loads instead.
        """
        return cast(T, (await self._get_or_load(key, factory, ttl))[0])

    async def _get_or_load(
        self, key: str, factory: Callable[[], Any], ttl: TTLArg
    ) -> tuple[Any, Source, Entry | None]:
        core = self._core
        while True:
            now = core.monotonic()
            local = core.recall(key)
            if local is not None and now < local.check_at:
                core.counters.memory_hits += 1
                return await self._maybe_refresh(key, factory, ttl, local, "memory", now)
            # As in RedisCache: the Redis GET, the decision and the load are one flight per key.
            flight = self._flights.get(key)
            leader = flight is None or flight.get_loop() is not asyncio.get_running_loop()
            if flight is None or leader:
                # (A flight left by another, finished event loop is not waited for.)
                flight = asyncio.ensure_future(self._lead(key, factory, ttl))
                self._fly(key, flight)
            else:
                core.counters.coalesced += 1
            try:
                # shield: a cancelled caller stops waiting without cancelling the shared flight.
                landing = await asyncio.shield(flight)
            except asyncio.CancelledError:
                # The flight itself was cancelled (its loader raised CancelledError) and
                # this waiter was not: like a waiting thread in RedisCache, it loads instead.
                if leader or not flight.cancelled() or _cancelling():
                    raise
                continue
            break
        outcome = core.landed(landing, local)
        if outcome is None:
            raise landing.failure()
        if leader and outcome[1] == "redis" and outcome[2] is not None:
            return await self._maybe_refresh(key, factory, ttl, outcome[2], "redis", now)
        return outcome

    def _fly(self, key: str, flight: asyncio.Future[Landing]) -> None:
        self._flights[key] = flight
        flight.add_done_callback(functools.partial(self._landed, key))

    def _landed(self, key: str, flight: asyncio.Future[Landing]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.cancelled():
            flight.exception()  # retrieved here so an unawaited failure is not reported twice

    async def _lead(self, key: str, factory: Callable[[], Any], ttl: TTLArg) -> Landing:
        core = self._core
        now = core.monotonic()
        entry, source, degraded = await self._find(key, now, core.recall(key))
        landing = core.looked_up(entry, source, now)
        if landing is not None:
            return landing
        try:
            value = await self._call_loader(key, factory, ttl, reach_redis=not degraded)
        except Exception as exc:
            return Landing(None, "loader", None, entry, exc)
        return Landing(value, "loader", None, entry, None)

    async def _maybe_refresh(
        self,
        key: str,
        factory: Callable[[], Any],
        ttl: TTLArg,
        entry: Entry,
        source: Source,
        now: float,
    ) -> tuple[Any, Source, Entry | None]:
        core = self._core
        if not core.should_refresh_early(entry, now) or key in self._flights:
            return entry.value, source, entry
        core.counters.early_refreshes += 1

        async def refresh() -> Landing:
            try:
                value = await self._call_loader(key, factory, ttl)
            except Exception:  # a failed early refresh keeps serving the current value
                return Landing(entry.value, source, entry, None, None)
            return Landing(value, "loader", None, None, None)

        flight = asyncio.ensure_future(refresh())
        self._fly(key, flight)
        landing = await asyncio.shield(flight)
        return landing.value, landing.source, landing.entry

    async def _call_loader(
        self, key: str, factory: Callable[[], Any], ttl: TTLArg, *, reach_redis: bool = True
    ) -> Any:
        core = self._core
        core.counters.loader_calls += 1
        started = core.monotonic()
        value = factory()
        if inspect.isawaitable(value):
            value = await value
        delta = core.monotonic() - started
        await self._store(key, value, core.resolve_ttl(key, ttl), delta, reach_redis, loaded=True)
        return value

    # -- lifecycle -----------------------------------------------------------------

    async def close(self) -> None:
        """Close the Redis client when this cache created it from a URL (idempotent).

        A probe still running is cancelled and waited for first.
        """
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None and self._owned:
            await self._client.aclose()

    async def __aenter__(self) -> AsyncRedisCache:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _cancelling() -> bool:
    """True when the current task has been asked to cancel (always True before 3.11)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return cancelling is None or cancelling() > 0


class _Flight:
    """One in-progress lookup-and-load of a key by a thread; the others wait on ``done``."""

    __slots__ = ("abandoned", "done", "landing")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.landing = _NOTHING
        self.abandoned = False


_NOTHING = Landing(None, "loader", None, None, None)


# -- the decorator ---------------------------------------------------------------------


def _default_key(fn: Callable[..., Any]) -> Callable[..., str]:
    """The key ``module.qualname(args)``, with the arguments bound to the signature.

    ``quote("AAPL")`` and ``quote(symbol="AAPL")`` (defaults applied) give the
    same key. Positional parameters appear as their ``repr``, in order;
    keyword-only and ``**kwargs`` ones as ``name=repr``.
    """
    name = f"{fn.__module__}.{fn.__qualname__}"
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        signature = None
    params = list(signature.parameters.values()) if signature is not None else []
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    # All parameters given positionally: the bound form is the arguments themselves.
    plain = len(params) if all(p.kind in positional for p in params) else -1

    def make(*args: Any, **kwargs: Any) -> str:
        if not kwargs and len(args) == plain:
            made = f"{name}({','.join(map(repr, args))})"
        else:
            made = build(args, kwargs)
        if " at 0x" in made:
            _refuse_addresses(fn, signature, args, kwargs)
        return made

    def build(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        if signature is None:  # pragma: no cover - see above
            parts = [repr(a) for a in args]
            parts.extend(f"{k}={v!r}" for k, v in sorted(kwargs.items()))
            return f"{name}({','.join(parts)})"
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        parts = []
        for param in params:
            value = bound.arguments[param.name]
            if param.kind is inspect.Parameter.VAR_POSITIONAL:
                parts.extend(map(repr, value))
            elif param.kind is inspect.Parameter.KEYWORD_ONLY:
                parts.append(f"{param.name}={value!r}")
            elif param.kind is inspect.Parameter.VAR_KEYWORD:
                parts.extend(f"{k}={v!r}" for k, v in sorted(value.items()))
            else:
                parts.append(repr(value))
        return f"{name}({','.join(parts)})"

    return make


def _refuse_addresses(
    fn: Callable[..., Any],
    signature: inspect.Signature | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    """Raise TypeError for an argument whose repr is its memory address.

    Another object may later live at that address and would be handed this
    one's values; nor would the key mean anything to another process.
    """
    try:
        named = dict(signature.bind(*args, **kwargs).arguments) if signature else {}
    except TypeError:  # pragma: no cover - the key was built from the same binding
        named = {}
    if not named:  # pragma: no cover - builtins without a signature
        named = {f"#{i}": arg for i, arg in enumerate(args)} | kwargs
    for param, value in named.items():
        if _names_address(value):
            raise TypeError(
                f"cannot build a cache key for {fn.__qualname__}: argument {param!r} "
                f"({type(value).__qualname__}) has a repr naming its memory address; "
                "pass cached(..., key=...) to say what identifies it"
            )


def _names_address(value: object) -> bool:
    """Whether ``value``'s repr shows an address (text that merely contains " at 0x" does not)."""
    if isinstance(value, (str, bytes)):
        return False
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_names_address(item) for item in value)
    if isinstance(value, dict):
        return any(_names_address(k) or _names_address(v) for k, v in value.items())
    return " at 0x" in repr(value)


CachedTTL: TypeAlias = "float | Callable[..., float | None] | UseDefault | None"
"""``ttl`` of :func:`cached`: a callable is called with the decorated function's arguments."""


@overload
def cached(
    cache: RedisCache,
    ttl: CachedTTL = ...,
    key: Callable[..., str] | None = ...,
) -> Callable[[Callable[P, T]], Callable[P, T]]: ...


@overload
def cached(
    cache: AsyncRedisCache,
    ttl: CachedTTL = ...,
    key: Callable[..., str] | None = ...,
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]: ...


def cached(
    cache: RedisCache | AsyncRedisCache,
    ttl: CachedTTL = USE_DEFAULT,
    key: Callable[..., str] | None = None,
) -> Callable[[Callable[P, Any]], Callable[P, Any]]:
    """Cache a function's results in ``cache`` (sync functions with :class:`RedisCache`,
    ``async def`` functions with :class:`AsyncRedisCache`).

    The cache key is ``key(*args, **kwargs)`` when given, else the function's
    qualified name and the ``repr`` of its arguments bound to its signature
    with defaults applied, so ``quote("AAPL")`` and ``quote(symbol="AAPL")``
    share one key. Concurrent calls that miss the same key run the function
    once per expiry (single flight); a failing call returns a value within the
    cache's ``max_stale`` when there is one, and otherwise raises. A result the
    cache's serializer cannot encode is returned but not cached (counted in
    ``stats.encode_failures``).

    ``ttl`` is seconds, None (never expires), :data:`USE_DEFAULT` (the cache's
    ``default_ttl``) or a callable, which is called, like ``key``, with the
    function's own arguments when a result is stored: with
    ``ttl=adaptive.ttl_for`` on ``def price(symbol)``, ``price("AAPL")`` stores
    its result for ``adaptive.ttl_for("AAPL")`` seconds. (A callable
    ``default_ttl`` of the cache, and a callable ``ttl`` given to
    :meth:`RedisCache.set` or :meth:`RedisCache.get_or_set`, is called with
    the cache key.)

    Raises:
        ConfigError: a sync function with an :class:`AsyncRedisCache` or an
            ``async def`` function with a :class:`RedisCache`, a ``ttl`` that is
            not seconds > 0, None, a callable or :data:`USE_DEFAULT`, or a ``key``
            that is not callable (all raised when decorating).

    Example:
        ```python
        adaptive = AdaptiveTTL()
        cache = RedisCache("redis://localhost:6379/0")

        @cached(cache, ttl=adaptive.ttl_for, key=lambda symbol: f"price:{symbol}")
        def price(symbol: str) -> float:
            return vendor.fetch(symbol)  # stored for adaptive.ttl_for(symbol) seconds
        ```

        >>> cache = RedisCache()
        >>> @cached(cache, ttl=10.0, key=lambda symbol: symbol)
        ... def price(symbol: str) -> float:
        ...     return 231.5
        >>> price("AAPL"), cache.get("AAPL")
        (231.5, 231.5)
    """
    if not isinstance(cache, (RedisCache, AsyncRedisCache)):
        raise ConfigError("cache", type(cache).__name__, "must be a RedisCache or AsyncRedisCache")
    if not isinstance(ttl, UseDefault):
        _check_ttl(ttl, "ttl")  # at decoration, not after the first call's loader ran
    if key is not None and not callable(key):
        raise ConfigError("key", key, "must be a callable (*args, **kwargs) -> str or None")
    ttl_of_args: Callable[..., float | None] | None = ttl if callable(ttl) else None
    fixed_ttl: TTLArg = USE_DEFAULT if ttl_of_args is not None else cast(TTLArg, ttl)

    def ttl_for(args: tuple[Any, ...], kwargs: dict[str, Any]) -> TTLArg:
        if ttl_of_args is None:
            return fixed_ttl
        # Asked only when a result is stored, with the call's own arguments.
        return lambda _key: ttl_of_args(*args, **kwargs)

    def decorate(fn: Callable[P, Any]) -> Callable[P, Any]:
        make_key = key if key is not None else _default_key(fn)
        is_async = inspect.iscoroutinefunction(fn)
        if is_async and isinstance(cache, AsyncRedisCache):
            acache = cache

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await acache.get_or_set(
                    make_key(*args, **kwargs),
                    lambda: fn(*args, **kwargs),
                    ttl_for(args, kwargs),
                )

            return async_wrapper
        if not is_async and isinstance(cache, RedisCache):
            scache = cache

            @functools.wraps(fn)
            def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                return scache.get_or_set(
                    make_key(*args, **kwargs),
                    lambda: fn(*args, **kwargs),
                    ttl_for(args, kwargs),
                )

            return wrapper
        kind = "an async" if is_async else "a sync"
        raise ConfigError(
            "cache",
            type(cache).__name__,
            f"cannot cache {kind} function {fn.__qualname__}: use "
            + ("AsyncRedisCache" if is_async else "RedisCache"),
        )

    return decorate


# -- the process-wide default -------------------------------------------------------------

_default_cache: RedisCache | None = None
_default_lock = threading.Lock()


def get_redis_cache() -> RedisCache:
    """The process-wide :class:`RedisCache`, created on first use.

    It uses the URL in ``ARGO_PERF_REDIS_URL`` when that is set and is
    memory-only when it is not. Later calls return the same instance.

    Raises:
        ConfigError: ``ARGO_PERF_REDIS_URL`` is set but not a redis URL.

    Example:
        >>> get_redis_cache() is get_redis_cache()
        True
    """
    global _default_cache
    with _default_lock:
        if _default_cache is None:
            url = os.environ.get("ARGO_PERF_REDIS_URL") or None
            _default_cache = RedisCache(url)
            logger.info("default cache: %r", _default_cache)
        return _default_cache


def _reset_default_cache() -> None:
    """Forget the process-wide cache (tests); closes it."""
    global _default_cache
    with _default_lock:
        if _default_cache is not None:
            _default_cache.close()
        _default_cache = None
