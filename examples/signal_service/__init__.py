"""The reference signal service, built from argo_perf's primitives.

Its building blocks, each in its own module:

* `sources`: what the service asks vendors for (`PriceSource`,
  `IndicatorSource`, `SentimentSource`), the values they answer, their
  errors (`VendorError`, `VendorRateLimited`, `VendorNote`) and the parsers
  of their payloads;
* `market`: a deterministic simulated market (`Market`);
* `vendors`: the four simulated vendors over it (`simulated_vendors`).

The service composes them with argo_perf; it holds no resilience logic of its
own (no retry, rate limit, circuit breaker or cache code).
"""

from .market import BASE_PRICES, DEFAULT_SYMBOLS, Market, MarketConfig, Regime, uniform
from .sources import (
    Indicators,
    IndicatorSource,
    Payload,
    PriceSource,
    Quote,
    Sentiment,
    SentimentSource,
    VendorError,
    VendorNote,
    VendorRateLimited,
    epoch_ns,
    from_epoch_ns,
    parse_alpha_vantage,
    parse_chat_sentiment,
    parse_massive_snapshot,
)
from .vendors import (
    AlphaVantageVendor,
    ChatSentimentVendor,
    MassiveVendor,
    Outage,
    RateWindow,
    SimulatedVendor,
    SonarVendor,
    VendorConfig,
    Vendors,
    VendorStats,
    XaiVendor,
    simulated_vendors,
)

__all__ = [
    "BASE_PRICES",
    "DEFAULT_SYMBOLS",
    "AlphaVantageVendor",
    "ChatSentimentVendor",
    "IndicatorSource",
    "Indicators",
    "Market",
    "MarketConfig",
    "MassiveVendor",
    "Outage",
    "Payload",
    "PriceSource",
    "Quote",
    "RateWindow",
    "Regime",
    "Sentiment",
    "SentimentSource",
    "SimulatedVendor",
    "SonarVendor",
    "VendorConfig",
    "VendorError",
    "VendorNote",
    "VendorRateLimited",
    "VendorStats",
    "Vendors",
    "XaiVendor",
    "epoch_ns",
    "from_epoch_ns",
    "parse_alpha_vantage",
    "parse_chat_sentiment",
    "parse_massive_snapshot",
    "simulated_vendors",
    "uniform",
]
