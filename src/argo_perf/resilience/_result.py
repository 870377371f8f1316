"""What `with_meta` returns (`ResilientResult`) and what a decorated function is."""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from typing_extensions import ParamSpec

from .._recording import Outcome

__all__ = ["AsyncResilientFunction", "ResilientFunction", "ResilientResult"]

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")


@dataclass(frozen=True, slots=True)
class ResilientResult(Generic[T]):
    """A value returned by a `resilient` function, with where it came from.

    Returned by ``fn.with_meta(*args, **kwargs)`` (awaited for ``async def``
    functions); calling ``fn(*args, **kwargs)`` returns only ``value``.

    Attributes:
        value: what the call returned.
        outcome: ``"ok"`` (the source answered, after retries if any),
            ``"cached"`` (a fresh cached value; the source was not called by
            this caller), ``"stale"`` (the source failed or was refused and a
            cached value past its TTL, within the cache's ``max_stale``, was
            served) or ``"fallback"`` (the source failed or was refused and
            the fallback answered).
        stale: True exactly when ``outcome`` is ``"stale"``.
        age: seconds since the value was fetched from the source: 0.0 for
            ``"ok"``, the cached value's age for ``"cached"`` and
            ``"stale"``, None for ``"fallback"`` (not from the source).

    Examples:
        >>> from argo_perf import RedisCache, resilient
        >>> @resilient("massive", cache=RedisCache(), ttl=10.0)
        ... def price(symbol: str) -> float:
        ...     return 231.5
        >>> price.with_meta("AAPL").outcome, price.with_meta("AAPL").outcome
        ('ok', 'cached')
    """

    value: T
    outcome: Outcome
    stale: bool
    age: float | None


class ResilientFunction(Protocol[P, R]):
    """A sync function decorated with `resilient`: same parameters, same return type.

    ``fn(*args, **kwargs)`` returns the value; ``fn.with_meta(*args,
    **kwargs)`` returns it as a `ResilientResult` that says whether it is
    fresh, cached, stale or a fallback.
    """

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    def with_meta(self, *args: P.args, **kwargs: P.kwargs) -> ResilientResult[R]:
        """Call as ``fn(...)`` does, and return the value with its outcome and age."""
        ...


class AsyncResilientFunction(Protocol[P, R]):
    """An ``async def`` function decorated with `resilient`: same parameters, same result.

    ``await fn(*args, **kwargs)`` returns the value; ``await
    fn.with_meta(*args, **kwargs)`` returns a `ResilientResult`.
    """

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]: ...

    def with_meta(
        self, *args: P.args, **kwargs: P.kwargs
    ) -> Coroutine[Any, Any, ResilientResult[R]]:
        """Await as ``fn(...)`` does, and return the value with its outcome and age."""
        ...
