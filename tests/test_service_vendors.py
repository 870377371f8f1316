"""The reference service's simulated vendors and the parsers of their answers."""

from __future__ import annotations

import asyncio
import doctest
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import examples.signal_service.sources as sources_module
import examples.signal_service.vendors as vendors_module
import pytest
from examples.signal_service import (
    DEFAULT_SYMBOLS,
    AlphaVantageVendor,
    IndicatorSource,
    Market,
    MassiveVendor,
    Outage,
    PriceSource,
    RateWindow,
    SentimentSource,
    SonarVendor,
    VendorConfig,
    VendorError,
    VendorNote,
    VendorRateLimited,
    XaiVendor,
    epoch_ns,
    from_epoch_ns,
    parse_alpha_vantage,
    parse_chat_sentiment,
    parse_massive_snapshot,
    simulated_vendors,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from argo_perf import ConfigError, ManualClock
from argo_perf.breaker import retry_after_of

UTC = timezone.utc
OPEN = datetime(2026, 1, 6, 14, 30, tzinfo=UTC)  # Tuesday 09:30 in New York
QUIET = VendorConfig(latency=0.1)  # no failures, no limits


def clock_at(start: datetime = OPEN, *, autoadvance: bool = True) -> ManualClock:
    return ManualClock(start, autoadvance=autoadvance)


def test_module_examples_hold() -> None:
    assert doctest.testmod(sources_module).failed == 0
    assert doctest.testmod(vendors_module).failed == 0


def test_each_vendor_is_the_source_it_plays() -> None:
    vendors = simulated_vendors(Market(seed=1))
    assert isinstance(vendors.massive, PriceSource)
    assert isinstance(vendors.alpha_vantage, IndicatorSource)
    assert isinstance(vendors.xai, SentimentSource)
    assert isinstance(vendors.sonar, SentimentSource)
    assert list(vendors.by_name()) == ["massive", "alpha_vantage", "xai", "sonar"]


def test_default_latencies_and_limits_are_the_vendors() -> None:
    assert MassiveVendor.DEFAULT_CONFIG.latency == 0.12
    assert AlphaVantageVendor.DEFAULT_CONFIG.latency == 0.25
    assert XaiVendor.DEFAULT_CONFIG.latency == 1.0
    assert SonarVendor.DEFAULT_CONFIG.latency == 1.2
    assert AlphaVantageVendor.DEFAULT_CONFIG.limits == (
        RateWindow(5, 60.0),
        RateWindow(25, 86_400.0),
    )


async def test_latency_is_spent_on_the_injected_clock() -> None:
    clock = clock_at()
    vendors = simulated_vendors(Market(seed=1), clock=clock)
    await vendors.massive.price("AAPL")
    assert 0.12 * 0.8 <= clock.monotonic() <= 0.12 * 1.2
    before = clock.monotonic()
    await vendors.xai.sentiment("AAPL")
    assert 0.8 <= clock.monotonic() - before <= 1.2


async def test_a_call_waits_for_virtual_time_to_pass() -> None:
    clock = clock_at(autoadvance=False)
    vendor = MassiveVendor(
        Market(seed=1), config=VendorConfig(latency=0.5, jitter=0.0), clock=clock
    )
    call = asyncio.create_task(vendor.price("AAPL"))
    for _ in range(3):
        await asyncio.sleep(0)
    assert not call.done()
    assert clock.sleepers == 1
    clock.advance(0.49)
    await asyncio.sleep(0)
    assert not call.done()
    clock.advance(0.01)
    quote = await call
    assert quote.timestamp == OPEN  # priced when the call arrived


def test_the_sync_endpoints_block_on_the_clock() -> None:
    clock = clock_at()
    vendors = simulated_vendors(Market(seed=1), clock=clock)
    assert parse_massive_snapshot(vendors.massive.snapshot_sync(["AAPL"]))["AAPL"].price > 0
    assert parse_alpha_vantage(vendors.alpha_vantage.query_sync("AAPL"), "AAPL").rsi >= 0
    assert parse_chat_sentiment("sonar", vendors.sonar.complete_sync("AAPL"), "AAPL").source == (
        "sonar"
    )
    assert clock.monotonic() > 0.12 + 0.25 + 1.2 - 0.4


async def test_a_batch_call_answers_several_symbols_at_once() -> None:
    market = Market(seed=1)
    vendor = MassiveVendor(market, clock=clock_at())
    quotes = await vendor.prices(DEFAULT_SYMBOLS)
    assert sorted(quotes) == sorted(DEFAULT_SYMBOLS)
    assert all(q.price == market.price(s, OPEN) for s, q in quotes.items())
    assert (vendor.stats.calls, vendor.stats.symbols, vendor.stats.ok) == (1, 6, 1)


async def test_parallel_and_sequential_callers_see_the_same_market_and_failures() -> None:
    config = VendorConfig(latency=0.12, error_rate=0.5)

    async def answers(parallel: bool) -> dict[str, object]:
        vendor = MassiveVendor(Market(seed=4), config=config, clock=clock_at())

        async def one(symbol: str) -> object:
            try:
                return (await vendor.price(symbol)).price
            except VendorError as error:
                return error.status

        if parallel:
            results = await asyncio.gather(*(one(s) for s in DEFAULT_SYMBOLS))
        else:
            results = [await one(s) for s in DEFAULT_SYMBOLS]
        return dict(zip(DEFAULT_SYMBOLS, results, strict=True))

    sequential, parallel = await answers(False), await answers(True)
    assert sequential == parallel
    assert 500 in sequential.values()
    assert any(isinstance(v, float) for v in sequential.values())


def test_a_retry_is_a_new_draw_and_draws_repeat_across_runs() -> None:
    def outcomes() -> list[str]:
        vendor = AlphaVantageVendor(
            Market(seed=2), config=VendorConfig(latency=0.01, error_rate=0.5), clock=clock_at()
        )
        seen = []
        for _ in range(12):  # all within one 5-second market step
            try:
                vendor.query_sync("AAPL")
                seen.append("ok")
            except VendorError:
                seen.append("error")
        return seen

    first = outcomes()
    assert set(first) == {"ok", "error"}
    assert outcomes() == first


def test_the_error_rate_is_honoured() -> None:
    clock = clock_at()
    vendor = MassiveVendor(
        Market(seed=3), config=VendorConfig(latency=0.1, error_rate=0.2), clock=clock
    )
    errors: list[VendorError] = []
    for k in range(500):
        clock.advance(5.0)
        try:
            vendor.snapshot_sync([DEFAULT_SYMBOLS[k % 6]])
        except VendorError as error:
            errors.append(error)
    assert {(e.status, str(e)) for e in errors} == {(500, "massive: internal error")}
    failed = len(errors)
    assert 0.14 < failed / 500 < 0.26
    assert vendor.stats.errors == failed


async def test_the_vendor_limit_refuses_with_retry_after_and_counts_it() -> None:
    clock = clock_at()
    limits = AlphaVantageVendor.DEFAULT_CONFIG.limits  # 5 per minute, 25 per day
    vendor = AlphaVantageVendor(
        Market(seed=1), config=VendorConfig(latency=0.25, limits=limits), clock=clock
    )
    for _ in range(5):
        await vendor.query("AAPL")
    refused_at = clock.monotonic()
    with pytest.raises(VendorRateLimited) as raised:
        await vendor.indicators("AAPL")
    assert raised.value.status == 429
    assert raised.value.retry_after == pytest.approx(60.0 - refused_at)
    assert retry_after_of(raised.value) == raised.value.retry_after  # what argo_perf reads
    clock.advance(raised.value.retry_after - (clock.monotonic() - refused_at) + 1e-6)
    await vendor.indicators("AAPL")  # the refusal used up no quota
    stats = vendor.stats
    assert (stats.calls, stats.ok, stats.rate_limited) == (7, 6, 1)


def test_the_daily_quota_is_a_second_window() -> None:
    clock = clock_at()
    vendor = AlphaVantageVendor(
        Market(seed=1),
        config=VendorConfig(latency=0.25, limits=AlphaVantageVendor.DEFAULT_CONFIG.limits),
        clock=clock,
    )
    for _ in range(25):
        vendor.query_sync("MSFT")
        clock.advance(13.0)  # under 5 per minute
    with pytest.raises(VendorRateLimited) as raised:
        vendor.query_sync("MSFT")
    assert 86_400.0 - 26 * 13.5 < raised.value.retry_after <= 86_400.0 - 25 * 13.0


def test_an_outage_answers_503_for_its_length() -> None:
    clock = clock_at()
    outage = Outage(OPEN + timedelta(seconds=10), 30.0)
    vendor = XaiVendor(
        Market(seed=1), config=VendorConfig(latency=1.0, outages=(outage,)), clock=clock
    )
    vendor.complete_sync("TSLA")
    clock.set(outage.start)
    with pytest.raises(VendorError) as raised:
        vendor.complete_sync("TSLA")
    assert raised.value.status == 503
    clock.set(outage.end)
    vendor.complete_sync("TSLA")
    assert (vendor.stats.ok, vendor.stats.errors) == (2, 1)


async def test_an_error_body_is_turned_into_a_vendor_note() -> None:
    notes = VendorConfig(latency=0.1, note_rate=1.0)
    vendors = simulated_vendors(
        Market(seed=1),
        clock=clock_at(),
        configs={"massive": notes, "alpha_vantage": notes, "xai": notes, "sonar": notes},
    )
    raw = await vendors.alpha_vantage.query("AAPL")
    assert "Note" in raw  # HTTP 200: the vendor does not raise, the parser does
    with pytest.raises(VendorNote, match="Alpha Vantage") as raised:
        await vendors.alpha_vantage.indicators("AAPL")
    assert raised.value.status == 200
    with pytest.raises(VendorNote, match="unavailable"):
        await vendors.massive.price("AAPL")
    with pytest.raises(VendorNote, match="unreadable"):
        await vendors.xai.sentiment("AAPL")
    raw["Note"] = "changed"
    assert "Thank you" in (await vendors.alpha_vantage.query("AAPL"))["Note"]
    assert vendors.alpha_vantage.stats.notes == 3


async def test_indicators_are_computed_from_the_market_bars() -> None:
    market = Market(seed=1)
    clock = clock_at(OPEN + timedelta(hours=2, seconds=20))
    indicators = await AlphaVantageVendor(market, config=QUIET, clock=clock).indicators("NVDA")
    minute = OPEN + timedelta(hours=2)
    bars = market.bars("NVDA", minute, 50)
    assert indicators.timestamp == minute
    assert indicators.sma_short == pytest.approx(sum(bars[-20:]) / 20)
    assert indicators.sma_long == pytest.approx(sum(bars) / 50)
    assert 0.0 <= indicators.rsi <= 100.0


async def test_a_sentiment_reading_holds_for_a_quarter_hour() -> None:
    clock = clock_at(OPEN + timedelta(minutes=1))
    vendor = SonarVendor(Market(seed=1), config=QUIET, clock=clock)
    first = await vendor.sentiment("ETH-USD")
    clock.advance(600.0)
    second = await vendor.sentiment("ETH-USD")
    clock.advance(600.0)
    third = await vendor.sentiment("ETH-USD")
    assert (first.score, first.confidence) == (second.score, second.confidence)
    assert (third.score, third.confidence) != (first.score, first.confidence)
    assert -1.0 <= third.score <= 1.0
    assert 0.5 <= third.confidence <= 0.95


def test_bad_symbol_lists_are_refused() -> None:
    vendor = MassiveVendor(Market(), clock=clock_at())
    with pytest.raises(TypeError, match="string"):
        vendor.snapshot_sync("AAPL")
    with pytest.raises(ValueError, match="non-empty"):
        vendor.snapshot_sync([])
    assert vendor.stats.calls == 0


@pytest.mark.parametrize(
    ("build", "parameter"),
    [
        (lambda: VendorConfig(latency=0.0), "latency"),
        (lambda: VendorConfig(latency=0.1, jitter=1.0), "jitter"),
        (lambda: VendorConfig(latency=0.1, error_rate=1.5), "error_rate"),
        (lambda: VendorConfig(latency=0.1, error_rate=0.6, note_rate=0.6), "note_rate"),
        (lambda: RateWindow(0, 1.0), "calls"),
        (lambda: RateWindow(1, float("inf")), "seconds"),
        (lambda: Outage(datetime(2026, 1, 6), 1.0), "start"),
        (lambda: Outage(OPEN, -1.0), "seconds"),
        (lambda: simulated_vendors(Market(), configs={"polygon": QUIET}), "configs"),
    ],
)
def test_bad_vendor_settings_name_the_parameter(build: Any, parameter: str) -> None:
    with pytest.raises(ConfigError) as raised:
        build()
    assert raised.value.parameter == parameter


def test_epoch_nanoseconds_round_trip() -> None:
    at = datetime(2026, 1, 6, 14, 30, 1, 123456, tzinfo=UTC)
    assert epoch_ns(at) == 1_767_709_801_123_456_000
    assert from_epoch_ns(epoch_ns(at)) == at


@pytest.mark.parametrize(
    "payload",
    [
        {"status": "ERROR", "error": "bad key"},
        {"status": "OK"},
        {"status": "OK", "tickers": [{"ticker": "AAPL"}]},
        {"status": "OK", "tickers": [{"ticker": "AAPL", "lastTrade": {"p": "1", "t": 0}}]},
    ],
)
def test_a_malformed_massive_answer_is_a_note(payload: dict[str, Any]) -> None:
    with pytest.raises(VendorNote):
        parse_massive_snapshot(payload)


@pytest.mark.parametrize(
    "payload",
    [
        {"Information": "25 requests per day"},
        {"Error Message": "Invalid API call"},
        {"Meta Data": {}},
        {"Meta Data": {"Symbol": "AAPL", "Last Refreshed": "x"}, "Technical Analysis": {}},
    ],
)
def test_a_malformed_alpha_vantage_answer_is_a_note(payload: dict[str, Any]) -> None:
    with pytest.raises(VendorNote):
        parse_alpha_vantage(payload, "AAPL")


def _chat(content: str) -> dict[str, Any]:
    return {"created": 1_767_709_800, "choices": [{"message": {"content": content}}]}


@pytest.mark.parametrize(
    "payload",
    [
        {"error": {"message": "model overloaded"}},
        {"error": "bad request"},
        _chat("Bullish, I think."),
        _chat('["score", 1]'),
        _chat('{"score": 2.0, "confidence": 0.5}'),
        _chat('{"score": 0.1, "confidence": -0.5}'),
        {"choices": []},
    ],
)
def test_an_unreadable_chat_answer_is_a_note(payload: dict[str, Any]) -> None:
    with pytest.raises(VendorNote):
        parse_chat_sentiment("xai", payload, "AAPL")


def test_a_readable_chat_answer_is_a_sentiment() -> None:
    reading = parse_chat_sentiment("xai", _chat('{"score": -0.4, "confidence": 0.9}'), "AAPL")
    assert (reading.score, reading.confidence, reading.source) == (-0.4, 0.9, "xai")
    assert reading.timestamp == OPEN


@settings(max_examples=25, deadline=None)
@given(
    error_rate=st.floats(0.0, 0.5),
    note_rate=st.floats(0.0, 0.5),
    steps=st.lists(
        st.tuples(st.sampled_from([0.0, 0.3, 5.0]), st.sampled_from(DEFAULT_SYMBOLS)), max_size=40
    ),
)
def test_every_call_is_counted_once_by_its_answer(
    error_rate: float, note_rate: float, steps: list[tuple[float, str]]
) -> None:
    clock = clock_at()
    config = VendorConfig(
        latency=0.1, error_rate=error_rate, note_rate=note_rate, limits=(RateWindow(4, 2.0),)
    )
    vendor = MassiveVendor(Market(seed=1), config=config, clock=clock)
    seen: Counter[str] = Counter()
    for wait, symbol in steps:
        clock.advance(wait)
        try:
            parse_massive_snapshot(vendor.snapshot_sync([symbol]))
            seen["ok"] += 1
        except VendorRateLimited:
            seen["rate_limited"] += 1
        except VendorNote:
            seen["notes"] += 1
        except VendorError:
            seen["errors"] += 1
    stats = vendor.stats
    assert stats.calls == stats.symbols == len(steps)
    assert stats.calls == stats.ok + stats.errors + stats.notes + stats.rate_limited
    counted = {"ok": stats.ok, "errors": stats.errors, "notes": stats.notes}
    assert Counter({**counted, "rate_limited": stats.rate_limited}) == seen
