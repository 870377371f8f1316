"""Breaker state shared through a real Redis: openings, probe lease, outages, bad data."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio

from argo_perf import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    CircuitState,
    ConfigError,
    ManualClock,
    SharedStateStats,
)
from argo_perf._redis import BackendHealth
from argo_perf.breaker import RedisBreakerState
from argo_perf.testing import RedisServer, join_redis_probes, join_redis_probes_async

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
OPEN_KEY = "argo_perf:breaker:{vendor}:open"
PROBE_KEY = "argo_perf:breaker:{vendor}:probe"


class VendorDown(Exception):
    pass


def fail() -> None:
    raise VendorDown


def ok() -> str:
    return "ok"


def config(**kwargs: Any) -> CircuitBreakerConfig:
    base: dict[str, Any] = {"failure_threshold": 2, "success_threshold": 1, "timeout": 30.0}
    base.update(kwargs)
    return CircuitBreakerConfig(**base)


@pytest.fixture
def state(redis_url: str) -> Iterator[RedisBreakerState]:
    shared = RedisBreakerState(redis_url)
    yield shared
    shared.close()


def process(state: RedisBreakerState, clock: ManualClock, **kwargs: Any) -> CircuitBreaker:
    """One breaker per simulated process: its own token, the same Redis."""
    return CircuitBreaker("vendor", config(**kwargs), clock=clock, shared=state)


def trip(breaker: CircuitBreaker, times: int = 2) -> None:
    for _ in range(times):
        with pytest.raises(VendorDown):
            breaker.call(fail)


def commands(client: redis.Redis) -> int:
    stats: dict[str, Any] = client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")


def test_a_trip_is_published_and_the_others_open_at_their_next_failure(
    state: RedisBreakerState, redis_client: redis.Redis, clock: ManualClock
) -> None:
    first, second = process(state, clock), process(state, clock)
    trip(first)
    ttl = redis_client.pttl(OPEN_KEY)
    assert 29_000 < ttl <= 30_000
    assert int(redis_client.get(OPEN_KEY) or 0) > 0  # open-until in Redis time (ms)
    assert second.call(ok) == "ok"
    with pytest.raises(VendorDown):
        second.call(fail)  # the failure asks Redis, and opens for the remaining time
    assert second.state is OPEN
    with pytest.raises(CircuitOpenError) as info:
        second.call(ok)
    assert 29.0 < info.value.retry_after <= 30.0


def test_nothing_touches_redis_while_closed_calls_succeed(
    state: RedisBreakerState, redis_client: redis.Redis, clock: ManualClock
) -> None:
    breaker = process(state, clock, failure_if_result=lambda r: r is None)
    decorated = breaker(ok)
    before = commands(redis_client)
    for _ in range(200):
        decorated()
        breaker.call(ok)
    assert commands(redis_client) == before


def test_one_process_holds_the_probe_lease(
    state: RedisBreakerState, redis_client: redis.Redis, clock: ManualClock
) -> None:
    first, second = process(state, clock), process(state, clock)
    trip(first)
    trip(second, 1)  # learns the opening from Redis
    assert second.state is OPEN
    clock.advance(30.0)
    redis_client.delete(OPEN_KEY)  # the shared open period is over
    probe = first.try_acquire()
    assert probe is not None
    assert 0 < redis_client.pttl(PROBE_KEY) <= 60_000
    with pytest.raises(CircuitOpenError) as info:
        second.call(ok)
    assert 50.0 < info.value.retry_after <= 60.0
    assert second.state is OPEN
    assert second.metrics().rejections == 1  # the call the lease turned away counts
    assert second.metrics().opened == 2  # learned at its failure, then at the lease: openings too
    probe.on_success()
    assert first.state is CLOSED
    assert redis_client.exists(PROBE_KEY) == 0


def test_a_reconfigured_breaker_holds_the_probe_lease_for_its_new_probe_timeout(
    state: RedisBreakerState, redis_client: redis.Redis, clock: ManualClock
) -> None:
    breaker = process(state, clock)
    breaker.reconfigure(config(probe_timeout=5.0))
    trip(breaker)
    clock.advance(30.0)
    redis_client.delete(OPEN_KEY)
    probe = breaker.try_acquire()
    assert probe is not None
    assert 0 < redis_client.pttl(PROBE_KEY) <= 5_000
    probe.release()
    assert redis_client.exists(PROBE_KEY) == 0


def test_a_released_or_cancelled_probe_gives_the_shared_lease_back(
    state: RedisBreakerState, redis_client: redis.Redis, clock: ManualClock
) -> None:
    first, second = process(state, clock), process(state, clock)
    trip(first)
    clock.advance(30.0)
    redis_client.delete(OPEN_KEY)
    probe = first.try_acquire()
    assert probe is not None
    assert redis_client.exists(PROBE_KEY) == 1
    probe.release()  # abandoned work: neither success nor failure
    assert redis_client.exists(PROBE_KEY) == 0
    with pytest.raises(KeyboardInterrupt):
        first.call(_raise, KeyboardInterrupt())  # ignored by default
    assert redis_client.exists(PROBE_KEY) == 0
    assert second.call(ok) == "ok"  # the other process may probe at once


async def test_a_cancelled_async_probe_gives_the_shared_lease_back(
    state: RedisBreakerState, redis_client: redis.Redis, clock: ManualClock
) -> None:
    breaker = process(state, clock)
    trip(breaker)
    clock.advance(30.0)
    redis_client.delete(OPEN_KEY)
    started = asyncio.Event()

    async def hang() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(breaker.call_async(hang))
    await started.wait()
    assert redis_client.exists(PROBE_KEY) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert redis_client.exists(PROBE_KEY) == 0
    await state.aclose()


def _raise(exc: BaseException) -> None:
    raise exc


def test_a_failed_probe_publishes_the_opening_again(
    state: RedisBreakerState, redis_client: redis.Redis, clock: ManualClock
) -> None:
    breaker = process(state, clock)
    trip(breaker)
    clock.advance(30.0)
    redis_client.delete(OPEN_KEY)
    trip(breaker, 1)  # the probe fails
    assert breaker.state is OPEN
    assert redis_client.pttl(OPEN_KEY) > 29_000
    assert redis_client.exists(PROBE_KEY) == 0


def test_a_process_whose_timer_ended_early_respects_a_longer_shared_opening(
    state: RedisBreakerState, redis_client: redis.Redis, clock: ManualClock
) -> None:
    breaker = process(state, clock, timeout=1.0)
    trip(breaker)
    redis_client.set(OPEN_KEY, 1, px=45_000)  # another process opened it for longer
    clock.advance(1.0)
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(ok)
    assert 40.0 < info.value.retry_after <= 45.0


def test_publishing_never_shortens_a_longer_opening(
    state: RedisBreakerState, redis_client: redis.Redis, clock: ManualClock
) -> None:
    redis_client.set(OPEN_KEY, 1, px=90_000)
    breaker = process(state, clock, failure_threshold=1)
    trip(breaker, 1)
    assert redis_client.pttl(OPEN_KEY) > 60_000


def test_redis_down_falls_back_to_the_local_breaker(
    fault_redis: RedisServer, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    shared = RedisBreakerState(fault_redis.url, clock=clock)
    breaker = process(shared, clock)
    fault_redis.kill()
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            trip(breaker, 1)
            breaker.reset()
        trip(breaker)
    assert breaker.state is OPEN
    assert shared.errors >= 3
    assert not shared.health.available
    assert "unreachable" in caplog.text
    clock.advance(30.0)
    assert breaker.call(ok) == "ok"  # the probe runs locally
    assert breaker.state is CLOSED
    shared.close()


def test_a_frozen_redis_times_out_and_the_local_breaker_decides(
    fault_redis: RedisServer, clock: ManualClock
) -> None:
    shared = RedisBreakerState(fault_redis.url, clock=clock)
    breaker = process(shared, clock)
    fault_redis.pause()
    try:
        trip(breaker)
        assert breaker.state is OPEN
        assert shared.errors >= 1
    finally:
        fault_redis.resume()
        shared.close()


def test_bad_data_in_redis_is_counted_and_ignored(
    state: RedisBreakerState,
    redis_client: redis.Redis,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    breaker = process(state, clock)
    trip(breaker)
    clock.advance(30.0)
    redis_client.delete(OPEN_KEY)
    redis_client.set(PROBE_KEY, "planted")  # no TTL: not written by a breaker
    assert breaker.call(ok) == "ok"
    assert state.bad_replies == 1
    redis_client.delete(PROBE_KEY)
    redis_client.rpush(PROBE_KEY, "x")  # WRONGTYPE for the lease script
    trip(breaker)
    assert breaker.state is OPEN
    assert state.errors >= 1
    assert "malformed" in caplog.text
    assert state.stats.bad_replies == 1


def test_construction_from_clients_and_bad_arguments(redis_url: str) -> None:
    sync = redis.Redis.from_url(redis_url)
    from_sync = RedisBreakerState(sync)
    assert from_sync.acquire_probe("vendor", "me", 30.0) == (True, 0.0)
    # A sync client serves the sync face only: the asyncio face stays local.
    assert asyncio.run(from_sync.acquire_probe_async("vendor", "other", 30.0)) is None
    assert "redis://" in repr(from_sync)
    from_async = RedisBreakerState(redis.asyncio.Redis.from_url(redis_url))
    assert from_async.acquire_probe("vendor", "other", 30.0) is None  # the sync face is local
    with pytest.raises(ConfigError):
        RedisBreakerState("http://example.com")
    with pytest.raises(ConfigError):
        RedisBreakerState(redis_url, prefix=3)  # type: ignore[arg-type]
    from_sync.close()
    sync.close()


async def test_the_async_face_shares_through_the_async_client(
    redis_url: str, redis_client: redis.Redis, clock: ManualClock
) -> None:
    shared = RedisBreakerState(redis_url)
    first, second = process(shared, clock), process(shared, clock)

    async def afail() -> None:
        raise VendorDown

    async def aok() -> str:
        return "ok"

    for _ in range(2):
        with pytest.raises(VendorDown):
            await first.call_async(afail)
    assert redis_client.pttl(OPEN_KEY) > 29_000
    assert await second.call_async(aok) == "ok"
    with pytest.raises(VendorDown):
        await second.call_async(afail)
    assert second.state is OPEN
    clock.advance(30.0)
    redis_client.delete(OPEN_KEY)
    async with first:
        assert redis_client.exists(PROBE_KEY) == 1
        with pytest.raises(CircuitOpenError):
            await second.call_async(aok)
    assert first.state is CLOSED
    assert redis_client.exists(PROBE_KEY) == 0
    await shared.aclose()


async def test_async_face_survives_redis_going_away(
    fault_redis: RedisServer, clock: ManualClock
) -> None:
    shared = RedisBreakerState(fault_redis.url, clock=clock)
    breaker = process(shared, clock)

    async def afail() -> None:
        raise VendorDown

    fault_redis.kill()
    for _ in range(2):
        with pytest.raises(VendorDown):
            await breaker.call_async(afail)
    assert breaker.state is OPEN
    clock.advance(30.0)

    async def aok() -> str:
        return "ok"

    assert await breaker.call_async(aok) == "ok"
    assert shared.errors >= 2
    await shared.aclose()


async def test_async_bad_replies_and_server_errors(
    redis_url: str, redis_client: redis.Redis, clock: ManualClock
) -> None:
    shared = RedisBreakerState(redis_url)
    breaker = process(shared, clock)

    async def afail() -> None:
        raise VendorDown

    async def aok() -> str:
        return "ok"

    for _ in range(2):
        with pytest.raises(VendorDown):
            await breaker.call_async(afail)
    clock.advance(30.0)
    redis_client.delete(OPEN_KEY)
    redis_client.set(PROBE_KEY, "planted")
    assert await breaker.call_async(aok) == "ok"
    assert shared.bad_replies == 1
    redis_client.delete(PROBE_KEY)
    redis_client.rpush(PROBE_KEY, "x")
    for _ in range(2):
        with pytest.raises(VendorDown):
            await breaker.call_async(afail)
    clock.advance(30.0)
    redis_client.delete(OPEN_KEY)
    assert await breaker.call_async(aok) == "ok"  # lease script fails: local probe
    assert shared.errors >= 2
    await shared.aclose()


async def test_a_probe_cancelled_while_asking_for_the_lease_gives_its_permit_back(
    fault_redis: RedisServer, clock: ManualClock
) -> None:
    shared = RedisBreakerState(fault_redis.url, clock=clock)
    breaker = process(shared, clock)
    trip(breaker)
    clock.advance(30.0)
    with fault_redis.client() as client:
        client.delete(OPEN_KEY)

    async def aok() -> str:
        return "ok"

    fault_redis.pause()
    try:
        task = asyncio.create_task(breaker.call_async(aok))
        await asyncio.sleep(0)  # the task runs up to its first suspension
        assert breaker.stats.probes_in_flight == 1  # admitted, the lease on its way
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        fault_redis.resume()
    assert breaker.stats.probes_in_flight == 0
    assert await breaker.call_async(aok) == "ok"  # not rejected for probe_timeout
    assert breaker.state is CLOSED
    await shared.aclose()


async def test_listeners_hear_of_a_trip_whose_publication_was_cancelled(
    fault_redis: RedisServer, clock: ManualClock
) -> None:
    shared = RedisBreakerState(fault_redis.url, clock=clock)
    heard: list[CircuitState] = []
    breaker = CircuitBreaker(
        "vendor",
        config(failure_threshold=1),
        clock=clock,
        shared=shared,
        listeners=[lambda t: heard.append(t.new)],
    )

    async def afail() -> None:
        raise VendorDown

    fault_redis.pause()
    try:
        task = asyncio.create_task(breaker.call_async(afail))
        await asyncio.sleep(0)  # tripped; the opening is on its way to a frozen Redis
        assert breaker.stats.state == "open"
        task.cancel()
        with pytest.raises((asyncio.CancelledError, VendorDown)):
            await task
    finally:
        fault_redis.resume()
    assert heard == [OPEN]
    await shared.aclose()


@pytest.mark.parametrize("face", ["sync", "async"])
async def test_an_error_reply_means_redis_is_up(
    fault_redis: RedisServer, clock: ManualClock, face: str
) -> None:
    # An error reply (WRONGTYPE) comes from a server that is up: the local
    # breaker decides that call, and Redis is never taken for down.
    shared = RedisBreakerState(fault_redis.url, clock=clock)
    with fault_redis.client() as client:
        client.rpush(PROBE_KEY, "x")  # WRONGTYPE for the lease script
    for _ in range(2 * shared.health.failure_threshold):
        if face == "sync":
            assert shared.acquire_probe("vendor", "me", 30.0) is None
        else:
            assert await shared.acquire_probe_async("vendor", "me", 30.0) is None
    assert shared.health.available
    assert shared.stats.errors == 2 * shared.health.failure_threshold
    await shared.aclose()


def test_shared_state_stats_and_an_injected_health_gate(
    fault_redis: RedisServer, clock: ManualClock
) -> None:
    gate = BackendHealth("shared gate", failure_threshold=1, clock=clock)
    shared = RedisBreakerState(fault_redis.url, clock=clock, health=gate)
    assert shared.health is gate
    assert shared.stats == SharedStateStats(
        target=shared.target, available=True, errors=0, outages=0, bad_replies=0, skipped=0
    )
    fault_redis.kill()
    assert shared.open_remaining("vendor") is None
    assert shared.open_remaining("vendor") is None  # the gate is down: Redis is skipped
    stats = shared.stats
    assert (stats.available, stats.errors, stats.outages, stats.skipped) == (False, 1, 1, 1)
    assert (shared.errors, shared.bad_replies) == (1, 0)  # the older names
    with pytest.raises(ConfigError, match="health"):
        RedisBreakerState(fault_redis.url, health="gate")  # type: ignore[arg-type]
    shared.close()


@pytest.mark.parametrize("face", ["sync", "async"])
async def test_no_caller_waits_for_the_probe_of_a_frozen_server(
    fault_redis: RedisServer, clock: ManualClock, face: str
) -> None:
    # While Redis is down the link PINGs it in the background, once per
    # interval: callers are answered by the local breaker at once, even when
    # the server is frozen, and the probe brings Redis back when it answers.
    shared = RedisBreakerState(fault_redis.url, clock=clock)
    gate = shared.health

    async def ask() -> tuple[bool, float] | None:
        if face == "sync":
            return shared.acquire_probe("vendor", "me", 30.0)
        return await asyncio.wait_for(shared.acquire_probe_async("vendor", "me", 30.0), 0.04)

    async def join() -> None:
        if face == "sync":
            join_redis_probes()
        else:
            await join_redis_probes_async()

    fault_redis.kill()
    for _ in range(gate.failure_threshold):
        assert await ask() is None
    assert not gate.available
    fault_redis.restart()
    fault_redis.pause()
    try:
        clock.advance(gate.probe_interval)
        errors = shared.stats.errors
        for _ in range(3):
            assert await ask() is None  # the local breaker decides; nobody waits
        assert shared.stats.errors == errors
        await join()
        assert not gate.available
    finally:
        fault_redis.resume()
    clock.advance(gate.probe_interval)
    assert await ask() is None  # starts the probe
    await join()
    assert gate.available
    await shared.aclose()


def test_each_event_loop_gets_its_own_client(redis_url: str, redis_client: redis.Redis) -> None:
    # An asyncio client's connections belong to the loop that opened them: a
    # service that runs asyncio.run more than once (or one loop per thread)
    # must still share its openings, and the old loop's connections are closed.
    shared = RedisBreakerState(redis_url)
    shared.publish_open("vendor", "me", 30.0)

    def clients() -> int:
        listed: list[dict[str, Any]] = redis_client.client_list()
        return len(listed)

    before = clients()
    for _ in range(3):
        left = asyncio.run(shared.open_remaining_async("vendor"))
        assert left is not None
        assert 29.0 < left <= 30.0
    assert shared.stats.errors == 0
    assert clients() <= before + 1  # only the last loop's connection is left open
    shared.close()


@pytest.mark.parametrize("face", ["sync", "async"])
async def test_a_server_that_lost_the_scripts_is_sent_them_again(
    redis_url: str, redis_client: redis.Redis, face: str
) -> None:
    shared = RedisBreakerState(redis_url)
    for _ in range(2):
        redis_client.script_flush()  # as after a restart
        if face == "sync":
            shared.publish_open("vendor", "me", 30.0)
            left = shared.open_remaining("vendor")
            lease = shared.acquire_probe("vendor", "me", 30.0)
            shared.release_probe("vendor", "me")
        else:
            await shared.publish_open_async("vendor", "me", 30.0)
            left = await shared.open_remaining_async("vendor")
            lease = await shared.acquire_probe_async("vendor", "me", 30.0)
            await shared.release_probe_async("vendor", "me")
        assert left is not None
        assert 29.0 < left <= 30.0
        assert lease is not None
        assert not lease[0]  # still open: no probe yet
    assert shared.stats.errors == 0
    await shared.aclose()


def test_a_reset_withdraws_its_own_opening_and_leaves_a_longer_one_of_another(
    state: RedisBreakerState, redis_client: redis.Redis, clock: ManualClock
) -> None:
    first = process(state, clock)
    trip(first)
    assert redis_client.exists(OPEN_KEY)
    first.reset()
    assert not redis_client.exists(OPEN_KEY)  # withdrawn: nobody adopts it any more
    with pytest.raises(VendorDown):
        first.call(fail)
    assert first.state is CLOSED  # one failure of two: not its own old opening again

    second = CircuitBreaker("vendor", config(timeout=90.0), clock=clock, shared=state)
    trip(second)  # another process's opening: 90 s
    with pytest.raises(VendorDown):
        first.call(fail)  # adopts it
    assert first.state is OPEN
    first.reset()
    assert 89_000 < redis_client.pttl(OPEN_KEY) <= 90_000  # another's opening stays


def test_a_shared_name_that_would_empty_the_hash_tag_is_refused(state: RedisBreakerState) -> None:
    # "{prefix}{}vendor}" hashes each whole key: the opening and the probe lease in
    # different slots on a cluster. A local breaker may use any name.
    with pytest.raises(ConfigError, match="hash tag"):
        CircuitBreaker("}vendor", shared=state)
    assert CircuitBreaker("}vendor").name == "}vendor"
