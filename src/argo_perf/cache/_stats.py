"""The cache's counters and what it reports: `CacheStats`, `CachedValue`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Literal

from typing_extensions import TypeVar

# Defaults to Any: a bare ``CachedValue`` annotation stays valid under mypy --strict.
T = TypeVar("T", default=Any)

__all__ = ["CacheStats", "CachedValue", "Counters", "Source"]

Source = Literal["memory", "redis", "loader"]


@dataclass(frozen=True, slots=True)
class CacheStats:
    """A snapshot of a cache's counters (they only grow).

    Attributes:
        memory_hits: fresh values served by the in-process tier.
        redis_hits: fresh values served by Redis.
        misses: lookups that found no fresh value: the caller got the default, a
            stale value, or a loader's value (``get_or_set``, ``cached``). Every
            lookup is either a hit or a miss, so ``hits / (hits + misses)`` is
            the hit rate.
        stale_served: values past their TTL served because Redis or a loader
            failed (each also counted as a miss).
        loader_calls: times a ``get_or_set`` / ``cached`` loader ran.
        coalesced: callers that waited for another caller's lookup and load of
            the same key instead of doing their own (single flight).
        early_refreshes: loads started before expiry by the XFetch rule.
        sets: values stored (``set``, ``set_many`` items, loader results).
        redis_set_failures: stored values that did not reach Redis (kept in
            the in-process tier only).
        redis_errors: Redis calls that failed (outages and error replies).
        short_circuited: calls that skipped Redis because it was considered down.
        decode_failures: values in Redis that could not be decoded (garbage,
            another Redis type, another serializer or envelope version).
        encode_failures: values a loader returned that the serializer could
            not encode: returned to the caller but not cached.
        signature_failures: values whose HMAC was missing or did not verify.
        backend: ``"redis"`` or ``"memory"`` at the time of the snapshot.
        memory_entries: entries held by the in-process tier (a gauge; at most
            ``maxsize``).
        loads_in_flight: keys being looked up and loaded right now by one
            caller on behalf of others (single flight; a gauge, 0 when idle).
        backend_transitions: times the backend-health gate in front of Redis
            changed state (up to down, down to up); 0 for a memory-only cache.
            With a gate shared between pieces (``health=``), it counts the
            shared gate's transitions.
        invalidations: keys Redis reported as changed under this cache's
            prefix, by any process including this one (coherent mode; a flush
            counts once).
        invalidated_entries: in-process entries dropped because of them.
        channel_reconnects: times the invalidation channel came back after
            being lost (coherent mode).
        coherent: True while coherent mode is on and its invalidation channel
            is up, so the in-process tier answers without asking Redis (a gauge).
    """

    memory_hits: int
    redis_hits: int
    misses: int
    stale_served: int
    loader_calls: int
    coalesced: int
    early_refreshes: int
    sets: int
    redis_set_failures: int
    redis_errors: int
    short_circuited: int
    decode_failures: int
    encode_failures: int
    signature_failures: int
    backend: str
    memory_entries: int = 0
    loads_in_flight: int = 0
    backend_transitions: int = 0
    invalidations: int = 0
    invalidated_entries: int = 0
    channel_reconnects: int = 0
    coherent: bool = False

    @property
    def hits(self) -> int:
        """Fresh values served by either tier."""
        return self.memory_hits + self.redis_hits


# No slots: a frozen, slotted, generic dataclass cannot be built as CachedValue[float](...)
# on Python 3.11 (typing sets __orig_class__ on the instance).
@dataclass(frozen=True)
class CachedValue(Generic[T]):
    """A value with where it came from, as returned by ``get_with_meta``.

    Attributes:
        value: the cached value.
        age: seconds since it was stored (by any process, for Redis values).
        source: ``"memory"`` (in-process tier), ``"redis"`` or ``"loader"``.
        stale: True when it is past its TTL and served because Redis or a
            loader failed (within ``max_stale``).
    """

    value: T
    age: float
    source: Source
    stale: bool


class Counters:
    """The live counters behind `CacheStats` (each a field of the same name)."""

    __slots__ = (
        "channel_reconnects",
        "coalesced",
        "decode_failures",
        "early_refreshes",
        "encode_failures",
        "invalidated_entries",
        "invalidations",
        "loader_calls",
        "memory_hits",
        "misses",
        "redis_errors",
        "redis_hits",
        "redis_set_failures",
        "sets",
        "short_circuited",
        "signature_failures",
        "stale_served",
    )

    def __init__(self) -> None:
        self.channel_reconnects = 0
        self.coalesced = 0
        self.decode_failures = 0
        self.early_refreshes = 0
        self.encode_failures = 0
        self.invalidated_entries = 0
        self.invalidations = 0
        self.loader_calls = 0
        self.memory_hits = 0
        self.misses = 0
        self.redis_errors = 0
        self.redis_hits = 0
        self.redis_set_failures = 0
        self.sets = 0
        self.short_circuited = 0
        self.signature_failures = 0
        self.stale_served = 0
