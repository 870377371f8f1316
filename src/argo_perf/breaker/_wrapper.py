"""Decorator wrappers compiled with the decorated function's own parameter list.

A generic ``def wrapper(*args, **kwargs)`` packs a tuple and a dict on every
call and unpacks them again into the decorated function; on CPython that is
about half of what a breaker costs on the success path. The wrapper is
therefore generated with the same parameters as the function (defaults are
the function's own default objects, so the function sees exactly what it
would have seen), the way the ``decorator`` package does it. Callables that
are not plain Python functions (builtins, partials, objects with
``__call__``), and functions with a parameter named ``_argo_*``, get the
generic ``(*args, **kwargs)`` form of the same code.

The generated code lives in ``linecache`` so tracebacks show it.
"""

from __future__ import annotations

import inspect
import itertools
import linecache
from collections.abc import Callable
from typing import Any

__all__ = ["compile_wrapper"]

_SYNC = """\
def _argo_factory(_argo_core, _argo_fn, _argo_now, _argo_name, _argo_breaker, _argo_error):
    def {name}({params}):
        _argo_ticket = _argo_core.fast
        if _argo_ticket is not None:
            # CLOSED, and a success would change nothing but a count.
            try:
                _argo_result = _argo_fn({call})
            except BaseException as _argo_exc:
                _argo_breaker._settle_error(_argo_ticket, _argo_exc, 0.0, _argo_now())
                raise
            _argo_core.fast_successes += 1
            return _argo_result
        # The common rejection, raised from this frame without a lock:
        # open_until is only ever in the future while the circuit is OPEN.
        _argo_at = _argo_now()
        if _argo_at < _argo_core.open_until:
            _argo_core.rejections += 1
            raise _argo_error(_argo_name, _argo_core.open_until - _argo_at)
        return _argo_breaker.call(_argo_fn, {call})
    return {name}
"""

_ASYNC = """\
def _argo_factory(_argo_core, _argo_fn, _argo_now, _argo_name, _argo_breaker, _argo_error):
    async def {name}({params}):
        _argo_ticket = _argo_core.fast
        if _argo_ticket is not None:
            try:
                _argo_result = await _argo_fn({call})
            except BaseException as _argo_exc:
                await _argo_breaker._settle_error_async(_argo_ticket, _argo_exc, 0.0, _argo_now())
                raise
            _argo_core.fast_successes += 1
            return _argo_result
        _argo_at = _argo_now()
        if _argo_at < _argo_core.open_until:
            _argo_core.rejections += 1
            raise _argo_error(_argo_name, _argo_core.open_until - _argo_at)
        return await _argo_breaker.call_async(_argo_fn, {call})
    return {name}
"""

_GENERIC: tuple[str, str, dict[str, Any]] = (
    "*_argo_args, **_argo_kwargs",
    "*_argo_args, **_argo_kwargs",
    {},
)
_serial = itertools.count()


def _parameters(fn: Callable[..., Any]) -> tuple[str, str, dict[str, Any]]:
    """(parameter list, call arguments, default objects) for ``fn``, or the generic form."""
    # Only plain Python functions: a builtin's text signature or a
    # __signature__ set by hand need not match how the callable really binds.
    if not inspect.isfunction(fn) or "__signature__" in vars(fn):
        return _GENERIC
    signature = inspect.signature(fn, follow_wrapped=False)
    kinds = inspect.Parameter
    params: list[str] = []
    call: list[str] = []
    defaults: dict[str, Any] = {}
    previous = None
    for index, p in enumerate(signature.parameters.values()):
        if p.name.startswith("_argo_") or not p.name.isidentifier():
            return _GENERIC
        if previous is kinds.POSITIONAL_ONLY and p.kind is not kinds.POSITIONAL_ONLY:
            params.append("/")
        if p.kind is kinds.KEYWORD_ONLY and previous not in (
            kinds.KEYWORD_ONLY,
            kinds.VAR_POSITIONAL,
        ):
            params.append("*")
        text = p.name
        if p.default is not kinds.empty:
            key = f"_argo_default_{index}"
            defaults[key] = p.default
            text = f"{p.name}={key}"
        if p.kind is kinds.VAR_POSITIONAL:
            params.append(f"*{p.name}")
            call.append(f"*{p.name}")
        elif p.kind is kinds.VAR_KEYWORD:
            params.append(f"**{p.name}")
            call.append(f"**{p.name}")
        elif p.kind is kinds.KEYWORD_ONLY:
            params.append(text)
            call.append(f"{p.name}={p.name}")
        else:
            params.append(text)
            call.append(p.name)
        previous = p.kind
    if previous is kinds.POSITIONAL_ONLY:
        params.append("/")
    return ", ".join(params), ", ".join(call), defaults


def compile_wrapper(
    fn: Callable[..., Any],
    *,
    is_async: bool,
    core: Any,
    now: Callable[[], float],
    name: str,
    breaker: Any,
    error: type[BaseException],
) -> Callable[..., Any]:
    """Build the breaker's wrapper around ``fn`` with ``fn``'s parameter list."""
    params, call, defaults = _parameters(fn)
    func_name = getattr(fn, "__name__", "wrapper")
    if not func_name.isidentifier() or func_name.startswith("_argo_"):
        func_name = "wrapper"
    source = (_ASYNC if is_async else _SYNC).format(name=func_name, params=params, call=call)
    filename = f"<argo_perf.breaker wrapper {next(_serial)} of {func_name}>"
    namespace: dict[str, Any] = dict(defaults)
    exec(compile(source, filename, "exec"), namespace)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    factory = namespace["_argo_factory"]
    wrapper: Callable[..., Any] = factory(core, fn, now, name, breaker, error)
    return wrapper
