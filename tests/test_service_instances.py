"""Two instances of the optimized service against one Redis: shared cache, shared quotas.

One short replay per module (ten minutes of each part of the day) with
``--redis-url`` on the session's redis-server: the optimized configuration
alone, then blue and green side by side in front of the same vendors.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
from examples.signal_service.__main__ import main
from examples.signal_service.market import Market
from examples.signal_service.replay import DAY, figures, replay
from examples.signal_service.vendors import MassiveVendor

from argo_perf.testing import RedisServer

SHORT_DAY = tuple(replace(segment, hours=1 / 6) for segment in DAY)


@pytest.fixture(scope="module")
def shared(redis_server: RedisServer) -> dict[str, Any]:
    return figures(
        replay(seed=3, day=SHORT_DAY, redis_url=redis_server.url, instances=2, measure_memory=False)
    )


def test_two_instances_are_reported_by_name(shared: dict[str, Any]) -> None:
    assert [each["name"] for each in shared["instances"]] == ["blue", "green"]
    assert shared["combined"]["instances"] == 2
    for each in shared["instances"]:
        assert each["cycles"] == shared["optimized"]["cycles"]
        assert each["signals_written"] > 0


def test_combined_vendor_calls_stay_within_every_vendor_limit(shared: dict[str, Any]) -> None:
    combined = shared["combined"]
    assert combined["rate_limit_errors"] == 0
    assert all(each["rate_limit_errors"] == 0 for each in shared["instances"])
    for name, calls in combined["vendor_calls"].items():
        assert calls == sum(each["vendor_calls"][name] for each in shared["instances"])
        for window in combined["vendor_limits"][name]:
            assert 0 < window["busiest"] <= window["calls"], (name, window)
    assert combined["api_calls"] == sum(combined["vendor_calls"].values())


def test_instances_share_the_cache(shared: dict[str, Any]) -> None:
    alone = shared["optimized"]
    for each in shared["instances"]:
        # Each instance finds values the other stored: fewer calls than running alone.
        assert each["api_calls"] < alone["api_calls"]
        assert each["cache_hit_rate"] > alone["cache_hit_rate"]
    # Together they cost the vendors hardly more than one instance alone.
    assert shared["combined"]["api_calls"] < 1.2 * alone["api_calls"]


def test_a_replay_leaves_no_keys_in_redis(
    shared: dict[str, Any], redis_server: RedisServer
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    try:
        assert not list(client.scan_iter(match="optimized-*"))
    finally:
        client.close()


def test_vendor_clients_count_their_own_calls_against_one_limit() -> None:
    vendor = MassiveVendor(Market(seed=1))
    blue, green = vendor.client(), vendor.client()
    assert blue.stats.busiest == (0,)
    assert blue.config == vendor.config
    # Shared windows: what blue took is gone for green.
    blue._admit(0.0)
    assert green.stats.busiest == (1,) == vendor.stats.busiest
    assert (blue.stats.calls, green.stats.calls) == (0, 0)


def test_cli_writes_instances_and_combined_figures(
    tmp_path: Path, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "replay.json"
    db = tmp_path / "signals.db"
    status = main(
        ["replay", "--hours", "0.01", "--symbols", "AAPL,BTC-USD", "--redis-url", redis_url,
         "--json", str(out), "--db", str(db)]
    )  # fmt: skip
    assert status == 0
    table = capsys.readouterr().out
    assert "| After, blue (shared Redis) | After, green (shared Redis) |" in table
    assert "refused by a vendor's rate limit (HTTP 429)" in table
    data = json.loads(out.read_text())
    assert set(data) == {"baseline", "optimized", "instances", "combined"}
    assert [each["name"] for each in data["instances"]] == ["blue", "green"]
    assert (tmp_path / "signals-blue.db").exists()
    assert (tmp_path / "signals-green.db").exists()


def test_cli_with_one_instance_has_no_instances(
    tmp_path: Path, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "replay.json"
    argv = ["replay", "--hours", "0.01", "--symbols", "AAPL", "--redis-url", redis_url]
    assert main([*argv, "--instances", "1", "--json", str(out)]) == 0
    assert "blue" not in capsys.readouterr().out
    assert set(json.loads(out.read_text())) == {"baseline", "optimized"}


def test_replay_refuses_instances_without_redis() -> None:
    with pytest.raises(ValueError, match="instances"):
        replay(day=SHORT_DAY, instances=2)
