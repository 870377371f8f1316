"""`RedisCluster` and `RedisSentinelGroup`: several private servers working together."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
from collections.abc import Callable
from types import TracebackType
from typing import Any

import redis
import redis.cluster
import redis.sentinel
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.retry import Retry

from ..clock import SystemClock
from ._server import RedisServer, RedisServerError

__all__ = ["RedisCluster", "RedisSentinelGroup"]

_POLL = 0.02
"""Seconds between two looks while waiting for a cluster or a group to settle."""


def _wait(what: str, done: Callable[[], bool], timeout: float) -> None:
    """Poll ``done`` until it is true; `RedisServerError` naming ``what`` after ``timeout``."""
    clock = SystemClock()
    deadline = clock.monotonic() + timeout
    while True:
        try:
            if done():
                return
        except (redis.RedisError, OSError):
            pass  # a server still starting or just killed: look again
        if clock.monotonic() > deadline:
            raise RedisServerError(f"{what} within {timeout}s")
        clock.sleep(_POLL)


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _quiet_ports(count: int, *, bus: bool = False) -> list[int]:
    """Free ports for servers whose port other servers are told before they start.

    Below the range the system hands out to outgoing connections (32768 and up
    on Linux), so no client's socket takes one in the meantime; with ``bus``,
    the cluster bus port (port + 10000) is free too.
    """
    ports: list[int] = []
    rng = random.Random()
    while len(ports) < count:
        port = rng.randrange(12_000, 22_768)
        if port not in ports and _bindable(port) and (not bus or _bindable(port + 10_000)):
            ports.append(port)
    return ports


def _nodes_url(scheme: str, servers: list[RedisServer]) -> str:
    return f"{scheme}://" + ",".join(f"{s.host}:{s.port}" for s in servers)


class _Group:
    """What both groups share: their servers' life cycle."""

    def _servers(self) -> list[RedisServer]:
        raise NotImplementedError

    def close(self) -> None:
        """Stop every server and remove their directories (idempotent)."""
        for server in self._servers():
            server.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class RedisCluster(_Group):
    """A private Redis Cluster of masters on ``127.0.0.1`` for tests and benchmarks.

    Each master is a `RedisServer` started with ``cluster-enabled yes`` on a
    port whose cluster bus port (port + 10000) is free too; the cluster is
    created with ``redis-cli --cluster create`` (no replicas), and `start`
    returns once every node says ``cluster_state:ok``. The nodes run with
    ``cluster-require-full-coverage no``, so a dead master takes only its own
    slots out of service, as a production cluster should be configured for a
    cache.

    Args:
        masters: how many masters share the 16384 slots (at least 3).
        node_timeout: seconds before the other nodes mark a silent node failed.
        startup_timeout: seconds to wait for the cluster to be ready.

    Raises:
        RedisServerError: ``redis-cli`` is missing, or the cluster did not
            become ready in time.

    Examples:
        ```python
        with RedisCluster() as cluster:
            cache = RedisCache(cluster.url)  # redis+cluster://127.0.0.1:<p1>,...
            node = cluster.node_for(cache.redis_key("AAPL"))
            node.kill()  # only the keys of that node's slots fall back
            cluster.revive(node)  # back on its port, empty, with its slots
        ```
    """

    def __init__(
        self, masters: int = 3, *, node_timeout: float = 2.0, startup_timeout: float = 30.0
    ) -> None:
        if masters < 3:
            raise ValueError(f"masters must be >= 3 (Redis Cluster's minimum), got {masters!r}")
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RedisServerError("redis-cli was not found; it creates the cluster")
        self._cli = cli
        self.startup_timeout = startup_timeout
        args = [
            "--cluster-enabled", "yes",
            "--cluster-node-timeout", str(round(node_timeout * 1000)),
            "--cluster-require-full-coverage", "no",
        ]  # fmt: skip
        ports = _quiet_ports(masters, bus=True)
        self.nodes = [RedisServer(port, extra_args=args) for port in ports]
        """The masters, in the order their slot ranges were assigned."""

    def _servers(self) -> list[RedisServer]:
        return self.nodes

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:<port>,...``: every node, for argo_perf's pieces."""
        return _nodes_url("redis+cluster", self.nodes)

    def start(self) -> RedisCluster:
        """Start the nodes, create the cluster and wait until every node serves it."""
        try:
            for node in self.nodes:
                node.start()
            if any(n.client().dbsize() or _assigned(n) for n in self.nodes):
                return self.wait_ready()  # already created (start after close is not supported)
            create = [self._cli, "--cluster", "create", "--cluster-yes"]
            create += [f"{n.host}:{n.port}" for n in self.nodes]
            subprocess.run(create, check=True, capture_output=True, timeout=self.startup_timeout)
            return self.wait_ready()
        except BaseException:
            self.close()
            raise

    def wait_ready(self, timeout: float | None = None) -> RedisCluster:
        """Wait until every running node reports ``cluster_state:ok``."""

        def ready() -> bool:
            for node in self.nodes:
                if not node.running:
                    continue
                with node.client() as client:
                    if b"cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
                        return False
            return True

        _wait("the cluster did not become ready", ready, timeout or self.startup_timeout)
        return self

    def client(self, **kwargs: Any) -> redis.cluster.RedisCluster:
        """A new sync cluster client (1 s timeouts, no retries, unless given)."""
        kwargs.setdefault("retry", Retry(NoBackoff(), 0))
        kwargs.setdefault("socket_timeout", 1.0)
        kwargs.setdefault("socket_connect_timeout", 1.0)
        kwargs.setdefault("require_full_coverage", False)
        running = [n for n in self.nodes if n.running]
        startup = [redis.cluster.ClusterNode(n.host, n.port) for n in running]  # type: ignore[no-untyped-call]
        return redis.cluster.RedisCluster(startup_nodes=startup, **kwargs)

    def node_for(self, key: str | bytes) -> RedisServer:
        """The master serving ``key``'s hash slot."""
        slot = key_slot(key.encode() if isinstance(key, str) else key)
        for node in self.nodes:
            if not node.running:
                continue
            with node.client() as client:
                for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
                    if start <= slot <= end:
                        port = int(master[1])
                        return next(n for n in self.nodes if n.port == port)
        raise RedisServerError(f"no running node knows who serves slot {slot}")

    def flush(self) -> None:
        """Remove every key from every running master."""
        for node in self.nodes:
            if node.running:
                with node.client() as client:
                    client.flushall()

    def revive(self, node: RedisServer) -> None:
        """Start a killed node again (same port, empty data, its slots) and wait for the cluster."""
        node.start()  # its nodes.conf, in its directory, brings back its id and slots
        self.wait_ready()

    def __enter__(self) -> RedisCluster:
        return self.start()

    def __repr__(self) -> str:
        return f"RedisCluster(url={self.url!r}, running={sum(n.running for n in self.nodes)})"


def _synced(server: RedisServer) -> bool:
    """True when ``server`` is a replica whose link to its master is up."""
    with server.client() as client:
        info = client.info("replication")
    return bool(info.get("role") == "slave" and info.get("master_link_status") == "up")


def _assigned(node: RedisServer) -> bool:
    with node.client() as client:
        info = client.execute_command("CLUSTER", "INFO")
    return b"cluster_slots_assigned:0" not in info


class RedisSentinelGroup(_Group):
    """A private master, replica and sentinels on ``127.0.0.1`` for failover tests.

    A master, a replica of it and ``sentinels`` sentinels (``redis-server
    --sentinel`` with a generated configuration) watching the master under
    ``service``, with a quorum of 2 and short timeouts, so that a killed or
    frozen master is replaced by its replica within a second or two. `start`
    returns once every sentinel knows the replica and the other sentinels.

    After a failover, `promoted` waits for the sentinels to name a new master,
    and `heal` brings the old master back as a replica of the new one, so a
    group can be reused by the next test.

    Args:
        service: the name the sentinels know the master by.
        sentinels: how many sentinels watch it (at least 2).
        down_after: seconds without an answer before a sentinel calls the
            master down (``down-after-milliseconds``).
        failover_timeout: seconds a failover may take (``failover-timeout``).
        startup_timeout: seconds to wait for the group to be ready.

    Examples:
        ```python
        with RedisSentinelGroup() as group:
            cache = RedisCache(group.url)  # redis+sentinel://127.0.0.1:<p>,.../mymaster/0
            old = group.master()
            old.kill()
            group.promoted(old)  # the replica is the master now
            group.heal()  # the old master is back, as a replica
        ```
    """

    def __init__(
        self,
        service: str = "mymaster",
        *,
        sentinels: int = 3,
        down_after: float = 0.3,
        failover_timeout: float = 2.0,
        startup_timeout: float = 30.0,
    ) -> None:
        if sentinels < 2:
            raise ValueError(f"sentinels must be >= 2 (the quorum is 2), got {sentinels!r}")
        self.service = service
        self.startup_timeout = startup_timeout
        # A replica's first sync must not wait 5 s for more replicas to join it.
        self._data_args = ["--repl-diskless-sync-delay", "0"]
        # The replica and the sentinels are told the master's port before it
        # starts: it must not have to move.
        master_port, replica_port = _quiet_ports(2)
        first = RedisServer(master_port, extra_args=self._data_args)
        self.servers = [
            first,
            RedisServer(
                replica_port,
                extra_args=[*self._data_args, "--replicaof", first.host, str(first.port)],
            ),
        ]
        """The data servers: the first master, then its replica (roles change on failover)."""
        config = (
            f"sentinel monitor {service} {first.host} {first.port} 2\n"
            f"sentinel down-after-milliseconds {service} {round(down_after * 1000)}\n"
            f"sentinel failover-timeout {service} {round(failover_timeout * 1000)}\n"
            f"sentinel parallel-syncs {service} 1\n"
        )
        self.sentinels = [
            RedisServer(extra_args=["--sentinel"], config=config) for _ in range(sentinels)
        ]
        """The sentinels watching the service."""

    def _servers(self) -> list[RedisServer]:
        return [*self.sentinels, *self.servers]

    @property
    def url(self) -> str:
        """``redis+sentinel://127.0.0.1:<port>,.../<service>/0`` for argo_perf's pieces."""
        return f"{_nodes_url('redis+sentinel', self.sentinels)}/{self.service}/0"

    def start(self) -> RedisSentinelGroup:
        """Start the servers and the sentinels and wait until the sentinels know each other."""
        try:
            for server in self.servers:  # the master first
                server.start()
            # Synced before the sentinels start: their first INFO of the master lists
            # the replica (the next one would come 10 s later).
            _wait(
                "the replica did not sync", lambda: _synced(self.servers[1]), self.startup_timeout
            )
            for sentinel in self.sentinels:
                sentinel.start()
            return self.wait_ready()
        except BaseException:
            self.close()
            raise

    def _state(self, sentinel: RedisServer) -> dict[str, Any]:
        with sentinel.client(decode_responses=True) as client:
            state: dict[str, Any] = client.sentinel_master(self.service)
        return state

    def wait_ready(self, timeout: float | None = None) -> RedisSentinelGroup:
        """Wait until every sentinel sees a master with a healthy replica, and its peers."""
        peers = len(self.sentinels) - 1

        def ready() -> bool:
            master = self.master()
            for sentinel in self.sentinels:
                state = self._state(sentinel)
                if (
                    int(state["port"]) != master.port
                    or state["flags"] != "master"
                    or int(state["num-other-sentinels"]) < peers
                    or not self._replica_ok(sentinel)
                ):
                    return False
            with master.client() as client:
                return int(client.info("replication")["connected_slaves"]) >= 1

        _wait("the sentinel group did not become ready", ready, timeout or self.startup_timeout)
        return self

    def _replica_ok(self, sentinel: RedisServer) -> bool:
        # Flags come from the sentinel's pings (every second); the replica's link to
        # the master is read from the replica itself, not from the sentinel's INFO of
        # it, which comes only every 10 s.
        with sentinel.client(decode_responses=True) as client:
            replicas = client.sentinel_slaves(self.service)
        ports = {int(r["port"]) for r in replicas if r["flags"] == "slave"}
        return any(s.port in ports and s.running and _synced(s) for s in self.servers)

    def master(self) -> RedisServer:
        """The data server the sentinels name as the master now."""
        for sentinel in self.sentinels:
            if not sentinel.running:
                continue
            with sentinel.client() as client:
                reply = client.sentinel_get_master_addr_by_name(self.service)
            port = int(reply[1])
            return next(s for s in self.servers if s.port == port)
        raise RedisServerError("no sentinel is running")

    def promoted(self, old: RedisServer, timeout: float | None = None) -> RedisServer:
        """Wait until every sentinel names a master other than ``old``; return it."""

        def moved() -> bool:
            return all(int(self._state(s)["port"]) != old.port for s in self.sentinels if s.running)

        _wait("no replica was promoted", moved, timeout or self.startup_timeout)
        return self.master()

    def heal(self, timeout: float | None = None) -> RedisSentinelGroup:
        """Start every stopped data server as a replica of the current master; wait for it."""
        master = self.master()
        for server in self.servers:
            if not server.running:
                server.extra_args = [*self._data_args, "--replicaof", master.host, str(master.port)]
                server.start()
        return self.wait_ready(timeout)

    def client(self, **kwargs: Any) -> redis.Redis:
        """A new sync client on the current master, found through the sentinels."""
        kwargs.setdefault("retry", Retry(NoBackoff(), 0))
        kwargs.setdefault("socket_timeout", 1.0)
        kwargs.setdefault("socket_connect_timeout", 1.0)
        sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            [(s.host, s.port) for s in self.sentinels],
            sentinel_kwargs={"socket_timeout": 1.0, "retry": Retry(NoBackoff(), 0)},
        )
        client: redis.Redis = sentinel.master_for(self.service, **kwargs)  # type: ignore[no-untyped-call]
        return client

    def __enter__(self) -> RedisSentinelGroup:
        return self.start()

    def __repr__(self) -> str:
        return f"RedisSentinelGroup(url={self.url!r}, service={self.service!r})"
