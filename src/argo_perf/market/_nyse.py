"""`NYSECalendar`, the New York Stock Exchange's sessions from its rules, and `NYSE`."""

from __future__ import annotations

import threading
from datetime import date, datetime, time
from typing import Any

from .. import _validate
from ..errors import ConfigError
from ._additions import _NYSE_ADDITIONS
from ._calendar import (
    CalendarRangeError,
    MarketCalendar,
    MarketSession,
    _check_day,
    _timestamp,
    _utc,
)
from ._newyork import _DAY, _EPOCH_ORDINAL, _EST, _HOUR, _UTC, _ny_ordinal
from ._rules import _CLOSE, _MAX_YEAR, _MIN_YEAR, _OPEN
from ._table import _INF, _build_table, _Table

_EMPTY: tuple[float, float, bool] = (0.0, 0.0, False)  # an interval that holds nothing

_FIRST_BUILD_LAST_YEAR = 2035  # an open-ended calendar first builds up to here
_GROWTH_YEARS = 10  # ... and then this many years past the one a query reaches


class NYSECalendar(MarketCalendar):
    """The New York Stock Exchange, computed from its rules (see the module docs).

    Regular session 09:30-16:00 America/New_York; full-day holidays (New
    Year's Day, Martin Luther King Jr. Day, Washington's Birthday, Good
    Friday, Memorial Day, Juneteenth from 2022, Independence Day, Labor Day,
    Thanksgiving, Christmas) observed on the nearest weekday (New Year's Day
    only on the following Monday); 13:00 early closes on July 3rd, the day
    after Thanksgiving and Christmas Eve with their historical exceptions; and
    the special closures since 2000. Matches exchange_calendars' XNYS exactly
    from 2000 to 2100.

    Args:
        extended_hours: when true the trading window is 04:00 to four hours
            after the close (pre-market and after-hours included) for
            `is_open`, `session_hours`, `next_open`, `next_close` and
            `seconds_until_open`. Default false.
        first_year: first year covered (default 2000, the earliest supported).
        last_year: last year covered, at most 2100; ``None`` (the default)
            covers up to 2100, building later years on demand: the first use
            builds up to 2035 (a few tens of milliseconds) and a query beyond
            the years built so far adds ten more years at a time.

    Raises:
        ConfigError: a year outside 2000-2100 or ``first_year > last_year``.

    Closures, early closes and late opens added with `add_closure`,
    `add_early_close` and `add_late_open` apply to every `NYSECalendar` in the
    process (`NYSE` and any extended-hours calendar alike), at once. All
    methods are thread-safe.

    Examples:
        >>> from datetime import date
        >>> cal = NYSECalendar(extended_hours=True)
        >>> cal.is_session(date(2026, 7, 3))  # July 4th is a Saturday
        False
        >>> cal.last_day
        datetime.date(2100, 12, 31)
    """

    name = "NYSE"

    def __init__(
        self,
        *,
        extended_hours: bool = False,
        first_year: int = _MIN_YEAR,
        last_year: int | None = None,
    ) -> None:
        for parameter, value in (("first_year", first_year), ("last_year", last_year)):
            if value is None and parameter == "last_year":
                continue
            _validate.count(parameter, value, minimum=_MIN_YEAR, maximum=_MAX_YEAR)
        if last_year is not None and first_year > last_year:
            raise ConfigError("first_year", first_year, f"must be <= last_year ({last_year})")
        self.extended_hours = _validate.flag("extended_hours", extended_hours)
        self.open_ended = last_year is None
        self.first_day = date(first_year, 1, 1)
        self.last_day = date(_MAX_YEAR if last_year is None else last_year, 12, 31)
        self._first_ordinal = self.first_day.toordinal()
        self._last_ordinal = self.last_day.toordinal()
        self._base = float((self._first_ordinal - _EPOCH_ORDINAL) * _DAY - _EST)
        self._built_to = max(first_year, _FIRST_BUILD_LAST_YEAR) if last_year is None else last_year
        self._built_to = min(self._built_to, self.last_day.year)
        self._lock = threading.Lock()
        self._hot: tuple[float, float, bool] = _EMPTY
        self._utc_days: dict[int, tuple[int, int]] = {}  # the table's, once built
        self._additions = _NYSE_ADDITIONS
        with self._additions.lock:
            self._additions.calendars.add(self)

    # The table is built on first use (see __getattr__) and then replaced as a
    # whole when additions arrive or later years are needed, so readers never
    # see a half-built one.
    _table: _Table

    def __getattr__(self, name: str) -> Any:
        if name != "_table":
            raise AttributeError(name)
        with self._lock:
            table = self.__dict__.get("_table")
            if table is None:
                table = self._build(self._built_to)
                self._table = table
                self._utc_days = table.utc_days
        return table

    def _build(self, last_year: int) -> _Table:
        return _build_table(
            self.first_day, self._base, last_year, self.extended_hours, self._additions.snapshot()
        )

    def _rebuild(self) -> None:
        with self._lock:
            if "_table" in self.__dict__:
                # Table first, then forget the interval: see the end of _locate.
                self._table = self._build(self._table.last_year)
                self._utc_days = self._table.utc_days
                self._hot = _EMPTY

    def _grow(self, year: int) -> _Table:
        """The table, rebuilt to cover ``year`` (and a few more) if it does not yet."""
        with self._lock:
            table = self._table
            if table.last_year < year:
                last = min(self.last_day.year, year + _GROWTH_YEARS)
                table = self._build(last)
                self._table = table
                self._utc_days = table.utc_days
                self._hot = _EMPTY
        return table

    # --- user additions ------------------------------------------------------

    def add_closure(self, day: date) -> None:
        """Close the market for the whole of ``day`` (e.g. a national day of mourning).

        Applies to every `NYSECalendar` in the process. Idempotent; a day that
        is not a session stays one that is not.

        Raises:
            TypeError: ``day`` is not a date.
            CalendarRangeError: ``day`` is outside 2000-2100.
        """
        ordinal = self._addition_ordinal(day)
        additions = self._additions
        with additions.lock:
            additions.closures.add(ordinal)
        additions.apply()

    def add_early_close(self, day: date, close: time = time(13, 0)) -> None:
        """Close the market early on ``day`` at ``close`` (New York local time, default 13:00).

        After-hours trading then runs four hours past the new close. Applies
        to every `NYSECalendar` in the process.

        Raises:
            TypeError: ``day`` is not a date.
            CalendarRangeError: ``day`` is outside 2000-2100.
            ValueError: ``day`` is not a session.
            ConfigError: ``close`` is not a naive time in whole seconds after
                the day's open and at most 16:00.
        """
        self._adjust(day, close, "close")

    def add_late_open(self, day: date, open: time) -> None:
        """Open the market late on ``day`` at ``open`` (New York local time).

        Pre-market still starts at 04:00. Applies to every `NYSECalendar` in
        the process.

        Raises:
            TypeError: ``day`` is not a date.
            CalendarRangeError: ``day`` is outside 2000-2100.
            ValueError: ``day`` is not a session.
            ConfigError: ``open`` is not a naive time in whole seconds after
                09:30 and before the day's close.

        Examples:
            >>> from datetime import date, time
            >>> cal = NYSECalendar(first_year=2001, last_year=2001)
            >>> cal.add_late_open(date(2001, 9, 17), time(9, 33))
            >>> cal.session_hours(date(2001, 9, 17))[0].time()  # 13:33 UTC
            datetime.time(13, 33)
        """
        self._adjust(day, open, "open")

    def _adjust(self, day: date, when: time, parameter: str) -> None:
        ordinal = self._addition_ordinal(day)
        if not isinstance(when, time) or when.tzinfo is not None:
            raise ConfigError(parameter, when, "must be a naive New York local time")
        if when.microsecond:
            # The session table and the UTC-day fast path of is_open hold whole seconds.
            raise ConfigError(parameter, when, "must be whole seconds (no microseconds)")
        seconds = when.hour * _HOUR + when.minute * 60 + when.second
        additions = self._additions
        with additions.lock:
            hours = additions.hours(date.fromordinal(ordinal))
            if hours is None:
                raise ValueError(f"day={date.fromordinal(ordinal)} is not an NYSE session")
            day_open, day_close = hours
            if parameter == "close":
                if not day_open < seconds <= _CLOSE:
                    raise ConfigError(
                        "close",
                        when,
                        f"must be after the day's open ({_clock(day_open)}), <= 16:00",
                    )
                additions.closes[ordinal] = seconds
            else:
                if not _OPEN < seconds < day_close:
                    raise ConfigError(
                        "open",
                        when,
                        f"must be after 09:30 and before the day's close ({_clock(day_close)})",
                    )
                additions.opens[ordinal] = seconds
        additions.apply()

    def _addition_ordinal(self, day: date) -> int:
        if isinstance(_check_day(day), datetime):
            day = date.fromordinal(_ny_ordinal(_timestamp(day, "day")))
        if not _MIN_YEAR <= day.year <= _MAX_YEAR:
            raise CalendarRangeError(
                f"{self.name} calendars cover {_MIN_YEAR}-01-01 to {_MAX_YEAR}-12-31; "
                f"day={day} is outside that range"
            )
        return day.toordinal()

    # --- queries -------------------------------------------------------------

    def _range_error(
        self, value: object, what: str = "", parameter: str = "dt"
    ) -> CalendarRangeError:
        shown = value.isoformat() if isinstance(value, (date, datetime)) else repr(value)
        return CalendarRangeError(
            f"{self.name} calendar covers {self.first_day} to {self.last_day} "
            f"(America/New_York); {what}{parameter}={shown} is outside that range"
        )

    def _day_table(self, day: date) -> tuple[_Table, int]:
        """The table covering ``day`` (a date or an aware datetime), and its ordinal."""
        if isinstance(_check_day(day), datetime):
            ts = _timestamp(day, "day")
            if (
                not self._base
                <= ts
                < self._base + (self._last_ordinal - self._first_ordinal + 1) * _DAY
            ):
                raise self._range_error(day, parameter="day")
            ordinal = _ny_ordinal(ts)
        else:
            ordinal = day.toordinal()
        if not self._first_ordinal <= ordinal <= self._last_ordinal:
            raise self._range_error(day, parameter="day")
        table = self._table
        if ordinal - self._first_ordinal >= len(table.first):
            table = self._grow(date.fromordinal(ordinal).year)
        return table, ordinal

    def _find(self, ts: float, dt: datetime) -> tuple[_Table, int]:
        """The table covering ``ts`` and the position of the first session not over by its day."""
        table = self._table
        day = int((ts - table.base) // _DAY)
        if not 0 <= day < len(table.first):
            if day < 0 or ts >= self._base + (self._last_ordinal - self._first_ordinal + 1) * _DAY:
                raise self._range_error(dt)
            table = self._grow(date.fromordinal(self._first_ordinal + day).year)
        return table, table.first[day]

    def _after(self, ts: float, dt: datetime, close: bool) -> float:
        """The first open (or close) of the trading window strictly after ``ts``."""
        while True:
            table, s = self._find(ts, dt)
            edges = table.ends if close else table.starts
            found = edges[s] if ts < edges[s] else edges[s + 1]
            if found != _INF:
                return found
            if table.last_year >= self.last_day.year:
                what = "close" if close else "open"
                raise self._range_error(dt, f"the next {what} after ")
            self._grow(table.last_year + 1)

    def is_session(self, day: date) -> bool:
        """Whether ``day`` (a New York date; an aware datetime is converted) is a session.

        Raises:
            TypeError: ``day`` is not a date or datetime.
            ValueError: ``day`` is a naive datetime.
            CalendarRangeError: ``day`` is outside the calendar's years.
        """
        table, ordinal = self._day_table(day)
        return ordinal in table.index

    def session_hours(self, day: date) -> tuple[datetime, datetime] | None:
        """``(open, close)`` of the trading window on ``day`` in UTC, or ``None``.

        The regular session, or 04:00 to four hours after the close with
        ``extended_hours``.

        Raises:
            TypeError: ``day`` is not a date or datetime.
            CalendarRangeError: ``day`` is outside the calendar's years.
        """
        table, ordinal = self._day_table(day)
        i = table.index.get(ordinal)
        if i is None:
            return None
        return _utc(table.starts[i]), _utc(table.ends[i])

    def is_open(self, dt: datetime) -> bool:
        """Whether the trading window contains ``dt``: ``open <= dt < close``.

        Raises:
            TypeError: ``dt`` is not a datetime (a ``date``, a string …).
            ValueError: ``dt`` is naive.
            CalendarRangeError: ``dt`` is outside the calendar's years.
        """
        if dt.__class__ is datetime and dt.tzinfo is _UTC:
            # Regular sessions never cross a UTC midnight: the UTC date finds the
            # day's session, and its seconds after midnight are compared with the
            # session's, with no conversion to POSIX time and no search.
            try:
                start, end = self._utc_days[dt.toordinal()]
            except KeyError:  # extended hours, or a day at the ends of the table
                ts = dt.timestamp()
            else:
                return start <= dt.hour * 3600 + dt.minute * 60 + dt.second < end
        else:
            ts = _timestamp(dt)
        lo, hi, inside = self._hot
        if lo <= ts < hi:
            return inside
        return self._locate(ts, dt)

    def _locate(self, ts: float, dt: datetime) -> bool:
        """Whether ``ts`` is inside the window; remembers the interval around it for the next call.

        Callers ask about "now" over and over, and "now" stays between the same
        two edges (an open and a close, or a close and the next open) for hours:
        remembering that interval makes most calls two comparisons.
        """
        table = self._table
        day = int((ts - table.base) // _DAY)
        if not 0 <= day < len(table.first):
            table, s = self._find(ts, dt)
        else:
            s = table.first[day]
        start = table.starts[s]
        if ts < start:
            interval = (table.ends[s - 1] if s else table.base, start, False)
        else:
            end = table.ends[s]
            interval = (start, end, True) if ts < end else (end, table.starts[s + 1], False)
        if interval[1] != _INF:  # the edge after the last session built is not known yet
            self._hot = interval
            if self._table is not table:  # an addition replaced the table meanwhile
                self._hot = _EMPTY
        return interval[2]

    def next_open(self, dt: datetime) -> datetime:
        """The first open strictly after ``dt``, as an aware UTC datetime.

        Raises:
            TypeError: ``dt`` is not a datetime.
            ValueError: ``dt`` is naive.
            CalendarRangeError: ``dt``, or the next open, is outside the calendar's years.
        """
        return _utc(self._after(_timestamp(dt), dt, close=False))

    def next_close(self, dt: datetime) -> datetime:
        """The first close strictly after ``dt`` (the current session's when open), in UTC.

        Raises:
            TypeError: ``dt`` is not a datetime.
            ValueError: ``dt`` is naive.
            CalendarRangeError: ``dt``, or the next close, is outside the calendar's years.
        """
        return _utc(self._after(_timestamp(dt), dt, close=True))

    def seconds_until_open(self, dt: datetime) -> float:
        """``0.0`` when open at ``dt``, else the seconds until `next_open`.

        Raises:
            TypeError: ``dt`` is not a datetime.
            ValueError: ``dt`` is naive.
            CalendarRangeError: ``dt``, or the next open, is outside the calendar's years.
        """
        # The common case (an aware UTC datetime) skips the checks of _timestamp.
        ts = dt.timestamp() if dt.__class__ is datetime and dt.tzinfo is _UTC else _timestamp(dt)
        lo, hi, inside = self._hot
        if lo <= ts < hi:
            return 0.0 if inside else hi - ts
        if self._locate(ts, dt):
            return 0.0
        return self._after(ts, dt, close=False) - ts

    def session_at(self, dt: datetime) -> MarketSession:
        """PRE (04:00-09:30), REGULAR, POST (until four hours after the close) or CLOSED.

        Independent of ``extended_hours``; holidays and weekends are CLOSED all day.

        Raises:
            TypeError: ``dt`` is not a datetime.
            ValueError: ``dt`` is naive.
            CalendarRangeError: ``dt`` is outside the calendar's years.
        """
        ts = _timestamp(dt)
        table, s = self._find(ts, dt)
        if s == len(table.pres) or not table.pres[s] <= ts < table.posts[s]:
            return MarketSession.CLOSED
        if ts < table.opens[s]:
            return MarketSession.PRE
        if ts < table.closes[s]:
            return MarketSession.REGULAR
        return MarketSession.POST

    def __repr__(self) -> str:
        extended = ", extended_hours=True" if self.extended_hours else ""
        last = "" if self.open_ended else f", last_year={self.last_day.year}"
        return f"NYSECalendar(first_year={self.first_day.year}{last}{extended})"


def _clock(seconds: int) -> str:
    return f"{seconds // _HOUR:02d}:{seconds % _HOUR // 60:02d}"


NYSE: NYSECalendar = NYSECalendar()
"""The New York Stock Exchange, regular hours, 2000-2100 (see `NYSECalendar`)."""
