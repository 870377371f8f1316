"""The real-Redis test harness itself: the faults it injects are the ones Redis shows."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from argo_perf.testing import RedisServer, RedisServerError, find_redis_server


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
