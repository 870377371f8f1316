"""A Redis-backed `RateLimiter` shared by several OS processes: one limit for all of them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio

from argo_perf import (
    ConfigError,
    RateLimitConfig,
    RateLimiter,
    RateLimitExceeded,
    RedisTokenBucket,
)

ROOT = Path(__file__).resolve().parent.parent

RATE = 40.0
BURST = 10
HAMMER_SECONDS = 0.5

# Each worker builds its own RateLimiter on the URL, says it is ready, waits for
# "go" on stdin (so the processes hammer together), then takes what it can from
# "vendor" for a bounded time and reports its grants and its bucket's counters.
_WORKER = (
    textwrap.dedent(
        """
    import asyncio, json, sys, time
    from argo_perf import RateLimitConfig, RateLimiter, RateLimitExceeded

    url, mode, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    limiter = RateLimiter(
        {"vendor": RateLimitConfig(RATE, BURST), "other": RateLimitConfig(RATE, BURST)},
        redis=url,
    )
    limiter.get("vendor").available  # connected before the start
    print("ready", flush=True)
    sys.stdin.readline()
    stop = time.monotonic() + seconds
    granted = 0

    def left():
        return max(0.0, stop - time.monotonic())

    async def waiting():
        global granted
        while time.monotonic() < stop:
            try:
                await limiter.wait_for_permission("vendor", timeout=left())
            except RateLimitExceeded:
                continue
            granted += 1
        await limiter.aclose()

    if mode == "try":
        while time.monotonic() < stop:
            granted += limiter.try_acquire("vendor")
    elif mode == "wait_async":
        asyncio.run(waiting())
    else:
        while time.monotonic() < stop:
            try:
                limiter.wait_for_permission_sync("vendor", timeout=left())
            except RateLimitExceeded:
                continue
            granted += 1
    stats = limiter.stats["vendor"]
    print(json.dumps({
        "granted": granted,
        "errors": stats.errors,
        "fallback_calls": stats.fallback_calls,
        "other_available": limiter.get("other").available,
    }))
    limiter.close()
    """
    )
    .replace("RATE", repr(RATE))
    .replace("BURST", repr(BURST))
)


def redis_now(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


def _hammer(
    redis_url: str, client: redis.Redis, modes: list[str]
) -> tuple[int, float, list[dict[str, Any]]]:
    """Run one worker per mode together; their total grants and the Redis seconds it took."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, redis_url, mode, str(HAMMER_SECONDS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for mode in modes
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        start = redis_now(client)
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        reports = [json.loads(proc.communicate(timeout=60)[0]) for proc in procs]
        end = redis_now(client)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert all(proc.returncode == 0 for proc in procs)
    return sum(report["granted"] for report in reports), end - start, reports


@pytest.mark.parametrize(
    "modes",
    [["try", "try"], ["wait_async", "wait_sync"]],
    ids=["try_acquire", "waiting"],
)
def test_two_processes_sharing_a_redis_limiter_never_exceed_the_limit_together(
    redis_url: str, redis_client: redis.Redis, modes: list[str]
) -> None:
    total, elapsed, reports = _hammer(redis_url, redis_client, modes)
    # Every decision was Redis's: no error, no local fallback.
    assert all(r["errors"] == 0 and r["fallback_calls"] == 0 for r in reports)
    # The buckets run on Redis TIME, which bounds the run from outside: exact.
    assert total <= BURST + RATE * elapsed
    # And the two of them did use the limit (each its share of it, roughly).
    assert total >= 0.7 * (BURST + RATE * HAMMER_SECONDS)
    assert all(r["granted"] > 0 for r in reports)
    # A source nobody touched kept its whole burst.
    assert all(r["other_available"] == BURST for r in reports)


# -- changing limits: what each process sees ---------------------------------------------

SLOW = 0.001  # a token per 1000 s: nothing refills while a test runs


def test_a_reconfigure_applies_to_the_process_that_made_it_only(redis_url: str) -> None:
    configs = {"vendor": RateLimitConfig(SLOW, 10)}
    one = RateLimiter(configs, redis=redis_url)
    other = RateLimiter(configs, redis=redis_url)  # another process: its own link, same Redis
    assert all(one.try_acquire("vendor") for _ in range(3))
    one.reconfigure("vendor", RateLimitConfig(SLOW, 4))
    assert one.config("vendor").burst_size == 4
    assert other.config("vendor").burst_size == 10  # the config is not shared through Redis
    assert one.try_acquire("vendor")  # 4 spent: the new burst
    assert not one.try_acquire("vendor")
    # The other process still enforces the limit it was given, on the same shared state.
    assert [other.try_acquire("vendor") for _ in range(7)] == [True] * 6 + [False]
    other.reconfigure("vendor", RateLimitConfig(SLOW, 4))
    assert not other.try_acquire("vendor")
    assert not one.try_acquire("vendor")
    one.close()
    other.close()


def test_every_process_applying_one_reconfigure_rescales_the_shared_state_once(
    redis_url: str,
) -> None:
    configs = {"vendor": RateLimitConfig(SLOW, 10)}
    one = RateLimiter(configs, redis=redis_url)
    other = RateLimiter(configs, redis=redis_url)
    assert all(one.try_acquire("vendor") for _ in range(10))  # 10 000 s owed at the old rate
    faster = RateLimitConfig(2 * SLOW, 10)
    one.reconfigure("vendor", faster)
    other.reconfigure("vendor", faster)  # the same switch: the state is not halved again
    for limiter in (one, other):
        assert not limiter.try_acquire("vendor")
        # 5000 s owed at the new rate, all of the burst: the next token in 500 s
        # (rescaled twice, 2500 s would be owed and it would be granted now).
        assert limiter.get("vendor").wait_time() == pytest.approx(500, abs=1)
    one.close()
    other.close()


# -- the asyncio face reaches Redis as the sync one does ----------------------------------


async def test_a_penalty_from_the_asyncio_face_holds_back_every_process(redis_url: str) -> None:
    configs = {"vendor": RateLimitConfig(100, 10)}
    client = redis.asyncio.Redis.from_url(redis_url)
    one = RateLimiter(configs, redis=client)
    other = RateLimiter(configs, redis=redis_url)
    await one.penalize_async("vendor", 30)
    assert not other.try_acquire("vendor")
    assert other.get("vendor").wait_time() == pytest.approx(30, abs=1)
    with pytest.raises(RateLimitExceeded):
        await one.wait_for_permission("vendor", timeout=0)
    await client.aclose()
    other.close()


async def test_a_reconfigure_from_the_asyncio_face_rescales_the_shared_state(
    redis_url: str,
) -> None:
    configs = {"vendor": RateLimitConfig(SLOW, 10)}
    client = redis.asyncio.Redis.from_url(redis_url)
    one = RateLimiter(configs, redis=client)
    other = RateLimiter(configs, redis=redis_url)
    for _ in range(10):
        await one.wait_for_permission("vendor", timeout=0)
    faster = RateLimitConfig(2 * SLOW, 10)
    await one.reconfigure_async("vendor", faster)
    assert one.config("vendor") == faster
    other.reconfigure("vendor", faster)
    shared = one.get("vendor")
    assert isinstance(shared, RedisTokenBucket)
    for wait in (await shared.wait_time_async(), other.get("vendor").wait_time()):
        assert wait == pytest.approx(500, abs=1)  # rescaled once, as by the sync face
    await client.aclose()
    other.close()


async def test_the_asyncio_face_configures_and_penalizes_local_buckets_too() -> None:
    limiter = RateLimiter({"vendor": RateLimitConfig(SLOW, 2)})
    await limiter.configure_async("new", RateLimitConfig(SLOW, 1))
    assert limiter.try_acquire("new")
    await limiter.reconfigure_async("vendor", RateLimitConfig(SLOW, 1))
    assert limiter.config("vendor").burst_size == 1
    assert limiter.try_acquire("vendor")
    assert not limiter.try_acquire("vendor")
    await limiter.penalize_async("new", 30)
    assert limiter.get("new").wait_time() >= 30
    with pytest.raises(ConfigError, match="not configured"):
        await limiter.reconfigure_async("nobody", RateLimitConfig(1, 1))
