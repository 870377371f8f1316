"""The reference service's signals: the Signal type, its canonical form, its computation."""

from __future__ import annotations

import dataclasses
import doctest
import hashlib
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import examples.signal_service.signals as signals_module
import pytest
from examples.signal_service import (
    ComponentMemo,
    Indicators,
    LevelInputs,
    Quote,
    Sentiment,
    SentimentInputs,
    Signal,
    TechnicalInputs,
    compute_signal,
    format_timestamp,
    parse_timestamp,
    sentiment_score,
    technical_score,
    trade_levels,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from argo_perf import ConfigError

UTC = timezone.utc
AT = datetime(2026, 1, 6, 15, 0, tzinfo=UTC)


def make_signal(**changes: Any) -> Signal:
    fields: dict[str, Any] = {
        "symbol": "AAPL",
        "action": "BUY",
        "entry_price": 230.0,
        "target_price": 239.2,
        "stop_price": 225.4,
        "confidence": 71.5,
        "strategy": "momentum_sentiment",
        "asset_type": "stock",
        "data_source": "massive+alpha_vantage",
        "timestamp": AT,
    }
    fields.update(changes)
    return Signal(**fields)


def quote(price: float = 100.0, symbol: str = "AAPL") -> Quote:
    return Quote(symbol, price, AT, "massive")


def indicators(rsi: float = 50.0, short: float = 100.0, long: float = 98.0) -> Indicators:
    return Indicators("AAPL", rsi, short, long, AT, "alpha_vantage")


def sentiment(source: str, score: float, confidence: float = 0.8) -> Sentiment:
    return Sentiment("AAPL", score, confidence, AT, source)


def test_module_examples_hold() -> None:
    assert doctest.testmod(signals_module, optionflags=doctest.ELLIPSIS).failed == 0


def test_the_canonical_json_is_sorted_compact_and_leaves_out_the_timestamp() -> None:
    signal = make_signal()
    text = signal.canonical_json()
    content = json.loads(text)
    assert list(content) == sorted(content)
    assert "timestamp" not in content
    assert " " not in text.replace("momentum_sentiment", "")
    assert signal.sha256 == hashlib.sha256(text.encode()).hexdigest()


def test_the_same_content_later_has_the_same_hash_and_another_id() -> None:
    first, later = make_signal(), make_signal(timestamp=AT + timedelta(seconds=5))
    assert first.sha256 == later.sha256
    assert first.signal_id != later.signal_id
    assert make_signal(confidence=71.6).sha256 != first.sha256


def test_a_timestamp_is_kept_in_utc_and_written_at_fixed_width() -> None:
    new_york = timezone(timedelta(hours=-5))
    signal = make_signal(timestamp=datetime(2026, 1, 6, 10, 0, tzinfo=new_york))
    assert signal.timestamp == AT
    assert signal.timestamp.tzinfo is UTC
    assert signal.iso_timestamp == "2026-01-06T15:00:00.000000Z"
    assert parse_timestamp(signal.iso_timestamp) == AT
    assert format_timestamp(AT + timedelta(microseconds=7)) == "2026-01-06T15:00:00.000007Z"


def test_a_signal_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        make_signal().action = "SELL"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"symbol": ""}, "symbol"),
        ({"action": "STRONG_BUY"}, "action"),
        ({"asset_type": "bond"}, "asset_type"),
        ({"entry_price": 0.0}, "entry_price"),
        ({"stop_price": float("nan")}, "stop_price"),
        ({"target_price": True}, "target_price"),
        ({"confidence": 101.0}, "confidence"),
        ({"timestamp": datetime(2026, 1, 6, 15, 0)}, "timestamp"),
    ],
)
def test_a_bad_signal_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_signal(**changes)


def test_bullish_inputs_give_a_buy_with_levels_around_the_price() -> None:
    signal = compute_signal(
        quote(101.0), indicators(rsi=35.0), [sentiment("xai", 0.6), sentiment("sonar", 0.4)]
    )
    assert signal.action == "BUY"
    assert signal.stop_price < signal.entry_price == 101.0 < signal.target_price
    assert signal.target_price - signal.entry_price == pytest.approx(
        2 * (signal.entry_price - signal.stop_price)
    )
    assert 50.0 < signal.confidence <= 100.0
    assert signal.asset_type == "stock"
    assert signal.data_source == "massive+alpha_vantage+sonar+xai"
    assert signal.timestamp == AT


def test_bearish_inputs_give_a_sell_and_crypto_wider_levels() -> None:
    btc = Quote("BTC-USD", 90_000.0, AT, "massive")
    bearish = Indicators("BTC-USD", 80.0, 89_000.0, 91_000.0, AT, "alpha_vantage")
    signal = compute_signal(btc, bearish)
    assert signal.action == "SELL"
    assert signal.asset_type == "crypto"
    assert signal.stop_price == pytest.approx(90_000.0 * 1.04)
    assert signal.target_price == pytest.approx(90_000.0 * 0.92)


def test_a_price_alone_is_a_hold_without_confidence() -> None:
    signal = compute_signal(quote(100.0))
    assert signal.action == "HOLD"
    assert signal.confidence == 0.0
    assert signal.entry_price == signal.target_price == signal.stop_price == 100.0
    assert signal.data_source == "massive"


def test_missing_indicators_lower_the_confidence() -> None:
    both = compute_signal(quote(), indicators(), [sentiment("xai", 0.9)])
    only_sentiment = compute_signal(quote(), None, [sentiment("xai", 0.9)])
    assert only_sentiment.confidence < both.confidence


def test_inputs_of_another_symbol_are_refused() -> None:
    with pytest.raises(ValueError, match="indicators"):
        compute_signal(quote(symbol="MSFT"), indicators())
    with pytest.raises(ValueError, match="sentiment"):
        compute_signal(quote(symbol="MSFT"), None, [sentiment("xai", 0.1)])


def test_the_sentiment_order_does_not_matter() -> None:
    readings = [sentiment("xai", 0.6, 0.9), sentiment("sonar", -0.2, 0.3)]
    forward = compute_signal(quote(), indicators(), readings)
    backward = compute_signal(quote(), indicators(), list(reversed(readings)))
    assert forward == backward
    assert forward.sha256 == backward.sha256


def test_components_stay_in_range() -> None:
    assert technical_score(TechnicalInputs(200.0, 0.0, 150.0, 100.0)) == 1.0
    assert technical_score(TechnicalInputs(50.0, 100.0, 80.0, 100.0)) == -1.0
    assert sentiment_score(SentimentInputs(())) == 0.0
    assert sentiment_score(SentimentInputs(((1.0, 0.0),))) == 0.0
    assert trade_levels(LevelInputs(100.0, "stock", 0)) == (100.0, 100.0, 100.0)


def test_the_memo_recomputes_only_the_components_whose_inputs_changed() -> None:
    memo = ComponentMemo()
    readings = [sentiment("xai", 0.5)]
    first = compute_signal(quote(100.0), indicators(), readings, memo=memo)
    assert memo.stats.computed == 3  # technical, sentiment, levels
    again = compute_signal(quote(100.0), indicators(), readings, memo=memo)
    assert again == first
    assert (memo.stats.computed, memo.stats.reused) == (3, 3)
    # A new price changes the technical component and the levels, not the sentiment.
    moved = compute_signal(quote(100.2), indicators(), readings, memo=memo)
    assert (memo.stats.computed, memo.stats.reused) == (5, 4)
    assert moved == compute_signal(quote(100.2), indicators(), readings)
    assert memo.stats.reuse_rate == pytest.approx(100.0 * 4 / 9)


def test_the_memo_is_bounded() -> None:
    memo = ComponentMemo(maxsize=2)
    for k in range(5):
        memo.compute(sentiment_score, SentimentInputs(((k / 10, 1.0),)))
    assert memo.stats.size == 2
    memo.compute(sentiment_score, SentimentInputs(((0.0, 1.0),)))  # forgotten: computed again
    assert memo.stats.computed == 6
    with pytest.raises(ConfigError, match="maxsize"):
        ComponentMemo(maxsize=0)
    assert ComponentMemo().stats.reuse_rate == 0.0


finite = st.floats(min_value=1.0, max_value=1e6, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(
    price=finite,
    rsi=st.floats(0.0, 100.0),
    short=finite,
    long=finite,
    scores=st.lists(st.tuples(st.floats(-1.0, 1.0), st.floats(0.0, 1.0)), max_size=2),
    with_indicators=st.booleans(),
)
def test_a_computed_signal_is_valid_and_repeatable(
    price: float,
    rsi: float,
    short: float,
    long: float,
    scores: list[tuple[float, float]],
    with_indicators: bool,
) -> None:
    readings = [
        sentiment(name, s, c) for name, (s, c) in zip(("xai", "sonar"), scores, strict=False)
    ]
    technical = indicators(rsi, short, long) if with_indicators else None
    signal = compute_signal(quote(price), technical, readings)
    assert 0.0 <= signal.confidence <= 100.0
    assert signal.action in ("BUY", "SELL", "HOLD")
    if signal.action == "BUY":
        assert signal.stop_price < signal.entry_price < signal.target_price
    if signal.action == "SELL":
        assert signal.target_price < signal.entry_price < signal.stop_price
    assert signal == compute_signal(quote(price), technical, readings, memo=ComponentMemo())
