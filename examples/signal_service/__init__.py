"""The reference signal service, built from argo_perf's primitives.

Its building blocks, each in its own module:

* `sources`: what the service asks vendors for (`PriceSource`,
  `IndicatorSource`, `SentimentSource`), the values they answer, their
  errors (`VendorError`, `VendorRateLimited`, `VendorNote`) and the parsers
  of their payloads;
* `market`: a deterministic simulated market (`Market`);
* `vendors`: the four simulated vendors over it (`simulated_vendors`);
* `signals`: `Signal` and its computation from components (`compute_signal`);
* `tracker`: the SQLite signal tracker (`SignalTracker`, `AsyncSignalTracker`);
* `pipeline`: the cycle that composes them with argo_perf (`Pipeline`, `PipelineConfig`);
* `replay`: a trading day on a virtual clock, before and after (``python -m
  examples.signal_service replay``).

The service composes them with argo_perf; it holds no resilience logic of its
own (no retry, rate limit, circuit breaker or cache code).
"""

from .market import BASE_PRICES, DEFAULT_SYMBOLS, Market, MarketConfig, Regime, uniform
from .signals import (
    ACTIONS,
    Action,
    AssetType,
    ComponentMemo,
    LevelInputs,
    MemoStats,
    SentimentInputs,
    Signal,
    TechnicalInputs,
    compute_signal,
    format_timestamp,
    parse_timestamp,
    sentiment_score,
    technical_score,
    trade_levels,
)
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
from .tracker import (
    OUTCOMES,
    AsyncSignalTracker,
    Outcome,
    OutcomeStats,
    SignalTracker,
    TrackedSignal,
    TrackerClosedError,
    TrackerStats,
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
    "ACTIONS",
    "BASE_PRICES",
    "DEFAULT_SYMBOLS",
    "OUTCOMES",
    "Action",
    "AlphaVantageVendor",
    "AssetType",
    "AsyncSignalTracker",
    "ChatSentimentVendor",
    "ComponentMemo",
    "IndicatorSource",
    "Indicators",
    "LevelInputs",
    "Market",
    "MarketConfig",
    "MassiveVendor",
    "MemoStats",
    "Outage",
    "Outcome",
    "OutcomeStats",
    "Payload",
    "PriceSource",
    "Quote",
    "RateWindow",
    "Regime",
    "Sentiment",
    "SentimentInputs",
    "SentimentSource",
    "Signal",
    "SignalTracker",
    "SimulatedVendor",
    "SonarVendor",
    "TechnicalInputs",
    "TrackedSignal",
    "TrackerClosedError",
    "TrackerStats",
    "VendorConfig",
    "VendorError",
    "VendorNote",
    "VendorRateLimited",
    "VendorStats",
    "Vendors",
    "XaiVendor",
    "compute_signal",
    "epoch_ns",
    "format_timestamp",
    "from_epoch_ns",
    "parse_alpha_vantage",
    "parse_chat_sentiment",
    "parse_massive_snapshot",
    "parse_timestamp",
    "sentiment_score",
    "simulated_vendors",
    "technical_score",
    "trade_levels",
    "uniform",
]
