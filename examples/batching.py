"""Many single-symbol calls, one vendor request: `Batcher`.

200 tasks each ask for one symbol's price at once; the vendor has a batch
endpoint that takes up to 50 symbols per request. The batcher gathers the
calls made within its window into requests of at most 50 symbols, and each
task gets its own price (or its own error). Runs offline, needs no Redis.

    python examples/batching.py
"""

from __future__ import annotations

import asyncio

from argo_perf import Batcher, MissingKeyError

requests: list[int] = []


async def fetch_quotes(symbols: list[str]) -> dict[str, float]:
    """The vendor's batch endpoint; it does not know DELISTED."""
    requests.append(len(symbols))
    await asyncio.sleep(0.005)  # one round trip
    return {s: 100.0 + i for i, s in enumerate(symbols) if s != "DELISTED"}


async def main() -> None:
    quotes = Batcher(fetch_quotes, max_size=50, window=0.005)
    symbols = [f"SYM{i:03d}" for i in range(200)]
    prices = await asyncio.gather(*(quotes.load_async(s) for s in symbols))
    print(f"{len(prices)} prices in {len(requests)} vendor requests of {requests} symbols")

    try:
        await quotes.load_async("DELISTED")
    except MissingKeyError as exc:
        print(f"a symbol the vendor does not return fails alone: {exc!r}")

    stats = quotes.stats
    print(f"batches {stats.batches}, mean batch {stats.keys_fetched / stats.batches:.0f} keys")


if __name__ == "__main__":
    asyncio.run(main())
