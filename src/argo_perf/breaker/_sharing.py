"""A breaker's side of a shared state: the probe lease, publishing and adopting openings.

A [CircuitBreaker][argo_perf.breaker.CircuitBreaker] built with ``shared=``
hands its admission and settlement to a `SharedCircuit`, which runs the same
core decisions as the local breaker and adds the talk with the
`RedisBreakerState`: a half-open probe must also hold the shared probe lease,
a trip of its own is published, a failure asks whether another process opened
the circuit. A local breaker never builds one, so its call path pays nothing
for the option.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ._core import REJECTED, BreakerCore, CircuitState, Transition
from ._nesting import NESTED, nested_failure
from ._policy import Outcome

if TYPE_CHECKING:
    from ._shared import RedisBreakerState

__all__ = ["SharedCircuit", "check_shared"]

_OPEN = CircuitState.OPEN
_CLOSED = CircuitState.CLOSED
_HALF_OPEN = CircuitState.HALF_OPEN
_FAILURE = Outcome.FAILURE
_IGNORED = Outcome.IGNORED
_LOCAL_TRIPS = frozenset({"tripped", "probe failed"})
_PUBLISH = "publish"
_RELEASE = "release"
_WITHDRAW = "withdraw"


class SharedCircuit:
    """One breaker's admission and settlement when its openings are shared.

    Args:
        shared: the state shared with other processes.
        core: the breaker's core.
        name: the breaker's name (the key in the shared state).
        probe_timeout: how long a probe may hold the shared lease; the breaker
            sets `probe_timeout` again when it is reconfigured.
        notify: tells the breaker's log and listeners of a transition.
        telling: the breaker's lock around telling (sync face), so listeners
            hear transitions in the order they happened.
    """

    __slots__ = (
        "_core",
        "_cut_off",
        "_held",
        "_name",
        "_notify",
        "_published",
        "_shared",
        "_telling",
        "_token",
        "probe_timeout",
    )

    def __init__(
        self,
        shared: RedisBreakerState,
        core: BreakerCore,
        name: str,
        probe_timeout: float,
        notify: Callable[[Transition], None],
        telling: threading.RLock,
        held: ContextVar[Any],
    ) -> None:
        self._shared = shared
        self._core = core
        self._name = name
        self._token = os.urandom(8).hex()
        # The open-until instant (Redis time, ms) of this breaker's latest
        # published opening, 0 for none: a reset withdraws it while it is in force.
        self._published = 0
        self.probe_timeout = probe_timeout
        self._notify = notify
        self._telling = telling
        self._held = held  # the breaker's ``with`` blocks (see `nested_failure`)
        # Probe tickets whose lease request Redis did not answer: their settlement
        # does not ask again, so one call waits for at most one socket timeout.
        self._cut_off: set[int] = set()

    # -- admission ----------------------------------------------------------------

    def lease(self, ticket: int, now: float) -> int:
        """``ticket`` from the core's admission, once a probe holds the shared lease too.

        `REJECTED` when another process reopened the circuit or holds the probe.
        """
        if not self._needs_lease(ticket):
            return ticket
        outages = self._shared._outage_count()
        try:
            answer = self._shared.acquire_probe(self._name, self._token, self.probe_timeout)
        except BaseException:
            self._core.release(ticket)  # interrupted: the permit must not stay taken
            raise
        return self._apply_lease(ticket, now, answer, outages)

    async def lease_async(self, ticket: int, now: float) -> int:
        """The asyncio form of `lease`: the probe lease is asked for without blocking."""
        if not self._needs_lease(ticket):
            return ticket
        outages = self._shared._outage_count()
        try:
            answer = await self._shared.acquire_probe_async(
                self._name, self._token, self.probe_timeout
            )
        except BaseException:
            self._core.release(ticket)  # cancelled: the permit must not stay taken
            raise
        return self._apply_lease(ticket, now, answer, outages)

    def _needs_lease(self, ticket: int) -> bool:
        """True when an admitted probe must also hold the shared probe lease."""
        return ticket != REJECTED and self._core.is_probe(ticket)

    def _apply_lease(
        self, ticket: int, now: float, answer: tuple[bool, float] | None, outages: int
    ) -> int:
        if answer is None or answer[0]:
            if self._shared._outage_count() != outages:
                # Redis did not answer: the probe's settlement does not ask again (a
                # second timeout in one call). Tickets settled or given up meanwhile
                # are dropped here.
                core = self._core
                self._cut_off = {t for t in self._cut_off if core.is_probe(t)}
                self._cut_off.add(ticket)
            return ticket  # granted, or Redis unusable: the local breaker decides
        core = self._core
        core.release(ticket)
        core.rejections += 1
        # Another process reopened the circuit or holds the probe: stay open that long.
        core.hold_open(answer[1], now, "opened elsewhere")
        if core.pending:
            self.announce()
        return REJECTED

    # -- settlement ---------------------------------------------------------------
    #
    # Each decision lives in one helper (`_settle_core`, `_asks_redis`,
    # `_hold_open`, `_redis_effect`); the two faces only run them and do their I/O.

    def settle(
        self, ticket: int, outcome: Outcome, duration: float, now: float, retry_after: float | None
    ) -> None:
        """Settle the call of ``ticket``, then tell or ask the other processes."""
        if ticket == NESTED:
            return
        shared = self._shared
        if ticket in self._cut_off:
            self._settle_cut_off(ticket, outcome, duration, now, retry_after)
            return
        if self._settle_core(ticket, outcome, duration, now, retry_after):
            shared.release_probe(self._name, self._token)
        if self._core.pending:
            self.announce()
        elif self._asks_redis(outcome):
            # A failure is already slow: the moment to learn whether another
            # process opened this circuit. The success path never asks Redis.
            remaining = shared.open_remaining(self._name)
            if self._hold_open(remaining, now):
                self.announce()

    def settle_error(self, ticket: int, error: BaseException, duration: float, now: float) -> None:
        """Judge ``error`` and settle the call of ``ticket`` with the verdict."""
        if self._nested(ticket):
            return
        outcome, retry_after = self._core.judge_failure(error)
        self.settle(ticket, outcome, duration, now, retry_after)

    async def settle_async(
        self, ticket: int, outcome: Outcome, duration: float, now: float, retry_after: float | None
    ) -> None:
        """The asyncio form of `settle`."""
        if ticket == NESTED:
            return
        shared = self._shared
        if ticket in self._cut_off:
            self._settle_cut_off(ticket, outcome, duration, now, retry_after)
            return
        if self._settle_core(ticket, outcome, duration, now, retry_after):
            await shared.release_probe_async(self._name, self._token)
        if self._core.pending:
            await self._announce_async()
        elif self._asks_redis(outcome):
            remaining = await shared.open_remaining_async(self._name)
            if self._hold_open(remaining, now):
                await self._announce_async()

    async def settle_error_async(
        self, ticket: int, error: BaseException, duration: float, now: float
    ) -> None:
        """The asyncio form of `settle_error`."""
        if self._nested(ticket):
            return
        outcome, retry_after = self._core.judge_failure(error)
        await self.settle_async(ticket, outcome, duration, now, retry_after)

    def _nested(self, ticket: int) -> bool:
        """A failure on the fast path inside another call of this breaker (see `_nesting`)."""
        return nested_failure(ticket, self._core, self._held)

    def _settle_core(
        self, ticket: int, outcome: Outcome, duration: float, now: float, retry_after: float | None
    ) -> bool:
        """Settle in the core; True when the shared probe lease must be given back."""
        core = self._core
        # An ignored probe (cancelled, released) also gives the shared lease back.
        lease = outcome is _IGNORED and core.is_probe(ticket)
        core.settle(ticket, outcome, duration, now, retry_after)
        return lease

    def _settle_cut_off(
        self, ticket: int, outcome: Outcome, duration: float, now: float, retry_after: float | None
    ) -> None:
        """Settle a probe whose lease request Redis did not answer, without Redis.

        It holds no lease to give back; an opening it causes is not published
        (counted in the shared state's ``skipped``), and the listeners hear of it.
        """
        self._cut_off.discard(ticket)
        self._settle_core(ticket, outcome, duration, now, retry_after)
        with self._telling:
            for transition in self._core.take_pending():
                if _redis_effect(transition) is not None:
                    self._shared._count_skipped()
                self._notify(transition)

    def _asks_redis(self, outcome: Outcome) -> bool:
        """True when a settled call should learn whether another process opened the circuit."""
        return outcome is _FAILURE and self._core.state is _CLOSED

    def _hold_open(self, remaining: float | None, now: float) -> bool:
        """Stay open as long as another process said; True when that changed the state."""
        return remaining is not None and self._core.hold_open(remaining, now, "opened elsewhere")

    # -- announcements ------------------------------------------------------------

    def announce(self) -> None:
        """Tell the other processes and the breaker's listeners of the pending transitions."""
        shared = self._shared
        with self._telling:  # Redis is told inside too: bounded by its socket timeout
            for transition in self._core.take_pending():
                effect = _redis_effect(transition)
                if effect is _PUBLISH:
                    self._published = shared.publish_open(
                        self._name, self._token, transition.open_for
                    )
                elif effect is _WITHDRAW:
                    shared.withdraw_open(self._name, self._token, self._take_published())
                elif effect is _RELEASE:
                    shared.release_probe(self._name, self._token)
                self._notify(transition)

    def _take_published(self) -> int:
        """The opening to withdraw (0 for none); withdrawn once."""
        until, self._published = self._published, 0
        return until

    async def _announce_async(self) -> None:
        shared = self._shared
        pending = self._core.take_pending()
        for index, transition in enumerate(pending):
            effect = _redis_effect(transition)
            try:
                if effect is _PUBLISH:
                    self._published = await shared.publish_open_async(
                        self._name, self._token, transition.open_for
                    )
                elif effect is _RELEASE:  # (a reset, which withdraws, is told by `announce`)
                    await shared.release_probe_async(self._name, self._token)
            except BaseException:
                # Cancelled while talking to Redis: the listeners still hear of
                # every transition already taken from the core.
                for untold in pending[index:]:
                    self._notify(untold)
                raise
            self._notify(transition)


def _redis_effect(transition: Transition) -> str | None:
    """What a transition tells the other processes: publish or withdraw an opening, free
    the lease, or nothing."""
    if transition.new is _CLOSED and transition.reason == "reset":
        return _WITHDRAW  # our own opening, if still in force, and our lease
    if transition.new is _OPEN and transition.reason in _LOCAL_TRIPS:
        return _PUBLISH  # a trip of our own (not one learned from Redis)
    if transition.old is _HALF_OPEN and transition.new is _CLOSED:
        return _RELEASE  # the probes succeeded: the lease is no longer needed
    return None


def check_shared(shared: object) -> None:
    """Raise `ConfigError` unless ``shared`` is None or a `RedisBreakerState`."""
    if shared is None:
        return
    from ._shared import RedisBreakerState

    if not isinstance(shared, RedisBreakerState):
        raise ConfigError("shared", shared, "must be a RedisBreakerState or None")
