"""`RedisLink`: what a Redis-backed piece owns to talk to Redis.

One object per piece (or shared by several on the same server) holds:

* the clients: for a URL one sync client and one asyncio client per running
  event loop (a client's connections belong to the loop that opened them; the
  client of a loop that has closed is closed when another loop asks), each
  with a bounded pool; a client passed in is used as it is and never closed;
* the `BackendHealth` gate (injectable, so pieces on one server can share one);
* the probe rule: no caller's request is ever the probe. While the gate is
  down, once per interval the link PINGs Redis in the background (a daemon
  thread with the sync client, or a task on the running event loop with that
  loop's asyncio client) and the PING's outcome settles the gate; the caller
  that happened to be admitted at that moment is told to skip, like every
  other caller while Redis is down. So no caller ever waits for a timeout to
  learn whether Redis is back. `admit` (threads) and `admit_async` (on an
  event loop) answer CALL or SKIP;
* the one classification of failures (`is_outage`, `is_answer`) and their
  translation into `BackendError`, in `failed`. On a Redis Cluster the outage
  of one node (or one slot) is the failure of the calls on its keys only: the
  gate goes down only when the cluster as a whole cannot be reached, so the
  keys of the other nodes keep using Redis.

It decides nothing about values and does no I/O on the caller's behalf (the
probe runs off the caller's path), so the sync and asyncio faces of a piece
share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import threading
from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.exceptions import ClusterDownError

from ..clock import Clock
from ..errors import BackendError, ConfigError
from ._clients import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_SOCKET_TIMEOUT,
    AsyncRedisClient,
    SyncRedisClient,
    async_client,
    close_sync_client,
    describe_client,
    is_cluster_client,
    sync_builder,
)
from ._health import (
    Admission,
    BackendHealth,
    is_answer,
    is_node_outage,
    is_outage,
    to_backend_error,
)
from ._url import CLUSTER, Topology, parse_topology, redact_url, topology_scheme

__all__ = ["PROBE_THREAD_NAME", "REPLY_REPORT_INTERVAL", "RedisLink"]

PROBE_THREAD_NAME = "argo-perf-redis-probe"
"""The name of the daemon thread that runs a sync probe (a PING)."""

_JOIN_TIMEOUT = 5.0
"""Seconds `RedisLink.close` waits for a probe thread still running."""

REPLY_REPORT_INTERVAL = 60.0
"""Seconds between log lines about error replies (`RedisLink.log_reply`)."""


_SYNC_TYPES = (redis.Redis, redis.cluster.RedisCluster)
_ASYNC_TYPES = (redis.asyncio.Redis, redis.asyncio.cluster.RedisCluster)


class RedisLink:
    """The clients, the health gate and the failure rules of one Redis-backed piece.

    Args:
        url_or_client: a ``redis://``, ``rediss://``, ``unix://``,
            ``redis+cluster://`` or ``redis+sentinel://`` URL, or a sync or
            asyncio redis-py client (``Redis``, including one from
            ``Sentinel.master_for``, or ``RedisCluster``). A URL serves both
            faces; a client serves only its own face.
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
        parameter: str = "url_or_client",
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
        self._build_sync: Callable[[], SyncRedisClient] | None = None  # a cluster URL's
        self._async: AsyncRedisClient | None = None  # a client passed in
        self._per_loop: dict[asyncio.AbstractEventLoop, AsyncRedisClient] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._reply_lock = threading.Lock()
        self._next_reply_line = -math.inf
        self._unlogged_replies = 0
        self._probe_threads: set[threading.Thread] = set()
        self._probe_tasks: set[asyncio.Task[None]] = set()
        if isinstance(url_or_client, str):
            # Checked now: a bad URL or option fails at construction (no connection is
            # opened). A cluster client connects when it is built: on first use.
            try:
                build = sync_builder(url_or_client, **self._options)
            except ConfigError as exc:  # name the caller's parameter, not ours
                if exc.parameter != "url":
                    raise
                raise ConfigError(parameter, exc.value, exc.requirement) from None
            if topology_scheme(url_or_client) == CLUSTER:
                self._build_sync = build
            else:
                self._sync = build()
            self._url = url_or_client
            self.target = redact_url(url_or_client)
            self.cluster = self._build_sync is not None
        elif isinstance(url_or_client, _SYNC_TYPES):
            self._sync = url_or_client
            self.target = describe_client(url_or_client)
            self.cluster = is_cluster_client(url_or_client)
        elif isinstance(url_or_client, _ASYNC_TYPES):
            self._async = url_or_client
            self.target = describe_client(url_or_client)
            self.cluster = is_cluster_client(url_or_client)
        else:
            raise ConfigError(
                parameter,
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
        return self._sync is not None or self._build_sync is not None

    def topology(self) -> Topology | None:
        """The ``redis+cluster://`` or ``redis+sentinel://`` URL taken apart (None otherwise)."""
        if self._url is None or topology_scheme(self._url) is None:
            return None
        return parse_topology(self._url)

    def built_sync_client(self) -> SyncRedisClient | None:
        """The sync client if it exists yet (a cluster URL's is built on first use)."""
        return self._sync

    @property
    def has_async(self) -> bool:
        """True when the asyncio face has a client (a URL or an asyncio client was given)."""
        return self._url is not None or self._async is not None

    def sync_client(self) -> SyncRedisClient:
        """The sync client.

        Raises:
            TypeError: the link was built from an asyncio client.
            RedisClusterException: a ``redis+cluster://`` client built now
                found no node to learn the cluster's layout from.
        """
        client = self._sync
        if client is None:
            if self._build_sync is None:
                raise TypeError(
                    f"redis at {self.target}: no sync client; pass a URL or a redis.Redis"
                )
            with self._lock:
                client = self._sync
                if client is None:
                    # Raises what redis-py raises when no node answers: the caller's
                    # request fails as any other would, and the next one tries again.
                    client = self._sync = self._build_sync()
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
        """CALL: make the request. SKIP: Redis is down, use the fallback (for threads).

        While the gate is down, the caller admitted when a probe is due starts
        it (a PING on a daemon thread with the sync client; on a task of the
        running event loop when the link has no sync client) and is told SKIP
        like every other caller: the PING's outcome settles the gate. Never
        answers PROBE.
        """
        return self._admit(on_loop=False)

    def admit_async(self) -> Admission:
        """`admit` for a caller on a running event loop (a plain call, not awaited).

        A due probe runs as a task on the running loop with that loop's
        asyncio client (on a thread with the sync client when the link has no
        asyncio client).
        """
        return self._admit(on_loop=True)

    def _admit(self, *, on_loop: bool) -> Admission:
        if self._closed and not self.health.available:
            # A closed link starts no probe (its clients are closed), and leaves the
            # interval's probe of a shared gate to the pieces still open.
            return Admission.SKIP
        decision = self.health.admit()
        if decision is not Admission.PROBE:
            return decision
        if (on_loop and self.has_async) or (self._sync is None and _running_loop() is not None):
            self._probe_on_loop()
        else:
            self._probe_on_thread()
        return Admission.SKIP

    def succeeded(self) -> None:
        """Report a request that Redis answered; brings the gate back up."""
        self.health.record_success()

    def failed(self, exc: BaseException) -> BackendError:
        """Classify ``exc``, tell the gate, and return it as a `BackendError` (not raised).

        * an outage (`is_outage`: refused, timed out, cluster unreachable)
          counts towards taking the gate down, except on a cluster the outage
          of one node or slot (`is_node_outage`) while the gate is up: that
          is the failure of this call only, the other nodes still answer;
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
            if not (self.cluster and health.available and is_node_outage(exc)):
                health.record_failure(exc)
        elif is_answer(exc):
            health.record_success()
        elif not health.available:
            health.record_failure(exc)
        if isinstance(exc, BackendError):
            return exc
        return to_backend_error(exc, self.target)

    def log_reply(self, log: logging.Logger, what: str, exc: BaseException) -> None:
        """Log an error reply (``READONLY``, ``OOM`` ...) without flooding ``log``.

        A replica or a full server answers every call with one: the first
        is logged at once (WARNING), the ones after are counted and logged at
        most once per `REPLY_REPORT_INTERVAL` seconds of the gate's clock, with
        how many were not. The piece counts every one in its own stats.
        """
        now = self.health.monotonic()
        with self._reply_lock:
            if now < self._next_reply_line:
                self._unlogged_replies += 1
                return
            unlogged, self._unlogged_replies = self._unlogged_replies, 0
            self._next_reply_line = now + REPLY_REPORT_INTERVAL
        more = f" ({unlogged} more since the last line)" if unlogged else ""
        log.warning(
            "redis at %s: %s failed: %s: %s%s", self.target, what, type(exc).__name__, exc, more
        )

    # -- the background probe ------------------------------------------------------

    def _probe_on_thread(self) -> None:
        thread = threading.Thread(target=self._ping, name=PROBE_THREAD_NAME, daemon=True)
        with self._lock:
            if self._closed:  # closed since admit: no probe (the next interval gives one)
                return
            self._probe_threads.add(thread)
        try:
            thread.start()
        except RuntimeError as exc:  # no new threads (e.g. at interpreter shutdown)
            self._probe_threads.discard(thread)
            self.failed(exc)  # the gate must hear back; the next interval probes again

    def _ping(self) -> None:
        try:
            client: Any = self.sync_client()
            if self.cluster:
                _cluster_answers(client.cluster_info(target_nodes=client.RANDOM))
            else:
                client.ping()
        except BaseException as exc:  # the gate must hear back, whatever happened
            self.failed(exc)
        else:
            self.succeeded()
        finally:
            self._probe_threads.discard(threading.current_thread())

    def _probe_on_loop(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._closed:
                return
            # Tasks left pending on loops closed since then will never finish.
            self._probe_tasks -= {t for t in self._probe_tasks if t.get_loop().is_closed()}
            task = loop.create_task(self._aping(), name=PROBE_THREAD_NAME)
            self._probe_tasks.add(task)
        task.add_done_callback(self._probe_done)

    async def _aping(self) -> None:
        if self._closed:  # closed before the task ran: no client to build
            return
        try:
            client: Any = self.async_client()
            if self.cluster:
                _cluster_answers(await client.cluster_info(target_nodes=client.RANDOM))
            else:
                await client.execute_command("PING")
        except Exception as exc:
            self.failed(exc)
        else:
            self.succeeded()

    def _probe_done(self, task: asyncio.Task[None]) -> None:
        self._probe_tasks.discard(task)
        # A probe cancelled (before it ran, or while waiting for Redis) never reached
        # its except clause: the gate must hear back, or it never probes again.
        if task.cancelled():
            self.failed(asyncio.CancelledError())

    def _stop_probes(self) -> list[asyncio.Task[None]]:
        """Start no more probes; cancel the probe tasks. Returns this loop's tasks."""
        with self._lock:
            self._closed = True
            tasks = list(self._probe_tasks)
        loop = _running_loop()
        mine: list[asyncio.Task[None]] = []
        for task in tasks:
            owner = task.get_loop()
            if owner is loop:
                task.cancel()
                mine.append(task)
            elif not owner.is_closed():
                owner.call_soon_threadsafe(task.cancel)
        return mine

    def _join_probe_threads(self) -> None:
        """Wait for probe threads still running (their sockets are shut when the link owns them)."""
        for thread in list(self._probe_threads):
            if thread is not threading.current_thread():
                thread.join(_JOIN_TIMEOUT)

    # -- closing ---------------------------------------------------------------------

    def close(self) -> None:
        """Stop the probe; close the clients built from a URL (a client passed in is left open).

        No probe is started afterwards; probe tasks are cancelled. Asyncio
        clients are closed without waiting (their sockets are shut); prefer
        `aclose` from a running event loop. A probe thread still running is
        then waited for: closing the sync client built from a URL shuts its
        socket, so it ends at once even on a frozen server with no timeout.
        Calling it again does nothing more.
        """
        self._stop_probes()
        self._close_clients()
        self._join_probe_threads()

    def _close_clients(self) -> None:
        if self._url is None:
            return
        with self._lock:
            clients, self._per_loop = list(self._per_loop.values()), {}
        for client in clients:
            _sever(client)
        if self._sync is not None:
            close_sync_client(self._sync)

    async def aclose(self) -> None:
        """`close`, awaiting this loop's cancelled probe task and its asyncio client."""
        tasks = self._stop_probes()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._url is not None:
            loop = asyncio.get_running_loop()
            with self._lock:
                current = self._per_loop.pop(loop, None)
            self._close_clients()
            if current is not None:
                await current.aclose()
        self._join_probe_threads()

    def __repr__(self) -> str:
        state = "up" if self.health.available else "down"
        return f"RedisLink(target={self.target!r}, state={state})"


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _cluster_answers(info: Any) -> None:
    """A cluster probe's verdict: Redis is back when a node says the cluster is served."""
    if isinstance(info, dict) and info.get("cluster_state") not in ("ok", b"ok"):
        raise ClusterDownError("CLUSTERDOWN The cluster is down (cluster_state is not ok)")


def _sever(client: AsyncRedisClient) -> None:
    """Close an asyncio client's sockets without its event loop (which may be closed).

    The connections belong to another loop, so they cannot be awaited from
    here; shutting the sockets releases them on the server at once, and the
    transports are collected with the client.
    """
    pool: Any = getattr(client, "connection_pool", None)
    if pool is None:
        nodes = getattr(client, "get_nodes", None)  # a cluster: each node's connections
        connections = [c for node in nodes() for c in node._connections] if nodes else []
    else:
        connections = [*pool._available_connections, *pool._in_use_connections]
        manager = getattr(pool, "sentinel_manager", None)
        for sentinel in manager.sentinels if manager is not None else ():
            _sever(sentinel)
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
