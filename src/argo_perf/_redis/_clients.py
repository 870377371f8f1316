"""Building a redis-py client (sync or asyncio) from a URL, with safe defaults."""

from __future__ import annotations

from typing import Any, TypeAlias, Union
from urllib.parse import parse_qs, urlsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.cluster
from redis.backoff import NoBackoff
from redis.retry import Retry

from .. import _validate
from ..errors import ConfigError
from ._pool import AsyncPool, SyncPool
from ._url import bad_url, check_url

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_SOCKET_TIMEOUT",
    "AsyncRedisClient",
    "SyncRedisClient",
    "async_client",
    "describe_client",
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


def sync_client(
    url_or_client: str | SyncRedisClient,
    *,
    socket_timeout: float | None = DEFAULT_SOCKET_TIMEOUT,
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    **kwargs: Any,
) -> tuple[SyncRedisClient, bool]:
    """Return ``(client, owned)`` for a URL or an existing sync client.

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


def describe_client(client: SyncRedisClient | AsyncRedisClient) -> str:
    """A short, password-free description of where a client points (for logs and reprs)."""
    pool = getattr(client, "connection_pool", None)
    kw: dict[str, Any] = getattr(pool, "connection_kwargs", {}) if pool is not None else {}
    if "path" in kw:
        return f"unix://{kw['path']}"
    if "host" in kw:
        return f"redis://{kw['host']}:{kw.get('port', 6379)}/{kw.get('db', 0)}"
    return type(client).__name__
