"""RedisLink: the clients, the health gate and the failure rules a Redis-backed piece owns."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading

import pytest
import redis
import redis.asyncio
from redis.exceptions import RedisClusterException

from argo_perf import BackendError, ConfigError, ManualClock
from argo_perf._redis import PROBE_THREAD_NAME, Admission, BackendHealth, RedisLink
from argo_perf.testing import RedisServer, TcpProxy

SECRET = "s3cr#t/pw"
ENCODED = "s3cr%23t%2Fpw"


def dead_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def connected(server: RedisServer) -> int:
    """Clients connected to ``server``, not counting the one asking."""
    with server.client() as client:
        return len(client.client_list()) - 1


# -- clients ---------------------------------------------------------------------


def test_a_url_link_owns_one_sync_client_and_one_async_client_per_loop(
    fault_redis: RedisServer,
) -> None:
    link = RedisLink(fault_redis.url)
    assert link.owns_clients
    assert link.has_sync
    assert link.has_async
    assert link.sync_client().ping()
    assert link.sync_client() is link.sync_client()

    async def use() -> object:
        client = link.async_client()
        assert client is link.async_client()
        assert await client.ping()
        return client

    first = asyncio.run(use())
    assert connected(fault_redis) == 2  # the sync client and the first loop's client
    second = asyncio.run(use())
    assert second is not first
    # The client of the closed loop was closed when the second loop asked for its own.
    assert link.loops == 1
    assert connected(fault_redis) == 2
    link.close()
    assert link.loops == 0
    assert connected(fault_redis) == 0


async def test_aclose_awaits_the_running_loops_client(fault_redis: RedisServer) -> None:
    link = RedisLink(fault_redis.url)
    assert await link.async_client().ping()
    assert connected(fault_redis) == 1
    await link.aclose()
    assert link.loops == 0
    assert connected(fault_redis) == 0


async def test_clients_passed_in_serve_their_own_face_and_stay_open(redis_url: str) -> None:
    sync = redis.Redis.from_url(redis_url)
    link = RedisLink(sync)
    assert not link.owns_clients
    assert link.has_sync
    assert not link.has_async
    assert link.sync_client() is sync
    with pytest.raises(TypeError, match="no asyncio client"):
        link.async_client()
    link.close()
    assert sync.ping()  # not ours to close
    sync.close()

    aclient = redis.asyncio.Redis.from_url(redis_url)
    alink = RedisLink(aclient)
    assert alink.async_client() is aclient
    assert not alink.has_sync
    with pytest.raises(TypeError, match="no sync client"):
        alink.sync_client()
    await alink.aclose()
    assert await aclient.ping()
    await aclient.aclose()


def test_bad_arguments_fail_at_construction() -> None:
    with pytest.raises(ConfigError, match="url_or_client"):
        RedisLink(42)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="health must be a BackendHealth"):
        RedisLink("redis://127.0.0.1/0", health="gate")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="socket_timeout"):
        RedisLink("redis://127.0.0.1/0", socket_timeout=0)
    with pytest.raises(ConfigError, match="probe_interval"):
        RedisLink("redis://127.0.0.1/0", probe_interval=float("inf"))
    with pytest.raises(ConfigError) as info:
        RedisLink(f"redis://:{SECRET}@127.0.0.1/0")
    assert "s3cr" not in str(info.value)


def test_an_injected_gate_is_shared() -> None:
    gate = BackendHealth("shared", clock=ManualClock())
    one = RedisLink("redis://127.0.0.1/0", health=gate)
    two = RedisLink("redis://127.0.0.1/1", health=gate)
    assert one.health is two.health is gate
    one.close()
    two.close()


# -- classification and translation ------------------------------------------------


def test_an_error_reply_means_redis_is_up(redis_url: str) -> None:
    link = RedisLink(redis_url, failure_threshold=1, clock=ManualClock())
    client = link.sync_client()
    client.lpush("k", "v")
    with pytest.raises(redis.ResponseError) as info:
        client.get("k")  # WRONGTYPE: an answer
    error = link.failed(info.value)
    assert isinstance(error, BackendError)
    assert error.__cause__ is info.value
    assert "WRONGTYPE" in str(error)
    assert link.health.available
    for reply in ("NOSCRIPT No matching script", "OOM command not allowed", "READONLY replica"):
        link.failed(redis.ResponseError(reply))
        assert link.health.available
    link.close()


@pytest.mark.parametrize(
    "exc",
    [
        redis.ConnectionError("refused"),
        redis.TimeoutError("slow"),
        ConnectionResetError(),
        RedisClusterException("no node covers slot 42"),
    ],
)
def test_outages_take_the_gate_down(exc: BaseException) -> None:
    link = RedisLink("redis://127.0.0.1/0", failure_threshold=2, clock=ManualClock())
    error = link.failed(exc)
    assert isinstance(error, BackendError)
    assert error.__cause__ is exc
    assert link.health.available
    link.failed(exc)
    assert not link.health.available
    assert link.admit() is Admission.SKIP
    link.close()


def test_a_backend_error_is_returned_as_it_is() -> None:
    link = RedisLink("redis://127.0.0.1/0", failure_threshold=1, clock=ManualClock())
    wrapped = link.failed(redis.TimeoutError("slow"))
    assert link.failed(wrapped) is wrapped
    link.close()


def test_an_interrupted_probe_is_given_back() -> None:
    clock = ManualClock()
    link = RedisLink("redis://127.0.0.1/0", failure_threshold=1, probe_interval=1.0, clock=clock)
    link.failed(redis.ConnectionError("refused"))
    clock.advance(1.0)
    assert link.health.admit() is Admission.PROBE  # the gate hands out the interval's probe
    link.failed(asyncio.CancelledError())  # the probe was cancelled: says nothing about Redis
    assert not link.health.available
    clock.advance(1.0)
    assert link.health.admit() is Admission.PROBE  # a new probe: the lost one did not wedge it
    link.close()


def test_a_client_side_error_while_up_does_not_count() -> None:
    link = RedisLink("redis://127.0.0.1/0", failure_threshold=1, clock=ManualClock())
    link.failed(redis.DataError("bad argument type"))
    assert link.health.available
    link.close()


# -- the probe rule, against a real server -------------------------------------------


def join_probe() -> None:
    """Wait for the link's background probe thread to report (bounded)."""
    for thread in threading.enumerate():
        if thread.name == PROBE_THREAD_NAME:
            thread.join(5.0)
            assert not thread.is_alive()


async def join_probe_tasks() -> None:
    """Wait for every other task on this loop (the link's probe task) to finish."""
    others = asyncio.all_tasks() - {asyncio.current_task()}
    await asyncio.gather(*others, return_exceptions=True)


def sync_request(link: RedisLink) -> bool:
    """The canonical request of a piece: skip when told, report the outcome otherwise."""
    if link.admit() is Admission.SKIP:
        return False
    try:
        link.sync_client().ping()
    except redis.RedisError as exc:
        link.failed(exc)
        return False
    link.succeeded()
    return True


async def async_request(link: RedisLink) -> bool:
    if link.admit_async() is Admission.SKIP:
        return False
    try:
        await link.async_client().ping()
    except redis.RedisError as exc:
        link.failed(exc)
        return False
    link.succeeded()
    return True


def test_the_probe_is_a_background_ping_never_a_callers_request(
    redis_server: RedisServer,
) -> None:
    clock = ManualClock()
    with TcpProxy(redis_server.host, redis_server.port) as proxy:
        link = RedisLink(
            proxy.url, failure_threshold=1, probe_interval=2.0, socket_timeout=0.2, clock=clock
        )
        assert sync_request(link)
        proxy.drop()
        assert not sync_request(link)  # an outage: the gate goes down
        assert link.admit() is Admission.SKIP
        clock.advance(2.0)
        assert link.admit() is Admission.SKIP  # the probe is due: it runs in the background
        join_probe()
        assert not link.health.available  # it timed out on its own thread, not the caller's
        proxy.heal()
        assert link.admit() is Admission.SKIP  # no probe before the next interval
        assert not any(t.name == PROBE_THREAD_NAME for t in threading.enumerate())
        clock.advance(2.0)
        for _ in range(5):
            assert link.admit() is Admission.SKIP  # one probe, whoever asks
        join_probe()
        assert link.health.available  # the PING answered: Redis is used again
        assert link.admit() is Admission.CALL
        assert sync_request(link)
        assert link.health.transitions == 2
        link.close()


def test_a_frozen_redis_is_probed_without_any_caller_waiting(fault_redis: RedisServer) -> None:
    clock = ManualClock()
    link = RedisLink(
        fault_redis.url, failure_threshold=2, probe_interval=1.0, socket_timeout=0.2, clock=clock
    )
    assert sync_request(link)
    fault_redis.pause()
    try:
        assert not sync_request(link)
        assert not sync_request(link)  # two timeouts paid: the threshold
        assert not link.health.available
        for _ in range(3):
            clock.advance(1.0)
            assert link.admit() is Admission.SKIP  # the probe runs on its own thread ...
            join_probe()  # ... and times out there
            assert not link.health.available
    finally:
        fault_redis.resume()
    clock.advance(1.0)
    assert link.admit() is Admission.SKIP
    join_probe()
    assert link.admit() is Admission.CALL
    link.close()


def test_close_waits_for_a_running_probe(fault_redis: RedisServer) -> None:
    clock = ManualClock()
    link = RedisLink(fault_redis.url, failure_threshold=1, socket_timeout=0.3, clock=clock)
    fault_redis.pause()
    try:
        assert not sync_request(link)
        clock.advance(1.0)
        assert link.admit() is Admission.SKIP  # a probe is now waiting on the frozen server
        link.close()
        assert [t for t in threading.enumerate() if t.name == PROBE_THREAD_NAME] == []
        assert not link.health.available  # the probe reported before close returned
    finally:
        fault_redis.resume()


def test_a_probe_thread_that_cannot_start_is_reported_to_the_gate(
    fault_redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock()
    link = RedisLink(fault_redis.url, failure_threshold=1, clock=clock)
    fault_redis.kill()
    assert not sync_request(link)
    fault_redis.start()
    clock.advance(1.0)
    with monkeypatch.context() as patch:

        def refuse(self: threading.Thread) -> None:
            raise RuntimeError("can't create new thread at interpreter shutdown")

        patch.setattr(threading.Thread, "start", refuse)
        assert link.admit() is Admission.SKIP  # no error for the caller
    assert link.admit() is Admission.SKIP  # not before the next interval
    clock.advance(1.0)
    assert link.admit() is Admission.SKIP  # the next probe is handed out, and runs
    join_probe()
    assert link.health.available
    link.close()


async def test_the_async_probe_is_a_task_with_this_loops_client(
    redis_server: RedisServer,
) -> None:
    clock = ManualClock()
    with TcpProxy(redis_server.host, redis_server.port) as proxy:
        link = RedisLink(
            proxy.url, failure_threshold=1, probe_interval=2.0, socket_timeout=0.2, clock=clock
        )
        assert await async_request(link)
        proxy.drop()
        assert not await async_request(link)
        clock.advance(2.0)
        assert link.admit_async() is Admission.SKIP  # the probe: a task on this loop
        assert [t for t in threading.enumerate() if t.name == PROBE_THREAD_NAME] == []
        await join_probe_tasks()
        assert not link.health.available  # timed out in its task
        proxy.heal()
        clock.advance(2.0)
        for _ in range(5):
            assert link.admit_async() is Admission.SKIP
        await join_probe_tasks()
        assert link.health.available
        assert await async_request(link)
        assert link.loops == 1  # the probe used this loop's client
        await link.aclose()


async def test_a_probe_task_cancelled_before_it_ran_is_given_back(
    fault_redis: RedisServer,
) -> None:
    clock = ManualClock()
    client = redis.asyncio.Redis.from_url(fault_redis.url, socket_timeout=2.0)
    link = RedisLink(client, failure_threshold=1, clock=clock)
    fault_redis.kill()
    assert not await async_request(link)
    clock.advance(1.0)
    assert link.admit_async() is Admission.SKIP  # a probe task that has not run yet
    await link.aclose()  # cancels it; the client is not the link's
    fault_redis.start()
    clock.advance(1.0)
    assert link.admit_async() is Admission.SKIP  # a closed link probes no more ...
    await join_probe_tasks()
    assert not link.health.available
    other = RedisLink(client, health=link.health)  # ... a piece still open on its gate does
    assert other.admit_async() is Admission.SKIP  # the gate was not stranded
    await join_probe_tasks()
    assert link.health.available
    await client.aclose()


async def test_admit_from_a_loop_probes_with_the_only_client_there_is(
    redis_server: RedisServer,
) -> None:
    clock = ManualClock()
    client = redis.asyncio.Redis.from_url(redis_server.url, socket_timeout=2.0)
    link = RedisLink(client, failure_threshold=1, clock=clock)
    link.failed(redis.ConnectionError("refused"))
    clock.advance(1.0)
    assert link.admit() is Admission.SKIP  # no sync client: a task on the running loop
    await join_probe_tasks()
    assert link.health.available
    await client.aclose()


async def test_admit_async_without_an_asyncio_client_probes_on_a_thread(
    redis_server: RedisServer,
) -> None:
    clock = ManualClock()
    client = redis.Redis.from_url(redis_server.url, socket_timeout=2.0)
    link = RedisLink(client, failure_threshold=1, clock=clock)
    link.failed(redis.ConnectionError("refused"))
    clock.advance(1.0)
    assert link.admit_async() is Admission.SKIP
    join_probe()
    assert link.health.available
    client.close()


async def test_the_async_face_follows_the_same_rules(redis_server: RedisServer) -> None:
    with TcpProxy(redis_server.host, redis_server.port) as proxy:
        link = RedisLink(proxy.url, failure_threshold=1, clock=ManualClock())
        assert await link.async_client().ping()
        proxy.drop()
        with pytest.raises(redis.RedisError) as info:
            await link.async_client().ping()
        error = link.failed(info.value)
        assert isinstance(error, BackendError)
        assert not link.health.available
        await link.aclose()


# -- no secret anywhere --------------------------------------------------------------


async def test_no_password_in_any_message_repr_or_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="argo_perf")
    url = f"redis://:{ENCODED}@127.0.0.1:{dead_port()}/0"
    link = RedisLink(url, failure_threshold=1)
    shown = [repr(link), link.target, repr(link.health)]
    try:
        link.sync_client().ping()
    except redis.RedisError as exc:
        shown.append(str(link.failed(exc)))
    try:
        await link.async_client().ping()
    except redis.RedisError as exc:
        shown.append(str(link.failed(exc)))
    shown.extend(record.getMessage() for record in caplog.records)
    assert len(shown) >= 6  # both failures, and the first-failure log line
    for text in shown:
        assert "s3cr" not in text, text
        assert "2Fpw" not in text, text
    await link.aclose()
