"""What the service asks its vendors for, and how it reads their answers.

The pipeline talks to three kinds of source through small protocols, so a
simulated vendor (see `vendors`) and a real HTTP client are interchangeable:

| protocol | method | answers |
| --- | --- | --- |
| `PriceSource` | ``await price(symbol)``, ``await prices(symbols)`` | `Quote` |
| `IndicatorSource` | ``await indicators(symbol)`` | `Indicators` |
| `SentimentSource` | ``await sentiment(symbol)`` | `Sentiment` |

Every failure of a source is a `VendorError`: an HTTP error or an outage
(``status`` 5xx), a refusal by the vendor's own rate limit
(`VendorRateLimited`, with the ``retry_after`` seconds the vendor asked
for), or an HTTP 200 whose body is an error (`VendorNote`, as Alpha
Vantage's ``{"Note": ...}``). The parsers below are the client side of each
vendor's API: they turn a JSON payload into a value or raise `VendorNote`,
so a real client reuses them unchanged.

Example:
    >>> parse_alpha_vantage({"Note": "Thank you for using Alpha Vantage!"}, "AAPL")
    Traceback (most recent call last):
    ...
    examples.signal_service.sources.VendorNote: alpha_vantage: Thank you for using Alpha Vantage!
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "IndicatorSource",
    "Indicators",
    "Payload",
    "PriceSource",
    "Quote",
    "Sentiment",
    "SentimentSource",
    "VendorError",
    "VendorNote",
    "VendorRateLimited",
    "epoch_ns",
    "from_epoch_ns",
    "parse_alpha_vantage",
    "parse_chat_sentiment",
    "parse_massive_snapshot",
]

Payload = dict[str, Any]
"""A vendor's JSON answer, decoded."""

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


# --- values -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quote:
    """The last traded price of a symbol.

    Attributes:
        symbol: the symbol as the service names it (``AAPL``, ``BTC-USD``).
        price: the last trade's price.
        timestamp: when the vendor observed it (aware UTC).
        source: the vendor's name (``massive``).
    """

    symbol: str
    price: float
    timestamp: datetime
    source: str


@dataclass(frozen=True)
class Indicators:
    """Technical indicators of a symbol on one-minute bars.

    Attributes:
        symbol: the symbol.
        rsi: the 14-bar relative strength index, 0-100.
        sma_short: the 20-bar simple moving average.
        sma_long: the 50-bar simple moving average.
        timestamp: the close of the last bar (aware UTC).
        source: the vendor's name (``alpha_vantage``).
    """

    symbol: str
    rsi: float
    sma_short: float
    sma_long: float
    timestamp: datetime
    source: str


@dataclass(frozen=True)
class Sentiment:
    """A model's reading of the news about a symbol.

    Attributes:
        symbol: the symbol.
        score: from -1 (bearish) to 1 (bullish).
        confidence: how sure the model is, from 0 to 1.
        timestamp: when the reading was made (aware UTC).
        source: the vendor's name (``xai``, ``sonar``).
    """

    symbol: str
    score: float
    confidence: float
    timestamp: datetime
    source: str


# --- errors -------------------------------------------------------------------------------


class VendorError(Exception):
    """A vendor did not give a usable answer.

    Args:
        vendor: the vendor's name.
        message: what went wrong (never a key or a token).
        status: the HTTP status the vendor answered with (500 for an error,
            503 during an outage, 429 when rate limited, 200 for an error body).
        retry_after: seconds the vendor asked the client to wait, when it did.
    """

    def __init__(
        self, vendor: str, message: str, *, status: int = 500, retry_after: float | None = None
    ) -> None:
        super().__init__(vendor, message)
        self.vendor = vendor
        self.message = message
        self.status = status
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{self.vendor}: {self.message}"


class VendorRateLimited(VendorError):
    """The vendor refused the call because its own rate limit was exceeded (HTTP 429).

    ``retry_after`` is always set: the seconds until the vendor admits a call
    again. argo_perf's ``wait_retry_after`` and the breaker read it from here.

    Example:
        >>> error = VendorRateLimited("alpha_vantage", 12.0)
        >>> error.status, error.retry_after
        (429, 12.0)
    """

    retry_after: float

    def __init__(self, vendor: str, retry_after: float) -> None:
        super().__init__(
            vendor,
            f"rate limit exceeded; retry after {retry_after:.3f}s",
            status=429,
            retry_after=retry_after,
        )


class VendorNote(VendorError):
    """The vendor answered HTTP 200 with an error in the body, or a body that cannot be read.

    Alpha Vantage's ``{"Note": ...}`` and ``{"Information": ...}``, Massive's
    ``{"status": "ERROR"}`` and a language model's answer that is not the
    JSON asked for all become this error in the parsers.
    """

    def __init__(self, vendor: str, message: str) -> None:
        super().__init__(vendor, message, status=200)


# --- protocols ----------------------------------------------------------------------------


@runtime_checkable
class PriceSource(Protocol):
    """A price feed. ``prices`` is its batch endpoint: one call, several symbols.

    A vendor without a batch endpoint implements ``prices`` by calling
    ``price`` for each symbol. Both raise `VendorError` on failure.
    """

    @property
    def name(self) -> str:
        """The vendor's name, as the rate limiter and the metrics know it."""
        ...

    async def price(self, symbol: str) -> Quote:
        """The last price of ``symbol``."""
        ...

    async def prices(self, symbols: Sequence[str]) -> dict[str, Quote]:
        """The last prices of ``symbols`` in one call, keyed by symbol."""
        ...


@runtime_checkable
class IndicatorSource(Protocol):
    """A vendor of technical indicators. Raises `VendorError` on failure."""

    @property
    def name(self) -> str:
        """The vendor's name, as the rate limiter and the metrics know it."""
        ...

    async def indicators(self, symbol: str) -> Indicators:
        """RSI and moving averages of ``symbol``."""
        ...


@runtime_checkable
class SentimentSource(Protocol):
    """A vendor of sentiment readings (a language model). Raises `VendorError` on failure."""

    @property
    def name(self) -> str:
        """The vendor's name, as the rate limiter and the metrics know it."""
        ...

    async def sentiment(self, symbol: str) -> Sentiment:
        """The model's current reading of ``symbol``."""
        ...


# --- parsers (the client side of each vendor's API) ---------------------------------------


def epoch_ns(when: datetime) -> int:
    """An aware datetime as integer nanoseconds since the Unix epoch (exact to the microsecond)."""
    return (when - _EPOCH) // _MICROSECOND * 1000


def from_epoch_ns(nanoseconds: int) -> datetime:
    """The aware UTC datetime of integer nanoseconds since the Unix epoch."""
    return _EPOCH + timedelta(microseconds=nanoseconds // 1000)


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"not a number: {value!r}")
    return float(value)


def parse_massive_snapshot(payload: Mapping[str, Any]) -> dict[str, Quote]:
    """Quotes from a Massive snapshot answer, keyed by symbol.

    The answer lists the requested tickers with their last trade:
    ``{"status": "OK", "tickers": [{"ticker": "AAPL", "lastTrade": {"p": 231.5,
    "t": <epoch ns>}}]}``.

    Raises:
        VendorNote: ``status`` is not ``"OK"`` (the body's ``error`` is the
            message), or the payload is malformed.
    """
    if payload.get("status") != "OK":
        raise VendorNote("massive", str(payload.get("error", "answer without status OK")))
    try:
        quotes: dict[str, Quote] = {}
        for entry in payload["tickers"]:
            trade = entry["lastTrade"]
            symbol = str(entry["ticker"])
            quotes[symbol] = Quote(
                symbol, _number(trade["p"]), from_epoch_ns(int(trade["t"])), "massive"
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise VendorNote("massive", f"malformed snapshot: {exc}") from None
    return quotes


_ALPHA_VANTAGE_NOTES = ("Note", "Information", "Error Message")


def parse_alpha_vantage(payload: Mapping[str, Any], symbol: str) -> Indicators:
    """Indicators from an Alpha Vantage answer.

    Alpha Vantage answers HTTP 200 in every case; an error is a body with one
    of the keys ``Note`` (call frequency), ``Information`` (daily quota, plan)
    or ``Error Message`` (bad request) instead of the data.

    Raises:
        VendorNote: the body is one of those notes, or is malformed.
    """
    for key in _ALPHA_VANTAGE_NOTES:
        if key in payload:
            raise VendorNote("alpha_vantage", str(payload[key]))
    try:
        meta = payload["Meta Data"]
        values = payload["Technical Analysis"]
        return Indicators(
            symbol=str(meta["Symbol"]),
            rsi=_number(values["RSI"]),
            sma_short=_number(values["SMA_20"]),
            sma_long=_number(values["SMA_50"]),
            timestamp=datetime.fromisoformat(str(meta["Last Refreshed"])),
            source="alpha_vantage",
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise VendorNote("alpha_vantage", f"malformed answer for {symbol}: {exc}") from None


def parse_chat_sentiment(vendor: str, payload: Mapping[str, Any], symbol: str) -> Sentiment:
    """A sentiment reading from a chat-completions answer (xAI and Perplexity Sonar alike).

    The model is asked for a JSON object ``{"score": -1..1, "confidence": 0..1}``
    as its message content; ``created`` is the answer's Unix time.

    Raises:
        VendorNote: the body is an ``error`` object, the content is not that
            JSON object (a model that declined or rambled), or a value is out
            of range.
    """
    if "error" in payload:
        error = payload["error"]
        message = error.get("message") if isinstance(error, Mapping) else error
        raise VendorNote(vendor, str(message))
    try:
        content = payload["choices"][0]["message"]["content"]
        reading = json.loads(content)
        score = _number(reading["score"])
        confidence = _number(reading["confidence"])
        created = datetime.fromtimestamp(_number(payload["created"]), timezone.utc)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise VendorNote(vendor, f"unreadable answer for {symbol}: {exc}") from None
    if not (-1.0 <= score <= 1.0 and 0.0 <= confidence <= 1.0):
        raise VendorNote(vendor, f"reading out of range for {symbol}: {score}, {confidence}")
    return Sentiment(symbol, score, confidence, created, vendor)
