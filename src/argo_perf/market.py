"""Market calendars: when is a market open, and when does it open or close next.

`NYSE` follows the New York Stock Exchange's rules (regular session
09:30-16:00 America/New_York, full-day holidays with their weekend
observance, 13:00 early closes and the special closures since 2000);
`CRYPTO` never closes. `is_crypto` tells the two kinds of symbol apart.

The NYSE sessions are computed from rules, on first use and then a decade at a
time as queries reach later years, into a table indexed by day: one session
per day at most, and every trading day (04:00-20:00 New York) lies inside one
day counted from midnight New York standard time. A query converts its
instant to POSIX seconds, divides by 86,400 and reads the session of that
day: no time-zone conversion, no search, no allocation.

New York's clock changes follow the United States rule (02:00 local on the
second Sunday of March and the first Sunday of November since 2007, the first
Sunday of April and the last Sunday of October before), computed rather than
read from a time-zone database, so that years past 2037 (where pytz's data
ends) are right too.
"""

from __future__ import annotations

import enum
import math
import threading
import weakref
from abc import ABC, abstractmethod
from array import array
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import cache, lru_cache
from typing import Any

from . import _validate
from .errors import ArgoPerfError, ConfigError

__all__ = [
    "CRYPTO",
    "CRYPTO_BASES",
    "CRYPTO_PREFIXES",
    "CRYPTO_QUOTES",
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
_EST = -5 * _HOUR  # New York standard time
_EDT = -4 * _HOUR  # New York daylight saving time
_INF = math.inf

_OPEN = 9 * _HOUR + 30 * 60  # 09:30, seconds after local midnight
_CLOSE = 16 * _HOUR  # 16:00
_EARLY_CLOSE = 13 * _HOUR  # 13:00
_PRE_OPEN = 4 * _HOUR  # pre-market from 04:00
_POST_LENGTH = 4 * _HOUR  # after-hours run four hours past the close (20:00, 17:00)

_EMPTY: tuple[float, float, bool] = (0.0, 0.0, False)  # an interval that holds nothing

_MIN_YEAR = 2000  # the rules below encode the exchange's history from 2000 on
_MAX_YEAR = 2100
_FIRST_BUILD_LAST_YEAR = 2035  # an open-ended calendar first builds up to here
_GROWTH_YEARS = 10  # ... and then this many years past the one a query reaches

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

CRYPTO_PREFIXES: tuple[str, ...] = ("X:",)
"""Symbol beginnings that `is_crypto` treats as crypto: `X:` is the crypto
namespace of the Massive (formerly Polygon.io) tickers, as in `X:BTCUSD`."""

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
"""Symbol endings that `is_crypto` treats as crypto pairs by default."""

CRYPTO_QUOTES: tuple[str, ...] = (
    "USD",
    "USDT",
    "USDC",
    "DAI",
    "EUR",
    "GBP",
    "JPY",
    "CHF",
    "CAD",
    "AUD",
    "BTC",
    "XBT",
    "ETH",
)
"""Quote currencies of crypto pairs: `BASE-QUOTE`, `BASE/QUOTE`, `BASE_QUOTE`
with any base, and `BASEQUOTE` with a base in `CRYPTO_BASES`."""

CRYPTO_BASES: tuple[str, ...] = (
    "BTC",
    "XBT",
    "ETH",
    "SOL",
    "XRP",
    "ADA",
    "DOGE",
    "XDG",
    "LTC",
    "BCH",
    "DOT",
    "AVAX",
    "LINK",
    "MATIC",
    "POL",
    "TRX",
    "XLM",
    "ATOM",
    "UNI",
    "SHIB",
    "ETC",
    "XMR",
    "BNB",
    "TON",
    "NEAR",
    "APT",
    "ARB",
    "PEPE",
    "SUI",
)
"""Crypto assets recognised written directly before a quote currency, as in
`BTCUSD`, `XBTUSD` (Kraken's name for bitcoin) or `ETHEUR`."""

_PAIR_SEPARATORS = ("-", "/", "_")


class CalendarRangeError(ArgoPerfError, ValueError):
    """A date or instant outside the range a calendar covers.

    `NYSE` covers 2000-01-01 to 2100-12-31 (its later years are built on
    demand); a calendar built with an explicit `last_year` covers fewer. Beyond
    them a query raises this error instead of guessing; so does an instant too
    close to `datetime.min` or `datetime.max` to be converted. It is also a
    `ValueError`.

    Example:
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


def _upper_all(values: Iterable[str], parameter: str) -> tuple[str, ...]:
    if isinstance(values, str):
        raise TypeError(f"{parameter} must be a collection of strings, got the string {values!r}")
    out = []
    for value in values:
        if not isinstance(value, str):
            raise TypeError(f"{parameter} must hold strings, got {value!r}")
        out.append(value.upper())
    return tuple(out)


@lru_cache(maxsize=64)
def _rule(
    symbols: tuple[str, ...],
    suffixes: tuple[str, ...],
    prefixes: tuple[str, ...],
    bases: tuple[str, ...],
    quotes: tuple[str, ...],
) -> tuple[frozenset[str], tuple[str, ...], tuple[str, ...], frozenset[str], tuple[str, ...]]:
    """The upper-cased, validated form of an `is_crypto` configuration (memoised)."""
    return (
        frozenset(_upper_all(symbols, "symbols")),
        _upper_all(suffixes, "suffixes"),
        _upper_all(prefixes, "prefixes"),
        frozenset(_upper_all(bases, "bases")),
        _upper_all(quotes, "quotes"),
    )


def _as_tuple(values: Iterable[str], parameter: str) -> tuple[str, ...]:
    if isinstance(values, str):
        raise TypeError(f"{parameter} must be a collection of strings, got the string {values!r}")
    return values if isinstance(values, tuple) else tuple(values)


def is_crypto(
    symbol: str,
    *,
    symbols: Collection[str] = (),
    suffixes: Iterable[str] = CRYPTO_SUFFIXES,
    prefixes: Iterable[str] = CRYPTO_PREFIXES,
    bases: Iterable[str] = CRYPTO_BASES,
    quotes: Iterable[str] = CRYPTO_QUOTES,
) -> bool:
    """Whether ``symbol`` names a crypto asset or pair (traded around the clock), not a stock.

    Every comparison ignores case, in the symbol and in the configuration
    alike. A symbol is crypto when it

    | form | examples | decided by |
    | --- | --- | --- |
    | is one of ``symbols`` | ``BTC`` with ``symbols={"btc"}`` | ``symbols`` (none) |
    | starts with a prefix | ``X:BTCUSD`` (Massive / Polygon.io) | ``prefixes`` |
    | ends with a suffix | ``SOLUSDT``, ``PEPEUSDC``, ``BTC-USD`` | ``suffixes`` |
    | is ``BASE-QUOTE``, ``BASE/QUOTE``, ``BASE_QUOTE`` | ``BTC-EUR``, ``eth/usdt`` | ``quotes`` |
    | is ``BASEQUOTE``, a known base | ``BTCUSD``, ``XBTUSD``, ``ETHEUR`` | ``bases``, ``quotes`` |

    The defaults are `CRYPTO_PREFIXES`, `CRYPTO_SUFFIXES`, `CRYPTO_QUOTES`
    and `CRYPTO_BASES`.

    Everything else is a stock (``AAPL``, ``BRK.B``, ``BRK-B``, the empty
    string). Pass your own rule wherever argo_perf takes a classifier, for
    example ``functools.partial(is_crypto, symbols={"HYPE"})``; pass empty
    collections to switch forms off.

    Raises:
        TypeError: ``symbol`` is not a string, or a configuration value is
            not a collection of strings.

    Example:
        >>> is_crypto("BTC-USD"), is_crypto("X:BTCUSD"), is_crypto("XBTUSD"), is_crypto("AAPL")
        (True, True, True, False)
        >>> is_crypto("btc", symbols={"BTC"}), is_crypto("DOGE.X", suffixes=(".x",))
        (True, True)
    """
    if not isinstance(symbol, str):
        raise TypeError(f"symbol must be a str, got {symbol!r}")
    known, ends, starts, base_set, quote_list = _rule(
        _as_tuple(symbols, "symbols"),
        _as_tuple(suffixes, "suffixes"),
        _as_tuple(prefixes, "prefixes"),
        _as_tuple(bases, "bases"),
        _as_tuple(quotes, "quotes"),
    )
    upper = symbol.strip().upper()
    if not upper:
        return False
    if upper in known or (starts and upper.startswith(starts)):
        return True
    if (
        ends
        and upper.endswith(ends)
        and any(len(upper) > len(e) for e in ends if upper.endswith(e))
    ):
        return True
    for separator in _PAIR_SEPARATORS:
        base, found, quote = upper.rpartition(separator)
        if found and base and quote in quote_list:
            return True
    return any(upper.endswith(q) and upper[: -len(q)] in base_set for q in quote_list)


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

    Example:
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


@cache
def _dst_sundays(year: int) -> tuple[int, int]:
    """Ordinals of the Sundays on which New York's daylight saving time starts and ends."""
    if year >= 2007:
        return _nth_weekday(year, 3, 6, 2).toordinal(), _nth_weekday(year, 11, 6, 1).toordinal()
    return _nth_weekday(year, 4, 6, 1).toordinal(), _nth_weekday(year, 10, 6, -1).toordinal()


def _ny_offset(ordinal: int, hour: int) -> int:
    """New York's UTC offset (seconds) at ``hour`` o'clock local time on the day ``ordinal``.

    The clocks change at 02:00 local; in the repeated hour of November the
    first (daylight) reading is taken.
    """
    start, end = _dst_sundays(date.fromordinal(ordinal).year)
    after_start = ordinal > start or (ordinal == start and hour >= 2)
    before_end = ordinal < end or (ordinal == end and hour < 2)
    return _EDT if after_start and before_end else _EST


def _ny_ordinal(ts: float) -> int:
    """The New York date (as an ordinal) of the POSIX instant ``ts``."""
    ordinal = int((ts + _EST) // _DAY) + _EPOCH_ORDINAL  # the date in standard time
    start, end = _dst_sundays(date.fromordinal(ordinal).year)
    # 02:00 EST on the first Sunday is 07:00 UTC; 02:00 EDT on the last one 06:00 UTC.
    dst_from = (start - _EPOCH_ORDINAL) * _DAY + 2 * _HOUR - _EST
    dst_to = (end - _EPOCH_ORDINAL) * _DAY + 2 * _HOUR - _EDT
    if dst_from <= ts < dst_to:
        ordinal = int((ts + _EDT) // _DAY) + _EPOCH_ORDINAL
    return ordinal


@cache
def _nyse_year(year: int) -> tuple[tuple[int, int, int], ...]:
    """``(ordinal, utc_offset, close)`` of every NYSE session of ``year``, from the rules.

    ``close`` is seconds after local midnight. The offset is the one in force
    at local noon; New York changes its clocks on Sundays at 02:00, so on a
    trading day it holds from 04:00 to 20:00.
    """
    holidays = _nyse_holidays(year)
    early = _nyse_early_closes(year)
    sessions: list[tuple[int, int, int]] = []
    first = date(year, 1, 1).toordinal()
    last = date(year, 12, 31).toordinal()
    for ordinal in range(first, last + 1):
        day = date.fromordinal(ordinal)
        if day.weekday() < 5 and day not in holidays:
            close = _EARLY_CLOSE if day in early else _CLOSE
            sessions.append((ordinal, _ny_offset(ordinal, 12), close))
    return tuple(sessions)


def _rule_session(day: date) -> tuple[int, int] | None:
    """``(open, close)`` in seconds after local midnight of ``day`` by the rules, or ``None``."""
    for ordinal, _, close in _nyse_year(day.year):
        if ordinal == day.toordinal():
            return _OPEN, close
    return None


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


@dataclass(frozen=True)
class _Table:
    """A calendar's sessions, built once and never mutated; replaced whole on change.

    ``pres``, ``opens``, ``closes``, ``posts`` hold one entry per session
    (POSIX seconds, ascending); ``starts`` and ``ends`` the trading window
    (regular or extended) with a final ``inf`` entry standing for "no further
    session built". ``first[i]`` is the position of the first session whose
    window ends after the start of day ``i``: day ``i``'s own session when it
    has one, else the next. Days are counted from ``base``, the first day's
    midnight in New York standard time, so no trading day straddles two.
    """

    base: float
    end: float  # base + days * 86,400: the first instant not covered
    last_year: int
    index: dict[int, int]  # date ordinal -> position
    pres: list[float]
    opens: list[float]
    closes: list[float]
    posts: list[float]
    starts: list[float]
    ends: list[float]
    first: array[int]
    # UTC date ordinal -> (open, close) in seconds after that UTC midnight, (0, 0)
    # when closed all day; only for regular hours, whose sessions never cross a
    # UTC midnight, and only for UTC days wholly inside the table.
    utc_days: dict[int, tuple[int, int]]


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

    Example:
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
        self.extended_hours = bool(extended_hours)
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
        closures, late, early = self._additions.snapshot()
        index: dict[int, int] = {}
        pres: list[float] = []
        opens: list[float] = []
        closes: list[float] = []
        posts: list[float] = []
        for year in range(self.first_day.year, last_year + 1):
            for ordinal, offset, close in _nyse_year(year):
                if ordinal in closures:
                    continue
                close = early.get(ordinal, close)
                midnight = (ordinal - _EPOCH_ORDINAL) * _DAY - offset
                index[ordinal] = len(opens)
                pres.append(float(midnight + _PRE_OPEN))
                opens.append(float(midnight + late.get(ordinal, _OPEN)))
                closes.append(float(midnight + close))
                posts.append(float(midnight + close + _POST_LENGTH))
        starts, ends = (pres, posts) if self.extended_hours else (opens, closes)
        starts = [*starts, _INF]
        ends = [*ends, _INF]
        days = date(last_year, 12, 31).toordinal() - self._first_ordinal + 1
        first = array("l", [0]) * days
        position = 0
        ordinals = sorted(index)
        for day in range(days):
            ordinal = self._first_ordinal + day
            while position < len(ordinals) and ordinals[position] < ordinal:
                position += 1
            first[day] = position
        base = self._base
        utc_days: dict[int, tuple[int, int]] = {}
        if not self.extended_hours:
            utc_days = dict.fromkeys(
                range(self._first_ordinal + 1, self._first_ordinal + days), (0, 0)
            )
            for start, end in zip(opens, closes, strict=True):
                utc_day, since = divmod(int(start), _DAY)
                utc_days[utc_day + _EPOCH_ORDINAL] = (since, int(end) - utc_day * _DAY)
        base = self._base
        return _Table(
            base,
            base + days * _DAY,
            last_year,
            index,
            pres,
            opens,
            closes,
            posts,
            starts,
            ends,
            first,
            utc_days,
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

        Example:
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

CRYPTO: MarketCalendar = _AlwaysOpenCalendar("CRYPTO")
"""Crypto markets: always open (see `MarketCalendar`)."""
