"""Calls of a breaker made inside another call of the same breaker.

A decorated function called through `call` or inside ``with breaker:``, or one
decorated function calling another of the same breaker, is part of the outer
call: the outer one is judged once, the inner ones run on its admission and
count for nothing (else a failure would count twice, and a half-open probe
would be turned away by its own permit). Only while the outer call is in
flight: a task or thread started inside it copies the context and may outlive
it. Past the fast path a call says where it is with `ENTERED` and a mark in its
core's ``inside``; on the fast path, which pays for nothing, a failing call
reads the stack (`inside_another_call`).
"""

from __future__ import annotations

import sys
from contextvars import ContextVar
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._core import BreakerCore

__all__ = [
    "CALL_PATHS",
    "ENTERED",
    "NESTED",
    "block_open",
    "inside_a_call",
    "inside_another_call",
    "nested_failure",
]

CALL_PATHS = "<argo_perf.breaker "
"""How the file names of the generated call paths (`_wrapper`) begin."""

NESTED = -2
"""The ticket of a call made inside another call admitted through the same breaker.

A decorated function called through `call` or inside ``with breaker:``, or
one decorated function calling another of the same breaker: past the fast
path, the inner call runs on the outer call's admission and counts for
nothing; the outer one is judged. (Without this, a half-open probe would be
turned away by its own permit, and the circuit could never close.)
"""

ENTERED: ContextVar[tuple[object, ...]] = ContextVar("argo_perf.breaker.entered", default=())
"""The marks of the slow-path calls the current context is inside (any breaker's).

A call counts as inside another only while that one is in flight: its mark is
in its core's ``inside`` from admission to settlement. A task or thread started
inside a call copies this variable, and outlives the call: its marks are then
stale, and its calls are judged as calls of their own.
"""


def inside_a_call(core: BreakerCore, held: ContextVar[Any]) -> bool:
    """Whether an admission of ``core`` happens inside one of its calls or blocks in flight."""
    inside = core.inside
    return bool(inside) and (
        block_open(held, inside) or any(mark in inside for mark in ENTERED.get())
    )


def nested_failure(ticket: int, core: BreakerCore, held: ContextVar[Any]) -> bool:
    """Whether a failure with ``ticket`` is judged by an outer call of ``core`` instead.

    True for a call admitted on the fast path (closed: the ticket is the
    core's generation) inside a ``with`` block of the breaker still open
    (``held`` set, and in ``core.inside``) or inside another of its calls
    (`inside_another_call`).
    """
    return ticket == core.gen and (block_open(held, core.inside) or inside_another_call(core))


def block_open(held: ContextVar[Any], inside: dict[object, None]) -> bool:
    """Whether this context is inside a ``with`` block of the breaker that is still open.

    ``held`` is the breaker's (ticket, start, outer, mark) of the innermost block
    this context entered; a task started inside a block copies it and may outlive
    the block, so the block's mark must still be in ``inside``.
    """
    block = held.get()
    return block is not None and block[3] in inside


def inside_another_call(core: BreakerCore) -> bool:
    """Whether the failing call of ``core`` runs inside another call of ``core``.

    For a failure on the fast path only (the slow path knows it from
    ``ENTERED``, which the fast path does not pay for setting): a function
    decorated by a breaker, called through the same breaker's `call`, or by
    another function it decorates. The stack is read: two frames of ``core``'s
    call paths, this call's and an outer one's, mean the outer one judges.
    Python's frames of a running coroutine lead back to the one awaiting it,
    so nested ``async def`` calls are found the same way.
    """
    seen = 0
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename.startswith(CALL_PATHS) and frame.f_locals.get("_core") is core:
            seen += 1
            if seen == 2:
                return True
        frame = frame.f_back
    return False
