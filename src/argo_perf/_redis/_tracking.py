"""`Tracker`: one connection that hears every write under a key prefix (CLIENT TRACKING).

Redis's server-assisted client-side caching in broadcasting mode: a
connection asks ``CLIENT TRACKING ON REDIRECT <its own id> BCAST PREFIX p``
and then ``SUBSCRIBE __redis__:invalidate`` (RESP2), and Redis publishes to
it the name of every key under ``p`` that anyone modifies, expires or
evicts (and a nil for a flush). It needs no list of keys read, so it works
for keys this process never read and costs the same for any number of keys.

The connection is dedicated (never in a pool) and read by a daemon thread,
so the sync and asyncio faces share it. The thread PINGs every
``heartbeat`` seconds: a PONG not back by the next PING means the channel is
lost (a frozen server, a partition), like a reset or a closed socket. Redis
documents the rule for a lost channel: the client can no longer trust what it
copied, so the listener is told (`TrackingListener.lost`) and every
invalidation since may have been missed. The thread reconnects at once, then
every ``retry_interval`` seconds, and tells the listener when the channel is
up again (`TrackingListener.up`).

The listener is held weakly: when the cache that listens is gone, the thread
ends and closes its connection. A cluster is tracked per master: a
`ClusterTracker` keeps one `Tracker` per master and reports them to its
listener as one channel, up only while every one is.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Protocol, TypeAlias

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.connection
import redis.asyncio.sentinel
import redis.cluster
import redis.connection
import redis.sentinel
from redis.backoff import NoBackoff
from redis.retry import Retry
from typing_extensions import Self

from ..errors import ConfigError
from ._clients import AsyncRedisClient, SyncRedisClient, describe_client

__all__ = [
    "INVALIDATION_CHANNEL",
    "SENTINEL_HELLO_CHANNEL",
    "TRACKER_THREAD_NAME",
    "Tracker",
    "TrackingListener",
    "follows_sentinels",
    "tracking_connection",
]

INVALIDATION_CHANNEL = "__redis__:invalidate"
"""The channel Redis publishes invalidations to for a RESP2 connection (ACL: ``&`` it)."""

SENTINEL_HELLO_CHANNEL = "__sentinel__:hello"
"""Where sentinels announce, on every server they watch, which one is the master."""

TRACKER_THREAD_NAME = "argo-perf-redis-tracking"
"""The name of the daemon thread that reads a `Tracker`'s connection."""

_JOIN_TIMEOUT = 5.0

# redis-py's connection methods are untyped: one alias keeps the untyped part in one place.
Connection: TypeAlias = Any

# The connection classes a dedicated RESP2 connection can be built like, by the
# client's own pool class; a sentinel-managed one is built for the master found.
_SYNC_CLASSES: dict[type[Any], type[Any]] = {
    redis.sentinel.SentinelManagedConnection: redis.connection.Connection,
    redis.sentinel.SentinelManagedSSLConnection: redis.connection.SSLConnection,
    redis.asyncio.sentinel.SentinelManagedConnection: redis.connection.Connection,
    redis.asyncio.sentinel.SentinelManagedSSLConnection: redis.connection.SSLConnection,
    redis.connection.Connection: redis.connection.Connection,
    redis.connection.SSLConnection: redis.connection.SSLConnection,
    redis.connection.UnixDomainSocketConnection: redis.connection.UnixDomainSocketConnection,
    redis.asyncio.connection.Connection: redis.connection.Connection,
    redis.asyncio.connection.SSLConnection: redis.connection.SSLConnection,
    redis.asyncio.connection.UnixDomainSocketConnection: (
        redis.connection.UnixDomainSocketConnection
    ),
}
# Where and who to connect as; the rest (retries, parser, protocol, timeouts) is ours.
_KEPT = frozenset(
    {
        "host",
        "port",
        "path",
        "db",
        "username",
        "password",
        "credential_provider",
        "client_name",
        "socket_keepalive",
        "socket_keepalive_options",
    }
)


class TrackingListener(Protocol):
    """What a `Tracker` tells (from its thread)."""

    def invalidated(self, keys: list[bytes] | None) -> None:
        """These keys changed (None: the database was flushed)."""

    def up(self) -> None:
        """The channel is subscribed: every write from now on is reported."""

    def lost(self, reason: str) -> None:
        """The channel is down: writes since the last report may have been missed."""


def _options(
    source: dict[str, Any], socket_timeout: float, connect_timeout: float | None
) -> dict[str, Any]:
    """Where and who to connect as, from a client's connection options; the rest is ours."""
    kwargs = {
        name: value for name, value in source.items() if name in _KEPT or name.startswith("ssl_")
    }
    kwargs.update(
        protocol=2,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        retry=Retry(NoBackoff(), 0),
    )
    return kwargs


def _kind(connection_class: type[Any]) -> type[Any]:
    kind = _SYNC_CLASSES.get(connection_class)
    if kind is None:
        raise ConfigError(
            "coherent",
            True,
            f"needs plain TCP, TLS or unix-socket connections, not {connection_class.__name__}",
        )
    return kind


def tracking_connection(
    client: SyncRedisClient | AsyncRedisClient,
    *,
    socket_timeout: float,
    connect_timeout: float | None,
) -> Callable[[], Connection]:
    """A factory of dedicated RESP2 connections to the server ``client`` talks to.

    Built like the client's own connections (address, database, credentials,
    TLS), with ``socket_timeout`` (the tracker's heartbeat: this connection is
    on no caller's path) and no retries. For a Sentinel-managed client each
    call asks the sentinels for the service's master (raising
    ``MasterNotFoundError`` while none is known), so a reconnect after a
    failover goes to the promoted replica.

    Raises:
        ConfigError: a cluster client (see `ClusterTracker`), or a pool whose
            connections are not plain TCP, TLS, unix-socket or
            sentinel-managed ones.
    """
    if isinstance(client, (redis.cluster.RedisCluster, redis.asyncio.cluster.RedisCluster)):
        raise ConfigError(
            "coherent", True, f"tracks a cluster per node ({describe_client(client)})"
        )
    pool: Any = client.connection_pool
    kind = _kind(pool.connection_class)
    kwargs = _options(pool.connection_kwargs, socket_timeout, connect_timeout)
    manager = getattr(pool, "sentinel_manager", None)
    if manager is None:
        return lambda: kind(**kwargs)
    # A sync Sentinel of our own (the client's may be asyncio, and is not ours to
    # share across threads): the same sentinels and credentials, our timeouts.
    sentinels = [s.connection_pool.connection_kwargs for s in manager.sentinels]
    first = sentinels[0]
    sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        [(kw["host"], kw["port"]) for kw in sentinels],
        sentinel_kwargs={
            "username": first.get("username"),
            "password": first.get("password"),
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": connect_timeout,
            "retry": Retry(NoBackoff(), 0),
        },
    )
    service = pool.service_name

    def connect() -> Connection:
        try:
            host, port = sentinel.discover_master(service)  # type: ignore[no-untyped-call]
        finally:  # asked once per connect: keep no connection to the sentinels open
            for client in sentinel.sentinels:
                client.connection_pool.disconnect()
        return kind(host=host, port=port, **kwargs)

    return connect


_HELLO = SENTINEL_HELLO_CHANNEL.encode()


def _check_master(connection: Connection, hello: bytes) -> None:
    """Raise when a sentinel's hello names a master other than the server connected to."""
    fields = hello.split(b",")  # ip,port,runid,epoch,name,master ip,master port,epoch
    if len(fields) < 7:
        return
    master = (fields[5].decode(), int(fields[6]))
    if master != (connection.host, int(connection.port)):
        raise ConnectionError(
            f"the sentinels name {_address(master)} as the master now, "
            f"not {_address((connection.host, int(connection.port)))}"
        )


def follows_sentinels(client: SyncRedisClient | AsyncRedisClient) -> bool:
    """True for a client whose master is found through Sentinel (sync or asyncio)."""
    return getattr(getattr(client, "connection_pool", None), "sentinel_manager", None) is not None


class _Channel(ABC):
    """What `Tracker` and `ClusterTracker` share: a listener held weakly, a daemon thread."""

    def __init__(
        self,
        prefix: str,
        listener: TrackingListener,
        *,
        heartbeat: float,
        retry_interval: float,
        target: str,
    ) -> None:
        self._prefix = prefix
        self._listener = weakref.ref(listener)
        self._heartbeat = heartbeat
        self._retry_interval = retry_interval
        self.target = target
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=TRACKER_THREAD_NAME, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @abstractmethod
    def _run(self) -> None:
        """The thread: keep the channel open until stopped or the listener is gone."""

    def _tell(self, what: str, *args: Any) -> bool:
        """Call the listener; False when it is gone (the thread then ends)."""
        listener = self._listener()
        if listener is None:
            self._stop.set()
            return False
        getattr(listener, what)(*args)
        return True


class Tracker(_Channel):
    """Keeps one tracking connection for ``prefix`` open and reports what it hears.

    Args:
        connect: builds a new (unconnected) RESP2 connection.
        prefix: the key prefix tracked (``BCAST PREFIX``).
        listener: told about invalidations and channel changes; held weakly.
        heartbeat: seconds between PINGs; a PONG missing at the next PING
            loses the channel.
        retry_interval: seconds between reconnect attempts after the first.
        target: where the connection goes, password-free (for messages).
        follow_sentinels: the server is a Sentinel service's master: also
            listen to the sentinels' announcements on it, and drop the channel
            (and reconnect to the master found) once they name another master.
            A failover that demotes a master without stopping it leaves its
            connections open; this is how the channel learns of it.
    """

    def __init__(
        self,
        connect: Callable[[], Connection],
        prefix: str,
        listener: TrackingListener,
        *,
        heartbeat: float,
        retry_interval: float,
        target: str,
        follow_sentinels: bool = False,
    ) -> None:
        super().__init__(
            prefix, listener, heartbeat=heartbeat, retry_interval=retry_interval, target=target
        )
        self._connect = connect
        self._follow_sentinels = follow_sentinels
        self._connection: Connection | None = None

    def close(self, *, wait: bool = True) -> None:
        """Stop: shut the connection (a read waiting on it ends at once); join the thread."""
        self._stop.set()
        with self._lock:
            connection = self._connection
        if connection is not None:
            connection.disconnect()
        if wait and self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(_JOIN_TIMEOUT)

    # -- the thread ----------------------------------------------------------------

    def _run(self) -> None:
        retry_at = 0.0
        while not self._stop.is_set():
            self._stop.wait(max(0.0, retry_at - time.monotonic()))
            if self._stop.is_set():
                break
            subscribed = False
            connection: Connection | None = None
            try:
                # Inside the try: finding the address may be I/O (a Sentinel's master).
                connection = self._connect()
                with self._lock:
                    self._connection = connection
                if self._stop.is_set():
                    break
                self._subscribe(connection)
                subscribed = True
                if not self._tell("up"):
                    break
                self._listen(connection)
            except Exception as exc:
                if self._stop.is_set():
                    break
                if not self._tell("lost", f"{type(exc).__name__}: {exc}"):
                    break
            finally:
                with self._lock:
                    self._connection = None
                if connection is not None:
                    connection.disconnect()
            # A channel that was up is reopened at once (a reset, a failover);
            # a failed attempt waits for the next interval.
            retry_at = time.monotonic() + (0.0 if subscribed else self._retry_interval)

    def _subscribe(self, connection: Connection) -> None:
        connection.connect()
        connection.send_command("CLIENT", "ID")
        own_id = connection.read_response()
        connection.send_command(
            "CLIENT", "TRACKING", "ON", "REDIRECT", own_id, "BCAST", "PREFIX", self._prefix
        )
        connection.read_response()
        # Subscribed last: a RESP2 connection in subscribe mode takes no CLIENT command.
        connection.send_command("SUBSCRIBE", INVALIDATION_CHANNEL)
        connection.read_response()
        if self._follow_sentinels:
            connection.send_command("SUBSCRIBE", SENTINEL_HELLO_CHANNEL)
            # Without the ACL right to the channel, a failover that kills the
            # master is still noticed; one that only demotes it is not.
            with contextlib.suppress(redis.ResponseError):
                connection.read_response()

    def _listen(self, connection: Connection) -> None:
        heartbeat = self._heartbeat
        awaiting_pong = False
        next_ping = time.monotonic() + heartbeat
        while not self._stop.is_set() and self._listener() is not None:
            wait = next_ping - time.monotonic()
            if wait > 0.0 and connection.can_read(timeout=wait):
                reply = connection.read_response()
                kind = reply[0]
                if kind == b"message" and reply[1] == _HELLO:
                    _check_master(connection, reply[2])
                elif kind == b"message":
                    if not self._tell("invalidated", reply[2]):
                        return
                elif kind == b"pong":
                    awaiting_pong = False
                continue
            if awaiting_pong:
                raise TimeoutError(f"no answer to PING within {heartbeat:g}s")
            connection.send_command("PING")
            awaiting_pong = True
            next_ping = time.monotonic() + heartbeat


Address: TypeAlias = tuple[str, int]


def _address(address: Address) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
