"""Online per-symbol volatility per unit of time, annualized, from timestamped prices."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from . import _validate
from ._price import check_price
from .clock import Clock, _given_or_system
from .market import is_crypto as default_is_crypto

__all__ = ["VolatilityTracker"]

STOCK_YEAR_SECONDS = 252 * 6.5 * 3600
"""Seconds in a stock's trading year: 252 sessions of 6.5 hours."""

CRYPTO_YEAR_SECONDS = 365 * 24 * 3600
"""Seconds in a crypto year: markets that never close."""

# symbol -> (last price, last POSIX time, weighted squared returns, weighted seconds,
# returns since the start or the last gap, seconds per year, "high" verdict).
_State = tuple[float, float, float, float, int, float, bool]


class VolatilityTracker:
    """Per-symbol annualized volatility from the prices you observe, in constant memory.

    Each price is observed at a time (``ts``, or the clock's now). Every
    log return ``r`` over ``dt`` seconds adds ``r**2`` to a sum of squared
    returns and ``dt`` to a sum of seconds, both decaying with age; their
    ratio estimates the variance **per second**, whatever the polling
    interval, and `volatility` reports it **annualized**: times the
    seconds of a trading year (252 sessions of 6.5 hours) for a stock, of a
    calendar year for crypto (``is_crypto``), square-rooted. ``0.5`` means
    50 % a year.

    A past return's weight halves every ``half_life`` seconds, but at most
    once per ``half_life_observations`` observations, so slow polling still
    averages over a few returns. `is_high` is false until ``warmup``
    returns were seen, then true from ``stock_threshold`` or
    ``crypto_threshold`` on.

    **Unchanged prices** are not returns of zero: the time they span goes to
    the next move, measured from the price's last change.

    **Gaps**: a return over more than ``max_gap`` seconds (a night, a
    weekend, a trading halt, a feed outage; also a price polled unchanged
    for that long) is not used. The estimate starts
    over from that price, with a new warm-up: the move over a gap is not a
    move per second, and the volatility from before it is stale.

    Args:
        stock_threshold: annualized volatility from which a stock is high.
            Default 0.5 (50 %).
        crypto_threshold: the same for crypto, whose normal volatility is
            higher. Default 0.75 (75 %).
        half_life: seconds after which a return counts half. Default 30.0.
        half_life_observations: observations after which a return counts
            half at least. Default 4.0.
        warmup: returns seen before `is_high` can be true. Default 5.
        max_gap: seconds between two observations beyond which the estimate
            starts over. Default 600.0.
        is_crypto: ``symbol -> bool`` choosing the year and the threshold;
            default `is_crypto`. Asked once per symbol.
        max_symbols: symbols tracked at most; the least recently observed is
            forgotten first. Default 1024.
        clock: where observation times come from when ``ts`` is not given.

    Raises:
        ConfigError: a threshold, ``half_life``, ``half_life_observations``
            or ``max_gap`` not positive and finite, ``warmup`` or
            ``max_symbols`` not an int >= 1, ``is_crypto`` not callable.

    With the defaults, a symbol polled every 1 to 60 seconds whose prices
    follow a random walk of 20 % a year is practically never high, one of
    150 % a year practically always, and a change from the first to the
    second is seen within a minute when polling every few seconds.

    Thread-safe: observations are serialised; readers never block.

    Examples:
        >>> from datetime import datetime, timedelta, timezone
        >>> vol = VolatilityTracker()
        >>> start = datetime(2026, 1, 5, 15, tzinfo=timezone.utc)
        >>> for i, price in enumerate([100.0, 100.4, 99.8, 100.5, 99.9, 100.6]):
        ...     _ = vol.observe("AAPL", price, start + timedelta(seconds=5 * i))
        >>> round(vol.volatility("AAPL"), 2), vol.is_high("AAPL")
        (6.74, True)
    """

    def __init__(
        self,
        *,
        stock_threshold: float = 0.5,
        crypto_threshold: float = 0.75,
        half_life: float = 30.0,
        half_life_observations: float = 4.0,
        warmup: int = 5,
        max_gap: float = 600.0,
        is_crypto: Callable[[str], bool] = default_is_crypto,
        max_symbols: int = 1024,
        clock: Clock | None = None,
    ) -> None:
        self.stock_threshold = _validate.positive("stock_threshold", stock_threshold)
        self.crypto_threshold = _validate.positive("crypto_threshold", crypto_threshold)
        self.half_life = _validate.positive_seconds("half_life", half_life)
        self.half_life_observations = _validate.positive(
            "half_life_observations", half_life_observations
        )
        self.max_gap = _validate.positive_seconds("max_gap", max_gap)
        self.warmup = _validate.count("warmup", warmup)
        self.max_symbols = _validate.count("max_symbols", max_symbols)
        _validate.function("is_crypto", is_crypto, "a symbol -> bool function")
        self._is_crypto = is_crypto
        self._min_keep = 0.5 ** (1.0 / self.half_life_observations)
        self._clock: Clock = _given_or_system(clock)
        self._lock = threading.Lock()
        # Each state is an immutable tuple replaced whole, so readers need no lock.
        # An OrderedDict rather than cachetools.LRUCache: its reads are C calls,
        # and is_high sits on every cache write.
        self._states: OrderedDict[str, _State] = OrderedDict()

    def observe(
        self, symbol: str, price: float | Decimal | str, ts: datetime | None = None
    ) -> float:
        """Record ``price`` for ``symbol`` at ``ts`` (default: now); return the new volatility.

        An observation not later than the symbol's latest is ignored (late
        answers from concurrent fetches must not reorder the series) and the
        current volatility is returned.

        Raises:
            TypeError: ``symbol`` is not a string, or ``ts`` not a datetime.
            ValueError: ``symbol`` is empty, ``price`` is not a finite
                positive number, or ``ts`` is naive; the state is left
                untouched.
        """
        if not isinstance(symbol, str):
            raise TypeError(f"symbol must be a str, got {symbol!r}")
        if not symbol:
            raise ValueError(f"symbol must not be empty, got {symbol!r}")
        value = check_price(price)
        if ts is not None:
            if not isinstance(ts, datetime):
                raise TypeError(f"ts must be an aware datetime, got {ts!r}")
            if ts.tzinfo is None or ts.utcoffset() is None:
                raise ValueError(f"ts must be an aware datetime, got naive {ts!r}")
            stamp = ts.timestamp()
        with self._lock:
            if ts is None:
                # Read the clock under the lock, so observations without a
                # timestamp are ordered as they arrive.
                stamp = self._clock.now().timestamp()
            states = self._states
            state = states.get(symbol)
            if state is None:
                year = CRYPTO_YEAR_SECONDS if self._is_crypto(symbol) else STOCK_YEAR_SECONDS
                states[symbol] = (value, stamp, 0.0, 0.0, 0, year, False)
                if len(states) > self.max_symbols:
                    states.popitem(last=False)
                return 0.0
            last, last_stamp, squares, seconds, count, year, _ = state
            dt = stamp - last_stamp
            if dt <= 0.0:
                return _annualized(squares, seconds, year)
            if value == last:
                # No news: the time goes to the next move, measured from the last
                # change. A price polled unchanged all night then moving at the
                # open is a return over a gap, not a move of a few seconds.
                states.move_to_end(symbol)
                return _annualized(squares, seconds, year)
            if dt > self.max_gap:
                states[symbol] = (value, stamp, 0.0, 0.0, 0, year, False)
                states.move_to_end(symbol)
                return 0.0
            r = math.log(value / last)
            keep = max(0.5 ** (dt / self.half_life), self._min_keep)
            squares = keep * squares + r * r
            seconds = keep * seconds + dt
            count += 1
            threshold = (
                self.crypto_threshold if year == CRYPTO_YEAR_SECONDS else self.stock_threshold
            )
            # Compared as variances per second: no square root on the way.
            high = count >= self.warmup and squares * year >= threshold * threshold * seconds
            states[symbol] = (value, stamp, squares, seconds, count, year, high)
            states.move_to_end(symbol)
            return _annualized(squares, seconds, year)

    def volatility(self, symbol: str) -> float:
        """``symbol``'s annualized volatility (``0.5`` is 50 % a year); ``0.0`` before a return.

        Reported during the warm-up too, when it is still rough.
        """
        state = self._states.get(symbol)
        return 0.0 if state is None else _annualized(state[2], state[3], state[5])

    def is_high(self, symbol: str) -> bool:
        """Whether ``symbol`` is past its warm-up and at or above its kind's threshold.

        False for unknown symbols and after a gap until a new warm-up.
        """
        state = self._states.get(symbol)
        return state is not None and state[6]

    def observations(self, symbol: str) -> int:
        """Returns in ``symbol``'s estimate since it started (or restarted after a gap)."""
        state = self._states.get(symbol)
        return 0 if state is None else state[4]

    def forget(self, symbol: str) -> None:
        """Drop everything known about ``symbol`` (no error when unknown)."""
        with self._lock:
            self._states.pop(symbol, None)

    def symbols(self) -> list[str]:
        """The tracked symbols, least recently observed first."""
        with self._lock:
            return list(self._states)

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._states

    def __repr__(self) -> str:
        return (
            f"VolatilityTracker(stock_threshold={self.stock_threshold}, "
            f"crypto_threshold={self.crypto_threshold}, half_life={self.half_life}, "
            f"symbols={len(self._states)}/{self.max_symbols})"
        )


def _annualized(squares: float, seconds: float, year: float) -> float:
    return math.sqrt(squares / seconds * year) if seconds > 0.0 else 0.0
