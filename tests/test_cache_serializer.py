"""The default serializer: JSON plus the types a trading service stores, exactly.

Every Redis here is a real redis-server.
"""

from __future__ import annotations

import collections
import logging
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from enum import IntEnum
from typing import Any

import pytest
import redis

from argo_perf import AsyncRedisCache, RedisCache, cached

ROOMY: dict[str, Any] = {"socket_timeout": 2.0, "connect_timeout": 2.0}
NEW_YORK = timezone(timedelta(hours=-5))


class Side(IntEnum):
    BUY = 1


VALUES: dict[str, Any] = {
    "decimal": Decimal("231.50"),
    "tiny decimal": Decimal("-0.000000012300"),
    "aware datetime": datetime(2026, 1, 5, 9, 30, 0, 123456, tzinfo=NEW_YORK),
    "utc datetime": datetime(2026, 1, 5, 14, 30, tzinfo=timezone.utc),
    "naive datetime": datetime(2026, 1, 5, 9, 30),
    "date": date(2026, 1, 5),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "bytes": b"\x00\xffprice",
    "tuple": (1, "a", (2.5, None)),
    "empty tuple": (),
    "nested": {
        "price": Decimal("231.57"),
        "at": datetime(2026, 1, 5, 9, 30, tzinfo=NEW_YORK),
        "levels": [(Decimal("231.5"), 100), (Decimal("231.6"), 200)],
        "id": uuid.UUID(int=7),
    },
    "a dict using the tag key": {"__argo_perf__": "decimal", "v": "1"},
    "plain json": {"a": [1, 2.5, "x", True, None], "b": {}},
}


@pytest.mark.parametrize("name", list(VALUES))
def test_the_default_serializer_round_trips_trading_types_exactly(
    redis_url: str, name: str
) -> None:
    value = VALUES[name]
    writer = RedisCache(redis_url, **ROOMY)
    assert writer.set("v", value) is True
    got = RedisCache(redis_url, **ROOMY, maxsize=0).get("v")
    assert got == value
    assert type(got) is type(value)
    assert repr(got) == repr(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        assert got.utcoffset() == value.utcoffset()


@pytest.mark.parametrize(
    "value",
    [
        Side.BUY,
        collections.namedtuple("Quote", "symbol price")("AAPL", 231.5),
        collections.OrderedDict(a=1),
        {Side.BUY: 1},
    ],
    ids=["int enum", "namedtuple", "ordered dict", "int enum key"],
)
def test_subclasses_of_json_types_are_refused_where_json_would_change_them(value: Any) -> None:
    # JSON would bring them back from Redis as their base type, while the
    # in-process tier holds the object: refused at set, memory-only caches too.
    with pytest.raises(TypeError, match="not their subclasses"):
        RedisCache(maxsize=8).set("v", value)


def test_values_already_stored_as_plain_json_read_the_same(
    redis_url: str, redis_client: redis.Redis
) -> None:
    RedisCache(redis_url, **ROOMY).set("v", {"price": 231.5, "levels": [1, 2]})
    assert RedisCache(redis_url, **ROOMY, maxsize=0).get("v") == {"price": 231.5, "levels": [1, 2]}
    raw = redis_client.get("argo_perf:v1:v")
    assert raw is not None
    assert raw.endswith(b'{"price":231.5,"levels":[1,2]}')  # no tags for JSON's own types


@pytest.mark.parametrize(
    ("value", "kind"),
    [({1, 2}, "set"), (object(), "object"), (1 + 2j, "complex"), ({(1, 2): 3}, "tuple")],
)
def test_other_types_raise_type_error_naming_the_type_and_the_way_out(
    redis_url: str, value: Any, kind: str
) -> None:
    cache = RedisCache(redis_url, **ROOMY)
    with pytest.raises(TypeError, match=rf"\b{kind}\b.*serializer="):
        cache.set("x", value)
    assert cache.get("x") is None


def test_cached_returns_a_value_it_cannot_store_counts_and_logs_it_once(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    cache = RedisCache(redis_url, **ROOMY)

    @cached(cache)
    def levels(symbol: str) -> set[float]:
        return {231.5, 231.6}

    with caplog.at_level(logging.WARNING, logger="argo_perf.cache"):
        assert levels("AAPL") == {231.5, 231.6}
        assert levels("AAPL") == {231.5, 231.6}
        assert cache.get_or_set("x", lambda: {1}) == {1}
    stats = cache.stats
    assert stats.encode_failures == 3
    assert stats.loader_calls == 3  # nothing was cached
    assert len([r for r in caplog.records if "set" in r.getMessage()]) == 1


async def test_async_cached_returns_a_value_it_cannot_store(redis_url: str) -> None:
    cache = AsyncRedisCache(redis_url, **ROOMY)

    @cached(cache)
    async def levels(symbol: str) -> frozenset[float]:
        return frozenset({231.5})

    assert await levels("AAPL") == frozenset({231.5})
    assert cache.stats.encode_failures == 1
    with pytest.raises(TypeError, match="frozenset"):
        await cache.set("x", frozenset())
    assert await cache.set("d", Decimal("1.10")) is True
    assert await AsyncRedisCache(redis_url, **ROOMY).get("d") == Decimal("1.10")
    await cache.close()


DICT_KEYS: dict[str, Any] = {
    "int keys": {1: "a", 2: "b"},
    "mixed keys": {1: "a", "1": "b", None: 2, 1.5: 3, False: 4},
    "nested int keys": {"levels": {100: Decimal("231.5"), 200: Decimal("231.6")}},
    "int keys and the tag key": {"__argo_perf__": 1, 2: "x"},
}


@pytest.mark.parametrize("name", list(DICT_KEYS))
def test_dicts_with_keys_other_than_strings_read_back_the_same_from_either_tier(
    redis_url: str, name: str
) -> None:
    value = DICT_KEYS[name]
    two_tier = RedisCache(redis_url, **ROOMY)
    assert two_tier.set("v", value) is True
    from_memory = two_tier.get("v")
    from_redis = RedisCache(redis_url, **ROOMY, maxsize=0).get("v")
    assert from_memory == value
    assert from_redis == value
    assert list(from_redis) == list(value)  # the keys themselves, in order
