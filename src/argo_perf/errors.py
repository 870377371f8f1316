"""The exceptions argo_perf raises. All derive from `ArgoPerfError`."""

from __future__ import annotations

__all__ = [
    "ArgoPerfError",
    "BackendError",
    "CircuitOpenError",
    "ConfigError",
    "MissingKeyError",
    "RateLimitExceeded",
]


class ArgoPerfError(Exception):
    """Base class of every exception argo_perf raises on purpose."""


class ConfigError(ArgoPerfError, ValueError):
    """Bad configuration, raised at construction.

    The message names the parameter and the bad value, e.g.
    ``burst must be >= 1, got 0``. It is also a `ValueError`, so code
    that validates input generically keeps working.

    Attributes:
        parameter: the name of the offending parameter.
        value: the value that was rejected.
    """

    def __init__(self, parameter: str, value: object, requirement: str) -> None:
        self.parameter = parameter
        self.value = value
        self.requirement = requirement
        super().__init__(f"{parameter} {requirement}, got {value!r}")


class BackendError(ArgoPerfError):
    """A shared backend (Redis) failed: refused, timed out, or answered with an error.

    Redis-backed primitives translate every redis-py and socket error into this
    one type, so fallback code catches one exception of ours.
    """


class CircuitOpenError(ArgoPerfError):
    """A circuit breaker rejected the call without running it.

    A new instance is raised for every rejection, so tracebacks never pile up
    on a shared object. The message is formatted only when the error is shown:
    a rejection costs little more than raising a builtin exception.

    Args:
        name: the breaker's name.
        retry_after: seconds until the breaker may admit a call again: the
            rest of the open time, the time until a half-open probe's permit
            comes back, or ``math.inf`` while it is forced open. Always > 0.

    Examples:
        ```python
        >>> error = CircuitOpenError(name="xai", retry_after=2.5)
        >>> (error.name, error.retry_after)
        ('xai', 2.5)

        ```
    """

    # The arguments live only in ``args`` (no instance dict is filled) and the
    # message is built lazily: a rejection is on the hot path of an outage.
    def __init__(self, name: str, retry_after: float) -> None:
        self.args = (name, retry_after)

    @property
    def name(self) -> str:
        """The breaker's name."""
        name: str = self.args[0]
        return name

    @property
    def retry_after(self) -> float:
        """Seconds until the breaker may admit a call again (> 0; ``inf`` when forced open)."""
        retry_after: float = self.args[1]
        return retry_after

    def __str__(self) -> str:
        return f"circuit {self.args[0]!r} is open; retry after {self.args[1]:.3f}s"


class _Rejection(CircuitOpenError):
    """The `CircuitOpenError` the breaker itself raises, built by the C constructor.

    A rejection is the hot path of an outage, and a Python ``__init__`` frame
    would add about a third to its cost. Named ``CircuitOpenError``, so
    tracebacks and ``repr`` show the public type and a pickled rejection
    loads as a plain `CircuitOpenError`.
    """

    __init__ = ArgoPerfError.__init__

    def __reduce__(self) -> tuple[type[CircuitOpenError], tuple[object, ...]]:
        return (CircuitOpenError, self.args)


_Rejection.__name__ = _Rejection.__qualname__ = "CircuitOpenError"


class RateLimitExceeded(ArgoPerfError):
    """A rate limiter gave up waiting for permission.

    Attributes:
        source: the data source (or bucket key) that was limited.
        retry_after: seconds until the request would have been admitted, when known.
    """

    def __init__(self, source: str, retry_after: float | None = None) -> None:
        self.source = source
        self.retry_after = retry_after
        hint = "" if retry_after is None else f"; retry after {retry_after:.3f}s"
        super().__init__(f"rate limit for {source!r} exceeded{hint}")


class MissingKeyError(ArgoPerfError, KeyError):
    """A `Batcher`'s batch function returned no value for a key that was asked for.

    Raised to that key's callers only; the other keys of the batch are served.
    It is also a `KeyError`, so ``except KeyError`` catches it.

    Attributes:
        key: the key the batch function's mapping did not contain.

    Examples:
        ```python
        >>> error = MissingKeyError("ZZZZ")
        >>> (error.key, str(error))
        ('ZZZZ', "the batch function returned no value for key 'ZZZZ'")

        ```
    """

    def __init__(self, key: object) -> None:
        super().__init__(key)
        self.key = key

    def __str__(self) -> str:
        return f"the batch function returned no value for key {self.key!r}"
