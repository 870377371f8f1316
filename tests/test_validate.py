"""The validation rules: one per kind of value, each naming the parameter and the value."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from argo_perf import ConfigError
from argo_perf import _validate as v

NOT_NUMBERS: list[object] = [True, False, "1", None, [1], 1j]

# rule -> (accepted, refused)
NUMERIC: dict[str, tuple[Callable[[str, object], float], list[float], list[float]]] = {
    "positive_seconds": (v.positive_seconds, [1e-9, 1, 2.5], [0, -1, math.inf, math.nan]),
    "non_negative_seconds": (v.non_negative_seconds, [0, 0.0, 3], [-1e-9, math.inf, math.nan]),
    "positive_seconds_or_inf": (v.positive_seconds_or_inf, [1, math.inf], [0, -1, math.nan]),
    "non_negative_seconds_or_inf": (
        v.non_negative_seconds_or_inf,
        [0, math.inf],
        [-1, -math.inf, math.nan],
    ),
    "rate": (v.rate, [0.001, 5], [0, -5, math.inf, math.nan]),
    "positive": (v.positive, [0.5], [0, math.inf, math.nan]),
    "fraction": (v.fraction, [0, 0.5, 0.999], [1, -0.1, math.nan]),
    "share": (v.share, [1, 0.25], [0, 1.5, math.nan]),
}


@pytest.mark.parametrize("rule", NUMERIC)
def test_each_numeric_rule_accepts_its_range_and_returns_a_float(rule: str) -> None:
    check, accepted, _ = NUMERIC[rule]
    for value in accepted:
        result = check("x", value)
        assert type(result) is float
        assert result == value


@pytest.mark.parametrize("rule", NUMERIC)
def test_each_numeric_rule_names_the_parameter_and_the_value(rule: str) -> None:
    check, _, refused = NUMERIC[rule]
    for value in [*refused, *NOT_NUMBERS]:
        with pytest.raises(ConfigError) as info:
            check("probe_interval", value)
        assert info.value.parameter == "probe_interval"
        assert info.value.value is value
        assert str(info.value).startswith("probe_interval must be")
        assert repr(value) in str(info.value)


def test_only_the_documented_rules_accept_infinity() -> None:
    allow = {"positive_seconds_or_inf", "non_negative_seconds_or_inf"}
    for rule, (check, _, _) in NUMERIC.items():
        if rule in allow:
            assert check("x", math.inf) == math.inf
        else:
            with pytest.raises(ConfigError):
                check("x", math.inf)


def test_at_least_uses_its_minimum() -> None:
    assert v.at_least("burst", 1, 1.0) == 1.0
    with pytest.raises(ConfigError, match=r"burst must be >= 1 and finite, got 0\.5"):
        v.at_least("burst", 0.5, 1.0)
    with pytest.raises(ConfigError):
        v.at_least("burst", math.inf, 1.0)


def test_count_is_an_int_never_a_bool_or_a_float() -> None:
    assert v.count("n", 1) == 1
    assert v.count("version", 0, minimum=0) == 0
    for value in (0, -1, True, 1.0, "2", None):
        with pytest.raises(ConfigError, match=r"^n must be an int >= 1, got "):
            v.count("n", value)
    assert v.count("year", 2000, minimum=2000, maximum=2100) == 2000
    with pytest.raises(ConfigError, match="must be an int in 2000-2100, got 2101"):
        v.count("year", 2101, minimum=2000, maximum=2100)


def test_function_and_optional() -> None:
    assert v.function("rng", len) is len
    with pytest.raises(ConfigError, match=r"rng must be a \(\) -> float function, got 3"):
        v.function("rng", 3, "a () -> float function")  # type: ignore[arg-type]
    assert v.optional(v.positive_seconds, "max_age", None) is None
    assert v.optional(v.positive_seconds, "max_age", 2) == 2.0
    with pytest.raises(ConfigError, match=r"max_age must be > 0 and finite \(seconds\) or None"):
        v.optional(v.positive_seconds, "max_age", 0)
    assert v.optional(v.function, "rng", len, "a function") is len


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_positive_seconds_matches_its_definition(value: float) -> None:
    if 0 < value < math.inf:
        assert v.positive_seconds("x", value) == value
    else:
        with pytest.raises(ConfigError):
            v.positive_seconds("x", value)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_fraction_and_share_match_their_definitions(value: float) -> None:
    for check, inside in ((v.fraction, 0 <= value < 1), (v.share, 0 < value <= 1)):
        if inside:
            assert check("x", value) == value
        else:
            with pytest.raises(ConfigError):
                check("x", value)


@given(st.integers(min_value=-5, max_value=5))
def test_count_matches_its_definition(value: int) -> None:
    if value >= 1:
        assert v.count("x", value) == value
    else:
        with pytest.raises(ConfigError):
            v.count("x", value)


def test_migrated_constructors_use_the_rules() -> None:
    from argo_perf import AdaptiveTTLConfig, ChangeGate, ManualClock, VolatilityTracker
    from argo_perf._redis import BackendHealth

    with pytest.raises(ConfigError, match="max_age must be > 0 and finite"):
        ChangeGate(max_age=math.inf)
    with pytest.raises(ConfigError, match="half_life must be > 0 and finite"):
        VolatilityTracker(half_life=True)
    with pytest.raises(ConfigError, match="jitter must be a fraction in"):
        AdaptiveTTLConfig(jitter=1.0)
    with pytest.raises(ConfigError, match="probe_interval must be > 0 and finite"):
        BackendHealth("t", probe_interval=math.inf)
    with pytest.raises(ValueError, match="seconds must be >= 0"):
        ManualClock().advance(True)
