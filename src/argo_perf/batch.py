"""`Batcher`: concurrent single-key calls made within a short window become one batch call.

A vendor that answers ``GET /quotes?symbols=AAPL,MSFT,...`` in one request
costs one request (one rate-limit token, one round trip) for many symbols.
`Batcher` lets code written one key at a time use it: callers ask for one key
each, the first call of a window opens it, and when the window ends (or holds
``max_size`` keys) the distinct keys go to the batch function in one call;
every caller then gets its own value or its own error.

The decisions (which window a call joins, when a window is full, what each
caller gets from the batch's answer) live once in `_Windows`, with no I/O; the
sync face (threads, `Batcher.load`) and the asyncio face (tasks,
`Batcher.load_async`) differ only in how they wait and call.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from . import _validate as check
from ._failure import CancelledItself, SharedFailure, settled
from .clock import Clock, _given_or_system
from .errors import MissingKeyError

__all__ = ["Batcher", "BatcherStats"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# A caller's part in its window: it opened the window (and times it), it joined
# a window someone else times, or it added the key that filled the window (and
# fetches it at once).
_OPENED, _JOINED, _FILLED = "opened", "joined", "filled"
# A window's life: keys join it while OPEN; it is FETCHING from the moment its
# keys go to the batch function; then DONE, or ABANDONED when the batch was given
# up (its leader interrupted or cancelled) and its callers must join another.
_OPEN, _FETCHING, _DONE, _ABANDONED = "open", "fetching", "done", "abandoned"


@dataclass(frozen=True, slots=True)
class BatcherStats:
    """A snapshot of a `Batcher`'s counters, taken by `Batcher.stats`.

    Counters count from the batcher's creation and are never reset; read two
    snapshots and subtract for a rate. ``keys_fetched / batches`` is the mean
    batch size, and ``keys_requested / batches`` the single-key calls each
    call of the batch function served.

    Examples:
        ```python
        batcher = Batcher(fetch_quotes)
        batcher.load("AAPL")
        assert batcher.stats.batches == 1
        ```
    """

    keys_requested: int = 0
    """Calls of `load` / `load_async` (one key each)."""
    duplicates: int = 0
    """Calls whose key was already in their window: they shared its fetch."""
    batches: int = 0
    """Calls of the batch function."""
    keys_fetched: int = 0
    """Keys passed to the batch function, summed over its calls."""
    largest_batch: int = 0
    """The most keys passed to one call of the batch function."""
    failed_batches: int = 0
    """Batch calls that raised (or returned something other than a mapping): each
    failed all of its callers, and only them."""
    missing_keys: int = 0
    """Keys a batch's mapping had no value for (their callers got `MissingKeyError`)."""
    key_errors: int = 0
    """Keys a batch answered with an exception instance (raised to their callers)."""
    abandoned: int = 0
    """Batches given up because the caller or task timing or fetching them was
    interrupted or cancelled; their other callers joined another batch. (A batch
    function raising `asyncio.CancelledError` itself is a failed batch.)"""
    in_flight: int = 0
    """Batch calls running now (a gauge)."""


class _Abandoned(Exception):
    """The window a caller waited on was given up: the caller joins another one."""


_MISSING: Any = object()


class _Window(Generic[K, V]):
    """One batch: the keys asked for while it was open, then what each of them gets."""

    __slots__ = ("answers", "failure", "keys", "scope", "signal", "state", "task")

    def __init__(self, scope: object, signal: Any) -> None:
        self.scope = scope
        # How the face wakes the window's callers when it is DONE or ABANDONED:
        # a threading.Event (sync face), or a list of each caller's asyncio
        # future (asyncio face: a cancelled caller cancels only its own).
        self.signal = signal
        self.keys: dict[K, None] = {}  # distinct keys, in the order first asked for
        self.state = _OPEN
        self.answers: dict[K, Any] = {}  # key -> value, a SharedFailure or _MISSING
        self.failure: SharedFailure[BaseException] | None = None  # the whole batch failed
        self.task: asyncio.Task[None] | None = None  # asyncio face: the timer, then the fetch

    def batch(self) -> list[K]:
        """The keys for the batch function: distinct, in the order first asked for."""
        return list(self.keys)


class _Windows(Generic[K, V]):
    """The batching decisions, without I/O: joining, closing, settling and answering windows.

    One window is open at a time per scope: threads share the scope ``None``,
    each event loop is its own scope (a task never waits on another loop's
    future). Every change happens under one lock, so the faces may be used
    together from any number of threads and event loops.
    """

    __slots__ = ("_counts", "_lock", "_open", "max_size")

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._lock = threading.Lock()
        self._open: dict[object, _Window[K, V]] = {}
        self._counts = dict.fromkeys(BatcherStats.__dataclass_fields__, 0)

    def join(
        self, scope: object, key: K, signal: Callable[[], object], first: bool
    ) -> tuple[_Window[K, V], str]:
        """The window ``key`` joins in ``scope``, and the caller's part in it.

        ``_OPENED``: the caller opened the window and must time it (then
        `close` it and fetch). ``_FILLED``: its key filled the window, which
        is closed already: the caller fetches it now. ``_JOINED``: it waits.
        ``first`` is False when the caller joins again after an abandoned window.
        """
        try:
            hash(key)
        except TypeError:
            raise TypeError(f"key must be hashable, got {type(key).__name__}") from None
        counts = self._counts
        with self._lock:
            if first:
                counts["keys_requested"] += 1
            window = self._open.get(scope)
            if window is None:
                window = self._open[scope] = _Window(scope, signal())
                role = _OPENED
            elif key in window.keys:
                counts["duplicates"] += 1
                return window, _JOINED
            else:
                role = _JOINED
            window.keys[key] = None
            if len(window.keys) >= self.max_size:
                self._start(window)
                role = _FILLED
            return window, role

    def close(self, window: _Window[K, V]) -> bool:
        """End ``window``'s time: True when the caller must fetch it, False when it was filled."""
        with self._lock:
            if window.state is not _OPEN:
                return False
            self._start(window)
            return True

    def _start(self, window: _Window[K, V]) -> None:
        # Under the lock: no key joins the window any more, and it counts as a batch.
        window.state = _FETCHING
        if self._open.get(window.scope) is window:
            del self._open[window.scope]
        counts = self._counts
        size = len(window.keys)
        counts["batches"] += 1
        counts["keys_fetched"] += size
        counts["in_flight"] += 1
        if size > counts["largest_batch"]:
            counts["largest_batch"] = size

    def settle(self, window: _Window[K, V], result: object) -> None:
        """What each caller of ``window`` gets from the batch function's ``result``.

        A key the mapping lacks gets `MissingKeyError`; a key mapped to an
        exception instance raises it; keys nobody asked for are ignored. A
        result that is not a mapping (or a mapping that fails to read) fails
        the whole batch.
        """
        if not isinstance(result, Mapping):
            error = TypeError(
                f"the batch function must return a mapping of keys to values, "
                f"got {type(result).__name__}"
            )
            self.fail(window, error)
            return
        answers = window.answers
        missing = errors = 0
        try:
            for key in window.keys:
                value = result.get(key, _MISSING)
                if value is _MISSING:
                    missing += 1
                elif isinstance(value, Exception):
                    value = SharedFailure(value)
                    errors += 1
                answers[key] = value
        except Exception as exc:
            self.fail(window, exc)
            return
        with self._lock:
            self._end(window, _DONE)
            self._counts["missing_keys"] += missing
            self._counts["key_errors"] += errors

    def fail(self, window: _Window[K, V], error: BaseException) -> None:
        """The batch function raised ``error``: every caller of ``window`` raises it.

        An `asyncio.CancelledError` the batch function raised itself (its task
        not cancelled) is such an error, raised to every caller.
        """
        window.failure = SharedFailure(error)
        with self._lock:
            self._end(window, _DONE)
            self._counts["failed_batches"] += 1

    def abandon(self, window: _Window[K, V], state: str) -> bool:
        """Give ``window`` up if it is still in ``state``; True when its callers must be woken.

        The caller timing an open window, or fetching one, was interrupted or
        cancelled: the window's other callers join another window.
        """
        with self._lock:
            if window.state is not state:
                return False
            if self._open.get(window.scope) is window:
                del self._open[window.scope]
            self._end(window, _ABANDONED)
            self._counts["abandoned"] += 1
            return True

    def _end(self, window: _Window[K, V], state: str) -> None:
        if window.state is _FETCHING:
            self._counts["in_flight"] -= 1
        window.state = state

    @staticmethod
    def answer(window: _Window[K, V], key: K) -> V:
        """``key``'s value from a settled ``window``, or its error raised for this caller.

        Raises:
            _Abandoned: the window was given up; the caller joins another one.
        """
        if window.state is not _DONE:  # given up (or interrupted while settling)
            raise _Abandoned
        if window.failure is not None:
            raise window.failure.for_caller()
        value = window.answers[key]
        if value is _MISSING:
            raise MissingKeyError(key)
        if type(value) is SharedFailure:
            raise value.for_caller()
        result: V = value
        return result

    def stats(self) -> BatcherStats:
        with self._lock:
            return BatcherStats(**self._counts)


class Batcher(Generic[K, V]):
    """Concurrent single-key calls made within a short window become one call of ``batch_fn``.

    ``batch_fn(keys)`` takes a list of distinct keys and returns a mapping of
    keys to values (a plain function, or an ``async def`` for `load_async`).
    The first call of a window opens it; the window's keys go to ``batch_fn``
    in one call when ``window`` seconds have passed on the clock, or at once
    when it holds ``max_size`` distinct keys (the next call opens a new
    window). Each caller then gets its own result or its own error:

    - a key asked for several times in one window is fetched once, and every
      caller of it gets the value;
    - a key the mapping lacks raises `MissingKeyError` (a `KeyError`) naming
      it, in its callers only; keys nobody asked for are ignored;
    - a key mapped to an exception instance raises that exception in its
      callers only (per-key errors, e.g. an unknown symbol);
    - ``batch_fn`` raising fails every caller of that batch, and only them:
      each raises the exception, from ``batch_fn``'s own traceback. So does an
      `asyncio.CancelledError` it raises itself (an inner request cancelled
      under it) while its task was not cancelled: every caller raises the
      ``CancelledError``, and nobody tries again;
    - a caller cancelled while it waits (a task, or a thread interrupted)
      stops waiting; the batch goes on for the others. When the caller timing
      or fetching a batch is interrupted or cancelled before the answer, the
      batch is given up and its other callers join a new one: nobody is left
      waiting.

    `load` blocks the calling thread: the thread that opens a window sleeps
    ``window`` seconds on the clock, then calls ``batch_fn`` on that thread; a
    window that fills first is fetched at once by the thread whose key filled
    it, and the opener gets its value when its sleep ends. `load_async`
    suspends the calling task: the window is timed and fetched in tasks of
    its own, so every caller gets its value as soon as the batch answers.
    With ``window=0`` an asyncio window holds the calls made before the event
    loop comes round to it (every task that was ready to run in the same
    iteration), and a thread's window holds only its own call.

    Thread-safe; threads batch with threads, and each event loop's tasks with
    tasks of that loop.

    Args:
        batch_fn: a function of a list of distinct keys returning a mapping
            of keys to values; sync (for `load`, and usable by `load_async`,
            which then calls it on the event loop's thread) or ``async def``
            (for `load_async` only).
        max_size: the most distinct keys in one batch (an int >= 1).
        window: seconds a window stays open for more keys (>= 0, finite).
        clock: time source and sleeper (default `SystemClock`).

    Raises:
        ConfigError: ``batch_fn`` is not callable, ``max_size`` is not an
            int of at least 1, or ``window`` is negative, infinite or not a
            number.

    Examples:
        ```python
        async def fetch_quotes(symbols: list[str]) -> dict[str, float]:
            reply = await vendor.get("/quotes", params={"symbols": ",".join(symbols)})
            return {row["symbol"]: row["price"] for row in reply.json()}

        quotes = Batcher(fetch_quotes, max_size=50, window=0.005)

        # 200 tasks, 4 vendor requests:
        prices = await asyncio.gather(*(quotes.load_async(s) for s in symbols))
        ```
    """

    @overload
    def __init__(
        self,
        batch_fn: Callable[[list[K]], Awaitable[Mapping[K, V | BaseException]]],
        *,
        max_size: int = ...,
        window: float = ...,
        clock: Clock | None = ...,
    ) -> None: ...

    @overload
    def __init__(
        self,
        batch_fn: Callable[[list[K]], Mapping[K, V | BaseException]],
        *,
        max_size: int = ...,
        window: float = ...,
        clock: Clock | None = ...,
    ) -> None: ...

    def __init__(
        self,
        batch_fn: Callable[
            [list[K]],
            Mapping[K, V | BaseException] | Awaitable[Mapping[K, V | BaseException]],
        ],
        *,
        max_size: int = 100,
        window: float = 0.005,
        clock: Clock | None = None,
    ) -> None:
        self.batch_fn = check.function(
            "batch_fn", batch_fn, "a function of a list of keys returning a mapping"
        )
        self.max_size = check.count("max_size", max_size)
        self.window = check.non_negative_seconds("window", window)
        self._clock = _given_or_system(clock)
        self._coroutine_fn = inspect.iscoroutinefunction(batch_fn)
        self._windows: _Windows[K, V] = _Windows(self.max_size)
        # Strong references to the timer and fetch tasks: the event loop keeps only weak ones.
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def stats(self) -> BatcherStats:
        """A snapshot of the counters (see `BatcherStats`)."""
        return self._windows.stats()

    # -- the sync face -------------------------------------------------------------

    def load(self, key: K) -> V:
        """``key``'s value, fetched in one batch with the keys other threads ask for meanwhile.

        Blocks the calling thread until its batch answers (at most ``window``
        seconds plus the batch call, when the batch function answers).

        Raises:
            MissingKeyError: the batch function's mapping had no value for ``key``.
            TypeError: ``key`` is not hashable, ``batch_fn`` is an ``async def``
                (use `load_async`), or it returned something other than a mapping.
            Exception: what the batch function raised, or the exception
                instance it mapped ``key`` to.
        """
        if self._coroutine_fn:
            raise TypeError("batch_fn is a coroutine function: call load_async, not load")
        windows = self._windows
        first = True
        while True:
            window, role = windows.join(None, key, threading.Event, first)
            first = False
            if role is _OPENED:
                self._time(window)
            elif role is _FILLED:
                self._fetch(window)
            window.signal.wait()
            try:
                return windows.answer(window, key)
            except _Abandoned:
                continue

    def _time(self, window: _Window[K, V]) -> None:
        """Hold ``window`` open for its time on this thread, then fetch it (unless it filled)."""
        try:
            if self.window > 0:
                self._clock.sleep(self.window)
        except BaseException:  # KeyboardInterrupt ...: the window's other callers join another
            if self._windows.abandon(window, _OPEN):
                window.signal.set()
            raise
        if self._windows.close(window):
            self._fetch(window)

    def _fetch(self, window: _Window[K, V]) -> None:
        """Call the batch function for ``window`` on this thread and wake its callers."""
        windows = self._windows
        try:
            result = self.batch_fn(window.batch())
            if inspect.isawaitable(result):
                _discard(result)
                raise TypeError("batch_fn returned an awaitable: call load_async, not load")
        except (Exception, asyncio.CancelledError) as exc:  # a thread is not cancelled: its own
            windows.fail(window, exc)
        except BaseException:
            windows.abandon(window, _FETCHING)
            raise
        else:
            windows.settle(window, result)
        finally:
            window.signal.set()

    # -- the asyncio face ----------------------------------------------------------

    async def load_async(self, key: K) -> V:
        """``key``'s value, fetched in one batch with the keys other tasks ask for meanwhile.

        Suspends the calling task until its batch answers. Cancelling the task
        stops its wait only: the batch goes on for its other callers.

        Raises:
            MissingKeyError: the batch function's mapping had no value for ``key``.
            TypeError: ``key`` is not hashable, or the batch function returned
                something other than a mapping.
            Exception: what the batch function raised, or the exception
                instance it mapped ``key`` to.
        """
        loop = asyncio.get_running_loop()
        windows = self._windows
        first = True
        while True:
            window, role = windows.join(loop, key, list, first)
            first = False
            # This caller's own future: cancelling the caller cancels it and nothing else.
            # Added after join without a lock: only this loop's thread settles this window.
            woken: asyncio.Future[None] = loop.create_future()
            window.signal.append(woken)
            if role is not _JOINED:
                self._launch(window, role)
            await woken
            try:
                return windows.answer(window, key)
            except _Abandoned:
                continue

    def _launch(self, window: _Window[K, V], role: str) -> None:
        """Start ``window``'s timer (it was opened) or its fetch (it was filled) in a task."""
        if role is _OPENED:
            task = asyncio.ensure_future(self._time_async(window))
        else:
            if window.task is not None:
                window.task.cancel()  # the timer of a window that filled first
            task = asyncio.ensure_future(self._fetch_async(window))
        window.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _time_async(self, window: _Window[K, V]) -> None:
        try:
            if self.window > 0:
                await self._clock.sleep_async(self.window)
        except BaseException:  # cancelled: the window filled (a no-op here) or the loop closes
            if self._windows.abandon(window, _OPEN):
                _wake(window.signal)
            raise
        if self._windows.close(window):
            await self._fetch_async(window)

    async def _fetch_async(self, window: _Window[K, V]) -> None:
        windows = self._windows
        try:
            result = await settled(functools.partial(self.batch_fn, window.batch()))
        except CancelledItself as exc:  # not this task's cancellation: the batch failed
            windows.fail(window, exc.error)
        except Exception as exc:
            windows.fail(window, exc)
        except BaseException:  # cancelled (the loop closes) or interrupted: callers join another
            windows.abandon(window, _FETCHING)
            raise
        else:
            windows.settle(window, result)
        finally:
            _wake(window.signal)

    def __repr__(self) -> str:
        name = getattr(self.batch_fn, "__qualname__", type(self.batch_fn).__name__)
        return f"Batcher({name}, max_size={self.max_size}, window={self.window:g})"


def _wake(callers: list[asyncio.Future[None]]) -> None:
    for woken in callers:
        if not woken.done():  # a cancelled caller's future is done
            woken.set_result(None)


def _discard(awaitable: object) -> None:
    # A coroutine nobody will await is closed, so Python does not warn about it.
    if inspect.iscoroutine(awaitable):
        awaitable.close()
