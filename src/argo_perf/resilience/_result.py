"""What `with_meta` returns (`ResilientResult`) and what a decorated function is."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Concatenate, Generic, Protocol, TypeVar, cast, overload

from typing_extensions import ParamSpec

from .._recording import Outcome

__all__ = [
    "AsyncResilientFunction",
    "ResilientFunction",
    "ResilientResult",
    "method_or_function",
]

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")
Q = ParamSpec("Q")


# No slots: see CachedValue (a parametrized ResilientResult[float](...) must build).
@dataclass(frozen=True)
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

    __name__: str
    __qualname__: str

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    def with_meta(self, *args: P.args, **kwargs: P.kwargs) -> ResilientResult[R]:
        """Call as ``fn(...)`` does, and return the value with its outcome and age."""
        ...

    # A method binds its instance, for the call and for with_meta alike: the
    # overloads tell type checkers so (the first parameter is dropped).
    @overload
    def __get__(
        self, instance: None, owner: type[Any] | None = None
    ) -> ResilientFunction[P, R]: ...

    @overload
    def __get__(
        self: ResilientFunction[Concatenate[Any, Q], R],
        instance: object,
        owner: type[Any] | None = None,
    ) -> ResilientFunction[Q, R]: ...


class AsyncResilientFunction(Protocol[P, R]):
    """An ``async def`` function decorated with `resilient`: same parameters, same result.

    ``await fn(*args, **kwargs)`` returns the value; ``await
    fn.with_meta(*args, **kwargs)`` returns a `ResilientResult`.
    """

    __name__: str
    __qualname__: str

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]: ...

    def with_meta(
        self, *args: P.args, **kwargs: P.kwargs
    ) -> Coroutine[Any, Any, ResilientResult[R]]:
        """Await as ``fn(...)`` does, and return the value with its outcome and age."""
        ...

    @overload
    def __get__(
        self, instance: None, owner: type[Any] | None = None
    ) -> AsyncResilientFunction[P, R]: ...

    @overload
    def __get__(
        self: AsyncResilientFunction[Concatenate[Any, Q], R],
        instance: object,
        owner: type[Any] | None = None,
    ) -> AsyncResilientFunction[Q, R]: ...


class _Bound(functools.partial):  # type: ignore[type-arg]
    """A decorated method bound to an instance: ``self`` goes to the call and to ``with_meta``.

    A `functools.partial`: its call costs no Python frame, and `inspect` sees
    through it (signature without ``self``, an ``async def`` stays one).
    """

    __slots__ = ()

    @property
    def with_meta(self) -> Callable[..., Any]:
        """``with_meta`` with the instance bound."""
        return functools.partial(cast(Any, self.func).with_meta, *self.args)

    def __repr__(self) -> str:
        owner = type(self.args[0]).__qualname__
        return f"<bound resilient method {self.func.__qualname__} of {owner} object>"


class _Method:
    """A decorated function defined in a class body: it binds to instances like a function.

    A plain function binds too, but its ``with_meta`` attribute would not
    receive ``self``. Read on an instance, this gives a `_Bound`; read on the
    class, the decorated function itself (``self`` then passed explicitly).
    """

    def __init__(self, function: Callable[..., Any]) -> None:
        self._function = function
        functools.update_wrapper(self, function)  # name, docs, __wrapped__, with_meta

    def __get__(self, instance: object, owner: type[Any] | None = None) -> Callable[..., Any]:
        if instance is None:
            return self._function
        return _Bound(self._function, instance)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Reached only without binding, e.g. under staticmethod.
        return self._function(*args, **kwargs)


def method_or_function(wrapper: Callable[..., Any], fn: Callable[..., Any]) -> Any:
    """``wrapper`` as it is, or made to bind like a method when ``fn`` is defined in a class body.

    A function stays a plain function: its call is the cheapest there is, and
    `inspect.iscoroutinefunction` recognises an ``async def`` one. A function
    defined in a class body (its ``__qualname__`` names the class, not an
    enclosing function's ``<locals>``) is wrapped so that its ``with_meta``
    receives ``self`` too.
    """
    *outer, _ = getattr(fn, "__qualname__", "").split(".")
    return _Method(wrapper) if outer and outer[-1] != "<locals>" else wrapper
