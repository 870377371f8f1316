"""Helpers for testing services built on argo_perf, without sleeping and without mocks.

* `ManualClock` (re-exported from `argo_perf.clock`) drives every
  primitive's notion of time.
* `RedisServer` starts a private, throw-away ``redis-server`` process on
  a free loopback port and can kill, freeze (SIGSTOP), resume and restart it,
  so fault handling is tested against a real server.
* `TcpProxy` sits on loopback between a client and a server and can
  delay, drop (hold) or cut the traffic, for the network faults a process
  signal cannot show.

Example:
    >>> from argo_perf.testing import RedisServer
    >>> with RedisServer() as server:  # doctest: +SKIP
    ...     client = server.client()
    ...     client.ping()
    True
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .clock import ManualClock, SystemClock

__all__ = [
    "ManualClock",
    "RedisServer",
    "RedisServerError",
    "TcpProxy",
    "find_redis_server",
    "join_redis_probes",
    "join_redis_probes_async",
]

_T = TypeVar("_T")

_INSTALL_HINT = (
    "redis-server was not found. Install it (Debian/Ubuntu: `apt-get install redis-server`, "
    "macOS: `brew install redis`) or point ARGO_PERF_REDIS_SERVER at the binary."
)


class RedisServerError(RuntimeError):
    """A private redis-server could not be found, started or controlled."""


def find_redis_server() -> str:
    """Return the path of the ``redis-server`` binary.

    ``$ARGO_PERF_REDIS_SERVER`` wins over ``$PATH``.

    Raises:
        RedisServerError: no binary was found; the message says how to install one.
    """
    explicit = os.environ.get("ARGO_PERF_REDIS_SERVER")
    if explicit:
        if os.access(explicit, os.X_OK):
            return explicit
        raise RedisServerError(f"ARGO_PERF_REDIS_SERVER={explicit!r} is not executable")
    candidates = ("/usr/bin/redis-server", "/usr/local/bin/redis-server")
    found = shutil.which("redis-server") or next(
        (path for path in candidates if os.access(path, os.X_OK)), None
    )
    if found is None:
        raise RedisServerError(_INSTALL_HINT)
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A private ``redis-server`` on ``127.0.0.1`` for tests and benchmarks.

    It runs in its own temporary directory with persistence off (``--save ''``,
    ``--appendonly no``). `restart` brings it back on the same port with
    empty data, as a real crash and restart would.

    Args:
        port: the port; a free one is chosen when None.
        extra_args: more ``redis-server`` arguments, e.g.
            ``["--maxmemory", "1mb", "--maxmemory-policy", "noeviction"]``.
        startup_timeout: seconds to wait for PING to answer.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        extra_args: list[str] | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        self.binary = find_redis_server()
        self.port = port if port is not None else _free_port()
        self.host = "127.0.0.1"
        self.extra_args = list(extra_args or [])
        self.startup_timeout = startup_timeout
        self._dir = tempfile.mkdtemp(prefix="argo-perf-redis-")
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:{port}/0``."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The process id while the server runs."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the process is alive (paused counts as alive)."""
        return self._proc is not None and self._proc.poll() is None

    def client(self, **kwargs: Any) -> redis.Redis:
        """A new sync client for this server (1 s timeouts and no retries unless given)."""
        kwargs.setdefault("retry", Retry(NoBackoff(), 0))
        kwargs.setdefault("socket_timeout", 1.0)
        kwargs.setdefault("socket_connect_timeout", 1.0)
        return redis.Redis(host=self.host, port=self.port, **kwargs)

    def start(self) -> RedisServer:
        """Start the process and wait until it answers PING."""
        if self.running:
            return self
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", self.host,
            "--save", "",
            "--appendonly", "no",
            "--dir", self._dir,
            "--protected-mode", "no",
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", str(Path(self._dir) / "redis.log"),
            *self.extra_args,
        ]  # fmt: skip
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._paused = False
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        probe = self.client(socket_timeout=0.2, socket_connect_timeout=0.2)
        try:
            while True:
                proc = self._proc
                if proc is not None and proc.poll() is not None:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    if proc.stderr is not None:
                        proc.stderr.close()
                    self._proc = None
                    log = Path(self._dir) / "redis.log"
                    detail = log.read_text() if log.exists() else ""
                    raise RedisServerError(
                        f"redis-server on port {self.port} exited with "
                        f"{proc.returncode}: {err}{detail}"
                    )
                try:
                    if probe.ping():
                        return
                except (redis.ConnectionError, redis.TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RedisServerError(
                        f"redis-server on port {self.port} did not answer PING "
                        f"within {self.startup_timeout}s"
                    )
                SystemClock().sleep(0.01)
        finally:
            probe.close()

    def pause(self) -> None:
        """Freeze the server with SIGSTOP: connections hang, as with a stuck Redis."""
        if self._proc is None:
            raise RedisServerError("server is not running")
        self._proc.send_signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """Unfreeze a paused server with SIGCONT."""
        if self._proc is None:
            raise RedisServerError("server is not running")
        self._proc.send_signal(signal.SIGCONT)
        self._paused = False

    def kill(self) -> None:
        """Kill the server with SIGKILL: connections are refused until `restart`."""
        if self._proc is None:
            return
        if self._paused:
            self._proc.send_signal(signal.SIGCONT)
        self._proc.kill()
        self._proc.wait()
        if self._proc.stderr is not None:
            self._proc.stderr.close()
        self._proc = None
        self._paused = False

    def restart(self) -> None:
        """Kill (if running) and start again on the same port, with empty data."""
        self.kill()
        self.start()

    def stop(self) -> None:
        """Stop the server and reap the process (idempotent)."""
        if self._proc is None:
            return
        if self._paused:
            self._proc.send_signal(signal.SIGCONT)
            self._paused = False
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stderr is not None:
            self._proc.stderr.close()
        self._proc = None

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        try:
            return self.start()
        except BaseException:
            self.close()  # no __exit__ follows a failed __enter__
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RedisServer(url={self.url!r}, running={self.running}, paused={self._paused})"


class TcpProxy:
    """A TCP proxy on loopback that forwards to a server and injects network faults.

    Point a client at the proxy's [port][argo_perf.testing.TcpProxy.port]
    instead of the server's and change the network under it while it runs:

    * [delay][argo_perf.testing.TcpProxy.delay]: every chunk of bytes, in
      both directions, is held that many seconds before it is passed on (a
      slow link; order is kept);
    * [drop][argo_perf.testing.TcpProxy.drop]: nothing is passed on and
      nothing is closed; connections stay open and new ones are accepted but
      get no answer (a partition, or a peer that stopped answering). The bytes
      held back are delivered after [heal][argo_perf.testing.TcpProxy.heal],
      as TCP would once the partition ends;
    * [cut][argo_perf.testing.TcpProxy.cut]: every open connection is closed
      at once, on both sides (a reset by a load balancer or a failover); new
      connections are accepted and forwarded as before;
    * [heal][argo_perf.testing.TcpProxy.heal]: no delay, no drop.

    The proxy runs its own event loop in a daemon thread, so sync and asyncio
    tests use it alike; each control method returns once the change applies.
    Delays are real time (this is the network, not the library's clock).

    Args:
        target_host: the server's host, e.g. ``"127.0.0.1"``.
        target_port: the server's port.
        host: the address the proxy listens on (default ``127.0.0.1``).
        port: the port it listens on; a free one when None (read
            [port][argo_perf.testing.TcpProxy.port] after
            [start][argo_perf.testing.TcpProxy.start]).

    Raises:
        ValueError: a port out of range.

    Example:
        ```python
        with RedisServer() as server, TcpProxy(server.host, server.port) as proxy:
            cache = RedisCache(proxy.url)
            proxy.drop()   # Redis stops answering: the cache falls back
            ...
            proxy.heal()
        ```
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
    ) -> None:
        for name, value in (("target_port", target_port), ("port", port)):
            if value is None and name == "port":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
                raise ValueError(f"{name} must be an int in 1..65535, got {value!r}")
        self.target_host = target_host
        self.target_port = target_port
        self.host = host
        self._port = port
        self._delay = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._flowing: asyncio.Event | None = None
        self._links: set[_Link] = set()
        self.accepted = 0
        """Client connections accepted since start."""

    # -- life cycle --------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the proxy listens on.

        Raises:
            RuntimeError: the proxy was never started and no port was given.
        """
        if self._port is None:
            raise RuntimeError("the proxy has no port before start()")
        return self._port

    @property
    def url(self) -> str:
        """``redis://{host}:{port}/0``: a Redis URL that goes through the proxy."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def connections(self) -> int:
        """Client connections open through the proxy now."""
        return len(self._links)

    def start(self) -> TcpProxy:
        """Listen and forward (idempotent); returns the proxy."""
        if self._loop is not None:
            return self
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="argo-perf-tcp-proxy", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            self._run(self._listen())
        except BaseException:
            self.close()
            raise
        return self

    async def _listen(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, self.host, self._port or 0)
        self._port = int(self._server.sockets[0].getsockname()[1])

    def close(self) -> None:
        """Close every connection and stop listening (idempotent)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            self._run(self._shutdown())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            loop.close()
            self._loop = self._thread = None

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._cut()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- faults --------------------------------------------------------------------

    def delay(self, seconds: float) -> None:
        """Hold every chunk ``seconds`` before passing it on (0 for none).

        Raises:
            ValueError: ``seconds`` negative or not finite.
        """
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise ValueError(f"seconds must be a number >= 0, got {seconds!r}")
        if not 0 <= seconds < math.inf:
            raise ValueError(f"seconds must be a number >= 0, got {seconds!r}")
        self._delay = float(seconds)

    def drop(self) -> None:
        """Stop passing bytes on, in both directions, holding every connection open."""
        self._run(self._set_flowing(False))

    def cut(self) -> None:
        """Close every open connection, on both sides; the proxy keeps accepting new ones."""
        self._run(self._cut())

    def heal(self) -> None:
        """End any delay or drop; bytes held back by a drop are delivered."""
        self._delay = 0.0
        self._run(self._set_flowing(True))

    async def _set_flowing(self, flowing: bool) -> None:
        assert self._flowing is not None
        if flowing:
            self._flowing.set()
        else:
            self._flowing.clear()

    async def _cut(self) -> None:
        links = list(self._links)
        self._links.clear()
        for link in links:
            link.abort()
        for link in links:
            await link.finished()

    # -- forwarding ------------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError("the proxy is not running; call start() or use it in a with block")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=10)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        link = _Link(writer)
        self._links.add(link)
        try:
            await self._wait_flowing()  # a dropped network does not reach the server either
            try:
                up_reader, up_writer = await asyncio.open_connection(
                    self.target_host, self.target_port
                )
            except OSError:
                return  # the server is down: the client sees its connection closed
            link.writers.append(up_writer)
            link.tasks = [
                asyncio.ensure_future(self._pipe(reader, up_writer)),
                asyncio.ensure_future(self._pipe(up_reader, writer)),
            ]
            await asyncio.wait(link.tasks, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            pass
        finally:
            self._links.discard(link)
            link.abort()

    async def _wait_flowing(self) -> None:
        flowing = self._flowing
        assert flowing is not None
        await flowing.wait()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                await self._wait_flowing()
                if self._delay:
                    await asyncio.sleep(self._delay)
                    await self._wait_flowing()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            return

    def __repr__(self) -> str:
        port = self._port if self._port is not None else "?"
        return (
            f"TcpProxy({self.host}:{port} -> {self.target_host}:{self.target_port}, "
            f"connections={self.connections}, running={self._loop is not None})"
        )


class _Link:
    """One client connection through the proxy: its writers and its two pipes."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.writers: list[asyncio.StreamWriter] = [client]
        self.tasks: list[asyncio.Future[None]] = []
        self._handler = asyncio.current_task()

    def abort(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        for task in self.tasks:
            task.cancel()
        if self._handler is not None and self._handler is not asyncio.current_task():
            self._handler.cancel()

    async def finished(self) -> None:
        if self._handler is not None:
            await asyncio.wait([self._handler])


def join_redis_probes(timeout: float = 5.0) -> None:
    """Wait until the background Redis probes of this process have reported.

    A Redis-backed piece that found Redis down checks whether it is back with a
    background PING, one per `probe_interval`, and never makes a caller wait for
    it: the call that starts a probe is still answered from the fallback. A
    test that advances a `ManualClock` past the probe interval, makes a call and
    then expects Redis again calls this in between.

    Args:
        timeout: seconds to wait for each probe thread.

    Example:
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
