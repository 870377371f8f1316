"""Security: no secret in any log line, repr or message; least-privilege Redis users; TLS.

Every Redis here is a real redis-server: one with an ACL user limited to the
commands docs/redis.md lists (and one lacking a command), one that speaks only
TLS with a certificate made by ``openssl`` for the test. Every logger is
captured at DEBUG while each Redis-backed piece works, fails to connect, lives
through an outage and reads values planted in its keys.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from argo_perf import (
    AsyncRedisCache,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerRegistry,
    ConfigError,
    LiveConfig,
    PerformanceMetrics,
    RateLimitConfig,
    RateLimiter,
    RedisCache,
    RedisTokenBucket,
)
from argo_perf.breaker import RedisBreakerState
from argo_perf.testing import RedisServer

PASSWORD = "Pw-9xQz7-argo-Secret"
API_KEY = "sk-live-4f9e2b7c1d8a"
SECRETS = (PASSWORD, API_KEY)

# The commands the library sends, as docs/redis.md lists them in its ACL rule.
ACL_RULE = [
    "~argo_perf:*",
    "&argo_perf:*",
    "+get",
    "+set",
    "+mget",
    "+exists",
    "+type",
    "+unlink",
    "+scan",
    "+ping",
    "+evalsha",
    "+eval",
    "+del",
    "+incrby",
    "+pexpire",
    "+pttl",
    "+time",
]


def _redis_md_rule() -> list[str]:
    text = (Path(__file__).parent.parent / "docs" / "redis.md").read_text()
    line = next(line for line in text.splitlines() if line.startswith("ACL SETUSER argo on"))
    return line.split()[5:]  # after "ACL SETUSER argo on >password"


def test_the_acl_rule_tested_is_the_one_documented() -> None:
    assert _redis_md_rule() == ACL_RULE


# --- every log line, at DEBUG ---------------------------------------------------------


class _Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.texts.append(self.format(record))  # with the traceback, when there is one


@pytest.fixture
def every_log() -> Iterator[_Everything]:
    """Every logger of the process at DEBUG, tracebacks formatted."""
    handler = _Everything()
    root = logging.getLogger()
    loggers = [root] + [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    levels = [(logger, logger.level) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for logger, level in levels:
            logger.setLevel(level)


def assert_no_secret(*texts: object) -> None:
    for text in texts:
        shown = str(text)
        for secret in SECRETS:
            assert secret not in shown, shown
            assert quote(secret, safe="") not in shown, shown


# --- servers --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def acl_server() -> Iterator[RedisServer]:
    """A server whose user ``argo`` may run the documented commands and nothing else;
    ``lacking`` may run the same minus one command each piece needs (EVALSHA, EXISTS)."""
    lacking = [part for part in ACL_RULE if part not in ("+evalsha", "+exists")]
    server = RedisServer(
        extra_args=[
            "--user", "argo", "on", f">{PASSWORD}", *ACL_RULE,
            "--user", "lacking", "on", f">{PASSWORD}", *lacking,
        ]
    )  # fmt: skip
    server.start()
    try:
        yield server
    finally:
        server.close()


def user_url(server: RedisServer, user: str = "argo", password: str = PASSWORD) -> str:
    return f"redis://{user}:{quote(password, safe='')}@{server.host}:{server.port}/0"


def user_client(server: RedisServer, user: str = "argo", password: str = PASSWORD) -> redis.Redis:
    return redis.Redis(
        host=server.host,
        port=server.port,
        username=user,
        password=password,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        retry=Retry(NoBackoff(), 0),  # a caller's client: redis-py's retries would back off
    )


def user_async_client(server: RedisServer, user: str = "argo") -> redis.asyncio.Redis:
    return redis.asyncio.Redis(
        host=server.host, port=server.port, username=user, password=PASSWORD, socket_timeout=1.0
    )


# --- each piece, doing its work --------------------------------------------------------

ROOMY: dict[str, Any] = {"socket_timeout": 1.0, "connect_timeout": 1.0}


def exercise_cache(target: Any) -> list[object]:
    cache = RedisCache(target, **ROOMY)
    reached = [cache.set("quote", {"p": 1.5}), cache.set_many({"a": 1, "b": (2, 3)})]
    fresh = RedisCache(target, **ROOMY, maxsize=0)
    reached += [
        fresh.get("quote") == {"p": 1.5},
        fresh.get_many(["a", "b", "missing"]) == {"a": 1, "b": (2, 3)},
        fresh.get_or_set("loaded", lambda: 7) == 7,
        cache.delete("a"),
    ]
    try:
        reached.append(cache.clear() >= 2)
    except Exception as exc:  # a BackendError: its message is checked too
        reached.append(exc)
    shown = [repr(cache), cache.stats, cache.backend]
    cache.close()
    fresh.close()
    return [*reached, *shown]


async def exercise_async_cache(target: Any) -> list[object]:
    cache = AsyncRedisCache(target, **ROOMY)
    reached = [await cache.set("aquote", 2.5), await cache.set_many({"c": [1]})]
    fresh = AsyncRedisCache(target, **ROOMY, maxsize=0)
    reached += [
        await fresh.get("aquote") == 2.5,
        await fresh.get_many(["c", "missing"]) == {"c": [1]},
        await cache.delete("c"),
    ]
    shown = [repr(cache), cache.stats]
    await cache.close()
    await fresh.close()
    return [*reached, *shown]


def exercise_bucket(target: Any) -> list[object]:
    bucket = RedisTokenBucket(target, "vendor", 100.0, 5)
    reached = [bucket.try_acquire(), bucket.acquire(timeout=1.0)]
    calls = bucket.stats.redis_calls
    reached.append(calls >= 2)
    shown = [repr(bucket), bucket.stats, bucket.target]
    bucket.close()
    return [*reached, *shown]


async def exercise_async_bucket(target: Any) -> list[object]:
    bucket = RedisTokenBucket(target, "avendor", 100.0, 5)
    reached = [await bucket.acquire_async(timeout=1.0), bucket.stats.redis_calls >= 1]
    shown = [repr(bucket), bucket.stats]
    await bucket.aclose()
    return [*reached, *shown]


def exercise_limiter(target: Any) -> list[object]:
    limiter = RateLimiter({"xai": RateLimitConfig(100, 5)}, redis=target)
    reached = [limiter.try_acquire("xai"), limiter.bucket("xai").stats.redis_calls >= 1]
    shown = [repr(limiter), limiter.bucket("xai").stats]
    limiter.close()
    return [*reached, *shown]


def exercise_breaker(target: Any) -> list[object]:
    shared = RedisBreakerState(target)
    breaker = CircuitBreaker("vendor", CircuitBreakerConfig(failure_threshold=1), shared=shared)
    with pytest.raises(ZeroDivisionError):
        breaker.call(lambda: 1 / 0)
    reached = [shared.open_remaining("vendor") is not None]
    shown = [repr(breaker), repr(shared), breaker.stats, shared.stats]
    shared.close()
    return [*reached, *shown]


SYNC_PIECES: dict[str, Callable[[Any], list[object]]] = {
    "RedisCache": exercise_cache,
    "RedisTokenBucket": exercise_bucket,
    "RateLimiter": exercise_limiter,
    "RedisBreakerState": exercise_breaker,
}
ASYNC_PIECES = {"AsyncRedisCache": exercise_async_cache, "RedisTokenBucket": exercise_async_bucket}


def reached_redis(results: list[object]) -> bool:
    return all(r is True for r in results if isinstance(r, bool))


@pytest.mark.parametrize("piece", SYNC_PIECES)
@pytest.mark.parametrize("given", ["url", "client"])
def test_each_piece_works_under_the_documented_acl_and_shows_no_password(
    acl_server: RedisServer, every_log: _Everything, piece: str, given: str
) -> None:
    target = user_url(acl_server) if given == "url" else user_client(acl_server)
    results = SYNC_PIECES[piece](target)
    assert reached_redis(results), results
    assert [r for r in every_log.records if r.levelno >= logging.WARNING and "redis" in r.msg] == []
    assert_no_secret(*results, *every_log.texts)


@pytest.mark.parametrize("piece", ASYNC_PIECES)
@pytest.mark.parametrize("given", ["url", "client"])
async def test_each_async_piece_works_under_the_documented_acl(
    acl_server: RedisServer, every_log: _Everything, piece: str, given: str
) -> None:
    target = user_url(acl_server) if given == "url" else user_async_client(acl_server)
    results = await ASYNC_PIECES[piece](target)
    if given == "client":
        await target.aclose()  # type: ignore[union-attr]
    assert reached_redis(results), results
    assert_no_secret(*results, *every_log.texts)


@pytest.mark.parametrize(
    ("piece", "missing"),
    [
        ("RedisCache", "exists"),
        ("RedisTokenBucket", "evalsha"),
        ("RateLimiter", "evalsha"),
        ("RedisBreakerState", "evalsha"),
    ],
)
def test_a_command_missing_from_the_acl_is_reported_not_silent(
    acl_server: RedisServer, every_log: _Everything, piece: str, missing: str
) -> None:
    results = SYNC_PIECES[piece](user_url(acl_server, "lacking"))
    warnings = [r.getMessage() for r in every_log.records if r.levelno >= logging.WARNING]
    said = [w for w in warnings if f"no permissions to run the '{missing}' command" in w]
    assert said, warnings
    assert all("lacking:***@" in w for w in said)
    assert_no_secret(*results, *every_log.texts)


def test_a_read_the_acl_refuses_is_logged_once_however_many_writes_succeed(
    acl_server: RedisServer, every_log: _Everything
) -> None:
    cache = RedisCache(user_url(acl_server, "lacking"), **ROOMY, maxsize=0)
    for i in range(20):
        assert cache.set("quote", i) is True
        assert cache.get_many(["missing"]) == {}  # EXISTS refused each time
    lines = [r.getMessage() for r in every_log.records if r.name == "argo_perf.cache"]
    assert len(lines) == 1, lines
    assert "'exists'" in lines[0]
    assert cache.stats.redis_errors == 20
    cache.close()


@pytest.mark.parametrize("piece", SYNC_PIECES)
def test_a_wrong_password_is_reported_without_either_password(
    acl_server: RedisServer, every_log: _Everything, piece: str
) -> None:
    wrong = f"{PASSWORD}-old"
    results = SYNC_PIECES[piece](user_url(acl_server, password=wrong))
    assert not reached_redis(results)
    warnings = [r.getMessage() for r in every_log.records if r.levelno >= logging.WARNING]
    assert any("password" in w or "WRONGPASS" in w or "invalid" in w for w in warnings), warnings
    assert_no_secret(*results, *every_log.texts)


@pytest.mark.parametrize("piece", SYNC_PIECES)
@pytest.mark.parametrize("given", ["url", "client"])
def test_an_outage_and_a_refused_connection_show_no_password(
    redis_factory: Callable[..., RedisServer], every_log: _Everything, piece: str, given: str
) -> None:
    server = redis_factory(extra_args=["--user", "argo", "on", f">{PASSWORD}", *ACL_RULE])
    target = user_url(server) if given == "url" else user_client(server)
    assert reached_redis(SYNC_PIECES[piece](target))
    server.kill()  # every call now meets a refused connection, then the gate is down
    target = user_url(server) if given == "url" else user_client(server)
    results = [*SYNC_PIECES[piece](target), *SYNC_PIECES[piece](target)]
    assert not reached_redis(results)
    assert any(r.levelno >= logging.WARNING for r in every_log.records)
    assert_no_secret(*results, *every_log.texts)


def test_planted_values_are_reported_without_the_password(
    acl_server: RedisServer, every_log: _Everything
) -> None:
    with acl_server.client() as admin:
        admin.set("argo_perf:v1:planted", b"\x80garbage")
        admin.hset("argo_perf:v1:hash", "a", "1")
        admin.set("argo_perf:ratelimit:{planted}", b"not a number")
        admin.set("argo_perf:breaker:vendor", b"\xff")
    url = user_url(acl_server)
    cache = RedisCache(url, **ROOMY, maxsize=0)
    assert cache.get("planted") is None
    assert cache.get_many(["hash", "planted"]) == {}
    signed = RedisCache(url, **ROOMY, serializer="pickle", signing_key=b"k" * 32, maxsize=0)
    assert signed.get("planted") is None
    bucket = RedisTokenBucket(url, "planted", 100.0, 5)
    bucket.try_acquire()
    shared = RedisBreakerState(url)
    shared.open_remaining("vendor")
    shown = [repr(cache), cache.stats, repr(bucket), bucket.stats, repr(shared)]
    assert cache.stats.decode_failures >= 1
    assert any("planted" in text for text in every_log.texts)
    assert_no_secret(*shown, *every_log.texts)
    for piece in (cache, signed, bucket, shared):
        piece.close()


def test_malformed_urls_with_a_password_fail_without_it(every_log: _Everything) -> None:
    for url in (
        f"redis://argo:{PASSWORD}@127.0.0.1:port/0",
        f"rediss://argo:{PASSWORD}@127.0.0.1:6379/0?ssl_cert_reqs=bogus&x",
        f"redis://127.0.0.1:6379/0?password={PASSWORD}&db=zz",
    ):
        for build in (
            RedisCache,
            AsyncRedisCache,
            lambda u: RedisTokenBucket(u, "k", 1.0, 1),
            lambda u: RateLimiter({"x": RateLimitConfig(1, 1)}, redis=u),
            RedisBreakerState,
        ):
            try:
                piece = build(url)
            except ConfigError as exc:
                assert_no_secret(str(exc), repr(exc), repr(exc.value), exc.parameter)
            else:
                assert_no_secret(repr(piece))
                closing = piece.close()
                if asyncio.iscoroutine(closing):
                    asyncio.run(closing)
    assert_no_secret(*every_log.texts)


# --- LiveConfig and metrics --------------------------------------------------------------


def test_live_config_errors_never_show_a_setting_that_may_be_a_key(
    tmp_path: Path, every_log: _Everything
) -> None:
    live = LiveConfig(
        RateLimiter({"xai": RateLimitConfig(1, 5)}),
        CircuitBreakerRegistry({"xai": CircuitBreakerConfig()}),
    )
    bad: list[dict[str, Any]] = [
        {"rate_limits": {"xai": {"requests_per_second": API_KEY}}},
        {"rate_limits": {"xai": {"api_key": API_KEY}}},
        {"rate_limits": {"xai": API_KEY}},
        {"breakers": {"xai": {"timeout": API_KEY}}},
        {"breakers": {"xai": {"failure_threshold": [API_KEY]}}},
        {"api_key": API_KEY},
        {"rate_limits": {"xai": {"quotas": [{"limit": API_KEY, "period": 1}]}}},
    ]
    for settings in bad:
        with pytest.raises(ConfigError) as info:
            live.apply(settings)
        assert_no_secret(str(info.value), repr(info.value), repr(info.value.value))
        path = tmp_path / "settings.json"
        path.write_text(json.dumps(settings))
        with pytest.raises(ConfigError) as info:
            live.load(path)
        assert_no_secret(str(info.value), repr(info.value))
    path.write_text('{"rate_limits": {"xai": {"requests_per_second": "' + API_KEY)  # not JSON
    with pytest.raises(ConfigError) as info:
        live.load(path)
    assert_no_secret(str(info.value), repr(info.value), *every_log.texts)


def test_metrics_of_pieces_on_a_password_url_show_no_password(acl_server: RedisServer) -> None:
    url = user_url(acl_server)
    metrics = PerformanceMetrics()
    cache = RedisCache(url, **ROOMY)
    bucket = RedisTokenBucket(url, "xai", 100.0, 5)
    cache.set("k", 1)
    bucket.try_acquire()
    metrics.track("xai", cache=cache, bucket=bucket)
    metrics.record_api_latency("xai", 0.1)
    assert_no_secret(metrics.exposition().decode(), metrics.get_summary(), repr(metrics))
    cache.close()
    bucket.close()


# --- TLS --------------------------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA and a server certificate for 127.0.0.1, made here with the openssl tool."""
    if shutil.which("openssl") is None:
        raise pytest.UsageError("openssl is required by the TLS tests (scripts/test installs it)")
    where = tmp_path_factory.mktemp("tls")
    curve = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=argo-perf test CA", cwd=where)  # fmt: skip
    _openssl("req", *curve, "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=127.0.0.1", cwd=where)  # fmt: skip
    (where / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.cnf",
             cwd=where)  # fmt: skip
    return where


class TLSRedisServer(RedisServer):
    """A redis-server that listens only for TLS (``--port 0``) on its port."""

    def __init__(self, certs: Path) -> None:
        super().__init__()
        self.ca = str(certs / "ca.crt")
        self.extra_args = [
            "--port", "0",
            "--tls-port", str(self.port),
            "--tls-cert-file", str(certs / "server.crt"),
            "--tls-key-file", str(certs / "server.key"),
            "--tls-ca-cert-file", self.ca,
            "--tls-auth-clients", "no",
            "--user", "argo", "on", f">{PASSWORD}", *ACL_RULE,
        ]  # fmt: skip

    def client(self, **kwargs: Any) -> redis.Redis:
        kwargs.setdefault("ssl", True)
        kwargs.setdefault("ssl_ca_certs", self.ca)
        return super().client(**kwargs)

    @property
    def tls_url(self) -> str:
        ca = quote(self.ca, safe="")
        return f"rediss://argo:{PASSWORD}@{self.host}:{self.port}/0?ssl_ca_certs={ca}"


@pytest.fixture(scope="module")
def tls_server(certificates: Path) -> Iterator[TLSRedisServer]:
    version = subprocess.run(
        [RedisServer().binary, "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert "v=" in version
    server = TLSRedisServer(certificates)
    server.start()  # fails with the server's own message when it was built without TLS
    try:
        yield server
    finally:
        server.close()


@pytest.mark.parametrize("piece", SYNC_PIECES)
def test_each_piece_works_over_tls_with_the_ca_in_the_url(
    tls_server: TLSRedisServer, every_log: _Everything, piece: str
) -> None:
    results = SYNC_PIECES[piece](tls_server.tls_url)
    assert reached_redis(results), results
    assert_no_secret(*results, *every_log.texts)


@pytest.mark.parametrize("piece", ASYNC_PIECES)
async def test_each_async_piece_works_over_tls(
    tls_server: TLSRedisServer, every_log: _Everything, piece: str
) -> None:
    results = await ASYNC_PIECES[piece](tls_server.tls_url)
    assert reached_redis(results), results
    assert_no_secret(*results, *every_log.texts)


def test_a_tls_client_passed_in_is_used_as_it_is(tls_server: TLSRedisServer) -> None:
    client = tls_server.client(username="argo", password=PASSWORD)
    assert reached_redis(exercise_cache(client))
    client.close()


def test_tls_without_the_ca_fails_verification_and_says_so(
    tls_server: TLSRedisServer, every_log: _Everything
) -> None:
    url = f"rediss://argo:{PASSWORD}@{tls_server.host}:{tls_server.port}/0"
    cache = RedisCache(url, **ROOMY)
    assert cache.set("k", 1) is False  # kept in the in-process tier only
    warnings = [r.getMessage() for r in every_log.records if r.levelno >= logging.WARNING]
    assert any("CERTIFICATE_VERIFY_FAILED" in w for w in warnings), warnings
    assert_no_secret(*every_log.texts, repr(cache))
    cache.close()


def test_plain_redis_to_a_tls_port_is_an_outage_not_a_hang(tls_server: TLSRedisServer) -> None:
    cache = RedisCache(f"redis://{tls_server.host}:{tls_server.port}/0", **ROOMY)
    assert cache.set("k", 1) is False
    assert asyncio.run(_async_get(f"redis://{tls_server.host}:{tls_server.port}/0")) is None
    cache.close()


async def _async_get(url: str) -> Any:
    cache = AsyncRedisCache(url, **ROOMY)
    try:
        return await cache.get("k")
    finally:
        await cache.close()
