"""The in-process tier's map: least recently used entries go first."""

from __future__ import annotations

from collections import OrderedDict
from typing import TypeVar

__all__ = ["LRU"]

K = TypeVar("K")
V = TypeVar("V")


class LRU(OrderedDict[K, V]):
    """A bounded map that evicts its least recently used item on insert.

    cachetools' `LRUCache` does the same, but its lookups run through several
    Python-level methods (about 0.3 µs); here a lookup is the C `OrderedDict`
    subscript and a hit marks recency with the C `move_to_end`, which keeps the
    cache's in-process hit within a small factor of a bare dict lookup. Only
    writes run Python code. Callers hold the cache's lock around every use.
    """

    __slots__ = ("maxsize",)

    def __init__(self, maxsize: int) -> None:
        super().__init__()
        self.maxsize = maxsize

    def __setitem__(self, key: K, value: V) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        if len(self) > self.maxsize:
            self.popitem(last=False)
