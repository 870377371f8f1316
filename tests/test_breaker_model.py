"""Model-based test: the breaker against a small reference model of its transitions."""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)

from argo_perf import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    CircuitState,
    ManualClock,
)
from argo_perf.breaker import Permit, Transition

OUTCOMES = st.sampled_from(["success", "failure", "ignored"])


class Boom(Exception):
    pass


class Model:
    """The specification, written as plainly as possible."""

    def __init__(self, threshold: int, successes: int, timeout: float, permits: int, hang: float):
        self.threshold = threshold
        self.successes = successes
        self.timeout = timeout
        self.permits = permits
        self.hang = hang
        self.state = "closed"
        self.forced = False
        self.failures = 0
        self.open_until = 0.0
        self.epoch = 0
        self.probes: dict[int, float] = {}
        self.probe_ok = 0
        self.ids = 0

    def enter(self, state: str) -> None:
        self.state = state
        self.epoch += 1
        self.probes = {}
        self.probe_ok = 0
        self.failures = 0

    def admit(self, now: float) -> tuple[str, int] | None:
        if self.state == "open":
            if self.forced or now < self.open_until:
                return None
            self.enter("half_open")
        if self.state == "closed":
            return ("closed", self.epoch)
        if len(self.probes) >= self.permits:
            self.probes = {k: d for k, d in self.probes.items() if d > now}
        if len(self.probes) >= self.permits:
            return None
        self.ids += 1
        self.probes[self.ids] = now + self.hang
        return ("probe", self.ids)

    def catch_up(self, now: float) -> None:
        if self.state == "open" and not self.forced and now >= self.open_until:
            self.enter("half_open")

    def open(self, now: float) -> None:
        self.enter("open")
        self.open_until = now + self.timeout

    def settle(self, token: tuple[str, int], outcome: str, now: float) -> None:
        kind, key = token
        if kind == "probe":
            if self.state != "half_open" or key not in self.probes:
                return
            del self.probes[key]
            if outcome == "failure":
                self.open(now)
            elif outcome == "success":
                self.probe_ok += 1
                if self.probe_ok >= self.successes:
                    self.enter("closed")
            return
        if self.state != "closed" or key != self.epoch:
            return
        if outcome == "failure":
            self.failures += 1
            if self.failures >= self.threshold:
                self.open(now)
        elif outcome == "success":
            self.failures = 0


class BreakerMachine(RuleBasedStateMachine):
    permits = Bundle("permits")

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()

    @initialize(
        threshold=st.integers(1, 4),
        successes=st.integers(1, 3),
        timeout=st.sampled_from([1.0, 5.0]),
        permits=st.integers(1, 3),
        hang=st.sampled_from([2.0, 10.0]),
    )
    def build(self, threshold: int, successes: int, timeout: float, permits: int, hang: float):
        config = CircuitBreakerConfig(
            failure_threshold=threshold,
            success_threshold=successes,
            timeout=timeout,
            half_open_permits=permits,
            probe_timeout=hang,
        )
        self.breaker = CircuitBreaker("model", config, clock=self.clock, listeners=[self.hear])
        self.heard = CircuitState.CLOSED
        self.model = Model(threshold, successes, timeout, permits, hang)

    def now(self) -> float:
        return self.clock.monotonic()

    def hear(self, transition: Transition) -> None:
        self.heard = transition.new

    @rule(target=permits)
    def start(self) -> Any:
        token = self.model.admit(self.now())
        permit = self.breaker.try_acquire()
        assert (permit is None) == (token is None)
        return (permit, token)

    @rule(held=consumes(permits), outcome=OUTCOMES)
    def finish(self, held: tuple[Permit | None, Any], outcome: str) -> None:
        permit, token = held
        if permit is None:
            return
        self.model.settle(token, outcome, self.now())
        if outcome == "success":
            permit.on_success()
        elif outcome == "failure":
            permit.on_failure()
        else:
            permit.release()

    @rule(outcome=OUTCOMES)
    def call(self, outcome: str) -> None:
        token = self.model.admit(self.now())

        def work() -> None:
            if outcome == "failure":
                raise Boom
            if outcome == "ignored":
                raise KeyboardInterrupt

        try:
            self.breaker.call(work)
        except Boom:
            assert token is not None
        except KeyboardInterrupt:
            assert token is not None
        except CircuitOpenError:
            assert token is None
        else:
            assert token is not None
        if token is not None:
            self.model.settle(token, outcome, self.now())

    @rule(seconds=st.sampled_from([0.5, 1.0, 2.5, 10.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(data=st.data())
    def force_open(self, data: st.DataObject) -> None:
        # Rare on purpose: a forced-open breaker only rejects until reset.
        if data.draw(st.integers(0, 9)) == 0:
            self.breaker.force_open()
            self.model.forced = True
            self.model.enter("open")

    @rule(data=st.data())
    def reset(self, data: st.DataObject) -> None:
        if not self.model.forced and data.draw(st.integers(0, 9)):
            return
        self.breaker.reset()
        self.model.forced = False
        self.model.enter("closed")

    @invariant()
    def same_state(self) -> None:
        if not hasattr(self, "model"):
            return
        expected = {
            "closed": CircuitState.CLOSED,
            "open": CircuitState.OPEN,
            "half_open": CircuitState.HALF_OPEN,
        }[self.model.state]
        assert self.heard is expected  # the last transition announced, before any catch-up
        # Reading the state moves an open circuit whose time is over to half-open.
        self.model.catch_up(self.now())
        expected = {
            "closed": CircuitState.CLOSED,
            "open": CircuitState.OPEN,
            "half_open": CircuitState.HALF_OPEN,
        }[self.model.state]
        assert self.breaker.state is expected
        metrics = self.breaker.metrics()
        assert metrics.consecutive_failures == self.model.failures
        if self.model.state == "open" and not self.model.forced:
            assert metrics.retry_after == self.model.open_until - self.now() > 0
        if self.model.state == "half_open":
            live = list(self.model.probes.values())
            if len(live) >= self.model.permits:
                assert metrics.retry_after == max(min(live) - self.now(), 0.0)
            else:
                assert metrics.retry_after == 0.0
        assert self.breaker.stats.probes_in_flight == len(self.model.probes)


BreakerMachine.TestCase.settings = settings(max_examples=80, stateful_step_count=50, deadline=None)
TestBreakerModel = BreakerMachine.TestCase
