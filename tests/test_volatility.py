"""VolatilityTracker: annualized volatility per unit of time, per symbol, bounded, thread-safe."""

from __future__ import annotations

import asyncio
import doctest
import math
import random
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import argo_perf.volatility
from argo_perf import ConfigError, ManualClock, VolatilityTracker
from argo_perf.volatility import CRYPTO_YEAR_SECONDS, STOCK_YEAR_SECONDS

UTC = timezone.utc
T0 = datetime(2026, 1, 5, 15, tzinfo=UTC)  # Monday 10:00 New York


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def walk(
    annual: float, year: float, seconds: int, rng: random.Random, start: float = 100.0
) -> Iterator[float]:
    """Prices of a random walk moving once a second with ``annual`` volatility."""
    sigma = annual / math.sqrt(year)
    log_price = math.log(start)
    for _ in range(seconds):
        log_price += rng.gauss(0.0, sigma)
        yield math.exp(log_price)


def poll(
    vol: VolatilityTracker,
    symbol: str,
    prices: list[float],
    every: int,
    start: float = 0.0,
) -> list[bool]:
    """Observe every ``every``-th price of a one-second series; is_high after each poll."""
    verdicts = []
    for i in range(0, len(prices), every):
        vol.observe(symbol, prices[i], at(start + i))
        verdicts.append(vol.is_high(symbol))
    return verdicts


KINDS = [("AAPL", STOCK_YEAR_SECONDS), ("BTC-USD", CRYPTO_YEAR_SECONDS)]
STOCK_THRESHOLD = 0.5


# --- units: per unit of time, annualized ------------------------------------------


def test_first_price_has_no_volatility() -> None:
    vol = VolatilityTracker()
    assert vol.observe("AAPL", 100.0, T0) == 0.0
    assert vol.volatility("AAPL") == 0.0
    assert vol.observations("AAPL") == 0
    assert not vol.is_high("AAPL")
    assert vol.volatility("unknown") == 0.0
    assert not vol.is_high("unknown")


@pytest.mark.parametrize(("symbol", "year"), KINDS)
@pytest.mark.parametrize("every", [1, 5, 60])
def test_the_same_moves_per_second_give_the_same_volatility_at_any_polling(
    symbol: str, year: float, every: int
) -> None:
    # Alternating moves of 0.1 % per square-root second, whatever the interval.
    vol = VolatilityTracker()
    r = 0.001 * math.sqrt(every)
    price = 100.0
    for i in range(20):
        vol.observe(symbol, price, at(i * every))
        price *= math.exp(r if i % 2 else -r)
    assert vol.volatility(symbol) == pytest.approx(0.001 * math.sqrt(year), rel=1e-9)


def test_stocks_count_trading_time_and_crypto_calendar_time() -> None:
    assert STOCK_YEAR_SECONDS == 252 * 6.5 * 3600
    assert CRYPTO_YEAR_SECONDS == 365 * 86400
    vol = VolatilityTracker()
    for i, price in enumerate([100.0, 100.1, 100.0, 100.1]):
        vol.observe("AAPL", price, at(i))
        vol.observe("ETH-USD", price, at(i))
    ratio = vol.volatility("ETH-USD") / vol.volatility("AAPL")
    assert ratio == pytest.approx(math.sqrt(CRYPTO_YEAR_SECONDS / STOCK_YEAR_SECONDS))


def estimate(prices: list[float], gaps: list[float], half_life: float, per_poll: float) -> float:
    """The reference computation, written out plainly (annualized for a stock)."""
    squares = seconds = 0.0
    waited = 0.0
    for a, b, dt in zip(prices, prices[1:], gaps, strict=False):
        if b == a:  # an unchanged price: its time goes to the next move
            waited += dt
            continue
        dt, waited = dt + waited, 0.0
        if dt > 600.0:  # the default max_gap: start over
            squares = seconds = 0.0
            continue
        keep = max(0.5 ** (dt / half_life), 0.5 ** (1 / per_poll))
        squares = keep * squares + math.log(b / a) ** 2
        seconds = keep * seconds + dt
    return math.sqrt(squares / seconds * STOCK_YEAR_SECONDS) if seconds else 0.0


@settings(max_examples=100, deadline=None)
@given(
    prices=st.lists(st.floats(min_value=1e-6, max_value=1e9), min_size=1, max_size=40),
    # Whole milliseconds from 0.1 s, so the datetimes carry the gaps exactly.
    gaps=st.lists(st.integers(100, 600_000).map(lambda ms: ms / 1000), min_size=40, max_size=40),
    half_life=st.floats(min_value=0.5, max_value=1000.0),
    per_poll=st.floats(min_value=0.5, max_value=50.0),
)
def test_volatility_is_the_time_weighted_estimate_and_finite(
    prices: list[float], gaps: list[float], half_life: float, per_poll: float
) -> None:
    vol = VolatilityTracker(half_life=half_life, half_life_observations=per_poll)
    stamp = 0.0
    for price, gap in zip(prices, [0.0, *gaps], strict=False):
        stamp += gap
        vol.observe("X", price, at(stamp))
    result = vol.volatility("X")
    assert math.isfinite(result)
    assert result >= 0.0
    assert result == pytest.approx(estimate(prices, gaps, half_life, per_poll), rel=1e-6)


# --- the verdict at real polling rates ------------------------------------------------


@pytest.mark.parametrize(("symbol", "year"), KINDS)
@pytest.mark.parametrize("every", [1, 5, 60])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_calm_symbol_is_rarely_high(symbol: str, year: float, every: int, seed: int) -> None:
    vol = VolatilityTracker()
    prices = list(walk(0.20, year, 240 * every, random.Random(seed)))
    verdicts = poll(vol, symbol, prices, every)[vol.warmup :]
    assert sum(verdicts) / len(verdicts) <= 0.05


@pytest.mark.parametrize(("symbol", "year"), KINDS)
@pytest.mark.parametrize("every", [1, 5, 60])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_volatile_symbol_is_almost_always_high(
    symbol: str, year: float, every: int, seed: int
) -> None:
    vol = VolatilityTracker()
    prices = list(walk(1.50, year, 240 * every, random.Random(seed)))
    verdicts = poll(vol, symbol, prices, every)[vol.warmup :]
    assert sum(verdicts) / len(verdicts) >= 0.90


@pytest.mark.parametrize(("symbol", "year"), KINDS)
@pytest.mark.parametrize("every", [1, 5])
@pytest.mark.parametrize("seed", range(10))
def test_a_switch_from_calm_to_volatile_is_seen_within_a_minute(
    symbol: str, year: float, every: int, seed: int
) -> None:
    rng = random.Random(seed)
    calm = list(walk(0.20, year, 1800, rng))
    volatile = list(walk(1.50, year, 60, rng, start=calm[-1]))
    vol = VolatilityTracker()
    assert not any(poll(vol, symbol, calm, every)[vol.warmup :])
    assert any(poll(vol, symbol, volatile, every, start=1800))


def steady(vol: VolatilityTracker, symbol: str, annual: float, year: float) -> None:
    """Twenty polls five seconds apart, moving by exactly ``annual`` a year."""
    r = annual / math.sqrt(year) * math.sqrt(5)
    for i in range(20):
        vol.observe(symbol, 100.0 * math.exp(r if i % 2 else 0.0), at(5 * i))


def test_stocks_and_crypto_have_their_own_thresholds() -> None:
    # 60 % a year is high for a stock (default 50 %) but not for crypto (75 %).
    vol = VolatilityTracker()
    steady(vol, "AAPL", 0.60, STOCK_YEAR_SECONDS)
    steady(vol, "BTC-USD", 0.60, CRYPTO_YEAR_SECONDS)
    assert vol.volatility("AAPL") == pytest.approx(0.60)
    assert vol.volatility("BTC-USD") == pytest.approx(0.60)
    assert vol.is_high("AAPL")
    assert not vol.is_high("BTC-USD")
    custom = VolatilityTracker(stock_threshold=0.7, crypto_threshold=0.55)
    steady(custom, "AAPL", 0.60, STOCK_YEAR_SECONDS)
    steady(custom, "BTC-USD", 0.60, CRYPTO_YEAR_SECONDS)
    assert not custom.is_high("AAPL")
    assert custom.is_high("BTC-USD")


def test_default_thresholds() -> None:
    vol = VolatilityTracker()
    assert (vol.stock_threshold, vol.crypto_threshold) == (0.5, 0.75)


def test_no_verdict_of_high_before_the_warmup() -> None:
    vol = VolatilityTracker(warmup=5)
    price = 100.0
    vol.observe("AAPL", price, at(0))
    for i in range(1, 5):
        price *= 1.01  # +1 % every five seconds: hundreds of % a year
        vol.observe("AAPL", price, at(5 * i))
        assert vol.volatility("AAPL") > 10.0
        assert not vol.is_high("AAPL"), i
    vol.observe("AAPL", price * 1.01, at(25))
    assert vol.is_high("AAPL")


def test_a_first_small_move_is_not_high() -> None:
    vol = VolatilityTracker()
    vol.observe("AAPL", 100.0, at(0))
    vol.observe("AAPL", 100.3, at(5))
    assert not vol.is_high("AAPL")


def test_a_return_over_a_gap_is_not_used_and_the_estimate_starts_over() -> None:
    vol = VolatilityTracker(max_gap=600.0)
    for i, price in enumerate([100.0, 101.0, 100.0, 101.0, 100.0, 101.0, 100.0]):
        vol.observe("AAPL", price, at(5 * i))
    assert vol.is_high("AAPL")
    # The next morning, 2 % higher: not one-second volatility.
    assert vol.observe("AAPL", 102.0, at(30 + 17.5 * 3600)) == 0.0
    assert vol.volatility("AAPL") == 0.0
    assert vol.observations("AAPL") == 0
    assert not vol.is_high("AAPL")
    vol.observe("AAPL", 102.01, at(35 + 17.5 * 3600))
    assert vol.observations("AAPL") == 1
    assert vol.volatility("AAPL") == pytest.approx(
        math.log(102.01 / 102.0) / math.sqrt(5) * math.sqrt(STOCK_YEAR_SECONDS)
    )


def test_a_return_up_to_the_gap_counts() -> None:
    vol = VolatilityTracker(max_gap=60.0)
    vol.observe("AAPL", 100.0, at(0))
    vol.observe("AAPL", 100.1, at(60))
    assert vol.observations("AAPL") == 1


def test_a_price_frozen_overnight_is_a_gap_even_when_polled_all_night() -> None:
    # A service polling every 5 s around the clock sees the same stock price all
    # night, then the overnight move at the open: that move is not a 5-second one.
    vol = VolatilityTracker()
    close = datetime(2026, 1, 5, 21, tzinfo=UTC)  # 16:00 New York
    night = int((datetime(2026, 1, 6, 14, 30, tzinfo=UTC) - close).total_seconds())
    stamp = 0
    for stamp in range(0, night, 5):
        vol.observe("AAPL", 100.0, close + timedelta(seconds=stamp))
    prices = [102.0, *walk(0.20, STOCK_YEAR_SECONDS, 600, random.Random(7), start=102.0)]
    verdicts = []
    for i in range(0, len(prices), 5):
        vol.observe("AAPL", prices[i], close + timedelta(seconds=night + i))
        verdicts.append(vol.is_high("AAPL"))
    assert not any(verdicts)
    assert vol.volatility("AAPL") < STOCK_THRESHOLD


def test_an_unchanged_price_counts_with_the_next_move() -> None:
    # Three polls of 100.0 then 100.1: one return over the whole 3 seconds.
    vol = VolatilityTracker()
    for i, price in enumerate([100.0, 100.0, 100.0, 100.1]):
        vol.observe("AAPL", price, at(i))
    assert vol.observations("AAPL") == 1
    expected = math.sqrt(math.log(100.1 / 100.0) ** 2 / 3 * STOCK_YEAR_SECONDS)
    assert vol.volatility("AAPL") == pytest.approx(expected)


def test_the_crypto_rule_is_injectable_and_asked_once_per_symbol() -> None:
    asked: list[str] = []

    def rule(symbol: str) -> bool:
        asked.append(symbol)
        return symbol == "DOGE"

    vol = VolatilityTracker(is_crypto=rule)
    for i in range(3):
        vol.observe("DOGE", 1.0 + i / 1000, at(i))
        vol.observe("AAPL", 1.0 + i / 1000, at(i))
    assert asked == ["DOGE", "AAPL"]
    ratio = vol.volatility("DOGE") / vol.volatility("AAPL")
    assert ratio == pytest.approx(math.sqrt(CRYPTO_YEAR_SECONDS / STOCK_YEAR_SECONDS))


# --- input and bookkeeping --------------------------------------------------------------


@pytest.mark.parametrize(
    "price", [0.0, -1.0, math.nan, math.inf, -math.inf, "abc", None, "1e400", True, False]
)
def test_bad_prices_raise_and_change_nothing(price: Any) -> None:
    vol = VolatilityTracker()
    vol.observe("AAPL", 100.0, at(0))
    vol.observe("AAPL", 101.0, at(1))
    before = (vol.volatility("AAPL"), vol.observations("AAPL"), vol.symbols())
    with pytest.raises(ValueError, match="finite positive"):
        vol.observe("AAPL", price, at(2))
    with pytest.raises(ValueError, match="finite positive"):
        vol.observe("NEW", price, at(2))
    assert (vol.volatility("AAPL"), vol.observations("AAPL"), vol.symbols()) == before


@pytest.mark.parametrize(
    ("symbol", "error"), [("", ValueError), (None, TypeError), (42, TypeError)]
)
def test_bad_symbols_raise(symbol: Any, error: type[Exception]) -> None:
    vol = VolatilityTracker()
    with pytest.raises(error, match=f"symbol must .*{symbol!r}"):
        vol.observe(symbol, 100.0, at(0))
    assert len(vol) == 0


def test_numeric_strings_and_ints_are_prices() -> None:
    vol = VolatilityTracker()
    vol.observe("X", 100, at(0))
    vol.observe("X", "101.5", at(1))  # type: ignore[arg-type]
    assert vol.observations("X") == 1


def test_out_of_order_and_same_instant_observations_are_ignored() -> None:
    vol = VolatilityTracker()
    vol.observe("X", 100.0, at(0))
    vol.observe("X", 101.0, at(10))
    current = vol.volatility("X")
    assert vol.observe("X", 150.0, at(5)) == current
    assert vol.observe("X", 150.0, at(10)) == current
    assert vol.observations("X") == 1
    vol.observe("X", 101.05, at(11))
    assert vol.observations("X") == 2
    assert vol.volatility("X") < current  # measured from 101.0, not from 150.0


def test_default_timestamps_come_from_the_clock() -> None:
    clock = ManualClock(T0)
    vol = VolatilityTracker(clock=clock)
    vol.observe("X", 100.0)
    clock.advance(5)
    vol.observe("X", 101.0)
    # An explicit earlier timestamp than the clock's now is a late answer.
    vol.observe("X", 150.0, clock.now() - timedelta(seconds=1))
    assert vol.observations("X") == 1
    clock.advance(5)
    vol.observe("X", 102.0)
    assert vol.observations("X") == 2


def test_timestamps_must_be_aware_datetimes() -> None:
    vol = VolatilityTracker()
    with pytest.raises(ValueError, match="naive"):
        vol.observe("X", 100.0, datetime(2026, 1, 5, 10))
    with pytest.raises(TypeError, match="ts must be an aware datetime, got 1767625200"):
        vol.observe("X", 100.0, 1767625200)  # type: ignore[arg-type]
    assert "X" not in vol


def test_memory_is_bounded_least_recently_observed_first() -> None:
    vol = VolatilityTracker(max_symbols=3)
    for symbol in ("A", "B", "C"):
        vol.observe(symbol, 100.0, at(0))
    vol.observe("A", 101.0, at(1))  # A is now the most recent
    vol.observe("D", 100.0, at(1))  # evicts B
    assert vol.symbols() == ["C", "A", "D"]
    assert "B" not in vol
    assert len(vol) == 3
    assert vol.observations("A") == 1


def test_forget() -> None:
    vol = VolatilityTracker()
    vol.observe("A", 100.0, at(0))
    vol.forget("A")
    vol.forget("never-seen")
    assert len(vol) == 0


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"stock_threshold": 0.0}, "stock_threshold"),
        ({"stock_threshold": math.inf}, "stock_threshold"),
        ({"crypto_threshold": math.nan}, "crypto_threshold"),
        ({"crypto_threshold": True}, "crypto_threshold"),
        ({"half_life": 0}, "half_life"),
        ({"half_life": "30"}, "half_life"),
        ({"half_life_observations": -1.0}, "half_life_observations"),
        ({"max_gap": 0.0}, "max_gap"),
        ({"warmup": 0}, "warmup"),
        ({"warmup": 2.0}, "warmup"),
        ({"is_crypto": "BTC"}, "is_crypto"),
        ({"max_symbols": 0}, "max_symbols"),
        ({"max_symbols": True}, "max_symbols"),
        ({"max_symbols": 2.5}, "max_symbols"),
    ],
)
def test_bad_configuration_raises_config_error(kwargs: dict[str, Any], parameter: str) -> None:
    with pytest.raises(ConfigError) as info:
        VolatilityTracker(**kwargs)
    assert info.value.parameter == parameter


def test_repr() -> None:
    vol = VolatilityTracker(max_symbols=5)
    vol.observe("A", 1.0, at(0))
    assert repr(vol) == (
        "VolatilityTracker(stock_threshold=0.5, crypto_threshold=0.75, half_life=30.0, symbols=1/5)"
    )


def test_concurrent_observers_lose_no_observation() -> None:
    vol = VolatilityTracker(max_symbols=100, max_gap=1e9)
    barrier = threading.Barrier(4)

    def run(symbol: str) -> None:
        barrier.wait()
        for i in range(500):
            vol.observe(symbol, 100.0 + (i % 7), at(i))
            vol.observe("shared", 50.0 + (i % 3))  # the system clock: never out of order
            vol.is_high("shared")

    threads = [threading.Thread(target=run, args=(f"S{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i in range(4):
        assert vol.observations(f"S{i}") == 499
    assert 0 < vol.observations("shared") <= 4 * 500 - 1
    assert math.isfinite(vol.volatility("shared"))


async def test_observe_from_async_tasks() -> None:
    clock = ManualClock(T0)
    vol = VolatilityTracker(clock=clock)

    async def feed(symbol: str) -> float:
        for price in (100.0, 101.0, 99.0):
            vol.observe(symbol, price)
            await asyncio.sleep(0)
        return vol.volatility(symbol)

    async def tick() -> None:
        for _ in range(3):
            await asyncio.sleep(0)
            clock.advance(1)

    *results, _ = await asyncio.gather(*(feed(s) for s in ("A", "B", "C")), tick())
    assert results[0] > 0.0
    assert results == [results[0]] * 3


def test_doctests() -> None:
    assert doctest.testmod(argo_perf.volatility).failed == 0
