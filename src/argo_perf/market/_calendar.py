"""The calendar interface, its errors and instant checks, and the always-open `CRYPTO`."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from datetime import date, datetime, timedelta

from ..errors import ArgoPerfError
from ._newyork import _DAY, _UTC


class CalendarRangeError(ArgoPerfError, ValueError):
    """A date or instant outside the range a calendar covers.

    `NYSE` covers 2000-01-01 to 2100-12-31 (its later years are built on
    demand); a calendar built with an explicit `last_year` covers fewer. Beyond
    them a query raises this error instead of guessing; so does an instant too
    close to `datetime.min` or `datetime.max` to be converted. It is also a
    `ValueError`.

    Examples:
        >>> from datetime import date
        >>> try:
        ...     NYSE.is_session(date(1999, 12, 31))
        ... except CalendarRangeError as exc:
        ...     print("out of range")
        out of range
    """


class MarketSession(enum.Enum):
    """Which part of the trading day an instant falls in (see `MarketCalendar.session_at`).

    ``PRE`` is pre-market (NYSE 04:00-09:30), ``REGULAR`` the regular session,
    ``POST`` after-hours (NYSE until four hours after the close) and ``CLOSED``
    everything else, including whole holidays and weekends.
    """

    PRE = "pre"
    REGULAR = "regular"
    POST = "post"
    CLOSED = "closed"


def _timestamp(value: object, parameter: str = "dt") -> float:
    """POSIX seconds of an aware datetime; anything else raises, naming ``parameter``."""
    if not isinstance(value, datetime):
        raise TypeError(f"{parameter} must be an aware datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{parameter} must be an aware datetime, got naive {value!r}")
    try:
        return value.timestamp()
    except (OverflowError, ValueError, OSError):
        raise CalendarRangeError(
            f"{parameter}={value.isoformat()} is too close to datetime.min or datetime.max"
        ) from None


_check_aware = _timestamp


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, _UTC)


class MarketCalendar(ABC):
    """When a market trades: the interface shared by `NYSE` and `CRYPTO`.

    Every method that takes a ``datetime`` requires an aware one: a naive
    datetime raises `ValueError`, anything else (a ``date``, a string)
    `TypeError`, both naming the parameter and the value. A session is the
    half-open interval ``[open, close)``: the market is open at the open
    instant and closed at the close instant. Instants are returned as aware UTC
    datetimes. Instants or dates outside the range a calendar covers raise
    `CalendarRangeError`.

    Examples:
        >>> from datetime import datetime, timezone
        >>> NYSE.is_open(datetime(2026, 1, 5, 15, 0, tzinfo=timezone.utc))
        True
        >>> CRYPTO.is_open(datetime(2026, 1, 3, 3, 0, tzinfo=timezone.utc))
        True
    """

    name: str

    @abstractmethod
    def is_session(self, day: date) -> bool:
        """Whether the market trades at all on ``day`` (an exchange-local date)."""

    @abstractmethod
    def session_hours(self, day: date) -> tuple[datetime, datetime] | None:
        """``(open, close)`` of ``day`` as aware UTC datetimes, or ``None`` when not a session."""

    @abstractmethod
    def is_open(self, dt: datetime) -> bool:
        """Whether the market is open at the aware instant ``dt``."""

    @abstractmethod
    def next_open(self, dt: datetime) -> datetime:
        """The first open strictly after ``dt`` (aware UTC)."""

    @abstractmethod
    def next_close(self, dt: datetime) -> datetime:
        """The first close strictly after ``dt`` (aware UTC); the current session's when open."""

    @abstractmethod
    def seconds_until_open(self, dt: datetime) -> float:
        """``0.0`` when the market is open at ``dt``, else the seconds until it next opens."""

    @abstractmethod
    def session_at(self, dt: datetime) -> MarketSession:
        """Which part of the trading day ``dt`` falls in: PRE, REGULAR, POST or CLOSED."""


def _check_day(day: object, parameter: str = "day") -> date:
    if not isinstance(day, date):
        raise TypeError(f"{parameter} must be a date or an aware datetime, got {day!r}")
    return day


class _AlwaysOpenCalendar(MarketCalendar):
    """A market that never closes (crypto): every UTC day is a session.

    `is_open` is always true and `session_at` always
    ``MarketSession.REGULAR``. Sessions are UTC days, so `next_open` and
    `next_close` are the next UTC midnight; `seconds_until_open` is always
    ``0.0``. Naive datetimes still raise `ValueError`; the last UTC day
    (9999-12-31) has no next midnight, so `next_open` and `next_close`
    raise `CalendarRangeError` there.

    Examples:
        >>> from datetime import date
        >>> CRYPTO.is_session(date(2026, 12, 25))
        True
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def is_session(self, day: date) -> bool:
        if isinstance(_check_day(day), datetime):
            _timestamp(day, "day")
        return True

    def session_hours(self, day: date) -> tuple[datetime, datetime] | None:
        if isinstance(_check_day(day), datetime):
            ts = _timestamp(day, "day")
            start_ts = (ts // _DAY) * _DAY
            try:
                return _utc(start_ts), _utc(start_ts + _DAY)
            except (OverflowError, ValueError, OSError):
                raise CalendarRangeError(f"day={day.isoformat()} has no whole UTC day") from None
        start = datetime(day.year, day.month, day.day, tzinfo=_UTC)
        if day == date.max:
            raise CalendarRangeError(f"day={day.isoformat()} has no end within datetime's range")
        return start, start + timedelta(days=1)

    def is_open(self, dt: datetime) -> bool:
        _timestamp(dt)
        return True

    def _next_midnight(self, dt: datetime, what: str) -> datetime:
        ts = _timestamp(dt)
        try:
            return _utc((ts // _DAY + 1) * _DAY)
        except (OverflowError, ValueError, OSError):
            raise CalendarRangeError(
                f"the {what} after dt={dt.isoformat()} is past datetime.max"
            ) from None

    def next_open(self, dt: datetime) -> datetime:
        return self._next_midnight(dt, "next open")

    def next_close(self, dt: datetime) -> datetime:
        return self._next_midnight(dt, "next close")

    def seconds_until_open(self, dt: datetime) -> float:
        _timestamp(dt)
        return 0.0

    def session_at(self, dt: datetime) -> MarketSession:
        _timestamp(dt)
        return MarketSession.REGULAR

    def __repr__(self) -> str:
        return f"<always-open calendar {self.name}>"


CRYPTO: MarketCalendar = _AlwaysOpenCalendar("CRYPTO")
"""Crypto markets: always open (see `MarketCalendar`)."""
