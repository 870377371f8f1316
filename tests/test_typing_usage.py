"""Code written the way users write it, from the docs, checked with ``mypy --strict``.

CI type-checks ``src``, never code that *uses* argo_perf, so a documented use
could fail to type-check for users while ``mypy --strict src`` stayed clean. Here
small user-style files, written from docs/*.md, the docstrings and examples/,
are checked together in one mypy run against this checkout's ``src`` (not an
installed copy), and ``typing_extensions.assert_type`` lines make mypy itself
verify what a user's checker infers (a value, not ``Any``, ``Never`` or an
``Awaitable`` where a coroutine is returned). The files are only type-checked:
they name Redis URLs and test servers that need not exist.

``CLEAN`` files must check without a single error. Each file of ``KNOWN`` holds
one place where the types and the documented usage disagree; its test is an
``xfail(strict=True)`` that says what mypy reports and what it should infer, and
it fails for real if mypy reports anything but that defect's symptoms. Once the
defect is fixed the test passes, which strict xfail reports as a failure: move
the file to ``CLEAN`` then. The files named ``docs_*`` are documented code whose
types are sound but which does not check as written (a missing annotation or
None check in the docs, or an API that could say more).
"""

from __future__ import annotations

import asyncio
import inspect
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import mypy.api
import pytest

from argo_perf import (
    Batcher,
    CircuitBreaker,
    RedisCache,
    VolatilityTracker,
    resilient,
)

SRC = Path(__file__).resolve().parents[1] / "src"

USE_RESILIENT = """\
# resilient, as docs/resilient.md, docs/getting-started.md and docs/recipes.md show it.

import asyncio
from typing import Literal

from tenacity import Retrying, stop_after_attempt, wait_exponential
from typing_extensions import assert_type

from argo_perf import (
    AdaptiveTTL,
    AsyncRedisCache,
    Batcher,
    CircuitBreaker,
    ManualClock,
    PerformanceMetrics,
    PriorityScheduler,
    RateLimiter,
    RedisCache,
    ResilientResult,
    ScheduleReport,
    TokenBucket,
    resilient,
)

Outcome = Literal["ok", "error", "rejected", "rate_limited", "cached", "stale", "fallback"]


async def last_close(symbol: str) -> float:
    return 229.0


@resilient(
    "massive",
    cache=AsyncRedisCache(),
    ttl=AdaptiveTTL().ttl_for,
    limiter=RateLimiter(),
    breaker=CircuitBreaker("massive"),
    retry=Retrying(stop=stop_after_attempt(3), wait=wait_exponential(max=2)),
    timeout=2.0,
    fallback=last_close,
    metrics=PerformanceMetrics(),
)
async def price(symbol: str) -> float:
    return 231.5


async def use_price() -> None:
    value = await price("AAPL")
    assert_type(value, float)
    result = await price.with_meta("AAPL")
    assert_type(result, ResilientResult[float])
    assert_type(result.value, float)
    assert_type(result.outcome, Outcome)
    assert_type(result.stale, bool)
    assert_type(result.age, float | None)
    if result.stale and result.age is not None:
        print(f"AAPL is {result.age:.0f} s old")
    prices = await asyncio.gather(*(price("AAPL") for _ in range(50)))
    assert_type(prices, list[float])
    task = asyncio.create_task(price("MSFT"))
    assert_type(await task, float)
    assert_type(await asyncio.wait_for(price("NVDA"), timeout=1.0), float)


assert_type(asyncio.run(price("AAPL")), float)
assert_type(asyncio.run(price.with_meta("AAPL")), ResilientResult[float])


@resilient(
    "alpha_vantage",
    cache=RedisCache(),
    ttl=60.0,
    limiter=TokenBucket(0.2, 5),
    breaker=CircuitBreaker("alpha_vantage"),
    retry=3,
)
def fundamentals(symbol: str) -> dict[str, float]:
    return {"pe": 31.0}


assert_type(fundamentals("AAPL"), dict[str, float])
assert_type(fundamentals(symbol="AAPL"), dict[str, float])
assert_type(fundamentals.with_meta("AAPL"), ResilientResult[dict[str, float]])
assert_type(fundamentals.with_meta("AAPL").outcome, Outcome)


@resilient("massive", cache=RedisCache(), ttl=10.0)
def quote(symbol: str, venue: str = "XNYS") -> float:
    return 231.5


assert_type(quote("AAPL"), float)
assert_type(quote("AAPL", venue="XNAS"), float)
assert_type(quote.with_meta("AAPL", "XNAS").value, float)

cache = RedisCache()


class Vendor:
    def __init__(self, venue: str) -> None:
        self.venue = venue

    @resilient(
        "massive",
        cache=cache,
        ttl=10.0,
        key=lambda self, symbol: f"{self.venue}:{symbol}",
        retry=3,
    )
    def quote(self, symbol: str) -> float:
        return 231.5

    @resilient("xai", retry=2)
    async def sentiment(self, symbol: str) -> float:
        return 0.7


vendor = Vendor("XNYS")
assert_type(vendor.quote("AAPL"), float)
assert_type(vendor.quote.with_meta("AAPL"), ResilientResult[float])
assert_type(Vendor("XNYS").quote.with_meta("AAPL").outcome, Outcome)
assert_type(Vendor.quote(vendor, "AAPL"), float)


async def use_vendor() -> None:
    assert_type(await vendor.sentiment("AAPL"), float)
    assert_type(await vendor.sentiment.with_meta("AAPL"), ResilientResult[float])
    assert_type(await Vendor.sentiment(vendor, "AAPL"), float)


clock = ManualClock(autoadvance=True)


@resilient(
    "xai",
    limiter=TokenBucket(1, 1, clock=clock),
    breaker=CircuitBreaker("xai", clock=clock),
    retry=3,
    max_wait=60.0,
    clock=clock,
)
def sentiment(symbol: str) -> float:
    return 0.7


assert_type(sentiment("AAPL"), float)


# docs/resilient.md, "Metrics": any object with the Recorder protocol's two methods.
class LogRecorder:
    def record_request(self, source: str, outcome: str, seconds: float | None = None) -> None:
        print(source, outcome, seconds)

    def track(
        self, source: str, *, cache: object = None, bucket: object = None, breaker: object = None
    ) -> None:
        print(source, cache, bucket, breaker)


@resilient("sonar", metrics=LogRecorder())
def reading(symbol: str) -> float:
    return 0.4


assert_type(reading("AAPL"), float)


# docs/service.md: a batcher's load_async, decorated after the fact.
async def fetch_quotes(symbols: list[str]) -> dict[str, float]:
    return dict.fromkeys(symbols, 231.5)


batcher = Batcher(fetch_quotes)
batched_price = resilient("massive", cache=AsyncRedisCache(), key=lambda s: s)(batcher.load_async)


async def use_batched() -> None:
    assert_type(await batched_price("AAPL"), float)
    assert_type((await batched_price.with_meta("AAPL")).value, float)


# A decorated function is an async function of one symbol: PriorityScheduler.run takes it.
async def cycle(symbols: list[str]) -> None:
    report = await PriorityScheduler().run(symbols, price, concurrency=8, deadline=4.0)
    assert_type(report, ScheduleReport[float])

"""


USE_CACHE = """\
# RedisCache, AsyncRedisCache and cached, as docs/cache.md and README.md show them.

import asyncio
from collections.abc import Coroutine
from typing import Any, Literal

from typing_extensions import assert_type

from argo_perf import (
    AdaptiveTTL,
    AsyncRedisCache,
    CacheConfig,
    CachedValue,
    CacheStats,
    RedisCache,
    cached,
    get_redis_cache,
)
from argo_perf.cache import USE_DEFAULT

adaptive = AdaptiveTTL()
cache = RedisCache("redis://localhost:6379/0", namespace="signals", default_ttl=10.0)
assert_type(cache.set("AAPL", {"price": 231.5}), bool)
assert_type(cache.set("AAPL", 231.5, ttl=10), bool)
assert_type(cache.set("AAPL", 231.5, ttl=None), bool)
assert_type(cache.set("AAPL", 231.5, ttl=USE_DEFAULT), bool)
assert_type(cache.set("AAPL", 231.5, ttl=adaptive.ttl_for), bool)
assert_type(cache.set("AAPL", 231.5, ttl=adaptive), bool)
assert_type(cache.get("AAPL"), Any)
assert_type(cache.get("AAPL", 0.0), Any)
assert_type(cache.get_many(["AAPL", "MSFT"]), dict[str, Any])
assert_type(cache.set_many({"MSFT": 410.0, "NVDA": 140.0}), bool)
assert_type(cache.delete("AAPL"), bool)
assert_type(cache.clear("price:"), int)
assert_type(cache.get_or_set("price:AAPL", lambda: 231.5, ttl=20.0), float)


def fetch_fundamentals() -> dict[str, float]:
    return {"pe": 31.0}


assert_type(cache.get_or_set("fundamentals:AAPL", fetch_fundamentals), dict[str, float])
meta = cache.get_with_meta("AAPL")
assert_type(meta, CachedValue | None)
if meta is not None:
    assert_type(meta.age, float)
    assert_type(meta.stale, bool)
    assert_type(meta.source, Literal["memory", "redis", "loader"])
    print(meta.value, meta.age, meta.source, meta.stale)
assert_type(cache.stats, CacheStats)
assert_type(cache.stats.hits, int)
assert_type(cache.stats.redis_errors, int)
assert_type(cache.config, CacheConfig)
assert_type(cache.backend, str)
assert_type(cache.redis_key("AAPL"), str)
assert_type(get_redis_cache(), RedisCache)
RedisCache("redis://localhost:6379/0", default_ttl=adaptive.ttl_for)
RedisCache("redis://localhost:6379/0", namespace="signals", coherent=True)
RedisCache(serializer="pickle", signing_key=b"secret")
with RedisCache() as scoped:
    assert_type(scoped, RedisCache)


@cached(cache, ttl=10.0, key=lambda symbol: f"price:{symbol}")
def price(symbol: str) -> float:
    return 231.5


assert_type(price("AAPL"), float)
assert_type(price(symbol="AAPL"), float)


@cached(cache, ttl=adaptive.ttl_for)
def adaptive_price(symbol: str) -> float:
    return 231.5


assert_type(adaptive_price("AAPL"), float)


@cached(cache)
def quote(symbol: str, venue: str = "XNYS") -> float:
    return 231.5


assert_type(quote("AAPL", venue="XNAS"), float)


class Vendor:
    region = "us"

    @cached(
        cache,
        key=lambda self, symbol: f"{self.region}:{symbol}",
        ttl=lambda self, symbol: adaptive.ttl_for(symbol),
    )
    def price(self, symbol: str) -> float:
        return 231.5

    @cached(cache, ttl=None, key=lambda self: "fx")
    def fx(self) -> dict[str, float]:
        return {"EURUSD": 1.1}


assert_type(Vendor().price("AAPL"), float)
assert_type(Vendor().fx(), dict[str, float])

acache = AsyncRedisCache("redis://localhost:6379/0")


@cached(acache, ttl=30.0, key=lambda symbol: f"sentiment:{symbol}")
async def sentiment(symbol: str) -> float:
    return 0.7


pending = sentiment("AAPL")
_ = assert_type(pending, Coroutine[Any, Any, float])
pending.close()
assert_type(asyncio.run(sentiment("AAPL")), float)


class AsyncVendor:
    region = "us"

    @cached(acache, key=lambda self, symbol: f"{self.region}:{symbol}")
    async def price(self, symbol: str) -> float:
        return 231.5


async def fetch_price() -> float:
    return 231.5


def parse(raw: str) -> dict[str, float]:
    return {"price": float(raw)}


async def use_async_cache() -> None:
    assert_type(await sentiment("AAPL"), float)
    assert_type(await AsyncVendor().price("AAPL"), float)
    assert_type(await acache.set("AAPL", 231.5), bool)
    assert_type(await acache.set("AAPL", 231.5, ttl=adaptive.ttl_for), bool)
    assert_type(await acache.get("AAPL"), Any)
    assert_type(await acache.get_many(["AAPL", "MSFT"]), dict[str, Any])
    assert_type(await acache.set_many({"MSFT": 410.0}, ttl=10.0), bool)
    assert_type(await acache.delete("AAPL"), bool)
    assert_type(await acache.clear(), int)
    assert_type(await acache.get_or_set("k", fetch_price), float)
    assert_type(await acache.get_or_set("k", fetch_price, ttl=10), float)
    assert_type(await acache.get_or_set("k", lambda: fetch_price()), float)
    assert_type(await acache.get_or_set("k", lambda: parse("231.5")), dict[str, float])
    assert_type(await acache.get_with_meta("AAPL"), CachedValue | None)
    assert_type(acache.stats, CacheStats)
    async with AsyncRedisCache() as scoped_async:
        assert_type(scoped_async, AsyncRedisCache)
    await acache.close()
"""


USE_BREAKER = """\
# CircuitBreaker and CircuitBreakerRegistry, as docs/breaker.md shows them.

import asyncio
from collections.abc import AsyncIterator, Iterator

from tenacity import retry, stop_after_attempt, wait_exponential
from typing_extensions import assert_type

from argo_perf import (
    BreakerStats,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerRegistry,
    CircuitOpenError,
    CircuitState,
    ManualClock,
)
from argo_perf.breaker import (
    FailureRate,
    Permit,
    SlowCallRate,
    Transition,
    backoff,
    retry_unless_circuit_open,
    wait_retry_after,
)


class VendorError(Exception):
    pass


def on_transition(t: Transition) -> None:
    print(t.name, t.old.value, t.new.value, t.reason, t.open_for)


config = CircuitBreakerConfig(
    failure_threshold=5,
    trip=FailureRate(0.5, last_calls=50, minimum_calls=20)
    | SlowCallRate(0.8, slow_call_duration=2.0, window=60.0, buckets=12),
    timeout=backoff(initial=5.0, maximum=300.0, jitter=0.2),
    failure_types=(TimeoutError, ConnectionError, VendorError),
    failure_if_result=lambda payload: "error" in payload,
)
clock = ManualClock()
breaker = CircuitBreaker("massive", config, clock=clock, listeners=[on_transition])
breaker.add_listener(on_transition)

# call: the result type of fn, its arguments checked.
for _ in range(5):
    try:
        breaker.call(lambda: 1 / 0)
    except ZeroDivisionError:
        pass
assert_type(breaker.call(lambda: 1), int)
assert_type(breaker.call(len, "abc"), int)


def fetch_price(symbol: str, venue: str = "XNYS") -> float:
    return 231.5


assert_type(breaker.call(fetch_price, "AAPL"), float)
assert_type(breaker.call(fetch_price, "AAPL", venue="XNAS"), float)


async def fetch_quote(symbol: str) -> dict[str, float]:
    return {"price": 1.0}


async def use_call_async() -> None:
    assert_type(await breaker.call_async(fetch_quote, "AAPL"), dict[str, float])
    results = await asyncio.gather(*(breaker.call_async(fetch_quote, s) for s in ("AAPL", "MSFT")))
    assert_type(results, list[dict[str, float]])


# The decorator, on sync and async functions, generators and methods.
@breaker
def decorated_price(symbol: str) -> float:
    return 101.5


@breaker
async def decorated_quote(symbol: str) -> dict[str, float]:
    return {"price": 1.0}


@breaker
def ticks(symbol: str) -> Iterator[float]:
    yield 231.5


@breaker
async def stream(symbol: str) -> AsyncIterator[float]:
    yield 231.5


class Vendor:
    @breaker
    def price(self, symbol: str) -> float:
        return 231.5

    @breaker
    async def quote(self, symbol: str) -> float:
        return 231.5


assert_type(decorated_price("AAPL"), float)
assert_type(asyncio.run(decorated_quote("AAPL")), dict[str, float])
assert_type(ticks("AAPL"), Iterator[float])
assert_type(stream("AAPL"), AsyncIterator[float])
assert_type(Vendor().price("AAPL"), float)
for tick in ticks("AAPL"):
    assert_type(tick, float)


async def use_decorated() -> None:
    assert_type(await decorated_quote("AAPL"), dict[str, float])
    assert_type(await Vendor().quote("AAPL"), float)
    async for tick in stream("AAPL"):
        assert_type(tick, float)


# with / async with: the block is the call.
with breaker as entered:
    assert_type(entered, CircuitBreaker)


async def use_async_with() -> None:
    async with breaker as entered_async:
        assert_type(entered_async, CircuitBreaker)


# The permit API.
def consume_stream() -> None: ...


permit = breaker.try_acquire()
assert_type(permit, Permit | None)
if permit is None:
    pass
else:
    try:
        consume_stream()
    except Exception as exc:
        permit.on_failure(exc)
    else:
        permit.on_success()
    permit.on_result({"price": 1.0})
    permit.release()

# State and stats.
assert_type(breaker.state, CircuitState)
print(breaker.state.value)
stats = breaker.stats
assert_type(stats, BreakerStats)
assert_type(stats.state, str)
assert_type(stats.failures, int)
assert_type(stats.failure_rate, float)
assert_type(stats.slow_call_rate, float | None)
assert_type(stats.retry_after, float)
assert_type(breaker.name, str)
breaker.force_open()
breaker.disable()
breaker.reset()
breaker.reconfigure(CircuitBreakerConfig(failure_threshold=3))
try:
    breaker.call(fetch_price, "AAPL")
except CircuitOpenError as err:
    assert_type(err.retry_after, float)


# tenacity around the breaker (docs/breaker.md, "With tenacity").
massive = CircuitBreaker("massive")


@retry(
    retry=retry_unless_circuit_open(),
    wait=wait_retry_after(wait_exponential(max=10), maximum=30.0),
    stop=stop_after_attempt(4),
    reraise=True,
)
@massive
def retried_price(symbol: str) -> float:
    return 231.5


assert_type(retried_price("AAPL"), float)

# The registry.
breakers = CircuitBreakerRegistry({"xai": CircuitBreakerConfig(failure_threshold=3)})


def ask_model(prompt: str) -> str:
    return "BUY"


assert_type(breakers["xai"], CircuitBreaker)
assert_type(breakers.get("xai"), CircuitBreaker)
assert_type(breakers["xai"].call(ask_model, "AAPL?"), str)
breakers.configure("massive", CircuitBreakerConfig(failure_threshold=10))
breakers.reconfigure("massive", CircuitBreakerConfig(failure_threshold=8))
assert_type(breakers.config("massive"), CircuitBreakerConfig)
assert_type(breakers.names(), list[str])
assert_type("xai" in breakers, bool)
assert_type(len(breakers), int)
for name in breakers:
    assert_type(name, str)
assert_type(breakers.stats, dict[str, BreakerStats])
CircuitBreakerRegistry(default=None, clock=clock, listeners=[on_transition])


@breakers["massive"]
def registry_price(symbol: str) -> float:
    return 230.0


assert_type(registry_price("AAPL"), float)

"""


USE_RATELIMIT = """\
# TokenBucket, RedisTokenBucket and RateLimiter, as docs/ratelimit.md and recipes.md show them.

from typing_extensions import assert_type

from argo_perf import (
    BucketStats,
    ManualClock,
    Quota,
    RateLimitConfig,
    RateLimiter,
    RateLimitExceeded,
    RedisBucketStats,
    RedisTokenBucket,
    TokenBucket,
    get_rate_limiter,
)

bucket = TokenBucket(rate=5, burst=10)
assert_type(bucket.try_acquire(), bool)
assert_type(bucket.try_acquire(2), bool)
assert_type(bucket.acquire(timeout=2.0), bool)
assert_type(bucket.acquire(), bool)
assert_type(bucket.wait_time(), float)
assert_type(bucket.available, float)
assert_type(bucket.stats, BucketStats)
assert_type(bucket.stats.granted, int)
bucket.penalize(retry_after=30)
bucket.reconfigure(rate=10, burst=20)
TokenBucket(5, 5, quotas=[Quota(25, 86_400)])


async def use_bucket() -> None:
    assert_type(await bucket.acquire_async(3), bool)
    assert_type(await bucket.acquire_async(timeout=1.0), bool)


shared = RedisTokenBucket("redis://cache:6379/0", "vendor:massive", rate=5, burst=10)
if shared.try_acquire():
    pass
assert_type(shared.try_acquire(), bool)
assert_type(shared.acquire(timeout=2.0), bool)
assert_type(shared.wait_time(), float)
assert_type(shared.available, float)
assert_type(shared.stats, RedisBucketStats)
assert_type(shared.backend, str)
shared.penalize(30)
shared.reconfigure(10, 20)
RedisTokenBucket("redis+sentinel://s1:26379,s2:26379/ratelimits/0", "vendor:massive", 5, 10)
with RedisTokenBucket("redis://cache:6379/0", "vendor:xai", 1, 5) as scoped:
    assert_type(scoped, RedisTokenBucket)
shared.close()


async def use_shared() -> None:
    assert_type(await shared.acquire_async(timeout=1.0), bool)
    assert_type(await shared.wait_time_async(), float)
    assert_type(await shared.available_async(), float)
    await shared.penalize_async(30)
    await shared.reconfigure_async(10, 20)
    async with RedisTokenBucket("redis://cache:6379/0", "vendor:sonar", 1, 5) as scoped_async:
        assert_type(scoped_async, RedisTokenBucket)
    await shared.aclose()


limiter = RateLimiter()
assert_type(limiter.try_acquire("xai"), bool)
limiter.penalize("alpha_vantage", retry_after=60)
limiter.reconfigure("sonar", RateLimitConfig(2, 10))
limiter.configure("new_vendor", {"requests_per_second": 1, "burst_size": 1})
limiter.wait_for_permission_sync("massive", timeout=2.0)
assert_type(limiter.get("massive"), TokenBucket | RedisTokenBucket)
assert_type(limiter.names(), list[str])
assert_type(limiter.stats, dict[str, BucketStats])
assert_type(limiter.config("massive"), RateLimitConfig)
assert_type("massive" in limiter, bool)
assert_type(get_rate_limiter(), RateLimiter)

configured = RateLimiter(
    {
        "massive": {"requests_per_second": 5, "burst_size": 10},
        "alpha_vantage": {
            "requests_per_second": 5,
            "burst_size": 5,
            "quotas": [{"limit": 25, "period": 86400}],
        },
    },
    default={"requests_per_second": 1, "burst_size": 1},
)
LIMITS = {"massive": {"requests_per_second": 5, "burst_size": 10}}
RateLimiter(LIMITS, redis="redis://localhost:6379/0")
clock = ManualClock()
RateLimiter({"alpha_vantage": RateLimitConfig(5 / 60, 5, quotas=(Quota(5, 21_600),))}, clock=clock)


async def use_limiter() -> None:
    try:
        await limiter.wait_for_permission("massive", timeout=2.0)
    except RateLimitExceeded as exc:
        assert_type(exc.retry_after, float | None)
    await limiter.penalize_async("massive", 30.0)
    await limiter.reconfigure_async("sonar", RateLimitConfig(2, 10))
    await limiter.aclose()


# docs/ratelimit.md, "Testing code that waits".
auto = ManualClock(autoadvance=True)
tested = TokenBucket(10, 1, clock=auto)
for _ in range(20):
    tested.acquire()
assert round(auto.monotonic(), 6) == 1.9
"""


USE_BATCH_SCHEDULER = """\
# Batcher and PriorityScheduler, as docs/batch.md and docs/scheduler.md show them.

import asyncio

from typing_extensions import assert_type

from argo_perf import (
    AsyncRedisCache,
    Batcher,
    BatcherStats,
    CircuitBreaker,
    ManualClock,
    PriorityScheduler,
    RateLimiter,
    ScheduleReport,
    SchedulerStats,
    SymbolResult,
    SymbolStatus,
    VolatilityTracker,
)


async def fetch_quotes(symbols: list[str]) -> dict[str, float]:
    return {s: 100.0 for s in symbols}


quotes = Batcher(fetch_quotes, max_size=50, window=0.005)
assert_type(quotes, Batcher[str, float])


async def price(symbol: str) -> float:
    return await quotes.load_async(symbol)


async def use_batcher(symbols: list[str]) -> None:
    prices = await asyncio.gather(*(price(s) for s in symbols))
    assert_type(prices, list[float])
    assert_type(await quotes.load_async("AAPL"), float)


def fetch_quotes_sync(symbols: list[str]) -> dict[str, float]:
    return {s: 100.0 for s in symbols}


sync_quotes = Batcher(fetch_quotes_sync)
assert_type(sync_quotes, Batcher[str, float])
assert_type(sync_quotes.load("AAPL"), float)
stats = sync_quotes.stats
assert_type(stats, BatcherStats)
print(stats.keys_fetched / max(stats.batches, 1))

# Composing: a cache in front, the limiter and breaker inside the batch function.
cache = AsyncRedisCache()
limiter = RateLimiter()
breaker = CircuitBreaker("massive")


async def vendor_quotes(symbols: list[str]) -> dict[str, float]:
    return {s: 100.0 for s in symbols}


async def guarded_quotes(symbols: list[str]) -> dict[str, float]:
    await limiter.wait_for_permission("massive")
    return await breaker.call_async(vendor_quotes, symbols)


guarded = Batcher(guarded_quotes, max_size=50)


async def cached_price(symbol: str) -> float:
    return await cache.get_or_set(symbol, lambda: guarded.load_async(symbol), ttl=10)


async def virtual_time() -> None:
    clock = ManualClock()
    timed = Batcher(fetch_quotes, window=0.01, clock=clock)
    tasks = [asyncio.ensure_future(timed.load_async(s)) for s in ("AAPL", "MSFT")]
    while clock.sleepers == 0:
        await asyncio.sleep(0)
    clock.advance(0.01)
    assert_type(await asyncio.gather(*tasks), list[float])


# PriorityScheduler.
tracker = VolatilityTracker()
scheduler = PriorityScheduler(tracker, max_skips=3)


def publish(symbol: str, value: float) -> None: ...


async def refresh(symbol: str) -> float:
    value = 231.5
    tracker.observe(symbol, value)
    return value


async def cycle(symbols: list[str]) -> None:
    report = await scheduler.run(symbols, refresh, concurrency=8, deadline=4.0)
    assert_type(report, ScheduleReport[float])
    for symbol, result in report.items():
        assert_type(result, SymbolResult[float])
        if result.ok and result.value is not None:
            publish(symbol, result.value)
        elif result.error is not None:
            assert_type(result.error, BaseException)
    assert_type(report["AAPL"].status, SymbolStatus)
    assert_type(report.done, tuple[str, ...])
    assert_type(report.not_started, tuple[str, ...])
    assert_type(report.deadline_reached, bool)
    assert_type(report.elapsed, float)
    prices = {s: r.value for s, r in report.items() if r.ok}
    assert_type(prices, dict[str, float | None])


assert_type(scheduler.order(["AAPL", "MSFT", "AAPL"]), list[str])
assert_type(scheduler.skips("AAPL"), int)
assert_type(scheduler.stats, SchedulerStats)

clock = ManualClock()
virtual = PriorityScheduler(clock=clock)


async def slow(symbol: str) -> str:
    await clock.sleep_async(10)
    return symbol


async def main() -> None:
    run = asyncio.ensure_future(virtual.run(["AAPL", "MSFT"], slow, deadline=2))
    await asyncio.sleep(0)
    clock.advance(2)
    report = await run
    assert_type(report, ScheduleReport[str])
    assert report.cancelled == ("AAPL", "MSFT")
"""


USE_MARKET_METRICS = """\
# AdaptiveTTL, ChangeGate, VolatilityTracker, PerformanceMetrics, LiveConfig and the clocks.

import random
from datetime import date, datetime, timezone
from functools import partial
from pathlib import Path

from typing_extensions import assert_type

from argo_perf import (
    CRYPTO,
    NYSE,
    AdaptiveTTL,
    AdaptiveTTLConfig,
    ChangeGate,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerRegistry,
    ConfigChange,
    ConfigWatcher,
    LiveConfig,
    ManualClock,
    MarketSession,
    NYSECalendar,
    PerformanceMetrics,
    PerformanceSummary,
    RateLimitConfig,
    RateLimiter,
    RedisCache,
    SystemClock,
    TokenBucket,
    VolatilityTracker,
    get_performance_metrics,
    is_crypto,
)
from argo_perf.clock import Clock

# Market time (docs/market.md).
now = datetime(2026, 11, 27, 18, 30, tzinfo=timezone.utc)
assert_type(NYSE.is_open(now), bool)
assert_type(NYSE.session_at(now), MarketSession)
assert_type(NYSE.next_open(now), datetime)
assert_type(NYSE.session_hours(date(2026, 11, 27)), tuple[datetime, datetime] | None)
assert_type(NYSE.seconds_until_open(now), float)
assert_type(CRYPTO.is_open(now), bool)
assert_type(is_crypto("BTC-USD"), bool)
my_rule = partial(is_crypto, symbols={"hype"}, bases={"HYPE", "BTC"})
extended = NYSECalendar(extended_hours=True)

# VolatilityTracker.
vol = VolatilityTracker(is_crypto=my_rule)
assert_type(vol.observe("AAPL", 230.10), float)
vol.observe("AAPL", 230.55, ts=now)
assert_type(vol.volatility("AAPL"), float)
assert_type(vol.is_high("AAPL"), bool)
assert_type(vol.symbols(), list[str])

# AdaptiveTTL.
ttl = AdaptiveTTL(AdaptiveTTLConfig(jitter=0.1), volatility=vol)
assert_type(ttl.ttl_for("AAPL"), float)
assert_type(ttl.ttl_for("AAPL", now=now), float)
assert_type(ttl("AAPL"), float)
assert_type(ttl.should_refresh("AAPL", 231.5), bool)
ttl.reconfigure(AdaptiveTTLConfig(open_jitter=0.0))
AdaptiveTTL(calendar=extended, is_crypto=my_rule, volatility=vol.is_high)
AdaptiveTTL(rng=random.Random(42).random)
cache = RedisCache()
cache.set("AAPL", 231.5, ttl=ttl.ttl_for)


# ChangeGate, annotated as examples/market_time.py does.
class Signal:
    pass


gate: ChangeGate[Signal] = ChangeGate(threshold=0.005, max_age=300.0)


def generate_signal(symbol: str, price: float) -> Signal:
    return Signal()


def signal(symbol: str, price: float) -> Signal | None:
    if not gate.changed(symbol, price):
        return gate.cached(symbol)
    value = generate_signal(symbol, price)
    gate.remember(symbol, price, value)
    return value


assert_type(gate.cached("AAPL"), Signal | None)
assert_type(gate.cached("AAPL", Signal()), Signal)
assert_type(gate.price("AAPL"), float | None)
assert_type(gate.skip_rate, float)
assert_type(gate.checks, int)
assert_type(gate.skips, int)

# PerformanceMetrics (docs/metrics.md).
metrics = get_performance_metrics()
assert_type(metrics, PerformanceMetrics)
metrics.record_signal_generation_time(0.25)
metrics.record_symbol_processed()
metrics.record_skipped_symbol()
metrics.record_cache_hit()
metrics.record_cache_miss()
metrics.record_api_latency("massive", 0.12)
metrics.record_error("alpha_vantage")
metrics.record_request("massive", "ok", 0.12)
metrics.record_request("massive", "rate_limited")
summary = metrics.get_summary()
assert_type(summary, PerformanceSummary)
assert_type(summary["cache_hit_rate"], float)
assert_type(summary["total_cache_hits"], int)
assert_type(summary["data_source_latencies"], dict[str, float])
assert_type(metrics.exposition(), bytes)

tracked = PerformanceMetrics(symbol_labels=50, clock=SystemClock())
tracked.record_signal_generation_time(0.3, symbol="AAPL")
tracked.track(
    "massive",
    cache=RedisCache("redis://localhost:6379/0"),
    bucket=TokenBucket(rate=5, burst=10),
    breaker=CircuitBreaker("massive"),
)

# LiveConfig (docs/reload.md).
limiter = RateLimiter()
breakers = CircuitBreakerRegistry()
live = LiveConfig(limiter, breakers, ttl)
changes = live.apply({"rate_limits": {"xai": {"requests_per_second": 2}}})
assert_type(changes, list[ConfigChange])
for change in changes:
    assert_type(change.setting, str)
    print(str(change))
live.apply(
    {
        "rate_limits": {"xai": RateLimitConfig(2, 5)},
        "breakers": {"alpha_vantage": CircuitBreakerConfig(failure_threshold=3)},
        "ttl": AdaptiveTTLConfig(stock_ttl=15.0),
    }
)
assert_type(live.validate({"ttl": {"stock_ttl": 15.0}}), list[ConfigChange])
assert_type(live.load(Path("live.json")), list[ConfigChange])
with live.watch("/etc/signals/live.toml", interval=10.0) as watching:
    assert_type(watching, ConfigWatcher)
watcher = live.watch("live.json", interval=5.0)
assert_type(watcher.check(), list[ConfigChange])
print(watcher.last_error)
watcher.close()


async def serve() -> None: ...


async def watch_async() -> None:
    async with await live.watch_async("live.toml", interval=5.0) as watching_async:
        assert_type(watching_async, ConfigWatcher)
        assert_type(await watching_async.check_async(), list[ConfigChange])
        await serve()


# Clocks (docs/clock.md).
clock = ManualClock()
clock.advance(5.0)
assert_type(clock.monotonic(), float)
assert_type(clock.now(), datetime)
assert_type(clock.sleepers, int)
clock.set(datetime(2026, 1, 5, 14, 30, tzinfo=timezone.utc))
auto = ManualClock(datetime(2026, 1, 6, 15, 0, tzinfo=timezone.utc), autoadvance=True)
auto.sleep(1.0)
any_clock: Clock = auto
system_clock: Clock = SystemClock()


async def sleeps() -> None:
    await auto.sleep_async(1.0)
    await any_clock.sleep_async(1.0)
"""


USE_TESTING = """\
# argo_perf.testing, as docs/testing.md shows it (type-checked only: it needs redis-server).

import redis
import redis.cluster
from typing_extensions import assert_type

from argo_perf import RedisCache, RedisTokenBucket
from argo_perf.testing import (
    ManualClock,
    RedisCluster,
    RedisSentinelGroup,
    RedisServer,
    RedisServerError,
    TcpProxy,
    find_redis_server,
    join_redis_probes,
    join_redis_probes_async,
)

with RedisServer() as server:
    client = server.client()
    assert_type(client, redis.Redis)
    server.pause()
    server.resume()
    server.kill()
    server.restart()
    assert_type(server.url, str)
    assert_type(server.port, int)
    assert_type(server.pid, int | None)
    RedisCache(client)

with RedisServer() as server, TcpProxy(server.host, server.port) as proxy:
    assert_type(proxy, TcpProxy)
    cache = RedisCache(proxy.url)
    proxy.delay(0.2)
    proxy.drop()
    proxy.cut()
    proxy.heal()

clock = ManualClock()
bucket = RedisTokenBucket("redis://localhost:6379/0", "vendor:massive", 5, 10, clock=clock)
clock.advance(1.0)
bucket.try_acquire()
join_redis_probes()
assert bucket.backend == "redis"


async def probes() -> None:
    await join_redis_probes_async()


with RedisCluster() as cluster:
    assert_type(cluster, RedisCluster)
    cluster_cache = RedisCache(cluster.url)
    node = cluster.node_for(cluster_cache.redis_key("AAPL"))
    assert_type(node, RedisServer)
    node.kill()
    cluster.revive(node)
    cluster.flush()
    assert_type(cluster.client(), redis.cluster.RedisCluster)
    RedisCache(cluster.client())

with RedisSentinelGroup() as group:
    sentinel_cache = RedisCache(group.url)
    old = group.master()
    old.kill()
    new = group.promoted(old)
    assert_type(new, RedisServer)
    group.heal()

try:
    assert_type(find_redis_server(), str)
except RedisServerError as exc:
    print(exc)
"""


DEFECT_CALL_ASYNC_COROUTINE = """\
# CircuitBreaker.call_async returns a coroutine (it is an async def).

import asyncio
from collections.abc import Coroutine
from typing import Any

from typing_extensions import assert_type

from argo_perf import CircuitBreaker

breaker = CircuitBreaker("massive")


async def fetch_quote(symbol: str) -> float:
    return 231.5


pending: Coroutine[Any, Any, float] = breaker.call_async(fetch_quote, "AAPL")
assert_type(asyncio.run(pending), float)


async def main() -> None:
    task = asyncio.create_task(breaker.call_async(fetch_quote, "MSFT"))
    assert_type(await task, float)
"""


DEFECT_GET_WITH_META_FACTORY = """\
# get_with_meta(key, factory) "never returns None" (RedisCache.get_with_meta's docstring).

from typing_extensions import assert_type

from argo_perf import AsyncRedisCache, CachedValue, RedisCache

cache = RedisCache()
assert_type(cache.get_with_meta("AAPL", lambda: 231.5), CachedValue[float])
print(cache.get_with_meta("AAPL", lambda: 231.5).source)  # the docstring's example

acache = AsyncRedisCache()


async def fetch_price() -> float:
    return 231.5


async def main() -> None:
    assert_type(await acache.get_with_meta("AAPL", fetch_price), CachedValue[float])
    print((await acache.get_with_meta("AAPL", fetch_price)).age)
"""


DEFECT_CACHED_VALUE_ANY = """\
# get_with_meta(key, factory).value is Any where get_or_set(key, factory) is the factory's type.

from typing_extensions import assert_type

from argo_perf import AsyncRedisCache, RedisCache

cache = RedisCache()
assert_type(cache.get_or_set("AAPL", lambda: 231.5), float)
meta = cache.get_with_meta("AAPL", lambda: 231.5)
assert meta is not None
assert_type(meta.value, float)

acache = AsyncRedisCache()


async def fetch_price() -> float:
    return 231.5


async def main() -> None:
    assert_type(await acache.get_or_set("AAPL", fetch_price), float)
    async_meta = await acache.get_with_meta("AAPL", fetch_price)
    assert async_meta is not None
    assert_type(async_meta.value, float)
"""


DEFECT_BATCHER_EXCEPTION_VALUES = """\
# docs/batch.md: a key mapped to an exception raises it; load_async still types it as a value.

from typing_extensions import assert_type

from argo_perf import Batcher


async def fetch_quotes(symbols: list[str]) -> dict[str, float | Exception]:
    rows = {"AAPL": 231.5}
    return {s: rows[s] if s in rows else LookupError(f"unknown symbol {s}") for s in symbols}


quotes = Batcher(fetch_quotes, max_size=50)


async def price(symbol: str) -> float:
    return await quotes.load_async(symbol)


def fetch_quotes_sync(symbols: list[str]) -> dict[str, float | Exception]:
    return {s: LookupError(s) for s in symbols}


sync_quotes = Batcher(fetch_quotes_sync)
assert_type(sync_quotes.load("AAPL"), float)
"""


DEFECT_BREAKER_ATTRIBUTE = """\
# CircuitBreaker.__call__'s docstring: ``wrapper.breaker`` is this breaker.

from collections.abc import Iterator

from typing_extensions import assert_type

from argo_perf import CircuitBreaker

breaker = CircuitBreaker("massive")


@breaker
def fetch_price(symbol: str) -> float:
    return 231.5


@breaker
async def fetch_quote(symbol: str) -> float:
    return 231.5


@breaker
def ticks(symbol: str) -> Iterator[float]:
    yield 231.5


assert_type(fetch_price.breaker, CircuitBreaker)
assert_type(fetch_quote.breaker, CircuitBreaker)
assert_type(ticks.breaker, CircuitBreaker)
"""


DEFECT_RESILIENT_NAME = """\
# Resilience.__call__: decorating keeps the function's "signature, name and docstring".

from typing_extensions import assert_type

from argo_perf import CircuitBreaker, RedisCache, cached, resilient


@resilient("massive", retry=3)
def price(symbol: str) -> float:
    return 231.5


@resilient("xai", retry=3)
async def sentiment(symbol: str) -> float:
    return 0.7


assert_type(price.__name__, str)
assert_type(sentiment.__name__, str)


# The other decorators' results have it:
@cached(RedisCache())
def cached_price(symbol: str) -> float:
    return 231.5


@CircuitBreaker("massive")
def guarded_price(symbol: str) -> float:
    return 231.5


assert_type(cached_price.__name__, str)
assert_type(guarded_price.__name__, str)
"""


DEFECT_VOLATILITY_DECIMAL = """\
# docs/market.md: observe's price may be a number, a numeric string or a Decimal.

from decimal import Decimal

from argo_perf import VolatilityTracker

vol = VolatilityTracker()
vol.observe("AAPL", Decimal("230.10"))
vol.observe("AAPL", "230.55")
"""


DOCS_CHANGE_GATE_INFERENCE = """\
# docs/market.md, "Skipping unchanged symbols", as written: the gate annotated.

from argo_perf import ChangeGate


class Signal:
    pass


gate: ChangeGate[Signal] = ChangeGate(threshold=0.005, max_age=300.0)


def signal(symbol: str, price: float) -> Signal | None:
    if not gate.changed(symbol, price):
        return gate.cached(symbol)
    value = Signal()
    gate.remember(symbol, price, value)
    return value
"""


DOCS_CHANGE_GATE_CACHED = """\
# docs/market.md: ``return gate.cached(symbol)`` from ``-> Signal`` once changed() is False.

from argo_perf import ChangeGate


class Signal:
    pass


gate: ChangeGate[Signal] = ChangeGate(threshold=0.005, max_age=300.0)


def signal(symbol: str, price: float) -> Signal:
    if not gate.changed(symbol, price):
        reused = gate.cached(symbol)  # price moved < 0.5 %: reuse
        if reused is not None:  # always, once changed() said no
            return reused
    value = Signal()
    gate.remember(symbol, price, value)
    return value
"""


DOCS_WITH_META_AGE = """\
# docs/getting-started.md, "What happened to a call", as written.

from argo_perf import RedisCache, resilient


@resilient("massive", cache=RedisCache(), ttl=10.0)
def price(symbol: str) -> float:
    return 231.5


print(price.with_meta("AAPL").outcome)  # ok: the vendor answered
result = price.with_meta("AAPL")
print(result.outcome, result.age is not None and result.age < 1.0)  # cached; age in seconds
"""


CLEAN: dict[str, str] = {
    "use_resilient.py": USE_RESILIENT,
    "use_cache.py": USE_CACHE,
    "use_breaker.py": USE_BREAKER,
    "use_ratelimit.py": USE_RATELIMIT,
    "use_batch_scheduler.py": USE_BATCH_SCHEDULER,
    "use_market_metrics.py": USE_MARKET_METRICS,
    "use_testing.py": USE_TESTING,
    "defect_batcher_exception_values.py": DEFECT_BATCHER_EXCEPTION_VALUES,
    "defect_cached_value_any.py": DEFECT_CACHED_VALUE_ANY,
    "defect_call_async_coroutine.py": DEFECT_CALL_ASYNC_COROUTINE,
    "defect_get_with_meta_factory.py": DEFECT_GET_WITH_META_FACTORY,
    "defect_resilient_name.py": DEFECT_RESILIENT_NAME,
    "defect_volatility_decimal.py": DEFECT_VOLATILITY_DECIMAL,
    "docs_change_gate_inference.py": DOCS_CHANGE_GATE_INFERENCE,
    "docs_change_gate_cached.py": DOCS_CHANGE_GATE_CACHED,
    "docs_with_meta_age.py": DOCS_WITH_META_AGE,
}


@dataclass(frozen=True)
class Known:
    """A file showing one known defect, and the fragments of the errors it may cause."""

    source: str
    symptoms: tuple[str, ...]


KNOWN: dict[str, Known] = {
    "defect_breaker_attribute.py": Known(
        DEFECT_BREAKER_ATTRIBUTE,
        ('has no attribute "breaker"', 'Expression is of type "Any", not "CircuitBreaker"'),
    ),
}

_MESSAGE = re.compile(r"^(?P<path>.+?):(?P<line>\d+): error: (?P<message>.*)$")


@dataclass(frozen=True)
class Checked:
    """One mypy run's errors, by snippet file, and its verbose log."""

    errors: dict[str, list[str]]
    log: str

    def assert_clean(self, name: str) -> None:
        errors = self.errors.get(name, [])
        known = KNOWN.get(name)
        if known is not None:
            unexplained = [e for e in errors if not any(s in e for s in known.symptoms)]
            if unexplained:
                # Not an AssertionError: a strict xfail must not hide a new error.
                raise RuntimeError(
                    f"{name}: errors other than the known defect's:\n" + "\n".join(unexplained)
                )
        assert not errors, f"mypy --strict on {name}:\n" + "\n".join(errors)


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Checked:
    """Write every snippet and run ``mypy --strict`` once over all of them."""
    root = tmp_path_factory.mktemp("typing_usage")
    snippets = root / "snippets"
    snippets.mkdir()
    sources = {**CLEAN, **{name: known.source for name, known in KNOWN.items()}}
    for name, source in sources.items():
        (snippets / name).write_text(source)
    # Our own configuration, so pyproject.toml's [tool.mypy] (files, python_version)
    # does not apply; mypy_path puts this checkout's src before site-packages, where
    # an editable install may point at another checkout.
    config = root / "mypy.ini"
    config.write_text(
        "[mypy]\n"
        "strict = True\n"
        f"mypy_path = {SRC}\n"
        f"cache_dir = {root / 'mypy_cache'}\n"
        "show_absolute_path = True\n"
        "show_error_codes = True\n"
        "pretty = False\n"
    )
    files = [str(snippets / name) for name in sorted(sources)]
    stdout, stderr, status = mypy.api.run(["--config-file", str(config), "--verbose", *files])
    if status not in (0, 1) or "prevented further checking" in stdout:
        pytest.fail(f"mypy did not check the snippets (exit {status}):\n{stdout}{stderr[-3000:]}")
    errors: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        match = _MESSAGE.match(line)
        if match is None:
            continue
        path = Path(match["path"])
        # Errors inside argo_perf itself are CI's business (mypy --strict src);
        # an installed copy's would not even be shown to users.
        if path.parent == snippets:
            errors.setdefault(path.name, []).append(
                f"{path.name}:{match['line']}: {match['message']}"
            )
    unknown = set(errors) - set(sources)
    assert not unknown, unknown
    return Checked(errors, stderr)


def test_mypy_checks_this_checkout_and_every_snippet(checked: Checked) -> None:
    parsed = re.findall(r"Parsing (\S+) \(argo_perf\)$", checked.log, re.MULTILINE)
    assert parsed == [str(SRC / "argo_perf" / "__init__.py")]
    for name in [*CLEAN, *KNOWN]:
        assert re.search(rf"Parsing \S+{re.escape(name)} ", checked.log), name


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_documented_usage_type_checks(checked: Checked, name: str) -> None:
    checked.assert_clean(name)


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="@breaker returns Callable[P, R], so the documented wrapper.breaker attribute"
    " (CircuitBreaker.__call__'s docstring) is an attr-defined error (Any)",
)
def test_breaker_decorated_function_has_its_breaker(checked: Checked) -> None:
    checked.assert_clean("defect_breaker_attribute.py")


def test_what_the_known_defects_say_holds_at_run_time() -> None:
    """The behaviour the xfail reasons want typed, observed (memory only, no Redis)."""
    breaker = CircuitBreaker("typing-usage")

    async def fetch_quote(symbol: str) -> float:
        return 231.5

    pending = breaker.call_async(fetch_quote, "AAPL")
    assert inspect.iscoroutine(pending)
    assert asyncio.run(pending) == 231.5

    def fetch_price(symbol: str) -> float:
        return 231.5

    assert vars(breaker(fetch_price))["breaker"] is breaker

    cache = RedisCache()
    try:
        meta = cache.get_with_meta("AAPL", lambda: 231.5)
        assert meta is not None
        assert (meta.value, meta.source) == (231.5, "loader")
    finally:
        cache.close()

    quotes = Batcher(lambda keys: {key: LookupError(key) for key in keys}, window=0.0)
    with pytest.raises(LookupError):
        quotes.load("XYZ")

    @resilient("massive", retry=2)
    def price(symbol: str) -> float:
        return 231.5

    @resilient("massive", retry=2)
    async def sentiment(symbol: str) -> float:
        return 0.7

    assert (price.__name__, sentiment.__name__) == ("price", "sentiment")

    tracker = VolatilityTracker()
    at = datetime(2026, 1, 6, 15, 0, tzinfo=timezone.utc)
    tracker.observe("AAPL", Decimal("230.10"), ts=at)  # type: ignore[arg-type]
    tracker.observe("AAPL", "230.55", ts=at + timedelta(seconds=5))  # type: ignore[arg-type]
    assert tracker.observations("AAPL") == 1  # two prices, one return
