"""The cache's configuration: one frozen, validated `CacheConfig`, and the TTL sentinel."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeAlias

from .._redis import DEFAULT_CONNECT_TIMEOUT, DEFAULT_SOCKET_TIMEOUT
from ..errors import ConfigError
from ._envelope import Serializer, pick_serializer

__all__ = ["USE_DEFAULT", "CacheConfig", "TTLArg", "TTLValue", "UseDefault"]

_INF = math.inf


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


def check_seconds(name: str, value: object, *, allow_zero: bool) -> float:
    """``value`` as float seconds (infinity allowed), or a ConfigError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(name, value, "must be a number of seconds")
    seconds = float(value)
    if math.isnan(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        requirement = "must be >= 0 seconds" if allow_zero else "must be > 0 seconds"
        raise ConfigError(name, value, requirement)
    return seconds


def check_ttl(value: object, parameter: str) -> TTLValue:
    """A TTL option: seconds > 0, None (never expires) or a callable."""
    if value is None or callable(value):
        return value
    if isinstance(value, UseDefault):
        raise ConfigError(parameter, value, "must be seconds, None or a callable")
    return check_seconds(parameter, value, allow_zero=False)


def _check_count(name: str, value: object, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigError(name, value, f"must be an int >= {least}")
    return value


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

    Example:
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

    def __post_init__(self) -> None:
        namespace = self.namespace
        if not isinstance(namespace, str) or not namespace or ":" in namespace:
            raise ConfigError("namespace", namespace, "must be a non-empty string without ':'")
        _check_count("version", self.version, 0)
        _check_count("maxsize", self.maxsize, 0)
        self._set("default_ttl", check_ttl(self.default_ttl, "default_ttl"))
        self._set("max_stale", check_seconds("max_stale", self.max_stale, allow_zero=True))
        if self.local_ttl is not None:
            self._set("local_ttl", check_seconds("local_ttl", self.local_ttl, allow_zero=False))
        jitter = self.jitter
        if (
            isinstance(jitter, bool)
            or not isinstance(jitter, (int, float))
            or not (0.0 <= jitter < 1.0)
        ):
            raise ConfigError("jitter", jitter, "must be a fraction in [0, 1)")
        self._set("jitter", float(jitter))
        beta = check_seconds("early_refresh", self.early_refresh, allow_zero=True)
        if beta == _INF:
            raise ConfigError("early_refresh", self.early_refresh, "must be finite")
        self._set("early_refresh", beta)
        # Checked here, not only by the gate: a string must be a ConfigError, not a
        # TypeError, and an infinite interval would never probe Redis again.
        _check_count("failure_threshold", self.failure_threshold, 1)
        interval = check_seconds("probe_interval", self.probe_interval, allow_zero=False)
        if interval == _INF:
            raise ConfigError("probe_interval", self.probe_interval, "must be finite")
        self._set("probe_interval", interval)
        key = self.signing_key
        if key is not None and (not isinstance(key, bytes) or len(key) < 16):
            raise ConfigError("signing_key", "<redacted>", "must be bytes of length >= 16")
        pick_serializer(self.serializer, key)

    def _set(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)
