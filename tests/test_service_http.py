"""The reference service's endpoints over real HTTP: health, metrics, and a clean stop."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

import pytest
from examples.signal_service.http import (
    HEALTH_PATH,
    METRICS_PATH,
    create_app,
    health_payload,
    serving,
)

from argo_perf import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerRegistry,
    ManualClock,
    PerformanceMetrics,
    PerformanceSummary,
    RateLimiter,
)

SUMMARY_KEYS = set(
    PerformanceSummary.__required_keys__
)  # the health payload's, as test_metrics checks


@dataclass
class State:
    """A `HealthSource` over real primitives."""

    metrics: PerformanceMetrics
    breakers: Mapping[str, CircuitBreaker] | CircuitBreakerRegistry
    limiter: RateLimiter | None
    health: str = "healthy"

    def status(self) -> str:
        return self.health


@pytest.fixture
def state(clock: ManualClock) -> State:
    metrics = PerformanceMetrics(clock=clock)
    breakers = CircuitBreakerRegistry(clock=clock)
    limiter = RateLimiter(clock=clock)
    metrics.track("massive", bucket=limiter.get("massive"), breaker=breakers.get("massive"))
    limiter.try_acquire("massive")
    metrics.record_api_latency("massive", 0.12)
    metrics.record_signal_generation_time(0.25)
    metrics.record_symbol_processed()
    metrics.record_cache_hit()
    clock.advance(3.0)
    return State(metrics, breakers, limiter)


def send(request: str | urllib.request.Request) -> tuple[int, str, bytes]:
    """Status, content type and body of a request's answer (errors included)."""
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


async def fetch(request: str | urllib.request.Request) -> tuple[int, str, bytes]:
    return await asyncio.to_thread(send, request)


async def test_health_serves_the_summary_breakers_and_buckets(state: State) -> None:
    async with serving(create_app(state)) as server:
        status, content_type, body = await fetch(server.url + HEALTH_PATH)
    assert status == 200
    assert content_type == "application/json"
    payload = json.loads(body)
    assert set(payload) == {"status", "services"}
    assert payload["status"] == "healthy"
    services = payload["services"]
    assert set(services) == {"performance", "circuit_breakers", "rate_limiters"}
    performance = services["performance"]
    assert set(performance) == SUMMARY_KEYS
    assert performance["uptime_seconds"] == 3.0
    assert performance["total_symbols_processed"] == 1
    assert performance["data_source_latencies"] == {"massive": 0.12}
    assert services["circuit_breakers"]["massive"]["state"] == "closed"
    assert sorted(services["rate_limiters"]) == ["alpha_vantage", "massive", "sonar", "xai"]
    assert services["rate_limiters"]["massive"]["granted"] == 1


async def test_health_answers_503_when_the_service_is_unhealthy(state: State) -> None:
    state.health = "unhealthy"
    async with serving(create_app(state)) as server:
        status, _, body = await fetch(server.url + HEALTH_PATH)
    assert status == 503
    assert json.loads(body)["status"] == "unhealthy"


def test_a_breaker_forced_open_shows_a_null_retry_after(clock: ManualClock) -> None:
    breaker = CircuitBreaker("xai", CircuitBreakerConfig(), clock=clock)
    breaker.force_open()
    payload = health_payload(State(PerformanceMetrics(clock=clock), {"xai": breaker}, None))
    xai = payload["services"]["circuit_breakers"]["xai"]
    assert xai["state"] == "open"
    assert xai["retry_after"] is None  # infinite: not valid JSON as a number
    assert payload["services"]["rate_limiters"] == {}
    json.dumps(payload, allow_nan=False)


async def test_metrics_serve_the_exposition_that_promtool_accepts(state: State) -> None:
    async with serving(create_app(state)) as server:
        status, content_type, body = await fetch(server.url + METRICS_PATH)
    assert status == 200
    assert content_type.startswith("text/plain; version=0.0.4")
    assert b"argo_data_source_requests_total" in body
    promtool = shutil.which("promtool")
    assert promtool, "promtool is required: install the Debian package 'prometheus' (scripts/test)"
    result = await asyncio.to_thread(
        subprocess.run, [promtool, "check", "metrics"], input=body, capture_output=True, timeout=60
    )
    output = (result.stdout + result.stderr).decode()
    assert result.returncode == 0, output
    assert not output.strip(), output


async def test_other_paths_and_methods_are_refused(state: State) -> None:
    async with serving(create_app(state)) as server:
        missing, _, _ = await fetch(server.url + "/api/v1/nothing")
        request = urllib.request.Request(server.url + HEALTH_PATH, data=b"{}", method="POST")
        posted, _, _ = await fetch(request)
    assert (missing, posted) == (404, 405)


async def test_leaving_the_block_stops_the_server_and_frees_the_port(state: State) -> None:
    async with serving(create_app(state), "127.0.0.1", 0) as server:
        assert server.host == "127.0.0.1"
        assert (await fetch(server.url + HEALTH_PATH))[0] == 200
        assert [t for t in asyncio.all_tasks() if t.get_name() == f"http:{server.port}"]
    assert not [t for t in asyncio.all_tasks() if t.get_name() == f"http:{server.port}"]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, server.port), timeout=5).close()
    # The port can be listened on again.
    async with serving(create_app(state), server.host, server.port) as again:
        assert again.port == server.port
        assert (await fetch(again.url + HEALTH_PATH))[0] == 200


async def test_a_port_in_use_raises_at_once(state: State) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError, match="in use"):
            async with serving(create_app(state), "127.0.0.1", taken.getsockname()[1]):
                pass  # pragma: no cover
