"""VolatilityTracker: EWMA of log returns per symbol, bounded, thread-safe."""

from __future__ import annotations

import asyncio
import doctest
import itertools
import math
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import argo_perf.volatility
from argo_perf import ConfigError, ManualClock, VolatilityTracker

UTC = timezone.utc


def ewma(prices: list[float], decay: float) -> float:
    """The reference computation, written out plainly."""
    returns = [math.log(b / a) for a, b in itertools.pairwise(prices)]
    if not returns:
        return 0.0
    variance = returns[0] ** 2
    for r in returns[1:]:
        variance = decay * variance + (1 - decay) * r * r
    return math.sqrt(variance)


def test_first_price_has_no_volatility() -> None:
    vol = VolatilityTracker()
    assert vol.observe("AAPL", 100.0) == 0.0
    assert vol.volatility("AAPL") == 0.0
    assert vol.observations("AAPL") == 0
    assert not vol.is_high("AAPL")


def test_riskmetrics_ewma_of_log_returns() -> None:
    prices = [100.0, 101.0, 100.5, 102.0, 99.0, 99.5]
    vol = VolatilityTracker()
    for price in prices:
        latest = vol.observe("AAPL", price)
    assert latest == vol.volatility("AAPL")
    assert vol.volatility("AAPL") == pytest.approx(ewma(prices, 0.94), rel=1e-12)
    assert vol.observations("AAPL") == len(prices) - 1


def test_decay_is_configurable() -> None:
    prices = [100.0, 102.0, 101.0, 104.0]
    vol = VolatilityTracker(decay=0.5)
    for price in prices:
        vol.observe("X", price)
    assert vol.volatility("X") == pytest.approx(ewma(prices, 0.5), rel=1e-12)


def test_symbols_are_independent() -> None:
    vol = VolatilityTracker()
    vol.observe("A", 100.0)
    vol.observe("B", 50.0)
    vol.observe("A", 110.0)
    assert vol.volatility("A") > 0.0
    assert vol.volatility("B") == 0.0
    assert vol.volatility("unknown") == 0.0
    assert vol.observations("unknown") == 0


def test_is_high_against_the_threshold() -> None:
    vol = VolatilityTracker(threshold=0.01)
    vol.observe("CALM", 100.0)
    vol.observe("CALM", 100.1)
    vol.observe("WILD", 100.0)
    vol.observe("WILD", 103.0)
    assert not vol.is_high("CALM")
    assert vol.is_high("WILD")
    assert not vol.is_high("UNKNOWN")


def test_is_high_includes_the_threshold_itself() -> None:
    vol = VolatilityTracker(threshold=0.01)
    vol.observe("X", 100.0)
    vol.observe("X", 100.0 * math.exp(0.01))
    assert vol.volatility("X") == pytest.approx(0.01)
    assert vol.is_high("X") == (vol.volatility("X") >= 0.01)


@pytest.mark.parametrize("price", [0.0, -1.0, math.nan, math.inf, -math.inf, "abc", None, "1e400"])
def test_bad_prices_raise_and_change_nothing(price: Any) -> None:
    vol = VolatilityTracker()
    vol.observe("AAPL", 100.0)
    vol.observe("AAPL", 101.0)
    before = (vol.volatility("AAPL"), vol.observations("AAPL"), vol.symbols())
    with pytest.raises(ValueError, match="finite positive"):
        vol.observe("AAPL", price)
    with pytest.raises(ValueError, match="finite positive"):
        vol.observe("NEW", price)
    assert (vol.volatility("AAPL"), vol.observations("AAPL"), vol.symbols()) == before


def test_numeric_strings_and_ints_are_prices() -> None:
    vol = VolatilityTracker()
    vol.observe("X", 100)
    vol.observe("X", "101.5")  # type: ignore[arg-type]
    assert vol.observations("X") == 1


def test_out_of_order_observations_are_ignored() -> None:
    vol = VolatilityTracker()
    t0 = datetime(2026, 1, 5, 15, tzinfo=UTC)
    vol.observe("X", 100.0, t0)
    vol.observe("X", 101.0, t0 + timedelta(seconds=10))
    current = vol.volatility("X")
    assert vol.observe("X", 150.0, t0 + timedelta(seconds=5)) == current
    assert vol.observations("X") == 1
    vol.observe("X", 101.0, t0 + timedelta(seconds=10))  # same instant counts
    assert vol.observations("X") == 2


def test_default_timestamps_come_from_the_clock() -> None:
    clock = ManualClock()
    vol = VolatilityTracker(clock=clock)
    vol.observe("X", 100.0)
    vol.observe("X", 101.0)
    # An explicit earlier timestamp than the clock's now is a late answer.
    vol.observe("X", 150.0, clock.now() - timedelta(seconds=1))
    assert vol.observations("X") == 1
    clock.advance(5)
    vol.observe("X", 102.0)
    assert vol.observations("X") == 2


def test_naive_timestamp_raises() -> None:
    vol = VolatilityTracker()
    with pytest.raises(ValueError, match="naive"):
        vol.observe("X", 100.0, datetime(2026, 1, 5, 10))
    assert "X" not in vol


def test_memory_is_bounded_least_recently_observed_first() -> None:
    vol = VolatilityTracker(max_symbols=3)
    for symbol in ("A", "B", "C"):
        vol.observe(symbol, 100.0)
    vol.observe("A", 101.0)  # A is now the most recent
    vol.observe("D", 100.0)  # evicts B
    assert vol.symbols() == ["C", "A", "D"]
    assert "B" not in vol
    assert len(vol) == 3
    assert vol.observations("A") == 1


def test_forget() -> None:
    vol = VolatilityTracker()
    vol.observe("A", 100.0)
    vol.forget("A")
    vol.forget("never-seen")
    assert len(vol) == 0


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"decay": 0.0}, "decay"),
        ({"decay": 1.0}, "decay"),
        ({"decay": "0.9"}, "decay"),
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": math.inf}, "threshold"),
        ({"threshold": math.nan}, "threshold"),
        ({"threshold": True}, "threshold"),
        ({"decay": False}, "decay"),
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
    vol.observe("A", 1.0)
    assert repr(vol) == "VolatilityTracker(decay=0.94, threshold=0.002, symbols=1/5)"


def test_concurrent_observers_lose_no_observation() -> None:
    vol = VolatilityTracker(max_symbols=100)
    barrier = threading.Barrier(4)

    def run(symbol: str) -> None:
        barrier.wait()
        for i in range(500):
            vol.observe(symbol, 100.0 + (i % 7))
            vol.observe("shared", 50.0 + (i % 3))
            vol.is_high("shared")

    threads = [threading.Thread(target=run, args=(f"S{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i in range(4):
        assert vol.observations(f"S{i}") == 499
    assert vol.observations("shared") == 4 * 500 - 1


async def test_observe_from_async_tasks() -> None:
    vol = VolatilityTracker()

    async def feed(symbol: str) -> float:
        for price in (100.0, 101.0, 99.0):
            vol.observe(symbol, price)
            await asyncio.sleep(0)
        return vol.volatility(symbol)

    results = await asyncio.gather(*(feed(s) for s in ("A", "B", "C")))
    assert results == [pytest.approx(ewma([100.0, 101.0, 99.0], 0.94))] * 3


@settings(max_examples=100, deadline=None)
@given(
    prices=st.lists(st.floats(min_value=1e-6, max_value=1e9), min_size=1, max_size=40),
    decay=st.floats(min_value=0.01, max_value=0.99),
)
def test_volatility_is_the_ewma_and_finite(prices: list[float], decay: float) -> None:
    vol = VolatilityTracker(decay=decay)
    for price in prices:
        vol.observe("X", price)
    result = vol.volatility("X")
    assert math.isfinite(result)
    assert result >= 0.0
    assert result == pytest.approx(ewma(prices, decay), rel=1e-9, abs=1e-12)


def test_doctests() -> None:
    assert doctest.testmod(argo_perf.volatility).failed == 0
