"""`is_crypto`: tell crypto symbols from stock symbols, and its default rule."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from functools import lru_cache

CRYPTO_PREFIXES: tuple[str, ...] = ("X:",)
"""Symbol beginnings that `is_crypto` treats as crypto: `X:` is the crypto
namespace of the Massive (formerly Polygon.io) tickers, as in `X:BTCUSD`."""

CRYPTO_SUFFIXES: tuple[str, ...] = (
    "-USD",
    "-USDT",
    "-USDC",
    "USDT",
    "USDC",
    "/USD",
    "-BTC",
    "/BTC",
    "-ETH",
    "/ETH",
)
"""Symbol endings that `is_crypto` treats as crypto pairs by default."""

CRYPTO_QUOTES: tuple[str, ...] = (
    "USD",
    "USDT",
    "USDC",
    "DAI",
    "EUR",
    "GBP",
    "JPY",
    "CHF",
    "CAD",
    "AUD",
    "BTC",
    "XBT",
    "ETH",
)
"""Quote currencies of crypto pairs: `BASE-QUOTE`, `BASE/QUOTE`, `BASE_QUOTE`
with any base, and `BASEQUOTE` with a base in `CRYPTO_BASES`."""

CRYPTO_BASES: tuple[str, ...] = (
    "BTC",
    "XBT",
    "ETH",
    "SOL",
    "XRP",
    "ADA",
    "DOGE",
    "XDG",
    "LTC",
    "BCH",
    "DOT",
    "AVAX",
    "LINK",
    "MATIC",
    "POL",
    "TRX",
    "XLM",
    "ATOM",
    "UNI",
    "SHIB",
    "ETC",
    "XMR",
    "BNB",
    "TON",
    "NEAR",
    "APT",
    "ARB",
    "PEPE",
    "SUI",
)
"""Crypto assets recognised written directly before a quote currency, as in
`BTCUSD`, `XBTUSD` (Kraken's name for bitcoin) or `ETHEUR`."""

_PAIR_SEPARATORS = ("-", "/", "_")


def _upper_all(values: Iterable[str], parameter: str) -> tuple[str, ...]:
    if isinstance(values, str):
        raise TypeError(f"{parameter} must be a collection of strings, got the string {values!r}")
    out = []
    for value in values:
        if not isinstance(value, str):
            raise TypeError(f"{parameter} must hold strings, got {value!r}")
        out.append(value.upper())
    return tuple(out)


@lru_cache(maxsize=64)
def _rule(
    symbols: tuple[str, ...],
    suffixes: tuple[str, ...],
    prefixes: tuple[str, ...],
    bases: tuple[str, ...],
    quotes: tuple[str, ...],
) -> tuple[frozenset[str], tuple[str, ...], tuple[str, ...], frozenset[str], tuple[str, ...]]:
    """The upper-cased, validated form of an `is_crypto` configuration (memoised)."""
    return (
        frozenset(_upper_all(symbols, "symbols")),
        _upper_all(suffixes, "suffixes"),
        _upper_all(prefixes, "prefixes"),
        frozenset(_upper_all(bases, "bases")),
        _upper_all(quotes, "quotes"),
    )


def _as_tuple(values: Iterable[str], parameter: str) -> tuple[str, ...]:
    if isinstance(values, str):
        raise TypeError(f"{parameter} must be a collection of strings, got the string {values!r}")
    return values if isinstance(values, tuple) else tuple(values)


def is_crypto(
    symbol: str,
    *,
    symbols: Collection[str] = (),
    suffixes: Iterable[str] = CRYPTO_SUFFIXES,
    prefixes: Iterable[str] = CRYPTO_PREFIXES,
    bases: Iterable[str] = CRYPTO_BASES,
    quotes: Iterable[str] = CRYPTO_QUOTES,
) -> bool:
    """Whether ``symbol`` names a crypto asset or pair (traded around the clock), not a stock.

    Every comparison ignores case, in the symbol and in the configuration
    alike. A symbol is crypto when it

    | form | examples | decided by |
    | --- | --- | --- |
    | is one of ``symbols`` | ``BTC`` with ``symbols={"btc"}`` | ``symbols`` (none) |
    | starts with a prefix | ``X:BTCUSD`` (Massive / Polygon.io) | ``prefixes`` |
    | ends with a suffix | ``SOLUSDT``, ``PEPEUSDC``, ``BTC-USD`` | ``suffixes`` |
    | is ``BASE-QUOTE``, ``BASE/QUOTE``, ``BASE_QUOTE`` | ``BTC-EUR``, ``eth/usdt`` | ``quotes`` |
    | is ``BASEQUOTE``, a known base | ``BTCUSD``, ``XBTUSD``, ``ETHEUR`` | ``bases``, ``quotes`` |

    The defaults are `CRYPTO_PREFIXES`, `CRYPTO_SUFFIXES`, `CRYPTO_QUOTES`
    and `CRYPTO_BASES`.

    Everything else is a stock (``AAPL``, ``BRK.B``, ``BRK-B``, the empty
    string). Pass your own rule wherever argo_perf takes a classifier, for
    example ``functools.partial(is_crypto, symbols={"HYPE"})``; pass empty
    collections to switch forms off.

    Raises:
        TypeError: ``symbol`` is not a string, or a configuration value is
            not a collection of strings.

    Examples:
        >>> is_crypto("BTC-USD"), is_crypto("X:BTCUSD"), is_crypto("XBTUSD"), is_crypto("AAPL")
        (True, True, True, False)
        >>> is_crypto("btc", symbols={"BTC"}), is_crypto("DOGE.X", suffixes=(".x",))
        (True, True)
    """
    if not isinstance(symbol, str):
        raise TypeError(f"symbol must be a str, got {symbol!r}")
    known, ends, starts, base_set, quote_list = _rule(
        _as_tuple(symbols, "symbols"),
        _as_tuple(suffixes, "suffixes"),
        _as_tuple(prefixes, "prefixes"),
        _as_tuple(bases, "bases"),
        _as_tuple(quotes, "quotes"),
    )
    upper = symbol.strip().upper()
    if not upper:
        return False
    if upper in known or (starts and upper.startswith(starts)):
        return True
    if (
        ends
        and upper.endswith(ends)
        and any(len(upper) > len(e) for e in ends if upper.endswith(e))
    ):
        return True
    for separator in _PAIR_SEPARATORS:
        base, found, quote = upper.rpartition(separator)
        if found and base and quote in quote_list:
            return True
    return any(upper.endswith(q) and upper[: -len(q)] in base_set for q in quote_list)
