"""The cache's configuration: one frozen, validated `CacheConfig`, and the TTL sentinel."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeAlias

from .. import _validate
from .._redis import DEFAULT_CONNECT_TIMEOUT, DEFAULT_SOCKET_TIMEOUT
from ..errors import ConfigError
from ._envelope import Serializer, pick_serializer

__all__ = ["USE_DEFAULT", "CacheConfig", "TTLArg", "TTLValue", "UseDefault"]


class UseDefault:
    """Type of `USE_DEFAULT`: "argument not given, use the cache's default"."""

    _instance: UseDefault | None = None

    def __new__(cls) -> UseDefault:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "USE_DEFAULT"

    def __reduce__(self) -> str:
        return "USE_DEFAULT"


USE_DEFAULT = UseDefault()
"""Sentinel for ``ttl``: use the cache's ``default_ttl``. ``ttl=None`` means "never expires"."""

TTLValue: TypeAlias = "float | Callable[[str], float | None] | None"
TTLArg: TypeAlias = "float | Callable[[str], float | None] | UseDefault | None"
"""A `ttl=` argument: seconds, a callable `key -> seconds`, None (never) or `USE_DEFAULT`."""


def check_ttl(value: object, parameter: str) -> TTLValue:
    """A TTL option: seconds > 0, None (never expires) or a callable."""
    if value is None or callable(value):
        return value
    if isinstance(value, UseDefault):
        raise ConfigError(parameter, value, "must be seconds, None or a callable")
    return _validate.positive_seconds_or_inf(parameter, value)  # inf: never expires


@dataclass(frozen=True, slots=True)
class CacheConfig:
    """How a [RedisCache][argo_perf.RedisCache] or [AsyncRedisCache][argo_perf.AsyncRedisCache]
    behaves, validated once when it is built.

    The caches build it from their keyword options (same names, same
    defaults) and expose it as `cache.config`; every field is described in
    [RedisCache][argo_perf.RedisCache]. `signing_key` is left out of the repr.

    Raises:
        ConfigError: a value out of range, naming the parameter and the value
            (never the signing key's bytes).

    Examples:
        >>> config = CacheConfig(namespace="prices", default_ttl=10.0)
        >>> config.max_stale
        60.0
    """

    namespace: str = "argo_perf"
    version: int = 1
    default_ttl: float | Callable[[str], float | None] | None = 60.0
    max_stale: float = 60.0
    maxsize: int = 10_000
    local_ttl: float | None = None
    jitter: float = 0.0
    early_refresh: float = 0.0
    serializer: str | Serializer = "json"
    signing_key: bytes | None = field(default=None, repr=False)
    socket_timeout: float | None = DEFAULT_SOCKET_TIMEOUT
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT
    failure_threshold: int = 3
    probe_interval: float = 1.0
    coherent: bool = False
    heartbeat: float = 0.5

    def __post_init__(self) -> None:
        namespace = self.namespace
        if not isinstance(namespace, str) or not namespace or ":" in namespace:
            raise ConfigError("namespace", namespace, "must be a non-empty string without ':'")
        _validate.count("version", self.version, minimum=0)
        _validate.count("maxsize", self.maxsize, minimum=0)
        self._set("default_ttl", check_ttl(self.default_ttl, "default_ttl"))
        self._set("max_stale", _validate.non_negative_seconds_or_inf("max_stale", self.max_stale))
        self._set(
            "local_ttl",
            _validate.optional(_validate.positive_seconds_or_inf, "local_ttl", self.local_ttl),
        )
        self._set("jitter", _validate.fraction("jitter", self.jitter))
        self._set("early_refresh", _validate.at_least("early_refresh", self.early_refresh, 0.0))
        for name in ("socket_timeout", "connect_timeout"):
            seconds = getattr(self, name)
            self._set(name, _validate.optional(_validate.positive_seconds, name, seconds))
        # A string is a ConfigError (not a TypeError), and an infinite interval
        # would never probe Redis again.
        _validate.count("failure_threshold", self.failure_threshold)
        self._set(
            "probe_interval", _validate.positive_seconds("probe_interval", self.probe_interval)
        )
        if not isinstance(self.coherent, bool):
            raise ConfigError("coherent", self.coherent, "must be True or False")
        self._set("heartbeat", _validate.positive_seconds("heartbeat", self.heartbeat))
        key = self.signing_key
        if key is not None and (not isinstance(key, bytes) or len(key) < 16):
            raise ConfigError("signing_key", "<redacted>", "must be bytes of length >= 16")
        pick_serializer(self.serializer, key)

    def _set(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)
