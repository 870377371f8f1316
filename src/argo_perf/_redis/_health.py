"""The backend-health gate in front of a Redis tier, and what counts as an outage."""

from __future__ import annotations

import enum
import logging
import threading

from redis.exceptions import ClusterDownError, RedisClusterException, RedisError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .. import _validate
from ..clock import Clock, _given_or_system
from ..errors import BackendError

__all__ = [
    "REDIS_ERRORS",
    "Admission",
    "BackendHealth",
    "is_answer",
    "is_node_outage",
    "is_outage",
    "to_backend_error",
]

logger = logging.getLogger("argo_perf.backend")


def is_outage(exc: BaseException) -> bool:
    """True when ``exc`` means Redis could not be reached or did not answer in time.

    Refused, reset or timed-out connections, socket errors, and cluster errors
    raised before any node answered (``RedisClusterException``: no node covers
    a slot, the cluster could not be initialised) are outages, and so is a
    ``CLUSTERDOWN`` reply (the cluster, or the slot, is not served). A server
    that answered with another error reply (``WRONGTYPE``, ``OOM``,
    ``NOSCRIPT``, ``READONLY``) is up: that is a data or capacity problem. A
    `BackendError` is an outage when the error it wraps is one.
    """
    return isinstance(exc, _OUTAGES) or (
        isinstance(exc, BackendError) and exc.__cause__ is not None and is_outage(exc.__cause__)
    )


def is_answer(exc: BaseException) -> bool:
    """True when ``exc`` is an error reply: Redis is up and answered (``WRONGTYPE``, ``OOM``)."""
    if isinstance(exc, ClusterDownError):
        return False
    return isinstance(exc, ResponseError) or (
        isinstance(exc, BackendError) and exc.__cause__ is not None and is_answer(exc.__cause__)
    )


def is_node_outage(exc: BaseException) -> bool:
    """On a Redis Cluster: True when ``exc`` is the outage of one node or slot only.

    A refused, reset or timed-out connection to one node, or ``CLUSTERDOWN Hash
    slot not served``, was raised by a client that could still reach the
    cluster (redis-py raises `RedisClusterException` when no node answers while
    it relearns the layout after such an error, and ``CLUSTERDOWN The cluster is
    down`` when the whole cluster refuses): the keys of the other nodes' slots
    are still served.
    """
    if isinstance(exc, BackendError) and exc.__cause__ is not None:
        return is_node_outage(exc.__cause__)
    if isinstance(exc, ClusterDownError):
        return "slot" in str(exc).lower()
    return isinstance(exc, _OUTAGES) and not isinstance(exc, RedisClusterException)


def to_backend_error(exc: BaseException, target: str) -> BackendError:
    """Wrap a redis-py or socket error as our `BackendError` (chained).

    ``target`` must already be password-free (`redact_url` or `describe_client`).
    """
    err = BackendError(f"redis at {target}: {type(exc).__name__}: {exc}")
    err.__cause__ = exc
    return err


REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, RedisClusterException)
"""What a Redis call can raise (``RedisClusterException`` is not a ``RedisError``)."""

_OUTAGES: tuple[type[BaseException], ...] = (
    ClusterDownError,
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    RedisClusterException,
)


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return "error"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Admission(enum.Enum):
    """What `BackendHealth.admit` tells a caller to do."""

    CALL = "call"
    """Redis is considered up: make the call."""
    PROBE = "probe"
    """Redis is down and this caller holds the one probe of the interval.

    `BackendHealth.admit` hands it out; `RedisLink.admit` never returns it: the
    link runs the probe itself (a background PING) and answers SKIP."""
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

    Examples:
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
        # A string must be a ConfigError, not a TypeError, and an infinite interval
        # would never probe Redis again.
        self.failure_threshold = _validate.count("failure_threshold", failure_threshold)
        self.probe_interval = _validate.positive_seconds("probe_interval", probe_interval)
        self.target = target
        self._clock = _given_or_system(clock)
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

    def monotonic(self) -> float:
        """The gate's clock, in seconds (for pieces that pace their own reports by it)."""
        return self._clock.monotonic()

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
