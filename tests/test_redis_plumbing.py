"""Redis plumbing shared by the Redis-backed primitives: clients and the health gate."""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

import pytest
import redis
import redis.asyncio
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from argo_perf import BackendError, ConfigError, ManualClock
from argo_perf._redis import (
    Admission,
    BackendHealth,
    RedisLink,
    async_client,
    describe_client,
    is_outage,
    redact_url,
    sync_client,
    to_backend_error,
)
from argo_perf.testing import RedisServer


def test_redact_url_hides_passwords() -> None:
    assert redact_url("redis://:s3cret@host:6380/1") == "redis://:***@host:6380/1"
    assert redact_url("redis://user:s3cret@host/0") == "redis://user:***@host/0"
    assert redact_url("redis://host:6379/0") == "redis://host:6379/0"
    assert redact_url("redis://[::1") == "redis://[::1"  # nothing secret in it


def test_sync_client_from_url_has_short_timeouts_and_no_retries(redis_url: str) -> None:
    client, owned = sync_client(redis_url)
    assert owned
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == 0.05
    assert kwargs["socket_connect_timeout"] == 0.5
    assert client.ping()
    # redis-py before 5.3 requires a command name; from 5.3 on passing one is deprecated.
    checkout = () if redis.VERSION >= (5, 3) else ("PING",)
    conn = client.connection_pool.get_connection(*checkout)
    try:
        assert conn.retry._retries == 0
    finally:
        client.connection_pool.release(conn)
    assert describe_client(client).startswith("redis://127.0.0.1:")
    client.close()


def test_existing_clients_are_used_as_they_are(redis_url: str) -> None:
    mine = redis.Redis.from_url(redis_url)
    client, owned = sync_client(mine)
    assert client is mine
    assert not owned
    amine = redis.asyncio.Redis.from_url(redis_url)
    aclient, aowned = async_client(amine)
    assert aclient is amine
    assert not aowned


async def test_async_client_from_url(redis_url: str) -> None:
    client, owned = async_client(redis_url, socket_timeout=0.2)
    assert owned
    assert await client.ping()
    await client.aclose()


def test_unix_socket_urls_are_accepted_and_described() -> None:
    client, _ = sync_client("unix:///tmp/none.sock")
    assert describe_client(client) == "unix:///tmp/none.sock"
    assert describe_client(object()) == "object"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"url_or_client": "http://x"}, "url"),
        ({"url_or_client": "localhost:6379"}, "url"),
        ({"url_or_client": 42}, "url_or_client"),
        ({"url_or_client": "redis://x", "socket_timeout": 0}, "socket_timeout"),
        ({"url_or_client": "redis://x", "connect_timeout": -1.0}, "connect_timeout"),
        ({"url_or_client": "redis://x", "socket_timeout": "1"}, "socket_timeout"),
        ({"url_or_client": "redis://:pw@localhost:abc/0"}, "url"),
        ({"url_or_client": "redis://[::1"}, "url"),
        ({"url_or_client": "redis://x/0?socket_timeout=zz"}, "url"),
    ],
)
def test_bad_client_arguments_fail_at_construction(kwargs: dict, parameter: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError) as info:
        sync_client(**kwargs)
    assert info.value.parameter == parameter
    with pytest.raises(ConfigError):
        async_client(**kwargs)


def test_a_password_never_reaches_the_error_message() -> None:
    with pytest.raises(ConfigError) as info:
        sync_client("http://:hunter2@host")
    assert "hunter2" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        async_client("redis://:hunter2@host:port/0")
    assert "hunter2" not in str(info.value)


def test_outage_classification() -> None:
    assert is_outage(redis.ConnectionError("refused"))
    assert is_outage(redis.TimeoutError("slow"))
    assert is_outage(ConnectionRefusedError())
    assert not is_outage(redis.ResponseError("WRONGTYPE"))
    wrapped = to_backend_error(redis.TimeoutError("slow"), "redis://h")
    assert isinstance(wrapped, BackendError)
    assert is_outage(wrapped)
    assert "TimeoutError" in str(wrapped)
    assert not is_outage(BackendError("no cause"))


def test_gate_admits_everyone_while_up() -> None:
    gate = BackendHealth("t", clock=ManualClock())
    assert gate.available
    assert gate.admit() is Admission.CALL
    gate.record_success()
    assert gate.seconds_until_probe() == 0.0


def test_gate_goes_down_after_threshold_and_hands_out_one_probe_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    gate = BackendHealth("redis://h", failure_threshold=3, probe_interval=1.0, clock=clock)
    caplog.set_level(logging.INFO, logger="argo_perf.backend")
    gate.record_failure(OSError("refused"))
    gate.record_failure(OSError("refused"))
    assert gate.available
    gate.record_failure(OSError("refused"))
    assert not gate.available
    assert gate.admit() is Admission.SKIP
    assert gate.seconds_until_probe() == 1.0
    clock.advance(1.0)
    assert gate.admit() is Admission.PROBE
    assert gate.admit() is Admission.SKIP  # only one probe at a time
    gate.record_failure(OSError("still refused"))
    assert gate.admit() is Admission.SKIP
    clock.advance(1.0)
    assert gate.admit() is Admission.PROBE
    gate.record_success()
    assert gate.available
    assert gate.admit() is Admission.CALL
    messages = [r.getMessage() for r in caplog.records]
    assert sum("unreachable" in m for m in messages) == 1
    assert sum("reachable again" in m for m in messages) == 1
    assert gate.transitions == 2
    assert "state=up" in repr(gate)


def test_a_probe_that_never_reports_back_is_given_up_after_one_interval() -> None:
    # A probe whose caller was cancelled, or met an error it did not count,
    # must not keep the gate down for good.
    clock = ManualClock()
    gate = BackendHealth("redis://h", failure_threshold=1, probe_interval=1.0, clock=clock)
    gate.record_failure(OSError("refused"))
    clock.advance(1.0)
    assert gate.admit() is Admission.PROBE  # ... and its caller never reports
    clock.advance(0.5)
    assert gate.admit() is Admission.SKIP
    clock.advance(0.5)
    assert gate.admit() is Admission.PROBE
    gate.record_success()
    assert gate.admit() is Admission.CALL


def test_a_success_resets_the_consecutive_failure_count() -> None:
    gate = BackendHealth("t", failure_threshold=2, clock=ManualClock())
    gate.record_failure()
    gate.record_success()
    gate.record_failure()
    assert gate.available
    gate.record_failure()
    assert not gate.available
    assert "state=down" in repr(gate)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"failure_threshold": True}, "failure_threshold"),
        ({"failure_threshold": "3"}, "failure_threshold"),
        ({"failure_threshold": 2.5}, "failure_threshold"),
        ({"probe_interval": 0}, "probe_interval"),
        ({"probe_interval": float("inf")}, "probe_interval"),
        ({"probe_interval": "1"}, "probe_interval"),
    ],
)
def test_gate_rejects_bad_configuration(kwargs: dict, parameter: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError) as info:
        BackendHealth("t", **kwargs)
    assert info.value.parameter == parameter


def test_gate_against_a_killed_and_restarted_server(fault_redis: RedisServer) -> None:
    clock = ManualClock()
    client, _ = sync_client(fault_redis.url)
    gate = BackendHealth(fault_redis.url, failure_threshold=2, clock=clock)

    outages: list[bool] = []

    def call() -> str:
        admission = gate.admit()
        if admission is Admission.SKIP:
            return "skipped"
        try:
            client.ping()
        except redis.RedisError as exc:
            gate.record_failure(exc)
            outages.append(is_outage(exc))
            return "failed"
        gate.record_success()
        return "ok"

    assert call() == "ok"
    fault_redis.kill()
    assert [call() for _ in range(4)] == ["failed", "failed", "skipped", "skipped"]
    fault_redis.start()
    assert call() == "skipped"
    clock.advance(1.0)
    assert call() == "ok"
    assert gate.available
    assert outages == [True, True]
    client.close()


# -- no password in any message, for any string passed as a URL ----------------------

_SECRET_ALPHABET = st.characters(
    codec="utf-8", exclude_categories=("Cs",), include_characters="#/?@:%&=[]+ "
)
_TEMPLATES = (
    "redis://:{p}@localhost:6379/0",
    "redis://user:{p}@localhost/0",
    "rediss://default:{p}@cache.internal:6380/1",
    "redis://{p}@localhost:6379/0",
    "redis://:{p}@localhost:port/0",
    "redis://:{p}@[::1",
    "redis://:{p}@localhost/0?socket_timeout=zz",
    "redis://:{p}@localhost/0#frag",
    "unix://:{p}@/tmp/redis.sock?db=0",
    "http://:{p}@localhost",
    ":{p}@localhost:6379",
    "redis://localhost:6379/0?password={p}",
    "redis://localhost:6379/0?db=1&password={p}&x=1",
    "redis://u:{p}@h@localhost/0",
    "redis+cluster://:{p}@localhost:7000,localhost:7001",
    "redis+cluster://user:{p}@[::1]:7000/0?socket_timeout=zz",
    "redis+sentinel://app:{p}@localhost:26379,localhost:26380/mymaster/0",
    "redis+sentinel://localhost:26379/mymaster?sentinel_password={p}",
    "redis+sentinel://:{p}@localhost:port/mymaster",
)


# Every message the URL checks can produce, without the URL itself.
_FIXED_TEXT = (
    "url must be a valid redis URL (bad port, host or option; percent-encode # / ? @ : "
    "in a password), got ''. url has '/', '?' or '#' before its last '@': percent-encode "
    "them in the password (urllib.parse.quote(password, safe='')) must be a redis://, "
    "rediss:// or unix:// URL ConfigError('url', ***, 'redis://localhost:6379/0')"
    " must be a redis://, rediss://, unix://, redis+cluster:// or redis+sentinel:// URL"
    " has a bad host:port (hosts are separated by ',') must name the service: "
    "redis+sentinel://host:port/service[/db] has a bad database has an unknown option "
    "(known: max_connections, socket_timeout, socket_connect_timeout, sentinel_username, "
    "sentinel_password) has a bad value for : a positive number is needed "
    "RedisLink(target=, state=up) names database ; a Redis Cluster has only database 0"
)


def _pieces(secret: str) -> set[str]:
    """The secret and the pieces a parser could cut it into (at reserved characters)."""
    found = {secret, unquote(secret)}
    for whole in list(found):
        found.update(re.split(r"[#/?@:&=%\[\]+ ;]", whole))
    return {piece for piece in found if len(piece) >= 4}


def _secret_free(text: str, secret: str) -> bool:
    return not any(piece in text for piece in _pieces(secret))


def _sync_no_connect(url: str) -> tuple[object, bool]:
    """`sync_client`, but a cluster URL's client is not built (it would connect)."""
    if url.lower().startswith("redis+cluster://"):
        link = RedisLink(url)
        link.close()
        return link, True
    return sync_client(url)


def _assert_no_secret(url: str, secret: str) -> None:
    assert _secret_free(redact_url(url), secret), redact_url(url)
    for build in (_sync_no_connect, async_client):
        try:
            client, _ = build(url)
        except ConfigError as exc:
            for shown in (str(exc), repr(exc), repr(exc.value), repr(exc.args), exc.requirement):
                assert _secret_free(shown, secret), shown
        else:
            shown = repr(client) if isinstance(client, RedisLink) else describe_client(client)  # type: ignore[arg-type]
            assert _secret_free(shown, secret), shown


@pytest.mark.parametrize(
    "password", ["hunter#2xyz", "hun/ter2xyz", "hunt?er2xyz", "hun@ter2xyz", "a#b/c?d@e:f%zz"]
)
@pytest.mark.parametrize("template", _TEMPLATES)
def test_passwords_with_reserved_characters_never_reach_a_message(
    template: str, password: str
) -> None:
    _assert_no_secret(template.format(p=password), password)


@settings(max_examples=300, deadline=None)
@given(
    template=st.sampled_from(_TEMPLATES),
    password=st.text(_SECRET_ALPHABET, min_size=6, max_size=24),
)
def test_no_password_reaches_a_message_for_any_url(template: str, password: str) -> None:
    rest = template.replace("{p}", "\x00")
    assume(password.strip() == password)
    assume(len(unquote(password)) >= 6)
    if "//{p}@" in template:
        # There the text before a ':' is a user name, which is not secret.
        assume(":" not in unquote(password))
    for piece in _pieces(password):
        assume(not any(piece in part for part in rest.split("\x00")))
        assume(piece not in _FIXED_TEXT)  # words of our own messages are not leaks
    _assert_no_secret(template.format(p=password), password)


def test_redaction_keeps_what_is_not_secret() -> None:
    assert redact_url("redis://u:p#w@host:6380/2?db=1") == "redis://u:***@host:6380/2?db=1"
    assert redact_url("redis://p/w@host/0") == "redis://***@host/0"
    assert redact_url("redis://h/0?a=1&password=x&b=2") == "redis://h/0?a=1&password=***"
    assert redact_url("localhost:6379") == "localhost:6379"


# -- the first failure to reach Redis is logged at once --------------------------------


def test_the_first_failure_is_logged_once_with_the_target_and_the_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    gate = BackendHealth("redis://:***@h:6379/0", failure_threshold=3, clock=clock)
    caplog.set_level(logging.DEBUG, logger="argo_perf.backend")
    gate.record_failure(ConnectionRefusedError("Connection refused"))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "redis://:***@h:6379/0" in warnings[0].getMessage()
    assert "Connection refused" in warnings[0].getMessage()
    assert gate.available  # one failure does not take the gate down
    gate.record_failure(OSError("refused"))
    assert len(caplog.records) == 1  # the second failure is not a new event
    gate.record_failure(OSError("refused"))  # the third takes it down: one more line
    gate.record_failure(OSError("refused"))
    clock.advance(1.0)
    assert gate.admit() is Admission.PROBE
    gate.record_success()
    gate.record_failure(OSError("refused"))  # a failure after recovery: not logged again
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3, messages
    assert "unreachable after 3" in messages[1]
    assert "reachable again" in messages[2]


def test_with_a_threshold_of_one_the_first_failure_is_one_line() -> None:
    gate = BackendHealth("t", failure_threshold=1, clock=ManualClock())
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    backend_logger = logging.getLogger("argo_perf.backend")
    backend_logger.addHandler(handler)
    try:
        gate.record_failure(OSError("refused"))
    finally:
        backend_logger.removeHandler(handler)
    assert len(records) == 1
    assert "unreachable" in records[0].getMessage()


def test_a_success_before_any_failure_does_not_use_up_the_first_failure_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = BackendHealth("t", clock=ManualClock())
    caplog.set_level(logging.WARNING, logger="argo_perf.backend")
    gate.record_success()
    gate.record_failure(OSError("timed out"))
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
