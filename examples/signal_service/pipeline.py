"""The signal pipeline: argo_perf's primitives composed around the four vendors.

One `Pipeline` turns a list of symbols into signals, one cycle at a time. How
it does so is chosen by a `PipelineConfig`; two are predefined:

| | `PipelineConfig.baseline` ("before") | `PipelineConfig.optimized` ("after") |
| --- | --- | --- |
| cache TTL | fixed 10 s | `AdaptiveTTL` (market hours, volatility); |
| | | at least 60 s for indicators, 300 s for sentiment |
| unchanged prices | every signal recomputed | `ChangeGate` skips the symbol |
| order | symbols and sources one by one | `PriorityScheduler`, sources in parallel |
| prices | one vendor call per symbol | `Batcher` over the batch endpoint |
| rate limit, breaker, retry | none | `RateLimiter`, a `CircuitBreaker` per vendor, 2 attempts |
| components | all recomputed | `ComponentMemo` reuses unchanged ones |

Every layer comes from argo_perf through `resilient`: the pipeline holds no
retry, rate limit, circuit breaker or cache code of its own. A vendor that
fails (after the retries) leaves its component out of the signal; a symbol
whose price fails gets no signal this cycle. No cached value is ever served
past its TTL (the cache's ``max_stale`` is 0): a signal is built only from
data its TTL allows.

Example:
    ```python
    clock = ManualClock(autoadvance=True)
    vendors = simulated_vendors(Market(seed=1), clock=clock)
    with SignalTracker(":memory:", clock=clock) as tracker:
        pipeline = Pipeline(PipelineConfig.optimized(), vendors, tracker, clock=clock)
        report = await pipeline.cycle(["AAPL", "BTC-USD"])
    ```
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tenacity import Retrying, stop_after_attempt, wait_exponential

from argo_perf import (
    AdaptiveTTL,
    ArgoPerfError,
    AsyncRedisCache,
    Batcher,
    ChangeGate,
    CircuitBreaker,
    Clock,
    PerformanceMetrics,
    PriorityScheduler,
    RateLimitConfig,
    RateLimiter,
    SystemClock,
    VolatilityTracker,
    resilient,
)

from .signals import ComponentMemo, Signal, compute_signal
from .sources import Indicators, Quote, Sentiment, VendorError
from .tracker import SignalTracker
from .vendors import Vendors

__all__ = ["CycleReport", "InputAge", "Pipeline", "PipelineConfig", "SignalRecord"]

OPTIMIZED_LIMITS: dict[str, RateLimitConfig] = {
    # Each vendor's own limit, with room to spare: massive 10/s, Alpha Vantage's
    # premium plan 75/min, xAI 60/min, Sonar 50/min.
    "massive": RateLimitConfig(requests_per_second=5.0, burst_size=10),
    "alpha_vantage": RateLimitConfig(requests_per_second=1.0, burst_size=10),
    "xai": RateLimitConfig(requests_per_second=0.5, burst_size=10),
    "sonar": RateLimitConfig(requests_per_second=0.5, burst_size=10),
}
"""The optimized configuration's `RateLimiter` settings, below each vendor's own limit."""


@dataclass(frozen=True)
class PipelineConfig:
    """How a `Pipeline` fetches and computes; see the module docs for the two presets.

    Args:
        name: how reports call the configuration.
        adaptive_ttl: prices cached for `AdaptiveTTL`'s TTL (else ``fixed_ttl``).
        fixed_ttl: seconds every source is cached for without ``adaptive_ttl``.
        indicator_ttl: seconds indicators are cached for at least with ``adaptive_ttl``.
        sentiment_ttl: seconds sentiment readings are cached for at least with ``adaptive_ttl``.
        skip_unchanged: skip symbols whose price moved less than ``threshold``.
        threshold: the `ChangeGate` threshold (a fraction of the price).
        parallel: symbols through a `PriorityScheduler`, sources in parallel.
        batch_prices: prices through a `Batcher` over the batch endpoint.
        rate_limits: a `RateLimiter` with these settings (None: no rate limit).
        breakers: a `CircuitBreaker` per vendor.
        attempts: attempts per vendor call (1: no retry).
        max_wait: seconds a call waits at most for a token or a retry-after.
        memo: reuse unchanged components (`ComponentMemo`).
    """

    name: str
    adaptive_ttl: bool = False
    fixed_ttl: float = 10.0
    indicator_ttl: float = 60.0
    sentiment_ttl: float = 300.0
    skip_unchanged: bool = False
    threshold: float = 0.005
    parallel: bool = False
    batch_prices: bool = False
    rate_limits: dict[str, RateLimitConfig] | None = None
    breakers: bool = False
    attempts: int = 1
    max_wait: float = 2.0
    memo: bool = False

    @classmethod
    def baseline(cls) -> PipelineConfig:
        """The "before": fixed 10 s TTL, no skipping, sequential, no limiter or breaker."""
        return cls(name="baseline")

    @classmethod
    def optimized(cls) -> PipelineConfig:
        """The "after": every primitive of argo_perf, composed with `resilient`."""
        return cls(
            name="optimized",
            adaptive_ttl=True,
            skip_unchanged=True,
            parallel=True,
            batch_prices=True,
            rate_limits=dict(OPTIMIZED_LIMITS),
            breakers=True,
            attempts=2,
            memo=True,
        )


@dataclass(frozen=True)
class InputAge:
    """How old one input of a signal was when the pipeline read it.

    Attributes:
        source: the vendor (``massive``, ``alpha_vantage``, ``xai``, ``sonar``).
        age: seconds since the value was fetched (0.0 when fetched for this signal).
        ttl: the TTL the value was cached with, in seconds.
    """

    source: str
    age: float
    ttl: float


@dataclass(frozen=True)
class SignalRecord:
    """A signal the pipeline generated, with the ages of its inputs."""

    signal: Signal
    inputs: tuple[InputAge, ...]


@dataclass
class CycleReport:
    """What one `Pipeline.cycle` did.

    Attributes:
        started: the clock's ``monotonic()`` when the cycle began.
        seconds: how long it took on the pipeline's clock.
        signals: the signals generated (skipped symbols have none).
        skipped: symbols skipped as unchanged.
        failed: symbols without a price this cycle.
    """

    started: float
    seconds: float = 0.0
    signals: list[SignalRecord] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


_FAILURES = (VendorError, ArgoPerfError)  # a vendor's error, or a refusal by argo_perf


class Pipeline:
    """Generates signals for symbols, one cycle at a time (see the module docs).

    Args:
        config: what to compose (`PipelineConfig.baseline` or `PipelineConfig.optimized`).
        vendors: the four vendors (`simulated_vendors`, or real clients of the same shape).
        tracker: where signals are stored.
        clock: the clock of every primitive (default `argo_perf.SystemClock`).
        metrics: where observations go (default: a new `PerformanceMetrics`).
        cache: the cache of vendor answers (default: an in-memory `AsyncRedisCache`).
        limiter: the rate limiter, when the config has one (default: built from
            ``config.rate_limits``); pass a Redis-backed one to share quotas.
    """

    def __init__(
        self,
        config: PipelineConfig,
        vendors: Vendors,
        tracker: SignalTracker,
        *,
        clock: Clock | None = None,
        metrics: PerformanceMetrics | None = None,
        cache: AsyncRedisCache | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.config = config
        self.vendors = vendors
        self.tracker = tracker
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.metrics = metrics if metrics is not None else PerformanceMetrics(clock=self.clock)
        # max_stale=0: a failed call never falls back on a value past its TTL. The
        # vendors' answers are dataclasses, which JSON cannot hold: signed pickle,
        # with a key that never leaves this process.
        self.cache = (
            cache
            if cache is not None
            else AsyncRedisCache(
                namespace=config.name,
                max_stale=0.0,
                serializer="pickle",
                signing_key=os.urandom(32),
                clock=self.clock,
            )
        )
        self.volatility = VolatilityTracker(clock=self.clock)
        self.adaptive = AdaptiveTTL(volatility=self.volatility, clock=self.clock)
        self.gate: ChangeGate[Signal] = ChangeGate(config.threshold, clock=self.clock)
        self.scheduler = PriorityScheduler(self.volatility, clock=self.clock)
        self.memo = ComponentMemo() if config.memo else None
        self.limiter = limiter
        if self.limiter is None and config.rate_limits is not None:
            self.limiter = RateLimiter(config.rate_limits, clock=self.clock)
        self.breakers: dict[str, CircuitBreaker] = {}
        # Backoffs of 0.1 s, 0.2 s ... without random jitter: a replay is repeatable.
        self._retry = (
            Retrying(stop=stop_after_attempt(config.attempts), wait=wait_exponential(0.1, max=2))
            if config.attempts > 1
            else None
        )
        self._ttls: dict[tuple[str, str], float] = {}  # (source, symbol) -> TTL last stored with
        self._build()

    # --- composition --------------------------------------------------------------------

    def _ttl(self, source: str, ttl: float | Callable[[str], float]) -> Callable[[str], float]:
        """The TTL of ``source``'s values, noting it per symbol for `InputAge`."""

        def ttl_for(symbol: str) -> float:
            seconds = ttl(symbol) if callable(ttl) else ttl
            self._ttls[(source, symbol)] = seconds
            return seconds

        return ttl_for

    def _protect(self, source: str, *, cached: bool, **layers: Any) -> Any:
        """`resilient` for ``source`` with the config's limiter, breaker and retry."""
        config = self.config
        if config.breakers and source not in self.breakers:
            self.breakers[source] = CircuitBreaker(source, clock=self.clock)
        return resilient(
            source,
            limiter=self.limiter,
            breaker=self.breakers.get(source),
            retry=self._retry,
            max_wait=config.max_wait,
            metrics=self.metrics if cached else None,
            clock=self.clock,
            **layers,
        )

    def _cached(self, source: str, ttl: float | Callable[[str], float]) -> dict[str, Any]:
        return {
            "cache": self.cache,
            "ttl": self._ttl(source, ttl),
            "key": lambda symbol: f"{source}:{symbol}",
        }

    def _at_least(self, seconds: float) -> Callable[[str], float]:
        return lambda symbol: max(seconds, self.adaptive.ttl_for(symbol))

    def _build(self) -> None:
        config, vendors = self.config, self.vendors
        fixed = config.fixed_ttl
        price_ttl: float | Callable[[str], float] = (
            self.adaptive.ttl_for if config.adaptive_ttl else fixed
        )
        if config.batch_prices:
            # The limiter and the breaker guard the vendor's batch call; the cache
            # sits in front of the batcher, one key per symbol.
            batch = self._protect("massive", cached=False)(vendors.massive.prices)
            self.batcher: Batcher[str, Quote] | None = Batcher(batch, clock=self.clock)
            self._price = resilient(
                "massive",
                metrics=self.metrics,
                clock=self.clock,
                **self._cached("massive", price_ttl),
            )(self.batcher.load_async)
        else:
            self.batcher = None
            self._price = self._protect(
                "massive", cached=True, **self._cached("massive", price_ttl)
            )(vendors.massive.price)
        indicator_ttl: float | Callable[[str], float] = fixed
        sentiment_ttl: float | Callable[[str], float] = fixed
        if config.adaptive_ttl:
            # Never shorter than the market's TTL: a stock's bars and readings
            # stand still out of session too.
            indicator_ttl = self._at_least(config.indicator_ttl)
            sentiment_ttl = self._at_least(config.sentiment_ttl)
        self._indicators = self._protect(
            "alpha_vantage", cached=True, **self._cached("alpha_vantage", indicator_ttl)
        )(vendors.alpha_vantage.indicators)
        self._sentiments = [
            self._protect(vendor.name, cached=True, **self._cached(vendor.name, sentiment_ttl))(
                vendor.sentiment
            )
            for vendor in (vendors.xai, vendors.sonar)
        ]

    # --- one cycle ----------------------------------------------------------------------

    async def cycle(self, symbols: Sequence[str]) -> CycleReport:
        """Generate the signals of ``symbols`` once; times the cycle on the clock."""
        report = CycleReport(started=self.clock.monotonic())
        if self.config.parallel:
            await self.scheduler.run(
                symbols, lambda s: self._symbol(s, report), concurrency=len(symbols)
            )
        else:
            for symbol in symbols:
                await self._symbol(symbol, report)
        report.seconds = self.clock.monotonic() - report.started
        self.metrics.record_signal_generation_time(report.seconds)
        return report

    async def _read(
        self, source: str, call: Any, symbol: str, inputs: list[InputAge]
    ) -> Any | None:
        """``call.with_meta(symbol)``'s value, noting its age; None when the call failed."""
        try:
            result = await call.with_meta(symbol)
        except _FAILURES:
            return None
        inputs.append(InputAge(source, result.age or 0.0, self._ttls[(source, symbol)]))
        return result.value

    async def _symbol(self, symbol: str, report: CycleReport) -> None:
        metrics = self.metrics
        metrics.record_symbol_processed(symbol)
        inputs: list[InputAge] = []
        calls = [
            self._read("massive", self._price, symbol, inputs),
            self._read("alpha_vantage", self._indicators, symbol, inputs),
            *(
                self._read(vendor, call, symbol, inputs)
                for vendor, call in zip(("xai", "sonar"), self._sentiments, strict=True)
            ),
        ]
        if self.config.parallel:
            answers = await asyncio.gather(*calls)
        else:
            answers = [await call for call in calls]
        quote: Quote | None = answers[0]
        indicators: Indicators | None = answers[1]
        readings: list[Sentiment] = [r for r in answers[2:] if r is not None]
        if quote is None:
            report.failed.append(symbol)
            return
        self.volatility.observe(symbol, quote.price)
        if self.config.skip_unchanged and not self.gate.changed(symbol, quote.price):
            metrics.record_skipped_symbol(symbol)
            report.skipped.append(symbol)
            return
        signal = compute_signal(
            quote, indicators, readings, timestamp=self.clock.now(), memo=self.memo
        )
        self.gate.remember(symbol, quote.price, signal)
        self.tracker.add(signal)
        report.signals.append(SignalRecord(signal, tuple(inputs)))

    @property
    def components_saved(self) -> int:
        """Component computations the memo made unnecessary (0 without a memo)."""
        return self.memo.stats.reused if self.memo is not None else 0
