"""The replay: a whole trading day of 5-second cycles on a virtual clock, before and after.

`replay` runs the `Pipeline` in both configurations (`PipelineConfig.baseline`
and `PipelineConfig.optimized`) over the same simulated market, seed and
symbols, through a day of four parts (`DAY`): the hour before the NYSE opens,
the regular session, the hour after the close, and an hour of a Saturday,
when only crypto moves. Nothing sleeps: every vendor latency, token wait and
backoff is spent on a `argo_perf.ManualClock` that a driver advances to the
next sleeper's deadline whenever every task of the cycle waits on the clock,
so concurrent waits overlap as they would in real time.

With ``redis_url``, the optimized configuration keeps its cache in Redis, and
``instances=N`` (N > 1, Redis required) adds a run of N instances of it
(blue, green, ...) in one process on one virtual clock, in front of one set of
vendors: they share the cache in Redis and one rate limiter, and the vendors
count their combined calls against their own limits.

`format_table` prints the figures of the runs as the design's before/after
table; `figures(replay(...))` is what ``--json`` writes.
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
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar, cast

import redis.asyncio

from argo_perf import AsyncRedisCache, ManualClock, PerformanceMetrics, RateLimiter

from .market import DEFAULT_SYMBOLS, Market
from .pipeline import Pipeline, PipelineConfig, SignalRecord
from .tracker import SignalTracker
from .vendors import RateWindow, VendorConfig, Vendors, simulated_vendors

__all__ = [
    "CYCLE",
    "DAY",
    "INSTANCE_NAMES",
    "ReplayClock",
    "RunResult",
    "Segment",
    "figures",
    "format_table",
    "replay",
]

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


async def drive(
    clock: ReplayClock, work: Awaitable[T], busy: Callable[[], bool] | None = None
) -> T:
    """Run ``work`` to its end, advancing ``clock`` whenever every task waits on it.

    ``busy`` says whether a task waits on something else (a reply from Redis):
    the clock then stands still until it arrives.
    """
    task = asyncio.ensure_future(work)
    quiet = 0
    seen: tuple[int, float | None] = (-1, None)
    while not task.done():
        await asyncio.sleep(0)
        state = (clock.sleepers, clock.next_deadline())
        quiet = quiet + 1 if state == seen and not (busy is not None and busy()) else 0
        seen = state
        deadline = state[1]
        if quiet >= _SETTLE_YIELDS and deadline is not None:
            clock.advance(max(0.0, deadline - clock.monotonic()))
            quiet = 0
    return task.result()


class _TrackedPipeline(redis.asyncio.client.Pipeline):
    """A pipeline whose `execute` counts as a request in flight of its `_TrackedRedis`."""

    owner: _TrackedRedis

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        self.owner.in_flight += 1
        try:
            return await super().execute(raise_on_error)
        finally:
            self.owner.in_flight -= 1


class _TrackedRedis(redis.asyncio.Redis):
    """An asyncio Redis client that counts its requests in flight, for `drive`'s ``busy``."""

    in_flight = 0

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.in_flight += 1
        try:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        finally:
            self.in_flight -= 1

    def pipeline(
        self, transaction: bool = True, shard_hint: str | None = None
    ) -> redis.asyncio.client.Pipeline:
        pipe = _TrackedPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )
        pipe.owner = self
        return pipe


INSTANCE_NAMES = ("blue", "green")
"""The names of the first instances of a run with ``instances``; the third is ``instance-3``."""


def _instance_name(index: int) -> str:
    return INSTANCE_NAMES[index] if index < len(INSTANCE_NAMES) else f"instance-{index + 1}"


@dataclass
class RunResult:
    """The figures of one configuration's replay (or of one instance of it)."""

    name: str
    cycles: int = 0
    times: list[float] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    cache_hits: int = 0
    cache_misses: int = 0
    api_calls: int = 0
    vendor_calls: dict[str, int] = field(default_factory=dict)
    vendor_limits: dict[str, list[dict[str, float]]] = field(default_factory=dict)
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
            "vendor_limits": self.vendor_limits,
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
    offset: float = 0.0,
) -> None:
    for segment in day:
        begin = clock.monotonic() + (segment.start - clock.now()).total_seconds() + offset
        index = 0
        while index < segment.cycles:
            # A cycle starts on the next 5 s tick (``offset`` seconds after it); the
            # ticks an overrunning cycle missed are skipped, as a periodic timer does.
            index = max(index, math.ceil((clock.monotonic() - begin) / CYCLE - 1e-9))
            if index >= segment.cycles:
                break
            await clock.sleep_async(max(0.0, begin + index * CYCLE - clock.monotonic()))
            index += 1
            report = await pipeline.cycle(symbols)
            result.cycles += 1
            result.times.append(report.seconds)
            result.signals.extend(report.signals)
            result.failed_symbols += len(report.failed)


async def _run_pipelines(
    config: PipelineConfig,
    vendors: Vendors,
    trackers: Sequence[SignalTracker],
    clock: ReplayClock,
    symbols: Sequence[str],
    day: Sequence[Segment],
    results: Sequence[RunResult],
    redis_url: str | None,
) -> list[Pipeline]:
    """Run one pipeline per tracker through ``day``, side by side on ``clock``."""
    client = None
    if redis_url is not None:
        client = cast(_TrackedRedis, _TrackedRedis.from_url(redis_url, socket_timeout=5.0))
    # One quota for every instance. Not a Redis-backed limiter: its buckets run on
    # Redis TIME, which stands almost still while the virtual clock runs a day.
    limiter = None
    if config.rate_limits is not None and len(trackers) > 1:
        limiter = RateLimiter(config.rate_limits, clock=clock)
    # A namespace of this run's own: no value of an earlier replay is read.
    namespace = f"{config.name}-{uuid.uuid4().hex[:12]}"
    key = os.urandom(32)  # the run's instances sign and check their values with it
    pipelines = [
        Pipeline(
            config,
            vendors.client(),  # calls counted per instance, against shared limits
            tracker,
            clock=clock,
            metrics=PerformanceMetrics(clock=clock, window=10),
            cache=None
            if client is None
            else AsyncRedisCache(
                client,
                namespace=namespace,
                max_stale=0.0,
                serializer="pickle",  # the vendors' answers are dataclasses
                signing_key=key,
                clock=clock,
            ),
            limiter=limiter,
        )
        for tracker in trackers
    ]
    # The instances' ticks are spread over the cycle, as independent timers are.
    spread = CYCLE / len(pipelines)
    days = [
        _run_day(pipeline, clock, symbols, day, result, index * spread)
        for index, (pipeline, result) in enumerate(zip(pipelines, results, strict=True))
    ]
    try:
        await drive(
            clock, asyncio.gather(*days), None if client is None else lambda: client.in_flight > 0
        )
    finally:
        if client is not None:
            await pipelines[0].cache.clear()  # the run's keys, every instance's
            await client.aclose()
    return pipelines


def _db_paths(db: str | os.PathLike[str], names: Sequence[str]) -> list[Path]:
    """``db`` for one run; ``<name>-<instance><suffix>`` beside it for instances."""
    target = Path(db)
    if len(names) == 1:
        return [target]
    return [target.with_name(f"{target.stem}-{name}{target.suffix}") for name in names]


def run_configuration(
    config: PipelineConfig,
    *,
    seed: int,
    symbols: Sequence[str],
    day: Sequence[Segment] = DAY,
    db: str | os.PathLike[str],
    vendors_fail: float = 0.0,
    measure_memory: bool = True,
    redis_url: str | None = None,
    instances: int = 1,
) -> list[RunResult]:
    """Replay ``day`` with ``instances`` pipelines of one configuration; their figures.

    One instance is named after the configuration, several after
    `INSTANCE_NAMES`. With ``redis_url`` the cache is in Redis (one namespace
    for every instance); several instances also share one rate limiter. CPU
    seconds and peak memory are the process's, every instance's together.
    """
    names = [config.name] if instances == 1 else [_instance_name(i) for i in range(instances)]
    results = [RunResult(name) for name in names]
    clock = ReplayClock(day[0].start)
    vendors = _vendors(Market(seed), clock, vendors_fail)
    if measure_memory:
        tracemalloc.start()
    cpu = time.process_time()
    with ExitStack() as stack:
        trackers = [
            stack.enter_context(SignalTracker(path, clock=clock)) for path in _db_paths(db, names)
        ]
        pipelines = asyncio.run(
            _run_pipelines(config, vendors, trackers, clock, symbols, day, results, redis_url)
        )
    cpu_seconds = time.process_time() - cpu
    if measure_memory:
        peak_memory = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    else:
        peak_memory = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    for result, pipeline, tracker in zip(results, pipelines, trackers, strict=True):
        result.cpu_seconds, result.peak_memory_bytes = cpu_seconds, peak_memory
        stats = pipeline.cache.stats
        result.cache_hits = stats.memory_hits + stats.redis_hits
        result.cache_misses = stats.misses
        result.summary = dict(pipeline.metrics.get_summary())
        by_name = pipeline.vendors.by_name()
        result.vendor_calls = {name: v.stats.calls for name, v in by_name.items()}
        result.vendor_limits = {
            name: [
                {"calls": limit.calls, "seconds": limit.seconds, "busiest": busiest}
                for limit, busiest in zip(v.config.limits, v.stats.busiest, strict=True)
            ]
            for name, v in by_name.items()
        }
        result.api_calls = sum(result.vendor_calls.values())
        result.rate_limit_errors = sum(v.stats.rate_limited for v in by_name.values())
        result.breaker_trips = sum(b.stats.opened for b in pipeline.breakers.values())
        result.signals_generated = len(result.signals)
        result.signals_written = tracker.stats.written
        result.components_saved = pipeline.components_saved
    return results


def replay(
    *,
    seed: int = 0,
    symbols: Sequence[str] = DEFAULT_SYMBOLS,
    day: Sequence[Segment] = DAY,
    db: str | os.PathLike[str] | None = None,
    vendors_fail: float = 0.0,
    measure_memory: bool = False,
    redis_url: str | None = None,
    instances: int = 1,
) -> dict[str, RunResult]:
    """Replay ``day`` with the baseline and the optimized configuration.

    The result has ``"baseline"`` and ``"optimized"``, then, with ``instances``
    > 1, each instance under its name (``"blue"``, ``"green"``, ...).

    Args:
        seed: the market's seed; the same seed gives the same figures (but
            for CPU seconds and memory).
        symbols: the symbols followed.
        day: the stretches of time replayed (default `DAY`).
        db: the SQLite file of the optimized run's signals (the baseline's goes
            beside it, ``<name>-baseline<suffix>``, an instance's
            ``<name>-blue<suffix>``); default: temporary files.
        vendors_fail: an extra share of calls each vendor answers with an error.
        measure_memory: trace Python allocations for the peak memory (twice as
            slow); by default the peak resident size of the configuration's process.
        redis_url: keep the optimized configuration's cache in this Redis
            (``redis://host:port/db``); None: in memory.
        instances: with ``redis_url``, also run this many instances of the
            optimized configuration in front of one set of vendors, sharing
            the cache in Redis and one rate limiter (1: none).

    Raises:
        ValueError: ``instances`` below 1, or above 1 without ``redis_url``.
    """
    if instances < 1 or (instances > 1 and redis_url is None):
        raise ValueError(f"instances must be 1, or more with redis_url, got {instances!r}")
    with tempfile.TemporaryDirectory(prefix="signal-replay-") as scratch:
        target = Path(db) if db is not None else Path(scratch) / "signals.db"
        runs = [
            ("baseline", PipelineConfig.baseline(), None, 1),
            ("optimized", PipelineConfig.optimized(), redis_url, 1),
        ]
        if instances > 1:
            runs.append(("instances", PipelineConfig.optimized(), redis_url, instances))
        # One process per run: they run side by side, and each one's CPU time and
        # peak memory are its own (the instances of a run share one process).
        with ProcessPoolExecutor(max_workers=len(runs)) as pool:
            futures = [
                pool.submit(
                    run_configuration,
                    config,
                    seed=seed,
                    symbols=tuple(symbols),
                    day=tuple(day),
                    db=target.with_name(f"{target.stem}-baseline{target.suffix}")
                    if run == "baseline"
                    else target,
                    vendors_fail=vendors_fail,
                    measure_memory=measure_memory,
                    redis_url=url,
                    instances=count,
                )
                for run, config, url, count in runs
            ]
            results = [result for future in futures for result in future.result()]
    return {result.name: result for result in results}


def figures(results: dict[str, RunResult]) -> dict[str, Any]:
    """The figures of `replay`'s results, as ``--json`` writes them.

    ``{"baseline": {...}, "optimized": {...}}``, and with instances
    ``"instances": [{"name": "blue", ...}, ...]`` and ``"combined"``: the
    instances' vendor calls added up (``vendor_calls``, ``api_calls``),
    their ``rate_limit_errors``, and each vendor's limits with the most calls
    it admitted within one window (``vendor_limits``).
    """
    out: dict[str, Any] = {name: results[name].as_dict() for name in ("baseline", "optimized")}
    instances = [result for name, result in results.items() if name not in out]
    if instances:
        out["instances"] = [{"name": result.name, **result.as_dict()} for result in instances]
        calls = {
            vendor: sum(result.vendor_calls[vendor] for result in instances)
            for vendor in instances[0].vendor_calls
        }
        out["combined"] = {
            "instances": len(instances),
            "vendor_calls": calls,
            "api_calls": sum(calls.values()),
            "rate_limit_errors": sum(result.rate_limit_errors for result in instances),
            "vendor_limits": instances[0].vendor_limits,  # the vendors' own, every client's calls
        }
    return out


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


def format_table(figures: dict[str, Any]) -> str:
    """The before/after table of `figures`' output as Markdown.

    With instances, a column per instance, and a line per vendor of their
    combined calls against the vendor's own limits.
    """
    before, after = figures["baseline"], figures["optimized"]
    columns = [("Before (baseline)", before), ("After (optimized)", after)]
    instances: list[dict[str, Any]] = figures.get("instances", [])
    columns += [(f"After, {each['name']} (shared Redis)", each) for each in instances]
    lines = [
        f"Replay of {CYCLE:g}-second cycles: {before['cycles']} ran before (a cycle longer than"
        f" {CYCLE:g} s skips the ticks it overran), {after['cycles']} after",
        "",
        "| Metric | " + " | ".join(title for title, _ in columns) + " |",
        "| --- |" + " --- |" * len(columns),
    ]
    for label, key, pattern in _ROWS:
        if key == "peak_memory_bytes":
            cells = [f"{values[key] / 2**20:.1f} MiB" for _, values in columns]
        else:
            cells = [pattern.format(values[key]) for _, values in columns]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    combined = figures.get("combined")
    if combined is not None:
        names = " and ".join(each["name"] for each in instances)
        lines += [
            "",
            f"Combined vendor calls of {names} (one process: CPU and memory are theirs together),"
            f" {combined['rate_limit_errors']} refused by a vendor's rate limit (HTTP 429):",
            "",
        ]
        for vendor, calls in combined["vendor_calls"].items():
            limits = ", ".join(
                f"at most {w['busiest']} of {w['calls']} in {w['seconds']:g} s"
                for w in combined["vendor_limits"][vendor]
            )
            lines.append(f"- {vendor}: {calls} calls ({limits})")
    return "\n".join(lines)
