"""`RedisTokenBucket`: the token arithmetic run by a Lua script on state kept in Redis."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import warnings
from collections.abc import Iterable
from importlib import resources
from typing import Any, NamedTuple, overload

from redis.exceptions import NoScriptError

from .. import _validate as check
from .._redis import (
    REDIS_ERRORS,
    Admission,
    AsyncRedisClient,
    BackendHealth,
    RedisLink,
    SyncRedisClient,
    is_outage,
)
from ..clock import Clock, _given_or_system
from ..errors import ConfigError
from ._gcra import Quota, _check_timeout, _checked_quotas, _windows
from ._local import TokenBucket, _Counters
from ._stats import RedisBucketStats

logger = logging.getLogger("argo_perf.ratelimit")

# The arithmetic of ``_TokenMath`` for state kept in Redis; its header describes
# the keys, the arguments and the replies.
_SCRIPT = resources.files(__package__).joinpath("bucket.lua").read_text(encoding="utf-8")
_SCRIPT_SHA = hashlib.sha1(_SCRIPT.encode()).hexdigest()


class _Queued(NamedTuple):
    """A reservation queued in Redis: the seconds to sleep, and its id in the queue."""

    wait: float
    id: int


class _RedisCounters(_Counters):
    __slots__ = ("errors", "fallback_calls", "redis_calls", "script_loads")

    def __init__(self) -> None:
        super().__init__()
        self.redis_calls = self.fallback_calls = self.errors = self.script_loads = 0


class RedisTokenBucket:
    """A token bucket kept in Redis: one limit shared by every process and host.

    Same surface and semantics as `TokenBucket` (first come, first
    served waiting; ``timeout``; cancelled waiters hand their tokens back),
    with these properties:

    * waiting reservations are queued in Redis (a second key in the same
      hash slot, ``{key}:queue``, present while someone waits and until 2 s after
      the last of them is granted), so a
      cancelled waiter of any process gives its tokens back by the same rule
      as in `TokenBucket`, and `penalize` in any process holds
      back the waiters of every process;
    * one round trip per acquire that does not wait: a Lua script run with
      ``EVALSHA`` (reloaded by itself after ``NOSCRIPT``, e.g. when Redis
      restarted) decides and, when the caller may wait, reserves the tokens
      and replies how long to sleep; a waiter makes one more when it wakes,
      to learn whether a penalty moved its grant (and sleeps on if so);
    * time is Redis ``TIME``, so hosts whose clocks disagree share one limit;
    * the key is ``{prefix}{{{key}}}`` (a hash tag, so it works on Redis
      Cluster) and expires when idle (within 2 s of the bucket being full again);
    * while Redis is unreachable (the shared backend-health gate, which stops
      touching Redis after a few consecutive failures and probes it once per
      ``probe_interval``), acquires are decided by a local `TokenBucket`
      with ``fallback_share`` of the rate and burst: never unlimited, never
      blocked on a dead server; it returns to Redis by itself when a probe
      succeeds.

    ``url_or_client`` is a URL (both the sync and the async faces work; the
    clients get 50 ms timeouts, no hidden retries and a bounded pool, and the
    asyncio face gets one client per event loop, the client of a loop that
    ended being closed), a sync redis-py client (sync face only) or an asyncio
    one (async face only); a client passed in is never closed by the bucket.
    A face without a client raises `TypeError`. The older keyword
    ``client_or_url=`` still works, with a `DeprecationWarning`.

    Args:
        url_or_client: ``redis://...`` URL or a redis-py client.
        key: the bucket's name; every process using the same key and Redis
            shares the limit (they should agree on ``rate``, ``burst`` and
            ``quotas``).
        rate: tokens added per second (> 0).
        burst: bucket size (>= 1).
        quotas: extra windows, as for `TokenBucket`.
        prefix: key prefix (default ``"argo_perf:ratelimit:"``).
        fallback_share: fraction of rate and burst the local fallback bucket
            gets (default 0.25, in (0, 1]); e.g. 1 / number of processes.
        health: a `BackendHealth` gate to share with other Redis-backed
            objects on the same server (default: its own).
        clock: sleeper for waits and the fallback bucket's time.

    Raises:
        ConfigError: bad URL, key, rate, burst, quotas, share or health.
        TypeError: ``url_or_client``, ``key``, ``rate`` or ``burst`` missing.

    Examples:
        >>> bucket = RedisTokenBucket("redis://localhost:6379/0", "vendor:massive", 5, 10)
        >>> bucket.try_acquire()  # doctest: +SKIP
        True
    """

    @overload
    def __init__(
        self,
        url_or_client: str | SyncRedisClient | AsyncRedisClient,
        key: str,
        rate: float,
        burst: float,
        *,
        quotas: Iterable[Quota] = (),
        prefix: str = "argo_perf:ratelimit:",
        fallback_share: float = 0.25,
        health: BackendHealth | None = None,
        clock: Clock | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self,
        *,
        client_or_url: str | SyncRedisClient | AsyncRedisClient,
        key: str,
        rate: float,
        burst: float,
        quotas: Iterable[Quota] = (),
        prefix: str = "argo_perf:ratelimit:",
        fallback_share: float = 0.25,
        health: BackendHealth | None = None,
        clock: Clock | None = None,
    ) -> None: ...

    def __init__(
        self,
        url_or_client: str | SyncRedisClient | AsyncRedisClient | RedisLink | None = None,
        key: str | None = None,
        rate: float | None = None,
        burst: float | None = None,
        *,
        quotas: Iterable[Quota] = (),
        prefix: str = "argo_perf:ratelimit:",
        fallback_share: float = 0.25,
        health: BackendHealth | None = None,
        clock: Clock | None = None,
        client_or_url: str | SyncRedisClient | AsyncRedisClient | None = None,
    ) -> None:
        if key is None or rate is None or burst is None:
            missing = [n for n, v in (("key", key), ("rate", rate), ("burst", burst)) if v is None]
            raise TypeError(f"RedisTokenBucket() missing required arguments: {missing}")
        url_or_client = _target_argument(url_or_client, client_or_url)
        if not isinstance(key, str) or not key:
            raise ConfigError("key", key, "must be a non-empty string")
        check.hash_tag("key", key)
        if not isinstance(prefix, str):
            raise ConfigError("prefix", prefix, "must be a string")
        self.fallback_share = check.share("fallback_share", fallback_share)
        rate = check.rate("rate", rate)
        burst = check.at_least("burst", burst, 1)
        quotas = _checked_quotas(quotas)
        windows = _windows(rate, burst, quotas)
        self._clock = _given_or_system(clock)
        self.key = f"{prefix}{{{key}}}"
        self.queue_key = f"{self.key}:queue"  # the same hash slot: one script may use both
        # A link passed in (a registry's, shared by its buckets) belongs to whoever made it.
        self._owns_link = not isinstance(url_or_client, RedisLink)
        if isinstance(url_or_client, RedisLink):
            self._link = url_or_client
        else:
            self._link = RedisLink(url_or_client, health=health, clock=self._clock)
        self.target = self._link.target
        self.health = self._link.health
        share_rate, share_burst, share_quotas = self._fallback_config(rate, burst, quotas)
        self.fallback = TokenBucket(share_rate, share_burst, quotas=share_quotas, clock=self._clock)
        self._counters = _RedisCounters()
        self.config_key = f"{self.key}:config"
        self._keys = [_SCRIPT_SHA, 2, self.key, self.queue_key]
        self._use(rate, burst, quotas, windows)

    def _fallback_config(
        self, rate: float, burst: float, quotas: tuple[Quota, ...]
    ) -> tuple[float, float, list[Quota]]:
        share = self.fallback_share
        shared = [Quota(max(1.0, q.limit * share), q.period) for q in quotas]
        # The smallest float as a floor: a rate near 5e-324 must not underflow to 0.
        return max(rate * share, math.ulp(0.0)), max(1.0, burst * share), shared

    def _use(
        self,
        rate: float,
        burst: float,
        quotas: tuple[Quota, ...],
        windows: list[tuple[float, float]],
    ) -> None:
        self.rate, self.burst, self.quotas = rate, burst, quotas
        self._max_tokens = min([burst, *(quota.limit for quota in quotas)])
        # Everything but the tokens and the wait is fixed: encode it once.
        self._windows_args = [repr(value * 1e6).encode() for pair in windows for value in pair]
        self._try_one = [*self._keys, b"r", b"1", b"0", *self._windows_args]

    # -- the one round trip -------------------------------------------------

    def _args(self, op: bytes, amount: float, max_wait: float) -> list[Any]:
        if op == b"r" and amount == 1 and max_wait == 0.0:
            return self._try_one  # the common request, encoded once
        # Rounded, not floored: 0.57 s is 569999.99... microseconds as a float.
        wait_us = b"-1" if max_wait == math.inf else str(round(max_wait * 1e6)).encode()
        return [*self._keys, op, repr(amount).encode(), wait_us, *self._windows_args]

    def _queued_args(self, op: bytes, amount: float, queued: _Queued) -> list[Any]:
        ident = str(queued.id).encode()
        return [*self._keys, op, repr(amount).encode(), ident, *self._windows_args]

    def _reply(self, reply: object) -> float | _Queued | None:
        """Seconds (0.0 granted, < 0 denied), a `_Queued` reservation, tokens (a
        string reply), or None for a reply that makes no sense."""
        counters = self._counters
        if type(reply) is int:
            counters.redis_calls += 1
            return reply / 1e6
        if (
            type(reply) is list
            and len(reply) == 2
            and type(reply[0]) is int
            and reply[0] > 0
            and type(reply[1]) is int
        ):
            counters.redis_calls += 1
            return _Queued(reply[0] / 1e6, reply[1])
        if isinstance(reply, (bytes, str)):
            try:
                tokens = float(reply)
            except ValueError:
                pass
            else:
                counters.redis_calls += 1
                return tokens
        counters.errors += 1
        logger.warning("redis at %s: unexpected rate limit reply %r", self.target, reply)
        return None

    def _failed(self, exc: BaseException) -> None:
        """A Redis error: the link classifies it for the gate; the bucket counts it."""
        self._counters.errors += 1
        self._link.failed(exc)
        if not is_outage(exc):  # Redis answered (WRONGTYPE, OOM ...): worth a line, paced
            self._link.log_reply(logger, "rate limit script", exc)

    def _call(self, args: list[Any]) -> float | _Queued | None:
        """Run the script (sync); None when Redis is skipped or failed."""
        link = self._link
        if not link.has_sync:
            link.sync_client()  # raises the TypeError that says which client is missing
        if link.admit() is Admission.SKIP:
            return None
        try:
            client = link.sync_client()  # a cluster URL's is built (connects) on first use
            try:
                reply = client.execute_command("EVALSHA", *args)  # type: ignore[no-untyped-call]
            except NoScriptError:  # EVAL caches it on the node that serves the key
                self._counters.script_loads += 1
                reply = client.execute_command("EVAL", _SCRIPT, *args[1:])  # type: ignore[no-untyped-call]
        except REDIS_ERRORS as exc:
            self._failed(exc)
            return None
        except BaseException as exc:  # interrupted: a probe is given back
            link.failed(exc)
            raise
        link.succeeded()
        return self._reply(reply)

    async def _call_async(self, args: list[Any]) -> float | _Queued | None:
        """Run the script (asyncio); None when Redis is skipped or failed."""
        link = self._link
        client = link.async_client()
        if link.admit_async() is Admission.SKIP:
            return None
        try:
            try:
                reply = await client.execute_command("EVALSHA", *args)
            except NoScriptError:  # EVAL caches it on the node that serves the key
                self._counters.script_loads += 1
                reply = await client.execute_command("EVAL", _SCRIPT, *args[1:])
        except REDIS_ERRORS as exc:
            self._failed(exc)
            return None
        except BaseException as exc:  # e.g. the caller's task cancelled: a probe is given back
            link.failed(exc)
            raise
        link.succeeded()
        return self._reply(reply)

    # -- the public surface ---------------------------------------------------

    def _check_tokens(self, tokens: float) -> None:
        if not 0 < tokens <= self._max_tokens:
            raise ValueError(
                f"tokens must be > 0 and <= {self._max_tokens:g} (the burst), got {tokens!r}"
            )

    def _fallback_tokens(self, tokens: float) -> float:
        # The fallback's burst is a share of ours; a larger request takes all of it.
        self._counters.fallback_calls += 1
        return min(tokens, self.fallback._max)

    def _acquire_args(self, tokens: float, timeout: float | None) -> list[Any]:
        if tokens == 1 and timeout == 0:
            return self._try_one
        self._check_tokens(tokens)
        return self._args(b"r", tokens, _check_timeout(timeout))

    def _decide(self, reply: float | _Queued | None) -> bool | _Waiter | None:
        """An acquire's first reply: granted, denied, a waiter to sleep, or None (fallback)."""
        if reply is None:
            return None
        if isinstance(reply, _Queued):
            self._counters.waited += 1
            return _Waiter(self, reply)
        return self._count(reply == 0.0)

    def _count(self, granted: bool) -> bool:
        """Count the end of an acquire, decided by Redis or by the fallback."""
        if granted:
            self._counters.granted += 1
        else:
            self._counters.denied += 1
        return granted

    def try_acquire(self, tokens: float = 1) -> bool:
        """Take ``tokens`` if Redis says they are available now; never waits.

        Raises:
            ValueError: ``tokens`` is not positive or exceeds the burst.
        """
        granted = self._decide(self._call(self._acquire_args(tokens, 0)))
        if granted is None:
            return self._count(self.fallback.try_acquire(self._fallback_tokens(tokens)))
        return granted is True

    def acquire(self, tokens: float = 1, timeout: float | None = None) -> bool:
        """Take ``tokens``, blocking until they exist; False at once if not within ``timeout``.

        Redis reserves the tokens and replies how long to wait; the thread then
        sleeps that long on the clock and, when it wakes, asks Redis once more
        whether a penalty moved its grant (then it sleeps on).
        """
        waiter = self._decide(self._call(self._acquire_args(tokens, timeout)))
        if waiter is None:
            return self._count(self.fallback.acquire(self._fallback_tokens(tokens), timeout))
        if isinstance(waiter, bool):
            return waiter
        try:
            while seconds := waiter.sleep:
                self._clock.sleep(seconds)
                waiter.woke(self._call(waiter.confirm_args()))
        except BaseException:
            self._call(waiter.refund_args())
            raise
        return True

    async def acquire_async(self, tokens: float = 1, timeout: float | None = None) -> bool:
        """The asyncio face of `acquire`; a cancelled waiter hands its tokens back."""
        waiter = self._decide(await self._call_async(self._acquire_args(tokens, timeout)))
        if waiter is None:
            fallback = self.fallback.acquire_async(self._fallback_tokens(tokens), timeout)
            return self._count(await fallback)
        if isinstance(waiter, bool):
            return waiter
        try:
            while seconds := waiter.sleep:
                await self._clock.sleep_async(seconds)
                waiter.woke(await self._call_async(waiter.confirm_args()))
        except BaseException:
            # Shielded: the refund must reach Redis although this task is cancelled.
            await asyncio.shield(self._call_async(waiter.refund_args()))
            raise
        return True

    def wait_time(self, tokens: float = 1) -> float:
        """Seconds until ``tokens`` could be taken (0.0 when now); takes nothing.

        One script call; while Redis is unreachable, the fallback bucket answers.

        Raises:
            ValueError: ``tokens`` is not positive or exceeds the burst (they
                could never be taken), as for `try_acquire`.
        """
        self._check_tokens(tokens)
        seconds = self._call(self._args(b"w", tokens, 0.0))
        if not isinstance(seconds, float):
            return self.fallback.wait_time(min(tokens, self.fallback._max))
        return seconds

    async def wait_time_async(self, tokens: float = 1) -> float:
        """The asyncio face of `wait_time`."""
        self._check_tokens(tokens)
        seconds = await self._call_async(self._args(b"w", tokens, 0.0))
        if not isinstance(seconds, float):
            return self.fallback.wait_time(min(tokens, self.fallback._max))
        return seconds

    @property
    def available(self) -> float:
        """Tokens that could be taken now (0.0 while waiters hold reservations).

        One script call; while Redis is unreachable, the fallback bucket answers.
        """
        tokens = self._call(self._args(b"a", 0, 0.0))
        return tokens if isinstance(tokens, float) else self.fallback.available

    async def available_async(self) -> float:
        """The asyncio face of `available`."""
        tokens = await self._call_async(self._args(b"a", 0, 0.0))
        return tokens if isinstance(tokens, float) else self.fallback.available

    def penalize(self, retry_after: float) -> None:
        """Grant nothing for ``retry_after`` seconds, in every process sharing the key.

        The local fallback bucket is penalized too, so the pause holds during an
        outage. A bucket with only an asyncio client penalizes only the fallback
        here; use `penalize_async`.

        Raises:
            ValueError: ``retry_after`` is negative or not finite.
        """
        self.fallback.penalize(retry_after)
        self._counters.penalties += 1
        if self._link.has_sync:
            self._call(self._args(b"p", retry_after * 1e6, 0.0))

    async def penalize_async(self, retry_after: float) -> None:
        """The asyncio face of `penalize`."""
        self.fallback.penalize(retry_after)
        self._counters.penalties += 1
        await self._call_async(self._args(b"p", retry_after * 1e6, 0.0))

    def _rescale_args(self, rate: float, burst: float, quotas: Iterable[Quota]) -> list[Any]:
        """Switch to the new windows (the fallback too); the script call that rescales Redis."""
        rate = check.rate("rate", rate)
        burst = check.at_least("burst", burst, 1)
        quotas = _checked_quotas(quotas)
        windows = _windows(rate, burst, quotas)
        old = b" ".join(self._windows_args)
        self.fallback.reconfigure(*self._fallback_config(rate, burst, quotas))
        self._use(rate, burst, quotas, windows)
        keys = [_SCRIPT_SHA, 3, self.key, self.queue_key, self.config_key]
        return [*keys, b"s", b"0", old, *self._windows_args]

    def reconfigure(self, rate: float, burst: float, quotas: Iterable[Quota] = ()) -> None:
        """Change the rate, burst and quotas, keeping what has been spent (as `TokenBucket`).

        Tokens taken and reserved in Redis stay taken, paid back at the new
        rate. The shared state is rescaled once however many processes
        reconfigure to the same limits (within a day of each other); processes
        sharing a key should all switch. A bucket with only an asyncio client
        rescales Redis with `reconfigure_async`.

        Raises:
            ConfigError: as the constructor.
        """
        self._rescale(self._rescale_args(rate, burst, quotas))

    def _rescale(self, args: list[Any]) -> None:
        """Send a rescale with the sync client (none: the switch stays local)."""
        if self._link.has_sync:
            self._call(args)

    async def reconfigure_async(
        self, rate: float, burst: float, quotas: Iterable[Quota] = ()
    ) -> None:
        """The asyncio face of `reconfigure`."""
        await self._call_async(self._rescale_args(rate, burst, quotas))

    @property
    def stats(self) -> RedisBucketStats:
        """A snapshot of this process's counters (see `RedisBucketStats`)."""
        c = self._counters
        return RedisBucketStats(
            rate=self.rate,
            burst=self.burst,
            granted=c.granted,
            denied=c.denied,
            waited=c.waited,
            cancelled=c.cancelled,
            penalties=c.penalties,
            redis_calls=c.redis_calls,
            fallback_calls=c.fallback_calls,
            errors=c.errors,
            script_loads=c.script_loads,
        )

    @property
    def backend(self) -> str:
        """``"redis"`` while Redis decides, ``"memory"`` while the fallback does."""
        return "redis" if self.health.available else "memory"

    def close(self) -> None:
        """Close the clients this bucket built from a URL (a client passed in stays open).

        A bucket of a `RateLimiter` shares the registry's clients: close the registry.
        """
        if self._owns_link:
            self._link.close()

    async def aclose(self) -> None:
        """As `close`, awaiting the running event loop's asyncio client."""
        if self._owns_link:
            await self._link.aclose()

    def __enter__(self) -> RedisTokenBucket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> RedisTokenBucket:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return (
            f"RedisTokenBucket(target={self.target!r}, key={self.key!r}, "
            f"rate={self.rate:g}, burst={self.burst:g}, backend={self.backend!r})"
        )


class _Waiter:
    """An acquire whose reservation is queued in Redis, while it sleeps.

    Plain logic shared by the sync and async faces: what to sleep, what to send
    when it wakes (a confirm, since a penalty may have moved the grant), and
    what to send when it gives up (a refund).
    """

    __slots__ = ("_bucket", "_queued", "_slept_us", "sleep")

    def __init__(self, bucket: RedisTokenBucket, queued: _Queued) -> None:
        self._bucket = bucket
        self._queued = queued
        self._slept_us = 0
        self.sleep = queued.wait
        """Seconds to sleep now; 0.0 once the grant stands."""

    def confirm_args(self) -> list[Any]:
        return self._bucket._queued_args(b"c", self._slept_us, self._queued)

    def refund_args(self) -> list[Any]:
        if self.sleep:  # still waiting: hand the tokens back
            self._bucket._counters.cancelled += 1
        return self._bucket._queued_args(b"f", 0, self._queued)

    def woke(self, reply: float | _Queued | None) -> None:
        """Take the confirm's reply: sleep on for a penalty, else the grant stands.

        Redis unreachable (None): the grant stands as reserved.
        """
        wait = reply if isinstance(reply, float) else 0.0
        if wait:
            self._slept_us += round(wait * 1e6)
        else:
            self._bucket._counters.granted += 1
        self.sleep = wait


def _target_argument(
    url_or_client: str | SyncRedisClient | AsyncRedisClient | RedisLink | None,
    client_or_url: str | SyncRedisClient | AsyncRedisClient | None,
) -> str | SyncRedisClient | AsyncRedisClient | RedisLink:
    """The first argument, given by its name or by the older keyword ``client_or_url``."""
    if client_or_url is None:
        if url_or_client is None:
            raise TypeError("RedisTokenBucket() missing required argument: 'url_or_client'")
        return url_or_client
    if url_or_client is not None:
        raise TypeError("RedisTokenBucket() got url_or_client and client_or_url; pass one")
    warnings.warn(
        "RedisTokenBucket(client_or_url=...) is deprecated; the argument is named url_or_client",
        DeprecationWarning,
        stacklevel=3,
    )
    return client_or_url
