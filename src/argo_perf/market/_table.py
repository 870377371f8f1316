"""The per-day session table of an NYSE calendar: built once from the rules, then read."""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from datetime import date

from ._newyork import _DAY, _EPOCH_ORDINAL
from ._rules import _OPEN, _POST_LENGTH, _PRE_OPEN, _nyse_year

_INF = math.inf


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


def _build_table(
    first_day: date,
    base: float,
    last_year: int,
    extended_hours: bool,
    additions: tuple[frozenset[int], dict[int, int], dict[int, int]],
) -> _Table:
    """The sessions from ``first_day`` to the end of ``last_year``, with the additions applied.

    ``base`` is the first day's midnight in New York standard time (POSIX
    seconds); ``additions`` is `_Additions.snapshot()`: closures, late opens
    and early closes.
    """
    first_ordinal = first_day.toordinal()
    closures, late, early = additions
    index: dict[int, int] = {}
    pres: list[float] = []
    opens: list[float] = []
    closes: list[float] = []
    posts: list[float] = []
    for year in range(first_day.year, last_year + 1):
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
    starts, ends = (pres, posts) if extended_hours else (opens, closes)
    starts = [*starts, _INF]
    ends = [*ends, _INF]
    days = date(last_year, 12, 31).toordinal() - first_ordinal + 1
    first = array("l", [0]) * days
    position = 0
    ordinals = sorted(index)
    for day in range(days):
        ordinal = first_ordinal + day
        while position < len(ordinals) and ordinals[position] < ordinal:
            position += 1
        first[day] = position
    utc_days: dict[int, tuple[int, int]] = {}
    if not extended_hours:
        utc_days = dict.fromkeys(range(first_ordinal + 1, first_ordinal + days), (0, 0))
        for start, end in zip(opens, closes, strict=True):
            utc_day, since = divmod(int(start), _DAY)
            utc_days[utc_day + _EPOCH_ORDINAL] = (since, int(end) - utc_day * _DAY)
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
