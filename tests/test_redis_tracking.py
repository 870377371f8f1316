"""`Tracker`: the invalidation channel on its own, against real servers and the TCP proxy."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
import redis.asyncio
import redis.asyncio.cluster

from argo_perf._redis import ClusterTracker, Tracker, cluster_tracking, tracking_connection
from argo_perf._redis._cluster_tracking import cluster_masters
from argo_perf._redis._tracking import _check_master
from argo_perf.errors import ConfigError
from argo_perf.testing import RedisCluster, RedisServer, TcpProxy


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
    cluster = redis.asyncio.cluster.RedisCluster(host="127.0.0.1", port=1)
    with pytest.raises(ConfigError, match="per node"):
        tracking_connection(cluster, socket_timeout=0.5, connect_timeout=1.0)


# -- a cluster: one tracker per master ------------------------------------------------

NODES = """\
a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7002@17002,host-b master - 0 1 2 connected 5461-10922
c3 127.0.0.1:7003@17003 master,fail - 0 1 3 connected 10923-16383
d4 127.0.0.1:7004@17004 slave a1 0 1 1 connected
e5 127.0.0.1:7005@17005 master,fail - 0 1 5 disconnected
f6 :0@0 master,noaddr - 0 1 6 disconnected 1-2
"""


def test_cluster_masters_are_the_nodes_that_serve_slots() -> None:
    # A failing master with slots counts (its keys come back with it); a replica,
    # a master left without slots after a failover and a node without address do not.
    expected = [("127.0.0.1", 7001), ("127.0.0.1", 7002), ("127.0.0.1", 7003)]
    assert cluster_masters(NODES.encode()) == expected


def cluster_tracker(listener: Recorder, seeds: list[tuple[str, int]]) -> ClusterTracker:
    def connect_to(address: tuple[str, int]) -> Callable[[], Any]:
        return lambda: redis.Connection(
            host=address[0], port=address[1], protocol=2, socket_timeout=0.5
        )

    return ClusterTracker(
        lambda: seeds,
        connect_to,
        "p:",
        listener,
        heartbeat=0.1,
        retry_interval=0.05,
        target="test",
    )


def test_cluster_channel_is_up_only_while_every_master_is(
    redis_server: RedisServer, fault_redis: RedisServer, redis_client: redis.Redis
) -> None:
    # Plain servers stand for the masters: the node set is given, not read.
    listener = Recorder()
    running = cluster_tracker(listener, [])
    first = (redis_server.host, redis_server.port)
    second = (fault_redis.host, fault_redis.port)
    running._reconcile([first, second])
    wait_until(lambda: listener.events == ["up"])
    assert running.nodes == sorted([first, second])
    redis_client.set("p:a", 1)
    wait_until(lambda: listener.events[-1] == [b"p:a"])
    fault_redis.kill()
    wait_until(lambda: listener.events[-1][0] == "lost")
    assert f"{fault_redis.port}" in listener.events[-1][1]
    running._reconcile([first])  # the dead master is no longer one
    wait_until(lambda: listener.events[-1] == "up")
    fault_redis.restart()
    running._reconcile([first, second])  # a new master: down until it is tracked
    assert listener.events[-1] == ("lost", f"masters changed: +127.0.0.1:{fault_redis.port}")
    wait_until(lambda: listener.events[-1] == "up")
    running.close()
    assert running.nodes == []


def test_cluster_without_any_node_answering_is_lost_and_retried() -> None:
    listener = Recorder()
    running = cluster_tracker(listener, [("127.0.0.1", 1)]).start()
    wait_until(lambda: len(listener.events) >= 2)
    assert listener.events[0] == (
        "lost",
        "ConnectionError: no node gave the cluster's masters: 127.0.0.1:1 (ConnectionError)",
    )
    running.close()
    assert not running.running


def test_cluster_nodes_are_read_from_a_seed(cluster: RedisCluster) -> None:
    client = cluster.client()
    seeds, connect_to = cluster_tracking(client, socket_timeout=0.5, connect_timeout=1.0)
    client.close()
    listener = Recorder()
    events = listener.events
    running = ClusterTracker(
        seeds, connect_to, "p:", listener, heartbeat=0.1, retry_interval=0.05, target="test"
    ).start()
    wait_until(lambda: events == ["up"])
    assert running.nodes == sorted((n.host, n.port) for n in cluster.nodes)
    del listener
    gc.collect()
    wait_until(lambda: not running.running)


def test_a_sentinel_hello_naming_another_master_drops_the_channel() -> None:
    connection = redis.Connection(host="10.0.0.1", port=6379)
    _check_master(connection, b"10.0.0.9,26379,id,3,svc,10.0.0.1,6379,3")  # this one
    _check_master(connection, b"not a hello")  # ignored
    with pytest.raises(ConnectionError, match=r"name 10\.0\.0\.2:6379 as the master now"):
        _check_master(connection, b"10.0.0.9,26379,id,4,svc,10.0.0.2,6379,4")
