"""The breaker's snapshots, registry verbs, reconfiguration and generated call path."""

from __future__ import annotations

import asyncio
import dataclasses
import traceback
from typing import Any

import pytest

from argo_perf import (
    BreakerStats,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerRegistry,
    CircuitOpenError,
    CircuitState,
    ConfigError,
    ManualClock,
)


class VendorDown(Exception):
    pass


def fail() -> None:
    raise VendorDown("down")


def ok() -> str:
    return "ok"


def trip(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        with pytest.raises(VendorDown):
            breaker.call(fail)


def make(clock: ManualClock, **kwargs: Any) -> CircuitBreaker:
    return CircuitBreaker("vendor", CircuitBreakerConfig(**kwargs), clock=clock)


def test_stats_is_a_frozen_snapshot_of_plain_values(clock: ManualClock) -> None:
    breaker = make(clock, failure_threshold=2, timeout=10.0, half_open_permits=2)
    breaker.call(ok)
    trip(breaker, 2)
    with pytest.raises(CircuitOpenError):
        breaker.call(ok)
    stats = breaker.stats
    assert isinstance(stats, BreakerStats)
    assert (stats.state, stats.calls, stats.successes, stats.failures) == ("open", 3, 1, 2)
    assert (stats.rejections, stats.opened, stats.retry_after) == (1, 1, 10.0)
    assert stats.probes_in_flight == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.calls = 0  # type: ignore[misc]
    clock.advance(10.0)
    permit = breaker.try_acquire()
    assert permit is not None
    assert breaker.stats.state == "half_open"
    assert breaker.stats.probes_in_flight == 1
    permit.release()
    assert breaker.stats.probes_in_flight == 0
    # metrics() is the older form of the same snapshot.
    metrics = breaker.metrics()
    assert metrics.state is CircuitState.HALF_OPEN
    for field in dataclasses.fields(metrics):
        if field.name != "state":
            assert getattr(metrics, field.name) == getattr(breaker.stats, field.name)


def test_reconfigure_keeps_the_state_and_reaches_decorated_functions(clock: ManualClock) -> None:
    breaker = make(clock, failure_threshold=5)

    @breaker
    def fetch(fail_it: bool) -> str:
        if fail_it:
            raise VendorDown
        return "ok"

    with pytest.raises(VendorDown):
        fetch(True)
    breaker.reconfigure(CircuitBreakerConfig(failure_threshold=1, timeout=3.0))
    assert breaker.config.failure_threshold == 1
    assert breaker.stats.consecutive_failures == 0  # the rules start from empty counters
    with pytest.raises(VendorDown):
        fetch(True)
    assert breaker.state is CircuitState.OPEN
    breaker.reconfigure(CircuitBreakerConfig(failure_threshold=1, timeout=99.0))
    with pytest.raises(CircuitOpenError) as rejected:
        fetch(False)
    assert rejected.value.retry_after == 3.0  # the open circuit keeps its deadline
    assert breaker.stats.failures == 2
    with pytest.raises(ConfigError, match="config"):
        breaker.reconfigure({"failure_threshold": 1})  # type: ignore[arg-type]


def test_registry_verbs(clock: ManualClock) -> None:
    registry = CircuitBreakerRegistry(
        {"xai": CircuitBreakerConfig(failure_threshold=1)}, clock=clock
    )
    assert registry.names() == ["xai"]
    assert "xai" in registry
    assert "massive" not in registry
    massive = registry.get("massive")  # an unknown name gets the seed's configuration
    assert massive.config == CircuitBreakerConfig()
    assert registry.names() == ["massive", "xai"] == list(registry)
    assert len(registry) == 2
    registry.configure("sonar", CircuitBreakerConfig(failure_threshold=2))
    assert registry.get("sonar").config.failure_threshold == 2
    registry.configure("massive", CircuitBreakerConfig(failure_threshold=1))
    assert registry.get("massive") is massive
    trip(massive, 1)
    assert massive.state is CircuitState.OPEN
    registry.reconfigure("xai", CircuitBreakerConfig(failure_threshold=3))
    assert registry["xai"].config.failure_threshold == 3
    with pytest.raises(ConfigError, match="'massive', 'sonar', 'xai'"):
        registry.reconfigure("alpha", CircuitBreakerConfig())
    assert "alpha" not in registry
    stats = registry.stats
    assert sorted(stats) == ["massive", "sonar", "xai"]
    assert stats["massive"].state == "open"
    assert registry.metrics()["massive"].state is CircuitState.OPEN
    with pytest.raises(ConfigError, match="config"):
        registry.configure("xai", "fast")  # type: ignore[arg-type]


def test_registry_config_tells_a_names_configuration_without_building_it(
    clock: ManualClock,
) -> None:
    registry = CircuitBreakerRegistry(
        {"xai": CircuitBreakerConfig(failure_threshold=1)},
        default=CircuitBreakerConfig(timeout=5.0),
        clock=clock,
    )
    assert registry.config("xai") == CircuitBreakerConfig(failure_threshold=1)
    assert registry.config("massive") == CircuitBreakerConfig(timeout=5.0)  # the default
    assert registry.names() == ["xai"]
    assert not registry.stats  # nothing built
    registry["massive"].reconfigure(CircuitBreakerConfig(timeout=7.0))
    assert registry.config("massive").timeout == 7.0  # the live breaker's own
    strict = CircuitBreakerRegistry({"xai": CircuitBreakerConfig()}, default=None)
    with pytest.raises(ConfigError, match="known: 'xai'"):
        strict.config("massive")


def test_a_registry_without_default_refuses_unknown_names(clock: ManualClock) -> None:
    registry = CircuitBreakerRegistry(
        {"xai": CircuitBreakerConfig(), "massive": CircuitBreakerConfig()},
        default=None,
        clock=clock,
    )
    assert registry.get("xai").name == "xai"
    with pytest.raises(ConfigError, match="known: 'massive', 'xai'") as refused:
        registry.get("alpha")
    assert refused.value.value == "alpha"
    assert registry.names() == ["massive", "xai"]
    with pytest.raises(ConfigError, match="known: none"):
        CircuitBreakerRegistry(default=None).get("alpha")
    with pytest.raises(ConfigError, match="default"):
        CircuitBreakerRegistry(default="seed")  # type: ignore[arg-type]


def test_tracebacks_show_the_generated_call_path(clock: ManualClock) -> None:
    breaker = make(clock)

    @breaker
    def fetch_price(symbol: str) -> float:
        raise VendorDown(symbol)

    with pytest.raises(VendorDown) as raised:
        fetch_price("AAPL")
    text = "".join(traceback.format_exception(raised.value))
    assert "argo_perf.breaker wrapper of fetch_price" in text
    assert "_fn(symbol)" in text  # the line of the wrapper that called the function
    with pytest.raises(VendorDown) as raised:
        breaker.call(fetch_price.__wrapped__, "MSFT")  # type: ignore[attr-defined]
    text = "".join(traceback.format_exception(raised.value))
    assert "_fn(*args, **kwargs)" in text


def test_functions_whose_parameters_the_call_path_uses_still_work(clock: ManualClock) -> None:
    breaker = make(clock, failure_threshold=1)

    @breaker
    def reserved(_fn: int, _core: int = 2, *, _ticket: int = 3) -> int:
        return _fn + _core + _ticket

    @breaker
    def _core(x: int) -> int:
        return x

    assert reserved(1) == 6
    assert reserved(1, _core=5, _ticket=0) == 6
    assert _core(4) == 4

    @breaker
    async def areserved(_result: int) -> int:
        return _result

    assert asyncio.run(areserved(7)) == 7
    assert breaker.stats.successes == 4
