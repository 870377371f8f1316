"""The faces of the circuit breaker: call, call_async, decorator, context managers, permits.

All of them drive one `argo_perf.breaker._core.BreakerCore`. No lock is
ever held while the protected call runs: the core is consulted before the call
(admission) and after it (settlement), each time for a few attribute updates.
A breaker with ``shared=`` admits and settles through a `SharedCircuit`
instead (see `_sharing`); a local one never looks at it.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import threading
from collections.abc import (
    Awaitable,
    Callable,
    Coroutine,
)
from contextvars import ContextVar
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast, overload

from typing_extensions import ParamSpec, Self

from .. import _validate
from ..clock import Clock, _given_or_system
from ..errors import ConfigError, _Rejection
from ._core import REJECTED, BreakerCore, CircuitBreakerConfig, CircuitState, Transition
from ._listeners import Listener, check_listeners
from ._nesting import NESTED, inside_a_call, nested_failure
from ._permit import Permit
from ._policy import Outcome
from ._sharing import SharedCircuit, check_shared
from ._stats import BreakerMetrics, BreakerStats
from ._streams import wrap_async_generator, wrap_generator
from ._wrapper import CallPath, call_function, wrap

if TYPE_CHECKING:
    from ._shared import RedisBreakerState

__all__ = ["AsyncCall", "CircuitBreaker", "SyncCall"]

logger = logging.getLogger("argo_perf.breaker")

P = ParamSpec("P")
R = TypeVar("R")

_OPEN = CircuitState.OPEN
_SUCCESS = Outcome.SUCCESS
_METRICS_FIELDS = tuple(f.name for f in dataclasses.fields(BreakerMetrics))


class SyncCall(Protocol):
    """The type of [CircuitBreaker.call][argo_perf.breaker.CircuitBreaker.call]."""

    def __call__(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R: ...


class AsyncCall(Protocol):
    """The type of [CircuitBreaker.call_async][argo_perf.breaker.CircuitBreaker.call_async]."""

    def __call__(
        self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> Coroutine[Any, Any, R]: ...


class CircuitBreaker:
    """A circuit breaker around calls to one dependency (a vendor, an endpoint).

    CLOSED lets calls through and records their outcomes; when a trip rule
    fires it opens, and OPEN rejects calls with a new
    `argo_perf.errors.CircuitOpenError` (carrying ``name`` and
    ``retry_after``) without running them. Once the open time is over the
    breaker is HALF_OPEN: ``half_open_permits`` probe calls go through and the
    other callers are rejected at once; ``success_threshold`` successful probes
    close it, a failed probe opens it again. The call that trips the circuit
    re-raises its own error.

    Use it as ``breaker.call(fn, *args)``, ``await breaker.call_async(fn, *args)``,
    as a decorator on sync or async functions (signatures are kept), as
    ``with breaker:`` / ``async with breaker:``, or through the non-raising
    permit API (`try_acquire`) for streams and websockets. All faces are
    thread-safe and share one state machine; no lock is held while a protected
    call runs, and listeners run outside the lock with their errors logged,
    hearing transitions one at a time in the order they happened.

    Args:
        name: the dependency's name (shown in errors, logs and metrics).
        config: a `CircuitBreakerConfig` (default: the seed's
            ``failure_threshold=5, success_threshold=2, timeout=60.0``).
        clock: time source (default `argo_perf.clock.SystemClock`).
        shared: a `argo_perf.breaker.RedisBreakerState` to share
            openings and probes with other processes (default: local only).
        listeners: functions called with each `Transition`.

    Raises:
        ConfigError: an empty ``name``, a ``config`` that is not a
            `CircuitBreakerConfig`, a ``shared`` that is not a
            `argo_perf.breaker.RedisBreakerState`, a listener that is
            not callable.

    Examples:
        >>> breaker = CircuitBreaker("massive", CircuitBreakerConfig(failure_threshold=2))
        >>> @breaker
        ... def fetch_price(symbol: str) -> float:
        ...     return 101.5
        >>> fetch_price("AAPL")
        101.5
        >>> breaker.state
        <CircuitState.CLOSED: 'closed'>
    """

    def __init__(
        self,
        name: str,
        config: CircuitBreakerConfig | None = None,
        *,
        clock: Clock | None = None,
        shared: RedisBreakerState | None = None,
        listeners: tuple[Listener, ...] | list[Listener] = (),
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError("name", name, "must be a non-empty string")
        if config is None:
            config = CircuitBreakerConfig()
        elif not isinstance(config, CircuitBreakerConfig):
            raise ConfigError("config", config, "must be a CircuitBreakerConfig")
        check_shared(shared)
        if shared is not None:
            _validate.hash_tag("name", name)  # the shared keys' hash tag
        check_listeners(listeners)
        self._name = name
        self.config = config
        self._clock: Clock = _given_or_system(clock)
        self._now: Callable[[], float] = self._clock.monotonic
        self._core = core = BreakerCore(name, config)
        self._listeners: list[Listener] = list(listeners)
        # One thread tells at a time (re-entrant: a listener may read the breaker), so
        # listeners hear transitions in the order they happened, never two at once.
        self._telling = threading.RLock()
        # The context managers' (ticket, start, outer, mark) per task; one variable per
        # breaker, so blocks of different breakers may end in any order.
        self._held: ContextVar[tuple[int, float, Any, object] | None] = ContextVar(
            "argo_perf.breaker.held", default=None
        )
        self._link: SharedCircuit | None = None
        if shared is not None:
            self._link = SharedCircuit(
                shared, core, name, config.probe_timeout, self._notify, self._telling, self._held
            )
        # The call paths, `call` and `call_async` are built on first use (cached
        # properties): a registry of thousands of breakers, each called through
        # one face, holds only what it uses.

    def _path(self, *, is_async: bool) -> CallPath:
        # One call path (see _wrapper), spelled for each face. The choice
        # between local and shared admission and settlement is made here, once.
        link = self._link
        if link is None:
            admit, settle, settle_error = (
                (self._admit_at_async, self._settle_async, self._settle_error_async)
                if is_async
                else (self._admit_at, self._settle, self._settle_error)
            )
        else:
            admit, settle, settle_error = (
                (self._admit_shared_async, link.settle_async, link.settle_error_async)
                if is_async
                else (self._admit_shared, link.settle, link.settle_error)
            )
        return CallPath(self._core, self._now, admit, settle, settle_error, self.name, _Rejection)

    @functools.cached_property
    def _sync_path(self) -> CallPath:
        return self._path(is_async=False)

    @functools.cached_property
    def _async_path(self) -> CallPath:
        return self._path(is_async=True)

    @functools.cached_property
    def call(self) -> SyncCall:
        """Run `fn(*args, **kwargs)` through the breaker and return its result.

        `breaker.call(fn, *args, **kwargs)`: `fn` runs unless the circuit is open;
        whatever it raises is re-raised unchanged (also by the call that trips the
        circuit). An open circuit raises `CircuitOpenError` and `fn` does not run.

        Examples:
            ```python
            CircuitBreaker("xai").call(len, "abc")  # 3
            ```
        """
        return cast(SyncCall, call_function(self._sync_path, is_async=False))

    @functools.cached_property
    def call_async(self) -> AsyncCall:
        """Await `fn(*args, **kwargs)` through the breaker and return its result.

        `await breaker.call_async(fn, *args, **kwargs)`, the asyncio form of
        [call][argo_perf.breaker.CircuitBreaker.call]. A cancelled call
        (`asyncio.CancelledError`) counts for nothing and a cancelled probe gives
        its permit back; an open circuit raises `CircuitOpenError` and `fn` is
        not called.
        """
        return cast(AsyncCall, call_function(self._async_path, is_async=True))

    @property
    def name(self) -> str:
        """The dependency's name, as given (read-only: errors, logs, stats and the
        shared state all use it)."""
        return self._name

    # -- state and control --------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        """The current state.

        An open circuit whose open time is over is HALF_OPEN, and the first
        read that sees it so makes the move: listeners hear ``OPEN ->
        HALF_OPEN`` ("timeout elapsed") then, whether the read was this
        property, `metrics`, a call, or `reset` and friends.
        """
        core = self._core
        if core.state is _OPEN and core.catch_up(self._now()):
            self._announce()
        return core.state

    def _catch_up(self) -> None:
        if self._core.catch_up(self._now()):
            self._announce()

    def force_open(self) -> None:
        """Reject every call (``retry_after`` is ``inf``) until `reset`."""
        self._catch_up()
        self._core.force_open()
        self._announce()

    def disable(self) -> None:
        """Admit every call and keep recording outcomes, but never open, until `reset`."""
        self._catch_up()
        self._core.disable()
        self._announce()

    def reset(self) -> None:
        """Close the circuit, clear the trip rules, end `force_open` / `disable`.

        A circuit whose open time was over is reported as moving to HALF_OPEN
        first, then to CLOSED ("reset").
        """
        self._catch_up()
        self._core.reset()
        self._announce()

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(transition)`` on every change of state (outside the lock).

        Raises:
            ConfigError: ``listener`` is not callable.
        """
        if not callable(listener):
            raise ConfigError("listener", listener, "must be callable")
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling ``listener``; a listener that was never added is ignored."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    @property
    def stats(self) -> BreakerStats:
        """A `BreakerStats` snapshot: state, counts, rates, `retry_after`.

        Like [state][argo_perf.breaker.CircuitBreaker.state], a read after the open
        time is over moves the circuit to HALF_OPEN first.
        """
        now = self._now()
        if self._core.catch_up(now):
            self._announce()
        return self._core.stats(now)

    def metrics(self) -> BreakerMetrics:
        """The older form of `stats`, kept for compatibility: prefer `stats`.

        The same values, with the state as a [CircuitState][argo_perf.breaker.CircuitState].
        """
        stats = self.stats
        values = {name: getattr(stats, name) for name in _METRICS_FIELDS}
        values["state"] = CircuitState(stats.state)
        return BreakerMetrics(**values)

    def reconfigure(self, config: CircuitBreakerConfig) -> None:
        """Judge calls and trip by ``config`` from now on.

        The state is kept (an open circuit stays open until its open time is
        over, then probes by the new rules); the trip rules start from empty
        counters; the counts of [stats][argo_perf.breaker.CircuitBreaker.stats] go on.
        Functions decorated earlier follow the new configuration.

        Raises:
            ConfigError: ``config`` is not a `CircuitBreakerConfig`.
        """
        if not isinstance(config, CircuitBreakerConfig):
            raise ConfigError("config", config, "must be a CircuitBreakerConfig")
        self._core.reconfigure(config)
        self.config = config
        if self._link is not None:
            self._link.probe_timeout = config.probe_timeout

    # -- the decorator ------------------------------------------------------------

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, R]]
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...

    @overload
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]: ...

    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate a function so each call goes through the breaker.

        The wrapper keeps ``fn``'s signature for type checkers (ParamSpec), its
        metadata (``functools.wraps``) and its kind: a coroutine function stays
        one, and so do generator and async-generator functions. A generator is
        protected for its whole iteration: admission happens at the first
        ``next`` (an open circuit raises
        `CircuitOpenError` there), an exception
        raised while iterating is judged like a call's, and running to the end
        is a success. A consumer that stops early (``close()``, ``break``)
        counts for nothing and gives a half-open permit back.
        ``wrapper.breaker`` is this breaker.

        Examples:
            >>> breaker = CircuitBreaker("alpha_vantage")
            >>> @breaker
            ... async def fetch_quote(symbol: str) -> dict[str, float]:
            ...     return {"price": 1.0}
        """
        if not callable(fn):
            raise ConfigError("fn", fn, "must be callable")
        if inspect.isfunction(fn) and vars(fn).get("breaker") is self:
            # Our own wrapper (a function; a callable object keeping this breaker in
            # its own .breaker is decorated): one layer judges it.
            return fn
        wrapper: Callable[P, Any]
        if inspect.isgeneratorfunction(fn):
            wrapper = wrap_generator(fn, self._sync_path)
        elif inspect.isasyncgenfunction(fn):
            wrapper = wrap_async_generator(fn, self._async_path)
        else:
            # The wrapper repeats call()/call_async() inline, compiled with fn's own
            # parameters: no Python call and no *args/**kwargs packing on the way
            # in, which is most of what a breaker would otherwise cost.
            wrapper = self._compile(fn)
        functools.update_wrapper(wrapper, fn)
        vars(wrapper)["breaker"] = self
        return wrapper

    def _compile(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        if inspect.iscoroutinefunction(fn):
            return wrap(fn, self._async_path, is_async=True)
        return wrap(fn, self._sync_path, is_async=False)

    # -- context managers ---------------------------------------------------------

    def __enter__(self) -> Self:
        """Admit the block (or raise `CircuitOpenError`); its exception is judged on exit."""
        ticket = self._sync_path.admit(self._now())
        self._enter_block(ticket)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        ticket, start, now = self._release_held()
        if exc is None:
            self._sync_path.settle(ticket, _SUCCESS, now - start, now, None)
        else:
            self._sync_path.settle_error(ticket, exc, now - start, now)

    async def __aenter__(self) -> Self:
        """The asyncio form of ``with breaker:``."""
        ticket = await self._async_path.admit(self._now())
        self._enter_block(ticket)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        ticket, start, now = self._release_held()
        if exc is None:
            await self._async_path.settle(ticket, _SUCCESS, now - start, now, None)
        else:
            await self._async_path.settle_error(ticket, exc, now - start, now)

    def _enter_block(self, ticket: int) -> None:
        mark = object()  # open until its exit (see `_nesting`)
        self._core.inside[mark] = None
        self._held.set((ticket, self._now(), self._held.get(), mark))

    def _release_held(self) -> tuple[int, float, float]:
        held = self._held.get()
        if held is None:
            raise RuntimeError(f"circuit {self.name!r}: exit without a matching enter")
        ticket, start, parent, mark = held
        self._core.inside.pop(mark, None)
        self._held.set(parent)
        return ticket, start, self._now()

    # -- the permit API -----------------------------------------------------------

    def try_acquire(self) -> Permit | None:
        """Ask for a permit without raising: a `Permit`, or None when rejected.

        For streams and websockets, where the protected work is not one call:
        report how it went with `Permit.on_success`,
        `Permit.on_failure` or `Permit.release`.

        Examples:
            >>> breaker = CircuitBreaker("sonar")
            >>> permit = breaker.try_acquire()
            >>> permit is not None
            True
            >>> permit.on_success()
        """
        now = self._now()
        # Never NESTED: a permit may be reported after the call it was taken in ended.
        ticket = self._admit_local(now, nested=False)
        if self._link is not None:
            ticket = self._link.lease(ticket, now)
        if ticket == REJECTED:
            return None
        return Permit(self._sync_path, ticket, now)

    # -- admission ----------------------------------------------------------------
    #
    # Local breakers only: with ``shared=`` the call paths admit through
    # `_admit_shared` and settle through the `SharedCircuit`.

    def _admit_at(self, now: float) -> int:
        """A ticket for a call admitted at ``now``; raises the rejection otherwise."""
        return self._granted(self._admit_local(now), now)

    async def _admit_at_async(self, now: float) -> int:
        return self._admit_at(now)

    def _admit_shared(self, now: float) -> int:
        """`_admit_at` of a shared breaker: a probe also holds the shared probe lease."""
        assert self._link is not None
        ticket = self._link.lease(self._admit_local(now), now)
        return self._granted(ticket, now)

    async def _admit_shared_async(self, now: float) -> int:
        assert self._link is not None
        ticket = await self._link.lease_async(self._admit_local(now), now)
        return self._granted(ticket, now)

    def _granted(self, ticket: int, now: float) -> int:
        """``ticket``, or the rejection raised when the call was not admitted."""
        if ticket == REJECTED:
            raise _Rejection(self.name, self._core.rejection_retry_after(now))
        return ticket

    def _admit_local(self, now: float, *, nested: bool = True) -> int:
        core = self._core
        if nested and inside_a_call(core, self._held):
            return NESTED  # inside a call (or a ``with`` block) of this breaker, in flight
        ticket = core.admit(now)
        if core.pending:
            self._announce()
        return ticket

    # -- settlement ---------------------------------------------------------------

    def _settle_error(self, ticket: int, error: BaseException, duration: float, now: float) -> None:
        core = self._core
        if nested_failure(ticket, core, self._held):
            return  # a nested call on the fast path: the outer call judges the error
        outcome, retry_after = core.judge_failure(error)
        self._settle(ticket, outcome, duration, now, retry_after)

    def _settle(
        self, ticket: int, outcome: Outcome, duration: float, now: float, retry_after: float | None
    ) -> None:
        core = self._core
        core.settle(ticket, outcome, duration, now, retry_after)
        if core.pending:
            self._announce()

    async def _settle_error_async(
        self, ticket: int, error: BaseException, duration: float, now: float
    ) -> None:
        self._settle_error(ticket, error, duration, now)

    async def _settle_async(
        self, ticket: int, outcome: Outcome, duration: float, now: float, retry_after: float | None
    ) -> None:
        self._settle(ticket, outcome, duration, now, retry_after)

    # -- announcements ------------------------------------------------------------

    def _announce(self) -> None:
        if self._link is not None:
            self._link.announce()  # the other processes hear of it too
            return
        with self._telling:
            for transition in self._core.take_pending():
                self._notify(transition)

    def _notify(self, transition: Transition) -> None:
        if transition.new is _OPEN:
            logger.warning(
                "circuit %r opened (%s) for %.3gs",
                self.name,
                transition.reason,
                transition.open_for,
            )
        else:
            logger.info("circuit %r is %s (%s)", self.name, transition.new.value, transition.reason)
        for listener in list(self._listeners):
            try:
                listener(transition)
            except Exception:
                logger.exception("circuit %r: a transition listener raised", self.name)

    def __repr__(self) -> str:
        return f"CircuitBreaker(name={self.name!r}, state={self.state.value})"
