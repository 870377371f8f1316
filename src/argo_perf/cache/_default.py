"""The process-wide default cache (`get_redis_cache`)."""

from __future__ import annotations

import logging
import os
import threading

from ._sync import RedisCache

__all__ = ["get_redis_cache"]

logger = logging.getLogger("argo_perf.cache")


_default_cache: RedisCache | None = None
_default_lock = threading.Lock()


def get_redis_cache() -> RedisCache:
    """The process-wide `RedisCache`, created on first use.

    It uses the URL in ``ARGO_PERF_REDIS_URL`` when that is set and is
    memory-only when it is not. Later calls return the same instance.

    Raises:
        ConfigError: ``ARGO_PERF_REDIS_URL`` is set but not a redis URL.

    Examples:
        >>> get_redis_cache() is get_redis_cache()
        True
    """
    global _default_cache
    with _default_lock:
        if _default_cache is None:
            url = os.environ.get("ARGO_PERF_REDIS_URL") or None
            _default_cache = RedisCache(url)
            logger.info("default cache: %r", _default_cache)
        return _default_cache


def _reset_default_cache() -> None:
    """Forget the process-wide cache (tests); closes it."""
    global _default_cache
    with _default_lock:
        if _default_cache is not None:
            _default_cache.close()
        _default_cache = None
