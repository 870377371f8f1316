"""The permit API's ticket: one unit of protected work that reports how it went."""

from __future__ import annotations

from ._policy import Outcome
from ._wrapper import CallPath

__all__ = ["Permit"]

_FAILURE = Outcome.FAILURE
_SUCCESS = Outcome.SUCCESS
_IGNORED = Outcome.IGNORED


class Permit:
    """Permission for one unit of protected work, from `CircuitBreaker.try_acquire`.

    Report the outcome once: `on_success`, `on_failure`,
    `on_result` or `release` (counts for nothing and gives a
    half-open permit back). Later reports are ignored. Reports made after the
    breaker changed state are counted as stale and do not move the new state.
    """

    __slots__ = ("_done", "_path", "_start", "_ticket")

    def __init__(self, path: CallPath, ticket: int, start: float) -> None:
        self._path = path
        self._ticket = ticket
        self._start = start
        self._done = False

    def _report(self, outcome: Outcome, retry_after: float | None = None) -> None:
        if self._done:
            return
        self._done = True
        path = self._path
        now = path.now()
        path.settle(self._ticket, outcome, now - self._start, now, retry_after)

    def on_success(self) -> None:
        """The work succeeded."""
        self._report(_SUCCESS)

    def on_failure(self, error: BaseException | None = None) -> None:
        """The work failed; ``error`` (optional) may carry a server's retry-after."""
        core = self._path.core
        self._report(_FAILURE, None if error is None else core.retry_after_of(error))

    def on_result(self, result: object) -> None:
        """Judge a returned value with the configuration's ``failure_if_result``."""
        self._report(self._path.core.judge_result(result))

    def release(self) -> None:
        """Give the permit back without judging (cancelled or abandoned work)."""
        self._report(_IGNORED)

    def __repr__(self) -> str:
        return f"Permit(breaker={self._path.name!r}, done={self._done})"
