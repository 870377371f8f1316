"""Market calendars: NYSE from rules (checked against XNYS), CRYPTO and is_crypto."""

from __future__ import annotations

import doctest
import threading
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import exchange_calendars
import numpy as np
import pytest
import pytz
from hypothesis import given, settings
from hypothesis import strategies as st

import argo_perf.market
from argo_perf import (
    CRYPTO,
    NYSE,
    CalendarRangeError,
    ConfigError,
    MarketSession,
    NYSECalendar,
    is_crypto,
)
from argo_perf.market import _calendar, _crypto, _nyse
from argo_perf.market._additions import _NYSE_ADDITIONS
from argo_perf.market._newyork import _dst_sundays, _ny_offset, _ny_ordinal

UTC = timezone.utc
NEW_YORK = pytz.timezone("America/New_York")
FIRST = date(2000, 1, 1)
LAST = date(2035, 12, 31)


def ny(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """An aware New York wall time (localized by pytz, then expressed in UTC)."""
    local = NEW_YORK.localize(datetime(year, month, day, hour, minute))
    return local.astimezone(UTC)


def posix(dt: datetime) -> int:
    return int(dt.timestamp())


def seconds(series: Any) -> Any:
    """A tz-aware pandas series of instants as int64 POSIX seconds."""
    return series.dt.tz_convert(None).to_numpy().astype("datetime64[s]").astype(np.int64)


@pytest.fixture(scope="module")
def xnys() -> Any:
    # The oracle is in the dev extra: a missing install must fail, never skip.
    return exchange_calendars.get_calendar("XNYS", start=FIRST.isoformat(), end=LAST.isoformat())


@pytest.fixture
def cal() -> NYSECalendar:
    """A fresh calendar (additions still reach every calendar, and are undone after each test)."""
    return NYSECalendar()


@pytest.fixture(scope="module")
def oracle_range() -> NYSECalendar:
    """A calendar built for exactly the oracle's years."""
    return NYSECalendar(last_year=LAST.year)


# --- the oracle: exchange_calendars' XNYS over 2000-2035 ---------------------


def sessions_of(cal: NYSECalendar, first: date, last: date) -> list[tuple[date, int, int]]:
    """``(day, open, close)`` of every session of ``cal`` from ``first`` to ``last``, in order.

    Open and close are POSIX seconds, read through the public ``session_hours``.
    """
    sessions = []
    for i in range((last - first).days + 1):
        day = first + timedelta(days=i)
        hours = cal.session_hours(day)
        if hours is not None:
            sessions.append((day, posix(hours[0]), posix(hours[1])))
    return sessions


def test_sessions_match_xnys_for_every_date(xnys: Any, oracle_range: NYSECalendar) -> None:
    days = [FIRST + timedelta(days=i) for i in range((LAST - FIRST).days + 1)]
    ours = np.array([d.toordinal() for d in days if oracle_range.is_session(d)], dtype=np.int64)
    theirs = np.array([d.toordinal() for d in xnys.sessions.date], dtype=np.int64)
    assert len(ours) == len(theirs) == 9049
    assert np.array_equal(ours, theirs)


def test_opens_and_closes_match_xnys_to_the_second(xnys: Any, oracle_range: NYSECalendar) -> None:
    sessions = sessions_of(oracle_range, FIRST, LAST)
    their_opens = seconds(xnys.opens)
    their_closes = seconds(xnys.closes)
    assert np.array_equal(np.array([o for _, o, _ in sessions], dtype=np.int64), their_opens)
    assert np.array_equal(np.array([c for _, _, c in sessions], dtype=np.int64), their_closes)


def test_non_session_weekdays_match_xnys(xnys: Any) -> None:
    sessions = {d.toordinal() for d in xnys.sessions.date}
    days = [FIRST + timedelta(days=i) for i in range((LAST - FIRST).days + 1)]
    ours = np.array([NYSE.is_session(d) for d in days])
    theirs = np.array([d.toordinal() in sessions for d in days])
    mismatched = [d for d, a, b in zip(days, ours, theirs, strict=True) if a != b]
    assert mismatched == []
    weekday_holidays = sum(1 for d, s in zip(days, ours, strict=True) if d.weekday() < 5 and not s)
    assert weekday_holidays == len([d for d in days if d.weekday() < 5]) - 9049


def test_is_open_flips_exactly_at_every_open_and_close(xnys: Any) -> None:
    opens = seconds(xnys.opens)
    closes = seconds(xnys.closes)
    cal = NYSECalendar()
    for o, c in zip(opens.tolist(), closes.tolist(), strict=True):
        assert not cal.is_open(datetime.fromtimestamp(o - 1, UTC))
        assert cal.is_open(datetime.fromtimestamp(o, UTC))
        assert cal.is_open(datetime.fromtimestamp(c - 1, UTC))
        assert not cal.is_open(datetime.fromtimestamp(c, UTC))


XNYS_MINUTES = (posix(ny(2035, 12, 31, 16)) - posix(ny(2000, 1, 3, 9, 30))) // 60


@settings(max_examples=60, deadline=None)
@given(minute=st.integers(0, XNYS_MINUTES - 1))
def test_is_open_agrees_with_xnys_minute_check(xnys: Any, minute: int) -> None:
    # exchange_calendars refuses minutes before its first open or after its last close.
    dt = ny(2000, 1, 3, 9, 30) + timedelta(minutes=minute)
    assert NYSE.is_open(dt) == xnys.is_open_on_minute(dt)


# --- the rules, day by day ----------------------------------------------------


@pytest.mark.parametrize(
    ("day", "why"),
    [
        (date(2022, 6, 20), "Juneteenth on a Sunday, observed Monday"),
        (date(2024, 6, 19), "Juneteenth"),
        (date(2021, 12, 24), "Christmas on a Saturday, observed Friday"),
        (date(2022, 12, 26), "Christmas on a Sunday, observed Monday"),
        (date(2020, 7, 3), "Independence Day on a Saturday, observed Friday"),
        (date(2017, 1, 2), "New Year's Day on a Sunday, observed Monday"),
        (date(2024, 3, 29), "Good Friday"),
        (date(2026, 1, 19), "Martin Luther King Jr. Day"),
        (date(2026, 2, 16), "Washington's Birthday"),
        (date(2026, 5, 25), "Memorial Day"),
        (date(2026, 9, 7), "Labor Day"),
        (date(2026, 11, 26), "Thanksgiving"),
        (date(2001, 9, 11), "September 11"),
        (date(2012, 10, 30), "Hurricane Sandy"),
        (date(2018, 12, 5), "George H. W. Bush"),
        (date(2025, 1, 9), "Jimmy Carter"),
    ],
)
def test_holidays_are_not_sessions(day: date, why: str) -> None:
    assert not NYSE.is_session(day), why
    assert NYSE.session_hours(day) is None


@pytest.mark.parametrize(
    ("day", "why"),
    [
        (date(2021, 6, 18), "Juneteenth was not a holiday before 2022"),
        (date(2021, 12, 31), "New Year's Day on a Saturday is not observed"),
        (date(2026, 10, 12), "Columbus Day is not an NYSE holiday"),
        (date(2026, 11, 11), "Veterans Day is not an NYSE holiday"),
        (date(2008, 12, 26), "no early close the Friday after Christmas 2008"),
    ],
)
def test_days_that_look_like_holidays_are_full_sessions(day: date, why: str) -> None:
    hours = NYSE.session_hours(day)
    assert hours is not None, why
    assert hours[1] - hours[0] == timedelta(hours=6, minutes=30), why


@pytest.mark.parametrize(
    "day",
    [
        date(2026, 11, 27),  # day after Thanksgiving
        date(2025, 12, 24),  # Christmas Eve on a Wednesday
        date(2019, 7, 3),  # Wednesday July 3rd, from 2013 on
        date(2025, 7, 3),  # Thursday July 3rd
        date(2002, 7, 5),  # Friday after a Thursday July 4th, before 2013
        date(2003, 12, 26),  # special
    ],
)
def test_early_closes_end_at_13_00_new_york(day: date) -> None:
    hours = NYSE.session_hours(day)
    assert hours is not None
    assert hours[0] == ny(day.year, day.month, day.day, 9, 30)
    assert hours[1] == ny(day.year, day.month, day.day, 13)


def test_wednesday_july_3rd_was_a_full_day_before_2013() -> None:
    hours = NYSE.session_hours(date(2002, 7, 3))
    assert hours is not None
    assert hours[1] == ny(2002, 7, 3, 16)


def test_open_follows_daylight_saving_time() -> None:
    # 2026-03-08 clocks go forward: 09:30 EST is 14:30 UTC, 09:30 EDT 13:30 UTC.
    assert NYSE.session_hours(date(2026, 3, 6)) == (
        datetime(2026, 3, 6, 14, 30, tzinfo=UTC),
        datetime(2026, 3, 6, 21, 0, tzinfo=UTC),
    )
    assert NYSE.session_hours(date(2026, 3, 9)) == (
        datetime(2026, 3, 9, 13, 30, tzinfo=UTC),
        datetime(2026, 3, 9, 20, 0, tzinfo=UTC),
    )
    assert NYSE.next_open(datetime(2026, 10, 30, 21, 0, tzinfo=UTC)) == datetime(
        2026, 11, 2, 14, 30, tzinfo=UTC
    )


# --- queries -----------------------------------------------------------------


def test_a_session_is_half_open() -> None:
    opens, closes = ny(2026, 1, 5, 9, 30), ny(2026, 1, 5, 16)
    assert NYSE.is_open(opens)
    assert NYSE.is_open(closes - timedelta(microseconds=1))
    assert not NYSE.is_open(closes)
    assert not NYSE.is_open(opens - timedelta(microseconds=1))


def test_is_open_accepts_any_aware_timezone() -> None:
    when = datetime(2026, 1, 5, 10, 0, tzinfo=ZoneInfo("America/New_York"))
    assert NYSE.is_open(when)
    assert NYSE.is_open(NEW_YORK.localize(datetime(2026, 1, 5, 10, 0)))
    assert not NYSE.is_open(datetime(2026, 1, 5, 10, 0, tzinfo=timezone(timedelta(hours=1))))


def test_next_open_is_strictly_after() -> None:
    monday_open = ny(2026, 1, 5, 9, 30)
    assert NYSE.next_open(ny(2026, 1, 3, 12)) == monday_open  # Saturday
    assert NYSE.next_open(monday_open - timedelta(seconds=1)) == monday_open
    assert NYSE.next_open(monday_open) == ny(2026, 1, 6, 9, 30)
    assert NYSE.next_open(ny(2026, 1, 16, 17)) == ny(2026, 1, 20, 9, 30)  # over MLK day


def test_next_close_is_the_current_sessions_when_open() -> None:
    assert NYSE.next_close(ny(2026, 1, 5, 10)) == ny(2026, 1, 5, 16)
    assert NYSE.next_close(ny(2026, 1, 5, 16)) == ny(2026, 1, 6, 16)
    assert NYSE.next_close(ny(2026, 1, 5, 7)) == ny(2026, 1, 5, 16)
    assert NYSE.next_close(ny(2026, 11, 27, 12)) == ny(2026, 11, 27, 13)
    assert NYSE.next_close(ny(2026, 1, 5, 10)).tzinfo is UTC


def test_after_the_last_close_of_the_range_is_closed() -> None:
    assert not NYSE.is_open(ny(2035, 12, 31, 17))
    assert NYSE.session_at(ny(2035, 12, 31, 17)) is MarketSession.POST
    assert not NYSE.is_open(ny(2035, 12, 31, 23, 59))


def test_seconds_until_open() -> None:
    assert NYSE.seconds_until_open(ny(2026, 1, 5, 9, 28)) == 120.0
    assert NYSE.seconds_until_open(ny(2026, 1, 5, 12)) == 0.0
    assert NYSE.seconds_until_open(ny(2026, 1, 2, 16)) == (3 * 24 - 6.5) * 3600
    assert NYSE.seconds_until_open(ny(2026, 1, 5, 9, 28)) == 120.0  # remembered interval


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (ny(2026, 1, 5, 3, 59), MarketSession.CLOSED),
        (ny(2026, 1, 5, 4), MarketSession.PRE),
        (ny(2026, 1, 5, 9, 29), MarketSession.PRE),
        (ny(2026, 1, 5, 9, 30), MarketSession.REGULAR),
        (ny(2026, 1, 5, 15, 59), MarketSession.REGULAR),
        (ny(2026, 1, 5, 16), MarketSession.POST),
        (ny(2026, 1, 5, 19, 59), MarketSession.POST),
        (ny(2026, 1, 5, 20), MarketSession.CLOSED),
        (ny(2026, 11, 27, 13), MarketSession.POST),  # early close
        (ny(2026, 11, 27, 17), MarketSession.CLOSED),
        (ny(2026, 1, 3, 12), MarketSession.CLOSED),  # Saturday
        (ny(2026, 1, 1, 12), MarketSession.CLOSED),  # holiday
        (ny(2000, 1, 1, 0), MarketSession.CLOSED),  # first instant covered
    ],
)
def test_session_at(when: datetime, expected: MarketSession) -> None:
    assert NYSE.session_at(when) is expected


def test_extended_hours_widen_the_trading_window() -> None:
    cal = NYSECalendar(extended_hours=True)
    assert cal.extended_hours
    assert cal.is_open(ny(2026, 1, 5, 4))
    assert cal.is_open(ny(2026, 1, 5, 19, 59))
    assert not cal.is_open(ny(2026, 1, 5, 20))
    assert cal.session_hours(date(2026, 1, 5)) == (ny(2026, 1, 5, 4), ny(2026, 1, 5, 20))
    assert cal.session_hours(date(2026, 11, 27)) == (ny(2026, 11, 27, 4), ny(2026, 11, 27, 17))
    assert cal.next_open(ny(2026, 1, 5, 21)) == ny(2026, 1, 6, 4)
    assert cal.next_close(ny(2026, 1, 5, 17)) == ny(2026, 1, 5, 20)
    assert cal.session_at(ny(2026, 1, 5, 5)) is MarketSession.PRE
    assert "extended_hours=True" in repr(cal)


def test_extended_hours_follow_daylight_saving_time() -> None:
    cal = NYSECalendar(extended_hours=True)
    for day in (date(2026, 3, 6), date(2026, 3, 9), date(2026, 10, 30), date(2026, 11, 2)):
        hours = cal.session_hours(day)
        assert hours == (ny(day.year, day.month, day.day, 4), ny(day.year, day.month, day.day, 20))


def test_session_queries_accept_aware_datetimes_as_new_york_dates() -> None:
    # 02:00 UTC on Tuesday is still Monday evening in New York.
    assert NYSE.session_hours(datetime(2026, 1, 6, 2, 0, tzinfo=UTC)) == NYSE.session_hours(
        date(2026, 1, 5)
    )
    assert not NYSE.is_session(datetime(2026, 1, 4, 2, 0, tzinfo=UTC))


# --- errors -------------------------------------------------------------------

NAIVE = datetime(2026, 1, 5, 10, 0)


@pytest.mark.parametrize(
    "method",
    ["is_open", "next_open", "next_close", "seconds_until_open", "session_at", "is_session"],
)
@pytest.mark.parametrize("calendar", [NYSE, CRYPTO], ids=["NYSE", "CRYPTO"])
def test_naive_datetimes_raise_value_error(calendar: Any, method: str) -> None:
    with pytest.raises(ValueError, match="naive"):
        getattr(calendar, method)(NAIVE)


TO_2035 = NYSECalendar(last_year=2035)
END = datetime(2100, 12, 31, 22, tzinfo=UTC)  # after the last close NYSE covers


@pytest.mark.parametrize(
    "call",
    [
        lambda: TO_2035.is_session(date(1999, 12, 31)),
        lambda: TO_2035.session_hours(date(2036, 1, 2)),
        lambda: TO_2035.is_open(datetime(1999, 12, 31, 15, tzinfo=UTC)),
        lambda: TO_2035.is_open(datetime(2036, 1, 2, 15, tzinfo=UTC)),
        lambda: TO_2035.session_at(datetime(2036, 1, 2, 15, tzinfo=UTC)),
        lambda: TO_2035.next_open(datetime(2035, 12, 31, 22, tzinfo=UTC)),
        lambda: TO_2035.next_close(datetime(2035, 12, 31, 22, tzinfo=UTC)),
        lambda: TO_2035.seconds_until_open(datetime(2035, 12, 31, 22, tzinfo=UTC)),
        lambda: TO_2035.next_open(datetime(1999, 1, 1, tzinfo=UTC)),
    ],
)
def test_outside_the_chosen_range_raises(call: Any) -> None:
    with pytest.raises(CalendarRangeError, match="2000-01-01 to 2035-12-31"):
        call()


@pytest.mark.parametrize(
    "call",
    [
        lambda: NYSE.is_session(date(2101, 1, 3)),
        lambda: NYSE.is_open(datetime(2101, 1, 3, 15, tzinfo=UTC)),
        lambda: NYSE.next_open(END),
        lambda: NYSE.next_close(END),
        lambda: NYSE.seconds_until_open(END),
    ],
)
def test_the_default_calendar_ends_with_2100(call: Any) -> None:
    with pytest.raises(CalendarRangeError, match="2000-01-01 to 2100-12-31"):
        call()


def test_the_default_calendar_has_no_cliff_before_2100() -> None:
    cal = NYSECalendar()
    # The close of the last session of 2035 used to be the end of the default calendar.
    last_2035 = ny(2035, 12, 31, 16)
    assert cal.next_open(last_2035) == ny(2036, 1, 2, 9, 30)
    assert cal.seconds_until_open(last_2035) == (ny(2036, 1, 2, 9, 30) - last_2035).total_seconds()
    assert cal.is_open(ny(2040, 7, 2, 9, 45))  # summer time past pytz's 2037
    assert not cal.is_open(ny(2040, 7, 2, 16, 30))
    assert cal.session_at(ny(2099, 12, 31, 15)) is MarketSession.REGULAR
    assert cal.next_close(ny(2100, 12, 30, 12)) == ny(2100, 12, 30, 16)
    assert cal.session_hours(date(2100, 12, 31)) == (ny(2100, 12, 31, 9, 30), ny(2100, 12, 31, 16))


def test_a_grown_calendar_keeps_its_additions() -> None:
    cal = NYSECalendar()
    cal.add_closure(date(2026, 3, 2))
    assert cal.is_session(date(2050, 3, 1))  # grows the table
    assert not cal.is_session(date(2026, 3, 2))


PLUS_ONE = timezone(timedelta(hours=1))
MINUS_FIVE = timezone(timedelta(hours=-5))


@pytest.mark.parametrize(
    "method", ["is_open", "next_open", "next_close", "seconds_until_open", "session_at"]
)
@pytest.mark.parametrize("calendar", [NYSE, CRYPTO], ids=["NYSE", "CRYPTO"])
@pytest.mark.parametrize("value", [date(2026, 1, 6), "2026-01-06", 1767700000.0, None, time(10)])
def test_instants_that_are_not_datetimes_raise_type_error(
    calendar: Any, method: str, value: object
) -> None:
    with pytest.raises(TypeError) as info:
        getattr(calendar, method)(value)
    assert str(info.value) == f"dt must be an aware datetime, got {value!r}"


@pytest.mark.parametrize("method", ["is_session", "session_hours"])
@pytest.mark.parametrize("calendar", [NYSE, CRYPTO], ids=["NYSE", "CRYPTO"])
@pytest.mark.parametrize("value", ["2026-01-06", 20260106, None])
def test_days_that_are_not_dates_raise_type_error(
    calendar: Any, method: str, value: object
) -> None:
    with pytest.raises(TypeError) as info:
        getattr(calendar, method)(value)
    assert str(info.value) == f"day must be a date or an aware datetime, got {value!r}"


@pytest.mark.parametrize(
    "method", ["is_open", "next_open", "next_close", "seconds_until_open", "session_at"]
)
@pytest.mark.parametrize(
    ("calendar", "value"),
    [
        (NYSE, datetime.min.replace(tzinfo=PLUS_ONE)),  # 31 December of year 0 in UTC
        (NYSE, datetime.max.replace(tzinfo=MINUS_FIVE)),  # 1 January 10000 in UTC
        (NYSE, datetime.max.replace(tzinfo=UTC)),
    ],
)
def test_instants_beyond_datetime_range_raise_range_error(
    calendar: Any, method: str, value: datetime
) -> None:
    with pytest.raises(CalendarRangeError) as info:
        getattr(calendar, method)(value)
    assert f"dt={value.isoformat()}" in str(info.value)


@pytest.mark.parametrize("method", ["next_open", "next_close"])
@pytest.mark.parametrize(
    "last", [datetime.max.replace(tzinfo=UTC), datetime.max.replace(tzinfo=MINUS_FIVE)]
)
def test_crypto_has_no_open_after_the_last_datetime(method: str, last: datetime) -> None:
    assert CRYPTO.is_open(last)
    with pytest.raises(CalendarRangeError) as info:
        getattr(CRYPTO, method)(last)
    assert f"dt={last.isoformat()}" in str(info.value)
    with pytest.raises(CalendarRangeError, match="day="):
        CRYPTO.session_hours(date.max)


def test_nyse_range_errors_name_the_value() -> None:
    last = datetime.max.replace(tzinfo=UTC)
    with pytest.raises(CalendarRangeError, match=r"dt=9999-12-31T23:59:59\.999999"):
        NYSE.next_open(last)
    with pytest.raises(CalendarRangeError, match="day=1999-12-31"):
        NYSE.is_session(date(1999, 12, 31))


def test_range_error_is_a_value_error() -> None:
    assert issubclass(CalendarRangeError, ValueError)


def test_sessions_after_2035_match_xnys_to_the_second() -> None:
    theirs = exchange_calendars.get_calendar("XNYS", start="2036-01-01", end="2100-12-31")
    cal = NYSECalendar(first_year=2036, last_year=2100)
    sessions = sessions_of(cal, date(2036, 1, 1), date(2100, 12, 31))
    ours = np.array([d.toordinal() for d, _, _ in sessions], dtype=np.int64)
    assert np.array_equal(ours, np.array([d.toordinal() for d in theirs.sessions.date]))
    assert np.array_equal(np.array([o for _, o, _ in sessions]), seconds(theirs.opens))
    assert np.array_equal(np.array([c for _, _, c in sessions]), seconds(theirs.closes))


def test_new_york_offsets_match_the_tz_database_every_day() -> None:
    # pytz's New York data ends in 2037; zoneinfo follows the rule past it.
    new_york = ZoneInfo("America/New_York")
    mismatched = []
    for ordinal in range(date(2000, 1, 1).toordinal(), date(2100, 12, 31).toordinal() + 1):
        day = date.fromordinal(ordinal)
        for hour in (0, 12):
            local = datetime(day.year, day.month, day.day, hour, tzinfo=new_york)
            expected = local.utcoffset()
            assert expected is not None
            if _ny_offset(ordinal, hour) != expected.total_seconds():
                mismatched.append((day, hour))
    assert mismatched == []


@settings(max_examples=300, deadline=None)
@given(
    ts=st.integers(
        posix(datetime(2000, 1, 1, tzinfo=UTC)), posix(datetime(2100, 12, 31, tzinfo=UTC))
    )
)
def test_new_york_dates_of_instants_match_the_tz_database(ts: int) -> None:
    expected = datetime.fromtimestamp(ts, ZoneInfo("America/New_York")).date()
    assert _ny_ordinal(ts) == expected.toordinal()


def test_new_york_dates_around_the_clock_changes() -> None:
    new_york = ZoneInfo("America/New_York")
    for year in (2006, 2007, 2040, 2099):
        start, end = _dst_sundays(year)
        for ordinal in (start, end):
            midnight = datetime.combine(date.fromordinal(ordinal), time(0), new_york)
            for minutes in range(-90, 24 * 60 + 90, 15):
                ts = midnight.timestamp() + 60 * minutes
                expected = datetime.fromtimestamp(ts, new_york).date().toordinal()
                assert _ny_ordinal(ts) == expected


def test_the_covered_years_can_be_chosen() -> None:
    cal = NYSECalendar(first_year=2030, last_year=2040)
    assert cal.is_session(date(2040, 12, 31))
    assert not cal.is_session(date(2040, 12, 25))
    with pytest.raises(CalendarRangeError):
        cal.is_session(date(2029, 12, 31))
    assert repr(cal) == "NYSECalendar(first_year=2030, last_year=2040)"


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"first_year": 1999}, "first_year"),
        ({"last_year": 2101}, "last_year"),
        ({"first_year": 2010, "last_year": 2005}, "first_year"),
        ({"last_year": "2030"}, "last_year"),
    ],
)
def test_bad_years_raise_config_error(kwargs: dict[str, Any], parameter: str) -> None:
    with pytest.raises(ConfigError) as info:
        NYSECalendar(**kwargs)
    assert info.value.parameter == parameter


# --- closures and early closes added at run time -------------------------------


def test_added_closure_removes_the_session(cal: NYSECalendar) -> None:
    inside = ny(2026, 3, 2, 11)
    assert cal.is_open(inside)  # remembers the interval around 11:00
    cal.add_closure(date(2026, 3, 2))
    assert not cal.is_session(date(2026, 3, 2))
    assert not cal.is_open(inside)
    assert cal.next_open(ny(2026, 2, 27, 17)) == ny(2026, 3, 3, 9, 30)
    assert cal.seconds_until_open(ny(2026, 3, 3, 9, 29)) == 60.0
    cal.add_closure(date(2026, 3, 2))  # idempotent
    cal.add_closure(date(2026, 3, 1))  # a Sunday: no change
    # Every NYSE calendar in the process sees it, whenever it was built.
    assert not NYSE.is_session(date(2026, 3, 2))
    assert not NYSECalendar(extended_hours=True).is_session(date(2026, 3, 2))


def test_closure_added_before_first_use_applies(cal: NYSECalendar) -> None:
    cal.add_closure(date(2026, 3, 2))
    assert not cal.is_session(date(2026, 3, 2))


def test_added_early_close(cal: NYSECalendar) -> None:
    assert cal.is_open(ny(2026, 3, 3, 14))
    cal.add_early_close(date(2026, 3, 3))
    assert not cal.is_open(ny(2026, 3, 3, 14))
    assert cal.session_hours(date(2026, 3, 3)) == (ny(2026, 3, 3, 9, 30), ny(2026, 3, 3, 13))
    assert cal.session_at(ny(2026, 3, 3, 16, 59)) is MarketSession.POST
    assert cal.session_at(ny(2026, 3, 3, 17)) is MarketSession.CLOSED
    cal.add_early_close(date(2026, 3, 3), time(12, 0))
    assert cal.next_close(ny(2026, 3, 3, 10)) == ny(2026, 3, 3, 12)


def test_added_late_open(cal: NYSECalendar) -> None:
    extended = NYSECalendar(extended_hours=True)
    assert extended.session_at(ny(2026, 3, 3, 10)) is MarketSession.REGULAR
    NYSE.add_late_open(date(2026, 3, 3), time(10, 30))
    for calendar in (cal, NYSE):
        assert not calendar.is_open(ny(2026, 3, 3, 10))
        assert calendar.is_open(ny(2026, 3, 3, 10, 30))
        assert calendar.session_hours(date(2026, 3, 3)) == (
            ny(2026, 3, 3, 10, 30),
            ny(2026, 3, 3, 16),
        )
        assert calendar.next_open(ny(2026, 3, 3, 9, 30)) == ny(2026, 3, 3, 10, 30)
        assert calendar.seconds_until_open(ny(2026, 3, 3, 10)) == 1800.0
    assert extended.session_at(ny(2026, 3, 3, 10)) is MarketSession.PRE
    assert extended.is_open(ny(2026, 3, 3, 10))  # pre-market still opens at 04:00
    # A late open and an early close on the same day.
    cal.add_early_close(date(2026, 3, 3), time(12))
    assert NYSE.session_hours(date(2026, 3, 3)) == (ny(2026, 3, 3, 10, 30), ny(2026, 3, 3, 12))


@pytest.mark.parametrize(
    "when", [time(9, 30), time(16), time(10, tzinfo=UTC), "10:30", time(9, 30, 0, 500_000)]
)
def test_late_open_time_must_fall_inside_the_session(cal: NYSECalendar, when: Any) -> None:
    with pytest.raises(ConfigError) as info:
        cal.add_late_open(date(2026, 3, 3), when)
    assert info.value.parameter == "open"


def test_added_times_are_whole_seconds(cal: NYSECalendar) -> None:
    # Fractions of a second were dropped: 16:00:00.5 passed as 16:00, 09:45:00.5 became 09:45.
    with pytest.raises(ConfigError, match="whole seconds") as info:
        cal.add_early_close(date(2026, 3, 3), time(16, 0, 0, 500_000))
    assert info.value.parameter == "close"
    with pytest.raises(ConfigError, match="whole seconds") as info:
        cal.add_late_open(date(2026, 3, 3), time(9, 45, 0, 500_000))
    assert info.value.parameter == "open"
    assert cal.session_hours(date(2026, 3, 3)) == (ny(2026, 3, 3, 9, 30), ny(2026, 3, 3, 16))


def test_late_open_and_early_close_must_not_cross(cal: NYSECalendar) -> None:
    cal.add_early_close(date(2026, 3, 3), time(12))
    with pytest.raises(ConfigError, match="12:00"):
        cal.add_late_open(date(2026, 3, 3), time(12, 30))
    cal.add_late_open(date(2026, 3, 4), time(11))
    with pytest.raises(ConfigError, match="11:00"):
        cal.add_early_close(date(2026, 3, 4), time(10, 30))
    with pytest.raises(ValueError, match="not an NYSE session"):
        cal.add_late_open(date(2026, 1, 1), time(10))


def test_additions_reach_calendars_built_before_and_after() -> None:
    early_bird = NYSECalendar(extended_hours=True)
    assert early_bird.is_session(date(2026, 3, 2))  # built before the addition
    NYSE.add_closure(date(2026, 3, 2))
    later = NYSECalendar(first_year=2026, last_year=2026)
    for calendar in (NYSE, early_bird, later):
        assert not calendar.is_session(date(2026, 3, 2))
    later.add_early_close(date(2026, 3, 3))
    assert NYSE.next_close(ny(2026, 3, 3, 10)) == ny(2026, 3, 3, 13)
    assert early_bird.next_close(ny(2026, 3, 3, 10)) == ny(2026, 3, 3, 17)


def test_early_close_on_a_closed_day_is_refused(cal: NYSECalendar) -> None:
    with pytest.raises(ValueError, match="not an NYSE session"):
        cal.add_early_close(date(2026, 1, 1))
    cal.add_closure(date(2026, 3, 2))
    with pytest.raises(ValueError, match="not an NYSE session"):
        cal.add_early_close(date(2026, 3, 2))


@pytest.mark.parametrize("close", [time(9, 30), time(16, 30), time(13, tzinfo=UTC)])
def test_early_close_time_must_fall_inside_the_session(cal: NYSECalendar, close: time) -> None:
    with pytest.raises(ConfigError) as info:
        cal.add_early_close(date(2026, 3, 3), close)
    assert info.value.parameter == "close"


def test_additions_outside_the_range_raise(cal: NYSECalendar) -> None:
    with pytest.raises(CalendarRangeError):
        cal.add_closure(date(2101, 1, 3))
    with pytest.raises(CalendarRangeError):
        cal.add_early_close(date(1999, 1, 4))


def test_closures_added_while_other_threads_read(cal: NYSECalendar) -> None:
    days = [date(2026, 4, 6) + timedelta(days=7 * i) for i in range(5)]  # Mondays
    stop = threading.Event()
    errors: list[BaseException] = []

    def read() -> None:
        try:
            while not stop.is_set():
                for day in days:
                    cal.is_open(ny(day.year, day.month, day.day, 11))
                    cal.seconds_until_open(ny(day.year, day.month, day.day, 8))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for thread in readers:
        thread.start()
    for day in days:
        cal.add_closure(day)
    stop.set()
    for thread in readers:
        thread.join()
    assert errors == []
    for day in days:
        assert not cal.is_open(ny(day.year, day.month, day.day, 11))
        assert cal.seconds_until_open(ny(day.year, day.month, day.day, 8)) > 24 * 3600


def test_concurrent_first_use_gives_every_thread_the_same_sessions() -> None:
    cal = NYSECalendar(first_year=2020, last_year=2021)
    barrier = threading.Barrier(4)
    answers: list[object] = []

    def first_use() -> None:
        barrier.wait()
        answers.append(
            (
                cal.is_open(ny(2021, 7, 2, 10)),
                cal.session_hours(date(2020, 11, 27)),
                cal.next_open(ny(2021, 7, 2, 16)),
            )
        )

    threads = [threading.Thread(target=first_use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = (True, (ny(2020, 11, 27, 9, 30), ny(2020, 11, 27, 13)), ny(2021, 7, 6, 9, 30))
    assert answers == [expected] * 4
    with pytest.raises(AttributeError):
        cal.no_such_attribute  # noqa: B018


# --- invariants ----------------------------------------------------------------

instants = st.integers(posix(ny(2000, 1, 1)), posix(ny(2035, 12, 20)) - 1).map(
    lambda s: datetime.fromtimestamp(s, UTC)
)


@settings(max_examples=200, deadline=None)
@given(dt=instants)
def test_queries_are_consistent(dt: datetime) -> None:
    is_open = NYSE.is_open(dt)
    assert is_open == (NYSE.session_at(dt) is MarketSession.REGULAR)
    nxt_open, nxt_close = NYSE.next_open(dt), NYSE.next_close(dt)
    assert nxt_open > dt
    assert nxt_close > dt
    assert NYSE.is_open(nxt_open)
    assert not NYSE.is_open(nxt_close)
    assert (nxt_close < nxt_open) == is_open
    wait = NYSE.seconds_until_open(dt)
    assert wait == (0.0 if is_open else (nxt_open - dt).total_seconds())


@settings(max_examples=200, deadline=None)
@given(dt=instants)
def test_is_open_is_the_same_in_every_time_zone(dt: datetime) -> None:
    # UTC datetimes take the per-UTC-day shortcut; others go through POSIX time.
    expected = NYSE.is_open(dt)
    assert NYSE.is_open(dt.astimezone(ZoneInfo("America/New_York"))) == expected
    assert NYSE.is_open(dt.astimezone(timezone(timedelta(hours=9)))) == expected
    assert NYSE.session_at(dt) == NYSE.session_at(dt.astimezone(ZoneInfo("Asia/Tokyo")))


# --- CRYPTO and is_crypto -----------------------------------------------------------


def test_crypto_never_closes() -> None:
    for dt in (ny(2026, 12, 25, 12), ny(2026, 1, 3, 3), datetime(2099, 1, 1, tzinfo=UTC)):
        assert CRYPTO.is_open(dt)
        assert CRYPTO.session_at(dt) is MarketSession.REGULAR
        assert CRYPTO.seconds_until_open(dt) == 0.0
    assert CRYPTO.is_session(date(2026, 12, 25))
    assert CRYPTO.is_session(datetime(2026, 12, 25, tzinfo=UTC))
    assert CRYPTO.session_hours(date(2026, 12, 25)) == (
        datetime(2026, 12, 25, tzinfo=UTC),
        datetime(2026, 12, 26, tzinfo=UTC),
    )
    assert CRYPTO.session_hours(ny(2026, 12, 25, 20)) == (
        datetime(2026, 12, 26, tzinfo=UTC),
        datetime(2026, 12, 27, tzinfo=UTC),
    )
    midnight = datetime(2026, 12, 26, tzinfo=UTC)
    assert CRYPTO.next_open(ny(2026, 12, 25, 12)) == midnight
    assert CRYPTO.next_close(midnight) == midnight + timedelta(days=1)
    assert "CRYPTO" in repr(CRYPTO)


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [
        ("BTC-USD", True),
        ("eth-usd", True),
        ("SOLUSDT", True),
        ("ETH-USDC", True),
        ("BTC/USD", True),
        ("ETH-BTC", True),
        ("AAPL", False),
        ("SPY", False),
        ("BRK.B", False),
        ("", False),
        # The forms of the vendors' tickers.
        ("X:BTCUSD", True),
        ("x:ethusd", True),
        ("BTCUSD", True),
        ("XBTUSD", True),
        ("ETHEUR", True),
        ("btcusd", True),
        ("BTC-EUR", True),
        ("DOGE/GBP", True),
        ("SOL_USDT", True),
        ("PEPEUSDC", True),
        # Stocks that look a little like pairs.
        ("BRK-B", False),
        ("BF.B", False),
        ("USD", False),
        ("EUR", False),
        ("-USD", False),
        ("MSFT", False),
        ("ZBTCUSD", False),
    ],
)
def test_is_crypto_default_rule(symbol: str, expected: bool) -> None:
    assert is_crypto(symbol) is expected


def test_is_crypto_is_configurable() -> None:
    assert is_crypto("BTC", symbols={"BTC", "ETH"})
    assert is_crypto("btc", symbols={"BTC"})
    assert is_crypto("BTC", symbols={"btc"})
    assert not is_crypto("DOGE", symbols={"BTC"})
    assert is_crypto("DOGE.X", suffixes=[".X"])
    assert is_crypto("DOGE.X", suffixes=[".x"])
    assert is_crypto("HYPEUSD", bases={"hype"})
    assert is_crypto("btc-usd", suffixes=("-usd",), quotes=())
    assert is_crypto("KR:BTCKRW", prefixes=("kr:",))
    # Each form is switched off by an empty collection.
    assert not is_crypto("BTC-USD", suffixes=(".X",), quotes=())
    assert not is_crypto("X:BTC", prefixes=())
    assert not is_crypto("BTCUSD", bases=())


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"symbols": "BTC"}, "symbols"),
        ({"suffixes": [1]}, "suffixes"),
        ({"quotes": "USD"}, "quotes"),
    ],
)
def test_is_crypto_refuses_bad_configuration(kwargs: dict[str, Any], parameter: str) -> None:
    with pytest.raises(TypeError, match=parameter):
        is_crypto("BTC-USD", **kwargs)


@pytest.mark.parametrize("symbol", [None, 42, b"BTC-USD"])
def test_is_crypto_refuses_a_symbol_that_is_not_a_string(symbol: Any) -> None:
    with pytest.raises(TypeError, match=f"symbol must be a str, got {symbol!r}"):
        is_crypto(symbol)


@pytest.mark.parametrize("module", [_calendar, _crypto, _nyse], ids=lambda module: module.__name__)
def test_doctests(module: Any) -> None:
    # The examples speak of the names argo_perf.market exports, wherever they are defined.
    result = doctest.testmod(module, extraglobs=vars(argo_perf.market))
    assert result.attempted > 0
    assert result.failed == 0


@pytest.fixture(autouse=True)
def _additions_are_undone() -> Iterator[None]:
    """Additions are process-wide: every test leaves the NYSE calendars as it found them."""
    yield
    _NYSE_ADDITIONS.clear()
