"""Market calendars: when is a market open, and when does it open or close next.

:data:`NYSE` follows the New York Stock Exchange's rules (regular session
09:30-16:00 America/New_York, full-day holidays with their weekend
observance, 13:00 early closes and the special closures since 2000);
:data:`CRYPTO` never closes. :func:`is_crypto` tells the two kinds of symbol
apart.

The NYSE sessions are computed from rules once per process, on first use, into
sorted arrays of open and close instants (POSIX seconds). Every query after
that is a binary search over those arrays: no timezone conversion, no
allocation, well under a microsecond per call.
"""

from __future__ import annotations

import enum
import threading
from abc import ABC, abstractmethod
from array import array
from bisect import bisect_right
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any

import pytz

from .errors import ArgoPerfError, ConfigError

__all__ = [
    "CRYPTO",
    "CRYPTO_SUFFIXES",
    "NYSE",
    "CalendarRangeError",
    "MarketCalendar",
    "MarketSession",
    "NYSECalendar",
    "is_crypto",
]

_UTC = timezone.utc
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY = 86_400
_HOUR = 3_600
_NEW_YORK = pytz.timezone("America/New_York")

_OPEN = 9 * _HOUR + 30 * 60  # 09:30, seconds after local midnight
_CLOSE = 16 * _HOUR  # 16:00
_EARLY_CLOSE = 13 * _HOUR  # 13:00
_PRE_OPEN = 4 * _HOUR  # pre-market from 04:00
_POST_LENGTH = 4 * _HOUR  # after-hours run four hours past the close (20:00, 17:00)

_EMPTY: tuple[float, float, bool] = (0.0, 0.0, False)  # an interval that holds nothing

_MIN_YEAR = 2000  # the rules below encode the exchange's history from 2000 on
_MAX_YEAR = 2100

# Closures outside the regular rules since 2000 (national days of mourning,
# attacks, storms). New ones are announced at short notice: add them at run
# time with NYSECalendar.add_closure.
_SPECIAL_CLOSURES: dict[date, str] = {
    date(2001, 9, 11): "September 11 attacks",
    date(2001, 9, 12): "September 11 attacks",
    date(2001, 9, 13): "September 11 attacks",
    date(2001, 9, 14): "September 11 attacks",
    date(2004, 6, 11): "National day of mourning for Ronald Reagan",
    date(2007, 1, 2): "National day of mourning for Gerald Ford",
    date(2012, 10, 29): "Hurricane Sandy",
    date(2012, 10, 30): "Hurricane Sandy",
    date(2018, 12, 5): "National day of mourning for George H. W. Bush",
    date(2025, 1, 9): "National day of mourning for Jimmy Carter",
}

# 13:00 closes outside the regular rules.
_SPECIAL_EARLY_CLOSES: frozenset[date] = frozenset({date(2003, 12, 26)})

CRYPTO_SUFFIXES: tuple[str, ...] = (
    "-USD",
    "-USDT",
    "-USDC",
    "USDT",
    "USDC",
    "/USD",
    "-BTC",
    "/BTC",
    "-ETH",
    "/ETH",
)
"""Symbol endings that :func:`is_crypto` treats as crypto pairs by default."""


class CalendarRangeError(ArgoPerfError, ValueError):
    """A date or instant outside the range a calendar was built for.

    A calendar answers only for the years it covers (by default 2000-2035 for
    :data:`NYSE`); beyond them it raises this error instead of guessing. It is
    also a :class:`ValueError`.

    Example:
        >>> from datetime import date
        >>> try:
        ...     NYSE.is_session(date(1999, 12, 31))
        ... except CalendarRangeError as exc:
        ...     print("out of range")
        out of range
    """


class MarketSession(enum.Enum):
    """Which part of the trading day an instant falls in (see :meth:`MarketCalendar.session_at`).

    ``PRE`` is pre-market (NYSE 04:00-09:30), ``REGULAR`` the regular session,
    ``POST`` after-hours (NYSE until four hours after the close) and ``CLOSED``
    everything else, including whole holidays and weekends.
    """

    PRE = "pre"
    REGULAR = "regular"
    POST = "post"
    CLOSED = "closed"


def is_crypto(
    symbol: str,
    *,
    suffixes: Iterable[str] = CRYPTO_SUFFIXES,
    symbols: Collection[str] = (),
) -> bool:
    """Whether ``symbol`` names a crypto pair (traded around the clock) rather than a stock.

    The check is case-insensitive: a symbol is crypto when it is in
    ``symbols`` (an explicit set, e.g. ``{"BTC", "ETH"}``) or ends with one of
    ``suffixes`` (default :data:`CRYPTO_SUFFIXES`: ``-USD``, ``-USDT``,
    ``USDT``, ``/USD`` …). Pass your own rule wherever argo_perf takes a
    classifier, for example ``functools.partial(is_crypto, symbols={"DOGE"})``.

    Example:
        >>> is_crypto("BTC-USD"), is_crypto("SOLUSDT"), is_crypto("AAPL")
        (True, True, False)
        >>> is_crypto("BTC", symbols={"BTC"})
        True
    """
    upper = symbol.upper()
    if symbols and (symbol in symbols or upper in symbols):
        return True
    ends = suffixes if isinstance(suffixes, tuple) else tuple(suffixes)
    return upper.endswith(ends)


def _check_aware(dt: datetime) -> float:
    """POSIX seconds of an aware datetime; naive datetimes are refused."""
    tz = dt.tzinfo
    if tz is not _UTC and (tz is None or dt.utcoffset() is None):
        raise ValueError(f"expected an aware datetime, got naive {dt!r}")
    return dt.timestamp()


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, _UTC)


class MarketCalendar(ABC):
    """When a market trades: the interface shared by :data:`NYSE` and :data:`CRYPTO`.

    Every method that takes a ``datetime`` requires an aware one and raises
    :class:`ValueError` for a naive one. A session is the half-open interval
    ``[open, close)``: the market is open at the open instant and closed at the
    close instant. Instants are returned as aware UTC datetimes. Instants or
    dates outside the range a calendar covers raise :class:`CalendarRangeError`.

    Example:
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


class _AlwaysOpenCalendar(MarketCalendar):
    """A market that never closes (crypto): every UTC day is a session.

    :meth:`is_open` is always true and :meth:`session_at` always
    ``MarketSession.REGULAR``. Sessions are UTC days, so :meth:`next_open` and
    :meth:`next_close` are the next UTC midnight; :meth:`seconds_until_open`
    is always ``0.0``. Naive datetimes still raise :class:`ValueError`.

    Example:
        >>> from datetime import date
        >>> CRYPTO.is_session(date(2026, 12, 25))
        True
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def is_session(self, day: date) -> bool:
        if isinstance(day, datetime):
            _check_aware(day)
        return True

    def session_hours(self, day: date) -> tuple[datetime, datetime] | None:
        if isinstance(day, datetime):
            _check_aware(day)
            day = day.astimezone(_UTC).date()
        start = datetime(day.year, day.month, day.day, tzinfo=_UTC)
        return start, start + timedelta(days=1)

    def is_open(self, dt: datetime) -> bool:
        _check_aware(dt)
        return True

    def _next_midnight(self, dt: datetime) -> datetime:
        ts = _check_aware(dt)
        return _utc((ts // _DAY + 1) * _DAY)

    def next_open(self, dt: datetime) -> datetime:
        return self._next_midnight(dt)

    def next_close(self, dt: datetime) -> datetime:
        return self._next_midnight(dt)

    def seconds_until_open(self, dt: datetime) -> float:
        _check_aware(dt)
        return 0.0

    def session_at(self, dt: datetime) -> MarketSession:
        _check_aware(dt)
        return MarketSession.REGULAR

    def __repr__(self) -> str:
        return f"<always-open calendar {self.name}>"


# --- NYSE rules --------------------------------------------------------------


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th ``weekday`` (Monday = 0) of a month; n = -1 for the last one."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    nxt = date(year + month // 12, month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _nearest_workday(day: date) -> date:
    """Saturday holidays are observed on Friday, Sunday ones on Monday."""
    if day.weekday() == 5:
        return day - timedelta(days=1)
    if day.weekday() == 6:
        return day + timedelta(days=1)
    return day


def _easter(year: int) -> date:
    """Western Easter Sunday (the anonymous Gregorian algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _nyse_holidays(year: int) -> set[date]:
    """Full-day NYSE holidays of ``year`` (regular rules and special closures)."""
    new_year = date(year, 1, 1)
    days = {
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        _easter(year) - timedelta(days=2),  # Good Friday
        _nth_weekday(year, 5, 0, -1),  # Memorial Day
        _nearest_workday(date(year, 7, 4)),  # Independence Day
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
        _nearest_workday(date(year, 12, 25)),  # Christmas
    }
    # New Year's Day moves to Monday when it falls on a Sunday; on a Saturday
    # it is not observed at all (the exchange does not close the Friday before).
    if new_year.weekday() == 6:
        days.add(new_year + timedelta(days=1))
    elif new_year.weekday() < 5:
        days.add(new_year)
    if year >= 2022:
        days.add(_nearest_workday(date(year, 6, 19)))  # Juneteenth
    days.update(d for d in _SPECIAL_CLOSURES if d.year == year)
    return days


def _nyse_early_closes(year: int) -> set[date]:
    """Days of ``year`` on which the NYSE closes at 13:00."""
    days = {_nth_weekday(year, 11, 3, 4) + timedelta(days=1)}  # day after Thanksgiving
    july3 = date(year, 7, 3)
    # July 3rd closes early on Monday, Tuesday and Thursday; on Wednesday only
    # from 2013 on. Before 2013 a Thursday July 4th made Friday July 5th the short day.
    if july3.weekday() in (0, 1, 3) or (july3.weekday() == 2 and year >= 2013):
        days.add(july3)
    july5 = date(year, 7, 5)
    if july5.weekday() == 4 and year < 2013:
        days.add(july5)
    christmas_eve = date(year, 12, 24)
    if christmas_eve.weekday() < 4:  # on a Friday it is the observed Christmas holiday
        days.add(christmas_eve)
    days.update(d for d in _SPECIAL_EARLY_CLOSES if d.year == year)
    return days


def _utc_offset(tz: Any, day: date, hour: int) -> int:
    """UTC offset in seconds at ``hour`` local time on ``day``, through pytz's localize."""
    local = tz.localize(datetime(day.year, day.month, day.day, hour))
    return int(local.utcoffset().total_seconds())


@lru_cache(maxsize=8)
def _nyse_base(first_year: int, last_year: int) -> tuple[tuple[int, int, int], ...]:
    """``(ordinal, utc_offset, close)`` of every NYSE session, from the rules.

    ``close`` is seconds after local midnight. The offset is the one in force
    at local noon; New York changes its clocks at 02:00, so it holds for the
    whole trading day from 04:00 to 20:00.
    """
    sessions: list[tuple[int, int, int]] = []
    offset = _utc_offset(_NEW_YORK, date(first_year, 1, 1), 12)
    previous = 0
    for year in range(first_year, last_year + 1):
        holidays = _nyse_holidays(year)
        early = _nyse_early_closes(year)
        day = date(year, 1, 1)
        end = date(year, 12, 31)
        while day <= end:
            if day.weekday() < 5 and day not in holidays:
                ordinal = day.toordinal()
                # The offset of the previous session holds unless the clocks changed
                # in between, which in New York happens on a Sunday at 02:00: check
                # after every gap with pytz's fromutc (a binary search), and settle
                # a change with a full localize.
                if ordinal - previous > 1:
                    noon = (ordinal - _EPOCH_ORDINAL) * _DAY + 12 * _HOUR - offset
                    seen = datetime.fromtimestamp(noon, _NEW_YORK).utcoffset()
                    if seen != timedelta(seconds=offset):
                        offset = _utc_offset(_NEW_YORK, day, 12)
                sessions.append((ordinal, offset, _EARLY_CLOSE if day in early else _CLOSE))
                previous = ordinal
            day += timedelta(days=1)
    return tuple(sessions)


@dataclass(frozen=True)
class _Table:
    """A calendar's sessions as sorted instants (POSIX seconds), built once, never mutated."""

    index: dict[int, int]  # date ordinal -> position
    pres: list[float]
    opens: list[float]
    closes: list[float]
    posts: list[float]
    edges: list[float]  # the trading window, flattened: [open0, close0, open1, close1, ...]
    day_starts: array[int]  # for each day from the first: how many edges come before it


class NYSECalendar(MarketCalendar):
    """The New York Stock Exchange, computed from its rules (see the module docs).

    Regular session 09:30-16:00 America/New_York; full-day holidays (New
    Year's Day, Martin Luther King Jr. Day, Washington's Birthday, Good
    Friday, Memorial Day, Juneteenth from 2022, Independence Day, Labor Day,
    Thanksgiving, Christmas) observed on the nearest weekday (New Year's Day
    only on the following Monday); 13:00 early closes on July 3rd, the day
    after Thanksgiving and Christmas Eve with their historical exceptions; and
    the special closures since 2000. Matches exchange_calendars' XNYS exactly
    over 2000-2035.

    Args:
        extended_hours: when true the trading window is 04:00 to four hours
            after the close (pre-market and after-hours included) for
            :meth:`is_open`, :meth:`session_hours`, :meth:`next_open`,
            :meth:`next_close` and :meth:`seconds_until_open`. Default false.
        first_year: first year covered (default 2000, the earliest supported).
        last_year: last year covered (default 2035, at most 2100).

    Raises:
        ConfigError: a year outside 2000-2100 or ``first_year > last_year``.

    Sessions are built from the rules on first use (a few tens of
    milliseconds, once per process and year range). Closures and early closes
    added with :meth:`add_closure` and :meth:`add_early_close` apply to this
    instance only. All methods are thread-safe.

    Example:
        >>> from datetime import date
        >>> cal = NYSECalendar()
        >>> cal.is_session(date(2026, 7, 3))  # July 4th is a Saturday
        False
        >>> cal.add_closure(date(2026, 3, 2))  # announced at short notice
        >>> cal.is_session(date(2026, 3, 2))
        False
    """

    name = "NYSE"

    def __init__(
        self, *, extended_hours: bool = False, first_year: int = 2000, last_year: int = 2035
    ) -> None:
        for parameter, value in (("first_year", first_year), ("last_year", last_year)):
            if not isinstance(value, int) or not _MIN_YEAR <= value <= _MAX_YEAR:
                raise ConfigError(parameter, value, f"must be a year in {_MIN_YEAR}-{_MAX_YEAR}")
        if first_year > last_year:
            raise ConfigError("first_year", first_year, f"must be <= last_year ({last_year})")
        self.extended_hours = bool(extended_hours)
        self.first_day = date(first_year, 1, 1)
        self.last_day = date(last_year, 12, 31)
        self._first_ordinal = self.first_day.toordinal()
        self._last_ordinal = self.last_day.toordinal()
        self._lo = float(_local_midnight(self.first_day))
        self._hi = float(_local_midnight(self.last_day + timedelta(days=1)))
        self._lock = threading.Lock()
        self._closures: set[int] = set()
        self._early: dict[int, int] = {}
        self._hot: tuple[float, float, bool] = _EMPTY

    # The table is built on first use (see __getattr__) and then replaced as a
    # whole when closures are added, so readers never see a half-built one.
    _table: _Table

    def __getattr__(self, name: str) -> Any:
        if name != "_table":
            raise AttributeError(name)
        with self._lock:
            table = self.__dict__.get("_table")
            if table is None:
                table = self._build()
                self._table = table
        return table

    def _build(self) -> _Table:
        index: dict[int, int] = {}
        pres: list[float] = []
        opens: list[float] = []
        closes: list[float] = []
        posts: list[float] = []
        for ordinal, offset, close in _nyse_base(self.first_day.year, self.last_day.year):
            if ordinal in self._closures:
                continue
            close = self._early.get(ordinal, close)
            midnight = (ordinal - _EPOCH_ORDINAL) * _DAY - offset
            index[ordinal] = len(opens)
            pres.append(float(midnight + _PRE_OPEN))
            opens.append(float(midnight + _OPEN))
            closes.append(float(midnight + close))
            posts.append(float(midnight + close + _POST_LENGTH))
        starts, ends = (pres, posts) if self.extended_hours else (opens, closes)
        edges = [x for pair in zip(starts, ends, strict=True) for x in pair]
        # Days are counted from the first midnight in New York standard time, so a
        # trading day (04:00-20:00 local, EST or EDT) never straddles two of them.
        days = int(self._hi - self._lo) // _DAY + 1
        day_starts = array("l", [0]) * days
        count = 0
        for day in range(days):
            start = self._lo + day * _DAY
            while count < len(edges) and edges[count] < start:
                count += 1
            day_starts[day] = count
        return _Table(index, pres, opens, closes, posts, edges, day_starts)

    # --- user additions ------------------------------------------------------

    def add_closure(self, day: date) -> None:
        """Close the market for the whole of ``day`` (e.g. a national day of mourning).

        Idempotent; a day that is not a session stays one that is not.

        Raises:
            CalendarRangeError: ``day`` is outside the calendar's years.
        """
        ordinal = self._ordinal(day)
        with self._lock:
            self._closures.add(ordinal)
            self._rebuild()

    def add_early_close(self, day: date, close: time = time(13, 0)) -> None:
        """Close the market early on ``day`` at ``close`` (New York local time, default 13:00).

        After-hours trading then runs four hours past the new close.

        Raises:
            CalendarRangeError: ``day`` is outside the calendar's years.
            ValueError: ``day`` is not a session.
            ConfigError: ``close`` is not after 09:30 and at most 16:00.
        """
        ordinal = self._ordinal(day)
        seconds = close.hour * _HOUR + close.minute * 60 + close.second
        if close.tzinfo is not None or not _OPEN < seconds <= _CLOSE:
            raise ConfigError("close", close, "must be a naive local time after 09:30, <= 16:00")
        if ordinal not in self._table.index:
            raise ValueError(f"{date.fromordinal(ordinal)} is not an NYSE session")
        with self._lock:
            self._early[ordinal] = seconds
            self._rebuild()

    def _rebuild(self) -> None:
        if "_table" in self.__dict__:
            # Table first, then forget the interval: see the end of _locate.
            self._table = self._build()
            self._hot = _EMPTY

    # --- queries -------------------------------------------------------------

    def _ordinal(self, day: date) -> int:
        if isinstance(day, datetime):
            _check_aware(day)
            day = day.astimezone(_NEW_YORK).date()
        ordinal = day.toordinal()
        if not self._first_ordinal <= ordinal <= self._last_ordinal:
            raise CalendarRangeError(
                f"{self.name} calendar covers {self.first_day} to {self.last_day}; "
                f"{day} is outside that range"
            )
        return ordinal

    def _range_error(self, dt: datetime, what: str = "") -> CalendarRangeError:
        return CalendarRangeError(
            f"{self.name} calendar covers {self.first_day} to {self.last_day} "
            f"(America/New_York); {what}{dt.isoformat()} is outside that range"
        )

    def is_session(self, day: date) -> bool:
        """Whether ``day`` (a New York date; an aware datetime is converted) is a session.

        Raises:
            CalendarRangeError: ``day`` is outside the calendar's years.
            ValueError: ``day`` is a naive datetime.
        """
        return self._ordinal(day) in self._table.index

    def session_hours(self, day: date) -> tuple[datetime, datetime] | None:
        """``(open, close)`` of the trading window on ``day`` in UTC, or ``None``.

        The regular session, or 04:00 to four hours after the close with
        ``extended_hours``.

        Raises:
            CalendarRangeError: ``day`` is outside the calendar's years.
        """
        table = self._table
        i = table.index.get(self._ordinal(day))
        if i is None:
            return None
        return _utc(table.edges[2 * i]), _utc(table.edges[2 * i + 1])

    def is_open(self, dt: datetime) -> bool:
        """Whether the trading window contains ``dt``: ``open <= dt < close``.

        Raises:
            ValueError: ``dt`` is naive.
            CalendarRangeError: ``dt`` is outside the calendar's years.
        """
        tz = dt.tzinfo
        if tz is not _UTC and (tz is None or dt.utcoffset() is None):
            raise ValueError(f"expected an aware datetime, got naive {dt!r}")
        ts = dt.timestamp()
        lo, hi, inside = self._hot
        if lo <= ts < hi:
            return inside
        return self._locate(ts, dt)[2]

    def _locate(self, ts: float, dt: datetime) -> tuple[float, float, bool]:
        """The interval between two edges that holds ``ts``, remembered for the next call.

        Callers ask about "now" over and over, and "now" stays between the same
        two edges (an open and a close, or a close and the next open) for hours:
        remembering that interval makes most calls two comparisons.
        """
        lo = self._lo
        if not lo <= ts < self._hi:
            raise self._range_error(dt)
        table = self._table
        edges = table.edges
        # Count the edges <= ts: those before ts's day, then the few on that day.
        count = table.day_starts[int(ts - lo) // _DAY]
        end = len(edges)
        while count < end and edges[count] <= ts:
            count += 1
        if count == end:  # after the last close: no next open to remember
            return (ts, ts, False)
        # Edges alternate open, close: an odd count of edges <= ts means inside.
        interval = (edges[count - 1] if count else lo, edges[count], count & 1 == 1)
        self._hot = interval
        if self._table is not table:  # a closure replaced the table meanwhile
            self._hot = _EMPTY
        return interval

    def _edges_after(self, dt: datetime) -> tuple[list[float], int, float]:
        ts = _check_aware(dt)
        if not self._lo <= ts < self._hi:
            raise self._range_error(dt)
        edges = self._table.edges
        return edges, bisect_right(edges, ts), ts

    def next_open(self, dt: datetime) -> datetime:
        """The first open strictly after ``dt``, as an aware UTC datetime.

        Raises:
            ValueError: ``dt`` is naive.
            CalendarRangeError: ``dt``, or the next open, is outside the calendar's years.
        """
        edges, count, _ = self._edges_after(dt)
        i = count + (count & 1)  # when inside a session, skip its close
        if i >= len(edges):
            raise self._range_error(dt, "the next open after ")
        return _utc(edges[i])

    def next_close(self, dt: datetime) -> datetime:
        """The first close strictly after ``dt`` (the current session's when open), in UTC.

        Raises:
            ValueError: ``dt`` is naive.
            CalendarRangeError: ``dt``, or the next close, is outside the calendar's years.
        """
        edges, count, _ = self._edges_after(dt)
        i = count + 1 - (count & 1)  # when closed, the next edge is an open: take the one after
        if i >= len(edges):
            raise self._range_error(dt, "the next close after ")
        return _utc(edges[i])

    def seconds_until_open(self, dt: datetime) -> float:
        """``0.0`` when open at ``dt``, else the seconds until :meth:`next_open`.

        Raises:
            ValueError: ``dt`` is naive.
            CalendarRangeError: ``dt``, or the next open, is outside the calendar's years.
        """
        ts = _check_aware(dt)
        lo, hi, inside = self._hot
        if not lo <= ts < hi:
            lo, hi, inside = self._locate(ts, dt)
            if lo == hi:
                raise self._range_error(dt, "the next open after ")
        return 0.0 if inside else hi - ts

    def session_at(self, dt: datetime) -> MarketSession:
        """PRE (04:00-09:30), REGULAR, POST (until four hours after the close) or CLOSED.

        Independent of ``extended_hours``; holidays and weekends are CLOSED all day.

        Raises:
            ValueError: ``dt`` is naive.
            CalendarRangeError: ``dt`` is outside the calendar's years.
        """
        ts = _check_aware(dt)
        if not self._lo <= ts < self._hi:
            raise self._range_error(dt)
        table = self._table
        i = bisect_right(table.pres, ts) - 1
        if i < 0 or ts >= table.posts[i]:
            return MarketSession.CLOSED
        if ts < table.opens[i]:
            return MarketSession.PRE
        if ts < table.closes[i]:
            return MarketSession.REGULAR
        return MarketSession.POST

    def __repr__(self) -> str:
        extended = ", extended_hours=True" if self.extended_hours else ""
        return (
            f"NYSECalendar(first_year={self.first_day.year}, "
            f"last_year={self.last_day.year}{extended})"
        )


def _local_midnight(day: date) -> int:
    """POSIX seconds of midnight at the start of ``day`` in New York."""
    offset = _utc_offset(_NEW_YORK, day, 0)
    return (day.toordinal() - _EPOCH_ORDINAL) * _DAY - offset


NYSE: NYSECalendar = NYSECalendar()
"""The New York Stock Exchange, regular hours, 2000-2035 (see :class:`NYSECalendar`)."""

CRYPTO: MarketCalendar = _AlwaysOpenCalendar("CRYPTO")
"""Crypto markets: always open (see :class:`MarketCalendar`)."""
