"""The real-Redis test harness itself: the faults it injects are the ones Redis shows."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

import pytest
import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

from argo_perf.testing import RedisServer, RedisServerError, TcpProxy, find_redis_server


def test_server_answers_and_is_flushed_per_test(redis_client: redis.Redis) -> None:
    assert redis_client.ping()
    assert redis_client.dbsize() == 0
    redis_client.set("left-behind", b"1")


def test_the_next_test_starts_empty(redis_client: redis.Redis) -> None:
    assert redis_client.get("left-behind") is None


def test_pause_makes_a_50ms_client_time_out_and_resume_brings_it_back(
    fault_redis: RedisServer,
) -> None:
    client = fault_redis.client(socket_timeout=0.05)
    assert client.ping()
    fault_redis.pause()
    with pytest.raises(redis.TimeoutError):
        client.get("k")
    fault_redis.resume()
    client.connection_pool.disconnect()  # the timed-out connection has a stale reply queued
    assert client.ping()
    client.close()


def test_kill_refuses_connections_and_restart_serves_empty_on_the_same_port(
    fault_redis: RedisServer,
) -> None:
    client = fault_redis.client(socket_timeout=0.5, socket_connect_timeout=0.5)
    client.set("k", b"v")
    port = fault_redis.port
    fault_redis.kill()
    assert not fault_redis.running
    with pytest.raises(redis.ConnectionError):
        client.ping()
    fault_redis.restart()
    assert fault_redis.port == port
    assert client.ping()
    assert client.get("k") is None
    client.close()


def test_extra_args_reach_the_server(redis_factory) -> None:  # type: ignore[no-untyped-def]
    server = redis_factory(extra_args=["--maxmemory", "2mb", "--maxmemory-policy", "noeviction"])
    with server.client() as client:
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}


def test_stop_is_idempotent_and_context_manager_cleans_up() -> None:
    with RedisServer() as server:
        assert server.running
        assert server.pid is not None
        assert "running=True" in repr(server)
        server.stop()
        server.stop()
        assert not server.running
        assert server.pid is None
        server.kill()  # no process: nothing to do


def test_pause_of_a_stopped_server_is_an_error() -> None:
    server = RedisServer()
    with pytest.raises(RedisServerError):
        server.pause()
    with pytest.raises(RedisServerError):
        server.resume()
    server.close()


def test_kill_of_a_paused_server_reaps_it(fault_redis: RedisServer) -> None:
    fault_redis.pause()
    fault_redis.kill()
    assert not fault_redis.running
    fault_redis.start()
    assert fault_redis.client().ping()


def test_a_server_that_cannot_start_fails_loudly() -> None:
    server = RedisServer(extra_args=["--no-such-option", "x"])
    with pytest.raises(RedisServerError, match="exited"):
        server.start()
    assert server.pid is None  # reaped, its pipe closed
    server.close()


def test_a_server_whose_chosen_port_was_taken_meanwhile_starts_on_another() -> None:
    # Another redis-server (a parallel test run) took the port chosen for this one
    # before it started: it moves, and never mistakes the other for itself.
    server = RedisServer()
    with RedisServer(server.port) as squatter, server:
        assert server.port != squatter.port
        with server.client() as client:
            assert client.info("server")["process_id"] == server.pid
        with squatter.client() as client:
            assert client.info("server")["process_id"] == squatter.pid


def test_a_server_whose_chosen_port_is_held_by_a_socket_starts_on_another() -> None:
    server = RedisServer()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", server.port))
        holder.listen()
        taken = server.port
        with server:
            assert server.port != taken
            with server.client() as client:
                assert client.ping()


def test_a_server_on_a_port_given_by_the_caller_does_not_move() -> None:
    first = RedisServer()
    second = RedisServer(first.port)
    try:
        with first, pytest.raises(RedisServerError, match="Address already in use"):
            second.start()
    finally:
        second.close()


def test_a_context_manager_whose_server_cannot_start_removes_its_directory() -> None:
    server = RedisServer(extra_args=["--no-such-option", "x"])
    with pytest.raises(RedisServerError, match="exited"), server:
        pass  # pragma: no cover
    assert not Path(server._dir).exists()


def test_kill_and_restart_close_the_process_pipe(fault_redis: RedisServer) -> None:
    proc = fault_redis._proc
    assert proc is not None
    assert proc.stderr is not None
    fault_redis.restart()
    assert proc.stderr.closed
    assert fault_redis.client().ping()


def test_missing_binary_is_reported_with_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARGO_PERF_REDIS_SERVER", "/nonexistent/redis-server")
    with pytest.raises(RedisServerError, match="not executable"):
        find_redis_server()
    monkeypatch.delenv("ARGO_PERF_REDIS_SERVER")
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr("os.access", lambda *_: False)
    with pytest.raises(RedisServerError, match="apt-get install redis-server"):
        find_redis_server()


# -- TcpProxy -----------------------------------------------------------------------


def _client(proxy: TcpProxy, timeout: float = 1.0) -> redis.Redis:
    return redis.Redis(
        host=proxy.host,
        port=proxy.port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def test_proxy_forwards_both_ways(redis_server: RedisServer) -> None:
    with TcpProxy(redis_server.host, redis_server.port) as proxy:
        assert proxy.url == f"redis://127.0.0.1:{proxy.port}/0"
        client = _client(proxy)
        assert client.set("through", b"proxy")
        assert client.get("through") == b"proxy"
        assert proxy.connections == 1
        assert proxy.accepted == 1
        assert "connections=1" in repr(proxy)
        client.close()


def test_proxy_delay_makes_a_short_timeout_trip_and_heal_removes_it(
    redis_server: RedisServer,
) -> None:
    with TcpProxy(redis_server.host, redis_server.port) as proxy:
        client = _client(proxy, timeout=0.1)
        assert client.ping()
        proxy.delay(0.5)
        with pytest.raises(redis.TimeoutError):
            client.ping()
        proxy.heal()
        client.connection_pool.disconnect()  # the late reply is still on its way
        assert client.ping()
        client.close()


def test_proxy_drop_holds_connections_and_heal_delivers_what_was_held(
    redis_server: RedisServer,
) -> None:
    with TcpProxy(redis_server.host, redis_server.port) as proxy:
        client = _client(proxy, timeout=0.1)
        assert client.ping()
        proxy.drop()
        with pytest.raises(redis.TimeoutError):
            client.ping()
        assert proxy.connections == 1  # held open, not closed
        with socket.create_connection((proxy.host, proxy.port), timeout=5) as raw:
            raw.sendall(b"PING\r\n")
            raw.settimeout(0.1)
            with pytest.raises(TimeoutError):  # a new connection gets no answer either
                raw.recv(16)
            proxy.heal()
            raw.settimeout(5)
            assert raw.recv(16) == b"+PONG\r\n"
        client.close()


def test_proxy_cut_closes_every_connection_and_keeps_accepting(
    redis_server: RedisServer,
) -> None:
    with TcpProxy(redis_server.host, redis_server.port) as proxy:
        client = _client(proxy)
        assert client.ping()
        with socket.create_connection((proxy.host, proxy.port), timeout=5) as raw:
            raw.sendall(b"PING\r\n")
            assert raw.recv(16) == b"+PONG\r\n"
            proxy.cut()
            assert proxy.connections == 0
            with contextlib.suppress(ConnectionResetError):
                assert raw.recv(16) == b""  # closed under the client's feet
        assert client.ping()  # redis-py notices the closed connection and reconnects
        assert proxy.accepted == 3
        client.close()


def test_proxy_to_a_dead_server_closes_the_client_connection() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    with TcpProxy("127.0.0.1", dead) as proxy:
        client = _client(proxy)
        with pytest.raises(redis.ConnectionError):
            client.ping()
        client.close()


def test_a_closed_proxy_refuses_connections_and_close_is_idempotent(
    redis_server: RedisServer,
) -> None:
    proxy = TcpProxy(redis_server.host, redis_server.port).start()
    assert proxy.start() is proxy
    port = proxy.port
    client = _client(proxy)
    assert client.ping()
    proxy.close()
    proxy.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with pytest.raises(RuntimeError, match="not running"):
        proxy.drop()
    client.close()


async def test_proxy_serves_asyncio_clients_on_their_own_loop(redis_server: RedisServer) -> None:
    with TcpProxy(redis_server.host, redis_server.port) as proxy:
        client = redis.asyncio.Redis.from_url(proxy.url, socket_timeout=0.1)
        assert await client.ping()
        proxy.drop()
        with pytest.raises(redis.TimeoutError):
            await client.ping()
        proxy.heal()
        await client.connection_pool.disconnect()
        assert await client.ping()
        await client.aclose()


def test_proxy_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="target_port"):
        TcpProxy("127.0.0.1", 0)
    with pytest.raises(ValueError, match="port"):
        TcpProxy("127.0.0.1", 6379, port=70000)
    proxy = TcpProxy("127.0.0.1", 6379)
    with pytest.raises(RuntimeError, match="before start"):
        _ = proxy.port
    for bad in (-1.0, float("inf"), True, "1"):
        with pytest.raises(ValueError, match="seconds"):
            proxy.delay(bad)  # type: ignore[arg-type]
    proxy.close()  # never started: nothing to do
