"""The Prometheus export of `PerformanceMetrics`: one collector, built at scrape time.

Imported only when the export is used (`PerformanceMetrics.registry`,
`PerformanceMetrics.exposition`, or a registry passed at construction), so
that ``import argo_perf`` never imports prometheus-client. Recording costs
nothing here: a scrape takes one `Snapshot` of the counters and of the
tracked primitives' ``.stats`` and turns it into metric families.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

try:
    from prometheus_client import generate_latest
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
    from prometheus_client.registry import Collector, CollectorRegistry
except ImportError as exc:  # the extra is not installed
    raise ImportError(
        "the Prometheus export of argo_perf needs prometheus-client: "
        "pip install 'argo-perf[prometheus]'",
        name="prometheus_client",
    ) from exc

from ._metrics_data import DURATION_BUCKETS, HistogramData, Snapshot
from ._recording import OUTCOMES

__all__ = ["exposition", "new_registry", "register"]

_BREAKER_STATES = ("closed", "open", "half_open")
_CACHE_BACKENDS = ("redis", "memory")
# The ``le`` labels as prometheus-client writes them (repr of a float: "0.005", "30.0").
_LE = [repr(bound) for bound in DURATION_BUCKETS] + ["+Inf"]
_EMPTY = Snapshot(
    symbol_labels=False,
    symbols={},
    cache_hits=0,
    cache_misses=0,
    sources={},
    caches={},
    buckets={},
    breakers={},
)


class MetricsCollector(Collector):
    """Builds every ``argo_*`` family from a fresh snapshot on each collection."""

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        return families(self._snapshot())

    def describe(self) -> Iterable[Metric]:
        # The names, for registries that check for duplicates, without reading anything.
        return families(_EMPTY)


def new_registry() -> CollectorRegistry:
    """A registry of its own for one `PerformanceMetrics`."""
    return CollectorRegistry()


def register(registry: CollectorRegistry, snapshot: Callable[[], Snapshot]) -> None:
    """Register a collector of ``snapshot()`` into ``registry``."""
    registry.register(MetricsCollector(snapshot))


def exposition(registry: CollectorRegistry) -> bytes:
    """``registry`` in the Prometheus text format."""
    return generate_latest(registry)


def families(snapshot: Snapshot) -> Iterator[Metric]:
    """Every family, in a fixed order; a family with nothing to report has no samples."""
    yield from _signals(snapshot)
    yield from _caches(snapshot)
    yield from _sources(snapshot)
    yield from _breakers(snapshot)
    yield from _buckets(snapshot)


def _signals(snapshot: Snapshot) -> Iterator[Metric]:
    labels = ["symbol"] if snapshot.symbol_labels else []
    durations = HistogramMetricFamily(
        "argo_signal_generation_duration_seconds",
        "Time taken to generate one signal, in seconds.",
        labels=labels,
    )
    processed = CounterMetricFamily(
        "argo_symbols_processed",
        "Symbols whose signal was generated.",
        labels=labels,
    )
    skipped = CounterMetricFamily(
        "argo_symbols_skipped",
        "Symbols whose signal was not regenerated because their price had not moved enough.",
        labels=labels,
    )
    for symbol, data in snapshot.symbols.items():
        # With per-symbol labels, the unlabelled entry shows only once something is in it.
        empty = not (data.processed or data.skipped or any(data.durations.counts))
        if labels and not symbol and empty:
            continue
        values = [symbol] if labels else []
        _add_histogram(durations, values, data.durations)
        processed.add_metric(values, data.processed)
        skipped.add_metric(values, data.skipped)
    return iter((durations, processed, skipped))


def _caches(snapshot: Snapshot) -> Iterator[Metric]:
    hits = CounterMetricFamily(
        "argo_cache_hits",
        "Cache lookups that found a fresh value: recorded by hand plus counted by tracked caches.",
    )
    misses = CounterMetricFamily(
        "argo_cache_misses",
        "Cache lookups that found no fresh value: recorded by hand plus counted by tracked caches.",
    )
    stale = CounterMetricFamily(
        "argo_cache_stale_served",
        "Values past their TTL served because Redis or a loader failed.",
        labels=["cache"],
    )
    backend = GaugeMetricFamily(
        "argo_cache_backend",
        "Tracked caches of this namespace using this backend (redis, or memory during an outage "
        "or when memory-only).",
        labels=["cache", "backend"],
    )
    transitions = CounterMetricFamily(
        "argo_cache_backend_transitions",
        "Times the health gate in front of the cache's Redis changed state (up to down, down to "
        "up).",
        labels=["cache"],
    )
    entries = GaugeMetricFamily(
        "argo_cache_memory_entries",
        "Entries held by the caches' in-process tier.",
        labels=["cache"],
    )
    total_hits, total_misses = snapshot.cache_hits, snapshot.cache_misses
    for namespace, caches in snapshot.caches.items():
        total_hits += sum(stats.hits for stats in caches)
        total_misses += sum(stats.misses for stats in caches)
        stale.add_metric([namespace], sum(stats.stale_served for stats in caches))
        for name in _CACHE_BACKENDS:
            in_use = sum(stats.backend == name for stats in caches)
            backend.add_metric([namespace, name], in_use)
        transitions.add_metric([namespace], sum(stats.backend_transitions for stats in caches))
        entries.add_metric([namespace], sum(stats.memory_entries for stats in caches))
    hits.add_metric([], total_hits)
    misses.add_metric([], total_misses)
    return iter((hits, misses, stale, backend, transitions, entries))


def _sources(snapshot: Snapshot) -> Iterator[Metric]:
    requests = CounterMetricFamily(
        "argo_data_source_requests",
        "Requests to a data source by outcome: ok, error, rejected (open breaker), rate_limited, "
        "cached, stale (stale cached value served), fallback.",
        labels=["source", "outcome"],
    )
    durations = HistogramMetricFamily(
        "argo_data_source_request_duration_seconds",
        "Time spent calling a data source per request (retries included, failures too), in "
        "seconds.",
        labels=["source"],
    )
    status = GaugeMetricFamily(
        "argo_data_source_status",
        "1 when the data source is healthy (its tracked breakers are closed; without a breaker, "
        "its last answered or refused request succeeded), else 0.",
        labels=["source"],
    )
    for source, data in snapshot.sources.items():
        for outcome in OUTCOMES:
            requests.add_metric([source, outcome], data.requests[outcome])
        _add_histogram(durations, [source], data.durations)
        breakers = snapshot.breakers.get(source)
        healthy = all(stats.state == "closed" for stats in breakers) if breakers else data.healthy
        status.add_metric([source], 1.0 if healthy else 0.0)
    return iter((requests, durations, status))


def _breakers(snapshot: Snapshot) -> Iterator[Metric]:
    state = GaugeMetricFamily(
        "argo_circuit_breaker_state",
        "Tracked circuit breakers of the source in this state (closed, open, half_open).",
        labels=["source", "state"],
    )
    opened = CounterMetricFamily(
        "argo_circuit_breaker_opened",
        "Transitions of the source's circuit breakers to open.",
        labels=["source"],
    )
    rejections = CounterMetricFamily(
        "argo_circuit_breaker_rejections",
        "Calls the source's circuit breakers rejected without running them.",
        labels=["source"],
    )
    for source, breakers in snapshot.breakers.items():
        for name in _BREAKER_STATES:
            state.add_metric([source, name], sum(stats.state == name for stats in breakers))
        opened.add_metric([source], sum(stats.opened for stats in breakers))
        rejections.add_metric([source], sum(stats.rejections for stats in breakers))
    return iter((state, opened, rejections))


def _buckets(snapshot: Snapshot) -> Iterator[Metric]:
    granted = CounterMetricFamily(
        "argo_rate_limit_grants",
        "Permissions the source's rate limit granted, at once or after waiting.",
        labels=["source"],
    )
    waits = CounterMetricFamily(
        "argo_rate_limit_waits",
        "Permissions that waited for tokens before they were granted.",
        labels=["source"],
    )
    rejections = CounterMetricFamily(
        "argo_rate_limit_rejections",
        "Permissions the source's rate limit refused (no tokens now, or not within the timeout).",
        labels=["source"],
    )
    for source, buckets in snapshot.buckets.items():
        granted.add_metric([source], sum(stats.granted for stats in buckets))
        waits.add_metric([source], sum(stats.waited for stats in buckets))
        rejections.add_metric([source], sum(stats.denied for stats in buckets))
    return iter((granted, waits, rejections))


def _add_histogram(
    family: HistogramMetricFamily, labels: Sequence[str], data: HistogramData
) -> None:
    cumulative = 0
    buckets: list[tuple[str, float]] = []
    for le, count in zip(_LE, data.counts, strict=True):
        cumulative += count
        buckets.append((le, cumulative))
    family.add_metric(list(labels), buckets, data.total)
