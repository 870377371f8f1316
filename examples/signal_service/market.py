"""A deterministic simulated market: a seeded random walk per symbol and day.

The price of a symbol at an instant is a function of the seed, the symbol and
the instant's step (``MarketConfig.step`` seconds, 5 by default) and nothing
else: each day's walk is drawn whole from its own ``random.Random`` seeded
with ``(seed, symbol, day)``, and kept. Two markets with the same seed agree
everywhere, and the order in which prices are asked for (one symbol after
another, or all at once) changes nothing.

* Stocks move only while the NYSE is in session: before the open and after
  the close (nights, weekends, holidays) the price is the last session's
  close.
* Crypto moves around the clock, in walks from one midnight UTC to the next.
* A day's walk runs from the day's level to the next day's level (a random
  walk pinned at both ends), so a session closes where the next one opens
  and prices never jump between days. The levels wander slowly around the
  symbol's base price (`BASE_PRICES`).
* Walks alternate between a calm and a volatile regime: at the start of
  every ``regime_length`` seconds the regime switches with probability
  ``switch_probability``.

Example:
    >>> from datetime import datetime, timezone
    >>> market = Market(seed=7)
    >>> at = datetime(2026, 1, 6, 15, 0, tzinfo=timezone.utc)  # 10:00 in New York
    >>> market.price("AAPL", at) == Market(seed=7).price("AAPL", at)
    True
    >>> market.regime("AAPL", at) in ("calm", "volatile")
    True
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Literal

from argo_perf import NYSE, ConfigError, MarketCalendar, is_crypto

from . import _validation as _validate
from ._validation import unit_interval

__all__ = [
    "BASE_PRICES",
    "DEFAULT_SYMBOLS",
    "Market",
    "MarketConfig",
    "Regime",
    "uniform",
]

DEFAULT_SYMBOLS: tuple[str, ...] = ("AAPL", "NVDA", "TSLA", "MSFT", "BTC-USD", "ETH-USD")
"""The symbols the service follows unless told otherwise: four stocks, two crypto pairs."""

BASE_PRICES: Mapping[str, float] = {
    "AAPL": 230.0,
    "NVDA": 180.0,
    "TSLA": 400.0,
    "MSFT": 480.0,
    "BTC-USD": 90_000.0,
    "ETH-USD": 3_000.0,
}
"""Where the walks of the default symbols start; other symbols get a seeded level in 20-500."""

Regime = Literal["calm", "volatile"]
"""The state of a symbol's walk: ``calm`` or ``volatile`` steps."""

_UTC = timezone.utc
_DAY = 86_400.0
_PATHS_KEPT = 64  # walks (symbol, day) kept in memory; the oldest used is dropped first


def uniform(seed: int, *parts: object) -> float:
    """A deterministic draw in [0, 1) for a seed and a key (str, int and tuples of them).

    The same arguments give the same number in every process and on every
    run (no use of `hash`, which is salted per process).

    Example:
        >>> uniform(1, "xai", "AAPL", 3) == uniform(1, "xai", "AAPL", 3)
        True
    """
    digest = hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


@dataclass(frozen=True)
class MarketConfig:
    """How the simulated market moves.

    Args:
        step: seconds between two moves of a walk (default 5.0); a price
            holds for a whole step.
        calm_volatility: standard deviation of a calm step's log return
            (default 0.0003, 0.03 %).
        volatile_volatility: the same in the volatile regime (default 0.0015).
        regime_length: seconds between two chances of a regime switch
            (default 1800.0, half an hour).
        switch_probability: the chance that the regime switches at each of
            them (default 0.35).
        level_spread: how far the daily levels wander from the base price:
            their standard deviation as a log return (default 0.03).

    Raises:
        ConfigError: a value out of range, naming the parameter and the value.
    """

    step: float = 5.0
    calm_volatility: float = 0.0003
    volatile_volatility: float = 0.0015
    regime_length: float = 1800.0
    switch_probability: float = 0.35
    level_spread: float = 0.03

    def __post_init__(self) -> None:
        for name in ("step", "regime_length"):
            _validate.positive_seconds(name, getattr(self, name))
        for name in ("calm_volatility", "volatile_volatility", "level_spread"):
            unit_interval(name, getattr(self, name))
        unit_interval("switch_probability", self.switch_probability)
        if self.regime_length < self.step:
            raise ConfigError("regime_length", self.regime_length, "must be >= step")


@dataclass(frozen=True)
class _Walk:
    """One symbol's walk over one day (crypto) or session (stock)."""

    prices: array[float]
    regimes: list[bool]  # volatile or not, one entry per regime period
    steps_per_regime: int


# Periods (days) of the three waves whose sum moves the daily level: slow enough
# that consecutive days differ by well under a percent at the default spread.
_LEVEL_PERIODS = (11.0, 29.0, 71.0)


class Market:
    """The simulated market: prices, one-minute bars and regimes of any symbol at any instant.

    Args:
        seed: the market's seed; the same seed gives the same market.
        config: how it moves (`MarketConfig`).
        base_prices: starting levels by symbol (default `BASE_PRICES`).
        calendar: the stock market's calendar (default `argo_perf.NYSE`).
        classify: tells crypto symbols (traded around the clock) from stocks
            (default `argo_perf.is_crypto`).

    Thread-safe. Every instant must be an aware datetime; a naive one raises
    `ValueError`.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        config: MarketConfig | None = None,
        base_prices: Mapping[str, float] | None = None,
        calendar: MarketCalendar = NYSE,
        classify: Callable[[str], bool] = is_crypto,
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError("seed", seed, "must be an int")
        self._seed = seed
        self._config = config if config is not None else MarketConfig()
        self._base = dict(BASE_PRICES if base_prices is None else base_prices)
        for symbol, level in self._base.items():
            _validate.positive(f"base_prices[{symbol!r}]", level)
        self._calendar = calendar
        self._classify = classify
        self._walks: OrderedDict[tuple[str, date], _Walk] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def seed(self) -> int:
        """The market's seed."""
        return self._seed

    @property
    def config(self) -> MarketConfig:
        """How the market moves."""
        return self._config

    def is_crypto(self, symbol: str) -> bool:
        """Whether ``symbol`` trades around the clock (the market's classifier)."""
        return self._classify(symbol)

    def is_trading(self, symbol: str, at: datetime) -> bool:
        """Whether ``symbol``'s price moves at ``at``: always for crypto, in session for stocks."""
        return self._classify(symbol) or self._calendar.is_open(_utc(at))

    def price(self, symbol: str, at: datetime) -> float:
        """The last price of ``symbol`` at the aware instant ``at``."""
        walk, index = self._locate(symbol, _utc(at))
        return walk.prices[index]

    def regime(self, symbol: str, at: datetime) -> Regime:
        """The regime of ``symbol``'s walk at ``at`` (the last session's, out of session)."""
        walk, index = self._locate(symbol, _utc(at))
        return "volatile" if walk.regimes[index // walk.steps_per_regime] else "calm"

    def level(self, symbol: str, day: date) -> float:
        """Where ``symbol``'s walk of ``day`` starts (and the walk of the day before ends)."""
        base = self._base.get(symbol)
        if base is None:
            base = 20.0 + 480.0 * uniform(self._seed, "base", symbol)
        wave = sum(
            math.sin(2.0 * math.pi * (day.toordinal() / period + uniform(self._seed, symbol, i)))
            for i, period in enumerate(_LEVEL_PERIODS)
        )
        # A sine with a random phase has variance 1/2: scale the sum to unit variance.
        return base * math.exp(self._config.level_spread * wave / math.sqrt(1.5))

    def bars(self, symbol: str, at: datetime, count: int, interval: float = 60.0) -> list[float]:
        """Closing prices of the ``count`` bars of ``interval`` seconds up to ``at``, oldest first.

        The last bar closes at ``at``; out of session a stock's bars repeat
        the last close.
        """
        at = _utc(at)
        return [
            self.price(symbol, at - timedelta(seconds=interval * back))
            for back in range(count - 1, -1, -1)
        ]

    # --- the walks ----------------------------------------------------------------------

    def _locate(self, symbol: str, at: datetime) -> tuple[_Walk, int]:
        """The walk that holds ``symbol``'s price at ``at``, and the index of the price."""
        step = self._config.step
        if self._classify(symbol):
            midnight = datetime(at.year, at.month, at.day, tzinfo=_UTC)
            steps = math.ceil(_DAY / step)
            walk = self._walk(symbol, at.date(), steps, at.date() + timedelta(days=1))
            return walk, int((at - midnight).total_seconds() // step)
        # Sessions lie within their UTC day (13:30-21:00 UTC at the latest), so the
        # session that priced ``at`` is today's if it has opened, else an earlier day's.
        day = at.date()
        for _ in range(15):  # the longest NYSE closure since 2000 is four weekdays
            hours = self._calendar.session_hours(day)
            if hours is not None and hours[0] <= at:
                opened, closed = hours
                steps = math.ceil((closed - opened).total_seconds() / step)
                walk = self._walk(symbol, day, steps, self._next_session(day))
                return walk, min(int((at - opened).total_seconds() // step), steps - 1)
            day -= timedelta(days=1)
        raise ValueError(f"no session of {symbol} within 15 days before {at.isoformat()}")

    def _next_session(self, day: date) -> date:
        for _ in range(15):
            day += timedelta(days=1)
            if self._calendar.is_session(day):
                return day
        raise ValueError(f"no session within 15 days after {day.isoformat()}")

    def _walk(self, symbol: str, day: date, steps: int, next_day: date) -> _Walk:
        """The walk of ``symbol`` on ``day``: ``steps`` prices from its level towards the next."""
        key = (symbol, day)
        with self._lock:
            walk = self._walks.get(key)
            if walk is not None:
                self._walks.move_to_end(key)
                return walk
        walk = self._draw(symbol, day, steps, next_day)
        with self._lock:
            self._walks[key] = walk
            if len(self._walks) > _PATHS_KEPT:
                self._walks.popitem(last=False)
        return walk

    def _draw(self, symbol: str, day: date, steps: int, next_day: date) -> _Walk:
        config = self._config
        rng = random.Random(f"{self._seed}:{symbol}:{day.isoformat()}")
        per_regime = max(1, round(config.regime_length / config.step))
        volatile = rng.random() < 0.5
        regimes: list[bool] = []
        free = [0.0]  # a free walk of log returns over steps + 1 points
        for k in range(steps):
            if k % per_regime == 0:
                if k and rng.random() < config.switch_probability:
                    volatile = not volatile
                regimes.append(volatile)
            sigma = config.volatile_volatility if volatile else config.calm_volatility
            free.append(free[-1] + rng.gauss(0.0, sigma))
        # Pin it at both ends: the last point lands on the next day's level, which
        # is where that day's walk starts.
        start = math.log(self.level(symbol, day))
        gap = math.log(self.level(symbol, next_day)) - start - free[-1]
        prices = array("d", (math.exp(start + w + gap * k / steps) for k, w in enumerate(free)))
        return _Walk(prices=prices[:steps], regimes=regimes, steps_per_regime=per_regime)

    def __repr__(self) -> str:
        return f"Market(seed={self._seed}, config={self._config!r})"


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"at must be an aware datetime, got naive {at!r}")
    return at.astimezone(_UTC)
