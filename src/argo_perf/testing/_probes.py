"""Waiting for the background Redis probes of this process."""

from __future__ import annotations

import asyncio
import threading

__all__ = ["join_redis_probes", "join_redis_probes_async"]


def join_redis_probes(timeout: float = 5.0) -> None:
    """Wait until the background Redis probes of this process have reported.

    A Redis-backed piece that found Redis down checks whether it is back with a
    background PING, one per `probe_interval`, and never makes a caller wait for
    it: the call that starts a probe is still answered from the fallback. A
    test that advances a `ManualClock` past the probe interval, makes a call and
    then expects Redis again calls this in between.

    Args:
        timeout: seconds to wait for each probe thread.

    Examples:
        ```python
        clock.advance(1.0)
        bucket.try_acquire()  # starts the probe, answered by the fallback
        join_redis_probes()
        assert bucket.backend == "redis"
        ```
    """
    from argo_perf._redis import PROBE_THREAD_NAME

    for thread in threading.enumerate():
        if thread.name == PROBE_THREAD_NAME:
            thread.join(timeout)


async def join_redis_probes_async() -> None:
    """Wait until the background Redis probes running on this event loop have reported.

    The asyncio counterpart of `join_redis_probes`: probes made for callers on
    an event loop are tasks on that loop.
    """
    from argo_perf._redis import PROBE_THREAD_NAME

    probes = [t for t in asyncio.all_tasks() if t.get_name() == PROBE_THREAD_NAME]
    await asyncio.gather(*probes, return_exceptions=True)
