"""Transition listeners: their type and the check of a list of them."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ConfigError
from ._core import Transition

__all__ = ["Listener", "check_listeners"]

Listener = Callable[[Transition], object]
"""A function called with each `Transition` (outside any lock; errors are logged)."""


def check_listeners(listeners: object) -> None:
    """Raise `ConfigError` unless ``listeners`` is a tuple or list of callables."""
    if not isinstance(listeners, (tuple, list)) or not all(callable(f) for f in listeners):
        raise ConfigError("listeners", listeners, "must be a tuple or list of callables")
