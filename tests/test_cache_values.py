"""Review 2: CachedValue made generic."""

from __future__ import annotations

from argo_perf import CachedValue


def test_a_parametrized_cached_value_can_be_built() -> None:
    # A stub cache in a user's tests builds the typed form. typing sets
    # __orig_class__ on the instance; the frozen slots dataclass's __setattr__
    # (super() of the pre-slots class) raises TypeError, not AttributeError.
    meta = CachedValue[float](231.5, 0.0, "memory", False)
    assert meta.value == 231.5
