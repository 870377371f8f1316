"""A two-tier cache: a bounded in-process tier in front of Redis that survives Redis outages.

[RedisCache][argo_perf.RedisCache] (redis-py) and
[AsyncRedisCache][argo_perf.AsyncRedisCache] (redis.asyncio) are thin faces
over one policy: they read and write Redis, the policy decides what is
fresh, what may be served stale, what the bytes in Redis mean and whether
Redis may be touched at all.

Modules, in dependency order (each imports only those before it):
`_envelope` (serializers, the stored bytes and their HMAC), `_config`
(`CacheConfig`), `_stats`, `_reports` (throttled log lines), `_entry` (an
in-process value and its deadlines), `_flights` (single flight: the registry
of keys under way and what a flight found), `_policy` (freshness, stale
serving, early refresh, counters), `_operations` (each operation
once, as a generator of Redis requests), `_face` (what both faces share),
then `_sync` and `_async` (where the sync/async split happens: they only run
the requests), `_decorator` (`cached`) and `_default` (`get_redis_cache`).

Examples:
    >>> from argo_perf import RedisCache
    >>> cache = RedisCache()  # memory-only; pass a redis:// URL for the Redis tier
    >>> cache.set("AAPL", 231.5, ttl=10)
    False
    >>> cache.get("AAPL")
    231.5
"""

from ._async import AsyncRedisCache
from ._config import USE_DEFAULT, CacheConfig, TTLArg, UseDefault
from ._decorator import cached
from ._default import get_redis_cache
from ._envelope import Serializer
from ._stats import CachedValue, CacheStats
from ._sync import RedisCache

__all__ = [
    "USE_DEFAULT",
    "AsyncRedisCache",
    "CacheConfig",
    "CacheStats",
    "CachedValue",
    "RedisCache",
    "Serializer",
    "TTLArg",
    "UseDefault",
    "cached",
    "get_redis_cache",
]
