"""RedisLink under faults: closing while probes run or are due, error replies of every kind."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable

import pytest
import redis

from argo_perf import AsyncRedisCache, BackendError, ManualClock, RedisTokenBucket
from argo_perf._redis import PROBE_THREAD_NAME, Admission, BackendHealth, RedisLink
from argo_perf.breaker import RedisBreakerState
from argo_perf.testing import RedisServer, join_redis_probes, join_redis_probes_async


def probe_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == PROBE_THREAD_NAME]


def connected(server: RedisServer) -> int:
    """Clients connected to ``server``, not counting the one asking."""
    with server.client() as client:
        return len(client.client_list()) - 1


def down(link: RedisLink, clock: ManualClock) -> None:
    """Take the gate down and make its probe due."""
    link.failed(redis.ConnectionError("refused"))
    assert not link.health.available
    clock.advance(link.health.probe_interval)


def test_no_probe_is_started_after_close(fault_redis: RedisServer) -> None:
    clock = ManualClock()
    link = RedisLink(fault_redis.url, failure_threshold=1, clock=clock)
    down(link, clock)
    link.close()
    assert link.admit() is Admission.SKIP
    assert probe_threads() == []
    join_redis_probes()
    assert connected(fault_redis) == 0  # no PING reopened a connection of the closed link
    link.close()  # twice is fine


async def test_no_probe_task_is_started_after_aclose(fault_redis: RedisServer) -> None:
    clock = ManualClock()
    link = RedisLink(fault_redis.url, failure_threshold=1, clock=clock)
    down(link, clock)
    await link.aclose()
    assert link.admit_async() is Admission.SKIP
    assert [t for t in asyncio.all_tasks() if t.get_name() == PROBE_THREAD_NAME] == []
    assert link.loops == 0
    await link.aclose()  # twice is fine
    link.close()


def test_close_stops_a_probe_stuck_on_a_frozen_server(fault_redis: RedisServer) -> None:
    clock = ManualClock()
    link = RedisLink(fault_redis.url, failure_threshold=1, socket_timeout=None, clock=clock)
    down(link, clock)
    fault_redis.pause()
    try:
        assert link.admit() is Admission.SKIP  # a PING with no timeout, on a frozen server
        pool = link.sync_client().connection_pool
        for _ in range(500):  # until the probe's socket is open (it then waits for a reply)
            if any(getattr(c, "_sock", None) is not None for c in pool._connections):  # type: ignore[attr-defined]
                break
            time.sleep(0.01)
        link.close()  # shuts the probe's socket: the PING ends now, not when Redis thaws
        assert probe_threads() == []
        assert not link.health.available
    finally:
        fault_redis.resume()
        join_redis_probes()


# -- error replies on a busy service: counted every time, logged once a spell ---------


@pytest.fixture
def replica(redis_factory: Callable[..., RedisServer], redis_server: RedisServer) -> RedisServer:
    """A read-only replica of the session server: every write is answered with READONLY."""
    server = redis_factory()
    with server.client() as client:
        client.replicaof(redis_server.host, redis_server.port)
    return server


def replies_logged(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


def test_a_bucket_on_a_replica_logs_its_refusals_once_a_spell(
    replica: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    caplog.set_level(logging.WARNING, logger="argo_perf")
    with RedisTokenBucket(replica.url, "busy", rate=1000, burst=1000, clock=clock) as bucket:
        for _ in range(50):
            assert bucket.try_acquire()  # the fallback decides
        assert bucket.stats.errors == 50
        assert bucket.backend == "redis"  # READONLY is an answer: Redis is up
        lines = replies_logged(caplog, "read only replica")
        assert len(lines) == 1
        assert "rate limit script failed" in lines[0]
        clock.advance(60.0)
        assert bucket.try_acquire()
        lines = replies_logged(caplog, "read only replica")
        assert len(lines) == 2
        assert "49 more" in lines[1]


async def test_an_async_bucket_on_a_replica_logs_its_refusals_once_a_spell(
    replica: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="argo_perf")
    async with RedisTokenBucket(replica.url, "busy", rate=1000, burst=1000) as bucket:
        await asyncio.gather(*(bucket.acquire_async() for _ in range(200)))
        assert bucket.stats.errors == 200
        assert len(replies_logged(caplog, "read only replica")) == 1


def test_a_shared_breaker_state_on_a_replica_logs_its_refusals_once_a_spell(
    replica: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="argo_perf")
    state = RedisBreakerState(replica.url, clock=ManualClock())
    for _ in range(20):
        state.publish_open("orders", "t", 5.0)
    assert state.stats.errors == 20
    assert state.stats.outages == 0
    assert state.health.available
    lines = replies_logged(caplog, "read only replica")
    assert len(lines) == 1
    assert "publish_open" in lines[0]
    state.close()


# -- probes and per-loop clients under load ---------------------------------------------


def pings(server: RedisServer) -> int:
    with server.client() as client:
        stats = client.info("commandstats").get("cmdstat_ping", {})
    return int(stats.get("calls", 0)) if isinstance(stats, dict) else 0


async def test_one_probe_per_interval_for_8_threads_and_200_tasks(
    fault_redis: RedisServer,
) -> None:
    clock = ManualClock()
    gate = BackendHealth("shared", failure_threshold=1, clock=clock)
    # Generous timeouts: the probe must succeed even on a loaded machine (this
    # counts probes; timeouts are the fault matrix's business).
    url = f"{fault_redis.url}?socket_connect_timeout=2&socket_timeout=2"
    with RedisTokenBucket(url, "busy", rate=1e6, burst=1e6, clock=clock, health=gate) as bucket:
        for _ in range(2):
            before = pings(fault_redis)
            gate.record_failure(redis.ConnectionError("refused"))  # down, though Redis is up
            clock.advance(gate.probe_interval)
            start = threading.Barrier(9)

            def hammer(start: threading.Barrier) -> None:
                start.wait()
                for _ in range(50):
                    bucket.try_acquire()

            threads = [threading.Thread(target=hammer, args=(start,)) for _ in range(8)]
            for thread in threads:
                thread.start()
            start.wait()
            await asyncio.gather(*(bucket.acquire_async() for _ in range(200)))
            for thread in threads:
                thread.join()
            join_redis_probes()
            await join_redis_probes_async()
            assert pings(fault_redis) - before == 1
            assert bucket.health.available


def test_event_loops_in_sequence_and_in_threads_each_get_a_client_none_leaks(
    fault_redis: RedisServer,
) -> None:
    link = RedisLink(fault_redis.url, socket_timeout=2.0)

    async def use() -> None:
        await link.async_client().set("k", "v")

    def runs() -> None:
        for _ in range(3):
            asyncio.run(use())

    threads = [threading.Thread(target=runs) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    runs()
    assert link.loops <= 9  # at most one per thread: closed loops' clients are closed
    link.close()
    assert link.loops == 0
    assert connected(fault_redis) == 0
    link.close()


def test_a_probe_task_left_on_a_finished_loop_does_not_strand_the_gate(
    fault_redis: RedisServer,
) -> None:
    clock = ManualClock()
    link = RedisLink(fault_redis.url, failure_threshold=1, clock=clock)
    down(link, clock)

    async def start_a_probe() -> None:
        assert link.admit_async() is Admission.SKIP  # the loop ends before the task runs

    asyncio.run(start_a_probe())
    clock.advance(link.health.probe_interval)

    async def probe_again() -> None:
        assert link.admit_async() is Admission.SKIP
        await join_redis_probes_async()

    asyncio.run(probe_again())
    assert link.health.available
    link.close()
    assert connected(fault_redis) == 0


# -- secrets ------------------------------------------------------------------------------


async def test_no_password_reaches_a_message_repr_or_log_of_any_piece(
    fault_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "pa55#w/rd"
    with fault_redis.client() as admin:
        admin.config_set("requirepass", secret)
    caplog.set_level(logging.DEBUG, logger="argo_perf")
    shown: list[str] = []
    for password in (secret, "wr0ng#pa55"):
        encoded = urllib.parse.quote(password, safe="")
        for url in (
            f"redis://:{encoded}@127.0.0.1:{fault_redis.port}/0",
            f"redis://127.0.0.1:{fault_redis.port}/0?password={encoded}",
        ):
            cache = AsyncRedisCache(url)
            await cache.set("k", 1)
            try:
                await cache.clear()
            except BackendError as exc:
                shown += [str(exc), repr(exc)]
            shown += [repr(cache), repr(cache.stats)]
            await cache.close()
            bucket = RedisTokenBucket(url, "k", rate=1, burst=1)
            bucket.try_acquire()
            shown += [repr(bucket), repr(bucket.stats)]
            bucket.close()
            state = RedisBreakerState(url)
            state.publish_open("n", "t", 1.0)
            shown += [repr(state), repr(state.stats)]
            state.close()
    text = "\n".join(shown) + caplog.text
    assert "AuthenticationError" in text  # the wrong password was refused and told
    for password in (secret, "wr0ng#pa55"):
        assert password not in text
        assert urllib.parse.quote(password, safe="") not in text


def test_a_probe_hung_on_a_frozen_server_is_given_up_after_an_interval(
    fault_redis: RedisServer,
) -> None:
    clock = ManualClock()
    link = RedisLink(fault_redis.url, failure_threshold=1, socket_timeout=5.0, clock=clock)
    down(link, clock)
    fault_redis.pause()
    try:
        assert link.admit() is Admission.SKIP  # the first probe hangs on the frozen server
        assert link.admit() is Admission.SKIP  # no second one within the interval
        assert len(probe_threads()) == 1
        clock.advance(link.health.probe_interval)
        assert link.admit() is Admission.SKIP  # the hung probe is given up: a new one
        assert len(probe_threads()) == 2
    finally:
        fault_redis.resume()
    join_redis_probes()
    assert link.health.available  # both PINGs answered once Redis thawed
    link.close()


def test_close_from_another_thread_closes_a_running_loops_sockets(
    fault_redis: RedisServer,
) -> None:
    link = RedisLink(fault_redis.url, socket_timeout=2.0)
    opened = threading.Event()
    closed = threading.Event()
    sockets: list[socket.socket] = []

    async def hold() -> None:
        client = link.async_client()
        await client.ping()
        connection = next(iter(client.connection_pool._available_connections))  # type: ignore[union-attr]
        sockets.append(connection._writer.get_extra_info("socket"))
        opened.set()
        await asyncio.to_thread(closed.wait, 10)
        await asyncio.sleep(0.05)  # the loop runs what close() handed it

    thread = threading.Thread(target=asyncio.run, args=(hold(),))
    thread.start()
    assert opened.wait(10)
    link.close()  # from this thread, while the loop holding the client runs
    closed.set()
    thread.join(10)
    assert sockets[0].fileno() == -1  # the transport was closed, not left to the collector
    assert connected(fault_redis) == 0
