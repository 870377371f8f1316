"""The `cached` decorator: a function's results in a cache, one load per key at a time."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeAlias, TypeVar, cast, overload

from typing_extensions import ParamSpec

from ..errors import ConfigError
from ._async import AsyncRedisCache
from ._config import USE_DEFAULT, TTLArg, UseDefault, check_ttl
from ._sync import RedisCache

__all__ = ["CachedTTL", "cached", "default_key", "ttl_of_call"]

T = TypeVar("T")
P = ParamSpec("P")


def default_key(fn: Callable[..., Any]) -> Callable[..., str]:
    """The key ``module.qualname(args)``, with the arguments bound to the signature.

    ``quote("AAPL")`` and ``quote(symbol="AAPL")`` (defaults applied) give the
    same key. Positional parameters appear as their ``repr``, in order;
    keyword-only and ``**kwargs`` ones as ``name=repr``.
    """
    name = f"{fn.__module__}.{fn.__qualname__}"
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        signature = None
    params = list(signature.parameters.values()) if signature is not None else []
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    # All parameters given positionally: the bound form is the arguments themselves.
    plain = len(params) if all(p.kind in positional for p in params) else -1

    def make(*args: Any, **kwargs: Any) -> str:
        if not kwargs and len(args) == plain:
            made = f"{name}({','.join(map(repr, args))})"
        else:
            made = build(args, kwargs)
        if " at 0x" in made:
            _refuse_addresses(fn, signature, args, kwargs)
        return made

    def build(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        if signature is None:  # pragma: no cover - see above
            parts = [repr(a) for a in args]
            parts.extend(f"{k}={v!r}" for k, v in sorted(kwargs.items()))
            return f"{name}({','.join(parts)})"
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        parts = []
        for param in params:
            value = bound.arguments[param.name]
            if param.kind is inspect.Parameter.VAR_POSITIONAL:
                parts.extend(map(repr, value))
            elif param.kind is inspect.Parameter.KEYWORD_ONLY:
                parts.append(f"{param.name}={value!r}")
            elif param.kind is inspect.Parameter.VAR_KEYWORD:
                parts.extend(f"{k}={v!r}" for k, v in sorted(value.items()))
            else:
                parts.append(repr(value))
        return f"{name}({','.join(parts)})"

    return make


def _refuse_addresses(
    fn: Callable[..., Any],
    signature: inspect.Signature | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    """Raise TypeError for an argument whose repr is its memory address.

    Another object may later live at that address and would be handed this
    one's values; nor would the key mean anything to another process.
    """
    try:
        named = dict(signature.bind(*args, **kwargs).arguments) if signature else {}
    except TypeError:  # pragma: no cover - the key was built from the same binding
        named = {}
    if not named:  # pragma: no cover - builtins without a signature
        named = {f"#{i}": arg for i, arg in enumerate(args)} | kwargs
    for param, value in named.items():
        if _names_address(value):
            raise TypeError(
                f"cannot build a cache key for {fn.__qualname__}: argument {param!r} "
                f"({type(value).__qualname__}) has a repr naming its memory address; "
                "pass key=... (to cached or resilient) to say what identifies it"
            )


def _names_address(value: object) -> bool:
    """Whether ``value``'s repr shows an address (text that merely contains " at 0x" does not)."""
    if isinstance(value, (str, bytes)):
        return False
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_names_address(item) for item in value)
    if isinstance(value, dict):
        return any(_names_address(k) or _names_address(v) for k, v in value.items())
    return " at 0x" in repr(value)


CachedTTL: TypeAlias = "float | Callable[..., float | None] | UseDefault | None"
"""``ttl`` of `cached`: a callable is called with the decorated function's arguments."""


def ttl_of_call(ttl: CachedTTL) -> Callable[[tuple[Any, ...], dict[str, Any]], TTLArg]:
    """The TTL argument for one call's store: a callable ``ttl`` gets the call's own arguments.

    A fixed ``ttl`` (seconds, None, `USE_DEFAULT`) is passed on as it is; a
    callable one is asked only when a result is stored, with the arguments of
    the call that produced it.
    """
    ttl_of_args: Callable[..., float | None] | None = ttl if callable(ttl) else None
    fixed_ttl: TTLArg = USE_DEFAULT if ttl_of_args is not None else cast(TTLArg, ttl)

    def ttl_for(args: tuple[Any, ...], kwargs: dict[str, Any]) -> TTLArg:
        if ttl_of_args is None:
            return fixed_ttl
        return lambda _key: ttl_of_args(*args, **kwargs)

    return ttl_for


@overload
def cached(
    cache: RedisCache,
    ttl: CachedTTL = ...,
    key: Callable[..., str] | None = ...,
) -> Callable[[Callable[P, T]], Callable[P, T]]: ...


@overload
def cached(
    cache: AsyncRedisCache,
    ttl: CachedTTL = ...,
    key: Callable[..., str] | None = ...,
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Coroutine[Any, Any, T]]]: ...


def cached(
    cache: RedisCache | AsyncRedisCache,
    ttl: CachedTTL = USE_DEFAULT,
    key: Callable[..., str] | None = None,
) -> Callable[[Callable[P, Any]], Callable[P, Any]]:
    """Cache a function's results in ``cache`` (sync functions with `RedisCache`,
    ``async def`` functions with `AsyncRedisCache`).

    The cache key is ``key(*args, **kwargs)`` when given, else the function's
    qualified name and the ``repr`` of its arguments bound to its signature
    with defaults applied, so ``quote("AAPL")`` and ``quote(symbol="AAPL")``
    share one key. Concurrent calls that miss the same key run the function
    once per expiry (single flight); a failing call returns a value within the
    cache's ``max_stale`` when there is one, and otherwise raises. A result the
    cache's serializer cannot encode is returned but not cached (counted in
    ``stats.encode_failures``).

    ``ttl`` is seconds, None (never expires), `USE_DEFAULT` (the cache's
    ``default_ttl``) or a callable, which is called, like ``key``, with the
    function's own arguments when a result is stored: with
    ``ttl=adaptive.ttl_for`` on ``def price(symbol)``, ``price("AAPL")`` stores
    its result for ``adaptive.ttl_for("AAPL")`` seconds. (A callable
    ``default_ttl`` of the cache, and a callable ``ttl`` given to
    `RedisCache.set` or `RedisCache.get_or_set`, is called with
    the cache key.)

    Raises:
        ConfigError: a sync function with an `AsyncRedisCache` or an
            ``async def`` function with a `RedisCache`, a ``ttl`` that is
            not seconds > 0, None, a callable or `USE_DEFAULT`, or a ``key``
            that is not callable (all raised when decorating).

    Examples:
        ```python
        adaptive = AdaptiveTTL()
        cache = RedisCache("redis://localhost:6379/0")

        @cached(cache, ttl=adaptive.ttl_for, key=lambda symbol: f"price:{symbol}")
        def price(symbol: str) -> float:
            return vendor.fetch(symbol)  # stored for adaptive.ttl_for(symbol) seconds
        ```

        >>> cache = RedisCache()
        >>> @cached(cache, ttl=10.0, key=lambda symbol: symbol)
        ... def price(symbol: str) -> float:
        ...     return 231.5
        >>> price("AAPL"), cache.get("AAPL")
        (231.5, 231.5)
    """
    if not isinstance(cache, (RedisCache, AsyncRedisCache)):
        raise ConfigError("cache", type(cache).__name__, "must be a RedisCache or AsyncRedisCache")
    if not isinstance(ttl, UseDefault):
        check_ttl(ttl, "ttl")  # at decoration, not after the first call's loader ran
    if key is not None and not callable(key):
        raise ConfigError("key", key, "must be a callable (*args, **kwargs) -> str or None")
    ttl_for = ttl_of_call(ttl)

    def decorate(fn: Callable[P, Any]) -> Callable[P, Any]:
        make_key = key if key is not None else default_key(fn)
        is_async = inspect.iscoroutinefunction(fn)
        if is_async and isinstance(cache, AsyncRedisCache):
            acache = cache

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await acache.get_or_set(
                    make_key(*args, **kwargs),
                    lambda: fn(*args, **kwargs),
                    ttl_for(args, kwargs),
                )

            return async_wrapper
        if not is_async and isinstance(cache, RedisCache):
            scache = cache

            @functools.wraps(fn)
            def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                return scache.get_or_set(
                    make_key(*args, **kwargs),
                    lambda: fn(*args, **kwargs),
                    ttl_for(args, kwargs),
                )

            return wrapper
        kind = "an async" if is_async else "a sync"
        raise ConfigError(
            "cache",
            type(cache).__name__,
            f"cannot cache {kind} function {fn.__qualname__}: use "
            + ("AsyncRedisCache" if is_async else "RedisCache"),
        )

    return decorate
