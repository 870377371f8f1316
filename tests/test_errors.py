"""Errors: one base class, messages that name what went wrong."""

from __future__ import annotations

import pytest

from argo_perf import (
    ArgoPerfError,
    BackendError,
    CircuitOpenError,
    ConfigError,
    MissingKeyError,
    RateLimitExceeded,
)


def test_config_error_names_parameter_and_value_and_is_a_value_error() -> None:
    err = ConfigError("burst", 0, "must be >= 1")
    assert str(err) == "burst must be >= 1, got 0"
    assert (err.parameter, err.value) == ("burst", 0)
    assert isinstance(err, ValueError)
    assert isinstance(err, ArgoPerfError)


def test_circuit_open_error_carries_name_and_retry_after() -> None:
    err = CircuitOpenError("massive", 12.5)
    assert err.name == "massive"
    assert err.retry_after == 12.5
    assert "massive" in str(err)
    assert "12.500s" in str(err)


@pytest.mark.parametrize(
    ("retry_after", "text"), [(None, "exceeded"), (1.25, "retry after 1.250s")]
)
def test_rate_limit_exceeded_message(retry_after: float | None, text: str) -> None:
    err = RateLimitExceeded("xai", retry_after)
    assert err.source == "xai"
    assert text in str(err)


def test_backend_error_is_an_argo_perf_error() -> None:
    assert issubclass(BackendError, ArgoPerfError)


def test_missing_key_error_names_the_key_and_is_a_key_error() -> None:
    err = MissingKeyError("ZZZZ")
    assert err.key == "ZZZZ"
    assert str(err) == "the batch function returned no value for key 'ZZZZ'"
    assert isinstance(err, KeyError)
    assert isinstance(err, ArgoPerfError)
