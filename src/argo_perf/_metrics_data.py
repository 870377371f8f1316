"""The records behind `PerformanceMetrics`: live counters, and the snapshot a scrape reads."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._recording import OUTCOMES

if TYPE_CHECKING:
    from .breaker import BreakerStats
    from .cache import CacheStats
    from .ratelimit import BucketStats

DURATION_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
"""Upper bounds (seconds) of the duration histograms' buckets; ``+Inf`` follows."""


class _Histogram:
    """Counts per bucket of `DURATION_BUCKETS` (``+Inf`` last) and the sum, as recorded."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(DURATION_BUCKETS) + 1)
        self.total = 0.0


class _Symbol(_Histogram):
    """One symbol's signal generation times and counts (or everything, without labels)."""

    __slots__ = ("processed", "skipped")

    def __init__(self) -> None:
        super().__init__()
        self.processed = 0
        self.skipped = 0


class _Source(_Histogram):
    """One data source: requests per outcome, latencies, last known health."""

    __slots__ = ("healthy", "outcomes", "recent")

    def __init__(self, window: int) -> None:
        super().__init__()
        self.outcomes = [0] * len(OUTCOMES)
        self.recent: deque[float] = deque(maxlen=window)
        self.healthy = True


@dataclass(frozen=True, slots=True)
class HistogramData:
    """A histogram's counts per bucket (not cumulative, ``+Inf`` last) and its sum."""

    counts: tuple[int, ...]
    total: float


@dataclass(frozen=True, slots=True)
class SymbolData:
    """What was recorded for one symbol label (``""`` without per-symbol labels)."""

    durations: HistogramData
    processed: int
    skipped: int


@dataclass(frozen=True, slots=True)
class SourceData:
    """What was recorded for one data source."""

    requests: dict[str, int]
    durations: HistogramData
    healthy: bool


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the Prometheus collector exports, read at once (private to the package).

    ``caches`` are keyed by the cache's namespace, ``buckets`` and ``breakers``
    by source; each holds the stats of every distinct object tracked there.
    """

    symbol_labels: bool
    symbols: dict[str, SymbolData]
    cache_hits: int
    cache_misses: int
    sources: dict[str, SourceData]
    caches: dict[str, list[CacheStats]]
    buckets: dict[str, list[BucketStats]]
    breakers: dict[str, list[BreakerStats]]


def histogram_data(entry: _Histogram) -> HistogramData:
    """A frozen copy of a live histogram."""
    return HistogramData(tuple(entry.counts), entry.total)
