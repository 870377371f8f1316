"""What a cached value looks like in Redis: serializers, tagged JSON, the envelope and its HMAC.

Bytes in, bytes out: nothing here does I/O, reads a clock or counts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import pickle
import struct
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from ..errors import ConfigError

__all__ = ["NOTHING", "DecodeError", "Envelope", "Serializer", "SignatureError", "pick_serializer"]


@runtime_checkable
class Serializer(Protocol):
    """How values become bytes in Redis and back.

    ``name`` is recorded in every stored value (at most 16 ASCII characters),
    so a reader configured with another serializer treats the value as a
    miss instead of misreading it. ``loads`` may raise anything on bad input:
    the cache counts it as a decode failure and a miss.

    Examples:
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
        """Decode bytes produced by `dumps`."""
        ...


# JSON's own types are stored as plain JSON. Decimal, datetime, date, UUID, bytes and
# tuples become {_TAG: kind, "v": text}; a value's own dict that has the _TAG key, or a
# key that is not a string, is stored as {_TAG: "dict", "v": [[key, value], ...]} so
# it is never taken for a tag and its keys come back as they were.
_TAG = "__argo_perf__"
_UNSUPPORTED = (
    "the default serializer stores JSON types, Decimal, datetime, date, UUID, bytes and "
    "tuples, not their subclasses (a namedtuple, an enum member); pass serializer= a "
    "Serializer object (or serializer='pickle' with a signing_key) to cache other types"
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
    # Subclasses (a namedtuple, an IntEnum or StrEnum member, an OrderedDict or
    # defaultdict) are refused: JSON would bring them back from Redis as their
    # base type while the in-process tier holds the object itself, so another
    # process would read a plain tuple where this one reads `quote.price`.
    raise _unsupported(value)


def _tag_dict(value: dict[Any, Any]) -> Any:
    out = {}
    text_keys = True
    for key, item in value.items():
        kind = type(key)
        if kind is not str:
            if kind is not int and kind is not float and kind is not bool and key is not None:
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
        try:
            return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            # The Serializer contract: what cannot be encoded is a TypeError, which
            # `set` raises and a loader's value survives (returned, not cached).
            raise TypeError(
                f"cannot cache a value of type {type(value).__qualname__} with pickle: {exc}"
            ) from exc

    def loads(self, data: bytes) -> Any:
        # Only ever reached after the HMAC of the whole envelope has been verified.
        return pickle.loads(data)


def pick_serializer(serializer: str | Serializer, key: bytes | None) -> Serializer:
    """The serializer an option names, checked (pickle only with a signing key)."""
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


NOTHING: Any = object()
"""What `Envelope.quick` returns when the lean path cannot answer."""


class DecodeError(Exception):
    """A stored value could not be decoded (internal)."""


class SignatureError(DecodeError):
    """A stored value's HMAC is missing or wrong (internal)."""


class Envelope:
    """The bytes stored in Redis for one configuration: bytes in, bytes out, no I/O.

    A signed value is never decoded before its HMAC (over the Redis key, the
    header and the payload) is verified.
    """

    __slots__ = ("_key", "_loads", "_name", "_plen", "_prefix", "fast_prefix", "serializer")

    def __init__(self, serializer: Serializer, signing_key: bytes | None) -> None:
        self.serializer = serializer
        self._key = signing_key
        self._name = serializer.name.encode("ascii")
        self._loads = serializer.loads
        flags = _SIGNED if signing_key is not None else 0
        self._prefix = _HEAD.pack(_MAGIC, _ENVELOPE_VERSION, flags, len(self._name)) + self._name
        self._plen = len(self._prefix)
        # Only without a signing key may a value be decoded on sight of its header.
        self.fast_prefix = self._prefix if signing_key is None else None

    def encode(
        self, rkey: str, value: Any, stored_at: float, ttl: float | None, delta: float
    ) -> bytes:
        """The envelope of ``value`` stored under ``rkey`` at POSIX time ``stored_at``.

        Raises:
            TypeError: the serializer cannot encode ``value``.
        """
        payload = self.serializer.dumps(value)
        body = self._prefix + _TIMES.pack(stored_at, -1.0 if ttl is None else ttl, delta)
        if self._key is not None:
            body += hmac.new(self._key, rkey.encode() + body + payload, hashlib.sha256).digest()
        return body + payload

    def check(self, value: Any) -> None:
        """Raise the ``TypeError`` `encode` would raise for ``value``, building no bytes
        when the serializer is the default JSON one (a memory-only cache's check)."""
        if type(self.serializer) is _JSONSerializer:
            _tag(value)
        else:
            self.serializer.dumps(value)

    def quick(self, raw: object, now: float) -> Any:
        """The value of an unsigned value in this configuration's own header that is
        fresh at POSIX time ``now``, else `NOTHING` (then `decode` reads it the
        long way, or says why it cannot).

        The lean read path measured against a raw GET; it never raises.
        """
        prefix = self.fast_prefix
        plen = self._plen
        if (
            prefix is not None
            and type(raw) is bytes
            and raw.startswith(prefix)
            and len(raw) >= plen + _TIMES.size
        ):
            stored_at, ttl, _ = _TIMES.unpack_from(raw, plen)
            age = now - stored_at
            if 0.0 <= age < ttl or (ttl < 0.0 and age >= 0.0):
                try:
                    return self._loads(raw[plen + _TIMES.size :])
                except Exception:  # the long path counts and logs it
                    pass
        return NOTHING

    def decode(self, rkey: str, raw: object) -> tuple[float, float, float, Any]:
        """(stored_at, ttl (-1: none), delta, value) of a stored value.

        Raises:
            SignatureError: the value is unsigned or its HMAC does not verify.
            DecodeError: anything else that makes it unreadable (or what the
                serializer's ``loads`` raised).
        """
        if self._key is None and type(raw) is bytes and raw.startswith(self._prefix):
            # The common case: an unsigned envelope written by this configuration.
            stored_at, ttl, delta = _TIMES.unpack_from(raw, self._plen)
            payload = raw[self._plen + _TIMES.size :]
        else:
            stored_at, ttl, delta, payload = self._parse(rkey, raw)
        return stored_at, ttl, delta, self._loads(payload)

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
        if name != self._name:
            raise DecodeError(f"serializer {name!r} is not {self._name!r}")
        stored_at, ttl, delta = _TIMES.unpack_from(raw, pos)
        pos += _TIMES.size
        if self._key is not None:
            if not flags & _SIGNED:
                raise SignatureError("value is not signed")
            sig = raw[pos : pos + _SIG_LEN]
            payload = raw[pos + _SIG_LEN :]
            want = hmac.new(self._key, rkey.encode() + raw[:pos] + payload, hashlib.sha256).digest()
            if not hmac.compare_digest(sig, want):
                raise SignatureError("signature does not verify")
        else:
            # Unsigned readers accept signed values too: only pickle needs the check,
            # and pickle cannot be configured without a key.
            payload = raw[pos + _SIG_LEN :] if flags & _SIGNED else raw[pos:]
        return stored_at, ttl, delta, payload
