"""Market-aware cache lifetimes: short while a symbol trades and moves, long while it sleeps."""

from __future__ import annotations

import random
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from . import _validate
from ._price import check_price, moved
from .clock import Clock, _given_or_system
from .errors import ConfigError
from .market import NYSE, MarketCalendar, _timestamp, is_crypto
from .volatility import VolatilityTracker

__all__ = ["AdaptiveTTL", "AdaptiveTTLConfig"]

_MAX_CLASSIFIED = 4096  # symbols whose crypto/stock answer is memoised


@dataclass(frozen=True)
class AdaptiveTTLConfig:
    """The TTL table of `AdaptiveTTL`, in seconds.

    | symbol | high volatility | otherwise |
    | --- | --- | --- |
    | crypto | 10 | 30 |
    | stock, in session | 10 | 20 |
    | stock, out of session | 300, never past the next open | 300, never past the next open |

    Attributes:
        crypto_high_vol_ttl: crypto with high volatility. Default 10.0.
        crypto_ttl: other crypto. Default 30.0.
        stock_high_vol_ttl: stock in session with high volatility. Default 10.0.
        stock_ttl: other stock in session. Default 20.0.
        closed_ttl: stock out of session, capped at the time left until the
            next open. Default 300.0.
        jitter: spread each TTL uniformly over ``ttl * (1 ± jitter)`` so keys
            written together do not expire together; in [0, 1). Default 0.0.
        open_jitter: seconds before the next open over which TTLs cut at the
            open are spread: a key written while the market is closed expires
            at a uniformly drawn instant in the last ``open_jitter`` seconds
            before the open (at most half the time left), never after it, so
            the keys written overnight do not all expire at 09:30:00, the
            busiest instant of the day. Default 60.0; 0 cuts every such TTL at
            the open exactly.
        refresh_threshold: relative price move from which
            `AdaptiveTTL.should_refresh` is true. Default 0.005 (0.5 %); an
            exact 0.5 % move counts, as for `ChangeGate`.

    Raises:
        ConfigError: a TTL that is not a positive finite number, a jitter
            outside [0, 1), a negative or non-finite ``open_jitter`` or
            threshold.

    Examples:
        >>> AdaptiveTTLConfig(stock_ttl=15.0, jitter=0.1).stock_ttl
        15.0
    """

    crypto_high_vol_ttl: float = 10.0
    crypto_ttl: float = 30.0
    stock_high_vol_ttl: float = 10.0
    stock_ttl: float = 20.0
    closed_ttl: float = 300.0
    jitter: float = 0.0
    open_jitter: float = 60.0
    refresh_threshold: float = 0.005

    def __post_init__(self) -> None:
        for name in ("crypto_high_vol_ttl", "crypto_ttl", "stock_high_vol_ttl", "stock_ttl"):
            _validate.positive_seconds(name, getattr(self, name))
        _validate.positive_seconds("closed_ttl", self.closed_ttl)
        _validate.fraction("jitter", self.jitter)
        _validate.non_negative_seconds("open_jitter", self.open_jitter)
        _validate.at_least("refresh_threshold", self.refresh_threshold, 0.0)


class AdaptiveTTL:
    """Chooses how long a cached price (or anything derived from it) stays fresh.

    `ttl_for` follows the `AdaptiveTTLConfig` table: crypto
    symbols (``is_crypto``) trade around the clock and get the crypto TTLs;
    stocks get the in-session TTLs while ``calendar`` is open and
    ``closed_ttl`` otherwise, cut so it never reaches past the next open (a
    price cached at 09:28 expires by 09:30, not at 09:33; within the last
    ``open_jitter`` seconds before it, so that keys written overnight do not
    all expire in the same instant). Early closes count as out of session
    after 13:00. A symbol is "high volatility" when ``volatility`` says so.

    ``ttl_for`` takes a symbol and returns seconds, so the bound method plugs
    into a cache directly: ``RedisCache(url).set(symbol, price,
    ttl=adaptive.ttl_for)`` or ``cached(cache, ttl=adaptive.ttl_for)``.

    Args:
        config: the TTL table; default `AdaptiveTTLConfig()`.
        calendar: the stock market's calendar; default `NYSE`. Use
            ``NYSECalendar(extended_hours=True)`` to treat pre-market and
            after-hours as in session.
        volatility: a `VolatilityTracker`, or any ``symbol -> bool``
            predicate, deciding "high volatility"; ``None`` (default) means
            never high.
        is_crypto: ``symbol -> bool``, default `is_crypto`. Answers are
            memoised per symbol, so it must be pure.
        rng: ``() -> float`` in [0, 1) for the jitter; default
            `random.random`. Inject a seeded one for reproducible tests.
        max_symbols: prices remembered at most by `should_refresh`
            (least recently refreshed forgotten first). Default 10 000.
        clock: ``now`` for `ttl_for` when not given; default ``SystemClock()``.

    Raises:
        ConfigError: ``max_symbols`` < 1, or ``config``, ``calendar``,
            ``volatility``, ``is_crypto`` or ``rng`` of the wrong kind.

    ``ttl_for`` raises `TypeError` for a symbol that is not a string,
    `ValueError` for an empty one or a naive ``now`` and
    `argo_perf.CalendarRangeError` when ``now`` lies outside the calendar's
    years. Thread-safe.

    Examples:
        >>> from datetime import datetime, timezone
        >>> from argo_perf import ManualClock
        >>> clock = ManualClock(datetime(2026, 1, 5, 14, 28, tzinfo=timezone.utc))  # 09:28 NY
        >>> ttl = AdaptiveTTL(clock=clock)
        >>> 60.0 < ttl.ttl_for("AAPL") <= 120.0  # closed, opens in two minutes
        True
        >>> clock.advance(120)
        >>> ttl.ttl_for("AAPL"), ttl.ttl_for("BTC-USD")
        (20.0, 30.0)
    """

    def __init__(
        self,
        config: AdaptiveTTLConfig | None = None,
        *,
        calendar: MarketCalendar = NYSE,
        volatility: VolatilityTracker | Callable[[str], bool] | None = None,
        is_crypto: Callable[[str], bool] = is_crypto,
        rng: Callable[[], float] | None = None,
        max_symbols: int = 10_000,
        clock: Clock | None = None,
    ) -> None:
        _validate.count("max_symbols", max_symbols)
        if config is not None and not isinstance(config, AdaptiveTTLConfig):
            raise ConfigError("config", config, "must be an AdaptiveTTLConfig or None")
        if not isinstance(calendar, MarketCalendar):
            raise ConfigError("calendar", calendar, "must be a MarketCalendar (e.g. NYSE)")
        if not (
            volatility is None or isinstance(volatility, VolatilityTracker) or callable(volatility)
        ):
            raise ConfigError(
                "volatility", volatility, "must be a VolatilityTracker, a symbol -> bool or None"
            )
        _validate.function("is_crypto", is_crypto, "a symbol -> bool function")
        _validate.optional(_validate.function, "rng", rng, "a () -> float function")
        self.config = config if config is not None else AdaptiveTTLConfig()
        self.calendar = calendar
        self.max_symbols = max_symbols
        if isinstance(volatility, VolatilityTracker):
            self._is_high: Callable[[str], bool] | None = volatility.is_high
        else:
            self._is_high = volatility
        self._classify = is_crypto
        self._kinds: dict[str, bool] = {}
        self._rng: Callable[[], float] = rng if rng is not None else random.random
        self._clock: Clock = _given_or_system(clock)
        self._lock = threading.Lock()
        self._prices: OrderedDict[str, float] = OrderedDict()

    def ttl_for(self, symbol: str, now: datetime | None = None) -> float:
        """Seconds a value for ``symbol`` written at ``now`` (default the clock's now) stays fresh.

        Raises:
            TypeError: ``symbol`` is not a string, or ``now`` not a datetime
                (for crypto symbols too).
            ValueError: ``symbol`` is empty, or ``now`` is naive.
            CalendarRangeError: ``now`` is outside the calendar's years.
        """
        if now is None:
            now = self._clock.now()
        else:
            # Checked here, not only by the calendar: crypto never asks it.
            _timestamp(now, "now")
        try:
            crypto = self._kinds.get(symbol)
        except TypeError:  # unhashable
            crypto = None
        if crypto is None:
            crypto = self._kind(symbol)
        is_high = self._is_high
        high = is_high is not None and is_high(symbol)
        config = self.config
        jitter = config.jitter
        if crypto:
            ttl = config.crypto_high_vol_ttl if high else config.crypto_ttl
            return self._jitter(ttl, jitter) if jitter else ttl
        wait = self.calendar.seconds_until_open(now)
        if wait == 0.0:
            ttl = config.stock_high_vol_ttl if high else config.stock_ttl
            return self._jitter(ttl, jitter) if jitter else ttl
        ttl = self._jitter(config.closed_ttl, jitter) if jitter else config.closed_ttl
        if ttl < wait:
            return ttl
        if not config.open_jitter:
            return wait
        # Cut at the open: expire at a random instant shortly before it, never after.
        return wait - self._rng() * min(config.open_jitter, wait / 2.0)

    def __call__(self, symbol: str) -> float:
        """``ttl_for(symbol)``: an `AdaptiveTTL` is itself a cache's ``ttl=`` callable."""
        return self.ttl_for(symbol)

    def _kind(self, symbol: str) -> bool:
        if not isinstance(symbol, str):
            raise TypeError(f"symbol must be a str, got {symbol!r}")
        if not symbol.strip():
            raise ValueError(f"symbol must not be empty, got {symbol!r}")
        crypto = bool(self._classify(symbol))
        kinds = self._kinds
        if len(kinds) >= _MAX_CLASSIFIED:  # keys, not just symbols, may come through here
            kinds.clear()
        kinds[symbol] = crypto
        return crypto

    def _jitter(self, ttl: float, jitter: float) -> float:
        return ttl * (1.0 + jitter * (2.0 * self._rng() - 1.0))

    def reconfigure(self, config: AdaptiveTTLConfig) -> None:
        """Use the TTL table ``config`` from now on (thread-safe).

        The table is swapped in one step: a `ttl_for` or `should_refresh`
        running at the same time answers wholly by the old table or wholly by
        the new one, never by a mix. TTLs already handed out (values already
        cached) keep their expiry; remembered prices are kept.

        Raises:
            ConfigError: ``config`` is not an `AdaptiveTTLConfig` (nothing changes).

        Examples:
            >>> ttl = AdaptiveTTL()
            >>> ttl.reconfigure(AdaptiveTTLConfig(crypto_ttl=45.0))
            >>> ttl.ttl_for("BTC-USD")
            45.0
        """
        if not isinstance(config, AdaptiveTTLConfig):
            raise ConfigError("config", config, "must be an AdaptiveTTLConfig")
        # ttl_for reads ``self.config`` once per call: one reference swap is atomic.
        self.config = config

    def should_refresh(self, symbol: str, price: float | Decimal | str) -> bool:
        """Whether ``price`` moved by at least ``refresh_threshold`` from the remembered price.

        The same rule as `ChangeGate.changed`: an exact 0.5 % move counts.
        True also when no price is remembered for ``symbol``. When it answers
        true, ``price`` becomes the remembered one: the caller is expected to
        refresh the cached value now. `remember` sets it explicitly.

        Raises:
            ValueError: ``price`` is not a finite positive number (nothing changes).
        """
        value = check_price(price)
        with self._lock:
            last = self._prices.get(symbol)
            if last is not None and not moved(last, value, self.config.refresh_threshold):
                return False
            self._store(symbol, value)
            return True

    def remember(self, symbol: str, price: float | Decimal | str) -> None:
        """Remember ``price`` as the one the cached value for ``symbol`` was computed from.

        Raises:
            ValueError: ``price`` is not a finite positive number.
        """
        value = check_price(price)
        with self._lock:
            self._store(symbol, value)

    def forget(self, symbol: str) -> None:
        """Forget the remembered price of ``symbol`` (no error when unknown)."""
        with self._lock:
            self._prices.pop(symbol, None)

    def _store(self, symbol: str, price: float) -> None:
        prices = self._prices
        prices[symbol] = price
        prices.move_to_end(symbol)
        if len(prices) > self.max_symbols:
            prices.popitem(last=False)

    def __repr__(self) -> str:
        return f"AdaptiveTTL({self.config!r}, calendar={self.calendar!r})"
