"""`AsyncRedisCache`: the two-tier cache over redis.asyncio.

The same operations as `RedisCache` (generators in `_operations`), run with
`await`; a key's single flight runs in its own task so that a cancelled
caller does not cancel the load for the others.
"""

from __future__ import annotations

import asyncio
import inspect
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, ClassVar, TypeVar, cast, overload

import redis.asyncio.cluster

from .._redis import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_SOCKET_TIMEOUT,
    REDIS_ERRORS,
    AsyncRedisClient,
    BackendHealth,
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

__all__ = ["AsyncRedisCache"]

T = TypeVar("T")

_SCAN_COUNT = 500


def _cancelling() -> bool:
    """True when the current task has been asked to cancel (always True before 3.11)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return cancelling is None or cancelling() > 0


def _on_this_loop(flight: asyncio.Future[Landing]) -> bool:
    # A flight left by another, finished event loop is not waited for.
    return flight.get_loop() is asyncio.get_running_loop()


class AsyncRedisCache(Face):
    """The asyncio twin of `RedisCache` over ``redis.asyncio`` (same policy, same options).

    Every method that may touch Redis is a coroutine; the in-process tier and
    the outage handling behave exactly as in `RedisCache`. Use one
    instance per event loop. ``get_or_set`` takes a factory returning an
    awaitable (an ``async def``) or a plain value; a caller cancelled while
    waiting for a shared load does not cancel the load for the others.

    Examples:
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
            on_loop=True,
        )
        self._hit = core.hit

    # -- the operations ------------------------------------------------------------

    async def get(self, key: str, default: Any = None) -> Any:
        """See `RedisCache.get`."""
        value = self._hit(key)
        if value is not MISSING:
            return value
        return await self._run(ops.get(self._core, key, default))

    @overload
    async def get_with_meta(
        self, key: str, factory: None = None, ttl: TTLArg = ...
    ) -> CachedValue[Any] | None: ...

    @overload
    async def get_with_meta(
        self, key: str, factory: Callable[[], Awaitable[T]], ttl: TTLArg = ...
    ) -> CachedValue[T]: ...

    @overload
    async def get_with_meta(
        self, key: str, factory: Callable[[], T], ttl: TTLArg = ...
    ) -> CachedValue[T]: ...

    async def get_with_meta(
        self,
        key: str,
        factory: Callable[[], Any] | None = None,
        ttl: TTLArg = USE_DEFAULT,
    ) -> CachedValue[Any] | None:
        """See `RedisCache.get_with_meta`."""
        meta = await self._run(ops.get_with_meta(self._core, key, factory, ttl))
        return cast(CachedValue[Any] | None, meta)

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """See `RedisCache.get_many` (one MGET for what the in-process tier lacks)."""
        return cast(dict[str, Any], await self._run(ops.get_many(self._core, keys)))

    async def set(self, key: str, value: Any, ttl: TTLArg = USE_DEFAULT) -> bool:
        """See `RedisCache.set`."""
        return cast(bool, await self._run(ops.set_(self._core, key, value, ttl)))

    async def set_many(self, mapping: Mapping[str, Any], ttl: TTLArg = USE_DEFAULT) -> bool:
        """See `RedisCache.set_many`."""
        return cast(bool, await self._run(ops.set_many(self._core, mapping, ttl)))

    async def delete(self, key: str) -> bool:
        """See `RedisCache.delete`."""
        return cast(bool, await self._run(ops.delete(self._core, key)))

    async def clear(self, prefix: str = "") -> int:
        """See `RedisCache.clear`."""
        return cast(int, await self._run(ops.clear(self._core, prefix)))

    @overload
    async def get_or_set(
        self, key: str, factory: Callable[[], Awaitable[T]], ttl: TTLArg = ...
    ) -> T: ...

    @overload
    async def get_or_set(self, key: str, factory: Callable[[], T], ttl: TTLArg = ...) -> T: ...

    async def get_or_set(
        self, key: str, factory: Callable[[], Awaitable[T] | T], ttl: TTLArg = USE_DEFAULT
    ) -> T:
        """See `RedisCache.get_or_set`.

        The shared load runs in its own task: a caller that is cancelled stops
        waiting, and the others still get the value. When the load itself is
        cancelled (the factory raised ``CancelledError``), the caller that
        started it gets the ``CancelledError`` and a waiting caller loads instead.
        """
        return cast(T, (await self._run(ops.get_or_load(self._core, key, factory, ttl)))[0])

    # -- running an operation ------------------------------------------------------

    async def _run(self, steps: ops.Steps) -> Any:
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
                reply = await io[request[0]](self, request)
                step = steps.send
            except BaseException as exc:  # the operation decides what it means
                reply = exc
                step = steps.throw

    async def _get(self, request: ops.Request) -> Any:
        return await self._redis().get(request[1])

    async def _mget(self, request: ops.Request) -> Any:
        client = self._redis()
        if not isinstance(client, redis.asyncio.cluster.RedisCluster):
            return await cast(Awaitable[list[Any]], client.mget(request[1]))
        try:
            return await client.mget_nonatomic(request[1])
        except REDIS_ERRORS as exc:
            if not is_node_outage(exc):
                raise
        # One node failed: read node by node, so only its keys count as failed.
        rkeys: list[str] = request[1]
        return await ops.node_by_node_async(
            client,
            rkeys,
            lambda indexes: client.mget_nonatomic([rkeys[i] for i in indexes]),
            ops.NodeFailure,
        )

    async def _exists(self, request: ops.Request) -> Any:
        return await self._redis().exists(*request[1])

    async def _types(self, request: ops.Request) -> Any:
        pipe = self._redis().pipeline(transaction=False)
        for rkey in request[1]:
            pipe.type(rkey)
        return await pipe.execute()

    async def _set(self, request: ops.Request) -> Any:
        _, rkey, data, px = request
        return await cast(Awaitable[Any], self._redis().set(rkey, data, px=px))

    async def _set_many(self, request: ops.Request) -> Any:
        client = self._redis()
        try:
            return await self._pipeline_sets(client, request[1])
        except REDIS_ERRORS as exc:
            if not (isinstance(client, redis.asyncio.cluster.RedisCluster) and is_node_outage(exc)):
                raise
        # One node failed: write node by node, so only its keys count as failed.
        prepared = request[1]
        return await ops.node_by_node_async(
            client,
            [item[0] for item in prepared],
            lambda indexes: self._pipeline_sets(client, [prepared[i] for i in indexes]),
            lambda exc: exc,
        )

    @staticmethod
    async def _pipeline_sets(client: AsyncRedisClient, prepared: list[Any]) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for rkey, data, px, _ in prepared:
            pipe.set(rkey, data, px=px)
        return await pipe.execute(raise_on_error=False)

    async def _unlink(self, request: ops.Request) -> Any:
        return await self._redis().unlink(request[1])

    async def _clear(self, request: ops.Request) -> int:
        client = self._redis()
        removed = 0
        batch: list[bytes] = []
        async for rkey in client.scan_iter(match=request[1], count=_SCAN_COUNT):
            batch.append(rkey)
            if len(batch) >= _SCAN_COUNT:
                removed += await client.unlink(*batch)
                batch.clear()
        if batch:
            removed += await client.unlink(*batch)
        return removed

    async def _load(self, request: ops.Request) -> Any:
        value = request[1]()
        if inspect.isawaitable(value):
            value = await value
        return value

    async def _fly(self, request: ops.Request) -> tuple[Landing, bool] | None:
        """Run a flight's steps in a task of its own, and wait for it (or for the one running)."""
        _, key, steps, join = request
        flights = self._core.flights

        def launch() -> asyncio.Future[Landing]:
            flight = asyncio.ensure_future(self._run(steps))
            flight.add_done_callback(lambda done: self._landed(key, done))
            return flight

        if join:
            flight, leader = flights.join(key, launch, _on_this_loop)
        else:
            started = flights.start_refresh(key, launch)
            if started is None:
                return None
            flight, leader = started, True
        try:
            # shield: a cancelled caller stops waiting without cancelling the shared flight.
            landing = await asyncio.shield(flight)
        except asyncio.CancelledError:
            # The flight itself was cancelled (its loader raised CancelledError) and this
            # waiter was not: like a waiting thread in RedisCache, it loads instead.
            if leader or not flight.cancelled() or _cancelling():
                raise
            return None
        return landing, leader

    def _landed(self, key: str, flight: asyncio.Future[Landing]) -> None:
        self._core.flights.land(key, flight)
        if not flight.cancelled():
            flight.exception()  # retrieved here so an unawaited failure is not reported twice

    def _redis(self) -> AsyncRedisClient:
        link = self._link
        assert link is not None  # operations ask for Redis only when it is configured
        return link.async_client()  # this event loop's client (one per loop for a URL)

    _io: ClassVar[dict[str, Callable[[AsyncRedisCache, ops.Request], Awaitable[Any]]]] = {
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

    async def close(self) -> None:
        """Close the Redis clients when this cache created them from a URL (idempotent).

        A background probe still running is cancelled and waited for first.
        """
        if self._coherence is not None:
            await asyncio.to_thread(self._stop_tracking)
        if self._link is not None:
            await self._link.aclose()

    async def __aenter__(self) -> AsyncRedisCache:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
