"""Live reconfiguration: rate limits, breaker settings and TTLs changed at run time.

`LiveConfig` holds the objects it may change (a `RateLimiter`, a
`CircuitBreakerRegistry`, an `AdaptiveTTL`) and changes them from a plain
mapping, from a JSON or TOML file, or from a file it polls for changes.
Every change is validated as a whole before anything is changed, so a bad
mapping or file changes nothing. The decision "changed? parse, validate,
apply" lives once, in `ConfigWatcher.check`; the thread and the asyncio task
that poll only sleep on the clock and call it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import importlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any, TypeVar

from . import _validate
from .breaker import CircuitBreakerConfig, CircuitBreakerRegistry
from .clock import Clock, SystemClock, _given_or_system
from .errors import ConfigError
from .ratelimit import Quota, RateLimitConfig, RateLimiter
from .ttl import AdaptiveTTL, AdaptiveTTLConfig

__all__ = ["ConfigChange", "ConfigWatcher", "LiveConfig"]

logger = logging.getLogger("argo_perf.reload")

_SECTIONS = ("rate_limits", "breakers", "ttl")
_SUFFIXES = (".json", ".toml")

C = TypeVar("C", RateLimitConfig, CircuitBreakerConfig, AdaptiveTTLConfig)


@dataclasses.dataclass(frozen=True)
class ConfigChange:
    """One setting changed by `LiveConfig`: where, from what, to what.

    Attributes:
        setting: the dotted path of the setting, e.g.
            ``"rate_limits.xai.requests_per_second"``.
        old: the value before.
        new: the value after.

    Examples:
        >>> str(ConfigChange("breakers.xai.timeout", 60.0, 30.0))
        'breakers.xai.timeout: 60.0 -> 30.0'
    """

    setting: str
    old: object
    new: object

    def __str__(self) -> str:
        return f"{self.setting}: {self.old!r} -> {self.new!r}"


class _Hidden:
    """Stands in a message for a value that is not a number: it could be a secret."""

    __slots__ = ("kind",)

    def __init__(self, value: object) -> None:
        self.kind = type(value).__name__

    def __repr__(self) -> str:
        return f"a {self.kind} (not shown)"


def _shown(value: object) -> object:
    """``value`` when it is safe to put in a message (a number, a bool, None)."""
    if value is None or isinstance(value, (bool, int, float, _Hidden)):
        return value
    return _Hidden(value)


def _at(path: str, error: ConfigError) -> ConfigError:
    """``error`` about a setting under ``path``, its value shown only when safe."""
    return ConfigError(f"{path}.{error.parameter}", _shown(error.value), error.requirement)


def _entries(section: object, path: str) -> Iterator[tuple[str, object]]:
    if not isinstance(section, Mapping):
        raise ConfigError(path, _shown(section), "must be a mapping of names to settings")
    for name, entry in section.items():
        if not isinstance(name, str) or not name:
            raise ConfigError(path, _shown(name), "must have non-empty string names")
        yield name, entry


def _updated(path: str, current: C, entry: object) -> C:
    """``current`` with the fields ``entry`` gives, validated; a config object replaces it."""
    if isinstance(entry, type(current)):
        return entry
    if not isinstance(entry, Mapping):
        raise ConfigError(path, _shown(entry), "must be a mapping of settings")
    known = [field.name for field in dataclasses.fields(current)]
    for key, value in entry.items():
        if key not in known:
            raise ConfigError(
                f"{path}.{key}", _shown(value), f"is not a setting (known: {', '.join(known)})"
            )
    values = dict(entry)
    if "quotas" in values:
        values["quotas"] = _quotas(f"{path}.quotas", values["quotas"])
    try:
        return dataclasses.replace(current, **values)
    except ConfigError as exc:
        raise _at(path, exc) from None


def _quotas(path: str, quotas: object) -> tuple[Quota, ...]:
    if not isinstance(quotas, (list, tuple)):
        raise ConfigError(path, _shown(quotas), "must be a list of quotas")
    built = []
    for index, quota in enumerate(quotas):
        where = f"{path}[{index}]"
        if isinstance(quota, Quota):
            built.append(quota)
            continue
        if not isinstance(quota, Mapping) or set(quota) != {"limit", "period"}:
            raise ConfigError(where, _shown(quota), "must be a mapping with limit and period")
        try:
            built.append(Quota(**quota))
        except ConfigError as exc:
            raise _at(where, exc) from None
    return tuple(built)


def _diff(path: str, old: C, new: C) -> list[ConfigChange]:
    return [
        ConfigChange(f"{path}.{field.name}", getattr(old, field.name), getattr(new, field.name))
        for field in dataclasses.fields(old)
        if getattr(old, field.name) != getattr(new, field.name)
    ]


_Step = tuple[Callable[[], None], list[ConfigChange]]
"""A change to make, and what it changes."""


def _step(path: str, current: C, entry: object, change: Callable[[C], None]) -> list[_Step]:
    """The change to make with ``entry`` over ``current``: none when nothing differs."""
    new = _updated(path, current, entry)
    changes = _diff(path, current, new)
    return [(functools.partial(change, new), changes)] if changes else []


def _named_steps(
    kind: str,
    section: object,
    current: Callable[[str, str, object], C],
    configure: Callable[[str, C], None],
) -> list[_Step]:
    """The changes of a section keyed by name: ``current(path, name, entry)`` is the config now."""
    steps: list[_Step] = []
    for name, entry in _entries(section, kind):
        path = f"{kind}.{name}"
        steps += _step(path, current(path, name, entry), entry, functools.partial(configure, name))
    return steps


def _known(names: list[str]) -> str:
    return ", ".join(names) or "none"


class LiveConfig:
    """Changes rate limits, breaker settings and TTLs at run time, all or nothing.

    Settings are a mapping (parsed JSON or TOML, or built in code) with up to
    three sections; each names only what changes, and what it does not name
    keeps its current value:

    ```json
    {"rate_limits": {"xai": {"requests_per_second": 2, "burst_size": 5}},
     "breakers": {"xai": {"failure_threshold": 3, "timeout": 30.0}},
     "ttl": {"stock_ttl": 15.0}}
    ```

    - ``rate_limits``: source name -> fields of `RateLimitConfig`
      (``requests_per_second``, ``burst_size``, ``quotas`` as a list of
      ``{"limit": .., "period": ..}`` that replaces the current list).
    - ``breakers``: breaker name -> fields of `CircuitBreakerConfig`
      (from a file: ``failure_threshold``, ``success_threshold``,
      ``timeout``, ``half_open_permits``, ``probe_timeout``).
    - ``ttl``: fields of `AdaptiveTTLConfig`.

    In code an entry may also be a whole config object, which replaces the
    current one. A source or breaker name must be known to its registry, or
    the registry must have a default (the name is then configured as for
    ``configure``). Everything is validated before anything changes: an
    unknown section, name or field, a wrong type or a value out of range
    raises `ConfigError` naming the setting's path (e.g.
    ``rate_limits.xai.burst_size``) and changes nothing. Values other than
    numbers are never shown in messages or logs.

    Only what differs from the current value is changed: applying the same
    settings again changes nothing and resets nothing. A changed rate limit
    keeps what was spent (see `RateLimiter.reconfigure`); a changed breaker
    keeps its state, an open circuit its deadline, while its trip rules start
    from empty counters (see `CircuitBreaker.reconfigure`); a changed TTL
    table applies to TTLs asked for afterwards.

    Thread-safe: each source, breaker and the TTL table changes in one step,
    so a concurrent call sees its old settings or its new ones, never a mix;
    two applies never interleave. Different sources change one after the
    other, so a call during an apply may see one source's new limit beside
    another's old one.

    Args:
        limiter: the `RateLimiter` whose sources ``rate_limits`` changes.
        breakers: the `CircuitBreakerRegistry` whose breakers ``breakers`` changes.
        ttl: the `AdaptiveTTL` whose table ``ttl`` changes.
        clock: the clock file watchers sleep on (default `SystemClock`).

    Raises:
        ConfigError: an argument of the wrong type, or none of the three given.

    Examples:
        ```python
        >>> limiter = RateLimiter({"xai": {"requests_per_second": 1, "burst_size": 5}})
        >>> live = LiveConfig(limiter)
        >>> [str(change) for change in live.apply({"rate_limits": {"xai": {"burst_size": 10}}})]
        ['rate_limits.xai.burst_size: 5 -> 10']
        >>> live.apply({"rate_limits": {"xai": {"burst_size": 10}}})
        []

        ```
    """

    def __init__(
        self,
        limiter: RateLimiter | None = None,
        breakers: CircuitBreakerRegistry | None = None,
        ttl: AdaptiveTTL | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        for name, value, kind in (
            ("limiter", limiter, RateLimiter),
            ("breakers", breakers, CircuitBreakerRegistry),
            ("ttl", ttl, AdaptiveTTL),
        ):
            if value is not None and not isinstance(value, kind):
                raise ConfigError(name, _shown(value), f"must be a {kind.__name__} or None")
        if limiter is None and breakers is None and ttl is None:
            raise ConfigError("limiter", None, "or breakers or ttl must be given")
        self.limiter = limiter
        self.breakers = breakers
        self.ttl = ttl
        self._clock: Clock = _given_or_system(clock)
        self._lock = threading.Lock()

    def apply(self, settings: Mapping[str, Any]) -> list[ConfigChange]:
        """Validate ``settings`` as a whole, then change what differs.

        Returns the changes made (empty when nothing differed), also logged
        at INFO on the ``argo_perf.reload`` logger.

        Raises:
            ConfigError: anything invalid, naming its path; nothing changes.
        """
        with self._lock:
            steps = self._plan(settings)
            for step, _ in steps:
                step()
        changes = [change for _, part in steps for change in part]
        if changes:
            logger.info("configuration changed: %s", "; ".join(map(str, changes)))
        return changes

    def validate(self, settings: Mapping[str, Any]) -> list[ConfigChange]:
        """The changes `apply` would make with ``settings``, changing nothing.

        Raises:
            ConfigError: as `apply`.
        """
        with self._lock:
            return [change for _, part in self._plan(settings) for change in part]

    def load(self, path: str | os.PathLike[str]) -> list[ConfigChange]:
        """Read a ``.json`` or ``.toml`` file and `apply` it.

        TOML needs Python 3.11 or later (the standard library's ``tomllib``).

        Raises:
            ConfigError: the file cannot be read or parsed (the message has
                the parser's line and column, never the file's content), or
                its settings are invalid; nothing changes.
        """
        file = _settings_file(path)
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise _unreadable(file, exc) from None
        return self.apply(_parse(file, data))

    def watch(self, path: str | os.PathLike[str], *, interval: float = 5.0) -> ConfigWatcher:
        """Apply the file at ``path`` now and whenever it changes, polled in a daemon thread.

        The file is checked once before this returns, then every ``interval``
        seconds on the clock (see `ConfigWatcher.check`). A bad version is
        logged once and changes nothing; a bad file at start-up does not
        raise (call `load` first for that). Close the watcher (or use it as a
        context manager) to stop polling.

        Raises:
            ConfigError: ``interval`` is not positive, or the file is neither
                ``.json`` nor ``.toml`` (or TOML before Python 3.11).

        Examples:
            ```python
            with live.watch("/etc/signals/limits.toml", interval=10.0):
                run_service()
            ```
        """
        watcher = ConfigWatcher(self, path, interval=interval, clock=self._clock)
        watcher.check()
        watcher._start_thread()
        return watcher

    async def watch_async(
        self, path: str | os.PathLike[str], *, interval: float = 5.0
    ) -> ConfigWatcher:
        """`watch` with an asyncio task of the running loop polling instead of a thread.

        The file is read and the settings applied in a worker thread
        (``asyncio.to_thread``), so the event loop never blocks on the disk.
        Stop it with `ConfigWatcher.aclose` or ``async with``.

        Examples:
            ```python
            async with await live.watch_async("limits.json"):
                await serve()
            ```
        """
        watcher = ConfigWatcher(self, path, interval=interval, clock=self._clock)
        await watcher.check_async()
        watcher._start_task()
        return watcher

    # -- validation: every new config is built before anything changes -----------

    def _plan(self, settings: object) -> list[_Step]:
        if not isinstance(settings, Mapping):
            raise ConfigError(
                "settings", _shown(settings), f"must be a mapping with keys {list(_SECTIONS)}"
            )
        for key, value in settings.items():
            if key not in _SECTIONS:
                raise ConfigError(
                    str(key), _shown(value), f"is not a setting (known: {_known(list(_SECTIONS))})"
                )
        steps: list[_Step] = []
        if "rate_limits" in settings:
            steps += self._rate_limit_steps(settings["rate_limits"])
        if "breakers" in settings:
            steps += self._breaker_steps(settings["breakers"])
        if "ttl" in settings:
            steps += self._ttl_steps(settings["ttl"])
        return steps

    def _rate_limit_steps(self, section: object) -> list[_Step]:
        limiter = self.limiter
        if limiter is None:
            raise _unmanaged("rate_limits", section, "RateLimiter")

        def current(path: str, source: str, entry: object) -> RateLimitConfig:
            if source in limiter:
                return limiter.config(source)
            if limiter.default is not None:
                return limiter.default
            known = _known(limiter.names())
            raise ConfigError(path, _shown(entry), f"is not a configured source (known: {known})")

        return _named_steps("rate_limits", section, current, limiter.configure)

    def _breaker_steps(self, section: object) -> list[_Step]:
        registry = self.breakers
        if registry is None:
            raise _unmanaged("breakers", section, "CircuitBreakerRegistry")

        def current(path: str, name: str, entry: object) -> CircuitBreakerConfig:
            try:
                return registry.config(name)
            except ConfigError:
                raise ConfigError(
                    path,
                    _shown(entry),
                    "is not a known breaker and the registry has no default "
                    f"(known: {_known(registry.names())})",
                ) from None

        return _named_steps("breakers", section, current, registry.configure)

    def _ttl_steps(self, section: object) -> list[_Step]:
        ttl = self.ttl
        if ttl is None:
            raise _unmanaged("ttl", section, "AdaptiveTTL")
        return _step("ttl", ttl.config, section, ttl.reconfigure)

    def __repr__(self) -> str:
        managed = [
            name
            for name, value in (
                ("limiter", self.limiter),
                ("breakers", self.breakers),
                ("ttl", self.ttl),
            )
            if value is not None
        ]
        return f"LiveConfig({', '.join(managed)})"


def _unmanaged(section: str, value: object, kind: str) -> ConfigError:
    return ConfigError(section, _shown(value), f"cannot be changed: this LiveConfig has no {kind}")


# -- files ---------------------------------------------------------------------------


def _settings_file(path: str | os.PathLike[str]) -> Path:
    """``path`` as a `Path`, checked to be a file this module can parse."""
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError("path", _shown(path), "must be a str or a path")
    file = Path(path)
    if file.suffix.lower() not in _SUFFIXES:
        raise ConfigError("path", str(file), "must end in .json or .toml")
    if file.suffix.lower() == ".toml":
        _tomllib(file)
    return file


def _tomllib(file: Path) -> ModuleType:
    try:
        # Imported by name: tomllib is in the standard library from Python 3.11 only.
        return importlib.import_module("tomllib")
    except ImportError:
        raise ConfigError(
            "path", str(file), "is TOML, which needs Python 3.11 or later (use JSON)"
        ) from None


def _parse(file: Path, data: bytes) -> Mapping[str, Any]:
    """The settings in ``data``; errors carry the parser's position, never the content."""
    json_file = file.suffix.lower() == ".json"
    kind = "JSON" if json_file else "TOML"
    toml = None if json_file else _tomllib(file)
    try:
        settings = json.loads(data) if toml is None else toml.loads(data.decode("utf-8"))
    except ValueError as exc:  # JSONDecodeError, TOMLDecodeError and UnicodeDecodeError
        raise ConfigError("path", str(file), f"is not valid {kind} ({exc})") from None
    except RecursionError:  # both parsers recurse per level of nesting
        raise ConfigError("path", str(file), f"is not valid {kind} (nested too deeply)") from None
    if not isinstance(settings, Mapping):
        raise ConfigError("path", str(file), "must hold an object of settings")
    return settings


def _unreadable(file: Path, exc: OSError) -> ConfigError:
    return ConfigError("path", str(file), f"cannot be read ({exc.strerror or type(exc).__name__})")


class ConfigWatcher:
    """Applies a settings file to a `LiveConfig` whenever its content changes.

    Made by `LiveConfig.watch` (a daemon thread polls) and
    `LiveConfig.watch_async` (an asyncio task polls); both call `check`
    every ``interval`` seconds on the clock. A version of the file is told
    apart by a hash of its content: rewriting it with the same content
    changes nothing, and a change within the same second is still seen.

    A bad version (unreadable or missing, not valid JSON or TOML, invalid
    settings) changes nothing, is logged once at WARNING on the
    ``argo_perf.reload`` logger with the reason (never the file's content)
    and is kept in `last_error`; the next good version applies. Write the
    file by renaming a complete copy into place, or a half-written version
    may be logged as bad before the complete one applies.

    Attributes:
        path: the file watched.
        interval: seconds between checks.
        checks: how many checks have run.
        last_error: why the current version was rejected, or None when it applied.
    """

    def __init__(
        self,
        live: LiveConfig,
        path: str | os.PathLike[str],
        *,
        interval: float = 5.0,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(live, LiveConfig):
            raise ConfigError("live", _shown(live), "must be a LiveConfig")
        self.path = _settings_file(path)
        self.interval = _validate.positive_seconds("interval", interval)
        self.checks = 0
        self.last_error: ConfigError | None = None
        self._live = live
        self._clock: Clock = _given_or_system(clock)
        self._version: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None

    def check(self) -> list[ConfigChange]:
        """Check the file once: when its content changed, parse, validate and apply it.

        Returns the changes made; empty when the file did not change, when
        the new version changes nothing, or when it was rejected (then
        `last_error` says why). Never raises for a bad file.
        """
        with self._lock:
            self.checks += 1
            try:
                data = self.path.read_bytes()
            except OSError as exc:
                return self._rejected("unreadable", _unreadable(self.path, exc))
            version = hashlib.sha256(data).hexdigest()
            if version == self._version:
                return []
            try:
                changes = self._live.apply(_parse(self.path, data))
            except ConfigError as error:
                return self._rejected(version, error)
            self._version = version
            self.last_error = None
            return changes

    async def check_async(self) -> list[ConfigChange]:
        """`check` in a worker thread, so that the event loop never waits for the disk."""
        return await asyncio.to_thread(self.check)

    def _rejected(self, version: str, error: ConfigError) -> list[ConfigChange]:
        if version != self._version:  # once per bad version
            logger.warning("%s rejected, settings unchanged: %s", self.path, error)
            self._version = version
        self.last_error = error
        return []

    # -- the faces: sleep on the clock, then check -----------------------------------

    def _start_thread(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"argo_perf config watcher {self.path.name}", daemon=True
        )
        self._thread.start()

    def _start_task(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run_async())

    def _wait(self) -> bool:
        """Sleep one interval; False once closed."""
        if isinstance(self._clock, SystemClock):
            # The same wall time, but close() ends the wait at once.
            return not self._stop.wait(self.interval)
        if self._stop.is_set():
            return False
        self._clock.sleep(self.interval)
        return not self._stop.is_set()

    def _run(self) -> None:
        while self._wait():
            try:
                self.check()
            except Exception:  # a bug must not end the polling
                logger.exception("checking %s failed", self.path)

    async def _run_async(self) -> None:
        while not self._stop.is_set():
            await self._clock.sleep_async(self.interval)  # close() cancels it
            try:
                await self.check_async()
            except Exception:
                logger.exception("checking %s failed", self.path)

    @property
    def running(self) -> bool:
        """Whether a thread or task is still polling."""
        if self._thread is not None:
            return self._thread.is_alive()
        return self._task is not None and not self._task.done()

    def close(self) -> None:
        """Stop polling (a check under way finishes). Safe to call more than once.

        With the system clock the thread ends at once; with another clock it
        ends when its current sleep on that clock is over. An asyncio task is
        cancelled.
        """
        self._stop.set()
        task = self._task
        if task is not None and not task.done():
            with contextlib.suppress(RuntimeError):  # its loop is closed: it runs no more
                task.get_loop().call_soon_threadsafe(task.cancel)

    async def aclose(self) -> None:
        """`close`, then wait for the asyncio task to end."""
        self.close()
        if self._task is not None:
            await asyncio.wait({self._task})  # ends cancelled: nothing to raise

    def __enter__(self) -> ConfigWatcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> ConfigWatcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"ConfigWatcher({str(self.path)!r}, interval={self.interval:g})"
