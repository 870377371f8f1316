"""One value of the in-process tier and its deadlines."""

from __future__ import annotations

from typing import Any

__all__ = ["Entry"]


class Entry:
    """One cached value and its deadlines (monotonic seconds of the cache's clock)."""

    __slots__ = (
        "check_at",
        "covered",
        "delta",
        "fresh_until",
        "in_redis",
        "stale_until",
        "stored_at",
        "value",
    )

    def __init__(
        self,
        value: Any,
        stored_at: float,
        fresh_until: float,
        check_at: float,
        stale_until: float,
        delta: float,
        in_redis: bool,
    ) -> None:
        self.value = value
        self.stored_at = stored_at
        self.fresh_until = fresh_until
        self.check_at = check_at
        self.stale_until = stale_until
        self.delta = delta
        self.in_redis = in_redis
        # False once a write by another process could have replaced it unseen (coherent
        # mode, channel down): then it is never fresh without asking Redis.
        self.covered = True
