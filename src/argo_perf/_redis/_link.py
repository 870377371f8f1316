"""`RedisLink`: what a Redis-backed piece owns to talk to Redis.

One object per piece (or shared by several on the same server) holds:

* the clients: for a URL one sync client and one asyncio client per running
  event loop (a client's connections belong to the loop that opened them; the
  client of a loop that has closed is closed when another loop asks), each
  with a bounded pool; a client passed in is used as it is and never closed;
* the `BackendHealth` gate (injectable, so pieces on one server can share one);
* the probe rule: the caller's own request is the probe. `admit` answers
  CALL (Redis is up), PROBE (Redis is down and this caller's request is the one
  probe of the interval: make it) or SKIP (use the fallback);
* the one classification of failures (`is_outage`, `is_answer`) and their
  translation into `BackendError`, in `failed`.

It decides nothing about values and does no I/O of its own, so the sync and
asyncio faces of a piece share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster

from ..clock import Clock
from ..errors import BackendError, ConfigError
from ._clients import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_SOCKET_TIMEOUT,
    AsyncRedisClient,
    SyncRedisClient,
    async_client,
    describe_client,
    sync_client,
)
from ._health import Admission, BackendHealth, is_answer, is_outage, to_backend_error
from ._url import redact_url

__all__ = ["RedisLink"]

_SYNC_TYPES = (redis.Redis, redis.cluster.RedisCluster)
_ASYNC_TYPES = (redis.asyncio.Redis, redis.asyncio.cluster.RedisCluster)


class RedisLink:
    """The clients, the health gate and the failure rules of one Redis-backed piece.

    Args:
        url_or_client: a ``redis://``, ``rediss://`` or ``unix://`` URL, or a
            sync or asyncio redis-py client (``Redis`` or ``RedisCluster``).
            A URL serves both faces; a client serves only its own face.
        health: the gate to use (share one between pieces on the same
            server); default: a new gate with ``failure_threshold``,
            ``probe_interval`` and ``clock``.
        socket_timeout: seconds per command for clients built from a URL.
        connect_timeout: seconds per connect for clients built from a URL.
        max_connections: the pool bound of clients built from a URL.
        failure_threshold: consecutive outages before the new gate goes down.
        probe_interval: seconds between probes while the new gate is down.
        clock: the new gate's time source.

    Raises:
        ConfigError: a malformed URL (shown without its password), an object
            that is neither a URL nor a redis-py client, a bad option, or a
            ``health`` that is not a `BackendHealth`.
    """

    def __init__(
        self,
        url_or_client: str | SyncRedisClient | AsyncRedisClient,
        *,
        health: BackendHealth | None = None,
        socket_timeout: float | None = DEFAULT_SOCKET_TIMEOUT,
        connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        failure_threshold: int = 3,
        probe_interval: float = 1.0,
        clock: Clock | None = None,
    ) -> None:
        if health is not None and not isinstance(health, BackendHealth):
            raise ConfigError("health", type(health).__name__, "must be a BackendHealth or None")
        self._options: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "connect_timeout": connect_timeout,
            "max_connections": max_connections,
        }
        self._url: str | None = None
        self._sync: SyncRedisClient | None = None
        self._async: AsyncRedisClient | None = None  # a client passed in
        self._per_loop: dict[asyncio.AbstractEventLoop, AsyncRedisClient] = {}
        self._lock = threading.Lock()
        self._closed = False
        if isinstance(url_or_client, str):
            # Built now: a bad URL or option fails at construction (no connection is opened).
            self._sync, _ = sync_client(url_or_client, **self._options)
            self._url = url_or_client
            self.target = redact_url(url_or_client)
        elif isinstance(url_or_client, _SYNC_TYPES):
            self._sync = url_or_client
            self.target = describe_client(url_or_client)
        elif isinstance(url_or_client, _ASYNC_TYPES):
            self._async = url_or_client
            self.target = describe_client(url_or_client)
        else:
            raise ConfigError(
                "url_or_client",
                type(url_or_client).__name__,
                "must be a redis URL or a redis-py client (sync or asyncio, Redis or RedisCluster)",
            )
        self.health = (
            health
            if health is not None
            else BackendHealth(
                self.target,
                failure_threshold=failure_threshold,
                probe_interval=probe_interval,
                clock=clock,
            )
        )

    # -- clients -------------------------------------------------------------------

    @property
    def owns_clients(self) -> bool:
        """True when the clients were built from a URL (and `close` closes them)."""
        return self._url is not None

    @property
    def has_sync(self) -> bool:
        """True when the sync face has a client (a URL or a sync client was given)."""
        return self._sync is not None

    @property
    def has_async(self) -> bool:
        """True when the asyncio face has a client (a URL or an asyncio client was given)."""
        return self._url is not None or self._async is not None

    def sync_client(self) -> SyncRedisClient:
        """The sync client.

        Raises:
            TypeError: the link was built from an asyncio client.
        """
        client = self._sync
        if client is None:
            raise TypeError(f"redis at {self.target}: no sync client; pass a URL or a redis.Redis")
        return client

    def async_client(self) -> AsyncRedisClient:
        """The asyncio client for the running event loop (built on first use for a URL).

        Clients built for event loops that have since closed are closed here.

        Raises:
            TypeError: the link was built from a sync client.
            RuntimeError: no event loop is running.
        """
        if self._url is None:
            if self._async is None:
                raise TypeError(
                    f"redis at {self.target}: no asyncio client; "
                    "pass a URL or a redis.asyncio.Redis"
                )
            return self._async
        loop = asyncio.get_running_loop()
        client = self._per_loop.get(loop)
        if client is not None:
            return client
        with self._lock:
            client = self._per_loop.get(loop)
            if client is None:
                for old in [old for old in self._per_loop if old.is_closed()]:
                    _sever(self._per_loop.pop(old))
                client, _ = async_client(self._url, **self._options)
                self._per_loop[loop] = client
        return client

    @property
    def loops(self) -> int:
        """How many asyncio clients (one per event loop) the link holds now."""
        return len(self._per_loop)

    # -- the gate and the failure rules ----------------------------------------------

    def admit(self) -> Admission:
        """CALL or PROBE: make the request (a PROBE is the interval's one probe); SKIP: don't."""
        return self.health.admit()

    def succeeded(self) -> None:
        """Report a request that Redis answered; brings the gate back up."""
        self.health.record_success()

    def failed(self, exc: BaseException) -> BackendError:
        """Classify ``exc``, tell the gate, and return it as a `BackendError` (not raised).

        * an outage (`is_outage`: refused, timed out, cluster unreachable)
          counts towards taking the gate down;
        * an error reply (`is_answer`: ``WRONGTYPE``, ``NOSCRIPT``, ``OOM``,
          ``READONLY``) means Redis is up: it counts as a success for the gate;
        * anything else (a cancelled task, a client-side error) says nothing
          about Redis, but a probe that ends this way is given back, so the
          gate is never left waiting for a report that will not come.

        The gate logs its state changes (one line each); the returned error
        names the password-free target and chains ``exc``.
        """
        health = self.health
        if is_outage(exc):
            health.record_failure(exc)
        elif is_answer(exc):
            health.record_success()
        elif not health.available:
            health.record_failure(exc)
        if isinstance(exc, BackendError):
            return exc
        return to_backend_error(exc, self.target)

    # -- closing ---------------------------------------------------------------------

    def close(self) -> None:
        """Close the clients built from a URL (a client passed in is left open).

        Asyncio clients are closed without waiting (their sockets are shut);
        prefer `aclose` from a running event loop.
        """
        if self._url is None:
            return
        with self._lock:
            clients, self._per_loop = list(self._per_loop.values()), {}
        for client in clients:
            _sever(client)
        assert self._sync is not None
        self._sync.close()

    async def aclose(self) -> None:
        """Close the clients built from a URL; the running loop's asyncio client is awaited."""
        if self._url is None:
            return
        loop = asyncio.get_running_loop()
        with self._lock:
            current = self._per_loop.pop(loop, None)
        self.close()
        if current is not None:
            await current.aclose()

    def __repr__(self) -> str:
        state = "up" if self.health.available else "down"
        return f"RedisLink(target={self.target!r}, state={state})"


def _sever(client: AsyncRedisClient) -> None:
    """Close an asyncio client's sockets without its event loop (which may be closed).

    The connections belong to another loop, so they cannot be awaited from
    here; shutting the sockets releases them on the server at once, and the
    transports are collected with the client.
    """
    pool: Any = getattr(client, "connection_pool", None)
    if pool is None:
        return
    connections = [*pool._available_connections, *pool._in_use_connections]
    for connection in connections:
        writer = getattr(connection, "_writer", None)
        if writer is None:
            continue
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(RuntimeError):  # the transport's loop is closed
            writer.transport.abort()
