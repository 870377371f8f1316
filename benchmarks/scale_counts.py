"""Scale curves in counted work: instructions and simulated cache misses per operation.

`scale_bench.py` times each operation in CPU time, which on a shared machine
moves by tens of percent from run to run, and which grows with the size for
two reasons that a timing cannot tell apart: more work per operation, or
the same work waiting longer for memory. This script separates them. Each
size runs in its own process under ``valgrind --tool=callgrind`` with its
cache simulation (a 32 KiB first-level data cache and a 1 MiB last level,
this machine's per-core L1d and L2), and only the operations themselves are
counted (callgrind's ``--toggle-collect`` on the ``functools.reduce`` that
runs them, after a warm-up pass over the same draws): the counts are
deterministic, the same on every run and whatever else the machine does.

Per operation it reports the instructions executed (``Ir``: the work; the
target is that it does not grow with the size) and the data reads that
missed the first level and the last level (``D1mr``, ``DLmr``: the memory
waits that the timings see), beside the same counts for a plain
``dict.get`` of the same draws from a dict of the same keys (the floor).
The operations and sizes are those of `scale_bench.py`, drawn at random.

    python benchmarks/scale_counts.py            # every curve (a few minutes)
    python benchmarks/scale_counts.py --only breaker,limiter

Needs valgrind (Debian package ``valgrind``).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from _markdown import table

CALLS = 20_000
SIZES = {
    "cache": [10, 1_000, 100_000, 1_000_000],
    "limiter": [10, 1_000, 10_000],
    "volatility": [10, 1_000, 100_000],
    "breaker": [10, 1_000, 10_000],
}
TITLES = {
    "cache": "cache get (in-process tier)",
    "limiter": "RateLimiter.try_acquire",
    "volatility": "VolatilityTracker.observe",
    "breaker": "CircuitBreakerRegistry.get(name).call",
}
EVENTS = ("Ir", "D1mr", "DLmr")
TARGET = 1.5


# -- the child: build one structure, count its operations -------------------------------


def _build(curve: str, size: int) -> tuple[Callable[[Any], object], list[str]]:
    from argo_perf import (
        CircuitBreakerRegistry,
        RateLimitConfig,
        RateLimiter,
        RedisCache,
        VolatilityTracker,
    )

    if curve == "cache":
        keys = [f"quote:{i:07d}" for i in range(size)]
        cache = RedisCache(maxsize=size, default_ttl=None)
        for key in keys:
            cache.set(key, {"price": 231.5})
        return cache.get, keys
    if curve == "limiter":
        sources = [f"vendor{i:05d}" for i in range(size)]
        limiter = RateLimiter(dict.fromkeys(sources, RateLimitConfig(1e9, 1e9)))
        return limiter.try_acquire, sources
    if curve == "volatility":
        symbols = [f"SYM{i:06d}" for i in range(size)]
        tracker = VolatilityTracker(max_symbols=size)
        for symbol in symbols:
            tracker.observe(symbol, 100.0)
        prices = itertools.cycle((100.0, 100.5))
        return lambda symbol: tracker.observe(symbol, next(prices)), symbols
    if curve == "breaker":
        names = [f"vendor{i:05d}" for i in range(size)]
        registry = CircuitBreakerRegistry()

        def call(name: str) -> object:
            return registry.get(name).call(_fetch)

        for name in names:
            call(name)  # a first poll: what a breaker builds on first use is held
        return call, names
    raise SystemExit(f"unknown curve {curve!r}")


def _fetch() -> float:
    return 231.5


def child(curve: str, size: int, floor: bool) -> None:
    op, names = _build(curve, size)
    if floor:
        op = dict.fromkeys(names, 0.0).get
    rng = random.Random(7)
    draws = [names[rng.randrange(len(names))] for _ in range(CALLS)]
    # Instrumentation (and the cache simulation) from here on: the build above
    # runs at valgrind's uninstrumented speed.
    subprocess.run(
        ["callgrind_control", "--instr=on", str(os.getpid())], check=True, capture_output=True
    )
    for name in draws:  # warm-up: the simulated caches hold what they would
        op(name)
    # Counted: everything that runs inside this reduce (callgrind --toggle-collect).
    functools.reduce(lambda _, name: op(name), draws, None)


# -- the parent: one valgrind process per point ------------------------------------------


def count(curve: str, size: int, floor: bool) -> dict[str, float]:
    """Per-operation counts of ``EVENTS`` for one point."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--cache-sim=yes",
                "--I1=32768,8,64",
                "--D1=32768,8,64",
                "--LL=1048576,16,64",
                "--instr-atstart=no",
                "--toggle-collect=functools_reduce",
                f"--callgrind-out-file={out}",
                sys.executable,
                __file__,
                "--child",
                curve,
                str(size),
                *(["--floor"] if floor else []),
            ],
            check=True,
            capture_output=True,
        )
        with open(out) as file:
            lines = file.read().splitlines()
    events = next(line for line in lines if line.startswith("events:")).split()[1:]
    totals = next(line for line in lines if line.startswith("totals:")).split()[1:]
    counts = dict(zip(events, (int(total) for total in totals), strict=False))
    return {event: counts.get(event, 0) / CALLS for event in EVENTS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SIZES), help="comma-separated curves")
    parser.add_argument("--child", nargs=2, metavar=("CURVE", "SIZE"), help=argparse.SUPPRESS)
    parser.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.floor)
        return
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is needed (Debian: apt-get install valgrind)")
    rows: list[tuple[str, ...]] = []
    missed: list[str] = []
    for curve in args.only.split(","):
        first: dict[str, float] | None = None
        for size in SIZES[curve]:
            ours, plain = count(curve, size, False), count(curve, size, True)
            first = first or ours
            growth = ours["Ir"] / first["Ir"]
            if size == SIZES[curve][-1] and growth > TARGET:
                missed.append(f"{TITLES[curve]} ({growth:.2f}x)")
            rows.append(
                (
                    TITLES[curve],
                    f"{size:,}",
                    f"{ours['Ir']:,.0f}",
                    f"{growth:.2f}x",
                    f"{ours['D1mr']:.1f}",
                    f"{ours['DLmr']:.1f}",
                    f"{plain['Ir']:,.0f}",
                    f"{plain['D1mr']:.1f}",
                    f"{plain['DLmr']:.1f}",
                )
            )
            print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    header = (
        "operation",
        "entries",
        "instructions/op",
        "vs smallest",
        "L1 read misses/op",
        "LL read misses/op",
        "dict.get instructions/op",
        "dict.get L1 misses/op",
        "dict.get LL misses/op",
    )
    table("Scale curves in counted work (callgrind, per operation, drawn at random)", header, rows)
    print()
    print(
        "instructions per operation grow more than 1.5x: " + ", ".join(missed)
        if missed
        else "instructions per operation stay within 1.5x of the smallest size on every curve"
    )


if __name__ == "__main__":
    main()
