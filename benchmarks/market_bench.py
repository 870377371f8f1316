"""Market time per call: NYSE.is_open next to exchange_calendars, AdaptiveTTL, ChangeGate.

    python benchmarks/market_bench.py [--quick]

Everything runs in one process on the same inputs. Each figure is the median,
over several rounds, of the time per call in a tight loop (loop overhead
included, the same for every row). "now-like" inputs advance one minute per
call from Monday 2026-01-05 10:00 New York (through closes, nights and a
weekend), the way a service asks about the current time; "random" inputs are
spread over the years NYSE covers, 2000-2100 (both calendars built for all of
them before timing). All inputs are whole minutes, which is what
exchange_calendars answers about.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pytz

from argo_perf import NYSE, AdaptiveTTL, ChangeGate, ManualClock, NYSECalendar, VolatilityTracker

UTC = timezone.utc
NEW_YORK = pytz.timezone("America/New_York")


def per_call_ns(fn: Callable[[Any], object], inputs: Sequence[Any], rounds: int) -> float:
    """Median over ``rounds`` of the nanoseconds per ``fn(x)`` for x in ``inputs``."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for x in inputs:
            fn(x)
        samples.append((time.perf_counter_ns() - start) / len(inputs))
    return statistics.median(samples)


def hand_written_is_open(dt: datetime) -> bool:
    """The check trading services usually carry: weekdays 09:30-16:00, no holidays."""
    local = dt.astimezone(NEW_YORK)
    minutes = local.hour * 60 + local.minute
    return local.weekday() < 5 and 570 <= minutes < 960


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run")
    args = parser.parse_args(argv)
    rounds = 5 if args.quick else 21
    n = 5_000 if args.quick else 20_000
    peer_n = n // 10

    try:
        import exchange_calendars as xcals
    except ImportError:  # pragma: no cover - the bench extra is not installed
        print("exchange_calendars is missing: pip install -e '.[bench]'", file=sys.stderr)
        return 1

    build_start = time.perf_counter()
    NYSECalendar()._table  # noqa: B018 - the first use builds the session table
    build_ms = (time.perf_counter() - build_start) * 1e3
    NYSE.is_session(NYSE.last_day)  # builds every year up to 2100
    xnys = xcals.get_calendar("XNYS", start="2000-01-01", end="2100-12-31")

    rng = random.Random(7)
    monday_10 = NEW_YORK.localize(datetime(2026, 1, 5, 10)).astimezone(UTC)
    now_like = [monday_10 + timedelta(minutes=i) for i in range(n)]
    first = NEW_YORK.localize(datetime(2000, 1, 3, 9, 30)).timestamp()
    last = datetime(2100, 12, 31, 20, 59, tzinfo=UTC).timestamp()
    # Whole minutes, so exchange_calendars answers the same question.
    random_minutes = [
        datetime.fromtimestamp(first + 60 * rng.randrange(int((last - first) // 60)), UTC)
        for _ in range(n)
    ]

    for dt in random_minutes[:2000]:  # the two calendars agree on these inputs
        assert NYSE.is_open(dt) == xnys.is_open_on_minute(dt), dt

    rows: list[tuple[str, float, str]] = []

    def compare(label: str, inputs: list[datetime]) -> None:
        ours = per_call_ns(NYSE.is_open, inputs, rounds)
        peer = per_call_ns(xnys.is_open_on_minute, inputs[:peer_n], rounds)
        hand = per_call_ns(hand_written_is_open, inputs, rounds)
        rows.append((f"NYSE.is_open, {label}", ours, "1.0x"))
        rows.append((f"exchange_calendars is_open_on_minute, {label}", peer, ratio(peer, ours)))
        rows.append((f"hand-written 09:30-16:00 check (pytz), {label}", hand, ratio(hand, ours)))

    compare("now-like", now_like)
    compare("random", random_minutes)

    clock = ManualClock(monday_10)
    vol = VolatilityTracker(clock=clock)
    for symbol in ("AAPL", "BTC-USD"):
        for i, price in enumerate((100.0, 100.1, 100.05)):
            vol.observe(symbol, price, monday_10 + timedelta(seconds=5 * i))
    ttl = AdaptiveTTL(volatility=vol, clock=clock)
    saturday = [NEW_YORK.localize(datetime(2026, 1, 3, 12)).astimezone(UTC)] * n
    stock = ["AAPL"] * n
    crypto = ["BTC-USD"] * n
    rows.append(
        ("AdaptiveTTL.ttl_for(stock), in session", per_call_ns(ttl.ttl_for, stock, rounds), "")
    )
    rows.append(("AdaptiveTTL.ttl_for(crypto)", per_call_ns(ttl.ttl_for, crypto, rounds), ""))
    closed = per_call_ns(lambda now: ttl.ttl_for("AAPL", now), saturday, rounds)
    rows.append(("AdaptiveTTL.ttl_for(stock, now), closed (incl. lambda)", closed, ""))
    system = AdaptiveTTL(volatility=vol)  # SystemClock: a real clock read per call
    rows.append(
        ("AdaptiveTTL.ttl_for(stock), SystemClock", per_call_ns(system.ttl_for, stock, rounds), "")
    )

    live = VolatilityTracker()  # SystemClock: every observation a new instant
    gate: ChangeGate[str] = ChangeGate()
    gate.remember("AAPL", 100.0, "signal")
    aged: ChangeGate[str] = ChangeGate(max_age=60.0, clock=clock)
    aged.remember("AAPL", 100.0, "signal")
    prices = [100.0 + (i % 5) * 0.01 for i in range(n)]
    skip = per_call_ns(lambda p: gate.changed("AAPL", p), prices, rounds)
    rows.append(("ChangeGate.changed, skip (incl. lambda)", skip, ""))
    rows.append(
        (
            "ChangeGate.changed, skip, max_age (incl. lambda)",
            per_call_ns(lambda p: aged.changed("AAPL", p), prices, rounds),
            "",
        )
    )
    rows.append(
        (
            "VolatilityTracker.observe, SystemClock (incl. lambda)",
            per_call_ns(lambda p: live.observe("AAPL", p), prices, rounds),
            "",
        )
    )

    print(f"market time, {rounds} rounds of {n} calls ({peer_n} for exchange_calendars)")
    print(f"NYSE session table built from rules in {build_ms:.1f} ms (first use, once per process)")
    width = max(len(label) for label, _, _ in rows)
    print(f"{'operation':<{width}}  {'median ns/call':>14}  {'vs NYSE.is_open':>15}")
    for label, ns, vs in rows:
        print(f"{label:<{width}}  {ns:>14.0f}  {vs:>15}")
    return 0


def ratio(theirs: float, ours: float) -> str:
    return f"{theirs / ours:.1f}x slower" if theirs >= ours else f"{ours / theirs:.1f}x faster"


if __name__ == "__main__":
    sys.exit(main())
