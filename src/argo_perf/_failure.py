"""One exception raised to several callers: a shared load's or a batch's failure.

When one call works on behalf of several callers (the cache's single flight, a
`Batcher` batch) and fails, every caller raises the same exception object. A
raise adds the raising frames to the exception's traceback, so without care
each caller's traceback would carry the frames of every caller that raised it
before. `SharedFailure` keeps the traceback the exception had when it was
caught, and every caller raises it from there.
"""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["SharedFailure"]

E = TypeVar("E", bound=BaseException)


class SharedFailure(Generic[E]):
    """An exception to raise in several callers, each from the traceback it was caught with."""

    __slots__ = ("error", "trace")

    def __init__(self, error: E) -> None:
        self.error = error
        self.trace = error.__traceback__

    def for_caller(self) -> E:
        """The exception with its original traceback, for one caller to raise."""
        return self.error.with_traceback(self.trace)
