"""The service's settings checks: each raises `argo_perf.ConfigError` naming the setting.

The service uses only argo_perf's public API, so these few rules live here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

from argo_perf import ConfigError

T = TypeVar("T")


def is_number(value: object) -> bool:
    """An ``int`` or ``float`` that is not a ``bool``."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _checked(name: str, value: object, ok: Callable[[float], bool], requirement: str) -> float:
    if is_number(value) and ok(float(value)):  # type: ignore[arg-type]
        return float(value)  # type: ignore[arg-type]
    raise ConfigError(name, value, requirement)


def positive(name: str, value: object) -> float:
    """A finite number > 0."""
    return _checked(name, value, lambda v: 0.0 < v < math.inf, "must be > 0 and finite")


def positive_seconds(name: str, value: object) -> float:
    """Finite seconds > 0."""
    return _checked(name, value, lambda v: 0.0 < v < math.inf, "must be > 0 and finite (seconds)")


def non_negative_seconds(name: str, value: object) -> float:
    """Finite seconds >= 0."""
    return _checked(name, value, lambda v: 0.0 <= v < math.inf, "must be >= 0 and finite (seconds)")


def fraction(name: str, value: object) -> float:
    """A number in [0, 1)."""
    return _checked(name, value, lambda v: 0.0 <= v < 1.0, "must be a fraction in [0, 1)")


def unit_interval(name: str, value: object) -> float:
    """A number in [0, 1], both ends included: a probability, a rate of failures."""
    return _checked(name, value, lambda v: 0.0 <= v <= 1.0, "must be a number in [0, 1]")


def count(name: str, value: object) -> int:
    """An ``int`` >= 1 (not a ``bool``)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(name, value, "must be an int >= 1")
    return value


def optional(rule: Callable[[str, object], T], name: str, value: object) -> T | None:
    """``None``, or what ``rule(name, value)`` returns."""
    return None if value is None else rule(name, value)
