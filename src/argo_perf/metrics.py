"""`PerformanceMetrics`: what a trading service did, for its health payload and for Prometheus.

Recording is cheap: every ``record_*`` call updates plain counters, fixed
histogram buckets and bounded windows of recent samples under one lock, and
returns. Nothing is formatted, exported or read from the tracked primitives
until someone asks: `PerformanceMetrics.get_summary` for the health payload,
`PerformanceMetrics.exposition` (or a scrape of `PerformanceMetrics.registry`)
for Prometheus. prometheus-client is imported only then, by
``argo_perf._prometheus``.
"""

from __future__ import annotations

import math
import sys
import threading
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, TypedDict, TypeVar

from . import _validate as check
from ._metrics_data import (
    DURATION_BUCKETS,
    Snapshot,
    SourceData,
    SymbolData,
    _Source,
    _Symbol,
    histogram_data,
)
from ._recording import OUTCOMES, Outcome
from .clock import Clock, _given_or_system
from .errors import ConfigError

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

    from ._recording import Recorder
    from .breaker import CircuitBreaker
    from .cache import AsyncRedisCache, RedisCache
    from .ratelimit import RedisTokenBucket, TokenBucket

__all__ = [
    "PerformanceMetrics",
    "PerformanceSummary",
    "get_performance_metrics",
]

OTHER = "other"
"""The label of the sources and symbols past the configured limits."""

_INF = math.inf
_T = TypeVar("_T")
_S = TypeVar("_S")
_OK = OUTCOMES.index("ok")
# What an outcome says about the source's health: True (it answered), False (it
# failed or its breaker refused it), None (nothing: the source was not asked
# because of a cache or the rate limiter).
_HEALTH = {"ok": True, "error": False, "rejected": False, "stale": False, "fallback": False}
_OUTCOME_KINDS: dict[str, tuple[int, bool | None]] = {
    outcome: (index, _HEALTH.get(outcome)) for index, outcome in enumerate(OUTCOMES)
}


class PerformanceSummary(TypedDict):
    """The health payload: what `PerformanceMetrics.get_summary` returns (a plain dict).

    Rates are percentages (0–100) and 0.0 when nothing was counted; averages
    are over the most recent ``window`` samples and 0.0 without samples.
    """

    uptime_seconds: float
    """Seconds since the metrics were created (on their clock)."""
    avg_signal_generation_time: float
    """Mean of the recent signal generation times, in seconds."""
    cache_hit_rate: float
    """``hits / (hits + misses)`` in percent."""
    skip_rate: float
    """``skipped / processed`` in percent (at most 100): a skipped symbol is also processed."""
    total_cache_hits: int
    """Cache hits recorded by hand plus those counted by the tracked caches."""
    total_cache_misses: int
    """Cache misses recorded by hand plus those counted by the tracked caches."""
    total_skipped_symbols: int
    """Symbols skipped (`record_skipped_symbol`)."""
    total_symbols_processed: int
    """Symbols whose signal was generated (`record_symbol_processed`)."""
    avg_api_latency: float
    """Mean of the recent request latencies of every source, in seconds."""
    data_source_latencies: dict[str, float]
    """Per source, the mean of its recent request latencies, in seconds."""


class PerformanceMetrics:
    """Counters, timings and data-source health of a service, with a Prometheus export.

    The ``record_*`` methods are what a service calls as it works; they only
    update counters and bounded windows under a lock, so they are safe from
    any thread or task and cost a few hundred nanoseconds. Memory stays flat
    however long the service runs: averages cover the last ``window``
    samples, and at most ``max_sources`` sources and ``symbol_labels``
    symbols get their own counters (later ones are counted under `OTHER`).

    Requests to data sources: `record_request` (what `resilient` calls)
    counts one request by outcome and, with ``seconds``, its latency;
    `record_api_latency` is `record_request` with outcome ``"ok"`` and
    `record_error` with outcome ``"error"`` and no latency. Every request
    given ``seconds``, failed ones included, feeds ``avg_api_latency`` and
    ``data_source_latencies``: a vendor that times out is slow, not absent.

    Primitives: `track` a cache, bucket or breaker and their own ``.stats``
    are read when the summary or the export is built. Cache hits and misses
    recorded by hand and those the tracked caches count add up, so record by
    hand only the lookups argo_perf does not see (a dict of your own); a
    tracked `RedisCache` counts its own and `resilient`'s ``"cached"``
    outcome is a request outcome, never a second cache hit.

    Args:
        registry: a prometheus-client `CollectorRegistry` to export into
            (e.g. ``prometheus_client.REGISTRY``, the global one, only when
            you pass it). None: the metrics' own registry, created with the
            first use of `registry` or `exposition`.
        clock: the source of time for `uptime_seconds` (default `SystemClock`).
        window: how many recent samples each average covers (default 1000).
        max_sources: how many sources get their own counters (default 64).
        symbol_labels: how many symbols get their own ``symbol`` label in the
            export (default 0: none, symbols passed to the ``record_*``
            methods are ignored). Opt in with a bound, e.g. the size of your
            universe: each label adds a histogram to every scrape.

    Raises:
        ConfigError: a window or ``max_sources`` below 1, a negative
            ``symbol_labels``.

    Examples:
        >>> from argo_perf import ManualClock, PerformanceMetrics
        >>> clock = ManualClock()
        >>> metrics = PerformanceMetrics(clock=clock)
        >>> metrics.record_signal_generation_time(0.25)
        >>> metrics.record_cache_hit()
        >>> metrics.record_cache_miss()
        >>> metrics.record_api_latency("massive", 0.12)
        >>> clock.advance(60)
        >>> summary = metrics.get_summary()
        >>> summary["uptime_seconds"], summary["cache_hit_rate"]
        (60.0, 50.0)
        >>> summary["data_source_latencies"]
        {'massive': 0.12}
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        clock: Clock | None = None,
        window: int = 1000,
        max_sources: int = 64,
        symbol_labels: int = 0,
    ) -> None:
        self._clock: Clock = _given_or_system(clock)
        # deque's own limit: a bigger window is an OverflowError later, not a window.
        self._window = check.count("window", window, maximum=sys.maxsize)
        self._max_sources = check.count("max_sources", max_sources)
        self._symbol_labels = check.count("symbol_labels", symbol_labels, minimum=0)
        self._started = self._clock.monotonic()
        self._lock = threading.Lock()
        self._unlabelled = _Symbol()
        self._symbols: dict[str, _Symbol] = {"": self._unlabelled}
        self._recent_signals: deque[float] = deque(maxlen=self._window)
        self._cache_hits = 0
        self._cache_misses = 0
        self._sources: dict[str, _Source] = {}
        # Tracked primitives by identity: (label, object), read only through `.stats`.
        self._caches: dict[int, tuple[str, RedisCache | AsyncRedisCache]] = {}
        self._buckets: dict[int, tuple[str, TokenBucket | RedisTokenBucket]] = {}
        self._breakers: dict[int, tuple[str, CircuitBreaker]] = {}
        self._registry: CollectorRegistry | None = None
        if registry is not None:
            if not callable(getattr(registry, "register", None)):
                raise ConfigError(
                    "registry", registry, "must be a prometheus_client CollectorRegistry or None"
                )
            self._register(registry)

    # ----------------------------------------------------------- recording
    #
    # The lock is taken with acquire() and released in a finally block rather
    # than by ``with``: on CPython 3.11 the context-manager protocol costs about
    # as much again as the counting itself, and these calls sit on hot paths.

    def record_signal_generation_time(self, seconds: float, symbol: str | None = None) -> None:
        """Record how long generating one signal took, in seconds.

        ``symbol`` labels it in the export when per-symbol labels are on
        (``symbol_labels``); otherwise it is ignored.

        Raises:
            ValueError: ``seconds`` is negative, infinite or NaN.
        """
        if not 0.0 <= seconds < _INF:
            raise ValueError(f"seconds={seconds!r} must be >= 0 and finite")
        slot = bisect_left(DURATION_BUCKETS, seconds)
        lock = self._lock
        lock.acquire()
        try:
            entry = self._unlabelled if symbol is None else self._symbol(symbol)
            entry.counts[slot] += 1
            entry.total += seconds
            self._recent_signals.append(seconds)
        finally:
            lock.release()

    def record_cache_hit(self) -> None:
        """Count a cache hit of a lookup no tracked cache counts (see the class notes)."""
        lock = self._lock
        lock.acquire()
        try:
            self._cache_hits += 1
        finally:
            lock.release()

    def record_cache_miss(self) -> None:
        """Count a cache miss of a lookup no tracked cache counts (see the class notes)."""
        lock = self._lock
        lock.acquire()
        try:
            self._cache_misses += 1
        finally:
            lock.release()

    def record_skipped_symbol(self, symbol: str | None = None) -> None:
        """Count a symbol whose signal was not regenerated (its price had not moved enough).

        Record it as processed too (`record_symbol_processed`): ``skip_rate`` is
        the share of processed symbols that were skipped.

        ``symbol`` labels it in the export when per-symbol labels are on.
        """
        lock = self._lock
        lock.acquire()
        try:
            (self._unlabelled if symbol is None else self._symbol(symbol)).skipped += 1
        finally:
            lock.release()

    def record_symbol_processed(self, symbol: str | None = None) -> None:
        """Count a symbol a cycle handled, whether its signal was regenerated or skipped.

        ``symbol`` labels it in the export when per-symbol labels are on.
        """
        lock = self._lock
        lock.acquire()
        try:
            (self._unlabelled if symbol is None else self._symbol(symbol)).processed += 1
        finally:
            lock.release()

    def record_api_latency(self, source: str, seconds: float) -> None:
        """Record one successful request to ``source`` that took ``seconds``.

        The same as ``record_request(source, "ok", seconds)``; for a failed
        request call `record_error` (or `record_request` with its outcome and
        latency) instead, so that each request is counted once.

        Raises:
            ValueError: ``seconds`` is negative, infinite or NaN.
        """
        # record_request's work for outcome "ok", without its outcome lookup and
        # without a second call: this is the hand-recorded hot path.
        if not 0.0 <= seconds < _INF:
            raise ValueError(f"seconds={seconds!r} must be >= 0 and finite")
        slot = bisect_left(DURATION_BUCKETS, seconds)
        lock = self._lock
        lock.acquire()
        try:
            try:
                entry = self._sources[source]
            except KeyError:
                entry = self._source(source)
            entry.outcomes[_OK] += 1
            entry.healthy = True
            entry.counts[slot] += 1
            entry.total += seconds
            entry.recent.append(seconds)
        finally:
            lock.release()

    def record_error(self, source: str) -> None:
        """Record one failed request to ``source``: ``record_request(source, "error")``."""
        self.record_request(source, "error")

    def record_request(self, source: str, outcome: Outcome, seconds: float | None = None) -> None:
        """Count one request to ``source`` by outcome and, with ``seconds``, its latency.

        This is the method `resilient` calls (the package's ``Recorder``
        protocol). ``outcome`` is one of ``"ok"``, ``"error"``,
        ``"rejected"``, ``"rate_limited"``, ``"cached"``, ``"stale"``,
        ``"fallback"``. ``"ok"`` marks the source healthy; ``"error"``,
        ``"rejected"``, ``"stale"`` and ``"fallback"`` (the source failed or
        was refused) mark it unhealthy; ``"cached"`` and ``"rate_limited"``
        say nothing about it. ``seconds`` (the time spent calling the source)
        feeds the latency averages and histogram whatever the outcome.

        Raises:
            ValueError: an unknown outcome, or ``seconds`` negative, infinite or NaN.
        """
        try:
            index, healthy = _OUTCOME_KINDS[outcome]
        except KeyError:
            raise ValueError(f"outcome={outcome!r} must be one of {OUTCOMES}") from None
        if seconds is None:
            slot = -1
            seconds = 0.0
        elif 0.0 <= seconds < _INF:
            slot = bisect_left(DURATION_BUCKETS, seconds)
        else:
            raise ValueError(f"seconds={seconds!r} must be >= 0 and finite")
        lock = self._lock
        lock.acquire()
        try:
            try:
                entry = self._sources[source]
            except KeyError:
                entry = self._source(source)
            entry.outcomes[index] += 1
            if healthy is not None:
                entry.healthy = healthy
            if slot >= 0:
                entry.counts[slot] += 1
                entry.total += seconds
                entry.recent.append(seconds)
        finally:
            lock.release()

    def track(
        self,
        source: str,
        *,
        cache: RedisCache | AsyncRedisCache | None = None,
        bucket: TokenBucket | RedisTokenBucket | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        """Read these primitives' ``.stats`` for ``source`` whenever metrics are collected.

        Each object is read once however often it is tracked: tracking the
        same cache for several sources (or twice) counts its hits once. A
        cache is exported under its ``namespace`` (one cache often serves every
        source), a bucket and a breaker under ``source``; several objects
        under one label add up (states are counted per state). Nothing is read
        here, and tracking keeps a reference to the objects.
        """
        with self._lock:
            source = _label(source)
            if source not in self._sources:
                self._source(source)
            label = source if source in self._sources else OTHER
            if cache is not None:
                self._caches.setdefault(id(cache), (cache.namespace, cache))
            if bucket is not None:
                self._buckets.setdefault(id(bucket), (label, bucket))
            if breaker is not None:
                self._breakers.setdefault(id(breaker), (label, breaker))

    # ------------------------------------------------------------- reading

    def get_summary(self) -> PerformanceSummary:
        """The health payload: a plain dict with exactly the keys of `PerformanceSummary`.

        Reads the tracked caches' ``.stats`` for the cache totals.

        Examples:
            >>> metrics = PerformanceMetrics()
            >>> sorted(metrics.get_summary())  # doctest: +NORMALIZE_WHITESPACE
            ['avg_api_latency', 'avg_signal_generation_time', 'cache_hit_rate',
             'data_source_latencies', 'skip_rate', 'total_cache_hits',
             'total_cache_misses', 'total_skipped_symbols', 'total_symbols_processed',
             'uptime_seconds']
        """
        caches = [tracked for _, tracked in self._tracked(self._caches)]
        with self._lock:
            uptime = self._clock.monotonic() - self._started
            signals = _mean(self._recent_signals)
            windows = {
                name: (sum(entry.recent), len(entry.recent))
                for name, entry in self._sources.items()
                if entry.recent
            }
            hits, misses = self._cache_hits, self._cache_misses
            skipped = sum(entry.skipped for entry in self._symbols.values())
            processed = sum(entry.processed for entry in self._symbols.values())
        for cache in caches:
            stats = cache.stats
            hits += stats.hits
            misses += stats.misses
        per_source = {name: total / count for name, (total, count) in windows.items()}
        samples = sum(count for _, count in windows.values())
        latency = sum(total for total, _ in windows.values()) / samples if samples else 0.0
        return {
            "uptime_seconds": uptime,
            "avg_signal_generation_time": signals,
            "cache_hit_rate": _percent(hits, hits + misses),
            "skip_rate": min(100.0, _percent(skipped, processed)),
            "total_cache_hits": hits,
            "total_cache_misses": misses,
            "total_skipped_symbols": skipped,
            "total_symbols_processed": processed,
            "avg_api_latency": latency,
            "data_source_latencies": per_source,
        }

    @property
    def registry(self) -> CollectorRegistry:
        """The prometheus-client registry these metrics are collected into.

        The one passed at construction, else the metrics' own, created and
        registered on first use. Serve it like any registry, e.g.
        ``prometheus_client.make_wsgi_app(metrics.registry)``.

        Raises:
            ImportError: prometheus-client is not installed (``pip install
                'argo-perf[prometheus]'``).
        """
        registry = self._registry
        if registry is None:
            from ._prometheus import new_registry

            with self._lock:  # two first uses at once must not make two registries
                registry = self._registry
                if registry is None:
                    registry = self._register(new_registry())
        return registry

    def exposition(self) -> bytes:
        """The metrics in the Prometheus text format, as served at ``/metrics``.

        Raises:
            ImportError: prometheus-client is not installed (``pip install
                'argo-perf[prometheus]'``).
        """
        from ._prometheus import exposition

        return exposition(self.registry)

    def __repr__(self) -> str:
        with self._lock:
            sources = sorted(self._sources)
        return f"PerformanceMetrics(window={self._window}, sources={sources})"

    # ------------------------------------------------------------ internals

    def _symbol(self, symbol: str) -> _Symbol:
        # Called under the lock. Without per-symbol labels everything is one entry.
        if not self._symbol_labels:
            return self._unlabelled
        symbol = _label(symbol)
        entry = self._symbols.get(symbol)
        if entry is None:
            # "" is the unlabelled entry and OTHER the overflow: neither counts towards the bound.
            if len(self._symbols) - (OTHER in self._symbols) > self._symbol_labels:
                symbol = OTHER
            entry = self._symbols.setdefault(symbol, _Symbol())
        return entry

    def _source(self, source: str) -> _Source:
        # Called under the lock, for a name not seen yet as it was given.
        source = _label(source)
        entry = self._sources.get(source)
        if entry is None:
            if len(self._sources) - (OTHER in self._sources) >= self._max_sources:
                source = OTHER
                entry = self._sources.get(source)
            if entry is None:
                entry = self._sources[source] = _Source(self._window)
        return entry

    def _tracked(self, objects: dict[int, tuple[str, _T]]) -> list[tuple[str, _T]]:
        with self._lock:
            return list(objects.values())

    def _register(self, registry: CollectorRegistry) -> CollectorRegistry:
        # Registering does not collect (describe reads nothing), so the lock may be held.
        from ._prometheus import register

        register(registry, self._snapshot)
        self._registry = registry
        return registry

    def _snapshot(self) -> Snapshot:
        """Copy the counters under the lock, then read the tracked primitives outside it."""
        caches = self._tracked(self._caches)
        buckets = self._tracked(self._buckets)
        breakers = self._tracked(self._breakers)
        with self._lock:
            symbols = {
                name: SymbolData(histogram_data(entry), entry.processed, entry.skipped)
                for name, entry in self._symbols.items()
            }
            sources = {
                name: SourceData(
                    dict(zip(OUTCOMES, entry.outcomes, strict=True)),
                    histogram_data(entry),
                    entry.healthy,
                )
                for name, entry in self._sources.items()
            }
            hits, misses = self._cache_hits, self._cache_misses
        return Snapshot(
            symbol_labels=self._symbol_labels > 0,
            symbols=symbols,
            cache_hits=hits,
            cache_misses=misses,
            sources=sources,
            caches=_grouped((label, cache.stats) for label, cache in caches),
            buckets=_grouped((label, bucket.stats) for label, bucket in buckets),
            breakers=_grouped((label, breaker.stats) for label, breaker in breakers),
        )


def _label(name: object) -> str:
    """``name`` as a label value every exporter can write: a str that encodes to UTF-8.

    Names may come from data (a symbol, a vendor's name read from a file):
    what is not a str is written with ``str``, and a lone surrogate (bytes
    decoded with ``surrogateescape``) as its escape, so a scrape never fails.
    """
    label = name if type(name) is str else str(name)
    try:
        label.encode("utf-8")
    except UnicodeEncodeError:
        label = label.encode("utf-8", "backslashreplace").decode("utf-8")
    return label


def _grouped(pairs: Iterable[tuple[str, _S]]) -> dict[str, list[_S]]:
    groups: dict[str, list[_S]] = {}
    for label, stats in pairs:
        groups.setdefault(label, []).append(stats)
    return groups


def _mean(samples: deque[float]) -> float:
    return sum(samples) / len(samples) if samples else 0.0


def _percent(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


if TYPE_CHECKING:

    def _implements_recorder(metrics: PerformanceMetrics) -> Recorder:
        return metrics  # mypy checks the class against the protocol here


_default_metrics: PerformanceMetrics | None = None
_default_lock = threading.Lock()


def get_performance_metrics() -> PerformanceMetrics:
    """The process-wide `PerformanceMetrics` (own registry, system clock), created on first use.

    Examples:
        >>> get_performance_metrics() is get_performance_metrics()
        True
    """
    global _default_metrics
    if _default_metrics is None:
        with _default_lock:
            if _default_metrics is None:
                _default_metrics = PerformanceMetrics()
    return _default_metrics
