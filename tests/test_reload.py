"""LiveConfig and ConfigWatcher: settings changed at run time, all or nothing, on a ManualClock."""

from __future__ import annotations

import asyncio
import doctest
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import argo_perf.reload
from argo_perf import (
    AdaptiveTTL,
    AdaptiveTTLConfig,
    CircuitBreakerConfig,
    CircuitBreakerRegistry,
    CircuitOpenError,
    CircuitState,
    ConfigChange,
    ConfigError,
    ConfigWatcher,
    LiveConfig,
    ManualClock,
    Quota,
    RateLimitConfig,
    RateLimiter,
    TokenBucket,
)


class VendorDown(Exception):
    pass


def fail() -> None:
    raise VendorDown


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def limiter(clock: ManualClock) -> RateLimiter:
    return RateLimiter(
        {"xai": RateLimitConfig(1, 5), "massive": RateLimitConfig(5, 10)}, clock=clock
    )


@pytest.fixture
def breakers(clock: ManualClock) -> CircuitBreakerRegistry:
    return CircuitBreakerRegistry({"xai": CircuitBreakerConfig()}, clock=clock)


@pytest.fixture
def ttl(clock: ManualClock) -> AdaptiveTTL:
    return AdaptiveTTL(clock=clock)


@pytest.fixture
def live(
    limiter: RateLimiter, breakers: CircuitBreakerRegistry, ttl: AdaptiveTTL, clock: ManualClock
) -> LiveConfig:
    return LiveConfig(limiter, breakers, ttl, clock=clock)


async def eventually_async(predicate: Callable[[], bool]) -> None:
    """Let the watcher's task and its worker thread run until ``predicate()`` holds."""
    deadline = time.monotonic() + 10
    while not predicate():
        assert time.monotonic() < deadline, "the watcher did not get there"
        await asyncio.sleep(0.001)


def eventually(predicate: Callable[[], bool]) -> None:
    """Wait for a background thread to get somewhere (a bound, not a timing claim)."""
    deadline = time.monotonic() + 10
    while not predicate():
        assert time.monotonic() < deadline, "the background thread did not get there"
        time.sleep(0.001)


# -- apply ------------------------------------------------------------------------


def test_apply_changes_limits_breakers_and_ttls_and_says_what_changed(
    live: LiveConfig, limiter: RateLimiter, breakers: CircuitBreakerRegistry, ttl: AdaptiveTTL
) -> None:
    changes = live.apply(
        {
            "rate_limits": {"xai": {"requests_per_second": 2, "burst_size": 8}},
            "breakers": {"xai": {"failure_threshold": 3, "timeout": 30.0}},
            "ttl": {"stock_ttl": 15.0},
        }
    )
    assert [str(change) for change in changes] == [
        "rate_limits.xai.requests_per_second: 1 -> 2",
        "rate_limits.xai.burst_size: 5 -> 8",
        "breakers.xai.failure_threshold: 5 -> 3",
        "breakers.xai.timeout: 60.0 -> 30.0",
        "ttl.stock_ttl: 20.0 -> 15.0",
    ]
    assert limiter.config("xai") == RateLimitConfig(2, 8)
    assert limiter.get("xai").stats.rate == 2
    assert breakers["xai"].config == CircuitBreakerConfig(failure_threshold=3, timeout=30.0)
    assert ttl.ttl_for("AAPL") == 15.0
    assert changes[0] == ConfigChange("rate_limits.xai.requests_per_second", 1, 2)


def test_an_entry_changes_only_the_fields_it_names(
    live: LiveConfig, limiter: RateLimiter, breakers: CircuitBreakerRegistry
) -> None:
    live.apply({"rate_limits": {"xai": {"quotas": [{"limit": 25, "period": 86400}]}}})
    live.apply({"rate_limits": {"xai": {"requests_per_second": 3}}})
    assert limiter.config("xai") == RateLimitConfig(3, 5, (Quota(25, 86400),))
    live.apply({"rate_limits": {"xai": {"quotas": []}}})  # a list given replaces the list
    assert limiter.config("xai") == RateLimitConfig(3, 5)
    live.apply({"breakers": {"xai": {"success_threshold": 3}}})
    assert breakers["xai"].config == CircuitBreakerConfig(success_threshold=3)


def test_config_objects_replace_the_whole_entry(
    live: LiveConfig, limiter: RateLimiter, breakers: CircuitBreakerRegistry, ttl: AdaptiveTTL
) -> None:
    live.apply(
        {
            "rate_limits": {"xai": RateLimitConfig(4, 4)},
            "breakers": {"xai": CircuitBreakerConfig(failure_threshold=2)},
            "ttl": AdaptiveTTLConfig(crypto_ttl=45.0),
        }
    )
    assert limiter.config("xai") == RateLimitConfig(4, 4)
    assert breakers["xai"].config.failure_threshold == 2
    assert ttl.config == AdaptiveTTLConfig(crypto_ttl=45.0)


def test_the_same_settings_again_change_and_reset_nothing(
    live: LiveConfig, breakers: CircuitBreakerRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    settings = {"breakers": {"xai": {"failure_threshold": 3}}, "ttl": {"stock_ttl": 15.0}}
    assert live.apply(settings)
    breaker = breakers["xai"]
    for _ in range(2):
        with pytest.raises(VendorDown):
            breaker.call(fail)
    caplog.set_level(logging.INFO, "argo_perf.reload")
    assert live.apply(settings) == []
    assert live.apply({"rate_limits": {"xai": {"burst_size": 5}}}) == []
    assert breaker.stats.consecutive_failures == 2  # a reconfigure would have reset it
    with pytest.raises(VendorDown):
        breaker.call(fail)
    assert breaker.state is CircuitState.OPEN
    assert not [r for r in caplog.records if r.name == "argo_perf.reload"]  # nothing logged


def test_changes_are_logged_at_info(live: LiveConfig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "argo_perf.reload")
    live.apply({"rate_limits": {"xai": {"requests_per_second": 2}}, "ttl": {"jitter": 0.1}})
    assert caplog.records[-1].levelno == logging.INFO
    assert caplog.records[-1].getMessage() == (
        "configuration changed: rate_limits.xai.requests_per_second: 1 -> 2; ttl.jitter: 0.0 -> 0.1"
    )


def test_validate_tells_the_changes_and_makes_none(live: LiveConfig, limiter: RateLimiter) -> None:
    changes = live.validate({"rate_limits": {"xai": {"burst_size": 9}}})
    assert [str(change) for change in changes] == ["rate_limits.xai.burst_size: 5 -> 9"]
    assert limiter.config("xai") == RateLimitConfig(1, 5)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"rate_limits": {"xai": {"burst_size": -1}}}, "rate_limits.xai.burst_size must be >= 1"),
        (
            {"rate_limits": {"xai": {"requests_per_second": "5"}}},
            "rate_limits.xai.requests_per_second must be > 0 and finite (per second), "
            "got a str (not shown)",
        ),
        ({"rate_limits": {"xai": {"burst": 5}}}, "rate_limits.xai.burst is not a setting"),
        (
            {"rate_limits": {"nobody": {"burst_size": 5}}},
            "rate_limits.nobody is not a configured source (known: massive, xai)",
        ),
        ({"rate_limits": {"xai": 5}}, "rate_limits.xai must be a mapping of settings, got 5"),
        ({"rate_limits": ["xai"]}, "rate_limits must be a mapping of names to settings"),
        ({"rate_limits": {"": {}}}, "rate_limits must have non-empty string names"),
        ({"rate_limits": {"xai": {"quotas": 25}}}, "rate_limits.xai.quotas must be a list"),
        (
            {"rate_limits": {"xai": {"quotas": [{"limit": 25}]}}},
            "rate_limits.xai.quotas[0] must be a mapping with limit and period",
        ),
        (
            {"rate_limits": {"xai": {"quotas": [Quota(1, 1), {"limit": 2, "period": -1}]}}},
            "rate_limits.xai.quotas[1].period must be > 0",
        ),
        (
            {"breakers": {"xai": {"failure_threshold": 2.5}}},
            "breakers.xai.failure_threshold must be an int >= 1, got 2.5",
        ),
        ({"breakers": {"xai": {"timeout": 0}}}, "breakers.xai.timeout must be > 0"),
        ({"ttl": {"jitter": 1.5}}, "ttl.jitter must be a fraction in [0, 1), got 1.5"),
        ({"ttl": {"stock": 15}}, "ttl.stock is not a setting (known: crypto_high_vol_ttl"),
        ({"limits": {}}, "limits is not a setting (known: rate_limits, breakers, ttl)"),
        (["rate_limits"], "settings must be a mapping"),
    ],
)
def test_bad_settings_name_their_path_and_change_nothing(
    live: LiveConfig,
    limiter: RateLimiter,
    breakers: CircuitBreakerRegistry,
    ttl: AdaptiveTTL,
    settings: Any,
    message: str,
) -> None:
    before = (limiter.config("xai"), breakers.config("xai"), ttl.config)
    with pytest.raises(ConfigError) as info:
        live.apply(settings)
    assert message in str(info.value)
    assert (limiter.config("xai"), breakers.config("xai"), ttl.config) == before


def test_one_bad_setting_keeps_every_good_one_from_applying(
    live: LiveConfig, limiter: RateLimiter, ttl: AdaptiveTTL
) -> None:
    with pytest.raises(ConfigError, match=r"^breakers\.xai\.success_threshold"):
        live.apply(
            {
                "rate_limits": {"xai": {"requests_per_second": 9}, "massive": {"burst_size": 1}},
                "ttl": {"stock_ttl": 1.0},
                "breakers": {"xai": {"success_threshold": 0}},
            }
        )
    assert limiter.config("xai") == RateLimitConfig(1, 5)
    assert limiter.config("massive") == RateLimitConfig(5, 10)
    assert ttl.config == AdaptiveTTLConfig()


def test_values_other_than_numbers_never_reach_the_message(live: LiveConfig) -> None:
    secret = "redis://user:hunter2@cache:6379"
    for settings in (
        {"rate_limits": {"xai": {"burst_size": secret}}},
        {"rate_limits": {"nobody": {"url": secret}}},
        {"breakers": {"xai": {"password": secret}}},
        {"redis": secret},
    ):
        with pytest.raises(ConfigError) as info:
            live.apply(settings)
        assert "hunter2" not in str(info.value)
        assert "not shown" in str(info.value)


def test_a_section_for_an_object_not_managed_is_an_error(limiter: RateLimiter) -> None:
    live = LiveConfig(limiter)
    with pytest.raises(ConfigError, match=r"^ttl cannot be changed: this LiveConfig has no Adap"):
        live.apply({"ttl": {"stock_ttl": 15.0}})
    with pytest.raises(ConfigError, match=r"^breakers cannot be changed"):
        live.apply({"breakers": {}})
    with pytest.raises(ConfigError, match=r"^rate_limits cannot be changed"):
        LiveConfig(ttl=AdaptiveTTL()).apply({"rate_limits": {}})


def test_construction_checks_its_arguments(limiter: RateLimiter) -> None:
    with pytest.raises(ConfigError, match="limiter or breakers or ttl must be given"):
        LiveConfig()
    with pytest.raises(ConfigError, match="breakers must be a CircuitBreakerRegistry or None"):
        LiveConfig(limiter, {"xai": CircuitBreakerConfig()})  # type: ignore[arg-type]
    assert repr(LiveConfig(limiter, ttl=AdaptiveTTL())) == "LiveConfig(limiter, ttl)"


def test_names_served_by_a_default_are_configured(clock: ManualClock) -> None:
    limiter = RateLimiter({}, default=RateLimitConfig(1, 1), clock=clock)
    breakers = CircuitBreakerRegistry(clock=clock)  # the seed's default for any name
    live = LiveConfig(limiter, breakers)
    assert live.apply({"rate_limits": {"sonar": {"burst_size": 1}}}) == []  # as the default
    assert "sonar" not in limiter
    live.apply({"rate_limits": {"sonar": {"burst_size": 3}}, "breakers": {"sonar": {"timeout": 9}}})
    assert limiter.config("sonar") == RateLimitConfig(1, 3)
    assert "sonar" in breakers
    assert not breakers.stats  # configured, not built yet
    assert breakers["sonar"].config.timeout == 9


def test_a_registry_without_default_refuses_unknown_breakers(clock: ManualClock) -> None:
    breakers = CircuitBreakerRegistry({"xai": CircuitBreakerConfig()}, default=None, clock=clock)
    with pytest.raises(ConfigError, match=r"breakers\.sonar is not a known breaker .*known: xai"):
        LiveConfig(breakers=breakers).apply({"breakers": {"sonar": {"timeout": 5.0}}})
    assert "sonar" not in breakers


def test_doctests() -> None:
    assert doctest.testmod(argo_perf.reload).failed == 0


# -- what a change does to waiters and open circuits ------------------------------


async def queued_waiter(
    live: LiveConfig, limiter: RateLimiter
) -> tuple[TokenBucket, asyncio.Task[bool]]:
    """xai at 1/s, burst 1, its token taken and a waiter queued for t=1."""
    live.apply({"rate_limits": {"xai": {"requests_per_second": 1, "burst_size": 1}}})
    bucket = limiter.get("xai")
    assert isinstance(bucket, TokenBucket)
    assert bucket.try_acquire()
    waiter = asyncio.create_task(bucket.acquire_async())
    await asyncio.sleep(0)
    return bucket, waiter


async def test_queued_waiters_keep_their_turn_and_what_they_reserved_is_owed_at_the_new_rate(
    live: LiveConfig, limiter: RateLimiter, clock: ManualClock
) -> None:
    bucket, waiter = await queued_waiter(live, limiter)
    live.apply({"rate_limits": {"xai": {"requests_per_second": 0.5}}})
    # Two tokens (the one taken, the one reserved) are owed at 0.5/s now: 4 s.
    assert bucket.wait_time() == pytest.approx(4.0)
    clock.advance(0.5)
    await asyncio.sleep(0)
    assert not waiter.done()  # still queued
    clock.advance(0.5)
    assert await waiter  # at the grant time it was given when it came
    clock.advance(2.9)
    assert not bucket.try_acquire()
    clock.advance(0.1)
    assert bucket.try_acquire()  # the debt was paid back at the new rate


def test_an_open_circuit_keeps_its_deadline_and_the_next_opening_uses_the_new_timeout(
    live: LiveConfig, breakers: CircuitBreakerRegistry, clock: ManualClock
) -> None:
    live.apply({"breakers": {"xai": {"failure_threshold": 1, "timeout": 60.0}}})
    breaker = breakers["xai"]
    with pytest.raises(VendorDown):
        breaker.call(fail)
    clock.advance(10)
    live.apply({"breakers": {"xai": {"timeout": 5.0, "success_threshold": 1}}})
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError) as rejected:
        breaker.call(fail)
    assert rejected.value.retry_after == pytest.approx(50.0)  # the current opening: 60 s
    clock.advance(50)
    with pytest.raises(VendorDown):  # the probe fails: open again, for the new 5 s
        breaker.call(fail)
    with pytest.raises(CircuitOpenError) as rejected:
        breaker.call(fail)
    assert rejected.value.retry_after == pytest.approx(5.0)
    clock.advance(5)
    assert breaker.call(lambda: "ok") == "ok"
    assert breaker.state is CircuitState.CLOSED  # success_threshold 1, the new one


def test_concurrent_applies_and_acquires_never_grant_more_than_a_burst(
    live: LiveConfig, limiter: RateLimiter
) -> None:
    # Time stands still: whatever the interleaving, what was spent stays spent,
    # so no more than the larger burst is ever granted.
    settings = [
        {"rate_limits": {"xai": {"requests_per_second": 1, "burst_size": 5}}},
        {"rate_limits": {"xai": {"requests_per_second": 2, "burst_size": 10}}},
    ]
    granted = []
    start = threading.Barrier(4)

    def reconfigure() -> None:
        start.wait()
        for i in range(300):
            live.apply(settings[i % 2])
            assert limiter.config("xai") in (RateLimitConfig(1, 5), RateLimitConfig(2, 10))

    def acquire() -> None:
        start.wait()
        granted.append(sum(limiter.try_acquire("xai") for _ in range(300)))

    threads = [threading.Thread(target=f) for f in (reconfigure, reconfigure, acquire, acquire)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 5 <= sum(granted) <= 10


def test_a_redis_backed_limiter_is_changed_in_redis(redis_url: str) -> None:
    limiter = RateLimiter({"xai": RateLimitConfig(1, 2)}, redis=redis_url)
    try:
        bucket = limiter.get("xai")
        assert bucket.try_acquire(2)
        LiveConfig(limiter).apply({"rate_limits": {"xai": {"burst_size": 4}}})
        assert limiter.config("xai") == RateLimitConfig(1, 4)
        assert bucket.stats.burst == 4
        assert 1.5 <= bucket.available <= 2.5  # the 2 spent count against the new burst of 4
    finally:
        limiter.close()


# -- files --------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_load_reads_json_and_toml(tmp_path: Path, live: LiveConfig, limiter: RateLimiter) -> None:
    json_file = write(
        tmp_path / "limits.json", json.dumps({"rate_limits": {"xai": {"burst_size": 7}}})
    )
    assert [str(c) for c in live.load(json_file)] == ["rate_limits.xai.burst_size: 5 -> 7"]
    toml_file = write(
        tmp_path / "limits.TOML",
        "[rate_limits.xai]\nrequests_per_second = 2.5\nquotas = [{limit = 25, period = 86400}]\n"
        "[breakers.xai]\ntimeout = 30.0\n[ttl]\nclosed_ttl = 600.0\n",
    )
    assert len(live.load(str(toml_file))) == 4
    assert limiter.config("xai") == RateLimitConfig(2.5, 7, (Quota(25, 86400),))


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("limits.json", '{"rate_limits": {"xai": }', "is not valid JSON (Expecting value: line 1"),
        ("limits.json", "[1, 2]", "must hold an object of settings"),
        ("limits.toml", "[rate_limits.xai\n", "is not valid TOML (Expected ']'"),
        ("limits.toml", "ttl = {stock_ttl = 0}", "ttl.stock_ttl must be > 0"),
        ("limits.yaml", "ttl: {}", "must end in .json or .toml"),
    ],
)
def test_a_bad_file_is_a_config_error_and_changes_nothing(
    tmp_path: Path, live: LiveConfig, ttl: AdaptiveTTL, name: str, text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        live.load(write(tmp_path / name, text))
    assert message in str(info.value)
    assert ttl.config == AdaptiveTTLConfig()


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("limits.json", "[" * 100_000 + "]" * 100_000),
        ("limits.toml", "ttl = " + "[" * 100_000 + "]" * 100_000),
        ("limits.toml", "ttl = " + "{a = " * 100_000 + "1" + "}" * 100_000),
    ],
)
def test_a_file_nested_too_deeply_is_a_config_error_and_a_watcher_survives_it(
    tmp_path: Path, live: LiveConfig, ttl: AdaptiveTTL, name: str, text: str
) -> None:
    file = write(tmp_path / name, text)
    with pytest.raises(ConfigError, match=r"is not valid (JSON|TOML) \(nested too deeply\)"):
        live.load(file)
    watcher = ConfigWatcher(live, file)
    assert watcher.check() == []
    assert watcher.last_error is not None
    assert ttl.config == AdaptiveTTLConfig()


def test_a_missing_file_is_a_config_error(tmp_path: Path, live: LiveConfig) -> None:
    with pytest.raises(ConfigError, match=r"cannot be read \(No such file or directory\)"):
        live.load(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match=r"^path must be a str or a path"):
        live.load(42)  # type: ignore[arg-type]


def test_toml_before_python_3_11_says_so(
    tmp_path: Path, live: LiveConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tomllib", None)  # what Python 3.10 has
    toml_file = write(tmp_path / "limits.toml", "[ttl]\nstock_ttl = 15.0\n")
    with pytest.raises(ConfigError, match=r"needs Python 3.11 or later"):
        live.load(toml_file)
    with pytest.raises(ConfigError, match=r"needs Python 3.11 or later"):
        live.watch(toml_file)


# -- watching a file -------------------------------------------------------------------


def test_check_applies_each_new_version_once(
    tmp_path: Path, live: LiveConfig, limiter: RateLimiter
) -> None:
    file = write(tmp_path / "limits.json", '{"rate_limits": {"xai": {"burst_size": 6}}}')
    watcher = ConfigWatcher(live, file, interval=1.0)
    assert [str(c) for c in watcher.check()] == ["rate_limits.xai.burst_size: 5 -> 6"]
    limiter.configure("xai", RateLimitConfig(1, 9))  # changed in code meanwhile
    write(file, '{"rate_limits": {"xai": {"burst_size": 6}}}')  # rewritten, same content
    assert watcher.check() == []
    assert limiter.config("xai") == RateLimitConfig(1, 9)
    write(file, '{"rate_limits": {"xai": {"burst_size": 7}}}')  # same size, same second
    assert [str(c) for c in watcher.check()] == ["rate_limits.xai.burst_size: 9 -> 7"]
    assert watcher.checks == 3
    assert watcher.last_error is None
    assert repr(watcher) == f"ConfigWatcher({str(file)!r}, interval=1)"


def test_a_bad_version_is_logged_once_and_the_next_good_one_applies(
    tmp_path: Path, live: LiveConfig, limiter: RateLimiter, caplog: pytest.LogCaptureFixture
) -> None:
    file = write(tmp_path / "limits.json", '{"rate_limits": {"xai": {"burst_size": 6}}}')
    watcher = ConfigWatcher(live, file)
    watcher.check()
    caplog.set_level(logging.WARNING, "argo_perf.reload")
    write(file, '{"rate_limits": {"xai": {"burst_size": 0}}, "password": "hunter2"}')
    for _ in range(3):
        assert watcher.check() == []
    assert len(caplog.records) == 1
    assert caplog.records[0].levelno == logging.WARNING
    assert "rejected, settings unchanged" in caplog.text
    assert "hunter2" not in caplog.text
    assert watcher.last_error is not None
    assert limiter.config("xai") == RateLimitConfig(1, 6)
    write(file, '{"rate_limits": {"xai": {"burst_size": 0}}, "api_key": "hunter2"')  # cut off
    assert watcher.check() == []
    assert len(caplog.records) == 2
    assert "is not valid JSON" in caplog.text
    assert "hunter2" not in caplog.text
    file.unlink()  # gone while being replaced
    watcher.check()
    watcher.check()
    assert len(caplog.records) == 3
    assert "cannot be read" in caplog.records[-1].getMessage()
    write(file, '{"rate_limits": {"xai": {"burst_size": 8}}}')
    assert [str(c) for c in watcher.check()] == ["rate_limits.xai.burst_size: 6 -> 8"]
    assert watcher.last_error is None
    assert len(caplog.records) == 3


def test_a_watcher_checks_its_arguments(tmp_path: Path, live: LiveConfig) -> None:
    with pytest.raises(ConfigError, match=r"^interval must be > 0"):
        ConfigWatcher(live, tmp_path / "limits.json", interval=0)
    with pytest.raises(ConfigError, match=r"^live must be a LiveConfig"):
        ConfigWatcher(object(), tmp_path / "limits.json")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"must end in .json or .toml"):
        live.watch(tmp_path / "limits.ini")


def test_watch_applies_now_then_polls_in_a_thread_on_the_clock(
    tmp_path: Path, live: LiveConfig, limiter: RateLimiter, clock: ManualClock
) -> None:
    file = write(tmp_path / "limits.json", '{"rate_limits": {"xai": {"burst_size": 6}}}')
    with live.watch(file, interval=5.0) as watcher:
        assert limiter.config("xai").burst_size == 6  # applied before watch returned
        write(file, '{"rate_limits": {"xai": {"burst_size": 7}}}')
        eventually(lambda: clock.sleepers == 1)
        clock.advance(4.9)
        assert watcher.checks == 1
        clock.advance(0.1)
        eventually(lambda: watcher.checks == 2)
        assert limiter.config("xai").burst_size == 7
        assert watcher.running
        eventually(lambda: clock.sleepers == 1)
    clock.advance(5.0)  # wakes the thread, which sees it was closed
    eventually(lambda: not watcher.running)
    assert watcher.checks == 2


def test_watch_with_the_system_clock_stops_at_once_when_closed(
    tmp_path: Path, limiter: RateLimiter
) -> None:
    file = write(tmp_path / "limits.json", '{"rate_limits": {"xai": {"burst_size": 6}}}')
    watcher = LiveConfig(limiter).watch(file, interval=3600.0)
    assert watcher.running
    watcher.close()
    eventually(lambda: not watcher.running)
    watcher.close()  # again: nothing


def test_a_failing_check_does_not_end_the_polling(
    tmp_path: Path,
    live: LiveConfig,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    file = write(tmp_path / "limits.json", "{}")
    watcher = live.watch(file, interval=1.0)
    calls = []

    def broken() -> list[ConfigChange]:
        calls.append(1)
        if len(calls) == 2:
            watcher.close()  # closed while a check runs: the thread ends after it
        raise RuntimeError("bug")

    monkeypatch.setattr(watcher, "check", broken)
    for expected in (1, 2):
        eventually(lambda: clock.sleepers == 1)
        clock.advance(1.0)
        eventually(lambda: len(calls) == expected)  # noqa: B023 - evaluated in the loop
    eventually(lambda: not watcher.running)
    assert caplog.text.count("checking") == 2


async def test_watch_async_polls_in_a_task_on_the_clock(
    tmp_path: Path, live: LiveConfig, ttl: AdaptiveTTL, clock: ManualClock
) -> None:
    file = write(tmp_path / "ttl.toml", "[ttl]\nstock_ttl = 15.0\n")
    async with await live.watch_async(file, interval=2.0) as watcher:
        assert ttl.config.stock_ttl == 15.0
        write(file, "[ttl]\nstock_ttl = 12.0\n")
        await eventually_async(lambda: clock.sleepers == 1)
        clock.advance(2.0)
        await eventually_async(lambda: watcher.checks == 2)
        assert ttl.config.stock_ttl == 12.0
        assert watcher.running
    assert not watcher.running


async def test_a_failing_async_check_does_not_end_the_polling(
    tmp_path: Path, live: LiveConfig, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    watcher = await live.watch_async(write(tmp_path / "limits.json", "{}"), interval=1.0)
    calls = []

    async def broken() -> list[ConfigChange]:
        calls.append(1)
        raise RuntimeError("bug")

    monkeypatch.setattr(watcher, "check_async", broken)
    for expected in (1, 2):
        await eventually_async(lambda: clock.sleepers == 1)
        clock.advance(1.0)
        await eventually_async(lambda: len(calls) == expected)  # noqa: B023
    watcher.close()  # the sync face cancels the task too
    await eventually_async(lambda: not watcher.running)
    await watcher.aclose()


async def test_a_higher_rate_does_not_wake_a_queued_waiter_earlier(
    live: LiveConfig, limiter: RateLimiter, clock: ManualClock
) -> None:
    bucket, waiter = await queued_waiter(live, limiter)
    live.apply({"rate_limits": {"xai": {"requests_per_second": 10}}})
    assert bucket.wait_time() == pytest.approx(0.2)  # the 2 tokens owed, at 10/s
    clock.advance(0.9)
    await asyncio.sleep(0)
    assert not waiter.done()
    clock.advance(0.1)
    assert await waiter
