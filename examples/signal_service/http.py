"""The service's HTTP endpoints: ``GET /api/v1/health`` and ``GET /metrics``.

An ASGI application (Starlette) served in process by uvicorn; both come with
the ``service`` extra (``pip install 'argo-perf[service]'``), never with the
library. The endpoints only read what the service already keeps:

| endpoint | answers |
| --- | --- |
| ``GET /api/v1/health`` | JSON: the status, the performance summary, breakers, buckets |
| ``GET /metrics`` | the Prometheus text exposition (``text/plain; version=0.0.4``) |

The health payload:

```json
{"status": "healthy",
 "services": {
   "performance": {"uptime_seconds": 12.5, "avg_signal_generation_time": 0.25, ...},
   "circuit_breakers": {"massive": {"state": "closed", "failures": 0, ...}},
   "rate_limiters": {"massive": {"rate": 5.0, "burst": 10.0, "granted": 42, ...}}}}
```

``performance`` is `argo_perf.PerformanceMetrics.get_summary` as it is;
``circuit_breakers`` holds each `argo_perf.breaker.BreakerStats` and
``rate_limiters`` each `argo_perf.BucketStats`, as plain fields (an infinite
``retry_after``, a breaker forced open, is ``null``). The answer is HTTP 200,
or 503 when ``status`` is ``"unhealthy"``.

What the endpoints read is a `HealthSource`: anything with ``metrics``,
``breakers``, ``limiter`` and ``status()``. The pipeline passes its own
object; nothing here knows how signals are made.

Example:
    ```python
    app = create_app(service)  # service: a HealthSource
    async with serving(app, port=0) as server:  # a free loopback port
        print(server.url)  # http://127.0.0.1:PORT
        ...
    # the server has stopped and its port is free again
    ```
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import socket
from collections.abc import AsyncIterator, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from argo_perf import CircuitBreaker, CircuitBreakerRegistry, PerformanceMetrics, RateLimiter

__all__ = [
    "HEALTH_PATH",
    "METRICS_CONTENT_TYPE",
    "METRICS_PATH",
    "HealthSource",
    "RunningServer",
    "create_app",
    "health_payload",
    "serving",
]

HEALTH_PATH = "/api/v1/health"
METRICS_PATH = "/metrics"
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text format that `argo_perf.PerformanceMetrics.exposition` writes."""

_STARTUP_TIMEOUT = 10.0  # seconds for uvicorn to start listening
_POLL = 0.005  # seconds between two looks at whether it has


class HealthSource(Protocol):
    """What the endpoints read: the service's metrics, breakers, rate limiter and status."""

    @property
    def metrics(self) -> PerformanceMetrics:
        """The service's metrics: the health summary and the Prometheus export."""
        ...

    @property
    def breakers(self) -> Mapping[str, CircuitBreaker] | CircuitBreakerRegistry:
        """The circuit breakers, by source."""
        ...

    @property
    def limiter(self) -> RateLimiter | None:
        """The rate limiter whose buckets are shown by source, or None."""
        ...

    def status(self) -> str:
        """The service's status: ``healthy``, ``degraded`` or ``unhealthy`` (HTTP 503)."""
        ...


def _plain(value: Any) -> Any:
    """A stats field as JSON allows it: infinite and NaN floats become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _fields(stats: Any) -> dict[str, Any]:
    return {f.name: _plain(getattr(stats, f.name)) for f in dataclasses.fields(stats)}


def health_payload(source: HealthSource) -> dict[str, Any]:
    """The body of ``GET /api/v1/health`` for ``source`` (a plain, JSON-ready dict).

    Example:
        ```python
        payload = health_payload(service)
        payload["services"]["performance"]["cache_hit_rate"]  # percent
        payload["services"]["circuit_breakers"]["massive"]["state"]  # "closed"
        ```
    """
    breakers = source.breakers
    if isinstance(breakers, CircuitBreakerRegistry):
        breaker_stats = breakers.stats
    else:
        breaker_stats = {name: breaker.stats for name, breaker in breakers.items()}
    limiter = source.limiter
    bucket_stats = {} if limiter is None else limiter.stats
    return {
        "status": source.status(),
        "services": {
            "performance": dict(source.metrics.get_summary()),
            "circuit_breakers": {name: _fields(s) for name, s in sorted(breaker_stats.items())},
            "rate_limiters": {name: _fields(s) for name, s in sorted(bucket_stats.items())},
        },
    }


def create_app(source: HealthSource) -> Starlette:
    """The ASGI application serving ``GET /api/v1/health`` and ``GET /metrics`` for ``source``.

    Other methods on those paths answer 405, other paths 404.

    Raises:
        ImportError: at the first ``/metrics`` request without prometheus-client
            (the ``service`` extra installs it); the request answers 500.
    """

    async def health(request: Request) -> Response:
        payload = health_payload(source)
        code = 503 if payload["status"] == "unhealthy" else 200
        return JSONResponse(payload, status_code=code)

    async def metrics(request: Request) -> Response:
        return Response(source.metrics.exposition(), media_type=METRICS_CONTENT_TYPE)

    return Starlette(
        routes=[
            Route(HEALTH_PATH, health, methods=["GET"]),
            Route(METRICS_PATH, metrics, methods=["GET"]),
        ]
    )


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the program that serves owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass(frozen=True)
class RunningServer:
    """Where `serving` listens.

    Attributes:
        host: the address it is bound to (``127.0.0.1`` by default).
        port: the port (the one the system chose when asked for port 0).
    """

    host: str
    port: int

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8080``."""
        return f"http://{self.host}:{self.port}"


@contextlib.asynccontextmanager
async def serving(
    app: Starlette, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningServer]:
    """Serve ``app`` with uvicorn on this event loop while the block runs.

    Listens on ``host`` (loopback by default) and ``port`` (0: a free port
    the system chooses; `RunningServer.port` tells which) before the block
    starts. On the way out the server stops accepting, finishes the requests
    in flight, closes its socket and its task ends, so the port is free
    again. The server installs no signal handlers: stopping on SIGINT or
    SIGTERM is the caller's (leave the block).

    Raises:
        OSError: the address cannot be bound (in use, not local).
        RuntimeError: the server failed to start.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    bound_port = int(sock.getsockname()[1])
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name=f"http:{bound_port}")
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _STARTUP_TIMEOUT
        while not server.started:
            if task.done():
                task.result()  # its error, if it failed
                raise RuntimeError("the HTTP server stopped while starting")
            if loop.time() > deadline:
                raise RuntimeError(f"the HTTP server did not start within {_STARTUP_TIMEOUT} s")
            await asyncio.sleep(_POLL)
        yield RunningServer(host, bound_port)
    finally:
        server.should_exit = True
        try:
            await task
        finally:
            sock.close()
