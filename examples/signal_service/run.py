"""The ``run`` command: the service in real time on the simulated market.

``python -m examples.signal_service run`` starts a cycle every ``--interval``
seconds (5 by default, the market's step): each cycle asks the simulated
vendors about every symbol through `argo_perf.resilient`, computes a signal
with `compute_signal` and hands it to the SQLite tracker. A progress line
shows the cycles, the signals and the breakers; ``--serve PORT`` serves
``GET /api/v1/health`` and ``GET /metrics`` (see `examples.signal_service.http`)
while it runs. It stops on SIGINT (Ctrl-C), SIGTERM or after ``--duration``
seconds, writes the pending signals and prints how many it accepted and wrote.

**The cycle is a seam.** `run_service` runs whatever a `CycleFactory`
builds from the `Service` (the vendors, metrics, limiter, breakers, cache and
tracker): a coroutine function run once per cycle. `simple_cycle`, the
default, is deliberately plain (every symbol, every cycle, price then
indicators); an optimized pipeline passes its own factory and keeps the loop,
the endpoints, the signal handling and the totals:

```python
totals = await run_service(options, make_cycle=my_pipeline_cycle)
```

`add_run_command` registers the command on an ``argparse`` subparsers
object; the parsed arguments' ``func`` runs it and returns the exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import sqlite3
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from argo_perf import (
    ArgoPerfError,
    AsyncRedisCache,
    CircuitBreakerRegistry,
    ConfigError,
    PerformanceMetrics,
    RateLimiter,
    SystemClock,
    resilient,
)

from . import _validation as _validate
from .market import DEFAULT_SYMBOLS, Market
from .signals import compute_signal
from .sources import Indicators, Payload, VendorError, parse_alpha_vantage
from .tracker import AsyncSignalTracker
from .vendors import Vendors, simulated_vendors

__all__ = [
    "Cycle",
    "CycleFactory",
    "RunOptions",
    "RunTotals",
    "Service",
    "add_run_command",
    "run_command",
    "run_service",
    "simple_cycle",
]

Cycle = Callable[[], Awaitable[None]]
"""One cycle of the service: ask the sources about every symbol, track the signals."""

_FETCH_ERRORS = (VendorError, ArgoPerfError, TimeoutError)  # what a resilient call may end with


@dataclass(frozen=True)
class RunOptions:
    """The settings of a run, checked at construction.

    Args:
        symbols: the symbols followed (default `DEFAULT_SYMBOLS`).
        interval: seconds between the starts of two cycles (default 5.0).
        duration: seconds after which the run ends by itself, or None (the
            default) to run until SIGINT or SIGTERM.
        db: the SQLite file of the accepted signals (default ``signals.db``).
        redis_url: a ``redis://`` URL for the rate limits and the cache, or
            None (the default) to keep them in memory.
        serve: the port of the HTTP endpoints (0: a free one), or None (the
            default) for none.
        host: the address the endpoints listen on (default ``127.0.0.1``).
        seed: the simulated market's seed (default 0).

    Raises:
        ConfigError: a setting out of range, naming it and its value.
    """

    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    interval: float = 5.0
    duration: float | None = None
    db: str = "signals.db"
    redis_url: str | None = None
    serve: int | None = None
    host: str = "127.0.0.1"
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.symbols or not all(isinstance(s, str) and s for s in self.symbols):
            raise ConfigError("symbols", self.symbols, "must be one or more non-empty symbols")
        _validate.positive_seconds("interval", self.interval)
        _validate.optional(_validate.positive_seconds, "duration", self.duration)
        if not self.db:
            raise ConfigError("db", self.db, "must be a file path or ':memory:'")
        if self.redis_url is not None and not self.redis_url.startswith(
            ("redis://", "rediss://", "unix://")
        ):
            # Only the scheme is shown: a URL may carry a password.
            scheme = self.redis_url.partition("://")[0] if "://" in self.redis_url else "none"
            raise ConfigError(
                "redis_url", f"scheme {scheme}", "must be redis://, rediss:// or unix://"
            )
        if self.serve is not None and not (
            isinstance(self.serve, int)
            and not isinstance(self.serve, bool)
            and 0 <= self.serve <= 65535
        ):
            raise ConfigError("serve", self.serve, "must be a port in 0-65535 (0: a free port)")


@dataclass
class Service:
    """What a cycle works with, and what the HTTP endpoints read (an `http.HealthSource`).

    Attributes:
        symbols: the symbols followed.
        vendors: the simulated vendors.
        metrics: where requests and signal times are recorded.
        limiter: a token bucket per vendor (in Redis with ``--redis-url``).
        breakers: a circuit breaker per vendor.
        cache: the cache in front of slow-moving answers (in Redis with ``--redis-url``).
        tracker: the SQLite signal tracker.
    """

    symbols: tuple[str, ...]
    vendors: Vendors
    metrics: PerformanceMetrics
    limiter: RateLimiter
    breakers: CircuitBreakerRegistry
    cache: AsyncRedisCache
    tracker: AsyncSignalTracker
    clock: SystemClock = field(default_factory=SystemClock)

    def status(self) -> str:
        """``healthy`` with every breaker closed, ``unhealthy`` when the price source's
        is not (no signal can be made), ``degraded`` otherwise."""
        states = {name: stats.state for name, stats in self.breakers.stats.items()}
        if states.get(self.vendors.massive.name, "closed") != "closed":
            return "unhealthy"
        return "healthy" if all(s == "closed" for s in states.values()) else "degraded"


CycleFactory = Callable[[Service], Cycle]
"""Builds the cycle of a run from its `Service` (see the module docs)."""


def simple_cycle(service: Service) -> Cycle:
    """The plain cycle: every symbol at once, each its price, then its indicators.

    The price comes from ``massive`` (rate limited, behind its breaker, one
    retry); the indicators from ``alpha_vantage`` through the cache (60 s),
    its bucket (never waited for) and its breaker. A symbol without a price
    gets no signal this cycle; one without indicators gets a signal from the
    price alone. Each request's outcome and each signal's generation time go
    to ``service.metrics``.
    """
    clock = service.clock
    massive, alpha_vantage = service.vendors.massive, service.vendors.alpha_vantage

    price = resilient(
        massive.name,
        limiter=service.limiter,
        breaker=service.breakers.get(massive.name),
        retry=2,
        timeout=2.0,
        max_wait=1.0,
        metrics=service.metrics,
        clock=clock,
    )(massive.price)

    async def technical(symbol: str) -> Payload:
        payload = await alpha_vantage.query(symbol)
        parse_alpha_vantage(payload, symbol)  # an error body raises here, so it is not cached
        return payload

    indicators_payload = resilient(
        alpha_vantage.name,
        cache=service.cache,
        ttl=60.0,
        limiter=service.limiter,
        breaker=service.breakers.get(alpha_vantage.name),
        timeout=2.0,
        max_wait=0.0,
        metrics=service.metrics,
        clock=clock,
    )(technical)

    async def one(symbol: str) -> None:
        started = clock.monotonic()
        try:
            quote = await price(symbol)
        except _FETCH_ERRORS:
            return  # the outcome is in the metrics
        indicators: Indicators | None
        try:
            indicators = parse_alpha_vantage(await indicators_payload(symbol), symbol)
        except _FETCH_ERRORS:
            indicators = None
        signal = compute_signal(quote, indicators, timestamp=clock.now())
        service.metrics.record_signal_generation_time(clock.monotonic() - started)
        service.metrics.record_symbol_processed()
        await service.tracker.add(signal)

    async def cycle() -> None:
        await asyncio.gather(*(one(symbol) for symbol in service.symbols))

    return cycle


@dataclass(frozen=True)
class RunTotals:
    """What a run did.

    Attributes:
        cycles: cycles completed.
        accepted: signals the tracker accepted.
        written: signals written to the database.
        skipped: signals the tracker skipped as unchanged.
        url: where the endpoints were served, or None.
    """

    cycles: int
    accepted: int
    written: int
    skipped: int
    url: str | None = None


async def _first_of(task: asyncio.Future[None] | None, stop: asyncio.Event, timeout: float) -> bool:
    """Wait for ``task`` (if any), ``stop`` or ``timeout`` seconds; True if ``task`` ended."""
    stopper = asyncio.ensure_future(stop.wait())
    waiting: set[asyncio.Future[object]] = {stopper}  # type: ignore[arg-type]
    if task is not None:
        waiting.add(task)  # type: ignore[arg-type]
    try:
        done, _ = await asyncio.wait(
            waiting,
            timeout=None if math.isinf(timeout) else max(0.0, timeout),
            return_when=asyncio.FIRST_COMPLETED,
        )
    finally:
        stopper.cancel()
    return task is not None and task in done


async def _cycles(
    cycle: Cycle,
    *,
    interval: float,
    duration: float | None,
    stop: asyncio.Event,
    after_cycle: Callable[[int], Awaitable[None]],
) -> int:
    """Run ``cycle`` every ``interval`` seconds until ``stop`` or ``duration``; cycles completed.

    A cycle still running when the run ends is cancelled; what it handed to
    the tracker before stays accepted.
    """
    loop = asyncio.get_running_loop()
    end = math.inf if duration is None else loop.time() + duration
    cycles = 0
    while not stop.is_set() and loop.time() < end:
        started = loop.time()
        task = asyncio.ensure_future(cycle())
        if not await _first_of(task, stop, end - loop.time()):
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            break
        task.result()  # a cycle's own error (a bug) ends the run
        cycles += 1
        await after_cycle(cycles)
        await _first_of(None, stop, min(started + interval, end) - loop.time())
    return cycles


def _progress(service: Service, cycles: int) -> str:
    summary = service.metrics.get_summary()
    stats = service.tracker.stats
    breakers = ", ".join(f"{n} {s.state}" for n, s in sorted(service.breakers.stats.items()))
    return (
        f"cycle {cycles} | signals {stats.accepted} accepted, {stats.written} written"
        f" | avg {summary['avg_signal_generation_time']:.3f} s"
        f" | cache hits {summary['cache_hit_rate']:.0f} % | {service.status()} ({breakers})"
    )


async def run_service(
    options: RunOptions,
    *,
    make_cycle: CycleFactory = simple_cycle,
    out: TextIO | None = None,
    stop: asyncio.Event | None = None,
) -> RunTotals:
    """Run the service in real time until ``stop`` is set, SIGINT, SIGTERM or ``options.duration``.

    Builds the `Service` (market, vendors, metrics, limiter, breakers, cache,
    tracker), its cycle with ``make_cycle``, and, with ``options.serve``, the
    HTTP endpoints; then runs a cycle every ``options.interval`` seconds,
    writing a progress line to ``out`` (default stdout; rewritten in place on
    a terminal, one line per cycle otherwise). On the way out it stops the
    server, writes the pending signals and closes what it opened.

    SIGINT and SIGTERM set ``stop`` while it runs (when called on the main
    thread); the previous handlers are put back afterwards.

    Raises:
        ConfigError: a bad setting (``options`` checks most when built).
        sqlite3.Error, OSError: the database cannot be opened.
        ImportError: ``serve`` without the ``service`` extra.
    """
    out = sys.stdout if out is None else out
    stop = asyncio.Event() if stop is None else stop
    loop = asyncio.get_running_loop()
    if options.serve is not None:
        try:  # before anything is opened: the extra may be missing
            from . import http  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                f"--serve needs the service extra: pip install 'argo-perf[service]' ({exc})"
            ) from None
    clock = SystemClock()
    limiter = RateLimiter(redis=options.redis_url, clock=clock)
    # The vendors' answers are dataclasses: signed pickle. Processes sharing one Redis
    # share its values only with one key: SIGNAL_SERVICE_SIGNING_KEY (hex), else a
    # key of this process's own.
    cache = AsyncRedisCache(
        options.redis_url,
        namespace="signal_service",
        serializer="pickle",
        signing_key=_signing_key(),
        clock=clock,
    )
    tracker: AsyncSignalTracker | None = None
    handled: list[signal.Signals] = []
    try:
        tracker = await AsyncSignalTracker.open(options.db, clock=clock)
        service = Service(
            symbols=options.symbols,
            vendors=simulated_vendors(Market(options.seed), clock=clock),
            metrics=PerformanceMetrics(clock=clock),
            limiter=limiter,
            breakers=CircuitBreakerRegistry(clock=clock),
            cache=cache,
            tracker=tracker,
            clock=clock,
        )
        cycle = make_cycle(service)
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
                handled.append(signum)
        live = out.isatty()

        async def after_cycle(cycles: int) -> None:
            line = _progress(service, cycles)
            out.write(f"\r\x1b[2K{line}" if live else f"{line}\n")
            out.flush()

        async def run(url: str | None) -> RunTotals:
            cycles = await _cycles(
                cycle,
                interval=options.interval,
                duration=options.duration,
                stop=stop,
                after_cycle=after_cycle,
            )
            if live:
                out.write("\n")
            assert tracker is not None
            await tracker.flush()
            stats = tracker.stats
            return RunTotals(cycles, stats.accepted, stats.written, stats.skipped, url)

        if options.serve is None:
            return await run(None)
        from .http import HEALTH_PATH, METRICS_PATH, create_app, serving

        async with serving(create_app(service), options.host, options.serve) as server:
            out.write(f"serving {server.url}{HEALTH_PATH} and {server.url}{METRICS_PATH}\n")
            out.flush()
            return await run(server.url)
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
        if tracker is not None:
            await tracker.close()
        await cache.close()
        await limiter.aclose()


# --- the command line ---------------------------------------------------------------------


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0.0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be > 0 and finite, got {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port in 0-65535, got {value}")
    return value


def _symbols(text: str) -> tuple[str, ...]:
    symbols = tuple(s.strip().upper() for s in text.split(",") if s.strip())
    if not symbols:
        raise argparse.ArgumentTypeError(f"no symbol in {text!r}")
    return symbols


def add_run_command(
    subparsers: argparse._SubParsersAction[Any],
) -> argparse.ArgumentParser:
    """Register ``run`` on ``subparsers``; the parsed arguments' ``func`` runs it.

    Example:
        ```python
        parser = argparse.ArgumentParser(prog="python -m examples.signal_service")
        add_run_command(parser.add_subparsers(dest="command", required=True))
        args = parser.parse_args(["run", "--duration", "10"])
        sys.exit(args.func(args))
        ```
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "run",
        help="run the service in real time on the simulated market",
        description=(
            "Run the signal service in real time on the simulated market: a cycle every "
            "--interval seconds, a progress line, the signals in SQLite. Stops on Ctrl-C, "
            "SIGTERM or after --duration seconds, and prints how many signals it accepted "
            "and wrote."
        ),
    )
    parser.add_argument(
        "--duration",
        type=_seconds,
        metavar="SECONDS",
        help="stop by itself after SECONDS (default: run until Ctrl-C or SIGTERM)",
    )
    parser.add_argument(
        "--serve",
        type=_port,
        metavar="PORT",
        help="serve GET /api/v1/health and GET /metrics on PORT, 0 for a free port "
        "(the URL is printed; needs the service extra; default: no HTTP)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address --serve listens on (default: 127.0.0.1, this machine only)",
    )
    parser.add_argument(
        "--db",
        default="signals.db",
        metavar="PATH",
        help="the SQLite file of accepted signals, created when missing (default: signals.db)",
    )
    parser.add_argument(
        "--redis-url",
        metavar="URL",
        help="keep the rate limits and the cache in Redis at URL (redis://host:port/db); "
        "default: in memory",
    )
    parser.add_argument(
        "--interval",
        type=_seconds,
        default=5.0,
        metavar="SECONDS",
        help="seconds between the starts of two cycles (default: 5, the market's step)",
    )
    parser.add_argument(
        "--symbols",
        type=_symbols,
        default=DEFAULT_SYMBOLS,
        metavar="LIST",
        help=f"comma-separated symbols to follow (default: {','.join(DEFAULT_SYMBOLS)})",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="the simulated market's seed (default: 0)"
    )
    parser.set_defaults(func=run_command)
    return parser


def _signing_key() -> bytes:
    """SIGNAL_SERVICE_SIGNING_KEY (hex) when set, else a key of this process's own."""
    shared = os.environ.get("SIGNAL_SERVICE_SIGNING_KEY")
    if not shared:
        return os.urandom(32)
    try:
        return bytes.fromhex(shared)
    except ValueError:
        raise ConfigError(
            "SIGNAL_SERVICE_SIGNING_KEY", "(not shown)", "must be hexadecimal"
        ) from None


def run_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run ``run`` with parsed arguments; the exit status (0, or 1 after a one-line error)."""
    out = sys.stdout if out is None else out
    try:
        options = RunOptions(
            symbols=args.symbols,
            interval=args.interval,
            duration=args.duration,
            db=args.db,
            redis_url=args.redis_url,
            serve=args.serve,
            host=args.host,
            seed=args.seed,
        )
        totals = asyncio.run(run_service(options, out=out))
    except sqlite3.Error as exc:
        print(f"error: cannot use the database {args.db}: {exc}", file=sys.stderr)
        return 1
    except (ConfigError, ImportError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    cycles = f"{totals.cycles} cycle{'' if totals.cycles == 1 else 's'}"
    out.write(
        f"stopped after {cycles}: {totals.accepted} signals accepted, "
        f"{totals.written} written to {options.db}\n"
    )
    out.flush()
    return 0
