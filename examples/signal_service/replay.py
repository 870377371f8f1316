"""The replay: a whole trading day of 5-second cycles on a virtual clock, before and after.

`replay` runs the `Pipeline` in both configurations (`PipelineConfig.baseline`
and `PipelineConfig.optimized`) over the same simulated market, seed and
symbols, through a day of four parts (`DAY`): the hour before the NYSE opens,
the regular session, the hour after the close, and an hour of a Saturday,
when only crypto moves. Nothing sleeps: every vendor latency, token wait and
backoff is spent on a `argo_perf.ManualClock` that a driver advances to the
next sleeper's deadline whenever every task of the cycle waits on the clock,
so concurrent waits overlap as they would in real time.

`format_table` prints the figures of both runs as the design's before/after
table; `replay(...)[name].as_dict()` is what ``--json`` writes.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import os
import resource
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

from argo_perf import ManualClock, PerformanceMetrics

from .market import DEFAULT_SYMBOLS, Market
from .pipeline import Pipeline, PipelineConfig, SignalRecord
from .tracker import SignalTracker
from .vendors import RateWindow, VendorConfig, Vendors, simulated_vendors

__all__ = ["CYCLE", "DAY", "ReplayClock", "RunResult", "Segment", "format_table", "replay"]

T = TypeVar("T")

CYCLE = 5.0
"""Seconds between the starts of two cycles."""

_NEW_YORK = timezone(timedelta(hours=-5))  # January: Eastern Standard Time


@dataclass(frozen=True)
class Segment:
    """A stretch of the replayed day: ``hours`` of cycles from ``start``."""

    name: str
    start: datetime
    hours: float

    @property
    def cycles(self) -> int:
        """The number of cycles in the segment."""
        return round(self.hours * 3600.0 / CYCLE)


DAY: tuple[Segment, ...] = (
    Segment("pre-market", datetime(2026, 1, 6, 8, 30, tzinfo=_NEW_YORK), 1.0),
    Segment("regular session", datetime(2026, 1, 6, 9, 30, tzinfo=_NEW_YORK), 6.5),
    Segment("after hours", datetime(2026, 1, 6, 16, 0, tzinfo=_NEW_YORK), 1.0),
    Segment("weekend (crypto)", datetime(2026, 1, 10, 12, 0, tzinfo=_NEW_YORK), 1.0),
)
"""The replayed day: Tuesday 6 January 2026 from 08:30 to 17:00 New York time, then
Saturday noon to 13:00 (6840 cycles)."""

REPLAY_VENDOR_CONFIGS: dict[str, VendorConfig] = {
    # Alpha Vantage's free tier (25 calls a day) cannot feed six symbols through
    # a day; a service polling every 5 s pays for the premium plan: 75 per minute.
    "alpha_vantage": VendorConfig(latency=0.25, error_rate=0.01, limits=(RateWindow(75, 60.0),)),
}
"""The vendors' settings that differ from their defaults in the replay."""


class ReplayClock(ManualClock):
    """A `argo_perf.ManualClock` that knows its sleepers' deadlines, for the driver.

    Only the asyncio face is used by the pipeline; `next_deadline` is the
    earliest deadline of a task sleeping now.
    """

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self._deadlines: list[float] = []

    def next_deadline(self) -> float | None:
        """The earliest ``monotonic()`` a sleeping task waits for, or None."""
        return self._deadlines[0] if self._deadlines else None

    async def sleep_async(self, seconds: float) -> None:
        """Await ``seconds`` of virtual time (the driver advances it)."""
        if not seconds > 0:
            await super().sleep_async(seconds)
            return
        deadline = self.monotonic() + seconds
        heapq.heappush(self._deadlines, deadline)
        try:
            await super().sleep_async(seconds)
        finally:
            self._deadlines.remove(deadline)
            heapq.heapify(self._deadlines)


# Yields after which the event loop is taken to be idle when nothing new sleeps:
# enough for the longest chain of futures a cycle resolves at one instant.
_SETTLE_YIELDS = 12


async def drive(clock: ReplayClock, work: Awaitable[T]) -> T:
    """Run ``work`` to its end, advancing ``clock`` whenever every task waits on it."""
    task = asyncio.ensure_future(work)
    quiet = 0
    seen: tuple[int, float | None] = (-1, None)
    while not task.done():
        await asyncio.sleep(0)
        state = (clock.sleepers, clock.next_deadline())
        quiet = quiet + 1 if state == seen else 0
        seen = state
        deadline = state[1]
        if quiet >= _SETTLE_YIELDS and deadline is not None:
            clock.advance(max(0.0, deadline - clock.monotonic()))
            quiet = 0
    return task.result()


@dataclass
class RunResult:
    """The figures of one configuration's replay."""

    name: str
    cycles: int = 0
    times: list[float] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    cache_hits: int = 0
    cache_misses: int = 0
    api_calls: int = 0
    vendor_calls: dict[str, int] = field(default_factory=dict)
    rate_limit_errors: int = 0
    breaker_trips: int = 0
    signals_generated: int = 0
    signals_written: int = 0
    failed_symbols: int = 0
    components_saved: int = 0
    cpu_seconds: float = 0.0
    peak_memory_bytes: int = 0
    signals: list[SignalRecord] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The figures as the ``--json`` output holds them (without the signals)."""
        times = sorted(self.times)
        lookups = self.cache_hits + self.cache_misses
        return {
            "cycles": self.cycles,
            "avg_signal_generation_time": round(sum(times) / len(times), 4) if times else 0.0,
            "p95_signal_generation_time": round(_percentile(times, 0.95), 4),
            "max_signal_generation_time": round(times[-1], 4) if times else 0.0,
            "cache_hit_rate": round(100.0 * self.cache_hits / lookups, 2) if lookups else 0.0,
            "skip_rate": self.summary.get("skip_rate", 0.0),
            "api_calls": self.api_calls,
            "api_calls_per_cycle": round(self.api_calls / self.cycles, 3) if self.cycles else 0.0,
            "vendor_calls": self.vendor_calls,
            "rate_limit_errors": self.rate_limit_errors,
            "breaker_trips": self.breaker_trips,
            "signals_generated": self.signals_generated,
            "signals_written": self.signals_written,
            "failed_symbols": self.failed_symbols,
            "components_saved": self.components_saved,
            "cpu_seconds": round(self.cpu_seconds, 3),
            "peak_memory_bytes": self.peak_memory_bytes,
        }


def _percentile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` percentile of sorted values (0.0 when empty)."""
    if not ordered:
        return 0.0
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _vendors(market: Market, clock: ManualClock, fail: float) -> Vendors:
    configs = dict(REPLAY_VENDOR_CONFIGS)
    if fail:
        # --vendors-fail: every vendor errs that much more often.
        for name, vendor in simulated_vendors(market).by_name().items():
            base = configs.get(name, vendor.config)
            rate = min(1.0 - base.note_rate, base.error_rate + fail)
            configs[name] = VendorConfig(
                latency=base.latency,
                jitter=base.jitter,
                error_rate=rate,
                note_rate=base.note_rate,
                limits=base.limits,
            )
    return simulated_vendors(market, clock=clock, configs=configs)


async def _run_day(
    pipeline: Pipeline,
    clock: ReplayClock,
    symbols: Sequence[str],
    day: Sequence[Segment],
    result: RunResult,
) -> None:
    for segment in day:
        begin = clock.monotonic() + (segment.start - clock.now()).total_seconds()
        index = 0
        while index < segment.cycles:
            # A cycle starts on the next 5 s tick; the ticks an overrunning cycle
            # missed are skipped, as a periodic timer does.
            index = max(index, math.ceil((clock.monotonic() - begin) / CYCLE - 1e-9))
            if index >= segment.cycles:
                break
            clock.advance(max(0.0, begin + index * CYCLE - clock.monotonic()))
            index += 1
            report = await drive(clock, pipeline.cycle(symbols))
            result.cycles += 1
            result.times.append(report.seconds)
            result.signals.extend(report.signals)
            result.failed_symbols += len(report.failed)


def run_configuration(
    config: PipelineConfig,
    *,
    seed: int,
    symbols: Sequence[str],
    day: Sequence[Segment] = DAY,
    db: str | os.PathLike[str],
    vendors_fail: float = 0.0,
    measure_memory: bool = True,
) -> RunResult:
    """Replay ``day`` with one configuration; the figures of the run."""
    result = RunResult(config.name)
    clock = ReplayClock(day[0].start)
    vendors = _vendors(Market(seed), clock, vendors_fail)
    metrics = PerformanceMetrics(clock=clock, window=10)
    if measure_memory:
        tracemalloc.start()
    cpu = time.process_time()
    with SignalTracker(db, clock=clock) as tracker:
        pipeline = Pipeline(config, vendors, tracker, clock=clock, metrics=metrics)
        asyncio.run(_run_day(pipeline, clock, symbols, day, result))
    result.cpu_seconds = time.process_time() - cpu
    if measure_memory:
        result.peak_memory_bytes = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    else:
        result.peak_memory_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    stats = pipeline.cache.stats
    result.cache_hits = stats.memory_hits + stats.redis_hits
    result.cache_misses = stats.misses
    result.summary = dict(metrics.get_summary())
    by_name = vendors.by_name()
    result.vendor_calls = {name: v.stats.calls for name, v in by_name.items()}
    result.api_calls = sum(result.vendor_calls.values())
    result.rate_limit_errors = sum(v.stats.rate_limited for v in by_name.values())
    result.breaker_trips = sum(b.stats.opened for b in pipeline.breakers.values())
    result.signals_generated = len(result.signals)
    result.signals_written = tracker.stats.written
    result.components_saved = pipeline.components_saved
    return result


def replay(
    *,
    seed: int = 0,
    symbols: Sequence[str] = DEFAULT_SYMBOLS,
    day: Sequence[Segment] = DAY,
    db: str | os.PathLike[str] | None = None,
    vendors_fail: float = 0.0,
    measure_memory: bool = False,
) -> dict[str, RunResult]:
    """Replay ``day`` with the baseline and the optimized configuration.

    Args:
        seed: the market's seed; the same seed gives the same figures (but
            for CPU seconds and memory).
        symbols: the symbols followed.
        day: the stretches of time replayed (default `DAY`).
        db: the SQLite file of the optimized run's signals (the baseline's goes
            beside it, ``<name>-baseline<suffix>``); default: temporary files.
        vendors_fail: an extra share of calls each vendor answers with an error.
        measure_memory: trace Python allocations for the peak memory (twice as
            slow); by default the peak resident size of the configuration's process.
    """
    with tempfile.TemporaryDirectory(prefix="signal-replay-") as scratch:
        target = Path(db) if db is not None else Path(scratch) / "signals.db"
        paths = {
            "baseline": target.with_name(f"{target.stem}-baseline{target.suffix}"),
            "optimized": target,
        }
        configs = (PipelineConfig.baseline(), PipelineConfig.optimized())
        # One process per configuration: they run side by side, and each one's CPU
        # time and peak memory are its own.
        with ProcessPoolExecutor(max_workers=len(configs)) as pool:
            futures = {
                config.name: pool.submit(
                    run_configuration,
                    config,
                    seed=seed,
                    symbols=tuple(symbols),
                    day=tuple(day),
                    db=paths[config.name],
                    vendors_fail=vendors_fail,
                    measure_memory=measure_memory,
                )
                for config in configs
            }
            return {name: future.result() for name, future in futures.items()}


_ROWS: tuple[tuple[str, str, str], ...] = (
    ("Signal generation per cycle, mean (virtual s)", "avg_signal_generation_time", "{:.3f}"),
    ("Signal generation per cycle, p95 (virtual s)", "p95_signal_generation_time", "{:.3f}"),
    ("Cache hit rate", "cache_hit_rate", "{:.1f} %"),
    ("API calls per cycle", "api_calls_per_cycle", "{:.2f}"),
    ("Skip rate", "skip_rate", "{:.1f} %"),
    ("Rate-limit errors (HTTP 429)", "rate_limit_errors", "{}"),
    ("Circuit breaker trips", "breaker_trips", "{}"),
    ("Cycles", "cycles", "{}"),
    ("Signals written", "signals_written", "{}"),
    ("Component computations saved", "components_saved", "{}"),
    ("CPU seconds", "cpu_seconds", "{:.2f}"),
    ("Peak memory", "peak_memory_bytes", "{}"),
)


def format_table(figures: dict[str, dict[str, Any]]) -> str:
    """The before/after table of ``{"baseline": {...}, "optimized": {...}}`` as Markdown."""
    before, after = figures["baseline"], figures["optimized"]
    lines = [
        f"Replay of {CYCLE:g}-second cycles: {before['cycles']} ran before (a cycle longer than"
        f" {CYCLE:g} s skips the ticks it overran), {after['cycles']} after",
        "",
        "| Metric | Before (baseline) | After (optimized) |",
        "| --- | --- | --- |",
    ]
    for label, key, pattern in _ROWS:
        if key == "peak_memory_bytes":
            cells = [f"{figures[name][key] / 2**20:.1f} MiB" for name in ("baseline", "optimized")]
        else:
            cells = [pattern.format(before[key]), pattern.format(after[key])]
        lines.append(f"| {label} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)
