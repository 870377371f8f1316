"""`RedisServer`: a private, throw-away ``redis-server`` process on loopback."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..clock import SystemClock

__all__ = ["RedisServer", "RedisServerError", "find_redis_server", "free_port"]

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


def free_port() -> int:
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
            ``["--maxmemory", "1mb", "--maxmemory-policy", "noeviction"]``
            or ``["--sentinel"]``.
        startup_timeout: seconds to wait for PING to answer.
        config: the text of a configuration file, written into the server's
            directory and passed as its first argument (a sentinel needs one:
            it rewrites it); the arguments above override it.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        extra_args: list[str] | None = None,
        startup_timeout: float = 10.0,
        config: str | None = None,
    ) -> None:
        self.binary = find_redis_server()
        self.port = port if port is not None else free_port()
        # A port chosen here may be taken by the time the server binds it (another
        # process's outgoing connection, or a server of a parallel test run):
        # until the first start succeeds, start tries another.
        self._movable = port is None
        self.host = "127.0.0.1"
        self.extra_args = list(extra_args or [])
        self.startup_timeout = startup_timeout
        self._dir = tempfile.mkdtemp(prefix="argo-perf-redis-")
        self._config: list[str] = []
        if config is not None:
            path = Path(self._dir) / "redis.conf"
            path.write_text(config)
            self._config = [str(path)]
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
        for _ in range(5):
            try:
                self._launch()
            except RedisServerError as error:
                if not (self._movable and "Address already in use" in str(error)):
                    raise
                self.port = free_port()
                continue
            self._movable = False
            return self
        raise RedisServerError("redis-server found no free port in 5 tries")

    def _launch(self) -> None:
        args = [
            self.binary,
            *self._config,
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
                    # Ours, not another server that holds the port while ours fails
                    # to bind it.
                    if proc is not None and probe.info("server")["process_id"] == proc.pid:
                        return
                except redis.RedisError:  # not up yet, or another service on the port
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
