"""Simulated vendors: the four APIs of the service, offline and deterministic.

Each vendor plays the server side of a real API over a `Market`:

| vendor | class | answers | latency | own rate limit |
| --- | --- | --- | --- | --- |
| ``massive`` | `MassiveVendor` | prices, one or several symbols per call | 0.12 s | 10 / s |
| ``alpha_vantage`` | `AlphaVantageVendor` | RSI, SMA 20, SMA 50 | 0.25 s | 5 / min, 25 / day |
| ``xai`` | `XaiVendor` | sentiment | 1.0 s | 60 / min |
| ``sonar`` | `SonarVendor` | sentiment | 1.2 s | 50 / min |

A call spends its latency on the injected clock (``await clock.sleep_async``,
or ``clock.sleep`` for the ``*_sync`` endpoints), so on a
`argo_perf.ManualClock` a whole trading day replays without sleeping. It
then answers in one of five ways, decided when the call arrives:

1. during an outage (`Outage`): `VendorError` with status 503;
2. over one of the vendor's rate limits (`RateWindow`): `VendorRateLimited`
   with the seconds until a call would be admitted (refused calls do not use
   up the quota);
3. with probability ``error_rate``: `VendorError` with status 500;
4. with probability ``note_rate``: HTTP 200 with an error body, which the
   vendor's parser in `sources` turns into `VendorNote`;
5. otherwise the data.

Which of 3-5 a call gets is a deterministic draw keyed by the seed, the
vendor, the symbol(s), the market step of the call and how many calls for
the same symbol(s) that step already made, so one symbol's fate does not
depend on the calls made for other symbols, and a retry is a new draw. Each
vendor counts what it received and answered in `VendorStats`.

The vendor-side windows here simulate the vendors' servers; the service's own
rate limiting, retries and circuit breaking come from argo_perf.
"""

from __future__ import annotations

import copy
import json
import math
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import ClassVar

from typing_extensions import Self

from argo_perf import Clock, ConfigError, SystemClock

from . import _validation as _validate
from ._validation import unit_interval
from .market import Market, uniform
from .sources import (
    Indicators,
    Payload,
    Quote,
    Sentiment,
    VendorError,
    VendorRateLimited,
    epoch_ns,
    parse_alpha_vantage,
    parse_chat_sentiment,
    parse_massive_snapshot,
)

__all__ = [
    "AlphaVantageVendor",
    "ChatSentimentVendor",
    "MassiveVendor",
    "Outage",
    "RateWindow",
    "SimulatedVendor",
    "SonarVendor",
    "VendorConfig",
    "VendorStats",
    "Vendors",
    "XaiVendor",
    "simulated_vendors",
]

_DAY = 86_400.0


@dataclass(frozen=True)
class RateWindow:
    """A vendor-side limit: at most ``calls`` admitted calls in any ``seconds`` (sliding window).

    Example:
        >>> RateWindow(5, 60.0)  # Alpha Vantage's free tier: 5 calls per minute
        RateWindow(calls=5, seconds=60.0)
    """

    calls: int
    seconds: float

    def __post_init__(self) -> None:
        _validate.count("calls", self.calls)
        _validate.positive_seconds("seconds", self.seconds)


@dataclass(frozen=True)
class Outage:
    """The vendor is down (HTTP 503) from ``start`` for ``seconds``.

    Example:
        >>> from datetime import datetime, timezone
        >>> outage = Outage(datetime(2026, 1, 6, 15, 0, tzinfo=timezone.utc), 120.0)
        >>> outage.covers(datetime(2026, 1, 6, 15, 1, tzinfo=timezone.utc))
        True
    """

    start: datetime
    seconds: float

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise ConfigError("start", self.start, "must be an aware datetime")
        _validate.positive_seconds("seconds", self.seconds)

    @property
    def end(self) -> datetime:
        """When the vendor is back (excluded from the outage)."""
        return self.start + timedelta(seconds=self.seconds)

    def covers(self, at: datetime) -> bool:
        """Whether the aware instant ``at`` falls in the outage, ``[start, end)``."""
        return self.start <= at < self.end


@dataclass(frozen=True)
class VendorConfig:
    """How a simulated vendor behaves.

    Args:
        latency: typical seconds per answer, > 0.
        jitter: the latency varies uniformly within ``latency * (1 ± jitter)``;
            in [0, 1), default 0.2.
        error_rate: share of calls answered with HTTP 500, in [0, 1].
        note_rate: share of calls answered HTTP 200 with an error body, in [0, 1];
            ``error_rate + note_rate`` must not exceed 1.
        outages: when the vendor is down.
        limits: the vendor's own rate limits; a call over any of them is refused.

    Raises:
        ConfigError: a value out of range, naming the parameter and the value.
    """

    latency: float
    jitter: float = 0.2
    error_rate: float = 0.0
    note_rate: float = 0.0
    outages: tuple[Outage, ...] = ()
    limits: tuple[RateWindow, ...] = ()

    def __post_init__(self) -> None:
        _validate.positive_seconds("latency", self.latency)
        _validate.fraction("jitter", self.jitter)
        unit_interval("error_rate", self.error_rate)
        unit_interval("note_rate", self.note_rate)
        if self.error_rate + self.note_rate > 1.0:
            raise ConfigError("note_rate", self.note_rate, "must be <= 1 - error_rate")
        object.__setattr__(self, "outages", tuple(self.outages))
        object.__setattr__(self, "limits", tuple(self.limits))


@dataclass(frozen=True)
class VendorStats:
    """What a simulated vendor received and answered (a snapshot).

    ``calls == ok + errors + notes + rate_limited`` always holds.

    Attributes:
        calls: calls received.
        symbols: symbols asked for (a batch call of three counts three).
        ok: calls answered with data.
        errors: calls answered with an HTTP error (500, or 503 in an outage).
        notes: calls answered HTTP 200 with an error body.
        rate_limited: calls refused by the vendor's rate limits (HTTP 429).
        busiest: per rate limit (in the order of `VendorConfig.limits`), the most
            calls the vendor admitted within one of its windows, from every
            client (see `SimulatedVendor.client`); never above the limit, since
            a call over it is refused.
    """

    calls: int = 0
    symbols: int = 0
    ok: int = 0
    errors: int = 0
    notes: int = 0
    rate_limited: int = 0
    busiest: tuple[int, ...] = ()


_Builder = Callable[[list[str], datetime], Payload]
"""Builds a vendor's data answer for the (checked) symbols at the instant of the call."""


@dataclass(frozen=True)
class _Answer:
    """What the vendor decided for a call: how long it takes, and what it returns."""

    latency: float
    payload: Payload | None = None
    error: VendorError | None = None


class SimulatedVendor:
    """What the four simulated vendors share: decisions, windows, stats, and the two faces.

    Subclasses set ``name``, ``DEFAULT_CONFIG`` and their error body, and build
    their payloads.

    Args:
        market: the market the vendor reports on.
        config: its behaviour (default: the class's ``DEFAULT_CONFIG``).
        clock: where latency is spent and time is read (default `argo_perf.SystemClock`).

    Thread-safe; the decision for a call is made under a lock, the waiting
    outside it.
    """

    name: ClassVar[str] = ""
    DEFAULT_CONFIG: ClassVar[VendorConfig]
    _NOTE: ClassVar[Payload]  # the vendor's HTTP 200 error body

    def __init__(
        self, market: Market, *, config: VendorConfig | None = None, clock: Clock | None = None
    ) -> None:
        self._market = market
        self._config = config if config is not None else self.DEFAULT_CONFIG
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._lock = threading.Lock()
        self._windows: list[deque[float]] = [deque() for _ in self._config.limits]
        self._attempts: dict[str, tuple[int, int]] = {}  # key -> (step, calls made in it)
        self._busiest = [0 for _ in self._config.limits]  # shared with every client's view
        self._stats = VendorStats()

    @property
    def config(self) -> VendorConfig:
        """How the vendor behaves."""
        return self._config

    @property
    def market(self) -> Market:
        """The market the vendor reports on."""
        return self._market

    @property
    def stats(self) -> VendorStats:
        """A snapshot of what the vendor received (from this client) and answered."""
        with self._lock:
            return replace(self._stats, busiest=tuple(self._busiest))

    def client(self) -> Self:
        """This vendor as another client sees it: its own `stats`, everything else shared.

        The client's calls count against the same rate limits (one vendor, one
        quota), get the answers this vendor would give, and are counted in the
        client's `stats` only: two services in front of one vendor each take a
        client, and the vendor's combined load is the sum of theirs.

        Example:
            >>> vendor = MassiveVendor(Market(seed=1))
            >>> blue, green = vendor.client(), vendor.client()
            >>> blue.stats.calls, green.stats.calls
            (0, 0)
        """
        with self._lock:
            view = copy.copy(self)  # the lock, windows, attempts and peaks are shared
            view._stats = VendorStats()
        return view

    def _decide(self, symbols: Sequence[str], build: _Builder) -> _Answer:
        """Decide the answer to a call for ``symbols`` arriving now (no waiting, no I/O)."""
        names = _symbols(symbols)
        at = self._clock.now()
        config = self._config
        key = ",".join(sorted(names))
        with self._lock:
            step = int(epoch_ns(at) // round(self._market.config.step * 1e9))
            last_step, made = self._attempts.get(key, (step, 0))
            attempt = made if last_step == step else 0
            self._attempts[key] = (step, attempt + 1)
            draw = uniform(self._market.seed, self.name, key, step, attempt)
            latency = config.latency * (1.0 + config.jitter * (2.0 * draw - 1.0))
            if any(outage.covers(at) for outage in config.outages):
                self._record("errors", len(names))
                return _Answer(latency, error=VendorError(self.name, "unavailable", status=503))
            retry_after = self._admit(self._clock.monotonic())
            if retry_after is not None:
                self._record("rate_limited", len(names))
                return _Answer(latency, error=VendorRateLimited(self.name, retry_after))
            fate = uniform(self._market.seed, self.name, "fate", key, step, attempt)
            if fate < config.error_rate:
                self._record("errors", len(names))
                return _Answer(latency, error=VendorError(self.name, "internal error"))
            if fate < config.error_rate + config.note_rate:
                self._record("notes", len(names))
                return _Answer(latency, payload=copy.deepcopy(self._NOTE))
            self._record("ok", len(names))
        return _Answer(latency, payload=build(names, at))

    def _record(self, outcome: str, symbols: int) -> None:
        """Count a call for ``symbols`` symbols and how it was answered (lock held)."""
        stats = self._stats
        changes = {outcome: getattr(stats, outcome) + 1}
        self._stats = replace(
            stats, calls=stats.calls + 1, symbols=stats.symbols + symbols, **changes
        )

    def _admit(self, now: float) -> float | None:
        """Count a call in every window, or the seconds until all of them admit one (lock held)."""
        wait = 0.0
        for limit, window in zip(self._config.limits, self._windows, strict=True):
            while window and window[0] <= now - limit.seconds:
                window.popleft()
            if len(window) >= limit.calls:
                wait = max(wait, window[0] + limit.seconds - now)
        if wait > 0.0:
            return wait
        for index, window in enumerate(self._windows):
            window.append(now)
            self._busiest[index] = max(self._busiest[index], len(window))
        return None

    async def _call(self, symbols: Sequence[str], build: _Builder) -> Payload:
        answer = self._decide(symbols, build)
        await self._clock.sleep_async(answer.latency)
        return _deliver(answer)

    def _call_sync(self, symbols: Sequence[str], build: _Builder) -> Payload:
        answer = self._decide(symbols, build)
        self._clock.sleep(answer.latency)
        return _deliver(answer)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(market={self._market!r}, config={self._config!r})"


def _deliver(answer: _Answer) -> Payload:
    if answer.error is not None:
        raise answer.error
    assert answer.payload is not None
    return answer.payload


class MassiveVendor(SimulatedVendor):
    """Massive (formerly Polygon.io): last-trade snapshots, one or several tickers per call.

    `snapshot` is the raw endpoint; `price` and `prices` implement
    `PriceSource` through `parse_massive_snapshot`.

    Example:
        ```python
        vendor = MassiveVendor(Market(seed=1), clock=ManualClock(autoadvance=True))
        quotes = await vendor.prices(["AAPL", "BTC-USD"])  # one call, two symbols
        ```
    """

    name: ClassVar[str] = "massive"
    DEFAULT_CONFIG: ClassVar[VendorConfig] = VendorConfig(
        latency=0.12, error_rate=0.005, limits=(RateWindow(10, 1.0),)
    )
    _NOTE: ClassVar[Payload] = {"status": "ERROR", "error": "snapshot temporarily unavailable"}

    def _snapshot(self, symbols: list[str], at: datetime) -> Payload:
        stamp = epoch_ns(at)
        tickers = [
            {"ticker": s, "lastTrade": {"p": self._market.price(s, at), "t": stamp}}
            for s in symbols
        ]
        return {"status": "OK", "count": len(tickers), "tickers": tickers}

    async def snapshot(self, symbols: Sequence[str]) -> Payload:
        """The raw snapshot answer for ``symbols`` (one call). Raises `VendorError`."""
        return await self._call(symbols, self._snapshot)

    def snapshot_sync(self, symbols: Sequence[str]) -> Payload:
        """`snapshot`, blocking on the clock instead of awaiting it."""
        return self._call_sync(symbols, self._snapshot)

    async def price(self, symbol: str) -> Quote:
        """The last price of ``symbol``. Raises `VendorError` (`VendorNote` for an error body)."""
        return parse_massive_snapshot(await self.snapshot([symbol]))[symbol]

    async def prices(self, symbols: Sequence[str]) -> dict[str, Quote]:
        """The last prices of ``symbols`` in one call. Raises `VendorError`."""
        return parse_massive_snapshot(await self.snapshot(symbols))


class AlphaVantageVendor(SimulatedVendor):
    """Alpha Vantage: RSI (14), SMA (20) and SMA (50) on one-minute bars, one symbol per call.

    Like the real API it answers HTTP 200 with ``{"Note": ...}`` for an
    error body (``note_rate``); `indicators` implements `IndicatorSource`
    through `parse_alpha_vantage`. The free tier's limits, 5 calls per minute
    and 25 per day, are the defaults.
    """

    name: ClassVar[str] = "alpha_vantage"
    DEFAULT_CONFIG: ClassVar[VendorConfig] = VendorConfig(
        latency=0.25, error_rate=0.01, limits=(RateWindow(5, 60.0), RateWindow(25, _DAY))
    )
    _NOTE: ClassVar[Payload] = {
        "Note": "Thank you for using Alpha Vantage! Our standard API call frequency is "
        "5 calls per minute and 25 calls per day."
    }

    def _technical(self, symbols: list[str], at: datetime) -> Payload:
        symbol = symbols[0]
        minute = at.replace(second=0, microsecond=0)
        closes = self._market.bars(symbol, minute, 51)
        return {
            "Meta Data": {
                "Symbol": symbol,
                "Last Refreshed": minute.isoformat(),
                "Interval": "1min",
            },
            "Technical Analysis": {
                "RSI": round(_rsi(closes, 14), 4),
                "SMA_20": round(sum(closes[-20:]) / 20, 6),
                "SMA_50": round(sum(closes[-50:]) / 50, 6),
            },
        }

    async def query(self, symbol: str) -> Payload:
        """The raw answer for ``symbol`` (data or a note). Raises `VendorError`."""
        return await self._call([symbol], self._technical)

    def query_sync(self, symbol: str) -> Payload:
        """`query`, blocking on the clock instead of awaiting it."""
        return self._call_sync([symbol], self._technical)

    async def indicators(self, symbol: str) -> Indicators:
        """RSI and moving averages of ``symbol``. Raises `VendorError` (`VendorNote` for a note)."""
        return parse_alpha_vantage(await self.query(symbol), symbol)


def _rsi(closes: Sequence[float], period: int) -> float:
    """The simple-average RSI of the last ``period`` changes of ``closes``."""
    changes = [b - a for a, b in zip(closes[-period - 1 : -1], closes[-period:], strict=True)]
    gains = sum(c for c in changes if c > 0)
    losses = -sum(c for c in changes if c < 0)
    if gains == losses == 0:
        return 50.0
    return 100.0 * gains / (gains + losses)


class ChatSentimentVendor(SimulatedVendor):
    """A language model asked for a sentiment reading, with the chat-completions answer shape.

    The reading follows the symbol's last hour (a rise reads bullish) plus
    the model's own seeded noise, and holds for a quarter of an hour. An error
    body (``note_rate``) is a model that declined to answer in JSON.
    `sentiment` implements `SentimentSource` through `parse_chat_sentiment`.
    """

    MODEL: ClassVar[str] = ""
    _NOTE: ClassVar[Payload] = {
        "choices": [{"message": {"content": "I can't provide financial advice."}}],
        "created": 0,
    }

    def _reading(self, symbols: list[str], at: datetime) -> Payload:
        symbol = symbols[0]
        quarter = int(epoch_ns(at) // 900_000_000_000)
        start = datetime.fromtimestamp(quarter * 900, timezone.utc)
        market, seed = self._market, self._market.seed
        move = math.log(
            market.price(symbol, start) / market.price(symbol, start - timedelta(hours=1))
        )
        noise = uniform(seed, self.name, "noise", symbol, quarter)
        score = 0.7 * math.tanh(move * 100.0) + 0.3 * (2.0 * noise - 1.0)
        confidence = 0.5 + 0.45 * uniform(seed, self.name, "confidence", symbol, quarter)
        reading = {"score": round(score, 4), "confidence": round(confidence, 4)}
        return {
            "model": self.MODEL,
            "created": int(epoch_ns(at) // 1_000_000_000),
            "choices": [{"message": {"role": "assistant", "content": json.dumps(reading)}}],
        }

    async def complete(self, symbol: str) -> Payload:
        """The raw chat-completions answer about ``symbol``. Raises `VendorError`."""
        return await self._call([symbol], self._reading)

    def complete_sync(self, symbol: str) -> Payload:
        """`complete`, blocking on the clock instead of awaiting it."""
        return self._call_sync([symbol], self._reading)

    async def sentiment(self, symbol: str) -> Sentiment:
        """The model's reading of ``symbol``. Raises `VendorError` (`VendorNote` if unreadable)."""
        return parse_chat_sentiment(self.name, await self.complete(symbol), symbol)


class XaiVendor(ChatSentimentVendor):
    """xAI's Grok as a sentiment source (about 1 s per answer, 60 calls per minute)."""

    name: ClassVar[str] = "xai"
    MODEL: ClassVar[str] = "grok-4"
    DEFAULT_CONFIG: ClassVar[VendorConfig] = VendorConfig(
        latency=1.0, error_rate=0.02, note_rate=0.01, limits=(RateWindow(60, 60.0),)
    )


class SonarVendor(ChatSentimentVendor):
    """Perplexity's Sonar as a sentiment source (about 1.2 s per answer, 50 calls per minute)."""

    name: ClassVar[str] = "sonar"
    MODEL: ClassVar[str] = "sonar"
    DEFAULT_CONFIG: ClassVar[VendorConfig] = VendorConfig(
        latency=1.2, error_rate=0.02, note_rate=0.01, limits=(RateWindow(50, 60.0),)
    )


def _symbols(symbols: Sequence[str]) -> list[str]:
    if isinstance(symbols, str):
        raise TypeError(f"symbols must be a sequence of symbols, got the string {symbols!r}")
    out = list(symbols)
    if not out or not all(isinstance(s, str) and s for s in out):
        raise ValueError(f"symbols must be non-empty strings, got {symbols!r}")
    return out


@dataclass(frozen=True)
class Vendors:
    """The four simulated vendors of the service, over one market and one clock."""

    massive: MassiveVendor
    alpha_vantage: AlphaVantageVendor
    xai: XaiVendor
    sonar: SonarVendor

    def by_name(self) -> dict[str, SimulatedVendor]:
        """The vendors keyed by name, in the order prices, indicators, sentiment."""
        return {v.name: v for v in (self.massive, self.alpha_vantage, self.xai, self.sonar)}

    def client(self) -> Vendors:
        """The four vendors as another client sees them (see `SimulatedVendor.client`)."""
        return Vendors(
            massive=self.massive.client(),
            alpha_vantage=self.alpha_vantage.client(),
            xai=self.xai.client(),
            sonar=self.sonar.client(),
        )


_VENDOR_NAMES = ("massive", "alpha_vantage", "xai", "sonar")


def simulated_vendors(
    market: Market,
    *,
    clock: Clock | None = None,
    configs: Mapping[str, VendorConfig] | None = None,
) -> Vendors:
    """The four simulated vendors over one market and clock.

    ``configs`` replaces the default configuration of the vendors it names
    (``massive``, ``alpha_vantage``, ``xai``, ``sonar``); another name raises
    `argo_perf.ConfigError`.

    Example:
        >>> vendors = simulated_vendors(Market(seed=1))
        >>> list(vendors.by_name())
        ['massive', 'alpha_vantage', 'xai', 'sonar']
    """
    configs = dict(configs or {})
    unknown = sorted(set(configs) - set(_VENDOR_NAMES))
    if unknown:
        raise ConfigError("configs", unknown, "must name only massive, alpha_vantage, xai, sonar")
    return Vendors(
        massive=MassiveVendor(market, config=configs.get("massive"), clock=clock),
        alpha_vantage=AlphaVantageVendor(market, config=configs.get("alpha_vantage"), clock=clock),
        xai=XaiVendor(market, config=configs.get("xai"), clock=clock),
        sonar=SonarVendor(market, config=configs.get("sonar"), clock=clock),
    )
