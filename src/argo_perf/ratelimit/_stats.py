"""Snapshots of a bucket's counters: what metrics read, with no private attribute."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BucketStats:
    """A snapshot of a token bucket's counters, taken by `TokenBucket.stats`.

    Counters count from the bucket's creation and are never reset; read two
    snapshots and subtract for a rate. `RedisTokenBucket.stats` returns the
    subclass [RedisBucketStats][argo_perf.RedisBucketStats], whose counters
    are this process's calls (other processes sharing the key count their own).

    Examples:
        ```python
        bucket = TokenBucket(rate=5, burst=10)
        bucket.try_acquire()
        assert bucket.stats.granted == 1
        ```
    """

    rate: float
    """Tokens added per second (the current configuration)."""
    burst: float
    """The most tokens available at once (the current configuration)."""
    granted: int = 0
    """Acquires granted (`try_acquire`, `acquire`, `acquire_async`), at once or after waiting."""
    denied: int = 0
    """Acquires refused: no tokens now (`try_acquire`) or not within the `timeout`."""
    waited: int = 0
    """Acquires that reserved their tokens and slept until they existed."""
    cancelled: int = 0
    """Waiters that gave up (a cancelled task, an interrupted thread), handing tokens back."""
    penalties: int = 0
    """Calls of `penalize`."""


@dataclass(frozen=True, slots=True)
class RedisBucketStats(BucketStats):
    """A snapshot of a `RedisTokenBucket`'s counters: `BucketStats` and the Redis link's.

    The acquires the fallback bucket decides while Redis is unreachable count
    in `granted` and `denied` too.
    """

    redis_calls: int = 0
    """Script calls answered by Redis: acquires, and the refunds and penalties it applied."""
    fallback_calls: int = 0
    """Acquires decided by the local fallback bucket while Redis was unreachable."""
    errors: int = 0
    """Redis errors: outages plus answers that were not a valid reply (each logged)."""
    script_loads: int = 0
    """Times the script was (re)loaded after ``NOSCRIPT``."""
