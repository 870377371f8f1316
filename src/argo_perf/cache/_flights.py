"""Single flight: one caller looks a key up (and loads it) on behalf of every caller.

`Flights` is the registry of the keys under way, each with the face's
waitable object (a `threading.Event` holder, an `asyncio.Future`), and counts
the callers that joined one and the early refreshes it started. A flight ends
with a `Landing`, what it found for all its callers. No I/O: the faces run
the flight, `CacheCore` decides what each caller returns from its landing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from .._failure import SharedFailure
from ._entry import Entry
from ._stats import Counters, Source

__all__ = ["Flights", "Landing"]

F = TypeVar("F")


class Landing:
    """What one flight (lookup, then load when needed) found, for every caller that waited on it.

    ``source`` is ``"loader"`` when the loader ran (``error`` set when it raised;
    ``stale`` is then the entry a failed load may fall back on), else the tier
    that held a fresh value (``entry``).
    """

    __slots__ = ("entry", "error", "shared", "source", "stale", "value")

    def __init__(
        self,
        value: Any,
        source: Source,
        entry: Entry | None,
        stale: Entry | None,
        error: Exception | None,
    ) -> None:
        self.value = value
        self.source = source
        self.entry = entry
        self.stale = stale
        self.error = error
        # Every caller raises the one exception, each from the loader's traceback.
        self.shared = None if error is None else SharedFailure(error)

    def failure(self) -> Exception:
        """The loader's exception, with the loader's own traceback, for one caller to raise."""
        assert self.shared is not None
        return self.shared.for_caller()


class Flights:
    """The keys being looked up and loaded (single flight), each with the face's waitable object.

    ``lock`` is the cache's lock, shared with the in-process tier so that one
    critical section reads both for a stats snapshot; ``counters`` are the
    cache's (``coalesced``, ``early_refreshes``).
    """

    __slots__ = ("_counters", "_flights", "_lock")

    def __init__(self, lock: threading.Lock, counters: Counters) -> None:
        self._lock = lock
        self._counters = counters
        self._flights: dict[str, Any] = {}

    def __len__(self) -> int:
        """How many keys are in flight; read under the shared lock for a consistent snapshot."""
        return len(self._flights)

    def join(self, key: str, new: Callable[[], F], usable: Callable[[F], bool]) -> tuple[F, bool]:
        """The flight for ``key`` and whether this caller leads it (started it).

        A caller joins a ``usable`` flight already under way (counted as
        coalesced), else starts one with ``new`` (the face's waitable object).
        """
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None and usable(flight):
                self._counters.coalesced += 1
                return flight, False
            flight = self._flights[key] = new()
            return flight, True

    def start_refresh(self, key: str, new: Callable[[], F]) -> F | None:
        """A flight for an early refresh of ``key``, or None when one is under way."""
        with self._lock:
            if key in self._flights:
                return None
            flight = self._flights[key] = new()
        self._counters.early_refreshes += 1
        return flight

    def land(self, key: str, flight: object) -> None:
        """``flight`` is over: later callers start their own."""
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
