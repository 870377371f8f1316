"""What the cache logs, and how often: recurring problems are counted between log lines.

A planted key is read on every lookup and a vendor outage fails every load:
logging each would flood the log, so each kind of problem logs its first
occurrence, then a count at most once per `REPORT_INTERVAL` seconds.
"""

from __future__ import annotations

import logging
import math
import threading

__all__ = ["REPORT_INTERVAL", "Reports"]

REPORT_INTERVAL = 60.0
"""Seconds between log lines about one kind of recurring problem."""

logger = logging.getLogger("argo_perf.cache")

_INF = math.inf


class _Throttle:
    """When to log a recurring problem: the first time, then at most once per interval.

    A planted or corrupt key is read on every lookup; logging each read would
    flood the log, so the reads in between are only counted.
    """

    __slots__ = ("_lock", "_next", "_unreported")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = -_INF
        self._unreported = 0

    def due(self, now: float) -> int | None:
        """None: stay silent (counted). Else the number of silent ones since the last line
        (0: the first line of a new spell)."""
        with self._lock:
            if now < self._next:
                self._unreported += 1
                return None
            count, self._unreported = self._unreported, 0
            self._next = now + REPORT_INTERVAL
            return count


class Reports:
    """The cache's log lines about Redis and loader trouble, each throttled."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._stale = _Throttle()
        # Refused writes (OOM under noeviction ...): one line when they start, then a
        # count once a minute and when writes are accepted again.
        self._refusing = False
        self._refused = 0
        # Only a spell in which a write was refused ends when a write succeeds: a read
        # refused for good (an ACL without EXISTS) must not start a new spell per write.
        self._writes_refused = False
        self._next_refusal_report = -_INF
        self._unstorable_logged: set[str] = set()
        self._undecodable = _Throttle()
        self._unverified = _Throttle()

    def refused(self, operation: str, exc: object, now: float, *, write: bool = True) -> None:
        """Redis refused a command (OOM, NOPERM ...): log the start of a spell, then counts."""
        with self._lock:
            self._writes_refused = self._writes_refused or write
            if not self._refusing:
                self._refusing = True
                self._refused = 0
                self._next_refusal_report = now + REPORT_INTERVAL
                first = True
            else:
                self._refused += 1
                first = False
                if now < self._next_refusal_report:
                    return
                count, self._refused = self._refused, 0
                self._next_refusal_report = now + REPORT_INTERVAL
        if first:
            logger.warning(
                "redis at %s refused %s: %s (further refusals are counted and reported "
                "once a minute)",
                self.target,
                operation,
                exc,
            )
        else:
            logger.warning(
                "redis at %s refused %d more commands in the last minute (latest %s: %s)",
                self.target,
                count,
                operation,
                exc,
            )

    def accepted(self) -> None:
        """A write reached Redis: end a spell of refused writes, if one is going on."""
        if self._writes_refused:
            with self._lock:
                if not self._writes_refused:
                    return
                self._refusing = self._writes_refused = False
                count, self._refused = self._refused, 0
            logger.warning(
                "redis at %s accepts writes again (%d more refusals since the last report)",
                self.target,
                count,
            )

    def undecodable(self, rkey: str, reason: object, now: float) -> None:
        """A value (or key of another type) that cannot be read."""
        self._report(self._undecodable, "undecodable", rkey, reason, now)

    def unverified(self, rkey: str, reason: object, now: float) -> None:
        """A value whose signature is missing or wrong."""
        self._report(self._unverified, "unverified", rkey, reason, now)

    def unstorable(self, key: str, kind: str, exc: object) -> None:
        """A loaded value the serializer cannot encode: once per type."""
        if kind not in self._unstorable_logged:
            self._unstorable_logged.add(kind)
            logger.warning("not caching %s: %s", key, exc)

    def stale_served(self, exc: BaseException, age: float, now: float) -> None:
        """A loader failed and a stale value was served instead."""
        more = self._stale.due(now)
        if more is None:
            return
        logger.warning(
            "loader failed (%r); serving a value %.3gs old%s",
            exc,
            age,
            f" ({more} more stale values served since the last report)" if more else "",
        )

    def _report(
        self, throttle: _Throttle, what: str, rkey: str, reason: object, now: float
    ) -> None:
        count = throttle.due(now)
        if count is None:
            return
        if count == 0:
            logger.warning(
                "ignoring %s %s from redis at %s: %s (further %s values are counted and "
                "reported once a minute)",
                what,
                rkey,
                self.target,
                reason,
                what,
            )
        else:
            logger.warning(
                "ignored %d more %s values from redis at %s in the last minute (latest %s: %s)",
                count + 1,
                what,
                self.target,
                rkey,
                reason,
            )
