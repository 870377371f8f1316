"""Rate limiting: token buckets in process and in Redis, and a per-source registry.

The package face only re-exports. `_gcra` holds the token arithmetic (pure,
time passed in), `_local` the in-process `TokenBucket`, `_redis` the
`RedisTokenBucket` (running `bucket.lua`, the same arithmetic in Redis),
`_registry` the per-source `RateLimiter`, and `_stats` the counters' snapshots.
"""

from ._gcra import Quota
from ._local import TokenBucket
from ._redis import RedisTokenBucket
from ._registry import DEFAULT_CONFIGS, RateLimitConfig, RateLimiter, get_rate_limiter
from ._stats import BucketStats, RedisBucketStats

__all__ = [
    "DEFAULT_CONFIGS",
    "BucketStats",
    "Quota",
    "RateLimitConfig",
    "RateLimiter",
    "RedisBucketStats",
    "RedisTokenBucket",
    "TokenBucket",
    "get_rate_limiter",
]
