"""What both cache faces share that is not I/O: construction, properties, repr."""

from __future__ import annotations

import random
from collections.abc import Callable

from .._redis import Admission, BackendHealth, RedisLink, describe_client
from ..clock import Clock
from ..errors import ConfigError
from ._coherence import Coherence
from ._config import CacheConfig
from ._policy import CacheCore
from ._stats import CacheStats

__all__ = ["Face"]


def _check_bytes_client(client: object) -> None:
    """Refuse a client that decodes replies: every value would read back as a decode failure."""
    get_encoder = getattr(client, "get_encoder", None)
    if get_encoder is not None and getattr(get_encoder(), "decode_responses", False):
        raise ConfigError(
            "url_or_client",
            describe_client(client),  # type: ignore[arg-type]
            "must not decode responses (decode_responses=True): the cache stores bytes",
        )


def _link(
    url_or_client: object,
    config: CacheConfig,
    clock: Clock | None,
    health: BackendHealth | None,
    *,
    on_loop: bool,
) -> RedisLink:
    """The cache's Redis link, refusing a client of the other face or one that decodes."""
    link = RedisLink(
        url_or_client,  # type: ignore[arg-type]
        health=health,
        socket_timeout=config.socket_timeout,
        connect_timeout=config.connect_timeout,
        failure_threshold=config.failure_threshold,
        probe_interval=config.probe_interval,
        clock=clock,
    )
    if not (link.has_async if on_loop else link.has_sync):
        wanted = "redis.asyncio.Redis / RedisCluster" if on_loop else "redis.Redis / RedisCluster"
        raise ConfigError(
            "url_or_client", type(url_or_client).__name__, f"must be a redis URL or a {wanted}"
        )
    # A URL's options (``?decode_responses=``) are the same for both faces' clients; a
    # cluster URL's client does not exist yet, and our multi-host URLs never decode.
    _check_bytes_client(
        link.async_client() if on_loop and not link.owns_clients else link.built_sync_client()
    )
    return link


class Face:
    """The part of `RedisCache` and `AsyncRedisCache` that is the same in both."""

    _core: CacheCore
    _link: RedisLink | None
    _coherence: Coherence | None = None

    def _build_core(
        self,
        url_or_client: object,
        config: CacheConfig,
        clock: Clock | None,
        rng: random.Random | None,
        health: BackendHealth | None,
        *,
        on_loop: bool,
    ) -> CacheCore:
        if health is not None and not isinstance(health, BackendHealth):
            raise ConfigError("health", type(health).__name__, "must be a BackendHealth or None")
        link = (
            None
            if url_or_client is None
            else _link(url_or_client, config, clock, health, on_loop=on_loop)
        )
        admit: Callable[[], Admission] | None = None
        if link is not None:
            admit = link.admit_async if on_loop else link.admit
        self._link = link
        self._core = CacheCore(
            config,
            link=link,
            admit=admit,
            target="memory" if link is None else link.target,
            clock=clock,
            rng=rng,
        )
        if config.coherent:
            if link is None:
                raise ConfigError("coherent", True, "needs Redis: pass a URL or a client")
            if self._core.tracking:  # maxsize=0: no in-process tier to keep coherent
                self._coherence = Coherence(self._core, link, on_loop=on_loop)
                self._coherence.start()
        return self._core

    def _stop_tracking(self) -> None:
        """Close the invalidation channel (coherent mode); idempotent."""
        if self._coherence is not None:
            self._coherence.close()

    @property
    def config(self) -> CacheConfig:
        """The validated options this cache was built with: a `CacheConfig`."""
        return self._core.config

    @property
    def backend(self) -> str:
        """``"redis"`` while Redis is used; ``"memory"`` when memory-only or Redis is down."""
        return self._core.backend

    @property
    def stats(self) -> CacheStats:
        """A snapshot of the counters (see [CacheStats][argo_perf.CacheStats])."""
        return self._core.stats()

    @property
    def namespace(self) -> str:
        """The key prefix's namespace; Redis keys are ``{namespace}:v{version}:{key}``."""
        return self._core.namespace

    @property
    def version(self) -> int:
        """The schema version in every Redis key."""
        return self._core.version

    def redis_key(self, key: str) -> str:
        """The Redis key under which ``key`` is stored."""
        return self._core.redis_key(key)

    def __repr__(self) -> str:
        core = self._core
        return (
            f"{type(self).__name__}(target={core.target!r}, namespace={core.namespace!r}, "
            f"version={core.version}, backend={core.backend!r})"
        )
