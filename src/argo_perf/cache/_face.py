"""What both cache faces share that is not I/O: construction, properties, repr."""

from __future__ import annotations

import random

from .._redis import describe_client, redact_url
from ..clock import Clock
from ..errors import ConfigError
from ._config import CacheConfig
from ._policy import CacheCore
from ._stats import CacheStats

__all__ = ["Face"]


def _target(url_or_client: object) -> str:
    if url_or_client is None:
        return "memory"
    if isinstance(url_or_client, str):
        return redact_url(url_or_client)
    return describe_client(url_or_client)  # type: ignore[arg-type]


def check_bytes_client(client: object) -> None:
    """Refuse a client that decodes replies: every value would read back as a decode failure."""
    get_encoder = getattr(client, "get_encoder", None)
    if get_encoder is not None and getattr(get_encoder(), "decode_responses", False):
        raise ConfigError(
            "url_or_client",
            _target(client),
            "must not decode responses (decode_responses=True): the cache stores bytes",
        )


class Face:
    """The part of `RedisCache` and `AsyncRedisCache` that is the same in both."""

    _core: CacheCore

    def _build_core(
        self,
        url_or_client: object,
        config: CacheConfig,
        clock: Clock | None,
        rng: random.Random | None,
    ) -> CacheCore:
        self._core = CacheCore(
            config,
            has_redis=url_or_client is not None,
            target=_target(url_or_client),
            clock=clock,
            rng=rng,
        )
        return self._core

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
