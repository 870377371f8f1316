"""Trading signals and their computation from price, indicators and sentiment.

A `Signal` is computed by `compute_signal` from three components, each a
pure function of a small hashable tuple of inputs:

| component | inputs | value |
| --- | --- | --- |
| `technical_score` | `TechnicalInputs` (price, RSI, SMA 20, SMA 50) | -1 .. 1 |
| `sentiment_score` | `SentimentInputs` ((score, confidence) per model) | -1 .. 1 |
| `trade_levels` | `LevelInputs` (price, asset type, direction) | entry, target, stop |

Passed a `ComponentMemo`, `compute_signal` looks each component up by its
inputs and computes only those whose inputs changed since they were last
seen; the memo counts what it reused.

The score is the weighted mean of the components present (technical 0.6,
sentiment 0.4): BUY at 0.25 or more, SELL at -0.25 or less, HOLD between.
The confidence, in percent, is ``50 + 50 * |score|`` scaled by the share of
the weights present (a signal without indicators is less sure of itself).
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from typing import Literal, NamedTuple, TypeVar

from argo_perf import is_crypto

from . import _validation as _validate
from .sources import Indicators, Quote, Sentiment

__all__ = [
    "ACTIONS",
    "Action",
    "AssetType",
    "ComponentMemo",
    "LevelInputs",
    "MemoStats",
    "SentimentInputs",
    "Signal",
    "TechnicalInputs",
    "compute_signal",
    "format_timestamp",
    "parse_timestamp",
    "sentiment_score",
    "technical_score",
    "trade_levels",
]

Action = Literal["BUY", "SELL", "HOLD"]
"""What a signal recommends."""

ACTIONS: tuple[Action, ...] = ("BUY", "SELL", "HOLD")

AssetType = Literal["stock", "crypto"]
"""Whether a symbol trades in sessions (``stock``) or around the clock (``crypto``)."""

_UTC = timezone.utc
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_PRICE_FIELDS = ("entry_price", "target_price", "stop_price")


@dataclass(frozen=True)
class Signal:
    """A trading signal for one symbol at one instant.

    Attributes:
        symbol: the symbol (``AAPL``, ``BTC-USD``).
        action: ``BUY``, ``SELL`` or ``HOLD``.
        entry_price: the price to enter at.
        target_price: where to take the profit.
        stop_price: where to cut the loss.
        confidence: how sure the signal is, in percent (0-100).
        strategy: the name of the strategy that made it.
        asset_type: ``stock`` or ``crypto``.
        data_source: the vendors it was computed from, joined with ``+``.
        timestamp: when it was computed; stored as aware UTC.

    Raises:
        ValueError: an unknown action or asset type, a price that is not a
            finite positive number, a confidence outside 0-100, an empty
            symbol, or a naive timestamp.

    Example:
        >>> from datetime import datetime, timezone
        >>> signal = Signal(
        ...     "AAPL", "BUY", 230.0, 239.2, 225.4, 71.5, "momentum_sentiment", "stock",
        ...     "massive+alpha_vantage", datetime(2026, 1, 6, 15, 0, tzinfo=timezone.utc),
        ... )
        >>> signal.canonical_json()[:40]
        '{"action":"BUY","asset_type":"stock","co'
        >>> len(signal.sha256), signal.iso_timestamp
        (64, '2026-01-06T15:00:00.000000Z')
    """

    symbol: str
    action: Action
    entry_price: float
    target_price: float
    stop_price: float
    confidence: float
    strategy: str
    asset_type: AssetType
    data_source: str
    timestamp: datetime

    def __post_init__(self) -> None:
        if not isinstance(self.symbol, str) or not self.symbol:
            raise ValueError(f"symbol must be a non-empty string, got {self.symbol!r}")
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, got {self.action!r}")
        if self.asset_type not in ("stock", "crypto"):
            raise ValueError(f"asset_type must be 'stock' or 'crypto', got {self.asset_type!r}")
        for name in _PRICE_FIELDS:
            value = getattr(self, name)
            if not _finite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite positive number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if not _finite(self.confidence) or not 0.0 <= self.confidence <= 100.0:
            raise ValueError(f"confidence must be in 0-100 (percent), got {self.confidence!r}")
        object.__setattr__(self, "confidence", float(self.confidence))
        stamp = self.timestamp
        if not isinstance(stamp, datetime) or stamp.tzinfo is None or stamp.utcoffset() is None:
            raise ValueError(f"timestamp must be an aware datetime, got {stamp!r}")
        object.__setattr__(self, "timestamp", stamp.astimezone(_UTC))

    def canonical_json(self) -> str:
        """The signal's content as compact JSON with sorted keys, without its timestamp.

        The timestamp says when the signal was computed, not what it says: two
        signals with the same content at different instants have the same
        canonical JSON, and so the same `sha256`, which is how the tracker
        recognises an unchanged signal.
        """
        content = {
            "action": self.action,
            "asset_type": self.asset_type,
            "confidence": self.confidence,
            "data_source": self.data_source,
            "entry_price": self.entry_price,
            "stop_price": self.stop_price,
            "strategy": self.strategy,
            "symbol": self.symbol,
            "target_price": self.target_price,
        }
        return json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)

    @cached_property
    def sha256(self) -> str:
        """The hex SHA-256 of `canonical_json`."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    @cached_property
    def iso_timestamp(self) -> str:
        """The timestamp as `format_timestamp` writes it."""
        return format_timestamp(self.timestamp)

    @cached_property
    def signal_id(self) -> str:
        """A unique id: the symbol, the timestamp and 16 hex digits of the content's hash."""
        return f"{self.symbol}-{self.timestamp:%Y%m%dT%H%M%S%f}-{self.sha256[:16]}"


def format_timestamp(when: datetime) -> str:
    """An aware datetime as fixed-width ISO 8601 UTC text with microseconds.

    Every value has the same width, so text order is time order (SQLite
    compares and indexes the text).

    Example:
        >>> from datetime import datetime, timedelta, timezone
        >>> format_timestamp(datetime(2026, 1, 6, 10, 0, tzinfo=timezone(timedelta(hours=-5))))
        '2026-01-06T15:00:00.000000Z'
    """
    return when.astimezone(_UTC).strftime(_TIMESTAMP_FORMAT)


def parse_timestamp(text: str) -> datetime:
    """The aware UTC datetime of a `format_timestamp` string."""
    return datetime.strptime(text, _TIMESTAMP_FORMAT).replace(tzinfo=_UTC)


def _finite(value: object) -> bool:
    return _validate.is_number(value) and math.isfinite(value)  # type: ignore[arg-type]


# --- components ----------------------------------------------------------------------------


class TechnicalInputs(NamedTuple):
    """What `technical_score` reads."""

    price: float
    rsi: float
    sma_short: float
    sma_long: float


class SentimentInputs(NamedTuple):
    """What `sentiment_score` reads: ``(score, confidence)`` per model, in source order."""

    readings: tuple[tuple[float, float], ...]


class LevelInputs(NamedTuple):
    """What `trade_levels` reads: entry price, asset type, direction (+1 BUY, -1 SELL, 0 HOLD)."""

    price: float
    asset_type: AssetType
    direction: int


def _clamp(value: float) -> float:
    return max(-1.0, min(1.0, value))


def technical_score(inputs: TechnicalInputs) -> float:
    """Trend, position and RSI combined into -1 (bearish) .. 1 (bullish).

    * trend (half): the short average above the long one, +1 at a 2 % spread;
    * position (a quarter): the price above the short average, +1 at 1 %;
    * RSI (a quarter): mean reversion, +1 at RSI 30 or below, -1 at 70 or above.

    Example:
        >>> technical_score(TechnicalInputs(price=101.0, rsi=50.0, sma_short=100.0, sma_long=98.0))
        0.75
    """
    price, rsi, sma_short, sma_long = inputs
    trend = _clamp((sma_short - sma_long) / sma_long * 50.0)
    position = _clamp((price - sma_short) / sma_short * 100.0)
    reversion = _clamp((50.0 - rsi) / 20.0)
    return 0.5 * trend + 0.25 * position + 0.25 * reversion


def sentiment_score(inputs: SentimentInputs) -> float:
    """The confidence-weighted mean of the models' scores, -1 .. 1 (0 when no model is sure).

    Example:
        >>> sentiment_score(SentimentInputs(((0.5, 0.8), (-0.1, 0.2))))
        0.38
    """
    weight = sum(confidence for _, confidence in inputs.readings)
    if weight <= 0.0:
        return 0.0
    return round(sum(s * c for s, c in inputs.readings) / weight, 12)


_RISK = {"stock": 0.02, "crypto": 0.04}  # the stop's distance from the entry, by asset type
_REWARD = 2.0  # the target is twice as far as the stop


def trade_levels(inputs: LevelInputs) -> tuple[float, float, float]:
    """Entry, target and stop: the stop 2 % away (4 % for crypto), the target twice as far.

    A HOLD (direction 0) has all three at the entry price. Levels are rounded
    to 8 significant digits.

    Example:
        >>> trade_levels(LevelInputs(price=100.0, asset_type="stock", direction=1))
        (100.0, 104.0, 98.0)
    """
    price, asset_type, direction = inputs
    risk = _RISK[asset_type] * direction
    return (
        _significant(price),
        _significant(price * (1.0 + _REWARD * risk)),
        _significant(price * (1.0 - risk)),
    )


def _significant(value: float) -> float:
    return float(f"{value:.8g}")


# --- the memo ------------------------------------------------------------------------------

In = TypeVar("In")  # the inputs of a component
Out = TypeVar("Out")  # its value


@dataclass(frozen=True)
class MemoStats:
    """What a `ComponentMemo` did: components computed, reused, and entries kept."""

    computed: int = 0
    reused: int = 0
    size: int = 0

    @property
    def reuse_rate(self) -> float:
        """Reused lookups in percent of all lookups (0.0 before the first)."""
        total = self.computed + self.reused
        return 100.0 * self.reused / total if total else 0.0


class ComponentMemo:
    """Component values keyed by component and inputs; recomputes only what changed.

    Args:
        maxsize: entries kept at most; the least recently used goes first
            (default 4096, >= 1).

    Raises:
        ConfigError: ``maxsize`` is not an int >= 1.

    Thread-safe. A component must be a pure function of its inputs.

    Example:
        >>> memo = ComponentMemo()
        >>> inputs = SentimentInputs(((0.5, 1.0),))
        >>> memo.compute(sentiment_score, inputs), memo.compute(sentiment_score, inputs)
        (0.5, 0.5)
        >>> memo.stats.computed, memo.stats.reused
        (1, 1)
    """

    def __init__(self, maxsize: int = 4096) -> None:
        self._maxsize = _validate.count("maxsize", maxsize)
        self._values: OrderedDict[tuple[object, object], object] = OrderedDict()
        self._lock = threading.Lock()
        self._computed = 0
        self._reused = 0

    def compute(self, component: Callable[[In], Out], inputs: In) -> Out:
        """``component(inputs)``, from the memo when these inputs were seen before."""
        key = (component, inputs)
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                self._reused += 1
                found: Out = self._values[key]  # type: ignore[assignment]
                return found
        value = component(inputs)  # outside the lock: a component may take a while
        with self._lock:
            self._computed += 1
            self._values[key] = value
            if len(self._values) > self._maxsize:
                self._values.popitem(last=False)
        return value

    @property
    def stats(self) -> MemoStats:
        """A snapshot of the memo's counters."""
        with self._lock:
            return MemoStats(self._computed, self._reused, len(self._values))


def _direct(component: Callable[[In], Out], inputs: In) -> Out:
    return component(inputs)


def compute_signal(
    quote: Quote,
    indicators: Indicators | None = None,
    sentiments: Sequence[Sentiment] = (),
    *,
    strategy: str = "momentum_sentiment",
    timestamp: datetime | None = None,
    memo: ComponentMemo | None = None,
    classify: Callable[[str], bool] = is_crypto,
) -> Signal:
    """The signal for ``quote``'s symbol from whatever components are at hand.

    Args:
        quote: the price (required: it is the entry).
        indicators: technical indicators, or ``None`` when the vendor gave none.
        sentiments: readings from the sentiment models that answered (any order).
        strategy: the name stored with the signal.
        timestamp: when the signal is computed (default: the quote's timestamp).
        memo: reuse component values whose inputs did not change.
        classify: tells crypto from stock symbols (default `argo_perf.is_crypto`).

    Raises:
        ValueError: an input belongs to another symbol than the quote.

    The result depends only on the arguments: the same inputs give the same
    signal, with the same `Signal.sha256`.
    """
    symbol = quote.symbol
    if indicators is not None and indicators.symbol != symbol:
        raise ValueError(f"indicators are for {indicators.symbol!r}, the quote for {symbol!r}")
    for reading in sentiments:
        if reading.symbol != symbol:
            raise ValueError(f"a sentiment is for {reading.symbol!r}, the quote for {symbol!r}")
    run = memo.compute if memo is not None else _direct
    ordered = sorted(sentiments, key=lambda s: s.source)
    weighted: list[tuple[float, float]] = []
    sources = [quote.source]
    if indicators is not None:
        inputs = TechnicalInputs(
            quote.price, indicators.rsi, indicators.sma_short, indicators.sma_long
        )
        weighted.append((0.6, run(technical_score, inputs)))
        sources.append(indicators.source)
    if ordered:
        readings = tuple((s.score, s.confidence) for s in ordered)
        weighted.append((0.4, run(sentiment_score, SentimentInputs(readings))))
        sources.extend(s.source for s in ordered)
    coverage = sum(weight for weight, _ in weighted)
    score = sum(weight * value for weight, value in weighted) / coverage if coverage else 0.0
    action: Action = "BUY" if score >= 0.25 else "SELL" if score <= -0.25 else "HOLD"
    asset_type: AssetType = "crypto" if classify(symbol) else "stock"
    direction = {"BUY": 1, "SELL": -1, "HOLD": 0}[action]
    entry, target, stop = run(trade_levels, LevelInputs(quote.price, asset_type, direction))
    return Signal(
        symbol=symbol,
        action=action,
        entry_price=entry,
        target_price=target,
        stop_price=stop,
        confidence=round((50.0 + 50.0 * abs(score)) * coverage, 2),
        strategy=strategy,
        asset_type=asset_type,
        data_source="+".join(sources),
        timestamp=timestamp if timestamp is not None else quote.timestamp,
    )
