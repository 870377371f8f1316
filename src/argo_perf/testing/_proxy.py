"""`TcpProxy`: network faults (delay, drop, cut) between a client and a server."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

__all__ = ["TcpProxy"]

_T = TypeVar("_T")


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

    Examples:
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
