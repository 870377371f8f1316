"""The cache's decisions: entries, freshness, stale serving, early refresh, counters.

Plain code that does no I/O and takes the time as an argument (or reads the
injected clock). The operations in `_operations` call these in order and tell
the faces which Redis command to run; the faces only run it. The registry
of single flights is `_flights.Flights` (`CacheCore.flights`).
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable, Iterable
from typing import Any

from .. import _validate
from .._redis import Admission, BackendHealth, RedisLink, is_answer
from ..clock import Clock, _given_or_system
from ..errors import BackendError, ConfigError
from ._config import CacheConfig, TTLArg, UseDefault
from ._entry import Entry
from ._envelope import NOTHING, Envelope, SignatureError, pick_serializer
from ._flights import Flights, Landing
from ._memory import LRU
from ._reports import Reports
from ._stats import CachedValue, CacheStats, Counters, Source

__all__ = ["MISSING", "CacheCore", "NodeFailure"]

_INF = math.inf

MISSING: Any = NOTHING
"""What `CacheCore.hit` returns when the in-process tier has no fresh value."""


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


class NodeFailure:
    """In an MGET's replies on a Redis Cluster: the key's node failed, with this error.

    The keys of the other nodes were read: only this key is served as if
    Redis had failed (from the in-process tier, stale values included).
    """

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


# Operations (as redis_failed is told them) that change Redis; the others read.
_WRITES = ("SET", "UNLINK")


class CacheCore:
    """The decisions of a two-tier cache and its state; no I/O (see the module docs)."""

    def __init__(
        self,
        config: CacheConfig,
        *,
        link: RedisLink | None,
        admit: Callable[[], Admission] | None,
        target: str,
        clock: Clock | None,
        rng: random.Random | None,
    ) -> None:
        """``link``: the Redis link (None: memory-only); ``admit``: the face's way to ask
        it (`RedisLink.admit` for threads, `RedisLink.admit_async` on an event loop)."""
        has_redis = link is not None
        if config.maxsize == 0 and not has_redis:
            raise ConfigError("maxsize", 0, "must be >= 1 for a memory-only cache")
        self.config = config
        self.has_redis = has_redis
        # Redis only (no in-process tier): reads take the lean path (`take`).
        self.lean = has_redis and config.maxsize == 0
        self.target = target
        self.default_ttl = config.default_ttl
        self.max_stale = config.max_stale
        self.local_ttl = config.local_ttl if has_redis else None
        self.jitter = config.jitter
        self.early_refresh = config.early_refresh
        self.envelope = Envelope(
            pick_serializer(config.serializer, config.signing_key), config.signing_key
        )
        self.namespace = config.namespace
        self.version = config.version
        self.prefix = f"{config.namespace}:v{config.version}:"
        self.clock: Clock = _given_or_system(clock)
        self.monotonic: Callable[[], float] = self.clock.monotonic
        # Wall time stamps values shared with other processes; a clock without
        # timestamp() (only the protocol) derives it from now().
        self.wall: Callable[[], float] = getattr(self.clock, "timestamp", self._clock_timestamp)
        if rng is not None and not callable(getattr(rng, "random", None)):
            raise ConfigError("rng", rng, "must be a random.Random (or have random()) or None")
        self.rng = rng if rng is not None else random.Random()
        self.link = link
        self.gate = (
            link.health
            if link is not None
            else BackendHealth(
                target,
                failure_threshold=config.failure_threshold,
                probe_interval=config.probe_interval,
                clock=self.clock,
            )
        )
        self._admit: Callable[[], Admission] = admit if admit is not None else self.gate.admit
        # Bound once: called after every successful Redis call.
        self.redis_ok: Callable[[], None] = self.gate.record_success
        self._memory: LRU[str, Entry] | None = LRU(config.maxsize) if config.maxsize else None
        self._lock = threading.Lock()
        # Bumped (under ``_lock``) by every write and delete in this process, every
        # invalidation and every change of the invalidation channel: a read whose GET
        # was in flight meanwhile must not keep what it read (see _replace).
        self.writes = 0
        # Coherent mode: invalidations keep the in-process tier in step with Redis.
        # ``watching`` is True while the channel is up (always, outside coherent mode).
        self.tracking = config.coherent and has_redis and self._memory is not None
        self.watching = not self.tracking
        self._swept_transitions = -1
        self.counters = Counters()
        self.reports = Reports(target)
        # Keys being looked up and loaded (single flight): the face's waitable object.
        self.flights = Flights(self._lock, self.counters)
        self.hit: Callable[[str], Any] = self._fresh_hit()

    def _clock_timestamp(self) -> float:
        return self.clock.now().timestamp()

    # -- backend state -------------------------------------------------------------

    @property
    def backend(self) -> str:
        return "redis" if self.has_redis and self.gate.available else "memory"

    def admit(self) -> bool:
        """Whether Redis may be called now; counts a short-circuited call when it is skipped.

        While Redis is down, the link runs the interval's probe in the
        background and this caller skips Redis like the others.
        """
        if self._admit() is Admission.CALL:
            return True
        self.counters.short_circuited += 1
        return False

    def redis_failed(self, exc: BaseException, operation: str) -> BackendError:
        """Account for a failed Redis call; returns it as a `BackendError` (not raised).

        The link classifies it and tells the gate (an outage counts towards
        skipping Redis, an error reply means Redis is up); the cache counts it
        and logs error replies (WRONGTYPE as a decode failure, OOM and the like
        as refusals), rate-limited.
        """
        self.counters.redis_errors += 1
        assert self.link is not None  # only a cache with Redis calls it
        error = self.link.failed(exc)
        gate = self.gate
        if self.tracking and not gate.available and self._swept_transitions != gate.transitions:
            # Redis is unreachable: what was copied before is not known to be current.
            self._swept_transitions = gate.transitions
            self.doubt_all()
        if is_answer(exc):
            # Redis answered (WRONGTYPE, OOM ...): it is up, the data or capacity is the problem.
            if str(exc).startswith("WRONGTYPE"):
                self.counters.decode_failures += 1
                self.reports.undecodable(f"the key of {operation}", exc, self.monotonic())
            else:
                write = operation.startswith(_WRITES)
                self.reports.refused(operation, exc, self.monotonic(), write=write)
        return error

    def stored(self, entry: Entry) -> None:
        """A write reached Redis: mark the entry, note Redis is up, end a refusal spell."""
        entry.in_redis = True
        self.redis_ok()
        self.reports.accepted()

    def wrong_types(self, rkeys: list[str], types: list[Any]) -> None:
        """Count (and log) the keys an MGET could not read because they hold another type."""
        for rkey, kind in zip(rkeys, types, strict=False):
            if kind not in (b"none", b"string", "none", "string"):
                self.counters.decode_failures += 1
                name = kind.decode() if isinstance(kind, bytes) else kind
                self.reports.undecodable(rkey, f"it holds a {name}, not a string", self.monotonic())

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
        seconds = _validate.positive_seconds_or_inf("ttl", chosen)
        if seconds == _INF:
            return None
        if self.jitter:
            seconds *= 1.0 - self.jitter * self.rng.random()
        return seconds

    # -- the in-process tier -------------------------------------------------------

    def new_entry(
        self, value: Any, now: float, ttl: float | None, delta: float, age: float = 0.0
    ) -> Entry:
        stored_at = now - age
        fresh_until = _INF if ttl is None else stored_at + ttl
        stale_until = fresh_until + self.max_stale
        check_at = fresh_until
        if self.local_ttl is not None:
            check_at = min(fresh_until, now + self.local_ttl)
        return Entry(value, stored_at, fresh_until, check_at, stale_until, delta, False)

    def _fresh_hit(self) -> Callable[[str], Any]:
        """Build `hit`: the in-process tier's fresh value for a key (counted), else `MISSING`.

        The hot path, measured against a bare cachetools lookup: a closure, so
        that what it uses are local names rather than attribute lookups.
        """
        memory = self._memory
        lock = self._lock
        monotonic = self.monotonic
        counters = self.counters
        missing = MISSING
        if memory is None:

            def no_tier(key: str) -> Any:
                return missing

            return no_tier
        recent = memory.move_to_end

        def hit(key: str) -> Any:
            with lock:
                # try/except, not memory.get or contextlib.suppress: the cheapest hit path.
                try:
                    entry = memory[key]
                except KeyError:
                    return missing
                if monotonic() < entry.check_at:
                    recent(key)
                    counters.memory_hits += 1  # under the lock: no count lost to a thread
                    return entry.value
            return missing

        return hit

    def remember(self, key: str, entry: Entry) -> None:
        """Keep a value this process wrote or loaded."""
        memory = self._memory
        if memory is not None:
            with self._lock:
                self.writes += 1
                if not self.watching:
                    # Asked for again while Redis is reachable; while it is not, still
                    # the newest value this process knows (as in any outage).
                    entry.check_at = -_INF
                memory[key] = entry

    def recall(self, key: str) -> Entry | None:
        """The in-process entry of ``key``, marked as just used; None when there is none.

        Every read path past the fresh-hit fast path (`hit`) comes here: a key
        read through `get_many`, `get_with_meta`, `get_or_set` or `cached` is
        as recently used as one read through `get`.
        """
        memory = self._memory
        if memory is None:
            return None
        with self._lock:
            entry = memory.get(key)
            if entry is not None:
                memory.move_to_end(key)
            return entry

    def forget(self, key: str) -> None:
        memory = self._memory
        if memory is not None:
            with self._lock:
                self.writes += 1
                memory.pop(key, None)

    def _drop(self, key: str, entry: Entry) -> None:
        """Forget ``entry`` unless another thread has stored a newer one meanwhile."""
        memory = self._memory
        if memory is not None:
            with self._lock:
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
        memory = self._memory
        if memory is not None:
            with self._lock:
                if memory.get(key) is not old:
                    return
                # In coherent mode an invalidation of this key, or a lost channel, may
                # have come while the GET was in flight: only ``writes`` tells.
                if self.writes == seen or (old is not None and not self.tracking):
                    if not self.watching:
                        # A copy no invalidation will reach: never fresh by itself.
                        new.check_at = -_INF
                        new.covered = False
                    memory[key] = new

    # -- coherence (see _coherence) -------------------------------------------------

    def drop_keys(self, keys: Iterable[str]) -> int:
        """Forget the entries of ``keys`` (another process changed them); returns how many."""
        memory = self._memory
        assert memory is not None  # coherent mode needs the in-process tier
        dropped = 0
        with self._lock:
            self.writes += 1
            for key in keys:
                if memory.pop(key, None) is not None:
                    dropped += 1
        return dropped

    def drop_all(self) -> int:
        """Forget every entry (Redis was flushed); returns how many."""
        memory = self._memory
        assert memory is not None
        with self._lock:
            self.writes += 1
            dropped = len(memory)
            memory.clear()
        return dropped

    def watch(self, up: bool) -> None:
        """The invalidation channel went up or down; down, no entry stays fresh by itself.

        Entries are kept as a fallback: while Redis cannot be asked they are
        served as stale (within ``max_stale``), never as fresh, and once Redis
        answers again each is read again before it is served.
        """
        with self._lock:
            self.writes += 1
            self.watching = up
        if not up:
            self.doubt_all()

    def doubt_all(self) -> None:
        """Mark every entry as one that may have been replaced unseen."""
        memory = self._memory
        assert memory is not None
        with self._lock:
            self.writes += 1
            for entry in memory.values():
                entry.check_at = -_INF
                entry.covered = False

    def forget_prefix(self, prefix: str) -> int:
        memory = self._memory
        if memory is None:
            return 0
        with self._lock:
            self.writes += 1
            doomed = [k for k in memory if k.startswith(prefix)]
            for k in doomed:
                del memory[k]
        return len(doomed)

    # -- early refresh -------------------------------------------------------------

    def should_refresh_early(self, entry: Entry, now: float) -> bool:
        """XFetch: refresh before expiry with a probability that grows near it."""
        beta = self.early_refresh
        if not beta or entry.fresh_until == _INF or entry.delta <= 0.0:
            return False
        gap = -entry.delta * beta * math.log(1.0 - self.rng.random())
        return now + gap >= entry.fresh_until

    # -- what a read returns ---------------------------------------------------------

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
        then may a value past its TTL (within ``max_stale``) be served, and then a
        copy the invalidation channel no longer covers is stale too.
        """
        if entry is not None:
            if now < entry.fresh_until and (entry.covered or not degraded):
                self.count_hit(source)
                return entry
            if degraded and now < entry.stale_until:
                self.counters.stale_served += 1
                self.counters.misses += 1
                return entry
        self.counters.misses += 1
        return None

    def looked_up(
        self, entry: Entry | None, source: Source, degraded: bool, now: float
    ) -> Landing | None:
        """A flight's lookup: the fresh value it found, or None when the loader must run."""
        if entry is not None and now < entry.fresh_until and (entry.covered or not degraded):
            return Landing(entry.value, source, entry, None, None)
        return None

    def landed(
        self, landing: Landing, local: Entry | None
    ) -> tuple[Any, Source, Entry | None] | None:
        """What one caller of ``get_or_set`` returns from a flight, counted once per caller.

        None: the loader failed and there is nothing within ``max_stale`` to serve.
        """
        if landing.source != "loader":
            self.count_hit(landing.source)
            return landing.value, landing.source, landing.entry
        self.counters.misses += 1
        if landing.error is None:
            return landing.value, "loader", None
        stale = landing.stale if landing.stale is not None else local
        served = self.loader_failed(landing.error, stale, self.monotonic())
        if served is None:
            return None
        return served.value, "memory", served

    def loader_failed(self, exc: BaseException, stale: Entry | None, now: float) -> Entry | None:
        """A loader raised: return a value within ``max_stale`` to serve instead, or None."""
        if stale is not None and now < stale.stale_until:
            self.counters.stale_served += 1
            self.reports.stale_served(exc, now - stale.stored_at, now)
            return stale
        return None

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
        decided by `Envelope.quick`: this sits on the path measured against a raw
        GET. Anything else, and every signed value, goes through `merge`, which
        verifies the signature before decoding.
        """
        value = self.envelope.quick(raw, self.wall())
        if value is not NOTHING:
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
        """Fill ``result`` from one MGET's answers (None: Redis skipped or failed).

        A `NodeFailure` in the answers (a cluster node that failed) is served
        for its key as a failed Redis would be.
        """
        for i, (key, local) in enumerate(wanted):
            if raws is None or isinstance(raws[i], NodeFailure):
                found = self.serve(local, "memory", True, now)
            else:
                merged = self.merge(key, self.redis_key(key), raws[i], local, now, seen)
                found = self.serve(*merged, now)
            if found is not None:
                result[key] = found.value

    # -- what a write stores ---------------------------------------------------------

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
            self.reports.unstorable(key, type(value).__qualname__, exc)
            return None
        entry = self.store_local(key, value, ttl, delta, now)
        return rkey, data, px, entry

    def prepare_many(
        self, items: list[tuple[str, Any, float | None]], now: float
    ) -> list[tuple[str, bytes, int | None, Entry]]:
        """`prepare` for several items: all are encoded before any is kept,
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
                    self.reports.refused(f"SET {rkey}", reply, self.monotonic())
                ok = False
                self.counters.redis_errors += 1
                self.counters.redis_set_failures += 1
            else:
                self.stored(entry)
        return ok

    # -- the envelope ------------------------------------------------------------------

    def encode(
        self, rkey: str, value: Any, ttl: float | None, delta: float
    ) -> tuple[bytes, int | None]:
        """Return (envelope bytes, PX milliseconds or None) for a value stored now.

        Without Redis nothing is stored, but the value is still checked: what a
        memory-only cache accepts, a Redis-backed one stores.
        """
        if not self.has_redis:
            self.envelope.check(value)
            return b"", None
        data = self.envelope.encode(rkey, value, self.wall(), ttl, delta)
        keep = _INF if ttl is None else ttl + self.max_stale  # Redis keeps stale values too
        px = None if keep == _INF else max(1, math.ceil(keep * 1000))
        return data, px

    def decode(self, rkey: str, raw: object, now: float) -> Entry | None:
        """Turn what Redis returned into an entry, or count and log why it is a miss."""
        try:
            stored_at, ttl, delta, value = self.envelope.decode(rkey, raw)
            age = self.wall() - stored_at
            if not age >= 0.0:  # a clock behind the writer's, or NaN from a corrupt header
                if age != age:
                    raise ValueError("corrupt header")
                age = 0.0
        except SignatureError as exc:
            self.counters.signature_failures += 1
            self.reports.unverified(rkey, exc, self.monotonic())
            return None
        except Exception as exc:  # any garbage must become a miss, never an error
            self.counters.decode_failures += 1
            self.reports.undecodable(rkey, exc, self.monotonic())
            return None
        entry = self.new_entry(value, now, None if ttl < 0 else ttl, max(0.0, delta), age)
        entry.in_redis = True
        return entry

    # -- stats ---------------------------------------------------------------------------

    def stats(self) -> CacheStats:
        counters = self.counters
        # Every counter is a CacheStats field of the same name.
        counts = {name: getattr(counters, name) for name in Counters.__slots__}
        with self._lock:
            entries = 0 if self._memory is None else len(self._memory)
            flights = len(self.flights)
        return CacheStats(
            **counts,
            backend=self.backend,
            memory_entries=entries,
            loads_in_flight=flights,
            backend_transitions=self.gate.transitions if self.has_redis else 0,
            coherent=self.tracking and self.watching,
        )

    def meta_of(self, value: Any, source: Source, served: Entry | None) -> CachedValue[Any]:
        """Describe what a load returned: a fresh load (served None) or an entry served."""
        if served is None:
            return CachedValue(value, 0.0, source, False)
        # An in-process entry served in place of a load had no fresh Redis value beside it.
        return self.meta(served, self.monotonic(), source, degraded=source == "memory")

    def meta(self, entry: Entry, now: float, source: Source, *, degraded: bool) -> CachedValue[Any]:
        fresh = now < entry.fresh_until and (entry.covered or not degraded)
        return CachedValue(entry.value, max(0.0, now - entry.stored_at), source, not fresh)
