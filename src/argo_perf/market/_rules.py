"""The NYSE's rules: regular hours, full-day holidays, early closes, special closures."""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache

from ._newyork import _HOUR, _nth_weekday, _ny_offset

_OPEN = 9 * _HOUR + 30 * 60  # 09:30, seconds after local midnight
_CLOSE = 16 * _HOUR  # 16:00
_EARLY_CLOSE = 13 * _HOUR  # 13:00
_PRE_OPEN = 4 * _HOUR  # pre-market from 04:00
_POST_LENGTH = 4 * _HOUR  # after-hours run four hours past the close (20:00, 17:00)

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
