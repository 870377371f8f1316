"""One exception raised to several callers: a shared load's or a batch's failure.

When one call works on behalf of several callers (the cache's single flight, a
`Batcher` batch) and fails, every caller raises the same exception object. A
raise adds the raising frames to the exception's traceback, so without care
each caller's traceback would carry the frames of every caller that raised it
before. `SharedFailure` keeps the traceback the exception had when it was
caught, and every caller raises it from there.

Such a call runs in a task of its own, and `asyncio.CancelledError` out of it
means one of two things: that task was cancelled (the event loop closing, say:
the callers should be sent elsewhere), or the work raised it itself (an inner
request cancelled under it: a failure like any other, or the callers would try
again, forever if it always does). `settled` tells the two apart, on every
Python version (``Task.cancelling`` exists only from 3.11).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["CancelledItself", "SharedFailure", "settled"]

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


class CancelledItself(Exception):
    """The work raised ``error``, an `asyncio.CancelledError`, though its task was not cancelled."""

    def __init__(self, error: asyncio.CancelledError) -> None:
        super().__init__(error)
        self.error = error


async def settled(call: Callable[[], Any]) -> Any:
    """``call()``, awaited when it returns an awaitable; its own cancellation told apart.

    Returns what it returns and raises what it raises, except that a
    `asyncio.CancelledError` of its own (raised by ``call``, or ending its
    awaitable, while the task awaiting this was not cancelled) comes out as
    `CancelledItself`. A `asyncio.CancelledError` out of this coroutine means
    that the awaiting task was cancelled; the awaitable is cancelled with it.
    """
    try:
        result = call()
    except asyncio.CancelledError as exc:  # no await has run: nobody cancelled anything
        raise CancelledItself(exc) from exc
    if not inspect.isawaitable(result):
        return result
    # The awaitable runs in a task of its own; this task waits on a future only it
    # holds, so a CancelledError here is this task's own cancellation.
    work = asyncio.ensure_future(result)
    ended = asyncio.get_running_loop().create_future()

    def end(_: object) -> None:
        if not ended.done():
            ended.set_result(None)

    work.add_done_callback(end)
    try:
        await ended
    except asyncio.CancelledError:
        work.cancel()
        raise
    try:
        return work.result()
    except asyncio.CancelledError as exc:
        raise CancelledItself(exc) from exc
