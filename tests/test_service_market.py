"""The reference service's simulated market: deterministic, session-aware, continuous."""

from __future__ import annotations

import doctest
import math
from datetime import date, datetime, timedelta, timezone

import examples.signal_service.market as market_module
import pytest
from examples.signal_service import DEFAULT_SYMBOLS, Market, MarketConfig, uniform
from hypothesis import given, settings
from hypothesis import strategies as st

from argo_perf import NYSE, ConfigError

UTC = timezone.utc
OPEN = datetime(2026, 1, 6, 14, 30, tzinfo=UTC)  # Tuesday 09:30 in New York
CLOSE = datetime(2026, 1, 6, 21, 0, tzinfo=UTC)


def test_module_examples_hold() -> None:
    assert doctest.testmod(market_module).failed == 0


def test_the_same_seed_gives_the_same_market() -> None:
    times = [OPEN + timedelta(minutes=17 * k) for k in range(20)]
    a, b = Market(seed=3), Market(seed=3)
    for symbol in DEFAULT_SYMBOLS:
        assert [a.price(symbol, t) for t in times] == [b.price(symbol, t) for t in times]
        assert [a.regime(symbol, t) for t in times] == [b.regime(symbol, t) for t in times]


def test_another_seed_gives_another_market() -> None:
    at = OPEN + timedelta(hours=2)
    assert Market(seed=1).price("AAPL", at) != Market(seed=2).price("AAPL", at)


def test_the_order_of_questions_changes_no_answer() -> None:
    times = [OPEN + timedelta(seconds=97 * k) for k in range(50)]
    forward, backward = Market(seed=5), Market(seed=5)
    ahead = {(s, t): forward.price(s, t) for s in DEFAULT_SYMBOLS for t in times}
    behind = {(s, t): backward.price(s, t) for t in reversed(times) for s in DEFAULT_SYMBOLS}
    assert ahead == behind


def test_a_price_holds_for_a_whole_step() -> None:
    market = Market(seed=1, config=MarketConfig(step=5.0))
    start = OPEN + timedelta(minutes=10)
    held = {market.price("NVDA", start + timedelta(seconds=s / 10)) for s in range(50)}
    assert len(held) == 1
    assert market.price("NVDA", start + timedelta(seconds=5)) not in held


def test_stocks_move_only_in_session() -> None:
    market = Market(seed=2)
    last = market.price("AAPL", CLOSE - timedelta(seconds=1))
    # After the close, overnight, and before the next open: the close holds.
    for at in (CLOSE, CLOSE + timedelta(hours=5), OPEN + timedelta(days=1) - timedelta(seconds=1)):
        assert not NYSE.is_open(at)
        assert market.price("AAPL", at) == last
    assert not market.is_trading("AAPL", CLOSE)
    in_session = {market.price("AAPL", OPEN + timedelta(minutes=m)) for m in range(0, 390, 30)}
    assert len(in_session) > 1


def test_a_weekend_and_a_holiday_keep_the_last_close() -> None:
    market = Market(seed=2)
    friday_close = datetime(2026, 1, 16, 21, 0, tzinfo=UTC)  # Monday the 19th is MLK Day
    last = market.price("MSFT", friday_close - timedelta(seconds=1))
    for hours in (1, 30, 60, 80):
        assert market.price("MSFT", friday_close + timedelta(hours=hours)) == last


def test_a_session_closes_where_the_next_one_opens() -> None:
    market = Market(seed=4)
    for symbol in ("AAPL", "TSLA"):
        close = market.price(symbol, CLOSE - timedelta(seconds=1))
        next_open = market.price(symbol, OPEN + timedelta(days=1))
        assert abs(next_open / close - 1.0) < 0.01  # one step's move, not a gap


def test_crypto_moves_around_the_clock_and_across_midnight() -> None:
    market = Market(seed=6)
    saturday = datetime(2026, 1, 10, 3, 0, tzinfo=UTC)
    assert market.is_trading("BTC-USD", saturday)
    prices = {market.price("BTC-USD", saturday + timedelta(minutes=m)) for m in range(0, 120, 10)}
    assert len(prices) > 1
    midnight = datetime(2026, 1, 11, tzinfo=UTC)
    before = market.price("ETH-USD", midnight - timedelta(seconds=1))
    after = market.price("ETH-USD", midnight)
    assert abs(after / before - 1.0) < 0.01


def test_regimes_switch_during_a_day() -> None:
    market = Market(seed=1)
    for symbol in DEFAULT_SYMBOLS:
        seen = {market.regime(symbol, OPEN + timedelta(minutes=m)) for m in range(0, 390, 30)}
        assert seen == {"calm", "volatile"}, symbol


def test_volatile_steps_move_more_than_calm_ones() -> None:
    market = Market(seed=8)
    moves: dict[str, list[float]] = {"calm": [], "volatile": []}
    for symbol in DEFAULT_SYMBOLS:
        for k in range(0, 4680, 7):
            at = OPEN + timedelta(seconds=5 * k)
            step = math.log(
                market.price(symbol, at + timedelta(seconds=5)) / market.price(symbol, at)
            )
            moves[market.regime(symbol, at)].append(abs(step))
    calm = sum(moves["calm"]) / len(moves["calm"])
    volatile = sum(moves["volatile"]) / len(moves["volatile"])
    assert volatile > 3 * calm


def test_bars_end_at_the_instant_oldest_first() -> None:
    market = Market(seed=1)
    at = OPEN + timedelta(hours=1)
    bars = market.bars("AAPL", at, 3, interval=60.0)
    assert bars == [market.price("AAPL", at - timedelta(seconds=s)) for s in (120, 60, 0)]


def test_unknown_symbols_get_a_seeded_level() -> None:
    a, b = Market(seed=1), Market(seed=1)
    assert a.level("ZZZZ", date(2026, 1, 6)) == b.level("ZZZZ", date(2026, 1, 6))
    assert 20.0 * 0.8 < a.level("ZZZZ", date(2026, 1, 6)) < 500.0 * 1.2
    assert a.price("ZZZZ", OPEN) > 0


def test_uniform_is_a_stable_draw_in_the_unit_interval() -> None:
    draws = [uniform(9, "x", k) for k in range(1000)]
    assert all(0.0 <= d < 1.0 for d in draws)
    assert 0.45 < sum(draws) / len(draws) < 0.55
    assert uniform(9, "x", 1) == uniform(9, "x", 1) != uniform(10, "x", 1)


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        Market().price("AAPL", datetime(2026, 1, 6, 15, 0))


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"step": 0}, "step"),
        ({"step": True}, "step"),
        ({"calm_volatility": -0.1}, "calm_volatility"),
        ({"switch_probability": 1.5}, "switch_probability"),
        ({"regime_length": 1.0, "step": 5.0}, "regime_length"),
        ({"level_spread": math.nan}, "level_spread"),
    ],
)
def test_bad_market_settings_name_the_parameter(kwargs: dict[str, float], parameter: str) -> None:
    with pytest.raises(ConfigError) as raised:
        MarketConfig(**kwargs)
    assert raised.value.parameter == parameter


def test_bad_market_arguments_are_refused() -> None:
    with pytest.raises(ConfigError, match="seed"):
        Market(seed="1")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="base_prices"):
        Market(base_prices={"AAPL": 0.0})


@settings(max_examples=40, deadline=None)
@given(
    symbol=st.sampled_from(DEFAULT_SYMBOLS),
    seconds=st.integers(min_value=0, max_value=20 * 86_400),
)
def test_any_price_is_positive_finite_and_repeatable(symbol: str, seconds: int) -> None:
    at = datetime(2026, 2, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    price = Market(seed=11).price(symbol, at)
    assert math.isfinite(price)
    assert price > 0
    assert price == Market(seed=11).price(symbol, at)
