"""New York's clock: its UTC offset and the New York date of an instant, from the US rule.

The clocks change at 02:00 local on the second Sunday of March and the first
Sunday of November since 2007, on the first Sunday of April and the last Sunday
of October before. The rule is computed rather than read from a time-zone
database, so that years past 2037 (where pytz's data ends) are right too.
"""

from __future__ import annotations

from datetime import date, timedelta, timezone
from functools import cache

_UTC = timezone.utc
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY = 86_400
_HOUR = 3_600
_EST = -5 * _HOUR  # New York standard time
_EDT = -4 * _HOUR  # New York daylight saving time


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th ``weekday`` (Monday = 0) of a month; n = -1 for the last one."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    nxt = date(year + month // 12, month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


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
