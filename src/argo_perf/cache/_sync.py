"""`RedisCache`: the two-tier cache over redis-py, for threads.

A face without policy: every operation is a generator in `_operations` that
decides what to do and yields the Redis commands it needs; this class runs
them (and the loaders) on the caller's thread and sends the replies back.

Examples:
    >>> from argo_perf import RedisCache
    >>> cache = RedisCache()  # memory-only; pass a redis:// URL for the Redis tier
    >>> cache.set("AAPL", 231.5, ttl=10)
    False
    >>> cache.get("AAPL")
    231.5
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, TypeVar, cast, overload

import redis.cluster

from .._redis import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_SOCKET_TIMEOUT,
    REDIS_ERRORS,
    BackendHealth,
    SyncRedisClient,
    is_node_outage,
)
from ..clock import Clock
from . import _operations as ops
from ._config import USE_DEFAULT, CacheConfig, TTLArg
from ._envelope import Serializer
from ._face import Face
from ._flights import Landing
from ._policy import MISSING
from ._stats import CachedValue

__all__ = ["RedisCache"]

T = TypeVar("T")

_SCAN_COUNT = 500


class _Flight:
    """One key's lookup-and-load by one thread; the others wait on ``done``."""

    __slots__ = ("abandoned", "done", "landing")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.landing: Landing | None = None
        self.abandoned = False


def _joinable(flight: _Flight) -> bool:
    return True


class RedisCache(Face):
    """A thread-safe two-tier cache: bounded in-process LRU tier in front of Redis (redis-py).

    Reads try the in-process tier first (a fresh hit costs well under a
    microsecond), then Redis; values read from Redis are kept in the
    in-process tier until they expire. Writes go to both tiers.

    When Redis fails (refused, or no answer within ``socket_timeout``), the
    call falls back to the in-process tier and the failure is counted. After
    ``failure_threshold`` consecutive outages no call touches Redis any more:
    a single background probe per ``probe_interval`` seconds pings it (no
    caller waits for it) and the cache returns to Redis by itself when it
    answers. An error reply (``WRONGTYPE``, ``OOM``) is counted but means
    Redis is up. Meanwhile ``get``
    serves what the in-process tier holds, including values past their TTL
    within ``max_stale`` seconds (marked stale by `get_with_meta`).
    Bad bytes in Redis (garbage, another Redis type, a value that fails its
    signature) are a counted miss and a log line, never an exception.

    Args:
        url_or_client: a ``redis://``, ``rediss://`` or ``unix://`` URL, an existing
            ``redis.Redis`` client (used as it is, not closed by `close`), or
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
            With it, ``get_or_set`` and `cached` refresh a hot key before it
            expires, with a probability that grows as expiry nears and with the
            time the loader took.
        serializer: ``"json"`` (default), ``"pickle"`` (requires ``signing_key``)
            or a `Serializer`. Values are stored in a versioned envelope.
        signing_key: bytes (at least 16) for an HMAC-SHA256 over every stored
            value and its key; values that do not verify are ignored.
        socket_timeout: seconds a Redis command may take (default 0.05), for URLs.
        connect_timeout: seconds a connect may take (default 0.5), for URLs.
        failure_threshold: consecutive Redis outages before Redis is skipped (default 3).
        probe_interval: seconds between background probes while Redis is skipped
            (default 1.0).
        coherent: keep the in-process tier coherent with Redis (default False).
            A connection of the cache's own receives Redis's invalidations for
            its key prefix (``CLIENT TRACKING`` in broadcasting mode) on a
            daemon thread and drops the in-process copy of every key any process
            writes, within milliseconds, so ``local_ttl`` is not needed. While
            that channel is down (and until it is first up) every read asks
            Redis, and when Redis cannot be asked, copies made before are served
            only as stale (within ``max_stale``). On a Sentinel service the
            channel follows a failover; on a Redis Cluster there is one per
            master, and losing any one counts as losing the channel. See the
            guide's "Coherent in-process tier".
        heartbeat: seconds between PINGs on the invalidation channel (default 0.5,
            coherent mode): a frozen server or a silent partition is noticed
            within twice this.
        health: the backend-health gate to use, e.g. one shared with other
            Redis-backed pieces on the same server (default: a new gate built from
            ``failure_threshold``, ``probe_interval`` and ``clock``; ignored for a
            memory-only cache).
        clock: the time source (default `argo_perf.SystemClock`).
        rng: the random source for jitter and early refresh (default a new ``random.Random``).

    Raises:
        ConfigError: a parameter is out of range, ``"pickle"`` without a
            ``signing_key``, or ``url_or_client`` is not a redis URL or sync client
            (or is a client built with ``decode_responses=True``), or
            ``coherent=True`` without Redis.

    Examples:
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
        coherent: bool = False,
        heartbeat: float = 0.5,
        health: BackendHealth | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        core = self._build_core(
            url_or_client,
            CacheConfig(
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
                socket_timeout=socket_timeout,
                connect_timeout=connect_timeout,
                failure_threshold=failure_threshold,
                probe_interval=probe_interval,
                coherent=coherent,
                heartbeat=heartbeat,
            ),
            clock,
            rng,
            health,
            on_loop=False,
        )
        self._hit = core.hit

    # -- the operations ------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """Return the fresh value for ``key``, or ``default``.

        In-process tier first, then Redis. While Redis is failing or skipped, a
        value past its TTL but within ``max_stale`` is returned too. Never raises
        for Redis trouble or bad data in Redis.
        """
        value = self._hit(key)
        if value is not MISSING:
            return value
        return self._run(ops.get(self._core, key, default))

    @overload
    def get_with_meta(
        self, key: str, factory: None = None, ttl: TTLArg = ...
    ) -> CachedValue[Any] | None: ...

    @overload
    def get_with_meta(
        self, key: str, factory: Callable[[], T], ttl: TTLArg = ...
    ) -> CachedValue[T]: ...

    def get_with_meta(
        self,
        key: str,
        factory: Callable[[], Any] | None = None,
        ttl: TTLArg = USE_DEFAULT,
    ) -> CachedValue[Any] | None:
        """Like `get`, but return the value with its age, source and staleness (or None).

        With a ``factory`` it behaves like `get_or_set` and never returns
        None: ``source`` is ``"loader"`` when the factory produced the value, and
        ``stale`` is True when the factory failed and an older value was served.

        Examples:
            >>> cache = RedisCache()
            >>> cache.get_with_meta("AAPL", lambda: 231.5).source
            'loader'
            >>> cache.get_with_meta("AAPL").source
            'memory'
        """
        meta = self._run(ops.get_with_meta(self._core, key, factory, ttl))
        return cast(CachedValue[Any] | None, meta)

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Return ``{key: value}`` for the keys that have a value; missing keys are left out.

        The in-process tier answers first; the rest are fetched with one MGET.
        """
        return cast(dict[str, Any], self._run(ops.get_many(self._core, keys)))

    def set(self, key: str, value: Any, ttl: TTLArg = USE_DEFAULT) -> bool:
        """Store ``value`` under ``key`` in both tiers; return True when it reached Redis.

        ``ttl``: seconds, None (never expires), a callable ``key -> seconds``, or
        `USE_DEFAULT` (default: the cache's ``default_ttl``). A False
        return means the value is held by the in-process tier only (Redis down,
        out of memory, or a memory-only cache); it is counted in
        ``stats.redis_set_failures`` when Redis was configured.

        Raises:
            TypeError: the serializer cannot encode ``value``.
            ConfigError: the TTL (or what a TTL callable returned) is not > 0 seconds.
        """
        return cast(bool, self._run(ops.set_(self._core, key, value, ttl)))

    def set_many(self, mapping: Mapping[str, Any], ttl: TTLArg = USE_DEFAULT) -> bool:
        """Store every item (one Redis pipeline); return True when all reached Redis."""
        return cast(bool, self._run(ops.set_many(self._core, mapping, ttl)))

    def delete(self, key: str) -> bool:
        """Remove ``key`` from both tiers; return True when the delete reached Redis.

        When it did not (Redis down, or a memory-only cache), only the
        in-process copy is gone and Redis may still hold the value.
        """
        return cast(bool, self._run(ops.delete(self._core, key)))

    def clear(self, prefix: str = "") -> int:
        """Remove every key starting with ``prefix`` in this namespace and version.

        Redis keys are found with SCAN (never KEYS) and removed with UNLINK.
        Returns the number of Redis keys removed (the in-process entries removed
        for a memory-only cache).

        Raises:
            BackendError: Redis could not be reached (the in-process tier is cleared anyway).
        """
        return cast(int, self._run(ops.clear(self._core, prefix)))

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
        return cast(T, self._run(ops.get_or_load(self._core, key, factory, ttl))[0])

    # -- running an operation ------------------------------------------------------

    def _run(self, steps: ops.Steps) -> Any:
        """Run an operation: each request it yields, then its result (see `_operations`)."""
        io = self._io
        step = steps.send
        reply: Any = None
        while True:
            try:
                request = step(reply)
            except StopIteration as done:
                return done.value
            try:
                reply = io[request[0]](self, request)
                step = steps.send
            except BaseException as exc:  # the operation decides what it means
                reply = exc
                step = steps.throw

    def _get(self, request: ops.Request) -> Any:
        return self._redis().get(request[1])

    def _mget(self, request: ops.Request) -> Any:
        client = self._redis()
        if not isinstance(client, redis.cluster.RedisCluster):
            return client.mget(request[1])
        try:
            return client.mget_nonatomic(request[1])
        except REDIS_ERRORS as exc:
            if not is_node_outage(exc):
                raise
        # One node failed: read node by node, so only its keys count as failed.
        rkeys: list[str] = request[1]
        return ops.node_by_node(
            client,
            rkeys,
            lambda indexes: client.mget_nonatomic([rkeys[i] for i in indexes]),
            ops.NodeFailure,
        )

    def _exists(self, request: ops.Request) -> Any:
        return self._redis().exists(*request[1])

    def _types(self, request: ops.Request) -> Any:
        pipe = self._redis().pipeline(transaction=False)
        for rkey in request[1]:
            pipe.type(rkey)
        return pipe.execute()

    def _set(self, request: ops.Request) -> Any:
        _, rkey, data, px = request
        return self._redis().set(rkey, data, px=px)

    def _set_many(self, request: ops.Request) -> Any:
        client = self._redis()
        try:
            return self._pipeline_sets(client, request[1])
        except REDIS_ERRORS as exc:
            if not (isinstance(client, redis.cluster.RedisCluster) and is_node_outage(exc)):
                raise
        # One node failed: write node by node, so only its keys count as failed.
        prepared = request[1]
        return ops.node_by_node(
            client,
            [item[0] for item in prepared],
            lambda indexes: self._pipeline_sets(client, [prepared[i] for i in indexes]),
            lambda exc: exc,
        )

    @staticmethod
    def _pipeline_sets(client: SyncRedisClient, prepared: list[Any]) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for rkey, data, px, _ in prepared:
            pipe.set(rkey, data, px=px)
        return pipe.execute(raise_on_error=False)

    def _unlink(self, request: ops.Request) -> Any:
        return self._redis().unlink(request[1])

    def _clear(self, request: ops.Request) -> int:
        client = self._redis()
        removed = 0
        batch: list[bytes] = []
        for rkey in client.scan_iter(match=request[1], count=_SCAN_COUNT):
            batch.append(rkey)
            if len(batch) >= _SCAN_COUNT:
                removed += cast(int, client.unlink(*batch))  # type: ignore[redundant-cast,unused-ignore]
                batch.clear()
        if batch:
            removed += cast(int, client.unlink(*batch))  # type: ignore[redundant-cast,unused-ignore]
        return removed

    def _load(self, request: ops.Request) -> Any:
        return request[1]()

    def _fly(self, request: ops.Request) -> tuple[Landing, bool] | None:
        """Run a flight's steps on this thread, or wait for the thread running them."""
        _, key, steps, join = request
        flights = self._core.flights
        if join:
            flight, leader = flights.join(key, _Flight, _joinable)
            if not leader:
                flight.done.wait()
                if flight.abandoned or flight.landing is None:
                    return None
                return flight.landing, False
        else:
            started = flights.start_refresh(key, _Flight)
            if started is None:
                return None
            flight = started
        try:
            flight.landing = self._run(steps)
            return flight.landing, True
        except BaseException:  # KeyboardInterrupt ...: a waiting thread loads instead
            flight.abandoned = True
            raise
        finally:
            flights.land(key, flight)
            flight.done.set()

    def _redis(self) -> SyncRedisClient:
        link = self._link
        assert link is not None  # operations ask for Redis only when it is configured
        return link.sync_client()  # a cluster URL's is built (connects) on first use

    _io: ClassVar[dict[str, Callable[[RedisCache, ops.Request], Any]]] = {
        ops.GET: _get,
        ops.MGET: _mget,
        ops.EXISTS: _exists,
        ops.TYPES: _types,
        ops.SET: _set,
        ops.SET_MANY: _set_many,
        ops.UNLINK: _unlink,
        ops.CLEAR: _clear,
        ops.LOAD: _load,
        ops.FLY: _fly,
    }

    # -- lifecycle -----------------------------------------------------------------

    def close(self) -> None:
        """Close the Redis client when this cache created it from a URL (idempotent).

        A background probe still running is waited for first (bounded by its timeouts).
        """
        self._stop_tracking()
        if self._link is not None:
            self._link.close()

    def __enter__(self) -> RedisCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
