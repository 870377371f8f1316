"""`cached`: keys that do not depend on how the function is called, TTLs that see its arguments.

Every Redis here is a real redis-server; time is a ManualClock.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis

from argo_perf import AsyncRedisCache, ManualClock, RedisCache, cached

ROOMY: dict[str, Any] = {"socket_timeout": 2.0, "connect_timeout": 2.0}


def test_positional_and_keyword_calls_share_one_key(clock: ManualClock) -> None:
    cache = RedisCache(clock=clock)
    calls: list[tuple[str, str]] = []

    @cached(cache)
    def quote(symbol: str, venue: str = "XNYS") -> float:
        calls.append((symbol, venue))
        return 231.5

    assert quote("AAPL") == 231.5
    assert quote(symbol="AAPL") == 231.5
    assert quote("AAPL", "XNYS") == 231.5
    assert quote("AAPL", venue="XNYS") == 231.5
    assert quote(venue="XNYS", symbol="AAPL") == 231.5
    assert calls == [("AAPL", "XNYS")]
    assert quote("AAPL", venue="BATS") == 231.5
    assert len(calls) == 2
    # A plain positional call keeps the key it always had.
    name = f"{quote.__module__}.{quote.__qualname__}"
    assert cache.get(f"{name}('AAPL','XNYS')") == 231.5


def test_keys_bind_keyword_only_and_variadic_arguments(clock: ManualClock) -> None:
    cache = RedisCache(clock=clock)
    calls: list[int] = []

    @cached(cache)
    def bars(symbol: str, *fields: str, limit: int = 10, **options: Any) -> int:
        calls.append(1)
        return len(calls)

    assert bars("AAPL", "open", "close", limit=10, adjusted=True, tz="UTC") == 1
    assert bars("AAPL", "open", "close", tz="UTC", adjusted=True) == 1
    assert bars("AAPL", "open", limit=10) == 2
    assert bars("AAPL", "open") == 2
    assert bars(symbol="AAPL") == 3
    assert bars("AAPL") == 3


async def test_async_positional_and_keyword_calls_share_one_key(clock: ManualClock) -> None:
    cache = AsyncRedisCache(clock=clock)
    calls: list[str] = []

    @cached(cache)
    async def quote(symbol: str, venue: str = "XNYS") -> float:
        calls.append(symbol)
        return 231.5

    assert await quote("AAPL") == 231.5
    assert await quote(symbol="AAPL", venue="XNYS") == 231.5
    assert calls == ["AAPL"]


def test_a_callable_ttl_given_to_cached_is_called_with_the_functions_arguments(
    redis_url: str, redis_client: redis.Redis, clock: ManualClock
) -> None:
    cache = RedisCache(redis_url, **ROOMY, clock=clock, max_stale=0.0)
    asked: list[tuple[Any, ...]] = []

    def ttl_for(symbol: str, venue: str = "XNYS") -> float:
        asked.append((symbol, venue))
        return {"AAPL": 5.0, "BTC-USD": 100.0}[symbol]

    @cached(cache, ttl=ttl_for, key=lambda symbol, venue="XNYS": f"price:{symbol}")
    def price(symbol: str, venue: str = "XNYS") -> float:
        return 231.5

    assert price("AAPL") == 231.5
    assert price("BTC-USD", venue="CB") == 231.5
    assert price("AAPL") == 231.5  # a hit: the TTL is asked only when a value is stored
    assert asked == [("AAPL", "XNYS"), ("BTC-USD", "CB")]
    assert 4_000 < redis_client.pttl("argo_perf:v1:price:AAPL") <= 5_000
    assert 99_000 < redis_client.pttl("argo_perf:v1:price:BTC-USD") <= 100_000
    # set() and get_or_set() on the cache itself keep calling a TTL callable with the key.
    keys: list[str] = []

    def ttl_for_key(key: str) -> float:
        keys.append(key)
        return 7.0

    cache.set("k1", 1.0, ttl=ttl_for_key)
    cache.get_or_set("k2", lambda: 2.0, ttl=ttl_for_key)
    assert keys == ["k1", "k2"]
    assert 6_000 < redis_client.pttl("argo_perf:v1:k2") <= 7_000


async def test_async_callable_ttl_given_to_cached_sees_the_symbol(
    redis_url: str, redis_client: redis.Redis, clock: ManualClock
) -> None:
    cache = AsyncRedisCache(redis_url, **ROOMY, clock=clock, max_stale=0.0)

    @cached(cache, ttl=lambda symbol: 5.0 if symbol == "AAPL" else 50.0)
    async def price(symbol: str) -> float:
        return 231.5

    assert await price("AAPL") == 231.5
    assert await price(symbol="MSFT") == 231.5
    name = f"{price.__module__}.{price.__qualname__}"
    assert 4_000 < redis_client.pttl(f"argo_perf:v1:{name}('AAPL')") <= 5_000
    assert 49_000 < redis_client.pttl(f"argo_perf:v1:{name}('MSFT')") <= 50_000
    await cache.close()


class _Vendor:
    def __init__(self, region: str, cache: RedisCache) -> None:
        self.region = region
        self.calls = 0

        @cached(cache)
        def price(vendor: _Vendor, symbol: str) -> str:
            vendor.calls += 1
            return f"{vendor.region}:{symbol}"

        self._price = price

    def price(self, symbol: str) -> str:
        return self._price(self, symbol)


def test_the_default_key_refuses_arguments_known_only_by_their_address(
    clock: ManualClock,
) -> None:
    # An object's default repr is its address, which a later object may reuse: the
    # key would hand one instance's values to another. It must say to pass key=.
    cache = RedisCache(clock=clock)
    vendor = _Vendor("us", cache)
    with pytest.raises(TypeError, match=r"vendor.*_Vendor.*key="):
        vendor.price("AAPL")
    assert vendor.calls == 0  # refused before the loader ran

    @cached(cache)
    def describe(text: str, values: list[str]) -> str:
        return text

    # A string that merely contains the words is fine.
    assert describe("meet at 0x10", ["a at 0x1"]) == "meet at 0x10"


def test_methods_key_on_what_key_says_and_a_callable_ttl_gets_self(clock: ManualClock) -> None:
    cache = RedisCache(clock=clock, default_ttl=60.0)
    asked: list[tuple[str, str]] = []

    class Vendor:
        def __init__(self, region: str) -> None:
            self.region = region

        def ttl(self, symbol: str) -> float:
            asked.append((self.region, symbol))
            return 5.0

        @cached(
            cache,
            key=lambda self, symbol: f"{self.region}:{symbol}",
            ttl=lambda self, symbol: self.ttl(symbol),
        )
        def price(self, symbol: str) -> str:
            return f"{self.region}:{symbol}"

    assert Vendor("us").price("AAPL") == "us:AAPL"
    assert Vendor("eu").price("AAPL") == "eu:AAPL"
    assert asked == [("us", "AAPL"), ("eu", "AAPL")]
    clock.advance(6.0)
    assert cache.get("us:AAPL") is None  # stored for the method's own TTL
