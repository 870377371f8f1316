"""One rule per kind of configuration value.

Every constructor checks its arguments with these rules, so the same kind of
value is accepted (and refused) the same way everywhere. Each rule takes the
parameter's name and the value, returns the value normalized (a ``float`` for
numbers, the ``int`` for counts) and raises `ConfigError` naming both
otherwise. A number is an ``int`` or a ``float`` and never a ``bool``
(``True`` is a mistake, not 1); NaN is refused by every rule.

| rule | accepts |
|---|---|
| `positive_seconds` | finite seconds > 0 |
| `non_negative_seconds` | finite seconds >= 0 |
| `positive_seconds_or_inf` | seconds > 0, ``math.inf`` allowed |
| `non_negative_seconds_or_inf` | seconds >= 0, ``math.inf`` allowed |
| `rate` | a finite number per second > 0 |
| `positive` | a finite number > 0 |
| `at_least` | a finite number >= a minimum |
| `count` | an ``int`` >= a minimum (1 unless told) |
| `fraction` | a number in [0, 1) (jitter) |
| `share` | a number in (0, 1] (thresholds, shares) |
| `function` | a callable |
| `flag` | a ``bool`` (not 0, 1 or a string) |

`optional` lets ``None`` through any of them: ``optional(positive_seconds, "max_age", v)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

from .errors import ConfigError

__all__ = [
    "at_least",
    "count",
    "flag",
    "fraction",
    "function",
    "is_number",
    "non_negative_seconds",
    "non_negative_seconds_or_inf",
    "optional",
    "positive",
    "positive_seconds",
    "positive_seconds_or_inf",
    "rate",
    "share",
]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., object])

_INF = math.inf


def is_number(value: object) -> bool:
    """An ``int`` or ``float`` that is not a ``bool`` (NaN included; the rules refuse it)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(
    name: str,
    value: object,
    low: float,
    high: float,
    *,
    low_open: bool,
    high_open: bool,
    requirement: str,
) -> float:
    # One comparison chain for every numeric rule; NaN fails every comparison, and
    # an int beyond a float's range (10**400) is refused as infinite, never an OverflowError.
    if is_number(value):
        try:
            number = float(value)  # type: ignore[arg-type]
        except OverflowError:
            number = math.nan
        above = number > low if low_open else number >= low
        below = number < high if high_open else number <= high
        if above and below:
            return number
    raise ConfigError(name, value, requirement)


def positive_seconds(name: str, value: object) -> float:
    """Finite seconds > 0 (timeouts, intervals, TTLs)."""
    return _number(
        name,
        value,
        0.0,
        _INF,
        low_open=True,
        high_open=True,
        requirement="must be > 0 and finite (seconds)",
    )


def non_negative_seconds(name: str, value: object) -> float:
    """Finite seconds >= 0 (a jitter in seconds, an advance of a clock)."""
    return _number(
        name,
        value,
        0.0,
        _INF,
        low_open=False,
        high_open=True,
        requirement="must be >= 0 and finite (seconds)",
    )


def positive_seconds_or_inf(name: str, value: object) -> float:
    """Seconds > 0 where ``math.inf`` is documented to mean "for ever"."""
    return _number(
        name,
        value,
        0.0,
        _INF,
        low_open=True,
        high_open=False,
        requirement="must be > 0 (seconds; math.inf allowed)",
    )


def non_negative_seconds_or_inf(name: str, value: object) -> float:
    """Seconds >= 0 where ``math.inf`` is documented to mean "for ever"."""
    return _number(
        name,
        value,
        0.0,
        _INF,
        low_open=False,
        high_open=False,
        requirement="must be >= 0 (seconds; math.inf allowed)",
    )


def rate(name: str, value: object) -> float:
    """A finite number of events per second > 0."""
    return _number(
        name,
        value,
        0.0,
        _INF,
        low_open=True,
        high_open=True,
        requirement="must be > 0 and finite (per second)",
    )


def positive(name: str, value: object) -> float:
    """A finite number > 0 (a threshold, a number of observations)."""
    return _number(
        name, value, 0.0, _INF, low_open=True, high_open=True, requirement="must be > 0 and finite"
    )


def at_least(name: str, value: object, minimum: float) -> float:
    """A finite number >= ``minimum`` (a burst >= 1, a multiplier >= 1, a threshold >= 0)."""
    return _number(
        name,
        value,
        minimum,
        _INF,
        low_open=False,
        high_open=True,
        requirement=f"must be >= {minimum:g} and finite",
    )


def count(name: str, value: object, *, minimum: int = 1, maximum: int | None = None) -> int:
    """An ``int`` >= ``minimum`` (and <= ``maximum`` when given); not a ``bool`` or a ``float``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bound = f">= {minimum}" if maximum is None else f"in {minimum}-{maximum}"
        raise ConfigError(name, value, f"must be an int {bound}")
    return value


def fraction(name: str, value: object) -> float:
    """A number in [0, 1): a jitter, a share that may be nothing but never everything."""
    return _number(
        name,
        value,
        0.0,
        1.0,
        low_open=False,
        high_open=True,
        requirement="must be a fraction in [0, 1)",
    )


def share(name: str, value: object) -> float:
    """A number in (0, 1]: a failure-rate threshold, a share of a rate."""
    return _number(
        name,
        value,
        0.0,
        1.0,
        low_open=True,
        high_open=False,
        requirement="must be a fraction in (0, 1]",
    )


def function(name: str, value: F, what: str = "callable") -> F:
    """A callable; ``what`` describes it in the message (e.g. "a symbol -> bool function")."""
    if not callable(value):
        raise ConfigError(name, value, f"must be {what}")
    return value


def flag(name: str, value: object) -> bool:
    """A ``bool``: a switch given as ``"no"`` or ``0`` is refused, not read by its truth."""
    if not isinstance(value, bool):
        raise ConfigError(name, value, "must be True or False")
    return value


def optional(rule: Callable[..., T], name: str, value: object, *args: object) -> T | None:
    """``None``, or what ``rule(name, value, *args)`` returns; the message adds "or None"."""
    if value is None:
        return None
    try:
        return rule(name, value, *args)
    except ConfigError as exc:
        raise ConfigError(name, value, f"{exc.requirement} or None") from None


def hash_tag(name: str, value: str) -> str:
    """``value``, which goes between ``{`` and ``}`` as a Redis Cluster hash tag.

    A value starting with ``}`` would leave the tag empty: Redis then hashes
    each whole key, and a piece's keys land in different slots (every script
    call fails with ``CROSSSLOT`` on a cluster).
    """
    if value.startswith("}"):
        raise ConfigError(
            name, value, "must not start with '}' (it would empty the Redis Cluster hash tag)"
        )
    return value
