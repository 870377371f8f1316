"""What every Redis-backed piece gets from the shared plumbing: no secret in any
message, and a first failure to reach Redis that is logged at once.

The cache (both faces), RedisTokenBucket and the shared breaker state all build
their clients and their health gate through ``argo_perf._redis``; each is checked
here, so a piece that stops going through it is caught.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from argo_perf import AsyncRedisCache, ConfigError, RedisCache, RedisTokenBucket
from argo_perf.breaker import RedisBreakerState

SECRET = "zq9X#kv7W/lm3?rt5@yu8P"

Build = Callable[[str], Any]
PIECES: dict[str, Build] = {
    "RedisCache": lambda url: RedisCache(url),
    "AsyncRedisCache": lambda url: AsyncRedisCache(url),
    "RedisTokenBucket": lambda url: RedisTokenBucket(url, "k", 1.0, 1),
    "RedisBreakerState": lambda url: RedisBreakerState(url),
}


def dead_port() -> int:
    """A loopback port where nothing listens (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def all_log_text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)


@pytest.mark.parametrize("piece", PIECES)
@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{SECRET}@127.0.0.1:6379/0",
        f"redis://user:{SECRET}@127.0.0.1/0",
        f"redis://:{SECRET}@127.0.0.1:port/0",
        f"http://:{SECRET}@127.0.0.1",
        f"redis://127.0.0.1/0?password={SECRET}&db=zz",
    ],
)
def test_no_piece_shows_a_password_from_a_malformed_url(
    piece: str, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="argo_perf")
    try:
        obj = PIECES[piece](url)
    except ConfigError as exc:
        shown = [str(exc), repr(exc), repr(exc.value)]
    else:
        shown = [repr(obj), str(getattr(obj, "target", ""))]
        getattr(obj, "close", lambda: None)()
    for text in [*shown, all_log_text(caplog)]:
        for part in (SECRET, "zq9X", "kv7W", "lm3", "rt5", "yu8P"):
            assert part not in text, text


async def _one_async_call(piece: str, obj: Any) -> None:
    if piece == "AsyncRedisCache":
        assert await obj.get("k") is None
        await obj.close()
    elif piece == "RedisTokenBucket":
        assert await obj.acquire_async(timeout=0) is True  # the local fallback decides
        await obj.aclose()
    else:
        assert await obj.open_remaining_async("vendor") is None
        await obj.aclose()


def _one_sync_call(piece: str, obj: Any) -> None:
    if piece == "RedisCache":
        assert obj.get("k") is None
    elif piece == "RedisTokenBucket":
        assert obj.try_acquire() is True
    else:
        assert obj.open_remaining("vendor") is None
    obj.close()


CALLS: dict[str, tuple[str, Callable[[str, Any], Awaitable[None] | None]]] = {
    "RedisCache": ("RedisCache", _one_sync_call),
    "AsyncRedisCache": ("AsyncRedisCache", _one_async_call),
    "RedisTokenBucket sync": ("RedisTokenBucket", _one_sync_call),
    "RedisTokenBucket async": ("RedisTokenBucket", _one_async_call),
    "RedisBreakerState sync": ("RedisBreakerState", _one_sync_call),
    "RedisBreakerState async": ("RedisBreakerState", _one_async_call),
}


@pytest.mark.parametrize("case", CALLS)
async def test_a_single_call_to_a_dead_url_logs_one_warning_with_the_reason(
    case: str, caplog: pytest.LogCaptureFixture
) -> None:
    piece, call = CALLS[case]
    port = dead_port()
    url = f"redis://:s3cr%23t@127.0.0.1:{port}/0"  # a well-formed, percent-encoded password
    obj = PIECES[piece](url)
    assert "s3cr" not in repr(obj)
    assert "s3cr" not in str(getattr(obj, "target", ""))
    caplog.set_level(logging.DEBUG, logger="argo_perf")
    result = call(piece, obj)
    if result is not None:
        await result
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    message = warnings[0].getMessage()
    assert f"127.0.0.1:{port}" in message
    assert "Connection refused" in message or "111" in message
    text = all_log_text(caplog)
    assert "s3cr" not in text
