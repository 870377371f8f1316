"""Redis plumbing shared by every Redis-backed primitive.

Two things live here, once:

* building a redis-py client (sync or asyncio) from a URL with safe defaults:
  a short socket timeout and no hidden redis-py retries, because a trading
  service would rather fall back in 50 ms than wait for a frozen Redis for a
  minute, and a bounded connection pool, so a burst of callers queues for a
  few connections instead of opening one each; and
* :class:`BackendHealth`, the gate in front of a Redis tier: after a few
  consecutive outage errors no call touches Redis until a single probe per
  interval sees it answer again; each state change is logged once.

The gate is plain logic with an injected clock and does no I/O, so the sync and
asyncio faces share it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import logging
import math
import queue
import re
import threading
import time
from typing import Any, TypeAlias, Union
from urllib.parse import parse_qs, unquote_plus, urlsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.cluster
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from .clock import Clock, SystemClock
from .errors import BackendError, ConfigError

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_SOCKET_TIMEOUT",
    "Admission",
    "AsyncRedisClient",
    "BackendHealth",
    "SyncRedisClient",
    "async_client",
    "describe_client",
    "is_outage",
    "redact_url",
    "sync_client",
    "to_backend_error",
]

logger = logging.getLogger("argo_perf.backend")

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

_SCHEMES = ("redis", "rediss", "unix")


_QUERY_PARAM = re.compile(r"[?&]([^=&?#]*)=")
_SAFE_USER = re.compile(r"[A-Za-z0-9._~-]*")


def _secret_spans(url: str) -> list[tuple[int, int]]:
    """Where ``url`` may hold a secret, as (start, end) index pairs.

    Deliberately not a URL parser: a password with an unencoded ``#``, ``/``,
    ``?`` or ``@`` makes parsers split the URL in the wrong place. The user
    information ends at the *last* ``@`` (so everything between the scheme and
    it is taken as secret, apart from a plain user name before a ``:``), and
    so is everything after a query parameter named like ``password``.
    Redacting too much is harmless; too little is a leak.
    """
    spans: list[tuple[int, int]] = []
    scheme_end = url.find("://")
    start = scheme_end + 3 if scheme_end >= 0 else 0
    at = url.rfind("@")
    if at >= start:
        user, colon, _ = url[start:at].partition(":")
        if colon and _SAFE_USER.fullmatch(user):
            start += len(user) + 1
        spans.append((start, at))
    for match in _QUERY_PARAM.finditer(url):
        if "pass" in unquote_plus(match.group(1)).lower():
            # To the end: an unencoded '&' or '#' may be part of the password.
            spans.append((match.end(), len(url)))
            break
    return spans


def _mask(text: str, spans: list[tuple[int, int]]) -> str:
    out: list[str] = []
    pos = 0
    for start, end in sorted(spans):
        if end <= pos:
            continue
        out.append(text[pos:start] if start > pos else "")
        out.append("***")
        pos = max(pos, end)
    out.append(text[pos:])
    return "".join(out)


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***`` (for logs, reprs and errors).

    Safe for any string, well-formed or not: ``redis://user:p#ss@host/0``
    becomes ``redis://user:***@host/0`` although a URL parser would take
    ``#ss@host/0`` for a fragment. What is redacted: everything between the
    scheme and the last ``@`` except a plain user name, and everything after
    a ``password=`` query parameter's ``=``.
    """
    return _mask(url, _secret_spans(url))


def _check_url(url: str) -> None:
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in _SCHEMES:
        raise ConfigError("url", redact_url(url), "must be a redis://, rediss:// or unix:// URL")
    start, at = len(scheme) + 3, url.rfind("@")
    if at > start and any(char in url[start:at] for char in "/?#"):
        # A parser would end the user information early and take the rest of the
        # password for a host, path, query or fragment.
        raise ConfigError(
            "url",
            redact_url(url),
            "has '/', '?' or '#' before its last '@': percent-encode them in the password "
            "(urllib.parse.quote(password, safe=''))",
        )


def _check_timeout(name: str, value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ConfigError(name, value, "must be a positive finite number of seconds or None")


def _check_options(
    socket_timeout: float | None, connect_timeout: float | None, max_connections: int
) -> None:
    _check_timeout("socket_timeout", socket_timeout)
    _check_timeout("connect_timeout", connect_timeout)
    if isinstance(max_connections, bool) or not isinstance(max_connections, int):
        raise ConfigError("max_connections", max_connections, "must be an int >= 1")
    if max_connections < 1:
        raise ConfigError("max_connections", max_connections, "must be an int >= 1")


def _follow_socket_timeout(pool: Any, url: str) -> None:
    """Queue patience is the socket timeout, also when the URL sets ``?socket_timeout=``."""
    if "timeout" not in parse_qs(urlsplit(url).query):
        pool.timeout = pool.connection_kwargs.get("socket_timeout")


def _bad_url(url: str, exc: ValueError) -> ConfigError:
    if _secret_spans(url):
        # The parser's message may quote a piece of the URL (a "port" that is really
        # the part of a password before an unencoded '#', or a whole netloc).
        reason = (
            "a port, host or option could not be parsed; percent-encode # / ? @ : in a password"
        )
    else:
        reason = str(exc)
    return ConfigError("url", redact_url(url), f"must be a valid redis URL ({reason})")


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
    """Whether a pooled connection holds an open socket (redis-py 5 to 8 alike)."""
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


class _SyncPool(redis.BlockingConnectionPool):
    """A bounded sync pool whose callers queue while Redis keeps answering."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["queue_class"] = _QueuedLifo
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]


class _AsyncPool(redis.asyncio.BlockingConnectionPool):
    """The asyncio counterpart of `_SyncPool`.

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


def sync_client(
    url_or_client: str | SyncRedisClient,
    *,
    socket_timeout: float | None = DEFAULT_SOCKET_TIMEOUT,
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    **kwargs: Any,
) -> tuple[SyncRedisClient, bool]:
    """Return ``(client, owned)`` for a URL or an existing sync client.

    A URL builds a :class:`redis.Redis` with the given timeouts, no retries
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
    _check_url(url_or_client)
    _check_options(socket_timeout, connect_timeout, max_connections)
    try:
        pool = _SyncPool.from_url(
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
        raise _bad_url(url_or_client, exc) from None
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
    """The asyncio counterpart of :func:`sync_client` (builds a :class:`redis.asyncio.Redis`)."""
    if isinstance(url_or_client, (redis.asyncio.Redis, redis.asyncio.cluster.RedisCluster)):
        return url_or_client, False
    if not isinstance(url_or_client, str):
        raise ConfigError(
            "url_or_client",
            type(url_or_client).__name__,
            "must be a redis URL or a redis.asyncio.Redis / RedisCluster client",
        )
    _check_url(url_or_client)
    _check_options(socket_timeout, connect_timeout, max_connections)
    try:
        pool = _AsyncPool.from_url(
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
        raise _bad_url(url_or_client, exc) from None
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


def is_outage(exc: BaseException) -> bool:
    """True when ``exc`` means Redis could not be reached or did not answer in time.

    A server that answered with an error (``WRONGTYPE``, ``OOM``, ``NOSCRIPT``)
    is up: that is a data or capacity problem, not an outage.
    """
    return isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError)) or (
        isinstance(exc, BackendError) and exc.__cause__ is not None and is_outage(exc.__cause__)
    )


def to_backend_error(exc: BaseException, target: str) -> BackendError:
    """Wrap a redis-py or socket error as our :class:`BackendError` (chained)."""
    err = BackendError(f"redis at {target}: {type(exc).__name__}: {exc}")
    err.__cause__ = exc
    return err


REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError)
"""What a Redis call can raise; translate with :func:`to_backend_error`."""


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return "error"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Admission(enum.Enum):
    """What :meth:`BackendHealth.admit` tells a caller to do."""

    CALL = "call"
    """Redis is considered up: make the call."""
    PROBE = "probe"
    """Redis is down and this caller holds the one probe of the interval."""
    SKIP = "skip"
    """Redis is down: do not touch it, use the fallback."""


class BackendHealth:
    """Fail-fast gate in front of a Redis tier (shared by every Redis-backed primitive).

    Up, every caller is admitted (one attribute read). After
    ``failure_threshold`` consecutive outage failures it goes down: callers are
    told to skip Redis, except that one caller per ``probe_interval`` seconds
    is handed the probe. A successful probe (or any success) brings it back up.
    A probe that reports neither success nor failure within ``probe_interval``
    is given up and the next caller gets a new one. Each transition is logged
    once at WARNING (down) or INFO (up).

    Thread-safe; does no I/O.

    Example:
        >>> from argo_perf.clock import ManualClock
        >>> gate = BackendHealth("redis://x", failure_threshold=1, clock=ManualClock())
        >>> gate.record_failure(OSError("refused"))
        >>> gate.admit()
        <Admission.SKIP: 'skip'>
    """

    def __init__(
        self,
        target: str,
        *,
        failure_threshold: int = 3,
        probe_interval: float = 1.0,
        clock: Clock | None = None,
    ) -> None:
        if (
            isinstance(failure_threshold, bool)
            or not isinstance(failure_threshold, int)
            or failure_threshold < 1
        ):
            raise ConfigError("failure_threshold", failure_threshold, "must be an int >= 1")
        if (
            isinstance(probe_interval, bool)
            or not isinstance(probe_interval, (int, float))
            or not 0 < probe_interval < math.inf
        ):
            raise ConfigError("probe_interval", probe_interval, "must be finite seconds > 0")
        self.target = target
        self.failure_threshold = failure_threshold
        self.probe_interval = float(probe_interval)
        self._clock = clock if clock is not None else SystemClock()
        self._lock = threading.Lock()
        self._up = True
        self._failures = 0
        self._next_probe = 0.0
        self._probing = False
        self._failed_before = False
        self.transitions = 0

    @property
    def available(self) -> bool:
        """True while Redis is considered up."""
        return self._up

    def admit(self) -> Admission:
        """Decide whether this caller may touch Redis now."""
        if self._up:
            return Admission.CALL
        with self._lock:
            if self._up:
                return Admission.CALL
            now = self._clock.monotonic()
            if now >= self._next_probe:
                # Also when the previous probe never reported back (cancelled, or
                # an error its caller did not count): a lost probe must not keep
                # the gate down for good.
                self._probing = True
                self._next_probe = now + self.probe_interval
                return Admission.PROBE
            return Admission.SKIP

    def seconds_until_probe(self) -> float:
        """Seconds until the next probe is due (0.0 while up or when it is due)."""
        if self._up:
            return 0.0
        return max(0.0, self._next_probe - self._clock.monotonic())

    def record_success(self) -> None:
        """Note that a Redis call succeeded; brings the gate back up if it was down."""
        if self._up and not self._failures:
            return
        with self._lock:
            self._failures = 0
            self._probing = False
            if self._up:
                return
            self._up = True
            self.transitions += 1
        logger.info("redis at %s is reachable again; using it", self.target)

    def record_failure(self, exc: BaseException | None = None) -> None:
        """Note an outage failure (connection refused, timeout); may take the gate down.

        The first failure the gate ever sees is logged at WARNING at once (a
        mistyped URL must not stay silent until the threshold is reached);
        after that only state changes are logged.
        """
        with self._lock:
            self._failures += 1
            now = self._clock.monotonic()
            first = not self._failed_before
            self._failed_before = True
            went_down = False
            if self._probing:
                self._probing = False
                self._next_probe = now + self.probe_interval
            elif self._up and self._failures >= self.failure_threshold:
                went_down = True
                self._up = False
                self._next_probe = now + self.probe_interval
                self.transitions += 1
        # Logged outside the lock. A first failure that takes the gate down is one line.
        if not went_down:
            if first:
                self._log_first_failure(exc)
            return
        logger.warning(
            "redis at %s is unreachable after %d consecutive failures (%s); "
            "skipping it, probing every %.3gs",
            self.target,
            self.failure_threshold,
            _reason(exc),
            self.probe_interval,
        )

    def _log_first_failure(self, exc: BaseException | None) -> None:
        logger.warning(
            "redis at %s could not be reached (%s); using the fallback for this call, "
            "skipping redis after %d consecutive failures",
            self.target,
            _reason(exc),
            self.failure_threshold,
        )

    def __repr__(self) -> str:
        state = "up" if self._up else "down"
        return f"BackendHealth(target={self.target!r}, state={state})"
