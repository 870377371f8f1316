"""Bounded connection pools whose queued callers wait only while Redis keeps answering."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import queue
import threading
import time
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel
from redis.exceptions import ConnectionError as RedisConnectionError

__all__ = ["AsyncPool", "AsyncSentinelPool", "ClusterNodePool", "SentinelPool", "SyncPool"]

# -- bounded pools -----------------------------------------------------------------
#
# A client built from a URL holds at most ``max_connections`` connections; a caller
# that finds them all busy queues for one. How long it queues is the subtle part. A
# fixed wait of the socket timeout fails a burst on a healthy but busy process (200
# callers on a loaded event loop need more than 50 ms to take their turns), while an
# unbounded wait makes a queued caller pay a second timeout when Redis freezes. So a
# queued caller waits as long as Redis keeps answering:
#
# * it gives up once ``timeout`` seconds pass without a healthy connection coming
#   back to the pool (connections still being opened for the first time are waited
#   for: they come back, healthy or not);
# * it gives up at once when a connection comes back broken (a call just failed or
#   timed out on it) and no healthy one came back since: Redis stopped answering,
#   and the gate will hear of it from the failed call;
# * it never takes a broken connection: reconnecting to a server that stopped
#   answering would cost it another timeout.
#
# A caller that finds a connection free takes it as it is, broken or not: that is a
# call the health gate admitted, and a reconnect is how Redis is found again.


def _is_connected(connection: Any) -> bool:
    """Whether a pooled connection holds an open socket (redis-py 7.1 to 8 alike)."""
    # Sync connections have the property only from redis-py 8; before, the socket itself.
    state = getattr(connection, "is_connected", None)
    if state is None:
        return getattr(connection, "_sock", None) is not None
    return bool(state)


def _healthy_index(items: list[Any]) -> int | None:
    """Index of the newest pooled entry that is a live connection or a free slot."""
    for index in range(len(items) - 1, -1, -1):
        item = items[index]
        if item is None or _is_connected(item):
            return index
    return None


class _QueuedLifo(queue.LifoQueue[Any]):
    """The sync pool's queue: ``get`` waits while Redis keeps answering (see above).

    Entries are connections or ``None`` (a slot for a new connection). Queued
    callers are served in arrival order, each woken by its own condition: with a
    shared one, threads arriving later took the connections first and a queued
    thread could wait most of a second on a healthy Redis.
    """

    def __init__(self, maxsize: int = 0) -> None:
        super().__init__(maxsize)
        self.last_healthy = -math.inf
        self.broken = False  # the last connection to come back had failed
        self._returned: set[int] = set()  # ids of connections that came back at least once
        self._opening = 0  # slots handed out whose connection has not come back yet
        self._line: collections.deque[threading.Condition] = collections.deque()

    def _put(self, item: Any) -> None:
        if item is not None:
            if id(item) not in self._returned:
                self._returned.add(id(item))
                self._opening = max(0, self._opening - 1)
            if _is_connected(item):
                self.last_healthy = time.monotonic()
                self.broken = False
            else:
                self.broken = True
        super()._put(item)
        if self.broken:  # a call just failed on it: the queued callers give up now
            for turn in self._line:
                turn.notify()
        elif self._line:
            self._line[0].notify()

    def _get(self) -> Any:
        item = super()._get()
        if item is None:
            self._opening += 1
        return item

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        with self.mutex:
            if self._qsize() and not self._line:
                item = self._get()
            elif not block:
                raise queue.Empty
            else:
                item = self._wait_in_line(timeout)
            self.not_full.notify()
            return item

    def _wait_in_line(self, patience: float | None) -> Any:
        started = time.monotonic()
        items: list[Any] = self.queue
        turn = threading.Condition(self.mutex)
        self._line.append(turn)
        try:
            while True:
                if self.broken:
                    raise queue.Empty
                if self._line[0] is turn:
                    index = _healthy_index(items)
                    if index is not None:
                        item = items.pop(index)
                        if item is None:
                            self._opening += 1
                        return item
                if patience is None:
                    turn.wait()
                    continue
                remaining = max(started, self.last_healthy) + patience - time.monotonic()
                if remaining <= 0 and not self._opening:
                    raise queue.Empty
                # New connections still opening will come back, healthy or not: wait for them.
                turn.wait(remaining if remaining > 0 else patience)
        finally:
            self._line.remove(turn)
            if self._line and _healthy_index(items) is not None:
                self._line[0].notify()  # pass the turn on


class SyncPool(redis.BlockingConnectionPool):
    """A bounded sync pool whose callers queue while Redis keeps answering."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["queue_class"] = _QueuedLifo
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]


class ClusterNodePool(SyncPool):
    """`SyncPool` for one node of a Redis Cluster: queued callers wait one socket timeout.

    redis-py builds a node's pool from the client's connection options, in
    which a ``timeout`` (the queue's patience) would also reach the clients it
    builds to learn the layout, which refuse it.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("timeout", kwargs.get("socket_timeout"))
        super().__init__(**kwargs)


class AsyncPool(redis.asyncio.BlockingConnectionPool):
    """The asyncio counterpart of `SyncPool`.

    Waiters are plain futures woken one at a time by a healthy release, not the
    base class's condition: a condition makes every waiter that gives up take
    the lock back in turn, so on a busy event loop 184 waiters giving up at
    once took 400 ms to get out.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._last_healthy = -math.inf
        self._broken = False  # the last connection to come back had failed
        self._returned: set[int] = set()  # ids of connections that came back at least once
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def _take(self, *, queued: bool) -> Any:
        """A connection marked in use, or None; a queued caller takes only a healthy one."""
        available = self._available_connections
        if queued:
            index = _healthy_index(available)
            if index is not None:
                connection = available.pop(index)
                self._in_use_connections.add(connection)
                return connection
        elif available:
            connection = available.pop()
            self._in_use_connections.add(connection)
            return connection
        if len(self._in_use_connections) + len(available) < self.max_connections:
            return self.get_available_connection()  # type: ignore[no-untyped-call]
        return None

    async def get_connection(self, *args: Any, **options: Any) -> Any:
        connection = None if self._waiters else self._take(queued=False)
        if connection is None:
            connection = await self._wait_for_healthy()
        try:
            await self.ensure_connection(connection)
        except BaseException:
            await self.release(connection)
            raise
        return connection

    async def _wait_for_healthy(self) -> Any:
        patience = self.timeout
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        while True:
            if self._broken:
                raise RedisConnectionError("No connection available: redis stopped answering.")
            remaining = math.inf
            if patience is not None:
                remaining = max(started, self._last_healthy) + patience - time.monotonic()
                if remaining <= 0:
                    returned = self._returned
                    if all(id(c) in returned for c in self._in_use_connections):
                        raise RedisConnectionError("No connection available.")
                    # New connections still opening will come back, healthy or not.
                    remaining = patience
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, None if remaining == math.inf else remaining)
            except asyncio.TimeoutError:
                pass
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # woken for a connection it will not take: pass it on
                raise
            finally:
                if not waiter.done() or waiter.cancelled():
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(waiter)
            connection = self._take(queued=True)
            if connection is not None:
                return connection

    def _wake_one(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def release(self, connection: Any) -> None:
        self._returned.add(id(connection))
        healthy = _is_connected(connection)
        self._broken = not healthy
        if healthy:
            self._last_healthy = time.monotonic()
        # The plain pool's release: the condition of the base class is not used.
        await redis.asyncio.ConnectionPool.release(self, connection)
        if healthy:
            self._wake_one()
        else:  # a call just failed on it: the queued callers give up now
            waiters, self._waiters = self._waiters, collections.deque()
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)


# -- the same bounded pools for a master found through Sentinel ---------------------
#
# redis-py's Sentinel pool asks the sentinels for the master's address on every new
# connection and drops connections to a master that is no longer one; mixed in before
# our pool, it keeps doing that while our pool decides who waits and for how long.


class SentinelPool(redis.sentinel.SentinelConnectionPool, SyncPool):
    """`SyncPool` for the master of a Sentinel service."""


class AsyncSentinelPool(redis.asyncio.sentinel.SentinelConnectionPool, AsyncPool):
    """`AsyncPool` for the master of a Sentinel service."""
