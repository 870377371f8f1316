"""Review 2: resilient's callable objects / partials and async detection."""

from __future__ import annotations

import functools
import inspect

from argo_perf import (
    ManualClock,
    RedisCache,
    resilient,
)


class VendorDown(Exception):
    pass


async def test_a_partial_of_an_object_with_an_async_call_is_retried() -> None:
    # is_async_callable: iscoroutinefunction(partial) unwraps to the object (False) and
    # type(partial).__call__ is partial's own (False): decorated as a sync function,
    # whose wrapper returns the coroutine unawaited, so no attempt is ever retried.
    class Flaky:
        def __init__(self) -> None:
            self.calls = 0

        async def __call__(self, symbol: str) -> float:
            self.calls += 1
            if self.calls < 3:
                raise VendorDown(symbol)
            return 231.5

    clock = ManualClock(autoadvance=True)
    fetch = resilient("massive", retry=3, clock=clock)(functools.partial(Flaky(), "AAPL"))
    assert inspect.iscoroutinefunction(fetch)
    assert await fetch() == 231.5


def test_a_method_decorated_per_instance_with_its_own_cache() -> None:
    # docs/resilient.md: "decorate per instance (in __init__) when each needs its own"
    # cache; a bound method is "not a function", so this is now a ConfigError.
    class Vendor:
        def __init__(self, venue: str) -> None:
            self.venue = venue
            self.quote = resilient("vendor", cache=RedisCache(maxsize=16), ttl=10.0)(self._quote)

        def _quote(self, symbol: str) -> str:
            return f"{self.venue}:{symbol}"

    assert Vendor("XNYS").quote("AAPL") == "XNYS:AAPL"
