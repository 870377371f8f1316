"""Coherent mode: what an invalidation, a lost channel and a channel back do to the cache.

The listener of a `Tracker` (in `_redis`): its thread calls these. Everything
here is a decision on the in-process tier (`CacheCore.drop_keys`,
`CacheCore.watch`), counted and logged once per change of the channel's
state; the faces do not know it exists, and the hit path does not change:
a lost channel marks every entry as one to ask Redis about (its
``check_at``), so a hit costs the same with coherence on and off.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from .._redis import (
    ClusterTracker,
    RedisLink,
    Tracker,
    cluster_tracking,
    follows_sentinels,
    tracking_connection,
)
from ._policy import CacheCore

__all__ = ["Coherence"]

logger = logging.getLogger("argo_perf.cache")


class Coherence:
    """Keeps a cache's in-process tier coherent with Redis through a `Tracker`."""

    def __init__(self, core: CacheCore, link: RedisLink, *, on_loop: bool) -> None:
        self._core = core
        self._prefix = core.prefix
        self._target = link.target
        self._lock = threading.Lock()
        self._up = False
        self._was_up = False
        self._lost_logged = False
        config = core.config
        heartbeat, connect_timeout = config.heartbeat, config.connect_timeout
        # A URL's sync client, or the client passed in (it has no loop of its own);
        # a cluster URL's topology (its client connects when it is built).
        source: Any = link.topology() if link.cluster and link.owns_clients else None
        if source is None:
            source = (
                link.async_client() if on_loop and not link.owns_clients else link.sync_client()
            )
        self._tracker: Tracker | ClusterTracker
        if link.cluster:
            seeds, connect_to = cluster_tracking(
                source, socket_timeout=heartbeat, connect_timeout=connect_timeout
            )
            self._tracker = ClusterTracker(
                seeds,
                connect_to,
                core.prefix,
                self,
                heartbeat=heartbeat,
                retry_interval=config.probe_interval,
                target=link.target,
            )
        else:
            self._tracker = Tracker(
                tracking_connection(
                    source, socket_timeout=heartbeat, connect_timeout=connect_timeout
                ),
                core.prefix,
                self,
                heartbeat=heartbeat,
                retry_interval=config.probe_interval,
                target=link.target,
                follow_sentinels=follows_sentinels(source),
            )

    def start(self) -> None:
        self._tracker.start()

    def close(self) -> None:
        self._tracker.close()

    # -- what the tracker tells --------------------------------------------------

    def invalidated(self, keys: list[bytes] | None) -> None:
        core = self._core
        counters = core.counters
        if keys is None:
            counters.invalidations += 1
            counters.invalidated_entries += core.drop_all()
            return
        size = len(self._prefix)
        counters.invalidations += len(keys)
        counters.invalidated_entries += core.drop_keys(
            [key[size:].decode("utf-8", "surrogateescape") for key in keys]
        )

    def up(self) -> None:
        with self._lock:
            self._up = True
            again, self._was_up = self._was_up, True
            self._lost_logged = False
        self._core.watch(True)
        if again:
            self._core.counters.channel_reconnects += 1
        logger.info(
            "redis at %s: invalidation channel for %r is %s; the in-process tier is coherent",
            self._target,
            self._prefix,
            "back" if again else "up",
        )

    def lost(self, reason: str) -> None:
        with self._lock:
            was_up, self._up = self._up, False
            log = was_up or not self._lost_logged
            self._lost_logged = True
        if was_up:
            self._core.watch(False)
        if log:
            logger.warning(
                "redis at %s: invalidation channel for %r %s (%s); in-process copies are "
                "read again from redis, and served only as stale while it cannot be reached",
                self._target,
                self._prefix,
                "lost" if was_up else "could not be opened",
                reason,
            )
