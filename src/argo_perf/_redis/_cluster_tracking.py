"""`ClusterTracker`: the invalidation channel of a Redis Cluster, one `Tracker` per master."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import redis
import redis.cluster
import redis.connection

from ._tracking import (
    _JOIN_TIMEOUT,
    Address,
    Connection,
    Tracker,
    TrackingListener,
    _address,
    _Channel,
    _kind,
    _options,
)

__all__ = ["ClusterTracker", "cluster_masters", "cluster_tracking"]
from ._url import Topology


def cluster_masters(reply: bytes | str) -> list[Address]:
    """The address of every master that serves slots, from a ``CLUSTER NODES`` reply.

    A master marked failing still counts while it holds slots: its keys are
    written there again once it is back, so the channel waits for it.
    """
    text = reply.decode() if isinstance(reply, bytes) else reply
    masters: list[Address] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 9 or "master" not in fields[2].split(","):
            continue
        host, _, port = fields[1].split("@", 1)[0].rpartition(":")
        if host and port.isdigit() and int(port):
            masters.append((host, int(port)))
    return sorted(masters)


def cluster_tracking(
    source: Any,
    *,
    socket_timeout: float,
    connect_timeout: float | None,
) -> tuple[Callable[[], list[Address]], Callable[[Address], Callable[[], Connection]]]:
    """What a `ClusterTracker` needs for a cluster client or a ``redis+cluster://`` topology.

    Returns ``(seeds, connect_to)``: the startup nodes, and a factory of
    dedicated RESP2 connections (as in `tracking_connection`) per node address.

    Raises:
        ConfigError: the nodes' connections are not plain TCP or TLS ones.
    """
    if isinstance(source, Topology):
        seeds = list(source.nodes)
        options: dict[str, Any] = {"username": source.username, "password": source.password}
    else:
        manager = source.nodes_manager
        seeds = [(node.host, int(node.port)) for node in manager.startup_nodes.values()]
        options = manager.connection_kwargs
    kind = _kind(options.get("connection_class", redis.connection.Connection))
    kwargs = _options(options, socket_timeout, connect_timeout)
    kwargs.pop("db", None)  # a cluster has database 0 only

    def connect_to(address: Address) -> Callable[[], Connection]:
        return lambda: kind(host=address[0], port=address[1], **kwargs)

    return (lambda: seeds), connect_to


class _Node:
    """A `ClusterTracker`'s listener for one master's `Tracker`."""

    def __init__(self, owner: ClusterTracker, address: Address) -> None:
        self.owner = owner
        self.address = address
        self.up_now = False
        self.tracker: Tracker | None = None

    def invalidated(self, keys: list[bytes] | None) -> None:
        self.owner._tell("invalidated", keys)

    def up(self) -> None:
        self.owner._node_changed(self, True, "")

    def lost(self, reason: str) -> None:
        self.owner._node_changed(self, False, reason)


class ClusterTracker(_Channel):
    """One `Tracker` per master of a Redis Cluster, told to one listener as one channel.

    A write lands on its slot's master, which tells only its own tracking
    connections: every master that serves slots needs one. The channel is up
    only while every one of them is: the listener's copies are not tracked
    per node, so losing any master's connection loses them all.

    A daemon thread reads ``CLUSTER NODES`` (from a known master or a seed)
    every ``retry_interval`` seconds, and at once when a node's connection is
    lost: a master that appears (a promoted replica, resharding) gets a
    tracker (the channel is down until it is up), a master that no longer
    serves slots is dropped.

    Args:
        seeds: the addresses to ask first (the client's startup nodes).
        connect_to: builds the connection factory of one node.
        prefix: the key prefix tracked (``BCAST PREFIX``).
        listener: told about invalidations and channel changes; held weakly.
        heartbeat: as for `Tracker`.
        retry_interval: seconds between node-set refreshes and reconnects.
        target: where the connections go, password-free (for messages).
    """

    def __init__(
        self,
        seeds: Callable[[], list[Address]],
        connect_to: Callable[[Address], Callable[[], Connection]],
        prefix: str,
        listener: TrackingListener,
        *,
        heartbeat: float,
        retry_interval: float,
        target: str,
    ) -> None:
        super().__init__(
            prefix, listener, heartbeat=heartbeat, retry_interval=retry_interval, target=target
        )
        self._seeds = seeds
        self._connect_to = connect_to
        self._wake = threading.Event()
        # ``_lock`` is held while the state changes and while the listener is told
        # of it, so that an "up" and a "lost" from two nodes' threads are never
        # reordered.
        self._nodes: dict[Address, _Node] = {}
        self._up = False

    @property
    def nodes(self) -> list[Address]:
        """The masters tracked now."""
        with self._lock:
            return sorted(self._nodes)

    def close(self, *, wait: bool = True) -> None:
        """Stop refreshing and close every node's tracker."""
        self._stop.set()
        self._wake.set()
        if wait and self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(_JOIN_TIMEOUT)
        with self._lock:
            nodes, self._nodes = list(self._nodes.values()), {}
        for node in nodes:
            if node.tracker is not None:
                node.tracker.close(wait=wait)

    # -- from the nodes' threads ---------------------------------------------------

    def _node_changed(self, node: _Node, up: bool, reason: str) -> None:
        if not up:
            self._wake.set()  # the cluster may have moved: read its nodes now
        with self._lock:
            if self._nodes.get(node.address) is not node:
                return  # dropped from the set
            node.up_now = up
            self._report(f"{_address(node.address)}: {reason}", lost=not up)

    def _report(self, reason: str, *, lost: bool = False) -> None:
        """Tell the listener what the whole channel is now (under ``_lock``).

        Up when every master's connection is; a node lost is told even while
        the channel is already down (the listener logs it once).
        """
        nodes = self._nodes.values()
        was, self._up = self._up, bool(nodes) and all(n.up_now for n in nodes)
        if self._up and not was:
            self._tell("up")
        elif not self._up and (was or lost):
            self._tell("lost", reason)

    # -- the refresh thread ----------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set() and self._listener() is not None:
                try:
                    masters = self._discover()
                except Exception as exc:
                    with self._lock:
                        if not self._nodes:
                            self._tell("lost", f"{type(exc).__name__}: {exc}")
                else:
                    self._reconcile(masters)
                self._wake.wait(self._retry_interval)
                self._wake.clear()
        finally:
            self.close(wait=False)

    def _discover(self) -> list[Address]:
        with self._lock:
            known = sorted(self._nodes)
        tried: list[str] = []
        for address in dict.fromkeys([*known, *self._seeds()]):
            connection = self._connect_to(address)()
            try:
                connection.connect()
                connection.send_command("CLUSTER", "NODES")
                masters = cluster_masters(connection.read_response())
            except Exception as exc:
                tried.append(f"{_address(address)} ({type(exc).__name__})")
                continue
            finally:
                connection.disconnect()
            if masters:
                return masters
            tried.append(f"{_address(address)} (no master serves slots)")
        raise ConnectionError("no node gave the cluster's masters: " + ", ".join(tried))

    def _reconcile(self, masters: list[Address]) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            gone = [self._nodes.pop(a) for a in list(self._nodes) if a not in masters]
            new = [_Node(self, a) for a in masters if a not in self._nodes]
            for node in new:
                self._nodes[node.address] = node
            if gone or new:
                self._report(
                    "masters changed: "
                    + ", ".join([f"+{_address(n.address)}" for n in new])
                    + ", ".join([f"-{_address(n.address)}" for n in gone])
                )
            for node in new:
                node.tracker = Tracker(
                    self._connect_to(node.address),
                    self._prefix,
                    node,
                    heartbeat=self._heartbeat,
                    retry_interval=self._retry_interval,
                    target=_address(node.address),
                )
        for node in new:
            assert node.tracker is not None
            node.tracker.start()
        for node in gone:
            if node.tracker is not None:
                node.tracker.close(wait=False)
