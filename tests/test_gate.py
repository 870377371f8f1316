"""ChangeGate: skip symbols whose price has not moved enough since their value was computed."""

from __future__ import annotations

import asyncio
import doctest
import math
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import argo_perf.gate
from argo_perf import ChangeGate, ConfigError, ManualClock


def test_an_unknown_symbol_has_changed() -> None:
    gate: ChangeGate[str] = ChangeGate()
    assert gate.changed("AAPL", 100.0)
    assert gate.cached("AAPL") is None
    assert gate.cached("AAPL", "nothing") == "nothing"
    assert gate.price("AAPL") is None


def test_a_move_of_at_least_the_threshold_is_a_change() -> None:
    gate: ChangeGate[str] = ChangeGate(threshold=0.005)
    gate.remember("AAPL", 100.0, "signal")
    assert not gate.changed("AAPL", 100.4)
    assert not gate.changed("AAPL", 99.6)
    assert gate.changed("AAPL", 100.5)  # exactly 0.5 %
    assert gate.changed("AAPL", 99.5)
    assert gate.changed("AAPL", 120.0)
    assert gate.cached("AAPL") == "signal"
    assert gate.price("AAPL") == 100.0


def test_changed_does_not_move_the_reference() -> None:
    gate: ChangeGate[int] = ChangeGate(threshold=0.01)
    gate.remember("X", 100.0, 1)
    # Creeping up by 0.5 % at a time never resets the reference, so the third step is a change.
    assert not gate.changed("X", 100.5)
    assert not gate.changed("X", 100.9)
    assert gate.changed("X", 101.0)


def test_remember_replaces_the_reference() -> None:
    gate: ChangeGate[int] = ChangeGate()
    gate.remember("X", 100.0, 1)
    gate.remember("X", 110.0, 2)
    assert not gate.changed("X", 110.1)
    assert gate.cached("X") == 2


def test_zero_threshold_means_every_call_is_a_change() -> None:
    gate: ChangeGate[int] = ChangeGate(threshold=0)
    gate.remember("X", 100.0, 1)
    assert gate.changed("X", 100.0)


def test_counts_skips() -> None:
    gate: ChangeGate[int] = ChangeGate()
    assert gate.skip_rate == 0.0
    gate.changed("X", 100.0)
    gate.remember("X", 100.0, 1)
    gate.changed("X", 100.1)
    gate.changed("X", 100.2)
    gate.changed("X", 200.0)
    assert (gate.checks, gate.skips, gate.skip_rate) == (4, 2, 50.0)
    gate.reset_stats()
    assert (gate.checks, gate.skips, gate.skip_rate) == (0, 0, 0.0)
    assert gate.cached("X") == 1


def test_max_age_regenerates_quiet_symbols() -> None:
    clock = ManualClock()
    gate: ChangeGate[int] = ChangeGate(max_age=60.0, clock=clock)
    gate.remember("X", 100.0, 1)
    clock.advance(59.9)
    assert not gate.changed("X", 100.0)
    clock.advance(0.1)
    assert gate.changed("X", 100.0)
    gate.remember("X", 100.0, 2)
    assert not gate.changed("X", 100.0)


@pytest.mark.parametrize("price", [0.0, -5.0, math.nan, math.inf, None, "x", True])
def test_bad_prices_raise_and_change_nothing(price: Any) -> None:
    gate: ChangeGate[int] = ChangeGate()
    gate.remember("X", 100.0, 1)
    with pytest.raises(ValueError, match="finite positive"):
        gate.changed("X", price)
    with pytest.raises(ValueError, match="finite positive"):
        gate.remember("X", price, 2)
    assert gate.checks == 0
    assert gate.cached("X") == 1
    assert gate.price("X") == 100.0


def test_memory_is_bounded() -> None:
    gate: ChangeGate[int] = ChangeGate(max_symbols=2)
    gate.remember("A", 1.0, 1)
    gate.remember("B", 1.0, 2)
    gate.remember("A", 1.0, 3)
    gate.remember("C", 1.0, 4)  # evicts B
    assert "B" not in gate
    assert gate.cached("A") == 3
    assert len(gate) == 2


def test_forget_and_clear() -> None:
    gate: ChangeGate[int] = ChangeGate()
    gate.remember("A", 1.0, 1)
    gate.remember("B", 1.0, 2)
    gate.forget("A")
    gate.forget("never-seen")
    assert gate.changed("A", 1.0)
    gate.clear()
    assert len(gate) == 0
    assert gate.checks == 1


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"threshold": -0.1}, "threshold"),
        ({"threshold": math.nan}, "threshold"),
        ({"threshold": math.inf}, "threshold"),
        ({"threshold": "0.1"}, "threshold"),
        ({"threshold": True}, "threshold"),
        ({"max_age": True}, "max_age"),
        ({"max_age": "60"}, "max_age"),
        ({"max_age": 0.0}, "max_age"),
        ({"max_age": -1.0}, "max_age"),
        ({"max_age": math.inf}, "max_age"),
        ({"max_symbols": 0}, "max_symbols"),
        ({"max_symbols": False}, "max_symbols"),
    ],
)
def test_bad_configuration_raises_config_error(kwargs: dict[str, Any], parameter: str) -> None:
    with pytest.raises(ConfigError) as info:
        ChangeGate(**kwargs)
    assert info.value.parameter == parameter


def test_repr() -> None:
    gate: ChangeGate[int] = ChangeGate()
    assert repr(gate) == "ChangeGate(threshold=0.005, max_age=None, symbols=0, skip_rate=0.0%)"


def test_counters_are_exact_under_threads() -> None:
    gate: ChangeGate[int] = ChangeGate()
    gate.remember("X", 100.0, 1)
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        for i in range(1000):
            gate.changed("X", 100.0 if i % 2 else 150.0)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (gate.checks, gate.skips, gate.skip_rate) == (4000, 2000, 50.0)


async def test_gate_in_an_async_polling_loop() -> None:
    gate: ChangeGate[str] = ChangeGate()
    computed: list[str] = []

    async def signal(symbol: str, price: float) -> str:
        if not gate.changed(symbol, price):
            cached = gate.cached(symbol)
            assert cached is not None
            return cached
        await asyncio.sleep(0)
        value = f"{symbol}@{price}"
        computed.append(value)
        gate.remember(symbol, price, value)
        return value

    for price in (100.0, 100.1, 100.2, 101.0):
        await asyncio.gather(signal("A", price), signal("B", price * 2))
    assert computed == ["A@100.0", "B@200.0", "A@101.0", "B@202.0"]
    assert gate.skip_rate == 50.0


@settings(max_examples=100, deadline=None)
@given(
    ref=st.floats(min_value=1e-3, max_value=1e6),
    move=st.floats(min_value=-0.5, max_value=0.5),
    threshold=st.floats(min_value=0.0, max_value=0.2),
)
def test_changed_is_the_relative_move_against_the_threshold(
    ref: float, move: float, threshold: float
) -> None:
    gate: ChangeGate[None] = ChangeGate(threshold=threshold)
    gate.remember("X", ref, None)
    price = ref * (1 + move)
    changed = gate.changed("X", price)
    # A move that reaches the threshold up to float rounding (a billionth of it) counts.
    assert changed == (abs(price - ref) >= threshold * ref * (1 - 1e-9))
    if abs(move) == threshold >= 1e-6:
        assert changed


def test_doctests() -> None:
    assert doctest.testmod(argo_perf.gate).failed == 0
