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

from ._calendar import (
    CRYPTO,
    CalendarRangeError,
    MarketCalendar,
    MarketSession,
)
from ._calendar import (
    _check_aware as _check_aware,
)
from ._calendar import (
    _timestamp as _timestamp,
)
from ._crypto import CRYPTO_BASES, CRYPTO_PREFIXES, CRYPTO_QUOTES, CRYPTO_SUFFIXES, is_crypto
from ._nyse import NYSE, NYSECalendar

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
