"""Online per-symbol volatility: an exponentially weighted moving average of log returns."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from datetime import datetime

from ._price import check_price
from .clock import Clock, SystemClock
from .errors import ConfigError

__all__ = ["VolatilityTracker"]


class VolatilityTracker:
    """Per-symbol volatility from the prices you observe, in constant memory.

    Each observation after the first updates the RiskMetrics estimate
    ``variance = decay * variance + (1 - decay) * r**2`` with ``r`` the log
    return since the previous price (the first return seeds the variance with
    ``r**2``); :meth:`volatility` is its square root, a per-observation
    volatility (``0.002`` is 0.2 % per poll).

    Args:
        decay: the EWMA weight of the past, in (0, 1). Default 0.94 (RiskMetrics).
        threshold: :meth:`is_high` is true from this volatility on. Default
            0.002 (0.2 % per observation).
        max_symbols: symbols tracked at most; the least recently observed is
            forgotten first. Default 1024.
        clock: where observation times come from when ``ts`` is not given.

    Raises:
        ConfigError: ``decay`` not in (0, 1), ``threshold`` not positive and
            finite, ``max_symbols`` < 1.

    Thread-safe: observations are serialised; readers never block.

    Example:
        >>> vol = VolatilityTracker(threshold=0.01)
        >>> for price in (100.0, 103.0, 99.0):
        ...     _ = vol.observe("AAPL", price)
        >>> round(vol.volatility("AAPL"), 4), vol.is_high("AAPL")
        (0.0303, True)
    """

    def __init__(
        self,
        *,
        decay: float = 0.94,
        threshold: float = 0.002,
        max_symbols: int = 1024,
        clock: Clock | None = None,
    ) -> None:
        if not (isinstance(decay, (int, float)) and 0.0 < decay < 1.0):
            raise ConfigError("decay", decay, "must be in (0, 1)")
        if isinstance(threshold, bool) or not (
            isinstance(threshold, (int, float)) and 0.0 < threshold < math.inf
        ):
            raise ConfigError("threshold", threshold, "must be a positive finite number")
        if isinstance(max_symbols, bool) or not isinstance(max_symbols, int) or max_symbols < 1:
            raise ConfigError("max_symbols", max_symbols, "must be an int >= 1")
        self.decay = float(decay)
        self.threshold = float(threshold)
        self.max_symbols = max_symbols
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._lock = threading.Lock()
        # symbol -> (last price, variance, volatility, returns seen, last ts). Each
        # state is an immutable tuple replaced whole, so readers need no lock.
        # An OrderedDict rather than cachetools.LRUCache: its reads are C calls,
        # and is_high sits on every cache write.
        self._states: OrderedDict[str, tuple[float, float, float, int, float]] = OrderedDict()

    def observe(self, symbol: str, price: float, ts: datetime | None = None) -> float:
        """Record ``price`` for ``symbol`` at ``ts`` (default: now); return the new volatility.

        An observation older than the symbol's latest is ignored (late answers
        from concurrent fetches must not reorder the series) and the current
        volatility is returned.

        Raises:
            ValueError: ``price`` is not a finite positive number, or ``ts`` is
                naive; the state is left untouched.
        """
        value = check_price(price)
        if ts is not None:
            if ts.tzinfo is None or ts.utcoffset() is None:
                raise ValueError(f"ts must be an aware datetime, got naive {ts!r}")
            stamp = ts.timestamp()
        with self._lock:
            if ts is None:
                # Read the clock under the lock, so observations without a
                # timestamp are ordered as they arrive and never count as late.
                stamp = self._clock.now().timestamp()
            states = self._states
            state = states.get(symbol)
            if state is None:
                states[symbol] = (value, 0.0, 0.0, 0, stamp)
                if len(states) > self.max_symbols:
                    states.popitem(last=False)
                return 0.0
            last, variance, vol, count, last_stamp = state
            if stamp < last_stamp:
                return vol
            r = math.log(value / last)
            variance = r * r if count == 0 else self.decay * variance + (1.0 - self.decay) * r * r
            vol = math.sqrt(variance)
            states[symbol] = (value, variance, vol, count + 1, stamp)
            states.move_to_end(symbol)
            return vol

    def volatility(self, symbol: str) -> float:
        """The current volatility of ``symbol``; ``0.0`` until two prices were observed."""
        state = self._states.get(symbol)
        return 0.0 if state is None else state[2]

    def is_high(self, symbol: str) -> bool:
        """Whether ``symbol``'s volatility is at least ``threshold`` (false for unknown symbols)."""
        state = self._states.get(symbol)
        return state is not None and state[2] >= self.threshold

    def observations(self, symbol: str) -> int:
        """How many returns went into ``symbol``'s estimate (0 for unknown symbols)."""
        state = self._states.get(symbol)
        return 0 if state is None else state[3]

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
            f"VolatilityTracker(decay={self.decay}, threshold={self.threshold}, "
            f"symbols={len(self._states)}/{self.max_symbols})"
        )
