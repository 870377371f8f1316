"""The cache's policy, shared by :class:`~argo_perf.cache.RedisCache` and its asyncio twin.

Everything here is plain code that does no I/O and takes the time as an
argument: entries and their freshness, the stale window, TTL resolution, key
namespacing, the versioned and optionally signed envelope stored in Redis,
the health gate in front of Redis, and the counters. The sync and asyncio
faces only move bytes between this core and redis-py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import pickle
import random
import struct
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable
from uuid import UUID

from cachetools import LRUCache
from redis.exceptions import ResponseError

from ._redis import Admission, BackendHealth
from .clock import Clock, SystemClock
from .errors import ConfigError

__all__ = [
    "USE_DEFAULT",
    "CacheCore",
    "CacheStats",
    "CachedValue",
    "Entry",
    "Landing",
    "Serializer",
    "TTLArg",
    "UseDefault",
]

_STALE_REPORT_INTERVAL = 60.0
"""Seconds between log lines about stale values served because a loader failed."""

logger = logging.getLogger("argo_perf.cache")


class UseDefault:
    """Type of :data:`USE_DEFAULT`: "argument not given, use the cache's default"."""

    _instance: UseDefault | None = None

    def __new__(cls) -> UseDefault:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "USE_DEFAULT"

    def __reduce__(self) -> str:
        return "USE_DEFAULT"


USE_DEFAULT = UseDefault()
"""Sentinel for ``ttl``: use the cache's ``default_ttl``. ``ttl=None`` means "never expires"."""

TTLValue: TypeAlias = "float | Callable[[str], float | None] | None"
TTLArg: TypeAlias = "float | Callable[[str], float | None] | UseDefault | None"
Source = Literal["memory", "redis", "loader"]


@runtime_checkable
class Serializer(Protocol):
    """How values become bytes in Redis and back.

    ``name`` is recorded in every stored value (at most 16 ASCII characters),
    so a reader configured with another serializer treats the value as a
    miss instead of misreading it. ``loads`` may raise anything on bad input:
    the cache counts it as a decode failure and a miss.

    Example:
        >>> import json
        >>> class CompactJSON:
        ...     name = "cjson"
        ...     def dumps(self, value): return json.dumps(value).encode()
        ...     def loads(self, data): return json.loads(data)
    """

    name: str

    def dumps(self, value: Any) -> bytes:
        """Encode ``value``; raise ``TypeError`` when it cannot be encoded."""
        ...

    def loads(self, data: bytes) -> Any:
        """Decode bytes produced by :meth:`dumps`."""
        ...


# JSON's own types are stored as plain JSON. Decimal, datetime, date, UUID, bytes and
# tuples become {_TAG: kind, "v": text}; a value's own dict that has the _TAG key, or a
# key that is not a string, is stored as {_TAG: "dict", "v": [[key, value], ...]} so
# it is never taken for a tag and its keys come back as they were.
_TAG = "__argo_perf__"
_UNSUPPORTED = (
    "the default serializer stores JSON types, Decimal, datetime, date, UUID, bytes and "
    "tuples; pass serializer= a Serializer object (or serializer='pickle' with a "
    "signing_key) to cache other types"
)


def _unsupported(value: object, what: str = "a value") -> TypeError:
    return TypeError(f"cannot cache {what} of type {type(value).__qualname__}: {_UNSUPPORTED}")


def _tag(value: Any) -> Any:
    """``value`` as JSON's own types (see ``_TAG``); TypeError for anything else."""
    kind = type(value)
    if kind is str or kind is float or kind is int or kind is bool or value is None:
        return value
    if kind is dict:
        return _tag_dict(value)
    if kind is list:
        return [_tag(item) for item in value]
    if kind is tuple:
        return {_TAG: "tuple", "v": [_tag(item) for item in value]}
    if kind is Decimal:
        return {_TAG: "decimal", "v": str(value)}
    if isinstance(value, datetime):  # before date: a datetime is a date
        return {_TAG: "datetime", "v": datetime.isoformat(value)}
    if isinstance(value, date):
        return {_TAG: "date", "v": date.isoformat(value)}
    if kind is UUID:
        return {_TAG: "uuid", "v": str(value)}
    if kind is bytes:
        return {_TAG: "bytes", "v": base64.b64encode(value).decode("ascii")}
    # Subclasses of JSON's own types (IntEnum, StrEnum, OrderedDict ...) as json stores them.
    if isinstance(value, (str, int, float)):
        return value
    if isinstance(value, dict):
        return _tag_dict(value)
    if isinstance(value, list):
        return [_tag(item) for item in value]
    if isinstance(value, tuple):
        return {_TAG: "tuple", "v": [_tag(item) for item in value]}
    raise _unsupported(value)


def _tag_dict(value: dict[Any, Any]) -> Any:
    out = {}
    text_keys = True
    for key, item in value.items():
        if not isinstance(key, str):
            if not isinstance(key, (int, float)) and key is not None:
                raise _unsupported(key, "a dict key")
            text_keys = False
        out[key] = _tag(item)
    if _TAG in value or not text_keys:
        # As pairs: JSON would turn 1 into "1", and the in-process tier, which keeps
        # the object itself, would disagree with Redis about the same value.
        return {_TAG: "dict", "v": [[key, item] for key, item in out.items()]}
    return out


def _revive(obj: dict[str, Any]) -> Any:
    """json object_hook: turn tagged objects back into their types (garbage raises)."""
    if _TAG not in obj:
        return obj
    kind = obj[_TAG]
    data = obj["v"]
    if kind == "tuple":
        return tuple(data)
    if kind == "dict":
        return dict(data)
    if not isinstance(data, str):
        raise ValueError(f"bad tagged {kind!r} value")
    if kind == "decimal":
        return Decimal(data)
    if kind == "datetime":
        return datetime.fromisoformat(data)
    if kind == "date":
        return date.fromisoformat(data)
    if kind == "uuid":
        return UUID(data)
    if kind == "bytes":
        return base64.b64decode(data, validate=True)
    raise ValueError(f"unknown tagged kind {kind!r}")


# The decoder's C scanner (set in JSONDecoder.__init__, not in the type stubs).
_json_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder(  # type: ignore[attr-defined]
    object_hook=_revive
).scan_once


class _JSONSerializer:
    name = "json"

    def dumps(self, value: Any) -> bytes:
        return json.dumps(_tag(value), separators=(",", ":"), allow_nan=True).encode()

    def loads(self, data: bytes) -> Any:
        # We write compact UTF-8, so the C scanner alone decodes it: this skips
        # json.loads' encoding detection and whitespace handling on the read path.
        text = data.decode()
        try:
            value, end = _json_scan(text, 0)
        except StopIteration:
            end = -1
        if end != len(text):  # not our compact form: let json say what is wrong
            return json.loads(text, object_hook=_revive)
        return value


class _PickleSerializer:
    name = "pickle"

    def dumps(self, value: Any) -> bytes:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def loads(self, data: bytes) -> Any:
        # Only ever reached after the HMAC of the whole envelope has been verified.
        return pickle.loads(data)


@dataclass(frozen=True)
class CacheStats:
    """A snapshot of a cache's counters (they only grow).

    Attributes:
        memory_hits: fresh values served by the in-process tier.
        redis_hits: fresh values served by Redis.
        misses: lookups that found no fresh value: the caller got the default, a
            stale value, or a loader's value (``get_or_set``, ``cached``). Every
            lookup is either a hit or a miss, so ``hits / (hits + misses)`` is
            the hit rate.
        stale_served: values past their TTL served because Redis or a loader
            failed (each also counted as a miss).
        loader_calls: times a ``get_or_set`` / ``cached`` loader ran.
        coalesced: callers that waited for another caller's lookup and load of
            the same key instead of doing their own (single flight).
        early_refreshes: loads started before expiry by the XFetch rule.
        sets: values stored (``set``, ``set_many`` items, loader results).
        redis_set_failures: stored values that did not reach Redis (kept in
            the in-process tier only).
        redis_errors: Redis calls that failed (outages and error replies).
        short_circuited: calls that skipped Redis because it was considered down.
        decode_failures: values in Redis that could not be decoded (garbage,
            another Redis type, another serializer or envelope version).
        encode_failures: values a loader returned that the serializer could
            not encode: returned to the caller but not cached.
        signature_failures: values whose HMAC was missing or did not verify.
        backend: ``"redis"`` or ``"memory"`` at the time of the snapshot.
    """

    memory_hits: int
    redis_hits: int
    misses: int
    stale_served: int
    loader_calls: int
    coalesced: int
    early_refreshes: int
    sets: int
    redis_set_failures: int
    redis_errors: int
    short_circuited: int
    decode_failures: int
    encode_failures: int
    signature_failures: int
    backend: str

    @property
    def hits(self) -> int:
        """Fresh values served by either tier."""
        return self.memory_hits + self.redis_hits


@dataclass(frozen=True)
class CachedValue:
    """A value with where it came from, as returned by ``get_with_meta``.

    Attributes:
        value: the cached value.
        age: seconds since it was stored (by any process, for Redis values).
        source: ``"memory"`` (in-process tier), ``"redis"`` or ``"loader"``.
        stale: True when it is past its TTL and served because Redis or a
            loader failed (within ``max_stale``).
    """

    value: Any
    age: float
    source: Source
    stale: bool


class Entry:
    """One cached value and its deadlines (monotonic seconds of the cache's clock)."""

    __slots__ = (
        "check_at",
        "delta",
        "fresh_until",
        "in_redis",
        "stale_until",
        "stored_at",
        "value",
    )

    def __init__(
        self,
        value: Any,
        stored_at: float,
        fresh_until: float,
        check_at: float,
        stale_until: float,
        delta: float,
        in_redis: bool,
    ) -> None:
        self.value = value
        self.stored_at = stored_at
        self.fresh_until = fresh_until
        self.check_at = check_at
        self.stale_until = stale_until
        self.delta = delta
        self.in_redis = in_redis


class Landing:
    """What one flight (lookup, then load when needed) found, for every caller that waited on it.

    ``source`` is ``"loader"`` when the loader ran (``error`` set when it raised;
    ``stale`` is then the entry a failed load may fall back on), else the tier
    that held a fresh value (``entry``).
    """

    __slots__ = ("entry", "error", "source", "stale", "trace", "value")

    def __init__(
        self,
        value: Any,
        source: Source,
        entry: Entry | None,
        stale: Entry | None,
        error: Exception | None,
    ) -> None:
        self.value = value
        self.source = source
        self.entry = entry
        self.stale = stale
        self.error = error
        # The loader's traceback: every caller raises the one exception, and each
        # raise would otherwise add that caller's frames to the last one's.
        self.trace = None if error is None else error.__traceback__

    def failure(self) -> Exception:
        """The loader's exception, with the loader's own traceback, for one caller to raise."""
        assert self.error is not None
        return self.error.with_traceback(self.trace)


class _Counters:
    __slots__ = (
        "coalesced",
        "decode_failures",
        "early_refreshes",
        "encode_failures",
        "loader_calls",
        "memory_hits",
        "misses",
        "redis_errors",
        "redis_hits",
        "redis_set_failures",
        "sets",
        "short_circuited",
        "signature_failures",
        "stale_served",
    )

    def __init__(self) -> None:
        self.coalesced = 0
        self.decode_failures = 0
        self.early_refreshes = 0
        self.encode_failures = 0
        self.loader_calls = 0
        self.memory_hits = 0
        self.misses = 0
        self.redis_errors = 0
        self.redis_hits = 0
        self.redis_set_failures = 0
        self.sets = 0
        self.short_circuited = 0
        self.signature_failures = 0
        self.stale_served = 0


class _Throttle:
    """When to log a recurring problem: the first time, then at most once per interval.

    A planted or corrupt key is read on every lookup; logging each read would
    flood the log, so the reads in between are only counted.
    """

    __slots__ = ("_lock", "_next", "_unreported")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = -_INF
        self._unreported = 0

    def due(self, now: float) -> int | None:
        """None: stay silent (counted). Else the number of silent ones since the last line
        (0: the first line of a new spell)."""
        with self._lock:
            if now < self._next:
                self._unreported += 1
                return None
            count, self._unreported = self._unreported, 0
            self._next = now + _STALE_REPORT_INTERVAL
            return count


# Envelope: magic, envelope version, flags, serializer name length, serializer name,
# stored_at (POSIX seconds), ttl (seconds, -1 for none), delta (loader seconds, for
# XFetch), then the HMAC-SHA256 when signed, and the payload. Everything before the
# times is constant for one configuration, so a reader checks it with one startswith.
_MAGIC = b"AP"
_ENVELOPE_VERSION = 1
_HEAD = struct.Struct(">2sBBB")
_TIMES = struct.Struct(">ddd")
_SIGNED = 0x01
_SIG_LEN = 32
_INF = math.inf


class DecodeError(Exception):
    """A stored value could not be decoded (internal)."""


class SignatureError(DecodeError):
    """A stored value's HMAC is missing or wrong (internal)."""


def _check_seconds(name: str, value: object, *, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(name, value, "must be a number of seconds")
    seconds = float(value)
    if math.isnan(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        requirement = "must be >= 0 seconds" if allow_zero else "must be > 0 seconds"
        raise ConfigError(name, value, requirement)
    return seconds


def _check_ttl(value: object, parameter: str) -> TTLValue:
    if value is None or callable(value):
        return value
    if isinstance(value, UseDefault):
        raise ConfigError(parameter, value, "must be seconds, None or a callable")
    return _check_seconds(parameter, value, allow_zero=False)


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


class CacheCore:
    """The decisions of a two-tier cache; no I/O (see the module docs)."""

    def __init__(
        self,
        *,
        has_redis: bool,
        target: str,
        namespace: str,
        version: int,
        default_ttl: object,
        max_stale: float,
        maxsize: int,
        local_ttl: float | None,
        jitter: float,
        early_refresh: float,
        serializer: str | Serializer,
        signing_key: bytes | None,
        failure_threshold: int,
        probe_interval: float,
        clock: Clock | None,
        rng: random.Random | None,
    ) -> None:
        if not isinstance(namespace, str) or not namespace or ":" in namespace:
            raise ConfigError("namespace", namespace, "must be a non-empty string without ':'")
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise ConfigError("version", version, "must be an int >= 0")
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 0:
            raise ConfigError("maxsize", maxsize, "must be an int >= 0")
        if maxsize == 0 and not has_redis:
            raise ConfigError("maxsize", maxsize, "must be >= 1 for a memory-only cache")
        self.default_ttl = _check_ttl(default_ttl, "default_ttl")
        self.max_stale = _check_seconds("max_stale", max_stale, allow_zero=True)
        self.local_ttl = (
            None if local_ttl is None else _check_seconds("local_ttl", local_ttl, allow_zero=False)
        )
        if (
            isinstance(jitter, bool)
            or not isinstance(jitter, (int, float))
            or not (0.0 <= jitter < 1.0)
        ):
            raise ConfigError("jitter", jitter, "must be a fraction in [0, 1)")
        self.jitter = float(jitter)
        self.early_refresh = _check_seconds("early_refresh", early_refresh, allow_zero=True)
        if self.early_refresh == _INF:
            raise ConfigError("early_refresh", early_refresh, "must be finite")
        # Checked here, not only by the gate: a string must be a ConfigError, not a
        # TypeError, and an infinite interval would never probe Redis again.
        if (
            isinstance(failure_threshold, bool)
            or not isinstance(failure_threshold, int)
            or failure_threshold < 1
        ):
            raise ConfigError("failure_threshold", failure_threshold, "must be an int >= 1")
        if _check_seconds("probe_interval", probe_interval, allow_zero=False) == _INF:
            raise ConfigError("probe_interval", probe_interval, "must be finite")
        if signing_key is not None and (
            not isinstance(signing_key, bytes) or len(signing_key) < 16
        ):
            raise ConfigError("signing_key", "<redacted>", "must be bytes of length >= 16")
        self.signing_key = signing_key
        self.serializer = self._pick_serializer(serializer, signing_key)
        self._ser_name = self.serializer.name.encode("ascii")
        self._loads = self.serializer.loads
        flags = _SIGNED if signing_key is not None else 0
        self._prefix = (
            _HEAD.pack(_MAGIC, _ENVELOPE_VERSION, flags, len(self._ser_name)) + self._ser_name
        )
        self._plen = len(self._prefix)
        # The lean Redis-only read (take) decodes a value whose header is this
        # configuration's own without building an entry. Only without a signing key:
        # a signed value is never decoded before its HMAC is verified (_parse).
        self._unsigned_prefix = self._prefix if signing_key is None else None
        self.has_redis = has_redis
        self.target = target
        self.namespace = namespace
        self.version = version
        self.prefix = f"{namespace}:v{version}:"
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.monotonic: Callable[[], float] = self.clock.monotonic
        # Wall time stamps values shared with other processes; a clock without
        # timestamp() (only the protocol) derives it from now().
        self.wall: Callable[[], float] = getattr(self.clock, "timestamp", self._clock_timestamp)
        self.rng = rng if rng is not None else random.Random()
        self.gate = BackendHealth(
            target,
            failure_threshold=failure_threshold,
            probe_interval=probe_interval,
            clock=self.clock,
        )
        # Bound once: called after every successful Redis call.
        self.redis_ok: Callable[[], None] = self.gate.record_success
        self.maxsize = maxsize
        self.memory: LRUCache[str, Entry] | None = LRUCache(maxsize) if maxsize else None
        self.lock = threading.Lock()
        # Bumped (under ``lock``) by every write and delete in this process: a read
        # whose GET was in flight meanwhile must not keep what it read (see _replace).
        self.writes = 0
        self.counters = _Counters()
        self._next_stale_report = -_INF
        self._stale_unreported = 0
        # Refused writes (OOM under noeviction ...): one line when they start, then a
        # count once a minute and when writes are accepted again.
        self._refusing = False
        self._refused = 0
        self._next_refusal_report = -_INF
        self._unstorable_logged: set[str] = set()
        # Undecodable values (and keys of another type), and values failing their
        # signature: one line when they start, then a count once a minute.
        self._undecodable = _Throttle()
        self._unverified = _Throttle()

    def _clock_timestamp(self) -> float:
        return self.clock.now().timestamp()

    @staticmethod
    def _pick_serializer(serializer: str | Serializer, key: bytes | None) -> Serializer:
        if serializer == "json":
            return _JSONSerializer()
        if serializer == "pickle":
            if key is None:
                raise ConfigError(
                    "serializer",
                    "pickle",
                    "requires signing_key= (pickle from a shared Redis could execute code)",
                )
            return _PickleSerializer()
        if isinstance(serializer, str) or not isinstance(serializer, Serializer):
            raise ConfigError(
                "serializer", serializer, "must be 'json', 'pickle' or a Serializer object"
            )
        name = getattr(serializer, "name", "")
        if not isinstance(name, str) or not name.isascii() or not 0 < len(name) <= 16:
            raise ConfigError("serializer.name", name, "must be 1-16 ASCII characters")
        return serializer

    # -- backend state -------------------------------------------------------------

    @property
    def backend(self) -> str:
        return "redis" if self.has_redis and self.gate.available else "memory"

    def admit(self) -> Admission:
        """Ask the gate; counts a short-circuited call when Redis is skipped."""
        decision = self.gate.admit()
        if decision is not Admission.CALL:
            self.counters.short_circuited += 1
        return decision

    def redis_failed(self, exc: BaseException, operation: str) -> None:
        """Account for a failed Redis call: an outage feeds the gate, an error reply is logged."""
        self.counters.redis_errors += 1
        if isinstance(exc, ResponseError):
            # Redis answered (WRONGTYPE, OOM ...): it is up, the data or capacity is the problem.
            self.gate.record_success()
            if str(exc).startswith("WRONGTYPE"):
                self.counters.decode_failures += 1
                self.undecodable(f"the key of {operation}", exc)
            else:
                self.refused(operation, exc)
        else:
            self.gate.record_failure(exc)

    def refused(self, operation: str, exc: object) -> None:
        """Report a refused command without flooding the log (see ``_refusing``)."""
        now = self.monotonic()
        with self.lock:
            if not self._refusing:
                self._refusing = True
                self._refused = 0
                self._next_refusal_report = now + _STALE_REPORT_INTERVAL
                first = True
            else:
                self._refused += 1
                first = False
                if now < self._next_refusal_report:
                    return
                count, self._refused = self._refused, 0
                self._next_refusal_report = now + _STALE_REPORT_INTERVAL
        if first:
            logger.warning(
                "redis at %s refused %s: %s (further refusals are counted and reported "
                "once a minute)",
                self.target,
                operation,
                exc,
            )
        else:
            logger.warning(
                "redis at %s refused %d more commands in the last minute (latest %s: %s)",
                self.target,
                count,
                operation,
                exc,
            )

    def stored(self, entry: Entry) -> None:
        """A write reached Redis: mark the entry, note Redis is up, end a refusal spell."""
        entry.in_redis = True
        self.redis_ok()
        if self._refusing:
            with self.lock:
                if not self._refusing:
                    return
                self._refusing = False
                count, self._refused = self._refused, 0
            logger.warning(
                "redis at %s accepts writes again (%d more refusals since the last report)",
                self.target,
                count,
            )

    def wrong_types(self, rkeys: list[str], types: list[Any]) -> None:
        """Count (and log) the keys an MGET could not read because they hold another type."""
        for rkey, kind in zip(rkeys, types, strict=False):
            if kind not in (b"none", b"string", "none", "string"):
                self.counters.decode_failures += 1
                name = kind.decode() if isinstance(kind, bytes) else kind
                self.undecodable(rkey, f"it holds a {name}, not a string")

    def undecodable(self, rkey: str, reason: object) -> None:
        """Log an undecodable value without flooding the log (see ``_undecodable``)."""
        self._report(self._undecodable, "undecodable", rkey, reason)

    def _report(self, throttle: _Throttle, what: str, rkey: str, reason: object) -> None:
        count = throttle.due(self.monotonic())
        if count is None:
            return
        if count == 0:
            logger.warning(
                "ignoring %s %s from redis at %s: %s (further %s values are counted and "
                "reported once a minute)",
                what,
                rkey,
                self.target,
                reason,
                what,
            )
        else:
            logger.warning(
                "ignored %d more %s values from redis at %s in the last minute (latest %s: %s)",
                count + 1,
                what,
                self.target,
                rkey,
                reason,
            )

    def probe_failed(self, exc: BaseException) -> None:
        self.gate.record_failure(exc)

    # -- keys and TTLs ---------------------------------------------------------------

    def redis_key(self, key: str) -> str:
        return self.prefix + key

    def scan_pattern(self, prefix: str) -> str:
        return _glob_escape(self.prefix + prefix) + "*"

    def resolve_ttl(self, key: str, ttl: TTLArg) -> float | None:
        """Seconds until ``key`` stops being fresh (None: never), jitter applied."""
        chosen = self.default_ttl if isinstance(ttl, UseDefault) else ttl
        if callable(chosen):
            chosen = chosen(key)
        if chosen is None:
            return None
        seconds = _check_seconds("ttl", chosen, allow_zero=False)
        if seconds == _INF:
            return None
        if self.jitter:
            seconds *= 1.0 - self.jitter * self.rng.random()
        return seconds

    # -- entries -------------------------------------------------------------------

    def new_entry(
        self, value: Any, now: float, ttl: float | None, delta: float, age: float = 0.0
    ) -> Entry:
        stored_at = now - age
        fresh_until = _INF if ttl is None else stored_at + ttl
        stale_until = fresh_until + self.max_stale
        check_at = fresh_until
        if self.local_ttl is not None and self.has_redis:
            check_at = min(fresh_until, now + self.local_ttl)
        return Entry(value, stored_at, fresh_until, check_at, stale_until, delta, False)

    def remember(self, key: str, entry: Entry) -> None:
        memory = self.memory
        if memory is not None:
            with self.lock:
                self.writes += 1
                memory[key] = entry

    def recall(self, key: str) -> Entry | None:
        memory = self.memory
        if memory is None:
            return None
        with self.lock:
            return memory.get(key)

    def forget(self, key: str) -> None:
        memory = self.memory
        if memory is not None:
            with self.lock:
                self.writes += 1
                memory.pop(key, None)

    def _drop(self, key: str, entry: Entry) -> None:
        """Forget ``entry`` unless another thread has stored a newer one meanwhile."""
        memory = self.memory
        if memory is not None:
            with self.lock:
                if memory.get(key) is entry:
                    del memory[key]

    def _replace(self, key: str, old: Entry | None, new: Entry, seen: int) -> None:
        """Keep ``new`` (read from Redis) unless the entry changed from ``old`` meanwhile.

        A write in this process (or a later read) while this read's GET was in
        flight stored a value at least as new as what that GET returned, and a
        delete meanwhile must not be undone by the value read before it. With
        no entry before (``old`` None), "meanwhile" is told by ``writes``, which
        was ``seen`` before the GET: a delete leaves no entry to compare with.
        """
        memory = self.memory
        if memory is not None:
            with self.lock:
                if memory.get(key) is old and (old is not None or self.writes == seen):
                    memory[key] = new

    def forget_prefix(self, prefix: str) -> int:
        memory = self.memory
        if memory is None:
            return 0
        with self.lock:
            self.writes += 1
            doomed = [k for k in memory if k.startswith(prefix)]
            for k in doomed:
                del memory[k]
        return len(doomed)

    def count_hit(self, source: Source) -> None:
        if source == "redis":
            self.counters.redis_hits += 1
        else:
            self.counters.memory_hits += 1

    def serve(
        self, entry: Entry | None, source: Source, degraded: bool, now: float
    ) -> Entry | None:
        """Decide what a read returns: a fresh entry, a stale one while degraded, or nothing.

        ``degraded`` is True when Redis was skipped or failed for this read; only
        then may a value past its TTL (within ``max_stale``) be served.
        """
        if entry is not None:
            if now < entry.fresh_until:
                self.count_hit(source)
                return entry
            if degraded and now < entry.stale_until:
                self.counters.stale_served += 1
                self.counters.misses += 1
                return entry
        self.counters.misses += 1
        return None

    def looked_up(self, entry: Entry | None, source: Source, now: float) -> Landing | None:
        """A flight's lookup: the fresh value it found, or None when the loader must run."""
        if entry is not None and now < entry.fresh_until:
            return Landing(entry.value, source, entry, None, None)
        return None

    def landed(
        self, landing: Landing, local: Entry | None
    ) -> tuple[Any, Source, Entry | None] | None:
        """What one caller of ``get_or_set`` returns from a flight, counted once per caller.

        None: the loader failed and there is nothing within ``max_stale`` to serve.
        """
        counters = self.counters
        if landing.source != "loader":
            self.count_hit(landing.source)
            return landing.value, landing.source, landing.entry
        counters.misses += 1
        if landing.error is None:
            return landing.value, "loader", None
        stale = landing.stale if landing.stale is not None else local
        served = self.loader_failed(landing.error, stale, self.monotonic())
        if served is None:
            return None
        return served.value, "memory", served

    def merge(
        self, key: str, rkey: str, raw: object, local: Entry | None, now: float, seen: int
    ) -> tuple[Entry | None, Source, bool]:
        """Combine what Redis answered for ``key`` with the in-process entry."""
        if raw is None:
            if local is not None and not local.in_redis:
                # Written while Redis was unreachable: still the newest value we know.
                return local, "memory", False
            if local is not None:
                self._drop(key, local)
            return None, "redis", False
        entry = self.decode(rkey, raw, now)
        if entry is None:
            if local is not None:
                self._drop(key, local)
            return None, "redis", False
        if local is not None and not local.in_redis and local.stored_at >= entry.stored_at:
            # Written here while Redis refused it: newer than what Redis still holds.
            return local, "memory", False
        self._replace(key, local, entry, seen)
        return entry, "redis", False

    def take(self, key: str, rkey: str, raw: object, default: Any) -> Any:
        """What a Redis-only read returns for what Redis answered (no in-process tier).

        The common case, a fresh value written unsigned by this configuration, is
        decided in a few lines: this sits on the path measured against a raw GET.
        Anything else, and every signed value, goes through :meth:`merge`, which
        verifies the signature before decoding.
        """
        prefix = self._unsigned_prefix
        if (
            prefix is not None
            and type(raw) is bytes
            and raw.startswith(prefix)
            and len(raw) >= self._plen + _TIMES.size
        ):
            stored_at, ttl, _ = _TIMES.unpack_from(raw, self._plen)
            age = self.wall() - stored_at
            if 0.0 <= age < ttl or (ttl < 0.0 and age >= 0.0):
                try:
                    value = self._loads(raw[self._plen + _TIMES.size :])
                except Exception:  # the general path below counts and logs it
                    pass
                else:
                    self.counters.redis_hits += 1
                    return value
        now = self.monotonic()
        found = self.serve(*self.merge(key, rkey, raw, None, now, self.writes), now)
        return default if found is None else found.value

    def split_local(
        self, keys: Iterable[str], now: float
    ) -> tuple[list[tuple[str, Entry | None]], dict[str, Any]]:
        """Answer what the in-process tier can; return the rest (with local entries) to fetch."""
        result: dict[str, Any] = {}
        wanted: list[tuple[str, Entry | None]] = []
        for key in keys:
            entry = self.recall(key)
            if entry is not None and now < entry.check_at:
                self.counters.memory_hits += 1
                result[key] = entry.value
            else:
                wanted.append((key, entry))
        if not self.has_redis:
            for key, entry in wanted:
                found = self.serve(entry, "memory", False, now)
                if found is not None:  # pragma: no cover - check_at == fresh_until here
                    result[key] = found.value
            wanted = []
        return wanted, result

    def merge_many(
        self,
        wanted: list[tuple[str, Entry | None]],
        raws: list[Any] | None,
        now: float,
        result: dict[str, Any],
        seen: int,
    ) -> None:
        """Fill ``result`` from one MGET's answers (None: Redis skipped or failed)."""
        for i, (key, local) in enumerate(wanted):
            if raws is None:
                found = self.serve(local, "memory", True, now)
            else:
                merged = self.merge(key, self.redis_key(key), raws[i], local, now, seen)
                found = self.serve(*merged, now)
            if found is not None:
                result[key] = found.value

    def prepare(
        self, key: str, value: Any, ttl: float | None, delta: float, now: float, *, loaded: bool
    ) -> tuple[str, bytes, int | None, Entry] | None:
        """Encode a value for Redis and keep it in the in-process tier (not yet in Redis).

        A value from a loader (``loaded``) that cannot be encoded is counted,
        logged once per type and not cached (None): its caller still gets it.
        Any other is a ``TypeError`` for the caller of ``set``.
        """
        rkey = self.redis_key(key)
        try:
            data, px = self.encode(rkey, value, ttl, delta)
        except TypeError as exc:
            if not loaded:
                raise
            self.counters.encode_failures += 1
            kind = type(value).__qualname__
            if kind not in self._unstorable_logged:
                self._unstorable_logged.add(kind)
                logger.warning("not caching %s: %s", key, exc)
            return None
        entry = self.store_local(key, value, ttl, delta, now)
        return rkey, data, px, entry

    def prepare_many(
        self, items: list[tuple[str, Any, float | None]], now: float
    ) -> list[tuple[str, bytes, int | None, Entry]]:
        """:meth:`prepare` for several items: all are encoded before any is kept,
        so a value that cannot be encoded leaves nothing half stored."""
        encoded = []
        for key, value, ttl in items:
            rkey = self.redis_key(key)
            encoded.append((key, value, ttl, rkey, *self.encode(rkey, value, ttl, 0.0)))
        return [
            (rkey, data, px, self.store_local(key, value, ttl, 0.0, now))
            for key, value, ttl, rkey, data, px in encoded
        ]

    def store_local(
        self, key: str, value: Any, ttl: float | None, delta: float, now: float
    ) -> Entry:
        entry = self.new_entry(value, now, ttl, delta)
        self.counters.sets += 1
        self.remember(key, entry)
        return entry

    def set_failed(self, count: int = 1) -> None:
        self.counters.redis_set_failures += count

    def pipeline_done(
        self, prepared: list[tuple[str, bytes, int | None, Entry]], replies: list[Any]
    ) -> bool:
        """Mark the items a pipeline stored; count and log the ones Redis refused."""
        ok = True
        for (rkey, _, _, entry), reply in zip(prepared, replies, strict=False):
            if isinstance(reply, Exception):
                if ok:
                    self.refused(f"SET {rkey}", reply)
                ok = False
                self.counters.redis_errors += 1
                self.counters.redis_set_failures += 1
            else:
                self.stored(entry)
        return ok

    def loader_failed(self, exc: BaseException, stale: Entry | None, now: float) -> Entry | None:
        """A loader raised: return a value within ``max_stale`` to serve instead, or None."""
        if stale is not None and now < stale.stale_until:
            self.counters.stale_served += 1
            # A vendor outage fails every lookup: report it once per interval, not per call.
            if now >= self._next_stale_report:
                more = self._stale_unreported
                logger.warning(
                    "loader failed (%r); serving a value %.3gs old%s",
                    exc,
                    now - stale.stored_at,
                    f" ({more} more stale values served since the last report)" if more else "",
                )
                self._next_stale_report = now + _STALE_REPORT_INTERVAL
                self._stale_unreported = 0
            else:
                self._stale_unreported += 1
            return stale
        return None

    def should_refresh_early(self, entry: Entry, now: float) -> bool:
        """XFetch: refresh before expiry with a probability that grows near it."""
        beta = self.early_refresh
        if not beta or entry.fresh_until == _INF or entry.delta <= 0.0:
            return False
        gap = -entry.delta * beta * math.log(1.0 - self.rng.random())
        return now + gap >= entry.fresh_until

    # -- the envelope ------------------------------------------------------------------

    def encode(
        self, rkey: str, value: Any, ttl: float | None, delta: float
    ) -> tuple[bytes, int | None]:
        """Return (envelope bytes, PX milliseconds or None) for a value stored now."""
        payload = self.serializer.dumps(value)
        body = self._prefix + _TIMES.pack(self.wall(), -1.0 if ttl is None else ttl, delta)
        if self.signing_key is not None:
            sig = hmac.new(self.signing_key, rkey.encode() + body + payload, hashlib.sha256)
            body += sig.digest()
        keep = _INF if ttl is None else ttl + self.max_stale  # Redis keeps stale values too
        px = None if keep == _INF else max(1, math.ceil(keep * 1000))
        return body + payload, px

    def decode(self, rkey: str, raw: object, now: float) -> Entry | None:
        """Turn what Redis returned into an entry, or count and log why it is a miss."""
        try:
            return self._decode(rkey, raw, now)
        except SignatureError as exc:
            self.counters.signature_failures += 1
            self._report(self._unverified, "unverified", rkey, exc)
        except Exception as exc:  # any garbage must become a miss, never an error
            self.counters.decode_failures += 1
            self.undecodable(rkey, exc)
        return None

    def _decode(self, rkey: str, raw: object, now: float) -> Entry:
        if self.signing_key is None and type(raw) is bytes and raw.startswith(self._prefix):
            # The common case: an unsigned envelope written by this configuration.
            stored_at, ttl, delta = _TIMES.unpack_from(raw, self._plen)
            payload = raw[self._plen + _TIMES.size :]
        else:
            stored_at, ttl, delta, payload = self._parse(rkey, raw)
        value = self._loads(payload)
        age = self.wall() - stored_at
        if not age >= 0.0:  # a clock behind the writer's, or NaN from a corrupt header
            if age != age:
                raise DecodeError("corrupt header")
            age = 0.0
        entry = self.new_entry(value, now, None if ttl < 0 else ttl, max(0.0, delta), age)
        entry.in_redis = True
        return entry

    def _parse(self, rkey: str, raw: object) -> tuple[float, float, float, bytes]:
        """Parse any version-1 envelope, verifying its signature when we have a key."""
        if not isinstance(raw, bytes):
            raise DecodeError(f"expected bytes, got {type(raw).__name__}")
        if len(raw) < _HEAD.size:
            raise DecodeError("too short for an argo_perf envelope")
        magic, env_version, flags, name_len = _HEAD.unpack_from(raw)
        if magic != _MAGIC:
            raise DecodeError("not an argo_perf envelope")
        if env_version != _ENVELOPE_VERSION:
            raise DecodeError(f"envelope version {env_version} is not {_ENVELOPE_VERSION}")
        pos = _HEAD.size + name_len
        name = raw[_HEAD.size : pos]
        if name != self._ser_name:
            raise DecodeError(f"serializer {name!r} is not {self._ser_name!r}")
        stored_at, ttl, delta = _TIMES.unpack_from(raw, pos)
        pos += _TIMES.size
        if self.signing_key is not None:
            if not flags & _SIGNED:
                raise SignatureError("value is not signed")
            sig = raw[pos : pos + _SIG_LEN]
            payload = raw[pos + _SIG_LEN :]
            want = hmac.new(
                self.signing_key, rkey.encode() + raw[:pos] + payload, hashlib.sha256
            ).digest()
            if not hmac.compare_digest(sig, want):
                raise SignatureError("signature does not verify")
        else:
            # Unsigned readers accept signed values too: only pickle needs the check,
            # and pickle cannot be configured without a key.
            payload = raw[pos + _SIG_LEN :] if flags & _SIGNED else raw[pos:]
        return stored_at, ttl, delta, payload

    # -- stats ---------------------------------------------------------------------------

    def stats(self) -> CacheStats:
        counters = self.counters
        # Every counter is a CacheStats field of the same name.
        counts = {name: getattr(counters, name) for name in _Counters.__slots__}
        return CacheStats(**counts, backend=self.backend)

    def meta_of(self, value: Any, source: Source, served: Entry | None) -> CachedValue:
        """Describe what a load returned: a fresh load (served None) or an entry served."""
        if served is None:
            return CachedValue(value, 0.0, source, False)
        return self.meta(served, self.monotonic(), source)

    def meta(self, entry: Entry, now: float, source: Source) -> CachedValue:
        return CachedValue(
            entry.value, max(0.0, now - entry.stored_at), source, now >= entry.fresh_until
        )
