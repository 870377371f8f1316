"""Validation of prices fed to the market-time policies, and the one rule for "the price moved"."""

from __future__ import annotations

import math
from decimal import Decimal

__all__ = ["check_price", "moved"]

# Prices are floats: 1.005 - 1.0 is 0.004999999999999893. A move short of the
# threshold by less than a billionth of the threshold still counts as reaching it.
_TOLERANCE = 1e-9


def check_price(price: float | Decimal | str) -> float:
    """``price`` as a float when it is a finite positive number, else `ValueError`.

    Numeric strings and `decimal.Decimal` are converted; `bool` is refused (``True``
    is not a price of 1.0, it is a mistake).
    """
    if isinstance(price, bool):
        raise ValueError(f"price must be a finite positive number, got {price!r}")
    try:
        value = float(price)
    except (TypeError, ValueError):
        raise ValueError(f"price must be a finite positive number, got {price!r}") from None
    if not (value > 0.0 and math.isfinite(value)):
        raise ValueError(f"price must be a finite positive number, got {price!r}")
    return value


def moved(reference: float, price: float, threshold: float) -> bool:
    """Whether ``price`` is at least ``threshold`` (relative) away from ``reference``.

    The rule shared by `ChangeGate.changed` and `AdaptiveTTL.should_refresh`:
    a move of exactly the threshold counts (0.5 % of 100.0 is 100.5 or 99.5),
    and a threshold of 0 makes every price a move.
    """
    return abs(price - reference) >= threshold * reference * (1.0 - _TOLERANCE)
