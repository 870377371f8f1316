"""The faces of the circuit breaker: call, call_async, decorator, context managers, permits.

All of them drive one :class:`~argo_perf.breaker._core.BreakerCore`. No lock is
ever held while the protected call runs: the core is consulted before the call
(admission) and after it (settlement), each time for a few attribute updates.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import os
from collections.abc import (
    Awaitable,
    Callable,
    Coroutine,
)
from contextvars import ContextVar
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast, overload

from typing_extensions import ParamSpec, Self

from ..clock import Clock, SystemClock
from ..errors import ConfigError, _Rejection
from ._core import REJECTED, BreakerCore, CircuitBreakerConfig, CircuitState, Transition
from ._policy import Outcome
from ._stats import BreakerMetrics, BreakerStats
from ._streams import wrap_async_generator, wrap_generator
from ._wrapper import CallPath, call_function, wrap

if TYPE_CHECKING:
    from ._shared import RedisBreakerState

__all__ = ["AsyncCall", "CircuitBreaker", "Listener", "Permit", "SyncCall"]

logger = logging.getLogger("argo_perf.breaker")

P = ParamSpec("P")
R = TypeVar("R")

Listener = Callable[[Transition], object]
"""A function called with each :class:`Transition` (outside any lock; errors are logged)."""

_OPEN = CircuitState.OPEN
_CLOSED = CircuitState.CLOSED
_HALF_OPEN = CircuitState.HALF_OPEN
_FAILURE = Outcome.FAILURE
_SUCCESS = Outcome.SUCCESS
_IGNORED = Outcome.IGNORED
_LOCAL_TRIPS = frozenset({"tripped", "probe failed"})
_METRICS_FIELDS = tuple(f.name for f in dataclasses.fields(BreakerMetrics))


class SyncCall(Protocol):
    """The type of [CircuitBreaker.call][argo_perf.breaker.CircuitBreaker.call]."""

    def __call__(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R: ...


class AsyncCall(Protocol):
    """The type of [CircuitBreaker.call_async][argo_perf.breaker.CircuitBreaker.call_async]."""

    def __call__(
        self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> Awaitable[R]: ...


class CircuitBreaker:
    """A circuit breaker around calls to one dependency (a vendor, an endpoint).

    CLOSED lets calls through and records their outcomes; when a trip rule
    fires it opens, and OPEN rejects calls with a new
    :class:`~argo_perf.errors.CircuitOpenError` (carrying ``name`` and
    ``retry_after``) without running them. Once the open time is over the
    breaker is HALF_OPEN: ``half_open_permits`` probe calls go through and the
    other callers are rejected at once; ``success_threshold`` successful probes
    close it, a failed probe opens it again. The call that trips the circuit
    re-raises its own error.

    Use it as ``breaker.call(fn, *args)``, ``await breaker.call_async(fn, *args)``,
    as a decorator on sync or async functions (signatures are kept), as
    ``with breaker:`` / ``async with breaker:``, or through the non-raising
    permit API (:meth:`try_acquire`) for streams and websockets. All faces are
    thread-safe and share one state machine; no lock is held while a protected
    call runs, and listeners run outside the lock with their errors logged.

    Args:
        name: the dependency's name (shown in errors, logs and metrics).
        config: a :class:`CircuitBreakerConfig` (default: the seed's
            ``failure_threshold=5, success_threshold=2, timeout=60.0``).
        clock: time source (default :class:`~argo_perf.clock.SystemClock`).
        shared: a :class:`~argo_perf.breaker.RedisBreakerState` to share
            openings and probes with other processes (default: local only).
        listeners: functions called with each :class:`Transition`.

    Raises:
        ConfigError: an empty ``name``, a ``config`` that is not a
            :class:`CircuitBreakerConfig`, a ``shared`` that is not a
            :class:`~argo_perf.breaker.RedisBreakerState`, a listener that is
            not callable.

    Example:
        >>> breaker = CircuitBreaker("massive", CircuitBreakerConfig(failure_threshold=2))
        >>> @breaker
        ... def fetch_price(symbol: str) -> float:
        ...     return 101.5
        >>> fetch_price("AAPL")
        101.5
        >>> breaker.state
        <CircuitState.CLOSED: 'closed'>
    """

    call: SyncCall
    """Run `fn(*args, **kwargs)` through the breaker and return its result.

    `breaker.call(fn, *args, **kwargs)`: `fn` runs unless the circuit is open;
    whatever it raises is re-raised unchanged (also by the call that trips the
    circuit). An open circuit raises `CircuitOpenError` and `fn` does not run.

    Example:
        ```python
        CircuitBreaker("xai").call(len, "abc")  # 3
        ```
    """

    call_async: AsyncCall
    """Await `fn(*args, **kwargs)` through the breaker and return its result.

    `await breaker.call_async(fn, *args, **kwargs)`, the asyncio form of
    [call][argo_perf.breaker.CircuitBreaker.call]. A cancelled call
    (`asyncio.CancelledError`) counts for nothing and a cancelled probe gives
    its permit back; an open circuit raises `CircuitOpenError` and `fn` is
    not called.
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
        _check_shared(shared)
        _check_listeners(listeners)
        self.name = name
        self.config = config
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._now: Callable[[], float] = self._clock.monotonic
        self._core = BreakerCore(name, config)
        self._listeners: list[Listener] = list(listeners)
        self._shared = shared
        self._token = os.urandom(8).hex()
        self._held: ContextVar[tuple[int, float, Any] | None] = ContextVar(
            f"argo_perf.breaker.{name}", default=None
        )
        # One call path (see _wrapper), spelled for each face.
        self._sync_path = CallPath(
            self._core,
            self._now,
            self._admit_at,
            self._settle,
            self._settle_error,
            name,
            _Rejection,
        )
        self._async_path = CallPath(
            self._core,
            self._now,
            self._admit_at_async,
            self._settle_async,
            self._settle_error_async,
            name,
            _Rejection,
        )
        self.call = cast(SyncCall, call_function(self._sync_path, is_async=False))
        self.call_async = cast(AsyncCall, call_function(self._async_path, is_async=True))

    # -- state and control --------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        """The current state.

        An open circuit whose open time is over is HALF_OPEN, and the first
        read that sees it so makes the move: listeners hear ``OPEN ->
        HALF_OPEN`` ("timeout elapsed") then, whether the read was this
        property, :meth:`metrics`, a call, or :meth:`reset` and friends.
        """
        core = self._core
        if core.state is _OPEN and core.catch_up(self._now()):
            self._announce()
        return core.state

    def _catch_up(self) -> None:
        if self._core.catch_up(self._now()):
            self._announce()

    def force_open(self) -> None:
        """Reject every call (``retry_after`` is ``inf``) until :meth:`reset`."""
        self._catch_up()
        self._core.force_open()
        self._announce()

    def disable(self) -> None:
        """Admit every call and keep recording outcomes, but never open, until :meth:`reset`."""
        self._catch_up()
        self._core.disable()
        self._announce()

    def reset(self) -> None:
        """Close the circuit, clear the trip rules, end :meth:`force_open` / :meth:`disable`.

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

        Example:
            >>> breaker = CircuitBreaker("alpha_vantage")
            >>> @breaker
            ... async def fetch_quote(symbol: str) -> dict[str, float]:
            ...     return {"price": 1.0}
        """
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
        """Admit the block (or raise :class:`CircuitOpenError`); its exception is judged on exit."""
        ticket = self._admit()
        self._held.set((ticket, self._now(), self._held.get()))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        ticket, start, now = self._release_held()
        if exc is None:
            self._settle(ticket, _SUCCESS, now - start, now, None)
        else:
            self._settle_error(ticket, exc, now - start, now)

    async def __aenter__(self) -> Self:
        """The asyncio form of ``with breaker:``."""
        ticket = await self._admit_async()
        self._held.set((ticket, self._now(), self._held.get()))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        ticket, start, now = self._release_held()
        if exc is None:
            await self._settle_async(ticket, _SUCCESS, now - start, now, None)
        else:
            await self._settle_error_async(ticket, exc, now - start, now)

    def _release_held(self) -> tuple[int, float, float]:
        held = self._held.get()
        if held is None:
            raise RuntimeError(f"circuit {self.name!r}: exit without a matching enter")
        ticket, start, parent = held
        self._held.set(parent)
        return ticket, start, self._now()

    # -- the permit API -----------------------------------------------------------

    def try_acquire(self) -> Permit | None:
        """Ask for a permit without raising: a :class:`Permit`, or None when rejected.

        For streams and websockets, where the protected work is not one call:
        report how it went with :meth:`Permit.on_success`,
        :meth:`Permit.on_failure` or :meth:`Permit.release`.

        Example:
            >>> breaker = CircuitBreaker("sonar")
            >>> permit = breaker.try_acquire()
            >>> permit is not None
            True
            >>> permit.on_success()
        """
        now = self._now()
        ticket = self._admit_local(now)
        if self._needs_lease(ticket):
            ticket = self._lease(ticket, now)
        if ticket == REJECTED:
            return None
        return Permit(self, ticket, now)

    # -- admission ----------------------------------------------------------------

    def _admit(self) -> int:
        return self._admit_at(self._now())

    def _admit_at(self, now: float) -> int:
        """A ticket for a call admitted at ``now``; raises the rejection otherwise."""
        ticket = self._admit_local(now)
        if self._needs_lease(ticket):
            ticket = self._lease(ticket, now)
        return self._granted(ticket, now)

    async def _admit_async(self) -> int:
        return await self._admit_at_async(self._now())

    async def _admit_at_async(self, now: float) -> int:
        """The asyncio form of `_admit_at`: the probe lease is asked for without blocking."""
        if self._shared is None:
            return self._admit_at(now)
        ticket = self._admit_local(now)
        if self._needs_lease(ticket):
            ticket = await self._lease_async(ticket, now)
        return self._granted(ticket, now)

    def _needs_lease(self, ticket: int) -> bool:
        """True when an admitted probe must also hold the shared probe lease."""
        return ticket != REJECTED and self._shared is not None and self._core.is_probe(ticket)

    def _granted(self, ticket: int, now: float) -> int:
        """``ticket``, or the rejection raised when the call was not admitted."""
        if ticket == REJECTED:
            raise _Rejection(self.name, self._core.rejection_retry_after(now))
        return ticket

    def _admit_local(self, now: float) -> int:
        core = self._core
        ticket = core.admit(now)
        if core.pending:
            self._announce()
        return ticket

    def _lease(self, ticket: int, now: float) -> int:
        assert self._shared is not None
        try:
            answer = self._shared.acquire_probe(self.name, self._token, self.config.probe_timeout)
        except BaseException:
            self._core.release(ticket)  # interrupted: the permit must not stay taken
            raise
        return self._apply_lease(ticket, now, answer)

    async def _lease_async(self, ticket: int, now: float) -> int:
        assert self._shared is not None
        try:
            answer = await self._shared.acquire_probe_async(
                self.name, self._token, self.config.probe_timeout
            )
        except BaseException:
            self._core.release(ticket)  # cancelled: the permit must not stay taken
            raise
        return self._apply_lease(ticket, now, answer)

    def _apply_lease(self, ticket: int, now: float, answer: tuple[bool, float] | None) -> int:
        if answer is None or answer[0]:
            return ticket  # granted, or Redis unusable: the local breaker decides
        core = self._core
        core.release(ticket)
        core.rejections += 1
        # Another process reopened the circuit or holds the probe: stay open that long.
        core.hold_open(answer[1], now, "opened elsewhere")
        if core.pending:
            self._announce()
        return REJECTED

    # -- settlement ---------------------------------------------------------------
    #
    # Each decision lives in one helper (`_settle_core`, `_asks_redis`,
    # `_hold_open`, `_redis_effect`); the two faces only run them and do their I/O.

    def _settle_error(self, ticket: int, error: BaseException, duration: float, now: float) -> None:
        outcome, retry_after = self._core.judge_failure(error)
        self._settle(ticket, outcome, duration, now, retry_after)

    def _settle(
        self,
        ticket: int,
        outcome: Outcome,
        duration: float,
        now: float,
        retry_after: float | None,
    ) -> None:
        shared = self._shared
        if self._settle_core(ticket, outcome, duration, now, retry_after):
            assert shared is not None
            shared.release_probe(self.name, self._token)
        if self._core.pending:
            self._announce()
        elif self._asks_redis(outcome):
            assert shared is not None
            # A failure is already slow: the moment to learn whether another
            # process opened this circuit. The success path never asks Redis.
            remaining = shared.open_remaining(self.name)
            if self._hold_open(remaining, now):
                self._announce()

    async def _settle_error_async(
        self, ticket: int, error: BaseException, duration: float, now: float
    ) -> None:
        outcome, retry_after = self._core.judge_failure(error)
        await self._settle_async(ticket, outcome, duration, now, retry_after)

    async def _settle_async(
        self,
        ticket: int,
        outcome: Outcome,
        duration: float,
        now: float,
        retry_after: float | None,
    ) -> None:
        shared = self._shared
        if shared is None:
            self._settle(ticket, outcome, duration, now, retry_after)
            return
        if self._settle_core(ticket, outcome, duration, now, retry_after):
            await shared.release_probe_async(self.name, self._token)
        if self._core.pending:
            await self._announce_async()
        elif self._asks_redis(outcome):
            remaining = await shared.open_remaining_async(self.name)
            if self._hold_open(remaining, now):
                await self._announce_async()

    def _settle_core(
        self,
        ticket: int,
        outcome: Outcome,
        duration: float,
        now: float,
        retry_after: float | None,
    ) -> bool:
        """Settle in the core; True when the shared probe lease must be given back."""
        core = self._core
        # An ignored probe (cancelled, released) also gives the shared lease back.
        lease = self._shared is not None and outcome is _IGNORED and core.is_probe(ticket)
        core.settle(ticket, outcome, duration, now, retry_after)
        return lease

    def _asks_redis(self, outcome: Outcome) -> bool:
        """True when a settled call should learn whether another process opened the circuit."""
        return self._shared is not None and outcome is _FAILURE and self._core.state is _CLOSED

    def _hold_open(self, remaining: float | None, now: float) -> bool:
        """Stay open as long as another process said; True when that changed the state."""
        return remaining is not None and self._core.hold_open(remaining, now, "opened elsewhere")

    # -- announcements ------------------------------------------------------------

    def _announce(self) -> None:
        shared = self._shared
        for transition in self._core.take_pending():
            effect = _redis_effect(transition) if shared is not None else None
            if effect is _PUBLISH:
                assert shared is not None
                shared.publish_open(self.name, self._token, transition.open_for)
            elif effect is _RELEASE:
                assert shared is not None
                shared.release_probe(self.name, self._token)
            self._notify(transition)

    async def _announce_async(self) -> None:
        shared = self._shared
        assert shared is not None
        pending = self._core.take_pending()
        for index, transition in enumerate(pending):
            effect = _redis_effect(transition)
            try:
                if effect is _PUBLISH:
                    await shared.publish_open_async(self.name, self._token, transition.open_for)
                elif effect is _RELEASE:
                    await shared.release_probe_async(self.name, self._token)
            except BaseException:
                # Cancelled while talking to Redis: the listeners still hear of
                # every transition already taken from the core.
                for untold in pending[index:]:
                    self._notify(untold)
                raise
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


class Permit:
    """Permission for one unit of protected work, from :meth:`CircuitBreaker.try_acquire`.

    Report the outcome once: :meth:`on_success`, :meth:`on_failure`,
    :meth:`on_result` or :meth:`release` (counts for nothing and gives a
    half-open permit back). Later reports are ignored. Reports made after the
    breaker changed state are counted as stale and do not move the new state.
    """

    __slots__ = ("_breaker", "_done", "_start", "_ticket")

    def __init__(self, breaker: CircuitBreaker, ticket: int, start: float) -> None:
        self._breaker = breaker
        self._ticket = ticket
        self._start = start
        self._done = False

    def _report(self, outcome: Outcome, retry_after: float | None = None) -> None:
        if self._done:
            return
        self._done = True
        breaker = self._breaker
        now = breaker._now()
        breaker._settle(self._ticket, outcome, now - self._start, now, retry_after)

    def on_success(self) -> None:
        """The work succeeded."""
        self._report(_SUCCESS)

    def on_failure(self, error: BaseException | None = None) -> None:
        """The work failed; ``error`` (optional) may carry a server's retry-after."""
        core = self._breaker._core
        self._report(_FAILURE, None if error is None else core.retry_after_of(error))

    def on_result(self, result: object) -> None:
        """Judge a returned value with the configuration's ``failure_if_result``."""
        self._report(self._breaker._core.judge_result(result))

    def release(self) -> None:
        """Give the permit back without judging (cancelled or abandoned work)."""
        self._report(_IGNORED)

    def __repr__(self) -> str:
        return f"Permit(breaker={self._breaker.name!r}, done={self._done})"


_PUBLISH = "publish"
_RELEASE = "release"


def _redis_effect(transition: Transition) -> str | None:
    """What a transition tells the other processes: publish an opening, free the lease, nothing."""
    if transition.new is _OPEN and transition.reason in _LOCAL_TRIPS:
        return _PUBLISH  # a trip of our own (not one learned from Redis)
    if transition.old is _HALF_OPEN and transition.new is _CLOSED:
        return _RELEASE  # the probes succeeded: the lease is no longer needed
    return None


def _check_shared(shared: object) -> None:
    if shared is None:
        return
    from ._shared import RedisBreakerState

    if not isinstance(shared, RedisBreakerState):
        raise ConfigError("shared", shared, "must be a RedisBreakerState or None")


def _check_listeners(listeners: object) -> None:
    if not isinstance(listeners, (tuple, list)) or not all(callable(f) for f in listeners):
        raise ConfigError("listeners", listeners, "must be a tuple or list of callables")
