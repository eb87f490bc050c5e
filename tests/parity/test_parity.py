"""Model-based parity: random operation sequences give the same deliveries on every backend as
on a small reference model of a consumer group. This is what keeps memory:// honest."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from streamsink.backend import Backend, Entry, GroupConsumer, Record, StartPosition

from .model import GroupModel
from .targets import TARGETS, Target

T = TypeVar("T")

GRACE = 10.0  # seconds; time moves only when the machine says so
CONSUMERS = ("alpha", "beta")
# Steps of 3 s never land an idle time exactly on the 10 s grace, so the few real milliseconds a
# Redis server adds cannot flip a comparison.
STEPS = st.sampled_from([3.0, 6.0, 12.0])


class ParityMachine(RuleBasedStateMachine):
    """Drives one backend and the model side by side; every observation must match."""

    target: Target

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.model = GroupModel(grace=GRACE)
        self.backend: Backend = self.run(self.target.open())
        self.stream = self.target.unique_stream()
        self.group = "parity"
        self.ids: list[str] = []  # entry number -> backend id
        self.numbers: dict[str, int] = {}
        self.consumers: dict[str, GroupConsumer] = {}
        for name in CONSUMERS:
            self.consumers[name] = self.run(self._open(name))

    def run(self, coro: Coroutine[Any, Any, T] | Awaitable[T]) -> T:
        return self.loop.run_until_complete(coro)  # type: ignore[arg-type]

    async def _open(self, name: str) -> GroupConsumer:
        return await self.backend.open_group_consumer(
            self.stream, self.group, name, StartPosition.oldest()
        )

    def observed(self, records: list[Record] | Any) -> list[tuple[int, int]]:
        return [(self.numbers[r.entry_id], r.delivery_count) for r in records]

    # -- operations ----------------------------------------------------------------------------

    @rule(count=st.integers(1, 4))
    def send(self, count: int) -> None:
        entries = [Entry(self.stream, "tool_start", b'{"n":%d}' % n) for n in range(count)]
        ids = self.run(self.backend.append(entries))
        for number, entry_id in zip(self.model.send(count), ids, strict=True):
            self.ids.append(entry_id)
            self.numbers[entry_id] = number

    @rule(consumer=st.sampled_from(CONSUMERS), count=st.integers(1, 3))
    def receive(self, consumer: str, count: int) -> None:
        records = self.run(self.consumers[consumer].read_new(count, 0))
        assert self.observed(records) == self.model.read_new(consumer, count)

    @precondition(lambda self: self.model.pending)
    @rule(data=st.data(), settle=st.sampled_from(["ack", "nack", "term", "touch"]))
    def settle(self, data: st.DataObject, settle: str) -> None:
        entry = data.draw(st.sampled_from(sorted(self.model.pending)))
        owner = self.model.pending[entry].consumer
        consumer = self.consumers[owner]
        entry_id = self.ids[entry]
        if settle == "ack":
            self.run(consumer.ack([entry_id]))
            self.model.ack(entry)
        elif settle == "nack":
            self.run(consumer.nack([entry_id]))
            self.model.nack(entry)
        elif settle == "touch":
            self.run(consumer.touch([entry_id]))
            self.model.touch(owner, entry)
        else:  # term: the core's dead-lettering, as the SPI sees it
            dead = Entry(f"{self.stream}:dlq", "dead_letter", entry_id.encode())
            self.run(self.backend.append([dead]))
            self.run(consumer.ack([entry_id]))
            self.model.term(entry)

    @rule(consumer=st.sampled_from(CONSUMERS))
    def claim(self, consumer: str) -> None:
        records = self.run(self.consumers[consumer].claim_idle(GRACE, 1000))
        assert self.observed(records) == self.model.claim(consumer)

    @rule(seconds=STEPS)
    def advance_time(self, seconds: float) -> None:
        self.run(self.target.advance(self.backend, self.stream, self.group, seconds))
        self.model.advance(seconds)

    @rule(consumer=st.sampled_from(CONSUMERS))
    def crash_and_restart(self, consumer: str) -> None:
        """The consumer's process dies without acking; it comes back under the same name."""
        self.run(self.consumers[consumer].aclose())
        self.consumers[consumer] = self.run(self._open(consumer))
        records = self.run(self.consumers[consumer].read_own_pending(None, 1000))
        assert self.observed(records) == self.model.read_own_pending(consumer)

    # -- what must always agree ------------------------------------------------------------------

    @invariant()
    def same_pending(self) -> None:
        pending = self.run(self.target.pending(self.backend, self.stream, self.group))
        expected = {
            self.ids[entry]: (item.consumer, item.count)
            for entry, item in self.model.pending.items()
        }
        assert pending == expected

    @invariant()
    def same_dead_letters(self) -> None:
        letters = self.run(self.target.dead_letters(self.backend, f"{self.stream}:dlq"))
        assert letters == [self.ids[entry] for entry in self.model.dead_letters]

    def teardown(self) -> None:
        try:
            for consumer in self.consumers.values():
                self.run(consumer.aclose())
            self.run(self.target.cleanup(self.backend, self.stream))
            self.run(self.backend.aclose())
        finally:
            self.loop.close()


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_backend_matches_the_model(
    target: Callable[[], Target], request: pytest.FixtureRequest
) -> None:
    """Random send/receive/ack/nack/term/claim/advance/crash sequences match the model."""
    chosen = target()
    chosen.prepare(request)
    machine = type(f"Parity_{chosen.name}", (ParityMachine,), {"target": chosen})
    settings_ = settings(
        max_examples=chosen.examples,
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        database=None,
    )
    machine.TestCase.settings = settings_
    machine.TestCase().runTest()
