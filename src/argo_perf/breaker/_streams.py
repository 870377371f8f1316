"""The decorator's wrappers for generator and async-generator functions.

A stream is protected for its whole iteration: admitted at the first
``next``, judged by what ends it. Both wrappers work with the same
`CallPath` as the call path of `_wrapper`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

from ._policy import Outcome
from ._wrapper import CallPath

__all__ = ["wrap_async_generator", "wrap_generator"]

_SUCCESS = Outcome.SUCCESS


def wrap_generator(
    fn: Callable[..., Generator[Any, Any, Any]], path: CallPath
) -> Callable[..., Generator[Any, Any, Any]]:
    """A generator function running ``fn``'s iteration through the breaker of ``path``."""
    now = path.now

    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        # Runs at the first next(): the stream is admitted when it starts.
        ticket = path.admit(now())
        start = now()
        try:
            result = yield from fn(*args, **kwargs)
        except BaseException as error:  # GeneratorExit (closed early) is ignored
            end = now()
            path.settle_error(ticket, error, end - start, end)
            raise
        end = now()
        path.settle(ticket, _SUCCESS, end - start, end, None)
        return result

    return wrapper


def wrap_async_generator(
    fn: Callable[..., AsyncGenerator[Any, Any]], path: CallPath
) -> Callable[..., AsyncGenerator[Any, Any]]:
    """The asyncio form of `wrap_generator`; ``path`` is the breaker's asyncio path."""
    now = path.now

    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        ticket = await path.admit(now())
        start = now()
        stream = fn(*args, **kwargs)
        try:
            # ``yield from`` for async generators: values, sends, throws, close.
            try:
                value = await stream.__anext__()
                while True:
                    try:
                        sent = yield value
                    except GeneratorExit:
                        await stream.aclose()
                        raise
                    except BaseException as thrown:
                        value = await stream.athrow(thrown)
                    else:
                        value = await stream.asend(sent)
            except StopAsyncIteration:
                pass
        except BaseException as error:
            end = now()
            await path.settle_error(ticket, error, end - start, end)
            raise
        end = now()
        await path.settle(ticket, _SUCCESS, end - start, end, None)

    return wrapper
