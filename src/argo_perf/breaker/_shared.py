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
`argo_perf._redis.BackendHealth` gate stops touching Redis at all
during an outage.

Every request is a Lua script kept in a ``.lua`` file beside this module
(package data, read through ``importlib.resources``) and run by its SHA1; a
server that does not know it (restarted, flushed) is sent it once.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError

from .._redis import (
    REDIS_ERRORS,
    Admission,
    AsyncRedisClient,
    BackendHealth,
    RedisLink,
    SyncRedisClient,
    is_outage,
)
from ..clock import Clock
from ..errors import ConfigError
from ._stats import SharedStateStats

__all__ = ["RedisBreakerState"]

logger = logging.getLogger("argo_perf.breaker")


@dataclass(frozen=True, slots=True)
class _Script:
    """A Lua script run by its SHA1 (``EVALSHA``), loaded on a server that lacks it."""

    name: str
    source: str
    sha: str

    @classmethod
    def load(cls, name: str) -> _Script:
        """The script in ``<name>.lua`` beside this module (shipped as package data)."""
        source = resources.files(__package__).joinpath(f"{name}.lua").read_text(encoding="utf-8")
        return cls(name, source, hashlib.sha1(source.encode()).hexdigest())

    def command(self, keys: list[str], args: list[Any]) -> tuple[Any, ...]:
        return ("EVALSHA", self.sha, len(keys), *keys, *args)

    def with_source(self, command: tuple[Any, ...]) -> tuple[Any, ...]:
        """``command`` as an ``EVAL`` of the source, which also caches it on the key's node.

        (Not ``SCRIPT LOAD``: on a Redis Cluster it names no key, so no node.)
        """
        return ("EVAL", self.source, *command[2:])


_PUBLISH = _Script.load("publish_open")
_ACQUIRE = _Script.load("acquire_probe")
_RELEASE = _Script.load("release_probe")
_REMAINING = _Script.load("open_remaining")
_WITHDRAW = _Script.load("withdraw_open")


class _NoReply:
    """What a request returns when Redis was skipped or failed: the local breaker decides."""


_NO_REPLY = _NoReply()


class _Answer:
    """The reply of one request, filled in inside `RedisBreakerState._exchange`."""

    __slots__ = ("reply",)

    def __init__(self) -> None:
        self.reply: Any = _NO_REPLY


class RedisBreakerState:
    """Share circuit openings and the half-open probe between processes through Redis.

    Pass one to `argo_perf.breaker.CircuitBreaker` (``shared=``) or to
    a `argo_perf.breaker.CircuitBreakerRegistry`. A URL builds a sync
    client and one asyncio client per event loop (50 ms timeouts, no hidden
    retries, bounded pools); an existing client serves only its own face (a
    sync client the sync faces, an asyncio client the async faces) and the
    other face stays local.

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
    outage errors the backend-health gate skips Redis and checks it with a
    background PING once per second, which no caller waits for; an error
    reply means Redis is up, so it never takes the gate down. A request
    interrupted midway (a cancelled task, `KeyboardInterrupt`) is re-raised.
    Errors that are not Redis's are not swallowed.

    Raises:
        ConfigError: a `prefix` that is not a string, a `health` that is not a
            `BackendHealth`, a bad URL or client.

    Examples:
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
        self._link = RedisLink(url_or_client, health=health, clock=clock)
        self.target = self._link.target
        self.health = self._link.health
        self._errors = 0
        self._outages = 0
        self._bad_replies = 0
        self._skipped = 0

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

    def _outage_count(self) -> int:
        """Requests so far that Redis did not answer (refused, timed out).

        A breaker compares two readings around a request to learn whether it
        met an outage (another thread's outage may count too: that only makes
        it more careful).
        """
        return self._outages

    def _count_skipped(self) -> None:
        """Count a request a breaker did not send because Redis just failed it in the same call."""
        self._skipped += 1

    def _keys(self, name: str) -> list[str]:
        base = f"{self.prefix}{{{name}}}"
        return [f"{base}:open", f"{base}:probe"]

    # -- sync ---------------------------------------------------------------------

    def publish_open(self, name: str, token: str, seconds: float) -> int:
        """Tell the other processes the circuit is open for ``seconds`` (never shortens).

        Returns the open-until instant published (Redis time, ms); 0 when a
        longer opening was in force (nothing of ours to withdraw) or Redis was
        not reached.
        """
        ms = _millis(seconds)
        if ms is None:
            return 0
        return _instant(self._request(_PUBLISH, self._keys(name), [ms, token]))

    def withdraw_open(self, name: str, token: str, until: int) -> None:
        """Withdraw the opening published as ``until`` if still in force; free the lease."""
        self._request(_WITHDRAW, self._keys(name), [until, token])

    def open_remaining(self, name: str) -> float | None:
        """Seconds the circuit stays open according to another process, or None."""
        return self._remaining(self._request(_REMAINING, self._keys(name)[:1], []), name)

    def acquire_probe(self, name: str, token: str, lease: float) -> tuple[bool, float] | None:
        """Take the probe lease: (True, 0) granted, (False, seconds) open or busy, None unknown."""
        ms = _millis(lease)
        if ms is None:
            return None
        return self._lease_answer(self._request(_ACQUIRE, self._keys(name), [token, ms]), name)

    def release_probe(self, name: str, token: str) -> None:
        """Give the probe lease back if this breaker holds it."""
        self._request(_RELEASE, self._keys(name)[1:], [token])

    def close(self) -> None:
        """Close the clients this object built (a client passed in is left open)."""
        self._link.close()

    def _request(self, script: _Script, keys: list[str], args: list[Any]) -> Any:
        """Run ``script`` on the sync client: its reply, or `_NO_REPLY`."""
        if not self._admitted(self._link.has_sync, on_loop=False):
            return _NO_REPLY
        command = script.command(keys, args)
        with self._exchange(script) as answer:
            client: Any = self._link.sync_client()  # a cluster URL's is built on first use
            try:
                answer.reply = client.execute_command(*command)
            except NoScriptError:  # a restarted or flushed server: load it once
                answer.reply = client.execute_command(*script.with_source(command))
        return answer.reply

    # -- asyncio ------------------------------------------------------------------

    async def publish_open_async(self, name: str, token: str, seconds: float) -> int:
        """The asyncio form of `publish_open`."""
        ms = _millis(seconds)
        if ms is None:
            return 0
        return _instant(await self._request_async(_PUBLISH, self._keys(name), [ms, token]))

    async def open_remaining_async(self, name: str) -> float | None:
        """The asyncio form of `open_remaining`."""
        reply = await self._request_async(_REMAINING, self._keys(name)[:1], [])
        return self._remaining(reply, name)

    async def acquire_probe_async(
        self, name: str, token: str, lease: float
    ) -> tuple[bool, float] | None:
        """The asyncio form of `acquire_probe`."""
        ms = _millis(lease)
        if ms is None:
            return None
        reply = await self._request_async(_ACQUIRE, self._keys(name), [token, ms])
        return self._lease_answer(reply, name)

    async def release_probe_async(self, name: str, token: str) -> None:
        """The asyncio form of `release_probe`."""
        await self._request_async(_RELEASE, self._keys(name)[1:], [token])

    async def aclose(self) -> None:
        """Close the clients this object built (clients passed in are left open)."""
        await self._link.aclose()

    async def _request_async(self, script: _Script, keys: list[str], args: list[Any]) -> Any:
        """Run ``script`` on this event loop's client: its reply, or `_NO_REPLY`."""
        if not self._admitted(self._link.has_async, on_loop=True):
            return _NO_REPLY
        client: Any = self._link.async_client()
        command = script.command(keys, args)
        with self._exchange(script) as answer:
            try:
                answer.reply = await client.execute_command(*command)
            except NoScriptError:
                answer.reply = await client.execute_command(*script.with_source(command))
        return answer.reply

    # -- internals ----------------------------------------------------------------

    def _admitted(self, has_client: bool, *, on_loop: bool) -> bool:
        """True when this face has a client and the gate lets the request through.

        While Redis is down the link probes it in the background, on the
        caller's face (a task on this loop for ``on_loop``, else a thread).
        """
        if not has_client:
            return False
        link = self._link
        if (link.admit_async() if on_loop else link.admit()) is Admission.SKIP:
            self._skipped += 1
            return False
        return True

    @contextlib.contextmanager
    def _exchange(self, script: _Script) -> Iterator[_Answer]:
        """Around one request of either face: tell the link how it ended.

        A Redis error is counted and swallowed (the answer stays `_NO_REPLY`:
        the local breaker decides); a request cut short (cancelled,
        interrupted) is re-raised, and a probe it held goes back to the gate.
        """
        answer = _Answer()
        try:
            yield answer
        except REDIS_ERRORS as exc:
            self._failed(exc, script.name)
            answer.reply = _NO_REPLY
        except BaseException as exc:
            self._link.failed(exc)
            raise
        else:
            self._link.succeeded()

    def _failed(self, exc: BaseException, what: str) -> None:
        self._errors += 1
        # The link tells the gate: an outage counts towards taking it down; an
        # error reply (WRONGTYPE, OOM, NOSCRIPT ...) means Redis is up, which also
        # ends a probe that got it.
        self._link.failed(exc)
        if is_outage(exc):
            self._outages += 1
        else:
            self._link.log_reply(logger, what, exc)

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
        if reply is _NO_REPLY:
            return None
        if isinstance(reply, bool) or not isinstance(reply, int):
            self._bad(reply, "PTTL", name)
            return None
        return reply / 1000.0 if reply > 0 else None

    def _lease_answer(self, reply: object, name: str) -> tuple[bool, float] | None:
        if reply is _NO_REPLY:
            return None
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


def _millis(seconds: float) -> int | None:
    if not 0 < seconds < math.inf:
        return None
    return max(1, math.ceil(seconds * 1000))


def _instant(reply: object) -> int:
    """A published open-until instant (ms), or 0 for anything else (no reply)."""
    return reply if type(reply) is int and reply > 0 else 0
