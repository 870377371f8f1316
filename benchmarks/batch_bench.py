"""Batcher throughput at 200 concurrent callers, next to single-key calls and aiodataloader.

Every round, 200 callers (asyncio tasks, or threads) ask for one distinct
symbol each, all at once, and the round ends when the last one has its
value. Medians over rounds, one process:

1. a simulated vendor: one request costs ``LATENCY`` seconds plus
   ``PER_KEY`` seconds per symbol in it, and at most ``CONNECTIONS``
   requests run at once (a client's connection pool). Each caller calls the
   single-key endpoint itself, or goes through a `Batcher` (``max_size=100``)
   of the batch endpoint; asyncio tasks, then threads for the sync face;
2. the batching machinery alone: the same 200 asyncio callers against a
   source that answers at once (a dict lookup), in microseconds per key.

``aiodataloader`` (the ``bench`` extra) batches the calls of one event-loop
iteration, like ``Batcher(window=0)``; it is given ``cache=False`` so both
fetch every round. A missing peer is reported and skipped.

    python benchmarks/batch_bench.py            # full run (~15 s)
    python benchmarks/batch_bench.py --quick    # short run
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from _markdown import table
from argo_perf import Batcher

try:
    import aiodataloader
except ImportError:  # pragma: no cover - the peer is optional
    aiodataloader = None

CALLERS = 200
MAX_SIZE = 100
LATENCY = 0.005  # seconds a vendor request takes, whatever it asks for
PER_KEY = 20e-6  # seconds the vendor spends on each symbol of a request
CONNECTIONS = 10  # vendor requests in flight at once
SYMBOLS = [f"S{n:03d}" for n in range(CALLERS)]


class AsyncVendor:
    """The simulated vendor for asyncio callers; counts its requests."""

    def __init__(self) -> None:
        self.requests = 0
        self.pool = asyncio.Semaphore(CONNECTIONS)

    async def quote(self, symbol: str) -> float:
        async with self.pool:
            self.requests += 1
            await asyncio.sleep(LATENCY + PER_KEY)
            return 100.0

    async def quotes(self, symbols: list[str]) -> dict[str, float]:
        async with self.pool:
            self.requests += 1
            await asyncio.sleep(LATENCY + PER_KEY * len(symbols))
            return dict.fromkeys(symbols, 100.0)


class SyncVendor:
    """The simulated vendor for threads; counts its requests."""

    def __init__(self) -> None:
        self.requests = 0
        self.pool = threading.BoundedSemaphore(CONNECTIONS)
        self.lock = threading.Lock()

    def _request(self, keys: int) -> None:
        with self.pool:
            with self.lock:
                self.requests += 1
            time.sleep(LATENCY + PER_KEY * keys)

    def quote(self, symbol: str) -> float:
        self._request(1)
        return 100.0

    def quotes(self, symbols: list[str]) -> dict[str, float]:
        self._request(len(symbols))
        return dict.fromkeys(symbols, 100.0)


def dataloader(batch: Callable[[list[str]], Awaitable[dict[str, float]]]) -> Any:
    """An aiodataloader `DataLoader` over a mapping-returning batch function (no cache)."""

    async def load_list(keys: list[str]) -> list[float]:
        found = await batch(keys)
        return [found[key] for key in keys]

    return aiodataloader.DataLoader(load_list, max_batch_size=MAX_SIZE, cache=False)


def async_rounds(
    builders: dict[str, Callable[[], tuple[Callable[[str], Awaitable[float]], Any]]],
    rounds: int,
) -> dict[str, tuple[float, float]]:
    """Median seconds for 200 concurrent callers, and requests per round, of each contender."""

    async def run() -> dict[str, tuple[float, float]]:
        seconds: dict[str, list[float]] = {name: [] for name in builders}
        requests: dict[str, int] = dict.fromkeys(builders, 0)
        for _ in range(rounds):  # interleaved, so drift hits every contender alike
            for name, build in builders.items():
                load, counted = build()
                gc.collect()  # no collection pause inside a timed round

                async def caller(symbol: str) -> float:
                    return await load(symbol)  # noqa: B023 - called within this iteration

                start = time.perf_counter()
                values = await asyncio.gather(*(caller(symbol) for symbol in SYMBOLS))
                seconds[name].append(time.perf_counter() - start)
                assert values == [100.0] * CALLERS
                requests[name] += getattr(counted, "requests", 0)
        return {
            name: (statistics.median(values), requests[name] / rounds)
            for name, values in seconds.items()
        }

    return asyncio.run(run())


def vendor_builders() -> dict[str, Callable[[], tuple[Callable[[str], Awaitable[float]], Any]]]:
    def single() -> tuple[Callable[[str], Awaitable[float]], Any]:
        vendor = AsyncVendor()
        return vendor.quote, vendor

    def batched(window: float) -> Callable[[], tuple[Callable[[str], Awaitable[float]], Any]]:
        def build() -> tuple[Callable[[str], Awaitable[float]], Any]:
            vendor = AsyncVendor()
            return Batcher(vendor.quotes, max_size=MAX_SIZE, window=window).load_async, vendor

        return build

    builders = {
        "single-key calls": single,
        "argo_perf Batcher, window=0": batched(0.0),
        "argo_perf Batcher, window=1 ms": batched(0.001),
    }
    if aiodataloader is not None:

        def peer() -> tuple[Callable[[str], Awaitable[float]], Any]:
            vendor = AsyncVendor()
            return dataloader(vendor.quotes).load, vendor

        builders["aiodataloader DataLoader"] = peer
    return builders


def thread_rounds(rounds: int) -> dict[str, tuple[float, float]]:
    """The sync face: 200 threads (a pool started beforehand) call at once."""
    windows = {
        "argo_perf Batcher.load, window=1 ms": 0.001,
        "argo_perf Batcher.load, window=5 ms": 0.005,
    }
    seconds: dict[str, list[float]] = {"single-key calls": []}
    seconds.update({name: [] for name in windows})
    requests = dict.fromkeys(seconds, 0)
    with ThreadPoolExecutor(max_workers=CALLERS) as pool:
        list(pool.map(lambda _: time.sleep(0.01), range(CALLERS)))  # start every worker
        for _ in range(rounds):
            for name in seconds:
                vendor = SyncVendor()
                gc.collect()
                load: Callable[[str], float] = vendor.quote
                if name in windows:
                    load = Batcher(vendor.quotes, max_size=MAX_SIZE, window=windows[name]).load
                start = time.perf_counter()
                values = list(pool.map(load, SYMBOLS))
                seconds[name].append(time.perf_counter() - start)
                assert values == [100.0] * CALLERS
                requests[name] += vendor.requests
    return {
        name: (statistics.median(values), requests[name] / rounds)
        for name, values in seconds.items()
    }


def overhead_rounds(rounds: int) -> dict[str, tuple[float, float]]:
    """200 asyncio callers against a source that answers at once: the machinery's cost."""
    prices = dict.fromkeys(SYMBOLS, 100.0)

    async def quote(symbol: str) -> float:
        return prices[symbol]

    async def quotes(symbols: list[str]) -> dict[str, float]:
        return {symbol: prices[symbol] for symbol in symbols}

    builders: dict[str, Callable[[], tuple[Callable[[str], Awaitable[float]], Any]]] = {
        "single-key calls": lambda: (quote, None),
        "argo_perf Batcher, window=0": lambda: (
            Batcher(quotes, max_size=MAX_SIZE, window=0).load_async,
            None,
        ),
    }
    if aiodataloader is not None:
        builders["aiodataloader DataLoader"] = lambda: (dataloader(quotes).load, None)
    return async_rounds(builders, rounds)


def batcher_throughput(quick: bool = False) -> dict[str, dict[str, tuple[float, float]]]:
    """The figures, by table and contender: (median seconds per round, vendor requests per round).

    Tables: ``"asyncio"`` and ``"threads"`` against the simulated vendor,
    ``"overhead"`` against a source that answers at once.
    """
    rounds, overhead = (5, 20) if quick else (21, 200)
    return {
        "asyncio": async_rounds(vendor_builders(), rounds),
        "threads": thread_rounds(rounds),
        "overhead": overhead_rounds(overhead),
    }


def report(figures: dict[str, dict[str, tuple[float, float]]]) -> None:
    for title, key in (
        ("asyncio tasks, simulated vendor", "asyncio"),
        ("threads (sync face), simulated vendor", "threads"),
    ):
        results = figures[key]
        base = results["single-key calls"][0]
        table(
            f"{CALLERS} concurrent callers, {title}: {LATENCY * 1e3:g} ms a request "
            f"+ {PER_KEY * 1e6:g} us a key, {CONNECTIONS} requests at once",
            ("contender", "median ms per round", "keys/s", "vendor requests", "x single-key"),
            [
                (
                    name,
                    f"{seconds * 1e3:.1f}",
                    f"{CALLERS / seconds:,.0f}",
                    f"{requests:.1f}",
                    f"{base / seconds:.1f}",
                )
                for name, (seconds, requests) in results.items()
            ],
        )
    results = figures["overhead"]
    base = results["single-key calls"][0]
    table(
        f"{CALLERS} concurrent asyncio callers, a source that answers at once",
        ("contender", "median us per key", "keys/s", "us per key over single-key calls"),
        [
            (
                name,
                f"{seconds / CALLERS * 1e6:.2f}",
                f"{CALLERS / seconds:,.0f}",
                f"{(seconds - base) / CALLERS * 1e6:+.2f}",
            )
            for name, (seconds, _) in results.items()
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run")
    args = parser.parse_args()
    peer = "not installed" if aiodataloader is None else "installed"
    print(f"# batch benchmark (python {sys.version.split()[0]}, aiodataloader {peer})")
    report(batcher_throughput(args.quick))


if __name__ == "__main__":
    main()
