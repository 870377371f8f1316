"""Skip unchanged symbols: regenerate a value only when its price moved enough."""

from __future__ import annotations

import threading
from collections import OrderedDict
from decimal import Decimal
from typing import Generic, TypeVar, overload

from . import _validate
from ._price import check_price, moved
from .clock import Clock, _given_or_system

__all__ = ["ChangeGate"]

V = TypeVar("V")
D = TypeVar("D")


class ChangeGate(Generic[V]):
    """Remembers the price each value was computed from, and says when to compute again.

    `changed` is true when ``symbol`` has nothing remembered, when its
    price moved by at least ``threshold`` (relative) since the remembered
    price, or when the remembered value is older than ``max_age``; otherwise
    the caller can reuse `cached` and the call counts as a skip.

    Args:
        threshold: the relative move that counts as a change, >= 0. Default
            0.005 (0.5 %); 0 means every call is a change.
        max_age: seconds after which a remembered value is stale whatever the
            price did (so a quiet symbol is still regenerated now and then), or
            ``None`` (default) for no age limit. Measured on the clock's
            ``monotonic()``.
        max_symbols: symbols remembered at most; the least recently remembered
            is forgotten first. Default 10 000.
        clock: the time source for ``max_age``.

    Raises:
        ConfigError: ``threshold`` negative or not finite, ``max_age`` not
            positive, ``max_symbols`` < 1.

    Thread-safe. Prices that are not finite positive numbers raise
    `ValueError` and change nothing.

    Examples:
        >>> gate = ChangeGate(threshold=0.005)
        >>> gate.changed("AAPL", 230.0)
        True
        >>> gate.remember("AAPL", 230.0, {"signal": "BUY"})
        >>> gate.changed("AAPL", 230.5)  # +0.2 %: reuse the value
        False
        >>> gate.cached("AAPL")
        {'signal': 'BUY'}
        >>> gate.skips, gate.skip_rate
        (1, 50.0)
    """

    def __init__(
        self,
        threshold: float = 0.005,
        *,
        max_age: float | None = None,
        max_symbols: int = 10_000,
        clock: Clock | None = None,
    ) -> None:
        self.threshold = _validate.at_least("threshold", threshold, 0.0)
        self.max_age = _validate.optional(_validate.positive_seconds, "max_age", max_age)
        self.max_symbols = _validate.count("max_symbols", max_symbols)
        self._clock: Clock = _given_or_system(clock)
        self._lock = threading.Lock()
        # symbol -> (price, value, monotonic time remembered)
        self._entries: OrderedDict[str, tuple[float, V, float]] = OrderedDict()
        self._checks = 0
        self._skips = 0

    def changed(self, symbol: str, price: float | Decimal | str) -> bool:
        """Whether ``symbol`` needs a new value at ``price`` (see the class docs); counts skips.

        Raises:
            ValueError: ``price`` is not a finite positive number.
        """
        value = check_price(price)
        max_age = self.max_age
        now = self._clock.monotonic() if max_age is not None else 0.0
        with self._lock:
            self._checks += 1
            entry = self._entries.get(symbol)
            if (
                entry is not None
                and not moved(entry[0], value, self.threshold)
                and (max_age is None or now - entry[2] < max_age)
            ):
                self._skips += 1
                return False
            return True

    def remember(self, symbol: str, price: float | Decimal | str, value: V) -> None:
        """Remember ``value`` as computed from ``price`` now; later moves are measured from it.

        Raises:
            ValueError: ``price`` is not a finite positive number.
        """
        checked = check_price(price)
        now = self._clock.monotonic()
        with self._lock:
            entries = self._entries
            entries[symbol] = (checked, value, now)
            entries.move_to_end(symbol)
            if len(entries) > self.max_symbols:
                entries.popitem(last=False)

    @overload
    def cached(self, symbol: str) -> V | None: ...

    @overload
    def cached(self, symbol: str, default: D) -> V | D: ...

    def cached(self, symbol: str, default: object = None) -> object:
        """The value remembered for ``symbol``, or ``default`` (``None``) when there is none."""
        entry = self._entries.get(symbol)
        return default if entry is None else entry[1]

    def price(self, symbol: str) -> float | None:
        """The price remembered for ``symbol``, or ``None``."""
        entry = self._entries.get(symbol)
        return None if entry is None else entry[0]

    def forget(self, symbol: str) -> None:
        """Drop what is remembered for ``symbol`` (no error when unknown)."""
        with self._lock:
            self._entries.pop(symbol, None)

    def clear(self) -> None:
        """Forget every symbol (the counters are kept; see `reset_stats`)."""
        with self._lock:
            self._entries.clear()

    @property
    def checks(self) -> int:
        """How many times `changed` was asked."""
        return self._checks

    @property
    def skips(self) -> int:
        """How many `changed` calls answered false (the value could be reused)."""
        return self._skips

    @property
    def skip_rate(self) -> float:
        """Skips as a percentage (0-100) of checks; ``0.0`` before any check."""
        with self._lock:
            checks, skips = self._checks, self._skips
        return 100.0 * skips / checks if checks else 0.0

    def reset_stats(self) -> None:
        """Set `checks` and `skips` back to zero."""
        with self._lock:
            self._checks = 0
            self._skips = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._entries

    def __repr__(self) -> str:
        return (
            f"ChangeGate(threshold={self.threshold}, max_age={self.max_age}, "
            f"symbols={len(self._entries)}, skip_rate={self.skip_rate:.1f}%)"
        )
