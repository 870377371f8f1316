"""`RateLimiter`: a registry of token buckets, one per data source, and its configs."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias, cast

from .. import _validate as check
from .._redis import AsyncRedisClient, BackendHealth, RedisLink, SyncRedisClient
from ..clock import Clock, _given_or_system
from ..errors import ConfigError, RateLimitExceeded
from ._gcra import Quota, _checked_quotas, _complete, _known_keys, _located
from ._local import TokenBucket
from ._redis import RedisTokenBucket
from ._stats import BucketStats

Bucket: TypeAlias = TokenBucket | RedisTokenBucket
"""What a `RateLimiter` holds per source: in process, or in Redis with ``redis=``."""


@dataclass(frozen=True)
class RateLimitConfig:
    """The limit of one data source: ``requests_per_second`` with bursts of ``burst_size``.

    ``quotas`` adds windows a vendor also enforces, e.g. ``(Quota(25, 86_400),)``
    for 25 requests a day.

    Raises:
        ConfigError: a non-positive rate, a burst below 1, or a bad quota.

    Examples:
        >>> RateLimitConfig(requests_per_second=5, burst_size=10)
        RateLimitConfig(requests_per_second=5, burst_size=10, quotas=())
    """

    requests_per_second: float
    burst_size: float
    quotas: tuple[Quota, ...] = field(default=())

    def __post_init__(self) -> None:
        check.rate("requests_per_second", self.requests_per_second)
        check.at_least("burst_size", self.burst_size, 1)
        object.__setattr__(self, "quotas", _checked_quotas(self.quotas))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RateLimitConfig:
        """Build from a plain mapping, e.g. parsed JSON, YAML or environment settings.

        Examples:
            >>> RateLimitConfig.from_mapping(
            ...     {"requests_per_second": 1, "burst_size": 5,
            ...      "quotas": [{"limit": 25, "period": 86400}]}
            ... ).quotas
            (Quota(limit=25, period=86400),)
        """
        values = _known_keys(data, ("requests_per_second", "burst_size", "quotas"), "config")
        quotas = values.get("quotas", ())
        if isinstance(quotas, (str, bytes, Mapping)) or not isinstance(quotas, Iterable):
            raise ConfigError("quotas", quotas, "must be a list of quotas")
        values["quotas"] = tuple(map(_as_quota, itertools.count(), quotas))
        return _complete(cls, values, "config")


def _as_quota(index: int, quota: Quota | Mapping[str, Any]) -> Quota:
    if isinstance(quota, Quota):
        return quota
    with _located(f"quotas[{index}]"):
        return Quota.from_mapping(quota)


DEFAULT_CONFIGS: Mapping[str, RateLimitConfig] = {
    "massive": RateLimitConfig(5, 10),
    "alpha_vantage": RateLimitConfig(0.2, 5),
    "xai": RateLimitConfig(1, 5),
    "sonar": RateLimitConfig(1, 5),
}
"""The seed limits `RateLimiter` uses when given no configs."""


def _as_config(where: str, value: RateLimitConfig | Mapping[str, Any]) -> RateLimitConfig:
    """``value`` as a config; errors name ``where`` it was given (``configs['xai']``...)."""
    if isinstance(value, RateLimitConfig):
        return value
    if isinstance(value, Mapping):
        with _located(where):
            return RateLimitConfig.from_mapping(value)
    raise ConfigError(where, value, "must be a RateLimitConfig or a mapping")


class RateLimiter:
    """A registry of token buckets, one per data source.

    Args:
        configs: source name -> `RateLimitConfig` or a plain mapping
            with the same keys (``{"requests_per_second": 5, "burst_size": 10}``).
            None: the seed defaults (massive 5/s burst 10, alpha_vantage
            0.2/s burst 5, xai 1/s burst 5, sonar 1/s burst 5).
        default: the limit of a source that is not configured, each such
            source getting a bucket of its own. None (the default): an
            unknown source is a `ConfigError`, never an unlimited source.
        redis: a ``redis://`` URL or a redis-py client (sync or asyncio): every
            source's bucket is then a `RedisTokenBucket` keyed by the source
            name, so every process and host using the same Redis shares each
            source's limit. All the sources share one link to Redis: one client
            (one per event loop for the asyncio face of a URL), one bounded
            pool and one health gate, so an outage is seen (and logged) once
            and one probe brings every source back. None (the default): the
            buckets are in process.
        health: the gate of the Redis link, to share with other Redis-backed
            objects on the same server (default: its own; only with ``redis``).
        clock: time source of every bucket.

    Thread-safe; sources are independent (one source's waiters never delay
    another's). With ``redis``, `close` (or `aclose`) closes the clients it
    built from a URL.

    Raises:
        ConfigError: a bad config, a bad ``redis`` URL or client, or (on use)
            an unknown source without a default.

    Examples:
        >>> limiter = RateLimiter({"massive": {"requests_per_second": 5, "burst_size": 10}})
        >>> limiter.try_acquire("massive")
        True
        >>> limiter.try_acquire("nobody")
        Traceback (most recent call last):
        ...
        argo_perf.errors.ConfigError: source is not configured (known: ['massive']), got 'nobody'
    """

    def __init__(
        self,
        configs: Mapping[str, RateLimitConfig | Mapping[str, Any]] | None = None,
        *,
        default: RateLimitConfig | Mapping[str, Any] | None = None,
        redis: str | SyncRedisClient | AsyncRedisClient | None = None,
        health: BackendHealth | None = None,
        clock: Clock | None = None,
    ) -> None:
        if configs is None:
            configs = DEFAULT_CONFIGS
        if not isinstance(configs, Mapping):
            raise ConfigError("configs", configs, "must be a mapping of source name to config")
        self._clock = _given_or_system(clock)
        self.default = None if default is None else _as_config("default", default)
        self._lock = threading.Lock()
        self._configs: dict[str, RateLimitConfig] = {}
        self._buckets: dict[str, Bucket] = {}
        if redis is None and health is not None:
            raise ConfigError("health", type(health).__name__, "needs redis= (a URL or a client)")
        # One link for every source: one client and pool, one gate.
        self._link = (
            None
            if redis is None
            else RedisLink(redis, health=health, clock=self._clock, parameter="redis")
        )
        for source, value in configs.items():
            if not isinstance(source, str) or not source:
                raise ConfigError("source", source, "must be a non-empty string")
            self._add(source, _as_config(f"configs[{source!r}]", value))

    def _add(self, source: str, config: RateLimitConfig) -> Bucket:
        bucket: Bucket
        if self._link is None:
            bucket = TokenBucket(
                config.requests_per_second,
                config.burst_size,
                quotas=config.quotas,
                clock=self._clock,
            )
        else:
            # The shared link goes where a URL or client would (the bucket then
            # leaves closing it to this registry).
            bucket = RedisTokenBucket(
                cast(Any, self._link),
                source,
                config.requests_per_second,
                config.burst_size,
                quotas=config.quotas,
                clock=self._clock,
            )
        self._configs[source] = config
        self._buckets[source] = bucket
        return bucket

    def get(self, source: str) -> Bucket:
        """The bucket of ``source`` (built from ``default`` on first use when unknown).

        Raises:
            ConfigError: ``source`` is not configured and there is no default;
                the message lists the known sources.
        """
        try:
            return self._buckets[source]
        except KeyError:
            pass
        with self._lock:
            if source in self._buckets:
                return self._buckets[source]
            if self.default is None:
                raise ConfigError(
                    "source", source, f"is not configured (known: {sorted(self._buckets)})"
                ) from None
            return self._add(source, self.default)

    def bucket(self, source: str) -> Bucket:
        """The older name of `get`."""
        return self.get(source)

    def names(self) -> list[str]:
        """The configured source names (sorted)."""
        return sorted(self._buckets)

    @property
    def sources(self) -> list[str]:
        """The configured source names (sorted); the older name of `names`."""
        return self.names()

    def __contains__(self, source: object) -> bool:
        return source in self._buckets

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._buckets)

    @property
    def stats(self) -> dict[str, BucketStats]:
        """A snapshot of every bucket's counters, by source (see `BucketStats`)."""
        return {source: self._buckets[source].stats for source in self.names()}

    def config(self, source: str) -> RateLimitConfig:
        """The current config of ``source``."""
        self.get(source)
        return self._configs[source]

    def try_acquire(self, source: str, tokens: float = 1) -> bool:
        """Take ``tokens`` for ``source`` if available now; never waits."""
        return self.get(source).try_acquire(tokens)

    async def wait_for_permission(
        self, source: str, timeout: float | None = None, tokens: float = 1
    ) -> None:
        """Wait (asyncio) until ``source`` may make a request, first come, first served.

        Args:
            source: the data source.
            timeout: seconds to wait at most; None waits as long as needed.
            tokens: requests to account for (default 1).

        Raises:
            RateLimitExceeded: permission would not come within ``timeout``;
                raised at once (nothing is taken) and carrying ``retry_after``.
            ConfigError: unknown source and no default.

        Examples:
            >>> async def fetch(symbol):  # doctest: +SKIP
            ...     await limiter.wait_for_permission("massive", timeout=2.0)
            ...     return await client.get(symbol)
        """
        bucket = self.get(source)
        if await bucket.acquire_async(tokens, timeout):
            return
        if isinstance(bucket, RedisTokenBucket):
            raise RateLimitExceeded(source, await bucket.wait_time_async(tokens))
        raise RateLimitExceeded(source, bucket.wait_time(tokens))

    def wait_for_permission_sync(
        self, source: str, timeout: float | None = None, tokens: float = 1
    ) -> None:
        """The blocking face of `wait_for_permission` (blocks the calling thread)."""
        bucket = self.get(source)
        if not bucket.acquire(tokens, timeout):
            raise RateLimitExceeded(source, bucket.wait_time(tokens))

    def _configure(
        self, source: str, config: RateLimitConfig | Mapping[str, Any]
    ) -> tuple[RedisTokenBucket, list[Any]] | None:
        """Switch ``source`` to ``config`` in this process, without I/O.

        Shared by both faces: returns the Redis bucket and the script call that
        rescales its shared state, for the caller to send (or None: nothing to send).
        """
        if not isinstance(source, str) or not source:
            raise ConfigError("source", source, "must be a non-empty string")
        new = _as_config("config", config)
        with self._lock:
            bucket = self._buckets.get(source)
            if bucket is None:
                self._add(source, new)
                return None
            rate, burst, quotas = new.requests_per_second, new.burst_size, new.quotas
            rescale = None
            if isinstance(bucket, RedisTokenBucket):
                rescale = (bucket, bucket._rescale_args(rate, burst, quotas))
            else:
                bucket.reconfigure(rate, burst, quotas)
            self._configs[source] = new
            return rescale

    def configure(self, source: str, config: RateLimitConfig | Mapping[str, Any]) -> None:
        """Set the limit of ``source``, adding the source when new.

        A source that has a bucket already keeps it, changed as by `reconfigure`:
        what has been spent stays spent. With an asyncio client as ``redis``,
        use `configure_async`: this face cannot reach Redis to rescale the
        shared state.

        Raises:
            ConfigError: a bad config or source name.
        """
        rescale = self._configure(source, config)
        if rescale is not None:
            bucket, args = rescale
            bucket._rescale(args)

    async def configure_async(
        self, source: str, config: RateLimitConfig | Mapping[str, Any]
    ) -> None:
        """The asyncio face of `configure` (rescales the shared state with ``redis``)."""
        rescale = self._configure(source, config)
        if rescale is not None:
            bucket, args = rescale
            await bucket._call_async(args)

    def _check_known(self, source: str) -> None:
        with self._lock:
            if source in self._buckets:
                return
            known = sorted(self._buckets)
        raise ConfigError("source", source, f"is not configured (known: {known})")

    def reconfigure(self, source: str, config: RateLimitConfig | Mapping[str, Any]) -> None:
        """Change the limit of a known ``source`` at run time.

        What has been spent stays spent: tokens taken count against the new
        burst and are paid back at the new rate; reconfiguring refills nothing.
        Use `configure` to add a source.

        With ``redis``, the change is this process's: it rescales the shared
        state, but every other process keeps its own limit until it applies the
        same change (the state is rescaled once however many processes do).
        With an asyncio client as ``redis``, use `reconfigure_async`: this face
        cannot reach Redis to rescale the shared state.

        Raises:
            ConfigError: a bad config, or ``source`` is not configured (the
                message lists the known sources).
        """
        self._check_known(source)
        self.configure(source, config)

    async def reconfigure_async(
        self, source: str, config: RateLimitConfig | Mapping[str, Any]
    ) -> None:
        """The asyncio face of `reconfigure` (rescales the shared state with ``redis``).

        Raises:
            ConfigError: as `reconfigure`.
        """
        self._check_known(source)
        await self.configure_async(source, config)

    def penalize(self, source: str, retry_after: float) -> None:
        """Grant ``source`` nothing for ``retry_after`` seconds (a 429 with Retry-After).

        With ``redis``, every process sharing the source is held back. With an
        asyncio client as ``redis``, use `penalize_async`: this face cannot
        reach Redis and holds back only this process's fallback bucket.

        Raises:
            ValueError: ``retry_after`` is negative or not finite.
        """
        self.get(source).penalize(retry_after)

    async def penalize_async(self, source: str, retry_after: float) -> None:
        """The asyncio face of `penalize` (reaches Redis through the asyncio client).

        Examples:
            >>> async def on_429(response):  # doctest: +SKIP
            ...     await limiter.penalize_async("massive", float(response.headers["Retry-After"]))
        """
        bucket = self.get(source)
        if isinstance(bucket, RedisTokenBucket):
            await bucket.penalize_async(retry_after)
        else:
            bucket.penalize(retry_after)

    def close(self) -> None:
        """Close the Redis clients built from the ``redis`` URL (a client passed in stays open)."""
        if self._link is not None:
            self._link.close()

    async def aclose(self) -> None:
        """As `close`, awaiting the running event loop's asyncio client."""
        if self._link is not None:
            await self._link.aclose()

    def __repr__(self) -> str:
        backend = "" if self._link is None else f", redis={self._link.target!r}"
        return f"RateLimiter(sources={self.names()!r}{backend})"


_default_limiter: RateLimiter | None = None
_default_lock = threading.Lock()


def get_rate_limiter() -> RateLimiter:
    """The process-wide `RateLimiter` with the seed defaults, created on first use.

    Examples:
        >>> get_rate_limiter() is get_rate_limiter()
        True
    """
    global _default_limiter
    if _default_limiter is None:
        with _default_lock:
            if _default_limiter is None:
                _default_limiter = RateLimiter()
    return _default_limiter
