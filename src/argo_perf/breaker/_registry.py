"""Breakers keyed by name: one per vendor or endpoint, built on first use."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from ..clock import Clock, _given_or_system
from ..errors import ConfigError
from ._breaker import CircuitBreaker
from ._core import CircuitBreakerConfig
from ._listeners import Listener, check_listeners
from ._sharing import check_shared
from ._stats import BreakerMetrics, BreakerStats

if TYPE_CHECKING:
    from ._shared import RedisBreakerState

__all__ = ["CircuitBreakerRegistry"]


class CircuitBreakerRegistry:
    """Breakers keyed by name, built on first use: one per vendor or endpoint.

    The known names are those given a configuration (``configs``,
    [configure][argo_perf.breaker.CircuitBreakerRegistry.configure]) and those whose
    breaker was built. [get][argo_perf.breaker.CircuitBreakerRegistry.get] builds
    the breaker of any other name with ``default``; with ``default=None``
    an unknown name is an error instead.

    Args:
        configs: per-name configurations.
        default: the configuration of any other name (default: the seed's
            `CircuitBreakerConfig()`), or None to refuse names not configured.
        clock: the clock every breaker uses.
        shared: a `RedisBreakerState` every breaker uses.
        listeners: listeners added to every breaker, present and future.

    Raises:
        ConfigError: a configuration that is not a `CircuitBreakerConfig`,
            a bad ``shared`` or a listener that is not callable.

    Examples:
        >>> registry = CircuitBreakerRegistry({"xai": CircuitBreakerConfig(failure_threshold=3)})
        >>> registry["xai"].config.failure_threshold
        3
        >>> registry.get("massive") is registry.get("massive")
        True
        >>> registry.names()
        ['massive', 'xai']
    """

    def __init__(
        self,
        configs: Mapping[str, CircuitBreakerConfig] | None = None,
        *,
        default: CircuitBreakerConfig | None = CircuitBreakerConfig(),  # noqa: B008 - frozen
        clock: Clock | None = None,
        shared: RedisBreakerState | None = None,
        listeners: tuple[Listener, ...] | list[Listener] = (),
    ) -> None:
        if configs is not None and not isinstance(configs, Mapping):
            raise ConfigError("configs", configs, "must be a mapping of name to config or None")
        self._configs = dict(configs or {})
        for name, config in self._configs.items():
            _check_config(f"configs[{name!r}]", config)
        if default is not None:
            _check_config("default", default)
        self._default = default
        check_shared(shared)
        check_listeners(listeners)
        self._clock = None if clock is None else _given_or_system(clock)
        self._shared = shared
        self._listeners: list[Listener] = list(listeners)
        self._breakers: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> CircuitBreaker:
        """The breaker for ``name``, built on first use (thread-safe).

        Raises:
            ConfigError: ``name`` is unknown and the registry has no default;
                the message lists the known names.
        """
        breaker = self._breakers.get(name)
        if breaker is not None:
            return breaker
        with self._lock:
            breaker = self._breakers.get(name)
            if breaker is None:
                config = self._configs.get(name, self._default)
                if config is None:
                    raise self._unknown(name)
                breaker = CircuitBreaker(
                    name, config, clock=self._clock, shared=self._shared, listeners=self._listeners
                )
                self._breakers[name] = breaker
            return breaker

    __getitem__ = get

    def configure(self, name: str, config: CircuitBreakerConfig) -> None:
        """Give ``name`` the configuration ``config`` (a new name, or a new configuration).

        A breaker already built for ``name`` is reconfigured in place (see
        [CircuitBreaker.reconfigure][argo_perf.breaker.CircuitBreaker.reconfigure]).

        Raises:
            ConfigError: ``config`` is not a `CircuitBreakerConfig`.
        """
        _check_config("config", config)
        with self._lock:
            self._configs[name] = config
            breaker = self._breakers.get(name)
        if breaker is not None:
            breaker.reconfigure(config)

    def reconfigure(self, name: str, config: CircuitBreakerConfig) -> None:
        """[configure][argo_perf.breaker.CircuitBreakerRegistry.configure] for a known name only.

        Raises:
            ConfigError: ``name`` is not known (the message lists the known
                names), or ``config`` is not a `CircuitBreakerConfig`.
        """
        if name not in self:
            raise ConfigError("name", name, f"is not a known breaker (known: {self._known()})")
        self.configure(name, config)

    def config(self, name: str) -> CircuitBreakerConfig:
        """The configuration ``name`` has, or would be built with; builds nothing.

        The live breaker's configuration once it is built, else the one given
        to ``name``, else ``default``.

        Raises:
            ConfigError: ``name`` is unknown and the registry has no default;
                the message lists the known names.

        Examples:
            >>> registry = CircuitBreakerRegistry({"xai": CircuitBreakerConfig(timeout=30.0)})
            >>> registry.config("xai").timeout, registry.config("massive").timeout
            (30.0, 60.0)
            >>> registry.names()
            ['xai']
        """
        with self._lock:
            breaker = self._breakers.get(name)
            if breaker is not None:
                return breaker.config
            config = self._configs.get(name, self._default)
        if config is None:
            raise self._unknown(name)
        return config

    def names(self) -> list[str]:
        """The known names, sorted: configured ones and those whose breaker was built."""
        return sorted(set(self._configs) | set(self._breakers))

    def add_listener(self, listener: Listener) -> None:
        """Add ``listener`` to every breaker, present and future."""
        if not callable(listener):
            raise ConfigError("listener", listener, "must be callable")
        with self._lock:
            self._listeners.append(listener)
            for breaker in self._breakers.values():
                breaker.add_listener(listener)

    def __contains__(self, name: object) -> bool:
        return name in self._configs or name in self._breakers

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    @property
    def stats(self) -> dict[str, BreakerStats]:
        """A `BreakerStats` snapshot of every breaker built so far, by name."""
        return {name: breaker.stats for name, breaker in list(self._breakers.items())}

    def metrics(self) -> dict[str, BreakerMetrics]:
        """The older form of [stats][argo_perf.breaker.CircuitBreakerRegistry.stats], by name."""
        return {name: breaker.metrics() for name, breaker in list(self._breakers.items())}

    def reset_all(self) -> None:
        """Reset every breaker (see `CircuitBreaker.reset`)."""
        for breaker in list(self._breakers.values()):
            breaker.reset()

    def _known(self) -> str:
        return ", ".join(repr(name) for name in self.names()) or "none"

    def _unknown(self, name: str) -> ConfigError:
        return ConfigError(
            "name", name, f"is not configured and there is no default= (known: {self._known()})"
        )


def _check_config(parameter: str, config: object) -> None:
    if not isinstance(config, CircuitBreakerConfig):
        raise ConfigError(parameter, config, "must be a CircuitBreakerConfig")
