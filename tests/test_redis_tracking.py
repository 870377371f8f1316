"""`Tracker`: the invalidation channel on its own, against real servers and the TCP proxy."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
import redis.asyncio

from argo_perf._redis import Tracker, tracking_connection
from argo_perf.errors import ConfigError
from argo_perf.testing import RedisServer, TcpProxy


def wait_until(condition: Callable[[], bool]) -> None:
    """Wait for the tracking thread's effect (bounded; not a timing assertion)."""
    deadline = time.monotonic() + 10.0
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.001)


class Recorder:
    """A listener that writes down what it is told."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def invalidated(self, keys: list[bytes] | None) -> None:
        self.events.append(keys)

    def up(self) -> None:
        self.events.append("up")

    def lost(self, reason: str) -> None:
        self.events.append(("lost", reason))


def tracker(url: str, listener: Recorder, heartbeat: float = 0.1) -> Tracker:
    client = redis.Redis.from_url(url)
    connect = tracking_connection(client, socket_timeout=heartbeat, connect_timeout=1.0)
    return Tracker(
        connect, "p:", listener, heartbeat=heartbeat, retry_interval=0.05, target="test"
    ).start()


def test_reports_writes_under_the_prefix_and_flushes(
    redis_url: str, redis_client: redis.Redis
) -> None:
    listener = Recorder()
    running = tracker(redis_url, listener)
    wait_until(lambda: listener.events == ["up"])
    redis_client.set("p:a", 1)
    redis_client.set("q:a", 1)
    redis_client.mset({"p:b": 1, "p:c": 1})
    redis_client.flushdb()
    wait_until(lambda: len(listener.events) == 4)
    assert listener.events[1:] == [[b"p:a"], [b"p:b", b"p:c"], None]
    running.close()
    assert not running.running


def test_a_silent_partition_is_lost_at_the_heartbeat_and_reopened(fault_redis: RedisServer) -> None:
    with TcpProxy(fault_redis.host, fault_redis.port) as proxy:
        listener = Recorder()
        running = tracker(proxy.url, listener)
        wait_until(lambda: listener.events == ["up"])
        proxy.drop()
        wait_until(lambda: len(listener.events) >= 2)
        assert listener.events[1] == ("lost", "TimeoutError: no answer to PING within 0.1s")
        proxy.heal()
        wait_until(lambda: listener.events[-1] == "up")
        running.close()


def test_a_failed_subscription_is_reported_and_retried(
    redis_url: str, redis_client: redis.Redis
) -> None:
    redis_client.acl_setuser(
        "nochan", enabled=True, passwords=["+pw"], commands=["+@all"], keys=["*"]
    )
    listener = Recorder()
    running = tracker(redis_url.replace("redis://", "redis://nochan:pw@"), listener)
    wait_until(lambda: len(listener.events) >= 2)  # every attempt fails the same way
    assert all(event[0] == "lost" and "permission" in event[1] for event in listener.events)
    running.close()
    redis_client.acl_deluser("nochan")


def test_ends_when_its_listener_is_gone(redis_url: str) -> None:
    listener = Recorder()
    running = tracker(redis_url, listener, heartbeat=0.02)
    events = listener.events
    wait_until(lambda: events == ["up"])
    del listener
    gc.collect()
    wait_until(lambda: not running.running)


def test_connections_are_built_like_the_clients_own(redis_server: RedisServer) -> None:
    for client in (
        redis.Redis(host=redis_server.host, port=redis_server.port, db=3),
        redis.asyncio.Redis(host=redis_server.host, port=redis_server.port, db=3),
    ):
        connection = tracking_connection(client, socket_timeout=0.5, connect_timeout=1.0)()
        assert type(connection) is redis.Connection
        assert (connection.port, connection.db, connection.protocol) == (redis_server.port, 3, 2)
        connection.connect()
        connection.send_command("PING")
        assert connection.read_response() == b"PONG"
        connection.disconnect()
    ssl = redis.asyncio.Redis(host="h", ssl=True, ssl_cert_reqs="none")
    connection = tracking_connection(ssl, socket_timeout=0.5, connect_timeout=1.0)()
    assert type(connection) is redis.SSLConnection
    unix = redis.asyncio.Redis(unix_socket_path="/tmp/none.sock")
    connection = tracking_connection(unix, socket_timeout=0.5, connect_timeout=1.0)()
    assert type(connection) is redis.UnixDomainSocketConnection


def test_other_connection_kinds_are_refused() -> None:
    class Custom(redis.Connection):
        pass

    client = redis.Redis(connection_pool=redis.ConnectionPool(connection_class=Custom))
    with pytest.raises(ConfigError, match="Custom"):
        tracking_connection(client, socket_timeout=0.5, connect_timeout=1.0)
