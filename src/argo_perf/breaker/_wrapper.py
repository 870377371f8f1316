"""The breaker's call path: written once, generated for each face.

``call``, ``call_async`` and the decorator run the same code, the template
below, in its sync or its asyncio spelling (the two differ only by ``async``
and ``await``). The decorator's copy is generated with the decorated
function's own parameter list: a generic ``def wrapper(*args, **kwargs)``
packs a tuple and a dict on every call and unpacks them again, which on
CPython is about half of what a breaker costs on the success path. Defaults
are the function's own default objects, so the function sees exactly what it
would have seen, the way the ``decorator`` package does it. Callables that are
not plain Python functions (builtins, partials, objects with ``__call__``), and
functions with a parameter whose name the template uses, get the generic
``(*args, **kwargs)`` form of the same code.

The template needs nothing but the `CallPath` it is given: the core's few
public fields and the face's admission and settlement functions. The
generated source lives in ``linecache``, so tracebacks show its lines.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import linecache
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._core import CircuitState
from ._nesting import CALL_PATHS, ENTERED

if TYPE_CHECKING:
    from ._core import BreakerCore
    from ._policy import Outcome

__all__ = ["CallPath", "call_function", "wrap"]

_TEMPLATE = """\
def _factory(_fn, _path):
    _core = _path.core
    _now = _path.now
    _admit = _path.admit
    _settle = _path.settle
    _settle_error = _path.settle_error
    _name = _path.name
    _rejection = _path.rejection
    _OPEN = _path.open_state

    {async_}def {name}({params}):
        _ticket = _core.fast
        if _ticket is not None:
            # Closed, and a success would change nothing but a count: no clock, no lock.
            try:
                _result = {await_}_fn({args})
            except BaseException as _error:
                {await_}_settle_error(_ticket, _error, 0.0, _now())
                raise
            _core.fast_successes += 1
            return _result
        _start = _now()
        if _core.state is _OPEN and _start < _core.open_until:
            # The common rejection, raised from this frame: no lock, no further call.
            _core.rejections += 1
            raise _rejection(_name, _core.open_until - _start)
        _ticket = {await_}_admit(_start)
        _start = _now()
        # Calls of this breaker made inside this one, while it is in flight, run on
        # its admission (NESTED).
        _mark = object()
        _core.inside[_mark] = None
        _entered = _ENTERED.set((*_ENTERED.get(), _mark))
        try:
            _result = {await_}_fn({args})
        except BaseException as _error:
            _ENTERED.reset(_entered)
            _core.inside.pop(_mark, None)
            _end = _now()
            {await_}_settle_error(_ticket, _error, _end - _start, _end)
            raise
        _ENTERED.reset(_entered)
        _core.inside.pop(_mark, None)
        _end = _now()
        {await_}_settle(_ticket, _core.judge_result(_result), _end - _start, _end, None)
        return _result

    return {name}
"""

# Names the template binds inside the generated function: a decorated function
# with a parameter of one of these names gets the generic form.
_RESERVED = frozenset(
    {"_fn", "_path", "_core", "_now", "_admit", "_settle", "_settle_error", "_name"}
    | {"_rejection", "_OPEN", "_ticket", "_result", "_error", "_start", "_end", "_factory"}
    | {"_ENTERED", "_entered", "_mark"}
)
_GENERIC: tuple[str, str, dict[str, Any]] = ("*args, **kwargs", "*args, **kwargs", {})
_serial = itertools.count()


@dataclass(frozen=True, slots=True)
class CallPath:
    """What the generated call path works with: one per breaker and face.

    ``admit(now)`` returns a ticket or raises the rejection; ``settle`` and
    ``settle_error`` record an outcome (coroutine functions on the asyncio
    face). ``rejection(name, retry_after)`` builds the error of the common
    rejection, which the template raises itself while ``core.state`` is OPEN
    and ``now`` is before ``core.open_until``.
    """

    core: BreakerCore
    now: Callable[[], float]
    admit: Callable[[float], Any]
    settle: Callable[[int, Outcome, float, float, float | None], Any]
    settle_error: Callable[[int, BaseException, float, float], Any]
    name: str
    rejection: Callable[[str, float], BaseException]
    open_state: CircuitState = CircuitState.OPEN


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
        if p.name in _RESERVED or p.name.startswith("_default_") or not p.name.isidentifier():
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
            key = f"_default_{index}"
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


def _factory(
    *, is_async: bool, name: str, params: str, args: str, defaults: dict[str, Any], label: str
) -> Callable[[Any, CallPath], Callable[..., Any]]:
    source = _TEMPLATE.format(
        async_="async " if is_async else "",
        await_="await " if is_async else "",
        name=name,
        params=params,
        args=args,
    )
    filename = f"{CALL_PATHS}{label} #{next(_serial)}>"
    namespace: dict[str, Any] = dict(defaults, _ENTERED=ENTERED)
    exec(compile(source, filename, "exec"), namespace)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    factory: Callable[[Any, CallPath], Callable[..., Any]] = namespace["_factory"]
    return factory


@functools.cache
def _call_factory(is_async: bool) -> Callable[[Any, CallPath], Callable[..., Any]]:
    name = "call_async" if is_async else "call"
    # ``_fn`` is the first parameter here: it shadows the factory's (unused) one.
    params = "_fn, /, *args, **kwargs"
    return _factory(
        is_async=is_async, name=name, params=params, args="*args, **kwargs", defaults={}, label=name
    )


def call_function(path: CallPath, *, is_async: bool) -> Callable[..., Any]:
    """``call(fn, /, *args, **kwargs)`` (or ``call_async``) running the call path of ``path``."""
    return _call_factory(is_async)(None, path)


def wrap(fn: Callable[..., Any], path: CallPath, *, is_async: bool) -> Callable[..., Any]:
    """The decorator's wrapper around ``fn``, with ``fn``'s parameter list."""
    params, args, defaults = _parameters(fn)
    name = getattr(fn, "__name__", "wrapper")
    if not isinstance(name, str) or not name.isidentifier() or name in _RESERVED:
        name = "wrapper"
    factory = _factory(
        is_async=is_async,
        name=name,
        params=params,
        args=args,
        defaults=defaults,
        label=f"wrapper of {name}",
    )
    return factory(fn, path)
