"""`resilient`: the one decorator that composes the library's primitives.

The package face only re-exports. `_plan` holds the checked configuration and
what both faces share without I/O (outcomes, the breaker questions),
`_retry` the retry decisions (tenacity's strategies, consulted only after a
failure), `_steps` the slow paths (waiting for a token, the retries) written
once as generators of requests, `_sync` and `_async` the two faces that run
them, `_result` the result type and the decorated functions' protocols,
`_decorator` `resilient` itself. This is the only package that imports more
than one primitive.

Examples:
    >>> from argo_perf import CircuitBreaker, RedisCache, TokenBucket, resilient
    >>> @resilient("massive", cache=RedisCache(), ttl=10.0, limiter=TokenBucket(5, 10),
    ...            breaker=CircuitBreaker("massive"), retry=3)
    ... def price(symbol: str) -> float:
    ...     return 231.5
    >>> price("AAPL")
    231.5
    >>> price.with_meta("AAPL").outcome
    'cached'
"""

from ._decorator import Resilience, resilient
from ._plan import DEFAULT_MAX_WAIT
from ._result import AsyncResilientFunction, ResilientFunction, ResilientResult

__all__ = [
    "DEFAULT_MAX_WAIT",
    "AsyncResilientFunction",
    "Resilience",
    "ResilientFunction",
    "ResilientResult",
    "resilient",
]
