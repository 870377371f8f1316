"""Closures, early closes and late opens added at run time, shared by the NYSE calendars."""

from __future__ import annotations

import threading
import weakref
from datetime import date
from typing import TYPE_CHECKING

from ._rules import _rule_session

if TYPE_CHECKING:
    from ._nyse import NYSECalendar


class _Additions:
    """Closures, early closes and late opens added at run time to one exchange.

    Shared by every calendar of that exchange in the process: an addition
    rebuilds each of them (they register themselves on construction).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.closures: set[int] = set()
        self.closes: dict[int, int] = {}  # ordinal -> seconds after local midnight
        self.opens: dict[int, int] = {}
        self.calendars: weakref.WeakSet[NYSECalendar] = weakref.WeakSet()

    def snapshot(self) -> tuple[frozenset[int], dict[int, int], dict[int, int]]:
        with self.lock:
            return frozenset(self.closures), dict(self.opens), dict(self.closes)

    def hours(self, day: date) -> tuple[int, int] | None:
        """The day's ``(open, close)`` after the additions so far, or ``None`` when closed."""
        ordinal = day.toordinal()
        hours = None if ordinal in self.closures else _rule_session(day)
        if hours is None:
            return None
        return self.opens.get(ordinal, hours[0]), self.closes.get(ordinal, hours[1])

    def apply(self) -> None:
        """Rebuild every calendar of the exchange (called after each change, outside the lock)."""
        for calendar in list(self.calendars):
            calendar._rebuild()

    def clear(self) -> None:
        """Forget every addition (for tests that must leave the process as they found it)."""
        with self.lock:
            self.closures.clear()
            self.closes.clear()
            self.opens.clear()
        self.apply()


_NYSE_ADDITIONS = _Additions()
