"""Values planted in Redis never execute code and never raise, on any read path.

Each variant is written under one key per read path (``get``, ``get_many``,
``get_with_meta``, ``get_or_set``, ``cached``), then every path reads its key,
with the in-process tier on and off, on both faces, in JSON and signed-pickle
modes. A planted pickle would create the marker file.
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from argo_perf import AsyncRedisCache, RedisCache, cached
from argo_perf.cache._envelope import _HEAD, _MAGIC, _TIMES

KEY = b"0123456789abcdef-signing"
OTHER_KEY = b"fedcba9876543210-signing"
ROOMY: dict[str, Any] = {"socket_timeout": 2.0, "connect_timeout": 2.0}
PATHS = ("get", "get_many", "get_with_meta", "get_or_set", "cached")


class _Planted:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


def _header(name: bytes, *, flags: int = 0, version: int = 1, name_len: int | None = None) -> bytes:
    length = len(name) if name_len is None else name_len
    return _HEAD.pack(_MAGIC, version, flags, length) + name


def _signed(
    rkey: str, name: bytes, payload: bytes, *, key: bytes = KEY, stored_at: float | None = None
) -> bytes:
    """A well-formed signed envelope over ``rkey`` (valid only for that key and signing key)."""
    at = time.time() if stored_at is None else stored_at
    body = _header(name, flags=1) + _TIMES.pack(at, 60.0, 0.0)
    sig = hmac.new(key, rkey.encode() + body + payload, hashlib.sha256).digest()
    return body + sig + payload


Plant = Callable[[redis.Redis, str], None]


def _variants(evil: bytes) -> list[tuple[str, Plant]]:
    """At least 50 ways to put something hostile or broken under a key."""
    now = time.time()
    fresh = _TIMES.pack(now, 60.0, 0.0)
    old = _TIMES.pack(now - 86_400.0, 60.0, 0.0)
    future = _TIMES.pack(now + 86_400.0, 60.0, 0.0)
    forever = _TIMES.pack(now, -1.0, 0.0)
    nan = _TIMES.pack(float("nan"), float("nan"), float("nan"))
    raw: dict[str, bytes] = {
        "bare pickle": evil,
        "pickle protocol 0": pickle.dumps(_Planted(Path("/nonexistent")), protocol=0),
        "empty": b"",
        "one NUL": b"\x00",
        "magic only": _MAGIC,
        "garbage ff": b"\xff" * 64,
        "garbage text": b"not an envelope at all",
        "json text": b'{"price": 1}',
        "AP then pickle": _MAGIC + evil,
    }
    for n in (1, 2, 3, 4, 5, 8, 11, 12):
        raw[f"{n} NUL + fresh times + pickle"] = b"\x00" * n + fresh + evil
    for n in (1, 5, 11):
        raw[f"{n} NUL + pickle"] = b"\x00" * n + evil
        raw[f"{n} NUL + old times + pickle"] = b"\x00" * n + old + evil
        raw[f"{n} SOH + fresh times + pickle"] = b"\x01" * n + fresh + evil
    for label, times in (("fresh", fresh), ("old", old), ("future", future), ("nan", nan)):
        raw[f"unsigned pickle envelope, {label}"] = _header(b"pickle") + times + evil
        raw[f"zero signature, {label}"] = _header(b"pickle", flags=1) + times + b"\x00" * 32 + evil
    raw["forever, unsigned pickle"] = _header(b"pickle") + forever + evil
    raw["short signature"] = _header(b"pickle", flags=1) + fresh + b"short" + evil
    raw["no signature bytes"] = _header(b"pickle", flags=1) + fresh
    raw["signed flag, json name, pickle"] = _header(b"json", flags=1) + fresh + b"\x00" * 32 + evil
    raw["json name, pickle payload"] = _header(b"json") + fresh + evil
    raw["version 2"] = _header(b"pickle", version=2) + fresh + evil
    raw["version 0"] = _header(b"pickle", version=0) + fresh + evil
    raw["name length 255"] = _header(b"pickle", name_len=255) + fresh + evil
    raw["name length 0"] = _header(b"", name_len=0) + fresh + evil
    raw["truncated times"] = _header(b"pickle", flags=1) + fresh[:7]
    raw["truncated json times"] = _header(b"json") + fresh[:7]
    raw["json header only"] = _header(b"json")
    raw["truncated head"] = _header(b"pickle")[:3]
    raw["other serializer name"] = _header(b"marshal") + fresh + evil
    raw["signed for another key"] = _signed("argo_perf:v1:ELSEWHERE", b"pickle", evil)
    raw["signed with another signing key"] = _signed("{rkey}", b"pickle", evil, key=OTHER_KEY)
    raw["signed json for another key"] = _signed("argo_perf:v1:ELSEWHERE", b"json", b"1")
    raw["bad json envelope"] = _header(b"json") + fresh + b"{not json"
    raw["tagged json garbage"] = _header(b"json") + fresh + b'{"__argo_perf__":"nope","v":1}'
    raw["tagged decimal garbage"] = _header(b"json") + fresh + b'{"__argo_perf__":"decimal","v":[]}'

    variants: list[tuple[str, Plant]] = []
    for label, data in raw.items():

        def plant(client: redis.Redis, rkey: str, data: bytes = data, label: str = label) -> None:
            if label == "signed with another signing key":
                data = _signed(rkey, b"pickle", evil, key=OTHER_KEY)
            client.set(rkey, data)

        variants.append((label, plant))

    def plant_truncated(cut: int) -> Plant:
        def plant(client: redis.Redis, rkey: str) -> None:
            client.set(rkey, _signed(rkey, b"pickle", evil)[:cut])

        return plant

    for cut in (5, 12, 20, 40, 60):
        variants.append((f"own signature truncated at {cut}", plant_truncated(cut)))

    def plant_resigned_old(client: redis.Redis, rkey: str) -> None:
        # A valid signature over an old header, with the pickle swapped afterwards.
        good = _signed(rkey, b"pickle", pickle.dumps(1), stored_at=now - 3600.0)
        client.set(rkey, good[: -len(pickle.dumps(1))] + evil)

    variants.append(("signed header, swapped payload", plant_resigned_old))
    variants.append(("list", lambda c, k: c.rpush(k, evil, b"2")))
    variants.append(("hash", lambda c, k: c.hset(k, "v", evil)))
    variants.append(("set", lambda c, k: c.sadd(k, evil)))
    variants.append(("sorted set", lambda c, k: c.zadd(k, {evil: 1.0})))
    variants.append(("stream", lambda c, k: c.xadd(k, {"v": evil})))
    return variants


def _keys(variant: int) -> dict[str, str]:
    return {path: f"planted-{variant}-{path}" for path in PATHS}


MODES: dict[str, dict[str, Any]] = {
    "json": {},
    "signed-pickle": {"serializer": "pickle", "signing_key": KEY},
}


def _plant_all(redis_client: redis.Redis, evil: bytes) -> list[tuple[str, dict[str, str]]]:
    planted = []
    for i, (label, plant) in enumerate(_variants(evil)):
        keys = _keys(i)
        for key in keys.values():
            plant(redis_client, "argo_perf:v1:" + key)
        planted.append((label, keys))
    return planted


def test_there_are_at_least_fifty_variants(tmp_path: Path) -> None:
    assert len(_variants(pickle.dumps(_Planted(tmp_path / "x")))) >= 50


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("maxsize", [0, 100], ids=["redis-only", "two-tier"])
def test_planted_values_never_execute_or_raise_sync(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path, mode: str, maxsize: int
) -> None:
    marker = tmp_path / "pwned"
    planted = _plant_all(redis_client, pickle.dumps(_Planted(marker)))
    cache = RedisCache(redis_url, **ROOMY, maxsize=maxsize, **MODES[mode])

    @cached(cache, key=lambda symbol: symbol)
    def load(symbol: str) -> str:
        return "loaded"

    for label, keys in planted:
        got = cache.get(keys["get"], "default")
        many = cache.get_many([keys["get_many"]])
        meta = cache.get_with_meta(keys["get_with_meta"])
        loaded = cache.get_or_set(keys["get_or_set"], lambda: "loaded")
        through = load(keys["cached"])
        assert not marker.exists(), label
        if mode == "signed-pickle":  # (JSON mode may read some variants as plain values)
            want = ("default", {}, None, "loaded", "loaded")
            assert (got, many, meta, loaded, through) == want, label
    stats = cache.stats
    assert stats.hits + stats.misses == 5 * len(planted)


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("maxsize", [0, 100], ids=["redis-only", "two-tier"])
async def test_planted_values_never_execute_or_raise_async(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path, mode: str, maxsize: int
) -> None:
    marker = tmp_path / "pwned"
    planted = _plant_all(redis_client, pickle.dumps(_Planted(marker)))
    cache = AsyncRedisCache(redis_url, **ROOMY, maxsize=maxsize, **MODES[mode])

    @cached(cache, key=lambda symbol: symbol)
    async def load(symbol: str) -> str:
        return "loaded"

    async def factory() -> str:
        return "loaded"

    try:
        for label, keys in planted:
            got = await cache.get(keys["get"], "default")
            many = await cache.get_many([keys["get_many"]])
            meta = await cache.get_with_meta(keys["get_with_meta"])
            loaded = await cache.get_or_set(keys["get_or_set"], factory)
            through = await load(keys["cached"])
            assert not marker.exists(), label
            if mode == "signed-pickle":  # (JSON mode may read some variants as plain values)
                want = ("default", {}, None, "loaded", "loaded")
                assert (got, many, meta, loaded, through) == want, label
        stats = cache.stats
        assert stats.hits + stats.misses == 5 * len(planted)
    finally:
        await cache.close()
