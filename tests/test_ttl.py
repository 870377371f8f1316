"""AdaptiveTTL: the seed TTL table, never past the next open, jitter, should_refresh."""

from __future__ import annotations

import asyncio
import doctest
import itertools
import math
import random
import re
import threading
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
import pytz
from hypothesis import given, settings
from hypothesis import strategies as st

import argo_perf.ttl
from argo_perf import (
    CRYPTO,
    AdaptiveTTL,
    AdaptiveTTLConfig,
    CalendarRangeError,
    ChangeGate,
    ConfigError,
    ManualClock,
    NYSECalendar,
    VolatilityTracker,
)

UTC = timezone.utc
NEW_YORK = pytz.timezone("America/New_York")


def ny(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return NEW_YORK.localize(datetime(year, month, day, hour, minute)).astimezone(UTC)


MONDAY_NOON = ny(2026, 1, 5, 12)
AT_THE_OPEN = AdaptiveTTLConfig(open_jitter=0.0)  # TTLs cut at the open exactly
SATURDAY_NOON = ny(2026, 1, 3, 12)


def high(*symbols: str) -> Callable[[str], bool]:
    return lambda symbol: symbol in symbols


# --- the seed table --------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "now", "volatile", "expected"),
    [
        ("BTC-USD", MONDAY_NOON, True, 10.0),
        ("BTC-USD", MONDAY_NOON, False, 30.0),
        ("BTC-USD", SATURDAY_NOON, False, 30.0),
        ("SOLUSDT", SATURDAY_NOON, True, 10.0),
        ("AAPL", MONDAY_NOON, True, 10.0),
        ("AAPL", MONDAY_NOON, False, 20.0),
        ("AAPL", SATURDAY_NOON, False, 300.0),
        ("AAPL", SATURDAY_NOON, True, 300.0),
        ("AAPL", ny(2026, 1, 5, 7), False, 300.0),
        ("AAPL", ny(2026, 1, 1, 12), False, 300.0),  # holiday
    ],
)
def test_seed_table(symbol: str, now: datetime, volatile: bool, expected: float) -> None:
    ttl = AdaptiveTTL(volatility=high(symbol) if volatile else None)
    assert ttl.ttl_for(symbol, now) == expected


def test_out_of_session_ttl_never_reaches_past_the_next_open() -> None:
    ttl = AdaptiveTTL(AT_THE_OPEN)
    assert ttl.ttl_for("AAPL", ny(2026, 1, 5, 9, 28)) == 120.0
    assert ttl.ttl_for("AAPL", ny(2026, 1, 5, 9, 29)) == 60.0
    assert ttl.ttl_for("AAPL", ny(2026, 1, 5, 9, 30)) == 20.0
    assert ttl.ttl_for("AAPL", ny(2026, 1, 5, 9, 25)) == 300.0


def test_early_close_counts_as_out_of_session_after_13_00() -> None:
    ttl = AdaptiveTTL()
    assert ttl.ttl_for("AAPL", ny(2026, 11, 27, 12, 59)) == 20.0
    assert ttl.ttl_for("AAPL", ny(2026, 11, 27, 13)) == 300.0


def test_every_value_is_configurable() -> None:
    config = AdaptiveTTLConfig(
        crypto_high_vol_ttl=1.0,
        crypto_ttl=2.0,
        stock_high_vol_ttl=3.0,
        stock_ttl=4.0,
        closed_ttl=5.0,
    )
    volatile = AdaptiveTTL(config, volatility=high("BTC-USD", "AAPL"))
    calm = AdaptiveTTL(config)
    assert volatile.ttl_for("BTC-USD", MONDAY_NOON) == 1.0
    assert calm.ttl_for("BTC-USD", MONDAY_NOON) == 2.0
    assert volatile.ttl_for("AAPL", MONDAY_NOON) == 3.0
    assert calm.ttl_for("AAPL", MONDAY_NOON) == 4.0
    assert calm.ttl_for("AAPL", SATURDAY_NOON) == 5.0


def test_now_comes_from_the_injected_clock() -> None:
    clock = ManualClock(ny(2026, 1, 5, 9, 28))
    ttl = AdaptiveTTL(AT_THE_OPEN, clock=clock)
    assert ttl.ttl_for("AAPL") == 120.0
    clock.advance(90)
    assert ttl.ttl_for("AAPL") == 30.0
    clock.advance(30)
    assert ttl.ttl_for("AAPL") == 20.0
    clock.set(ny(2026, 1, 5, 16))
    assert ttl.ttl_for("AAPL") == 300.0


def test_volatility_tracker_decides_high_volatility() -> None:
    clock = ManualClock(MONDAY_NOON)
    vol = VolatilityTracker(warmup=2, clock=clock)
    ttl = AdaptiveTTL(volatility=vol, clock=clock)
    for price in (100.0, 100.01, 100.0):  # 0.01 % in 5 s: about 11 % a year
        vol.observe("AAPL", price)
        clock.advance(5)
    assert ttl.ttl_for("AAPL") == 20.0
    vol.observe("AAPL", 101.0)  # 1 % in 5 s
    assert ttl.ttl_for("AAPL") == 10.0


def test_crypto_rule_is_injectable() -> None:
    ttl = AdaptiveTTL(is_crypto=lambda s: s.startswith("X:"))
    assert ttl.ttl_for("X:DOGE", SATURDAY_NOON) == 30.0
    assert ttl.ttl_for("BTC-USD", SATURDAY_NOON) == 300.0


def test_classification_is_memoised_and_bounded() -> None:
    calls: list[str] = []

    def classify(symbol: str) -> bool:
        calls.append(symbol)
        return False

    ttl = AdaptiveTTL(is_crypto=classify)
    for _ in range(3):
        ttl.ttl_for("AAPL", MONDAY_NOON)
    assert calls == ["AAPL"]
    for i in range(5000):
        ttl.ttl_for(f"K{i}", MONDAY_NOON)
    # A bounded memo (4096 symbols) no longer holds AAPL after 5000 others: asked again.
    assert ttl.ttl_for("AAPL", MONDAY_NOON) == 20.0
    assert calls.count("AAPL") == 2


def test_extended_hours_calendar_treats_pre_market_as_in_session() -> None:
    regular = AdaptiveTTL(AT_THE_OPEN)
    extended = AdaptiveTTL(AT_THE_OPEN, calendar=NYSECalendar(extended_hours=True))
    assert regular.ttl_for("AAPL", ny(2026, 1, 5, 5)) == 300.0
    assert extended.ttl_for("AAPL", ny(2026, 1, 5, 5)) == 20.0
    assert extended.ttl_for("AAPL", ny(2026, 1, 5, 3, 58)) == 120.0


def test_any_calendar_works() -> None:
    ttl = AdaptiveTTL(calendar=CRYPTO)
    assert ttl.ttl_for("AAPL", SATURDAY_NOON) == 20.0


@pytest.mark.parametrize(
    ("symbol", "error"),
    [
        ("", ValueError),
        ("  ", ValueError),
        (None, TypeError),
        (42, TypeError),
        (["AAPL"], TypeError),
    ],
)
def test_bad_symbols_raise(symbol: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match=r"symbol must .*" + re.escape(repr(symbol))):
        AdaptiveTTL().ttl_for(symbol, MONDAY_NOON)


def test_the_bare_symbol_gets_the_tables_ttl() -> None:
    # The way a cache calls it: ttl_for(symbol), with the symbol alone.
    clock = ManualClock(SATURDAY_NOON)
    ttl = AdaptiveTTL(clock=clock)
    assert ttl.ttl_for("BTC-USD") == 30.0
    assert ttl.ttl_for("X:BTCUSD") == 30.0
    assert ttl.ttl_for("AAPL") == 300.0


def test_naive_now_raises() -> None:
    with pytest.raises(ValueError, match="naive"):
        AdaptiveTTL().ttl_for("AAPL", datetime(2026, 1, 5, 12))
    with pytest.raises(TypeError, match="now must be an aware datetime"):
        AdaptiveTTL().ttl_for("AAPL", date(2026, 1, 5))  # type: ignore[arg-type]


@pytest.mark.parametrize("symbol", ["AAPL", "BTC-USD"])
@pytest.mark.parametrize(
    ("now", "error"),
    [
        (datetime(2026, 1, 5, 12), ValueError),
        (date(2026, 1, 5), TypeError),
        ("2026-01-05T12:00:00+00:00", TypeError),
    ],
)
def test_a_bad_now_raises_naming_now_for_stocks_and_crypto_alike(
    symbol: str, now: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match=r"^now must be an aware datetime"):
        AdaptiveTTL().ttl_for(symbol, now)


def test_out_of_range_now_raises() -> None:
    with pytest.raises(CalendarRangeError):
        AdaptiveTTL().ttl_for("AAPL", datetime(2101, 1, 3, 15, tzinfo=UTC))


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (ny(2035, 12, 31, 16), 300.0),  # the last close the calendar used to know
        (ny(2036, 1, 2, 9, 28), 120.0),
        (ny(2040, 7, 2, 9, 45), 20.0),  # summer time, past pytz's 2037
        (ny(2040, 7, 2, 16, 30), 300.0),
        (ny(2099, 12, 31, 12), 20.0),
    ],
)
def test_stock_ttls_have_no_cliff_in_later_years(now: datetime, expected: float) -> None:
    assert AdaptiveTTL(AT_THE_OPEN, calendar=NYSECalendar()).ttl_for("AAPL", now) == expected


# --- jitter ------------------------------------------------------------------------


def test_jitter_spreads_ttls_deterministically() -> None:
    draws = itertools.cycle([0.0, 0.5, 0.999999])
    ttl = AdaptiveTTL(AdaptiveTTLConfig(jitter=0.1), rng=lambda: next(draws))
    values = [ttl.ttl_for("AAPL", MONDAY_NOON) for _ in range(3)]
    assert values == [pytest.approx(18.0), pytest.approx(20.0), pytest.approx(22.0, abs=1e-4)]
    assert ttl.ttl_for("BTC-USD", MONDAY_NOON) == pytest.approx(27.0)
    assert ttl.ttl_for("AAPL", SATURDAY_NOON) == pytest.approx(300.0)


def test_jittered_ttls_are_reproducible_with_a_seeded_rng() -> None:
    def run() -> list[float]:
        ttl = AdaptiveTTL(AdaptiveTTLConfig(jitter=0.2), rng=random.Random(42).random)
        return [ttl.ttl_for("AAPL", MONDAY_NOON) for _ in range(20)]

    first = run()
    assert first == run()
    assert len(set(first)) == 20
    assert all(16.0 <= v <= 24.0 for v in first)


def test_jitter_never_pushes_past_the_next_open() -> None:
    ttl = AdaptiveTTL(AdaptiveTTLConfig(jitter=0.5, open_jitter=0.0), rng=lambda: 0.999)
    assert ttl.ttl_for("AAPL", ny(2026, 1, 5, 9, 26)) == 240.0
    spread = AdaptiveTTL(AdaptiveTTLConfig(jitter=0.5), rng=lambda: 0.999)
    assert 180.0 < spread.ttl_for("AAPL", ny(2026, 1, 5, 9, 26)) < 240.0


@pytest.mark.parametrize("jitter", [0.0, 0.2])
def test_keys_written_before_the_open_expire_over_the_minute_before_it(jitter: float) -> None:
    rng = random.Random(7)
    ttl = AdaptiveTTL(AdaptiveTTLConfig(jitter=jitter), rng=rng.random)  # open_jitter on by default
    opening = ny(2026, 1, 5, 9, 30)
    expiries = []
    for minute in range(20):  # keys written from 09:06 to 09:29:30, when the cap applies
        now = ny(2026, 1, 5, 9, 6) + timedelta(seconds=72 * minute)
        ttl_s = ttl.ttl_for("AAPL", now)
        if (opening - now).total_seconds() <= 300.0 * (1 - jitter):
            expiries.append(now + timedelta(seconds=ttl_s))
    assert len(expiries) >= 3
    assert all(opening - timedelta(seconds=60) <= e <= opening for e in expiries)
    assert len(set(expiries)) == len(expiries)  # not one instant


def test_close_to_the_open_the_spread_is_at_most_half_the_time_left() -> None:
    low = AdaptiveTTL(rng=lambda: 0.999999)
    high = AdaptiveTTL(rng=lambda: 0.0)
    now = ny(2026, 1, 5, 9, 29) + timedelta(seconds=50)
    assert low.ttl_for("AAPL", now) == pytest.approx(5.0, abs=1e-4)
    assert high.ttl_for("AAPL", now) == 10.0
    assert AdaptiveTTL(rng=lambda: 0.5).ttl_for("AAPL", ny(2026, 1, 5, 9, 26)) == 210.0


def test_the_open_jitter_is_on_by_default() -> None:
    assert AdaptiveTTLConfig().open_jitter == 60.0


def test_no_jitter_means_no_random_draws() -> None:
    def boom() -> float:
        raise AssertionError("drew a random number")

    ttl = AdaptiveTTL(rng=boom)
    assert ttl.ttl_for("AAPL", MONDAY_NOON) == 20.0
    assert ttl.ttl_for("ETH-USD", MONDAY_NOON) == 30.0
    assert ttl.ttl_for("AAPL", SATURDAY_NOON) == 300.0


@settings(max_examples=100, deadline=None)
@given(
    seconds=st.integers(0, 20 * 365 * 86_400),
    jitter=st.floats(min_value=0.0, max_value=0.99),
    draw=st.floats(min_value=0.0, max_value=0.999999),
    symbol=st.sampled_from(["AAPL", "BTC-USD"]),
)
def test_ttl_is_positive_bounded_and_never_past_the_open(
    seconds: int, jitter: float, draw: float, symbol: str
) -> None:
    now = ny(2005, 1, 1) + timedelta(seconds=seconds)
    ttl = AdaptiveTTL(AdaptiveTTLConfig(jitter=jitter), rng=lambda: draw)
    value = ttl.ttl_for(symbol, now)
    assert 0.0 < value <= 300.0 * (1 + jitter)
    if symbol == "AAPL" and not ttl.calendar.is_open(now):
        assert now + timedelta(seconds=value) <= ttl.calendar.next_open(now)


# --- as a cache's ttl= callable -------------------------------------------------------


def test_usable_as_a_one_argument_ttl_callable() -> None:
    clock = ManualClock(MONDAY_NOON)
    ttl = AdaptiveTTL(clock=clock)
    callables: list[Callable[[str], float]] = [ttl.ttl_for, ttl]
    for fn in callables:
        assert fn("AAPL") == 20.0
        assert fn("BTC-USD") == 30.0


def test_plugs_into_a_cachetools_tlru_cache() -> None:
    from cachetools import TLRUCache

    clock = ManualClock(ny(2026, 1, 5, 9, 29))
    ttl = AdaptiveTTL(AT_THE_OPEN, clock=clock)
    cache: TLRUCache[str, float] = TLRUCache(
        maxsize=10, ttu=lambda key, value, now: now + ttl.ttl_for(key), timer=clock.monotonic
    )
    cache["AAPL"] = 230.0  # closed: expires at the 09:30 open
    cache["BTC-USD"] = 97_000.0  # crypto: 30 s
    clock.advance(29.0)
    assert "BTC-USD" in cache
    clock.advance(30.0)
    assert "BTC-USD" not in cache
    assert "AAPL" in cache
    clock.advance(1.0)
    assert "AAPL" not in cache


async def test_ttl_for_from_async_tasks() -> None:
    clock = ManualClock(ny(2026, 1, 5, 9, 29))
    ttl = AdaptiveTTL(AT_THE_OPEN, clock=clock)

    async def write(symbol: str) -> float:
        await asyncio.sleep(0)
        return ttl.ttl_for(symbol)

    assert await asyncio.gather(write("AAPL"), write("ETH-USD")) == [60.0, 30.0]


def test_ttl_for_from_threads() -> None:
    ttl = AdaptiveTTL(volatility=VolatilityTracker())
    results: list[float] = []
    lock = threading.Lock()

    def run(offset: int) -> None:
        local = [ttl.ttl_for(f"S{offset}-{i % 10}", MONDAY_NOON) for i in range(200)]
        with lock:
            results.extend(local)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [20.0] * 800


def test_reconfigure_swaps_the_table_for_later_calls() -> None:
    ttl = AdaptiveTTL(clock=ManualClock(MONDAY_NOON))
    assert ttl.ttl_for("AAPL") == 20.0
    ttl.reconfigure(AdaptiveTTLConfig(stock_ttl=15.0, refresh_threshold=0.1))
    assert ttl.ttl_for("AAPL") == 15.0
    assert ttl.should_refresh("AAPL", 100.0)
    assert not ttl.should_refresh("AAPL", 105.0)  # the new threshold: 10 %
    with pytest.raises(ConfigError, match="config must be an AdaptiveTTLConfig"):
        ttl.reconfigure({"stock_ttl": 15.0})  # type: ignore[arg-type]
    assert ttl.config.stock_ttl == 15.0


def test_a_call_racing_a_reconfigure_answers_by_one_table_only() -> None:
    old = AdaptiveTTLConfig(stock_ttl=10.0, jitter=0.5)
    new = AdaptiveTTLConfig(stock_ttl=100.0)

    class Reconfiguring(NYSECalendar):
        def seconds_until_open(self, dt: datetime) -> float:
            ttl.reconfigure(new)  # lands in the middle of ttl_for
            return super().seconds_until_open(dt)

    ttl = AdaptiveTTL(old, calendar=Reconfiguring(), rng=lambda: 0.75)
    assert ttl.ttl_for("AAPL", MONDAY_NOON) == 12.5  # 10 s, jittered by the old table's 0.5
    assert ttl.ttl_for("AAPL", MONDAY_NOON) == 100.0


# --- should_refresh ------------------------------------------------------------------


def test_should_refresh_when_the_price_moved_by_the_threshold() -> None:
    ttl = AdaptiveTTL()
    assert ttl.should_refresh("AAPL", 100.0)  # nothing remembered yet
    assert not ttl.should_refresh("AAPL", 100.49)
    assert not ttl.should_refresh("AAPL", 99.6)
    assert ttl.should_refresh("AAPL", 100.5)  # exactly 0.5 % counts
    assert not ttl.should_refresh("AAPL", 100.9)  # 100.5 is the new reference
    assert ttl.should_refresh("AAPL", 99.0)


@pytest.mark.parametrize(
    ("reference", "price"),
    [
        (100.0, 100.5),
        (100.0, 99.5),
        (230.0, 231.15),
        (101.3, 101.3 * 1.005),
        (0.07, 0.07 * 0.995),
        (97_123.45, 97_123.45 * 1.005),
    ],
)
def test_an_exact_half_percent_is_a_move_for_the_gate_and_the_ttl(
    reference: float, price: float
) -> None:
    gate: ChangeGate[str] = ChangeGate(threshold=0.005)
    gate.remember("X", reference, "value")
    ttl = AdaptiveTTL()
    ttl.remember("X", reference)
    assert gate.changed("X", price)
    assert ttl.should_refresh("X", price)
    nearly = reference + (price - reference) * 0.999
    assert not gate.changed("X", nearly)
    assert not ttl.should_refresh("X", nearly)


def test_a_zero_threshold_makes_every_price_a_move() -> None:
    gate: ChangeGate[str] = ChangeGate(threshold=0.0)
    gate.remember("X", 100.0, "value")
    ttl = AdaptiveTTL(AdaptiveTTLConfig(refresh_threshold=0.0))
    ttl.remember("X", 100.0)
    assert gate.changed("X", 100.0)
    assert ttl.should_refresh("X", 100.0)


def test_remember_and_forget() -> None:
    ttl = AdaptiveTTL(AdaptiveTTLConfig(refresh_threshold=0.01))
    ttl.remember("AAPL", 200.0)
    assert not ttl.should_refresh("AAPL", 201.0)
    assert ttl.should_refresh("AAPL", 203.0)
    ttl.forget("AAPL")
    ttl.forget("never-seen")
    assert ttl.should_refresh("AAPL", 203.0)


def test_remembered_prices_are_bounded() -> None:
    ttl = AdaptiveTTL(max_symbols=2)
    ttl.remember("A", 1.0)
    ttl.remember("B", 1.0)
    ttl.remember("C", 1.0)
    assert ttl.should_refresh("A", 1.0)  # A was forgotten
    assert not ttl.should_refresh("C", 1.0)


@pytest.mark.parametrize("price", [0.0, -1.0, math.nan, math.inf, None, True])
def test_bad_prices_raise_and_change_nothing(price: Any) -> None:
    ttl = AdaptiveTTL()
    ttl.remember("AAPL", 100.0)
    with pytest.raises(ValueError, match="finite positive"):
        ttl.should_refresh("AAPL", price)
    with pytest.raises(ValueError, match="finite positive"):
        ttl.remember("AAPL", price)
    assert not ttl.should_refresh("AAPL", 100.0)


# --- configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"crypto_high_vol_ttl": 0.0}, "crypto_high_vol_ttl"),
        ({"crypto_ttl": -1.0}, "crypto_ttl"),
        ({"stock_high_vol_ttl": math.inf}, "stock_high_vol_ttl"),
        ({"stock_ttl": math.nan}, "stock_ttl"),
        ({"closed_ttl": "300"}, "closed_ttl"),
        ({"closed_ttl": True}, "closed_ttl"),
        ({"jitter": 1.0}, "jitter"),
        ({"jitter": -0.1}, "jitter"),
        ({"open_jitter": -1.0}, "open_jitter"),
        ({"open_jitter": math.inf}, "open_jitter"),
        ({"refresh_threshold": -0.01}, "refresh_threshold"),
        ({"refresh_threshold": math.nan}, "refresh_threshold"),
    ],
)
def test_bad_config_raises_config_error(kwargs: dict[str, Any], parameter: str) -> None:
    with pytest.raises(ConfigError) as info:
        AdaptiveTTLConfig(**kwargs)
    assert info.value.parameter == parameter
    assert repr(kwargs[parameter]) in str(info.value)


def test_bad_max_symbols_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="max_symbols"):
        AdaptiveTTL(max_symbols=0)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"config": {"stock_ttl": 15.0}}, "config"),
        ({"calendar": "NYSE"}, "calendar"),
        ({"calendar": None}, "calendar"),
        ({"volatility": 0.02}, "volatility"),
        ({"is_crypto": {"BTC-USD"}}, "is_crypto"),
        ({"rng": 0.5}, "rng"),
    ],
)
def test_bad_collaborators_fail_at_construction(kwargs: dict[str, Any], parameter: str) -> None:
    with pytest.raises(ConfigError) as info:
        AdaptiveTTL(**kwargs)
    assert info.value.parameter == parameter


def test_config_is_frozen() -> None:
    config = AdaptiveTTLConfig()
    with pytest.raises(AttributeError):
        config.stock_ttl = 5.0  # type: ignore[misc]


def test_repr_names_the_calendar() -> None:
    assert "NYSECalendar" in repr(AdaptiveTTL())


def test_doctests() -> None:
    assert doctest.testmod(argo_perf.ttl).failed == 0


def test_day_before_a_holiday_weekend_caps_at_300() -> None:
    # Friday before MLK day, after the close: the next open is on Tuesday.
    ttl = AdaptiveTTL()
    assert ttl.ttl_for("AAPL", ny(2026, 1, 16, 16, 1)) == 300.0
    assert ttl.calendar.next_open(ny(2026, 1, 16, 16, 1)).date() == date(2026, 1, 20)
