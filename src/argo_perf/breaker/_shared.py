"""Opt-in breaker state shared across processes through Redis.

What is shared is small and expires by itself:

* ``<prefix>{name}:open`` — set by the process that trips the circuit, with a
  TTL of the open time (``PX``) and the open-until instant in Redis time as
  its value; other processes read its remaining TTL (``PTTL``, measured by
  Redis, so no two hosts' clocks are compared) and open for that long.
* ``<prefix>{name}:probe`` — the probe lease (``SET NX PX``): in half-open,
  one process at a time probes the dependency; the others stay open until
  the lease ends.

Redis is touched only on slow paths: when a call fails while closed (to
learn whether another process opened the circuit), when the circuit trips,
and when a half-open probe is admitted or settles. A successful call in the
closed state never touches Redis. Every Redis error, timeout or odd reply
falls back to the local breaker; the shared
:class:`~argo_perf._redis.BackendHealth` gate stops touching Redis at all
during an outage.
"""

from __future__ import annotations

import logging
import math
from typing import Any, cast

from .._redis import (
    REDIS_ERRORS,
    Admission,
    AsyncRedisClient,
    BackendHealth,
    SyncRedisClient,
    async_client,
    describe_client,
    is_outage,
    sync_client,
)
from ..clock import Clock
from ..errors import ConfigError
from ._stats import SharedStateStats

__all__ = ["RedisBreakerState"]

logger = logging.getLogger("argo_perf.breaker")

_PUBLISH_OPEN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('SET', KEYS[1], now + ms, 'PX', ms)
end
if redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('DEL', KEYS[2])
end
return now + ms
"""

_ACQUIRE_PROBE = """
local left = redis.call('PTTL', KEYS[1])
if left > 0 then
  return {0, left}
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, 0}
end
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return {1, 0}
end
return {0, redis.call('PTTL', KEYS[2])}
"""

_RELEASE_PROBE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisBreakerState:
    """Share circuit openings and the half-open probe between processes through Redis.

    Pass one to :class:`~argo_perf.breaker.CircuitBreaker` (``shared=``) or to
    a :class:`~argo_perf.breaker.CircuitBreakerRegistry`. A URL builds both a
    sync and an asyncio client (50 ms timeouts, no hidden retries); an
    existing client serves only its own face (a sync client the sync faces, an
    asyncio client the async faces) and the other face stays local.

    Args:
        url_or_client: a ``redis://`` / ``rediss://`` / ``unix://`` URL or a
            redis-py client (sync or asyncio).
        prefix: key prefix (default ``"argo_perf:breaker:"``); the breaker's
            name is put in a hash tag, so both keys of a breaker live in one
            Redis Cluster slot.
        clock: time source of the backend-health gate.
        health: the backend-health gate to use (default: a new one for this
            state); pass one to share a gate with other Redis-backed pieces.

    Failure behaviour: a Redis error (connection refused, timeout, an error
    reply such as `WRONGTYPE`) or a malformed reply is logged, counted (see
    `stats`, a [SharedStateStats][argo_perf.breaker.SharedStateStats]) and answered
    as "nothing shared", so the local breaker decides alone. After a few
    outage errors the backend-health gate skips Redis and probes it once per
    second; an error reply means Redis is up, so it never takes the gate down
    and a probe that gets one brings it back up. Errors that are not Redis's
    are not swallowed.

    Raises:
        ConfigError: a `prefix` that is not a string, a `health` that is not a
            `BackendHealth`, a bad URL or client.

    Example:
        >>> state = RedisBreakerState("redis://localhost:6379/0")  # doctest: +SKIP
        >>> breaker = CircuitBreaker("massive", shared=state)  # doctest: +SKIP
    """

    def __init__(
        self,
        url_or_client: str | SyncRedisClient | AsyncRedisClient,
        *,
        prefix: str = "argo_perf:breaker:",
        clock: Clock | None = None,
        health: BackendHealth | None = None,
    ) -> None:
        if not isinstance(prefix, str):
            raise ConfigError("prefix", prefix, "must be a string")
        self.prefix = prefix
        self._sync: SyncRedisClient | None = None
        self._async: AsyncRedisClient | None = None
        self._owned: list[Any] = []
        if isinstance(url_or_client, str):
            self._sync, _ = sync_client(url_or_client)
            self._async, _ = async_client(url_or_client)
            self._owned = [self._sync, self._async]
        else:
            try:
                self._sync, _ = sync_client(url_or_client)  # type: ignore[arg-type]
            except ConfigError:
                self._async, _ = async_client(url_or_client)  # type: ignore[arg-type]
        client = self._sync if self._sync is not None else self._async
        assert client is not None
        self.target = describe_client(client)
        if health is None:
            health = BackendHealth(self.target, clock=clock)
        elif not isinstance(health, BackendHealth):
            raise ConfigError("health", health, "must be a BackendHealth or None")
        self.health = health
        self._errors = 0
        self._outages = 0
        self._bad_replies = 0
        self._skipped = 0
        self._scripts: dict[str, Any] = {}
        self._async_scripts: dict[str, Any] = {}
        if self._sync is not None:
            for name, lua in _SCRIPTS.items():
                self._scripts[name] = cast(Any, self._sync).register_script(lua)
        if self._async is not None:
            for name, lua in _SCRIPTS.items():
                self._async_scripts[name] = cast(Any, self._async).register_script(lua)

    @property
    def stats(self) -> SharedStateStats:
        """A `SharedStateStats` snapshot of this state's dealings with Redis."""
        return SharedStateStats(
            target=self.target,
            available=self.health.available,
            errors=self._errors,
            outages=self._outages,
            bad_replies=self._bad_replies,
            skipped=self._skipped,
        )

    @property
    def errors(self) -> int:
        """Redis errors so far; the older name of `stats.errors`."""
        return self._errors

    @property
    def bad_replies(self) -> int:
        """Malformed replies so far; the older name of `stats.bad_replies`."""
        return self._bad_replies

    def _keys(self, name: str) -> list[str]:
        base = f"{self.prefix}{{{name}}}"
        return [f"{base}:open", f"{base}:probe"]

    # -- sync ---------------------------------------------------------------------

    def publish_open(self, name: str, token: str, seconds: float) -> None:
        """Tell the other processes the circuit is open for ``seconds`` (never shortens)."""
        ms = _millis(seconds)
        if ms is None or self._sync is None or not self._admit():
            return
        try:
            self._scripts["publish"](keys=self._keys(name), args=[ms, token])
        except REDIS_ERRORS as exc:  # the local breaker decides
            self._failed(exc, "publish_open", name)
            return
        self.health.record_success()

    def open_remaining(self, name: str) -> float | None:
        """Seconds the circuit stays open according to another process, or None."""
        if self._sync is None or not self._admit():
            return None
        try:
            reply = self._sync.pttl(self._keys(name)[0])
        except REDIS_ERRORS as exc:  # the local breaker decides
            self._failed(exc, "open_remaining", name)
            return None
        self.health.record_success()
        return self._remaining(reply, name)

    def acquire_probe(self, name: str, token: str, lease: float) -> tuple[bool, float] | None:
        """Take the probe lease: (True, 0) granted, (False, seconds) open or busy, None unknown."""
        ms = _millis(lease)
        if ms is None or self._sync is None or not self._admit():
            return None
        try:
            reply = self._scripts["acquire"](keys=self._keys(name), args=[token, ms])
        except REDIS_ERRORS as exc:  # the local breaker decides
            self._failed(exc, "acquire_probe", name)
            return None
        self.health.record_success()
        return self._lease_answer(reply, name)

    def release_probe(self, name: str, token: str) -> None:
        """Give the probe lease back if this breaker holds it."""
        if self._sync is None or not self._admit():
            return
        try:
            self._scripts["release"](keys=self._keys(name)[1:], args=[token])
        except REDIS_ERRORS as exc:  # the local breaker decides
            self._failed(exc, "release_probe", name)
            return
        self.health.record_success()

    def close(self) -> None:
        """Close the sync client this object built (a client passed in is left open)."""
        if self._sync is not None and self._sync in self._owned:
            self._sync.close()

    # -- asyncio ------------------------------------------------------------------

    async def publish_open_async(self, name: str, token: str, seconds: float) -> None:
        """The asyncio form of :meth:`publish_open`."""
        ms = _millis(seconds)
        if ms is None or self._async is None or not self._admit():
            return
        try:
            await self._async_scripts["publish"](keys=self._keys(name), args=[ms, token])
        except REDIS_ERRORS as exc:  # the local breaker decides
            self._failed(exc, "publish_open", name)
            return
        self.health.record_success()

    async def open_remaining_async(self, name: str) -> float | None:
        """The asyncio form of :meth:`open_remaining`."""
        if self._async is None or not self._admit():
            return None
        try:
            reply = await self._async.pttl(self._keys(name)[0])
        except REDIS_ERRORS as exc:  # the local breaker decides
            self._failed(exc, "open_remaining", name)
            return None
        self.health.record_success()
        return self._remaining(reply, name)

    async def acquire_probe_async(
        self, name: str, token: str, lease: float
    ) -> tuple[bool, float] | None:
        """The asyncio form of :meth:`acquire_probe`."""
        ms = _millis(lease)
        if ms is None or self._async is None or not self._admit():
            return None
        try:
            reply = await self._async_scripts["acquire"](keys=self._keys(name), args=[token, ms])
        except REDIS_ERRORS as exc:  # the local breaker decides
            self._failed(exc, "acquire_probe", name)
            return None
        self.health.record_success()
        return self._lease_answer(reply, name)

    async def release_probe_async(self, name: str, token: str) -> None:
        """The asyncio form of :meth:`release_probe`."""
        if self._async is None or not self._admit():
            return
        try:
            await self._async_scripts["release"](keys=self._keys(name)[1:], args=[token])
        except REDIS_ERRORS as exc:  # the local breaker decides
            self._failed(exc, "release_probe", name)
            return
        self.health.record_success()

    async def aclose(self) -> None:
        """Close the clients this object built (clients passed in are left open)."""
        self.close()
        if self._async is not None and self._async in self._owned:
            await self._async.aclose()

    # -- internals ----------------------------------------------------------------

    def _admit(self) -> bool:
        if self.health.admit() is Admission.SKIP:
            self._skipped += 1
            return False
        return True

    def _failed(self, exc: BaseException, what: str, name: str) -> None:
        self._errors += 1
        if is_outage(exc):
            self._outages += 1
            self.health.record_failure(exc)
        else:
            # Redis answered (WRONGTYPE, OOM, NOSCRIPT ...): it is up. Telling the gate
            # also ends a probe that got this answer, which would otherwise hold the
            # gate down until the next probe is due.
            self.health.record_success()
            logger.warning("circuit %r: redis %s failed at %s: %r", name, what, self.target, exc)

    def _bad(self, reply: object, what: str, name: str) -> None:
        self._bad_replies += 1
        logger.warning(
            "circuit %r: ignoring a malformed %s reply from redis at %s: %.80r",
            name,
            what,
            self.target,
            reply,
        )

    def _remaining(self, reply: object, name: str) -> float | None:
        if isinstance(reply, bool) or not isinstance(reply, int):
            self._bad(reply, "PTTL", name)
            return None
        return reply / 1000.0 if reply > 0 else None

    def _lease_answer(self, reply: object, name: str) -> tuple[bool, float] | None:
        if (
            not isinstance(reply, list)
            or len(reply) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in reply)
        ):
            self._bad(reply, "probe lease", name)
            return None
        granted, ms = reply
        if granted == 1:
            return True, 0.0
        if ms <= 0:  # a lease key without a TTL was not written by a breaker
            self._bad(reply, "probe lease", name)
            return None
        return False, ms / 1000.0

    def __repr__(self) -> str:
        return f"RedisBreakerState(target={self.target!r}, prefix={self.prefix!r})"


_SCRIPTS = {"publish": _PUBLISH_OPEN, "acquire": _ACQUIRE_PROBE, "release": _RELEASE_PROBE}


def _millis(seconds: float) -> int | None:
    if not 0 < seconds < math.inf:
        return None
    return max(1, math.ceil(seconds * 1000))
