"""Laws that hold for every input: calendars, the cache's serializers, and construction.

Calendars: opens and closes are strictly after the instant asked about, sessions
never overlap, and ``is_open`` agrees with ``session_hours`` of the instant's day,
from 2000 to 2035 and around every clock change. Serializers: every documented type
comes back equal and of its own type. Construction: every public constructor
refuses a bad value with a `ConfigError` naming the parameter, and nothing else.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import argo_perf as ap
from argo_perf import CRYPTO, NYSE, Clock, ConfigError, MarketCalendar, Quota, RedisCache
from argo_perf.cache._envelope import Envelope, pick_serializer

UTC = timezone.utc
NEW_YORK = ZoneInfo("America/New_York")
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- calendars ------------------------------------------------------------------------


def _clock_changes() -> list[int]:
    """POSIX seconds of every New York clock change from 2000 to 2035."""
    changes = []
    day = datetime(2000, 1, 1, 12, tzinfo=UTC)
    offset = day.astimezone(NEW_YORK).utcoffset()
    while day.year < 2036:
        nxt = day + timedelta(days=1)
        new = nxt.astimezone(NEW_YORK).utcoffset()
        if new != offset:
            # The change is at 02:00 local: 06:00 or 07:00 UTC of that day.
            hour = day.replace(hour=0)
            while hour.astimezone(NEW_YORK).utcoffset() == offset:
                hour += timedelta(hours=1)
            changes.append(int(hour.timestamp()))
            offset = new
        day = nxt
    return changes


CLOCK_CHANGES = _clock_changes()
START = int(datetime(2000, 1, 3, tzinfo=UTC).timestamp())
END = int(datetime(2035, 12, 20, tzinfo=UTC).timestamp())

anywhere = st.integers(START, END)
near_a_clock_change = st.builds(
    lambda change, shift: change + shift,
    st.sampled_from(CLOCK_CHANGES),
    st.integers(-3 * 86_400, 3 * 86_400),
)
zones = st.sampled_from([UTC, NEW_YORK, ZoneInfo("Asia/Tokyo"), timezone(timedelta(hours=-3))])
instants = st.builds(
    lambda ts, zone: datetime.fromtimestamp(ts, zone),
    st.one_of(anywhere, near_a_clock_change),
    zones,
)
CALENDARS: dict[str, tuple[MarketCalendar, Any]] = {
    "NYSE": (NYSE, NEW_YORK),
    "CRYPTO": (CRYPTO, UTC),
}


def test_the_clock_changes_are_found() -> None:
    assert len(CLOCK_CHANGES) == 72  # two a year


@pytest.mark.parametrize("name", CALENDARS)
@FAST
@given(dt=instants)
def test_next_open_and_next_close_are_strictly_later_and_of_a_session(
    name: str, dt: datetime
) -> None:
    calendar, _ = CALENDARS[name]
    nxt_open, nxt_close = calendar.next_open(dt), calendar.next_close(dt)
    assert nxt_open > dt
    assert nxt_close > dt
    assert calendar.is_open(nxt_open)
    assert calendar.is_open(nxt_close - timedelta(seconds=1))
    assert nxt_open.utcoffset() == timedelta(0)
    assert nxt_close.utcoffset() == timedelta(0)
    if name == "NYSE":
        assert not calendar.is_open(nxt_close)
        assert not calendar.is_open(nxt_open - timedelta(seconds=1))


@pytest.mark.parametrize("name", CALENDARS)
@FAST
@given(dt=instants)
def test_is_open_iff_inside_the_session_hours_of_its_day(name: str, dt: datetime) -> None:
    calendar, zone = CALENDARS[name]
    hours = calendar.session_hours(dt.astimezone(zone).date())
    inside = hours is not None and hours[0] <= dt < hours[1]
    assert calendar.is_open(dt) == inside
    if hours is not None:
        assert calendar.is_session(dt.astimezone(zone).date())
        assert hours[0] < hours[1]


@pytest.mark.parametrize("name", CALENDARS)
@FAST
@given(day=st.dates(date(2000, 1, 3), date(2035, 12, 20)))
def test_sessions_never_overlap(name: str, day: date) -> None:
    calendar, _ = CALENDARS[name]
    hours = calendar.session_hours(day)
    later = day + timedelta(days=1)
    while calendar.session_hours(later) is None:
        later += timedelta(days=1)
    following = calendar.session_hours(later)
    assert following is not None
    if hours is not None:
        assert hours[1] <= following[0]
        # The next open after this session's open is the following session's.
        assert calendar.next_open(hours[0]) == following[0]
        assert calendar.next_close(hours[0]) == hours[1]


# --- serializers ------------------------------------------------------------------------

finite = st.floats(allow_nan=False)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # NaN and infinities too
    st.text(),
    st.binary(),
    st.decimals(),  # NaN, sNaN, infinities and exponents too
    st.datetimes(timezones=st.none() | st.timezones()),
    st.dates(),
    st.uuids(),
)
dict_keys = st.one_of(st.text(), st.integers(), finite, st.none())
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(dict_keys, inner, max_size=4),
    ),
    max_leaves=12,
)


def same(got: Any, want: Any) -> bool:
    """Equal, of the same type, all the way down (NaN equals NaN; Decimals digit for digit)."""
    if type(got) is not type(want):
        return False
    if isinstance(want, float):
        return (math.isnan(got) and math.isnan(want)) or (
            got == want and math.copysign(1, got) == math.copysign(1, want)
        )
    if isinstance(want, Decimal):
        return str(got) == str(want)
    if isinstance(want, datetime):
        # Wall time and offset: Python never finds a time in a zone's repeated hour
        # equal to one in another zone, so == would fail on a faithful copy.
        return got.replace(tzinfo=None) == want.replace(tzinfo=None) and (
            got.utcoffset() == want.utcoffset()
        )
    if isinstance(want, (list, tuple)):
        return len(got) == len(want) and all(same(g, w) for g, w in zip(got, want, strict=True))
    if isinstance(want, dict):
        return list(got) == list(want) and all(same(got[k], want[k]) for k in want)
    return bool(got == want)


SIGNING_KEY = b"k" * 32
ENVELOPES = {
    "json": Envelope(pick_serializer("json", None), None),
    "signed json": Envelope(pick_serializer("json", SIGNING_KEY), SIGNING_KEY),
    "signed pickle": Envelope(pick_serializer("pickle", SIGNING_KEY), SIGNING_KEY),
}


@pytest.mark.parametrize("name", ENVELOPES)
@settings(max_examples=150, deadline=None)
@given(value=values)
def test_every_supported_value_round_trips_through_the_serializers(name: str, value: Any) -> None:
    envelope = ENVELOPES[name]
    stored = envelope.encode("argo_perf:v1:k", value, 1.0e9, 10.0, 0.0)
    stored_at, ttl, delta, got = envelope.decode("argo_perf:v1:k", stored)
    assert (stored_at, ttl, delta) == (1.0e9, 10.0, 0.0)
    assert same(got, value)


@settings(max_examples=60, deadline=None)
@given(value=st.one_of(values, st.sets(st.integers(), max_size=3), st.frozensets(st.text())))
def test_signed_pickle_round_trips_any_picklable_value(value: Any) -> None:
    envelope = ENVELOPES["signed pickle"]
    got = envelope.decode("k", envelope.encode("k", value, 1.0, -1.0, 0.0))[3]
    assert same(got, value)


@FAST
@given(value=values)
def test_every_supported_value_round_trips_through_a_memory_only_cache(value: Any) -> None:
    cache = RedisCache(maxsize=4)
    assert cache.set("k", value) is False  # memory-only: never reached Redis
    assert same(cache.get("k"), value)
    assert cache.get_or_set("l", lambda: value) is value
    assert same(cache.get("l"), value)
    assert cache.stats.encode_failures == 0


@pytest.mark.parametrize("value", [{1, 2}, frozenset({1}), object(), 1 + 2j, {(1, 2): 3}])
def test_a_memory_only_cache_refuses_what_a_redis_backed_one_refuses(value: Any) -> None:
    # A service tried without Redis must not learn of an unstorable value in production.
    cache = RedisCache()
    with pytest.raises(TypeError, match="serializer="):
        cache.set("k", value)
    with pytest.raises(TypeError, match="serializer="):
        cache.set_many({"a": 1, "k": value})
    assert cache.get("k") is None
    assert cache.get("a") is None  # nothing half stored
    assert cache.get_or_set("k", lambda: value) is value  # a loaded value: returned, not kept
    assert cache.get("k") is None
    assert cache.stats.encode_failures == 1


# --- construction -----------------------------------------------------------------------


def _float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


Rule = Callable[[object], bool]


def seconds(
    low: float, *, low_open: bool = True, inf: bool = False, high: float = math.inf
) -> Rule:
    def accepts(value: object) -> bool:
        f = _float(value)
        if f is None or math.isnan(f):
            return False
        above = f > low if low_open else f >= low
        below = f <= high if inf else f < high
        return above and below

    return accepts


POSITIVE = seconds(0)
NON_NEGATIVE = seconds(0, low_open=False)
POSITIVE_OR_INF = seconds(0, inf=True)
NON_NEGATIVE_OR_INF = seconds(0, low_open=False, inf=True)
FRACTION = seconds(0, low_open=False, high=1)
SHARE = seconds(0, inf=True, high=1)
AT_LEAST_ONE = seconds(1, low_open=False)


def count(minimum: int = 1, maximum: int | None = None) -> Rule:
    def accepts(value: object) -> bool:
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and value >= minimum
            and (maximum is None or value <= maximum)
        )

    return accepts


def optional(rule: Rule) -> Rule:
    return lambda value: value is None or rule(value)


def either(*rules: Rule) -> Rule:
    return lambda value: any(rule(value) for rule in rules)


def flag(value: object) -> bool:
    return isinstance(value, bool)


def name(value: object) -> bool:
    return isinstance(value, str) and bool(value)


def a_clock(value: object) -> bool:
    return value is None or isinstance(value, Clock)


def quotas(value: object) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(q, Quota) for q in value)


def nothing_drawn(value: object) -> bool:
    """For parameters whose good values (objects of ours) are never drawn: only None."""
    return value is None


def mapping_or_none(value: object) -> bool:
    return value is None or (isinstance(value, Mapping) and not value)


def batch(keys: list[str]) -> dict[str, str]:
    return {key: key for key in keys}


# constructor -> (keyword arguments that build it, {parameter: the values it accepts})
CONSTRUCTORS: dict[str, tuple[Callable[..., Any], dict[str, Any], dict[str, Rule]]] = {
    "TokenBucket": (
        ap.TokenBucket,
        {"rate": 1.0, "burst": 1.0},
        {"rate": POSITIVE, "burst": AT_LEAST_ONE, "quotas": quotas, "clock": a_clock},
    ),
    "RedisTokenBucket": (
        ap.RedisTokenBucket,
        {"url_or_client": "redis://127.0.0.1:1/0", "key": "k", "rate": 1.0, "burst": 1.0},
        {
            "key": name,
            "rate": POSITIVE,
            "burst": AT_LEAST_ONE,
            "quotas": quotas,
            "fallback_share": SHARE,
            "prefix": lambda v: isinstance(v, str),
            "health": nothing_drawn,
            "clock": a_clock,
        },
    ),
    "Quota": (ap.Quota, {"limit": 10, "period": 60.0}, {"limit": AT_LEAST_ONE, "period": POSITIVE}),
    "RateLimitConfig": (
        ap.RateLimitConfig,
        {"requests_per_second": 1.0, "burst_size": 1.0},
        {"requests_per_second": POSITIVE, "burst_size": AT_LEAST_ONE, "quotas": quotas},
    ),
    "RateLimiter": (
        ap.RateLimiter,
        {},
        {
            "configs": mapping_or_none,
            "default": nothing_drawn,
            "redis": nothing_drawn,
            "health": nothing_drawn,
            "clock": a_clock,
        },
    ),
    "CircuitBreakerConfig": (
        ap.CircuitBreakerConfig,
        {},
        {
            "failure_threshold": count(),  # None only with trip rules
            "success_threshold": count(),
            "timeout": POSITIVE,
            "trip": nothing_drawn,
            "half_open_permits": count(),
            "probe_timeout": POSITIVE,
            "failure_types": lambda v: v == (),
            "ignored_types": lambda v: v == (),
            "failure_if_result": nothing_drawn,
            "retry_after_of": nothing_drawn,
        },
    ),
    "CircuitBreaker": (
        ap.CircuitBreaker,
        {"name": "vendor"},
        {
            "name": name,
            "config": nothing_drawn,
            "clock": a_clock,
            "shared": nothing_drawn,
            "listeners": lambda v: v in ((), []),
        },
    ),
    "CircuitBreakerRegistry": (
        ap.CircuitBreakerRegistry,
        {},
        {
            "configs": mapping_or_none,
            "clock": a_clock,
            "shared": nothing_drawn,
            "listeners": lambda v: v in ((), []),
        },
    ),
    "CacheConfig": (
        ap.CacheConfig,
        {},
        {
            "namespace": lambda v: name(v) and ":" not in v,  # type: ignore[operator]
            "version": count(0),
            "default_ttl": optional(POSITIVE_OR_INF),
            "max_stale": NON_NEGATIVE_OR_INF,
            "maxsize": count(0),
            "local_ttl": optional(POSITIVE_OR_INF),
            "jitter": FRACTION,
            "early_refresh": seconds(0, low_open=False),
            "serializer": lambda v: v in ("json",),
            "signing_key": lambda v: v is None or (isinstance(v, bytes) and len(v) >= 16),
            "socket_timeout": optional(POSITIVE),
            "connect_timeout": optional(POSITIVE),
            "failure_threshold": count(),
            "probe_interval": POSITIVE,
        },
    ),
    "AdaptiveTTLConfig": (
        ap.AdaptiveTTLConfig,
        {},
        {
            "crypto_high_vol_ttl": POSITIVE,
            "crypto_ttl": POSITIVE,
            "stock_high_vol_ttl": POSITIVE,
            "stock_ttl": POSITIVE,
            "closed_ttl": POSITIVE,
            "jitter": FRACTION,
            "open_jitter": NON_NEGATIVE,
            "refresh_threshold": seconds(0, low_open=False),
        },
    ),
    "AdaptiveTTL": (
        ap.AdaptiveTTL,
        {},
        {
            "config": nothing_drawn,
            "calendar": lambda v: isinstance(v, MarketCalendar),
            "volatility": nothing_drawn,
            "rng": nothing_drawn,
            "max_symbols": count(),
            "clock": a_clock,
        },
    ),
    "ChangeGate": (
        ap.ChangeGate,
        {},
        {
            "threshold": seconds(0, low_open=False),
            "max_age": optional(POSITIVE),
            "max_symbols": count(),
            "clock": a_clock,
        },
    ),
    "VolatilityTracker": (
        ap.VolatilityTracker,
        {},
        {
            "stock_threshold": POSITIVE,
            "crypto_threshold": POSITIVE,
            "half_life": POSITIVE,
            "half_life_observations": POSITIVE,
            "warmup": count(),
            "max_gap": POSITIVE,
            "max_symbols": count(),
            "clock": a_clock,
        },
    ),
    "Batcher": (
        ap.Batcher,
        {"batch_fn": batch},
        {
            "batch_fn": lambda v: v is batch,
            "max_size": count(),
            "window": NON_NEGATIVE,
            "clock": a_clock,
        },
    ),
    "PriorityScheduler": (
        ap.PriorityScheduler,
        {},
        {"volatility": nothing_drawn, "max_skips": count(), "clock": a_clock},
    ),
    "PerformanceMetrics": (
        ap.PerformanceMetrics,
        {},
        {
            "registry": nothing_drawn,
            "clock": a_clock,
            "window": count(1, sys.maxsize),
            "max_sources": count(),
            "symbol_labels": count(0),
        },
    ),
    "LiveConfig": (
        ap.LiveConfig,
        {"limiter": ap.RateLimiter({"x": ap.RateLimitConfig(1, 1)})},
        {"breakers": nothing_drawn, "ttl": nothing_drawn, "clock": a_clock},
    ),
    "NYSECalendar": (
        ap.NYSECalendar,
        {"last_year": 2001},
        {
            "extended_hours": flag,
            "first_year": lambda v: count(2000, 2001)(v),
            "last_year": lambda v: v is None or count(2000, 2100)(v),
        },
    ),
    "ManualClock": (
        ap.ManualClock,
        {},
        {
            "start": lambda v: v is None,
            "autoadvance": flag,
        },
    ),
}
# The cache faces take every CacheConfig field as a keyword, and a few of their own.
_CACHE_RULES = {
    **CONSTRUCTORS["CacheConfig"][2],
    "maxsize": count(1),  # memory-only: the in-process tier is all there is
    "health": nothing_drawn,
    "clock": a_clock,
    "rng": nothing_drawn,
}
CONSTRUCTORS["RedisCache"] = (RedisCache, {}, _CACHE_RULES)
CONSTRUCTORS["AsyncRedisCache"] = (ap.AsyncRedisCache, {}, _CACHE_RULES)
CONSTRUCTORS["RedisCache (Redis URL)"] = (
    RedisCache,
    {"url_or_client": "redis://127.0.0.1:1/0"},
    {**_CACHE_RULES, "maxsize": count(0)},
)
CONSTRUCTORS["ConfigWatcher"] = (
    ap.ConfigWatcher,
    {"live": ap.LiveConfig(ap.RateLimiter()), "path": "settings.json"},
    {"interval": POSITIVE, "clock": a_clock},
)

# Values a careless caller or a bad configuration file hands over.
NASTY: list[object] = [
    None, True, False, "", "1", "x", b"1", [1], [], (), {}, {"a": 1}, object(), 1j,
    math.nan, math.inf, -math.inf, -1, 0, -0.0, 0.5, 1, 2, 5e-324, 1e308,
    2**63, -(2**63), 10**400, -(10**400),
]  # fmt: skip
nasty = st.one_of(
    st.sampled_from(NASTY),
    st.floats(),
    st.integers(),
    st.integers(min_value=10**308, max_value=10**400),
    st.text(max_size=3),
    st.lists(st.integers(), max_size=2),
)


def check_construction(ctor: str, parameter: str, value: object) -> None:
    build, base, rules = CONSTRUCTORS[ctor]
    kwargs = {**base, parameter: value}
    if build is ap.RedisTokenBucket and value is None and parameter in ("key", "rate", "burst"):
        with pytest.raises(TypeError, match="missing required argument"):
            build(**kwargs)  # Python's rule for a missing argument
        return
    if rules[parameter](value):
        build(**kwargs)
        return
    with pytest.raises(ConfigError) as info:
        build(**kwargs)
    error = info.value
    assert error.parameter.split(".")[0].split("[")[0] == parameter, str(error)
    assert str(error).startswith(error.parameter), str(error)


PARAMETERS = [
    (ctor, parameter) for ctor, (_, _, rules) in CONSTRUCTORS.items() for parameter in rules
]


@pytest.mark.parametrize(("ctor", "parameter"), PARAMETERS)
def test_every_bad_value_of_every_parameter_is_a_config_error(ctor: str, parameter: str) -> None:
    for value in NASTY:
        check_construction(ctor, parameter, value)


@pytest.mark.parametrize("ctor", CONSTRUCTORS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_drawn_values_are_accepted_or_refused_by_their_rule(ctor: str, data: st.DataObject) -> None:
    parameter = data.draw(st.sampled_from(sorted(CONSTRUCTORS[ctor][2])))
    check_construction(ctor, parameter, data.draw(nasty))


def test_the_required_arguments_of_redis_token_bucket_are_a_type_error() -> None:
    # Python's own rule for a missing argument; a wrong one is a ConfigError above.
    for missing in ("url_or_client", "key", "rate", "burst"):
        kwargs: dict[str, Any] = {"url_or_client": "redis://127.0.0.1:1/0", "key": "k"}
        kwargs.update(rate=1.0, burst=1.0)
        kwargs[missing] = None
        with pytest.raises(TypeError, match=missing):
            ap.RedisTokenBucket(**kwargs)


def test_a_huge_number_is_refused_naming_the_parameter() -> None:
    with pytest.raises(ConfigError, match=r"^rate must be > 0 and finite \(per second\), got 1000"):
        ap.TokenBucket(10**400, 1)


def test_an_object_that_is_not_a_clock_is_refused_at_construction() -> None:
    with pytest.raises(ConfigError, match=r"^clock must be a Clock .*got 'now'"):
        ap.ChangeGate(clock="now")  # type: ignore[arg-type]


def test_rate_limit_mappings_name_where_the_bad_setting_is() -> None:
    with pytest.raises(ConfigError, match=r"^default is incomplete"):
        ap.RateLimiter(default={})
    with pytest.raises(ConfigError, match=r"^configs\['xai'\]\.quotas\[0\] is incomplete"):
        ap.RateLimiter({"xai": {"requests_per_second": 1, "burst_size": 1, "quotas": [{}]}})


def test_what_pickle_cannot_store_is_a_type_error_with_or_without_redis() -> None:
    def local() -> None: ...

    signed = {"serializer": "pickle", "signing_key": b"k" * 32}
    cache = RedisCache(**signed)
    assert cache.set("levels", {231.5, 231.6}) is False  # pickle stores sets
    assert cache.get("levels") == {231.5, 231.6}
    with pytest.raises(TypeError, match="pickle"):
        cache.set("fn", local)
    assert cache.get_or_set("fn", lambda: local) is local  # returned, not kept
    assert cache.stats.encode_failures == 1


def test_a_rate_limit_mapping_may_hold_quota_objects() -> None:
    config = ap.RateLimitConfig.from_mapping(
        {"requests_per_second": 1, "burst_size": 5, "quotas": [Quota(25, 86_400)]}
    )
    assert config.quotas == (Quota(25, 86_400),)
