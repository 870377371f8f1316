"""Helpers for testing services built on argo_perf, without sleeping and without mocks.

* `ManualClock` (re-exported from `argo_perf.clock`) drives every
  primitive's notion of time.
* `RedisServer` starts a private, throw-away ``redis-server`` process on
  a free loopback port and can kill, freeze (SIGSTOP), resume and restart it,
  so fault handling is tested against a real server.
* `TcpProxy` sits on loopback between a client and a server and can
  delay, drop (hold) or cut the traffic, for the network faults a process
  signal cannot show.
* `RedisCluster` starts a private Redis Cluster of three masters, and
  `RedisSentinelGroup` a master, its replica and three sentinels that fail
  over within a couple of seconds.

Examples:
    >>> from argo_perf.testing import RedisServer
    >>> with RedisServer() as server:  # doctest: +SKIP
    ...     client = server.client()
    ...     client.ping()
    True
"""

from ..clock import ManualClock
from ._probes import join_redis_probes, join_redis_probes_async
from ._proxy import TcpProxy
from ._server import RedisServer, RedisServerError, find_redis_server
from ._topologies import RedisCluster, RedisSentinelGroup

__all__ = [
    "ManualClock",
    "RedisCluster",
    "RedisSentinelGroup",
    "RedisServer",
    "RedisServerError",
    "TcpProxy",
    "find_redis_server",
    "join_redis_probes",
    "join_redis_probes_async",
]
