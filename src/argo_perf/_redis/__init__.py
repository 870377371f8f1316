"""Redis plumbing shared by every Redis-backed primitive (private).

What lives here, once:

* `_url`: refusing a malformed Redis URL and keeping its password out of
  every message, repr and log line (`redact_url`), and taking the
  ``redis+cluster://`` and ``redis+sentinel://`` forms apart (`parse_topology`);
* `_pool`: bounded connection pools whose queued callers wait only while
  Redis keeps answering;
* `_clients`: building a redis-py client (sync or asyncio) from a URL with
  safe defaults: a short socket timeout, no hidden redis-py retries and a
  bounded pool (`sync_client`, `async_client`);
* `_health`: `BackendHealth`, the gate in front of a Redis tier (after a few
  consecutive outage errors no call touches Redis until a single probe per
  interval sees it answer again; each state change is logged once), and the
  one outage classification (`is_outage`; `is_node_outage` tells the outage
  of one cluster node or slot from that of the whole cluster);
* `_tracking`: `Tracker`, one dedicated connection that hears every write
  under a key prefix (CLIENT TRACKING in broadcasting mode) on a daemon
  thread, with a heartbeat and reconnects (to a Sentinel service's current
  master);
* `_cluster_tracking`: `ClusterTracker`, one `Tracker` per master of a
  Redis Cluster, told to the cache as one channel;
* `_link`: `RedisLink`, what a Redis-backed piece owns: its clients (one per
  event loop for a URL), its gate, the probe rule (a background PING, never a
  caller's request) and the translation of failures into `BackendError`.

The gate and the classification are plain logic with an injected clock and do
no I/O, so the sync and asyncio faces share them.
"""

from ._clients import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_SOCKET_TIMEOUT,
    AsyncRedisClient,
    SyncRedisClient,
    async_client,
    describe_client,
    sync_client,
)
from ._cluster_tracking import ClusterTracker, cluster_tracking
from ._health import (
    REDIS_ERRORS,
    Admission,
    BackendHealth,
    is_answer,
    is_node_outage,
    is_outage,
    to_backend_error,
)
from ._link import PROBE_THREAD_NAME, RedisLink
from ._tracking import (
    INVALIDATION_CHANNEL,
    TRACKER_THREAD_NAME,
    Tracker,
    TrackingListener,
    follows_sentinels,
    tracking_connection,
)
from ._url import redact_url

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_SOCKET_TIMEOUT",
    "INVALIDATION_CHANNEL",
    "PROBE_THREAD_NAME",
    "REDIS_ERRORS",
    "TRACKER_THREAD_NAME",
    "Admission",
    "AsyncRedisClient",
    "BackendHealth",
    "ClusterTracker",
    "RedisLink",
    "SyncRedisClient",
    "Tracker",
    "TrackingListener",
    "async_client",
    "cluster_tracking",
    "describe_client",
    "follows_sentinels",
    "is_answer",
    "is_node_outage",
    "is_outage",
    "redact_url",
    "sync_client",
    "to_backend_error",
    "tracking_connection",
]
