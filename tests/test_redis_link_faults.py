"""RedisLink under faults: closing while probes run or are due, error replies of every kind."""

from __future__ import annotations

import asyncio
import threading
import time

import redis

from argo_perf import ManualClock
from argo_perf._redis import PROBE_THREAD_NAME, Admission, RedisLink
from argo_perf.testing import RedisServer, join_redis_probes


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
