"""Building a redis-py client (sync or asyncio) from a URL, with safe defaults."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, TypeAlias, Union
from urllib.parse import parse_qs, urlsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.asyncio.sentinel
import redis.cluster
import redis.sentinel
from redis.backoff import NoBackoff
from redis.retry import Retry

from .. import _validate
from ..errors import ConfigError
from ._pool import AsyncPool, AsyncSentinelPool, ClusterNodePool, SentinelPool, SyncPool
from ._url import CLUSTER, Topology, bad_url, check_url, parse_topology, topology_scheme

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_SOCKET_TIMEOUT",
    "AsyncRedisClient",
    "SyncRedisClient",
    "async_client",
    "close_sync_client",
    "describe_client",
    "is_cluster_client",
    "sync_builder",
    "sync_client",
]

DEFAULT_SOCKET_TIMEOUT = 0.05
"""Seconds a Redis command may take before it counts as an outage."""
DEFAULT_CONNECT_TIMEOUT = 0.5
"""Seconds a TCP/unix connect to Redis may take.

Longer than the socket timeout on purpose: a connect is measured on the caller's
clock, which on a busy event loop or a loaded host includes the time spent waiting
for a turn, so 50 ms failed healthy connects under a burst. A frozen or killed Redis
does not need it to be noticed (the kernel accepts or refuses the connection at
once, and the handshake is bounded by the socket timeout); only an unreachable host
pays it, and the health gate limits that to a few calls and one probe per interval.
"""
DEFAULT_MAX_CONNECTIONS = 16
"""Connections a client built from a URL opens at most; further callers queue for one."""

SyncRedisClient: TypeAlias = Union["redis.Redis", "redis.cluster.RedisCluster"]
AsyncRedisClient: TypeAlias = Union["redis.asyncio.Redis", "redis.asyncio.cluster.RedisCluster"]


def _check_options(
    socket_timeout: float | None, connect_timeout: float | None, max_connections: int
) -> None:
    _validate.optional(_validate.positive_seconds, "socket_timeout", socket_timeout)
    _validate.optional(_validate.positive_seconds, "connect_timeout", connect_timeout)
    _validate.count("max_connections", max_connections)


def _follow_socket_timeout(pool: Any, url: str) -> None:
    """Queue patience is the socket timeout, also when the URL sets ``?socket_timeout=``."""
    if "timeout" not in parse_qs(urlsplit(url).query):
        pool.timeout = pool.connection_kwargs.get("socket_timeout")


def _topology_kwargs(
    topology: Topology, socket_timeout: float | None, connect_timeout: float | None
) -> dict[str, Any]:
    """The connection options of a cluster node or a Sentinel-managed master."""
    options = topology.options
    return {
        "username": topology.username,
        "password": topology.password,
        "socket_timeout": options.get("socket_timeout", socket_timeout),
        "socket_connect_timeout": options.get("socket_connect_timeout", connect_timeout),
        "decode_responses": False,
    }


def _sentinel_kwargs(topology: Topology, kwargs: dict[str, Any], retry: Any) -> dict[str, Any]:
    """How to reach the sentinels: the same timeouts, their own credentials."""
    options = topology.options
    return {
        "socket_timeout": kwargs["socket_timeout"],
        "socket_connect_timeout": kwargs["socket_connect_timeout"],
        "retry": retry,
        "username": options.get("sentinel_username"),
        "password": options.get("sentinel_password"),
    }


def _master_options(
    topology: Topology, kwargs: dict[str, Any], retry: Any, bound: int
) -> dict[str, Any]:
    """The options of a Sentinel-managed master's bounded pool (both faces)."""
    return {
        "db": topology.db,
        "retry": retry,
        "retry_on_timeout": False,
        "max_connections": bound,
        "timeout": kwargs["socket_timeout"],  # a queued caller's patience
        **kwargs,
    }


def _sync_topology_builder(
    topology: Topology, max_connections: int
) -> Callable[[dict[str, Any]], SyncRedisClient]:
    def build(kwargs: dict[str, Any]) -> SyncRedisClient:
        bound = int(topology.options.get("max_connections", max_connections))  # type: ignore[call-overload]
        retry = Retry(NoBackoff(), 0)
        if topology.is_cluster:
            # Bounded per node: redis-py builds one pool per node with this class. The
            # constructor reads the command table from one master; with a retry per
            # node it moves on when that master is down. Then no hidden retries.
            cluster = redis.cluster.RedisCluster(
                startup_nodes=[
                    redis.cluster.ClusterNode(h, p)  # type: ignore[no-untyped-call]
                    for h, p in topology.nodes
                ],
                require_full_coverage=False,
                connection_pool_class=ClusterNodePool,
                max_connections=bound,
                retry=Retry(NoBackoff(), len(topology.nodes)),
                **kwargs,
            )
            cluster.set_retry(retry)
            return cluster
        sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            list(topology.nodes),
            sentinel_kwargs=_sentinel_kwargs(topology, kwargs, retry),
        )
        client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            topology.service,
            connection_pool_class=SentinelPool,
            **_master_options(topology, kwargs, retry, bound),
        )
        return client

    return build


def sync_builder(
    url: str,
    *,
    socket_timeout: float | None = DEFAULT_SOCKET_TIMEOUT,
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
) -> Callable[[], SyncRedisClient]:
    """Check ``url`` and the options now; return what builds the sync client.

    A redis-py Redis Cluster client learns the cluster's layout in its
    constructor (it connects), so a ``redis+cluster://`` client is built when
    the returned function is called, which raises what redis-py raises when no
    node answers. Every other form is built here, without connecting.

    Raises:
        ConfigError: as `sync_client`.
    """
    if topology_scheme(url) is None:
        client, _ = sync_client(
            url,
            socket_timeout=socket_timeout,
            connect_timeout=connect_timeout,
            max_connections=max_connections,
        )
        return lambda: client
    topology = parse_topology(url)
    _check_options(socket_timeout, connect_timeout, max_connections)
    build = _sync_topology_builder(topology, max_connections)
    kwargs = _topology_kwargs(topology, socket_timeout, connect_timeout)
    if topology.is_cluster:
        return lambda: build(kwargs)
    client = build(kwargs)
    return lambda: client


def sync_client(
    url_or_client: str | SyncRedisClient,
    *,
    socket_timeout: float | None = DEFAULT_SOCKET_TIMEOUT,
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    **kwargs: Any,
) -> tuple[SyncRedisClient, bool]:
    """Return ``(client, owned)`` for a URL or an existing sync client.

    A ``redis+cluster://`` URL builds a `redis.cluster.RedisCluster` (which
    connects to learn the layout: see `sync_builder`) and a
    ``redis+sentinel://`` URL a `redis.Redis` on the service's master found
    through the sentinels; both get the same timeouts, no retries and a
    bounded pool (per node for a cluster).

    A URL builds a `redis.Redis` with the given timeouts, no retries
    (``Retry(NoBackoff(), 0)``), ``decode_responses=False`` and a bounded pool
    of ``max_connections`` connections (a ``?max_connections=`` in the URL
    wins, as redis-py parses it). A caller that finds every connection busy
    queues for one as long as Redis keeps answering: it gives up (a
    ``ConnectionError``, an outage) once ``socket_timeout`` passes without a
    healthy connection coming back. ``owned`` is True, so the caller closes
    the client. An existing client is used as it is (its owner chose its
    timeouts and pool) and ``owned`` is False.

    Raises:
        ConfigError: not a (well-formed) redis URL, not a sync redis-py
            client, a timeout that is not a positive finite number, or
            ``max_connections`` not an int >= 1.
    """
    if isinstance(url_or_client, (redis.Redis, redis.cluster.RedisCluster)):
        return url_or_client, False
    if not isinstance(url_or_client, str):
        raise ConfigError(
            "url_or_client",
            type(url_or_client).__name__,
            "must be a redis URL or a redis.Redis / redis.cluster.RedisCluster client",
        )
    check_url(url_or_client)
    if topology_scheme(url_or_client) is not None:
        build = sync_builder(
            url_or_client,
            socket_timeout=socket_timeout,
            connect_timeout=connect_timeout,
            max_connections=max_connections,
        )
        return build(), True
    _check_options(socket_timeout, connect_timeout, max_connections)
    try:
        pool = SyncPool.from_url(
            url_or_client,
            max_connections=max_connections,
            timeout=socket_timeout,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
            decode_responses=False,
            **kwargs,
        )
    except ValueError as exc:  # a malformed port, host or option in the URL
        raise bad_url(url_or_client, exc) from None
    _follow_socket_timeout(pool, url_or_client)
    return redis.Redis.from_pool(pool), True


def async_client(
    url_or_client: str | AsyncRedisClient,
    *,
    socket_timeout: float | None = DEFAULT_SOCKET_TIMEOUT,
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    **kwargs: Any,
) -> tuple[AsyncRedisClient, bool]:
    """The asyncio counterpart of `sync_client` (builds a `redis.asyncio.Redis`)."""
    if isinstance(url_or_client, (redis.asyncio.Redis, redis.asyncio.cluster.RedisCluster)):
        return url_or_client, False
    if not isinstance(url_or_client, str):
        raise ConfigError(
            "url_or_client",
            type(url_or_client).__name__,
            "must be a redis URL or a redis.asyncio.Redis / RedisCluster client",
        )
    check_url(url_or_client)
    _check_options(socket_timeout, connect_timeout, max_connections)
    if topology_scheme(url_or_client) is not None:
        topology = parse_topology(url_or_client)
        options = _topology_kwargs(topology, socket_timeout, connect_timeout)
        return _async_topology_client(topology, options, max_connections), True
    try:
        pool = AsyncPool.from_url(
            url_or_client,
            max_connections=max_connections,
            timeout=socket_timeout,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            retry=redis.asyncio.retry.Retry(NoBackoff(), 0),
            retry_on_timeout=False,
            decode_responses=False,
            **kwargs,
        )
    except ValueError as exc:  # a malformed port, host or option in the URL
        raise bad_url(url_or_client, exc) from None
    _follow_socket_timeout(pool, url_or_client)
    return redis.asyncio.Redis.from_pool(pool), True


def _async_topology_client(
    topology: Topology, kwargs: dict[str, Any], max_connections: int
) -> AsyncRedisClient:
    retry = redis.asyncio.retry.Retry(NoBackoff(), 0)
    if topology.is_cluster:
        # redis-py's asyncio cluster fails a caller at once when a node's connections
        # are all busy (it never queues), so our bound of 16 would turn a burst into
        # errors: its own per-node limit (100) applies unless the URL sets one.
        limit = topology.options.get("max_connections")
        extra: dict[str, Any] = {} if limit is None else {"max_connections": limit}
        return redis.asyncio.cluster.RedisCluster(
            startup_nodes=[redis.asyncio.cluster.ClusterNode(h, p) for h, p in topology.nodes],
            require_full_coverage=False,
            retry=retry,
            **extra,
            **kwargs,
        )
    sentinel = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        list(topology.nodes), sentinel_kwargs=_sentinel_kwargs(topology, kwargs, retry)
    )
    bound = int(topology.options.get("max_connections", max_connections))  # type: ignore[call-overload]
    client: redis.asyncio.Redis = sentinel.master_for(
        str(topology.service),
        connection_pool_class=AsyncSentinelPool,
        **_master_options(topology, kwargs, retry, bound),
    )
    return client


def is_cluster_client(client: object) -> bool:
    """True for a sync or asyncio redis-py Redis Cluster client."""
    return isinstance(client, (redis.cluster.RedisCluster, redis.asyncio.cluster.RedisCluster))


def close_sync_client(client: SyncRedisClient) -> None:
    """Close a sync client and, for a Sentinel-managed one, its connections to the sentinels."""
    client.close()
    manager = getattr(getattr(client, "connection_pool", None), "sentinel_manager", None)
    if manager is not None:
        with contextlib.suppress(Exception):
            manager.close()


def _nodes(pairs: list[tuple[str, int]]) -> str:
    return ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in pairs)


def describe_client(client: SyncRedisClient | AsyncRedisClient) -> str:
    """A short, password-free description of where a client points (for logs and reprs)."""
    if is_cluster_client(client):
        startup: Any = getattr(client, "startup_nodes", None) or []
        if isinstance(startup, dict):
            startup = list(startup.values())
        return f"{CLUSTER}://{_nodes([(n.host, int(n.port)) for n in startup])}"
    pool = getattr(client, "connection_pool", None)
    manager = getattr(pool, "sentinel_manager", None)
    if manager is not None:
        sentinels = [s.connection_pool.connection_kwargs for s in manager.sentinels]
        where = _nodes([(kw.get("host", "?"), kw.get("port", 26379)) for kw in sentinels])
        db = pool.connection_kwargs.get("db", 0)  # type: ignore[union-attr]
        return f"redis+sentinel://{where}/{pool.service_name}/{db}"  # type: ignore[union-attr]
    kw: dict[str, Any] = getattr(pool, "connection_kwargs", {}) if pool is not None else {}
    if "path" in kw:
        return f"unix://{kw['path']}"
    if "host" in kw:
        return f"redis://{kw['host']}:{kw.get('port', 6379)}/{kw.get('db', 0)}"
    return type(client).__name__
