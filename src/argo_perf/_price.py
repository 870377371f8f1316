"""Validation of prices fed to the market-time policies."""

from __future__ import annotations

import math

__all__ = ["check_price"]


def check_price(price: float) -> float:
    """``price`` as a float when it is a finite positive number, else :class:`ValueError`."""
    try:
        value = float(price)
    except (TypeError, ValueError):
        raise ValueError(f"price must be a finite positive number, got {price!r}") from None
    if not (value > 0.0 and math.isfinite(value)):
        raise ValueError(f"price must be a finite positive number, got {price!r}")
    return value
