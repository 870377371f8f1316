"""One fault matrix for every Redis-backed piece: fault x piece x face.

Faults, each begun and ended on a real ``redis-server`` (directly, or through a
`TcpProxy`): killed (started again, empty, when it ends), frozen (SIGSTOP, then
SIGCONT), restarted empty, slow (``DEBUG SLEEP``), the piece's connection killed
while its call waits (``CLIENT KILL`` under ``CLIENT PAUSE WRITE``), full
(``maxmemory`` with ``noeviction``), and the proxy's delay, drop and cut.

Pieces: the cache (`RedisCache` / `AsyncRedisCache`), `RedisTokenBucket`, and a
`CircuitBreaker` sharing its state through a `RedisBreakerState`. Faces: the
sync one and the asyncio one.

In every cell:

* no exception escapes but the documented ones (the vendor's own error through
  a breaker, and `CircuitOpenError`);
* no call takes longer than the socket timeout plus a margin for a loaded host
  (measured with ``time.monotonic``: a bound the library promises, not a
  benchmark);
* the public ``stats`` say what happened;
* a write the piece accepted is stored or reported as not stored (``False``, or
  a counter);
* the piece is back on Redis by itself once the fault ends (at most one probe
  interval of its clock);
* the bucket's fallback grants at most its share during the fault, and Redis
  no more than the limit after it.

Each cell records what it saw; ``benchmarks/fault_table.py`` prints that as the
table in ``docs/redis.md``.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import pytest
import redis

from argo_perf import (
    AsyncRedisCache,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    ManualClock,
    RedisCache,
    RedisTokenBucket,
)
from argo_perf._redis import BackendHealth
from argo_perf.breaker import RedisBreakerState, Transition
from argo_perf.testing import RedisServer, TcpProxy, join_redis_probes, join_redis_probes_async

SOCKET_TIMEOUT = 0.2
"""Every piece's socket timeout (seconds)."""
MARGIN = 0.15
"""What a loaded 2-core host may add to a call on top of the socket timeout."""
BOUND = SOCKET_TIMEOUT + MARGIN
THRESHOLD = 2
"""Consecutive outages before a piece stops calling Redis."""
PROBE_INTERVAL = 1.0

TABLE_ENV = "ARGO_PERF_FAULT_TABLE"
"""When set, the path where the cells' observations are written as JSON."""


# -- the rig: a server, maybe a proxy, an admin connection, a clock ----------------------


@dataclass
class Rig:
    server: RedisServer
    proxy: TcpProxy | None
    clock: ManualClock = field(default_factory=ManualClock)

    @property
    def url(self) -> str:
        """The pieces' URL: through the proxy when there is one."""
        base = self.proxy.url if self.proxy is not None else self.server.url
        return f"{base}?socket_timeout={SOCKET_TIMEOUT}"

    def admin(self) -> redis.Redis:
        """A client straight to the server (never through the proxy)."""
        return self.server.client(socket_timeout=5.0)

    def gate(self) -> BackendHealth:
        return BackendHealth(
            "fault-matrix",
            failure_threshold=THRESHOLD,
            probe_interval=PROBE_INTERVAL,
            clock=self.clock,
        )


# -- faults ---------------------------------------------------------------------------------


class Fault:
    """Something that happens to Redis or to the network, from `begin` to `end`."""

    name: ClassVar[str]
    server_args: ClassVar[tuple[str, ...]] = ()
    proxied: ClassVar[bool] = False
    wipes: ClassVar[bool] = False
    """The server's data is gone afterwards."""
    disrupts: ClassVar[bool] = True
    """Every piece must count at least one failed or skipped call."""

    def begin(self, rig: Rig) -> None:
        raise NotImplementedError

    def end(self, rig: Rig) -> None:
        """Undo the fault (nothing, for one that is over at once)."""


class Killed(Fault):
    name = "killed"
    wipes = True

    def begin(self, rig: Rig) -> None:
        rig.server.kill()

    def end(self, rig: Rig) -> None:
        rig.server.start()


class Frozen(Fault):
    name = "frozen"

    def begin(self, rig: Rig) -> None:
        rig.server.pause()

    def end(self, rig: Rig) -> None:
        rig.server.resume()


class RestartedEmpty(Fault):
    name = "restarted empty"
    wipes = True
    disrupts = False  # a dead pooled connection is replaced without a failed call

    def begin(self, rig: Rig) -> None:
        rig.server.restart()


class Slow(Fault):
    """``DEBUG SLEEP``: the server answers nobody for longer than a few socket timeouts."""

    name = "slow (DEBUG SLEEP)"
    server_args = ("--enable-debug-command", "yes")
    seconds = 3 * SOCKET_TIMEOUT

    def begin(self, rig: Rig) -> None:
        self._conn = redis.Connection(host=rig.server.host, port=rig.server.port, socket_timeout=5)
        self._conn.send_command("DEBUG", "SLEEP", str(self.seconds))

    def end(self, rig: Rig) -> None:
        try:
            assert self._conn.read_response() == b"OK"  # the sleep is over
        finally:
            self._conn.disconnect()


class ClientKilled(Fault):
    """The piece's connection is killed while its call waits for the reply.

    Writes (and scripts) wait under ``CLIENT PAUSE WRITE``; a watcher kills
    every normal client as soon as one waits, then lifts the pause.
    """

    name = "CLIENT KILL mid-call"

    def begin(self, rig: Rig) -> None:
        admin = rig.admin()
        admin.client_pause(10_000, all=False)
        self._killed = threading.Event()
        self._watcher = threading.Thread(target=self._watch, args=(admin,))
        self._watcher.start()

    def _watch(self, admin: redis.Redis) -> None:
        try:
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline:
                if any("b" in c["flags"] for c in admin.client_list()):
                    admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
                    self._killed.set()
                    return
        finally:
            admin.client_unpause()
            admin.close()

    def end(self, rig: Rig) -> None:
        self._watcher.join()
        assert self._killed.is_set(), "no call waited on the paused server"


class Full(Fault):
    """``maxmemory`` below what is used, with ``noeviction``: every write is refused."""

    name = "maxmemory noeviction"
    server_args = ("--maxmemory-policy", "noeviction")

    def begin(self, rig: Rig) -> None:
        with rig.admin() as admin:
            admin.config_set("maxmemory", int(admin.info("memory")["used_memory"]) // 2)

    def end(self, rig: Rig) -> None:
        with rig.admin() as admin:
            admin.config_set("maxmemory", 0)


class Delayed(Fault):
    name = "proxy delay"
    proxied = True

    def begin(self, rig: Rig) -> None:
        assert rig.proxy is not None
        rig.proxy.delay(3 * SOCKET_TIMEOUT)

    def end(self, rig: Rig) -> None:
        assert rig.proxy is not None
        rig.proxy.heal()


class Dropped(Fault):
    name = "proxy drop"
    proxied = True

    def begin(self, rig: Rig) -> None:
        assert rig.proxy is not None
        rig.proxy.drop()

    def end(self, rig: Rig) -> None:
        assert rig.proxy is not None
        rig.proxy.heal()


class Cut(Fault):
    name = "proxy cut"
    proxied = True
    disrupts = False  # over at once: a pooled connection may be replaced before use

    def begin(self, rig: Rig) -> None:
        assert rig.proxy is not None
        rig.proxy.cut()


FAULTS: list[type[Fault]] = [
    Killed,
    Frozen,
    RestartedEmpty,
    Slow,
    ClientKilled,
    Full,
    Delayed,
    Dropped,
    Cut,
]


# -- timed calls ------------------------------------------------------------------------------


@dataclass
class Observed:
    """What one cell saw, for the table."""

    first_ms: float = 0.0
    waited: int = 0
    """Calls that waited for a timeout (took more than half the socket timeout)."""
    others_ms: float = 0.0
    """The slowest of the other calls."""
    served: int = 0
    lost: int = 0
    wiped: int = 0
    probes: int = 0


class Calls:
    """Runs a piece's calls (awaiting them on the asyncio face) and times each one."""

    def __init__(self) -> None:
        self.during: list[float] = []
        self.recording = False

    async def __call__(self, fn: Callable[..., Any], *args: Any) -> Any:
        """The call's result, or the documented exception it raised (returned)."""
        start = time.monotonic()
        try:
            result = fn(*args)
            if inspect.isawaitable(result):
                result = await result
        except (VendorDown, CircuitOpenError) as exc:
            result = exc
        elapsed = time.monotonic() - start
        if self.recording:
            self.during.append(elapsed)
        assert elapsed <= BOUND, f"{getattr(fn, '__name__', fn)} took {elapsed:.3f} s"
        return result


# -- pieces -----------------------------------------------------------------------------------


class VendorDown(Exception):
    pass


def vendor_down() -> None:
    raise VendorDown


async def vendor_down_async() -> None:
    raise VendorDown


class Piece:
    """One Redis-backed piece on one face, and its workload before, during and after a fault."""

    name: ClassVar[str]

    def __init__(self, rig: Rig, face: str, fault: Fault) -> None:
        self.rig = rig
        self.face = face
        self.fault = fault
        self.calls = Calls()
        self.seen = Observed()

    async def before(self) -> None:
        """Work on a healthy Redis."""

    async def during(self) -> None:
        raise NotImplementedError

    async def touch(self) -> None:
        """One call that goes to Redis when it may (and starts a due probe)."""
        raise NotImplementedError

    def on_redis(self) -> bool:
        raise NotImplementedError

    async def after(self) -> None:
        """Back on Redis: check what was kept, what was reported, that Redis serves again."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class Cache(Piece):
    name = "cache"
    KEYS = 4

    def __init__(self, rig: Rig, face: str, fault: Fault) -> None:
        super().__init__(rig, face, fault)
        kind = RedisCache if face == "sync" else AsyncRedisCache
        self.cache: RedisCache | AsyncRedisCache = kind(
            rig.url,
            socket_timeout=SOCKET_TIMEOUT,
            failure_threshold=THRESHOLD,
            probe_interval=PROBE_INTERVAL,
            clock=rig.clock,
            default_ttl=60.0,
            local_ttl=1.0,  # reads past it ask Redis
        )
        self.written: dict[str, tuple[int, bool]] = {}

    def reader(self) -> RedisCache:
        """Reads Redis itself (no in-process tier, not through the proxy)."""
        return RedisCache(self.rig.server.url, maxsize=0, socket_timeout=5.0, clock=self.rig.clock)

    async def before(self) -> None:
        for i in range(self.KEYS):
            assert await self.calls(self.cache.set, f"before:{i}", i) is True
        self.rig.clock.advance(1.0)  # past local_ttl: every read asks Redis

    async def _check_before(self, value: object, i: int) -> None:
        if value == i:
            self.seen.served += 1
        elif value is None and self.fault.wipes:
            self.seen.wiped += 1  # the server lost it, and said so: a miss, not a loss
        else:
            self.seen.lost += 1

    async def during(self) -> None:
        cache, calls = self.cache, self.calls
        stats = cache.stats
        for i in range(self.KEYS):
            key = f"during:{i}"
            self.written[key] = (i, await calls(cache.set, key, i))
        for i in range(self.KEYS):
            await self._check_before(await calls(cache.get, f"before:{i}"), i)
        many = await calls(cache.get_many, [f"before:{i}" for i in range(self.KEYS)])
        for i in range(self.KEYS):
            await self._check_before(many.get(f"before:{i}"), i)
        now = cache.stats
        refused = sum(1 for _, ok in self.written.values() if not ok)
        assert now.redis_set_failures - stats.redis_set_failures == refused
        trouble = (now.redis_errors - stats.redis_errors) + (
            now.short_circuited - stats.short_circuited
        )
        if self.fault.disrupts:
            assert trouble > 0
        if isinstance(self.fault, Full):
            assert refused == self.KEYS  # every write refused, and said so
            assert now.backend == "redis"  # Redis answered: full, not down

    async def touch(self) -> None:
        await self.calls(self.cache.get, "before:0")

    def on_redis(self) -> bool:
        return self.cache.backend == "redis"

    async def after(self) -> None:
        cache, calls = self.cache, self.calls
        with self.reader() as reader:
            for key, (value, stored) in self.written.items():
                # Accepted: served by this cache, from either tier.
                if await calls(cache.get, key) != value:
                    self.seen.lost += 1
                # Reported stored: Redis has it.
                if stored and reader.get(key) != value:
                    self.seen.lost += 1
            hits = cache.stats.redis_hits
            assert await calls(cache.set, "after", 1) is True
            assert reader.get("after") == 1
            reader.set("other", 2)  # another process's write, read through Redis
            assert await calls(cache.get, "other") == 2
            assert cache.stats.redis_hits == hits + 1

    async def close(self) -> None:
        if isinstance(self.cache, AsyncRedisCache):
            await self.cache.close()
        else:
            self.cache.close()


class Bucket(Piece):
    name = "token bucket"
    RATE, BURST, SHARE = 1.0, 8, 0.25
    CALLS = 10

    def __init__(self, rig: Rig, face: str, fault: Fault) -> None:
        super().__init__(rig, face, fault)
        self.bucket = RedisTokenBucket(
            rig.url,
            "vendor",
            rate=self.RATE,
            burst=self.BURST,
            fallback_share=self.SHARE,
            health=rig.gate(),
            clock=rig.clock,
        )
        self.started = time.monotonic()

    async def acquire(self) -> bool:
        if self.face == "sync":
            return bool(await self.calls(self.bucket.try_acquire))
        return bool(await self.calls(self.bucket.acquire_async, 1, 0))

    async def before(self) -> None:
        for _ in range(2):
            assert await self.acquire() is True
        assert self.bucket.stats.redis_calls == 2

    async def during(self) -> None:
        bucket = self.bucket
        stats, local = bucket.stats, bucket.fallback.stats
        granted = sum([await self.acquire() for _ in range(self.CALLS)])
        self.seen.served = granted
        now, local_now = bucket.stats, bucket.fallback.stats
        # Every call decided: granted or denied, by Redis or by the fallback.
        assert (now.granted - stats.granted) + (now.denied - stats.denied) == self.CALLS
        assert now.granted - stats.granted == granted
        # The fallback's share: its burst (the clock stood still during the fault).
        assert local_now.granted - local.granted <= max(1, self.BURST * self.SHARE)
        trouble = (now.errors - stats.errors) + (now.fallback_calls - stats.fallback_calls)
        if self.fault.disrupts:
            assert trouble > 0
        if isinstance(self.fault, Full):
            assert bucket.backend == "redis"  # OOM is an answer: Redis is up

    async def touch(self) -> None:
        await self.acquire()

    def on_redis(self) -> bool:
        return self.bucket.backend == "redis"

    async def after(self) -> None:
        bucket = self.bucket
        stats, local = bucket.stats, bucket.fallback.stats
        granted = sum([await self.acquire() for _ in range(3 * self.BURST)])
        now, local_now = bucket.stats, bucket.fallback.stats
        assert local_now.granted == local.granted  # all decided by Redis
        assert now.redis_calls - stats.redis_calls == 3 * self.BURST
        # No burst beyond the limit once Redis decides again.
        assert granted <= self.BURST + self.RATE * (time.monotonic() - self.started)
        if self.fault.wipes:
            assert now.script_loads >= 1  # the restarted server was sent the script again

    async def close(self) -> None:
        await self.bucket.aclose() if self.face == "async" else self.bucket.close()


class Breaker(Piece):
    name = "breaker (shared state)"
    TRIPPED = ("b1", "b2", "b3")

    def __init__(self, rig: Rig, face: str, fault: Fault) -> None:
        super().__init__(rig, face, fault)
        self.state = RedisBreakerState(rig.url, clock=rig.clock, health=rig.gate())
        self.transitions: list[Transition] = []
        self.breakers: dict[str, CircuitBreaker] = {}

    def breaker(self, name: str, open_for: float = 30.0) -> CircuitBreaker:
        if name not in self.breakers:
            self.breakers[name] = CircuitBreaker(
                name,
                CircuitBreakerConfig(failure_threshold=2, success_threshold=1, timeout=open_for),
                clock=self.rig.clock,
                shared=self.state,
                listeners=[self.transitions.append],
            )
        return self.breakers[name]

    async def fail(self, name: str) -> object:
        breaker = self.breaker(name)
        if self.face == "sync":
            return await self.calls(breaker.call, vendor_down)
        return await self.calls(breaker.call_async, vendor_down_async)

    async def before(self) -> None:
        assert isinstance(await self.fail("a"), VendorDown)  # closed: asks Redis, which says no
        # "probe" opens for a millisecond, in Redis too: its next call is a half-open probe.
        self.breaker("probe", open_for=0.001)
        for _ in range(2):
            assert isinstance(await self.fail("probe"), VendorDown)
        with self.rig.admin() as admin:
            while admin.exists("argo_perf:breaker:{probe}:open"):
                pass
        self.rig.clock.advance(0.001)

    async def during(self) -> None:
        stats = self.state.stats
        # The probe asks Redis for the probe lease, fails, and publishes the opening:
        # two requests in one call, which together must not wait more than one timeout.
        assert isinstance(await self.fail("probe"), VendorDown)
        assert self.breaker("probe").stats.state == "open"
        for name in self.TRIPPED:
            outcomes = [await self.fail(name) for _ in range(3)]
            expected: list[type[Exception]] = [VendorDown, VendorDown, CircuitOpenError]
            if all(isinstance(o, kind) for o, kind in zip(outcomes, expected, strict=True)):
                self.seen.served += 3
            else:
                self.seen.lost += 1
            assert self.breaker(name).stats.state == "open"  # the local breaker decided
        now = self.state.stats
        trouble = (now.errors - stats.errors) + (now.skipped - stats.skipped)
        if self.fault.disrupts:
            assert trouble > 0
        self.reported = trouble

    async def touch(self) -> None:
        self.touches = getattr(self, "touches", 0) + 1
        await self.fail(f"touch{self.touches}")

    def on_redis(self) -> bool:
        return self.state.stats.available

    async def after(self) -> None:
        with self.rig.admin() as admin:
            # Each opening of the fault reached Redis, or its failure was counted.
            unpublished = sum(
                1 for name in self.TRIPPED if admin.pttl(f"argo_perf:breaker:{{{name}}}:open") <= 0
            )
            assert unpublished <= self.reported
            errors = self.state.stats.errors
            for _ in range(2):
                assert isinstance(await self.fail("after"), VendorDown)
            assert 29_000 < admin.pttl("argo_perf:breaker:{after}:open") <= 30_000
            assert self.state.stats.errors == errors

    async def close(self) -> None:
        await self.state.aclose() if self.face == "async" else self.state.close()


PIECES: list[type[Piece]] = [Cache, Bucket, Breaker]


# -- the matrix -------------------------------------------------------------------------------

OBSERVED: dict[str, dict[str, Any]] = {}


@pytest.fixture(scope="module", autouse=True)
def _write_table() -> Iterator[None]:
    yield
    path = os.environ.get(TABLE_ENV)
    if path:
        with open(path, "w", encoding="utf-8") as out:
            json.dump(OBSERVED, out, indent=1)


@pytest.fixture
def rig(request: pytest.FixtureRequest, redis_factory: Callable[..., RedisServer]) -> Iterator[Rig]:
    fault: type[Fault] = request.node.callspec.params["fault"]
    server = redis_factory(extra_args=list(fault.server_args))
    with contextlib.ExitStack() as stack:
        proxy = None
        if fault.proxied:
            proxy = stack.enter_context(TcpProxy(server.host, server.port))
        yield Rig(server, proxy)


async def back_on_redis(piece: Piece, clock: ManualClock) -> int:
    """Probe intervals (on the piece's clock) until it uses Redis again; 0: it never left."""
    for intervals in range(3):
        if piece.on_redis():
            return intervals
        clock.advance(PROBE_INTERVAL)
        await piece.touch()  # answered by the fallback; starts the background probe
        join_redis_probes()
        await join_redis_probes_async()
    pytest.fail(f"{piece.name} is not back on Redis after 3 probe intervals")


@pytest.mark.parametrize("face", ["sync", "async"])
@pytest.mark.parametrize("piece", PIECES, ids=lambda p: p.name.split()[0])
@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.__name__)
async def test_a_piece_survives_the_fault_and_comes_back(
    fault: type[Fault], piece: type[Piece], face: str, rig: Rig
) -> None:
    injected = fault()
    cell = piece(rig, face, injected)
    try:
        await cell.before()
        injected.begin(rig)
        cell.calls.recording = True
        try:
            await cell.during()
        finally:
            cell.calls.recording = False
            injected.end(rig)
        cell.seen.probes = await back_on_redis(cell, rig.clock)
        await cell.after()
    finally:
        await cell.close()
    assert cell.seen.lost == 0
    during = cell.calls.during
    cell.seen.first_ms = during[0] * 1000
    cell.seen.waited = sum(1 for t in during if t > SOCKET_TIMEOUT / 2)
    cell.seen.others_ms = max([t for t in during if t <= SOCKET_TIMEOUT / 2] or [0.0]) * 1000
    OBSERVED[f"{fault.name}|{piece.name}|{face}"] = asdict(cell.seen)
