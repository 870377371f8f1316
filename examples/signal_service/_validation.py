"""The one check of the service's settings that argo_perf's own rules do not cover.

Everything else is checked with ``argo_perf._validate``, whose rules raise
`argo_perf.ConfigError` naming the parameter and the value.
"""

from __future__ import annotations

from argo_perf import ConfigError
from argo_perf._validate import is_number


def unit_interval(name: str, value: object) -> float:
    """A number in [0, 1], both ends included: a probability, a rate of failures, a volatility."""
    if is_number(value) and 0.0 <= value <= 1.0:  # type: ignore[operator]
        return float(value)  # type: ignore[arg-type]
    raise ConfigError(name, value, "must be a number in [0, 1]")
