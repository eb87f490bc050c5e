"""The parity model: random sequences of consumer-group operations on a backend give the same
deliveries as a small reference model of a consumer group (what keeps memory:// and Redis alike,
and any backend honest to both).

``hypothesis`` drives it and is imported only when :func:`run_parity` runs (it is a test
dependency, not one of streamsink's).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import attrs

from ..backend import Backend, DeliveryKey, Entry, GroupConsumer, Record, StartPosition

__all__ = ["GroupModel", "ParityTarget", "run_parity"]

T = TypeVar("T")

GRACE = 10.0
"""The ``min_idle`` of the machine's claims, in the seconds :meth:`ParityTarget.advance` moves."""

CONSUMERS = ("alpha", "beta")


@attrs.define
class _Pending:
    consumer: str
    count: int
    idle: float


@attrs.define
class GroupModel:
    """A reference consumer group. Entries are numbered 0, 1, 2… in append order; each
    operation returns the deliveries it made as ``(entry number, delivery count)`` pairs, which
    is all an application can observe."""

    grace: float
    entries: int = 0
    last_delivered: int = -1
    pending: dict[int, _Pending] = attrs.field(factory=dict)
    dead_letters: list[int] = attrs.field(factory=list)

    def send(self, count: int) -> list[int]:
        first = self.entries
        self.entries += count
        return list(range(first, self.entries))

    def read_new(self, consumer: str, count: int) -> list[tuple[int, int]]:
        start = self.last_delivered + 1
        taken = list(range(start, min(self.entries, start + count)))
        for entry in taken:
            self.pending[entry] = _Pending(consumer, 1, 0.0)
        if taken:
            self.last_delivered = taken[-1]
        return [(entry, 1) for entry in taken]

    def read_own_pending(self, consumer: str) -> list[tuple[int, int]]:
        result = []
        for entry in sorted(self.pending):
            item = self.pending[entry]
            if item.consumer == consumer:
                item.count += 1
                item.idle = 0.0
                result.append((entry, item.count))
        return result

    def ack(self, entry: int) -> None:
        self.pending.pop(entry, None)

    def _current(self, consumer: str, entry: int, count: int) -> _Pending | None:
        """The pending entry if delivery ``count`` of it is ``consumer``'s latest, else None
        (a nack or touch of any other delivery changes nothing)."""
        item = self.pending.get(entry)
        return (
            item if item is not None and (item.consumer, item.count) == (consumer, count) else None
        )

    def nack(self, consumer: str, entry: int, count: int) -> None:
        item = self._current(consumer, entry, count)
        if item is not None:
            item.idle = math.inf

    def touch(self, consumer: str, entry: int, count: int) -> None:
        item = self._current(consumer, entry, count)
        if item is not None:
            item.idle = 0.0

    def term(self, entry: int) -> None:
        if entry in self.pending:
            self.dead_letters.append(entry)
            self.ack(entry)

    def advance(self, seconds: float) -> None:
        for item in self.pending.values():
            item.idle += seconds

    def claim(self, consumer: str) -> list[tuple[int, int]]:
        result = []
        for entry in sorted(self.pending):
            item = self.pending[entry]
            if item.idle >= self.grace:
                item.consumer = consumer
                item.count += 1
                item.idle = 0.0
                result.append((entry, item.count))
        return result


class ParityTarget:
    """What :func:`run_parity` needs from a backend: subclass it and implement :meth:`open` and
    :meth:`advance`; :meth:`pending` is optional (without it the pending lists are compared
    only through what reads and claims return).

    One target object serves one :func:`run_parity` call; :meth:`open` is called once per
    generated example, in the event loop the machine runs its coroutines in.
    """

    name = "backend"

    def unique_stream(self) -> str:
        """A stream id of its own for one example."""
        return f"parity/{uuid.uuid4().hex[:12]}"

    async def open(self) -> Backend:
        """A new backend on the broker under test (unbounded: no trimming)."""
        raise NotImplementedError

    async def advance(self, backend: Backend, stream: str, group: str, seconds: float) -> None:
        """Make every pending entry of ``group`` ``seconds`` older, without sleeping: a fake
        clock for an in-process broker, a rewrite of the idle times for a server."""
        raise NotImplementedError

    async def pending(
        self, backend: Backend, stream: str, group: str
    ) -> dict[str, tuple[str, int]] | None:
        """The group's pending entries, ``{entry id: (consumer, delivery count)}``; None when
        the backend cannot show them (the invariant is then not checked)."""
        return None

    async def dead_letters(self, backend: Backend, stream: str) -> list[str]:
        """The payloads of ``stream`` (the machine's dead letters), in order."""
        reader = await backend.open_reader(stream, StartPosition.oldest())
        try:
            return [(r.payload or b"").decode() for r in await reader.read(10_000, 0)]
        finally:
            await reader.aclose()

    async def cleanup(self, backend: Backend, stream: str) -> None:
        """Remove what one example created (default: destroy its stream and dead letters)."""
        await backend.destroy(stream)
        await backend.destroy(f"{stream}:dlq")


def _machine(target: ParityTarget, run: Callable[[Awaitable[Any]], Any]) -> Any:
    """The state machine class, built once hypothesis is imported."""
    from hypothesis import strategies as st
    from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

    # Steps of 3 s never land an idle time exactly on the 10 s grace, so the few real
    # milliseconds a server adds cannot flip a comparison.
    steps = st.sampled_from([3.0, 6.0, 12.0])

    class ParityMachine(RuleBasedStateMachine):
        """Drives one backend and the model side by side; every observation must match."""

        def __init__(self) -> None:
            super().__init__()
            self.model = GroupModel(grace=GRACE)
            self.backend: Backend = run(target.open())
            self.stream = target.unique_stream()
            self.group = "parity"
            self.ids: list[str] = []  # entry number -> backend id
            self.numbers: dict[str, int] = {}
            self.consumers: dict[str, GroupConsumer] = {}
            for name in CONSUMERS:
                self.consumers[name] = run(self._open(name))

        async def _open(self, name: str) -> GroupConsumer:
            return await self.backend.open_group_consumer(
                self.stream, self.group, name, StartPosition.oldest(), ack_grace_period=GRACE
            )

        def observed(self, records: Any) -> list[tuple[int, int]]:
            result: list[tuple[int, int]] = []
            for record in records:
                assert isinstance(record, Record), record
                result.append((self.numbers[record.entry_id], record.delivery_count))
            return result

        @rule(count=st.integers(1, 4))
        def send(self, count: int) -> None:
            entries = [Entry(self.stream, "tool_start", b'{"n":%d}' % n) for n in range(count)]
            ids = run(self.backend.append(entries))
            for number, entry_id in zip(self.model.send(count), ids, strict=True):
                self.ids.append(entry_id)
                self.numbers[entry_id] = number

        @rule(consumer=st.sampled_from(CONSUMERS), count=st.integers(1, 3))
        def receive(self, consumer: str, count: int) -> None:
            records = run(self.consumers[consumer].read_new(count, 0))
            assert self.observed(records) == self.model.read_new(consumer, count)

        @precondition(lambda self: self.model.pending)
        @rule(data=st.data(), settle=st.sampled_from(["ack", "nack", "term", "touch"]))
        def settle(self, data: Any, settle: str) -> None:
            entry = data.draw(st.sampled_from(sorted(self.model.pending)))
            item = self.model.pending[entry]
            owner = item.consumer
            consumer = self.consumers[owner]
            entry_id = self.ids[entry]
            if settle in ("nack", "touch"):
                # Mostly the latest delivery by its owner; sometimes a late settle of an older
                # delivery, or by the consumer the entry was claimed from: it changes nothing.
                owner = data.draw(st.sampled_from([owner, owner, *CONSUMERS]))
                consumer = self.consumers[owner]
                count = data.draw(st.sampled_from([item.count, item.count, *range(1, item.count)]))
                key = DeliveryKey(entry_id, count)
                if settle == "nack":
                    run(consumer.nack([key]))
                    self.model.nack(owner, entry, count)
                else:
                    run(consumer.touch([key]))
                    self.model.touch(owner, entry, count)
            elif settle == "ack":
                run(consumer.ack([entry_id]))
                self.model.ack(entry)
            else:  # term: the core's dead-lettering, as the SPI sees it
                dead = Entry(f"{self.stream}:dlq", "dead_letter", entry_id.encode())
                run(self.backend.append([dead]))
                run(consumer.ack([entry_id]))
                self.model.term(entry)

        @rule(consumer=st.sampled_from(CONSUMERS))
        def claim(self, consumer: str) -> None:
            records = run(self.consumers[consumer].claim_idle(GRACE, 1000))
            assert self.observed(records) == self.model.claim(consumer)

        @rule(seconds=steps)
        def advance_time(self, seconds: float) -> None:
            run(target.advance(self.backend, self.stream, self.group, seconds))
            self.model.advance(seconds)

        @rule(consumer=st.sampled_from(CONSUMERS))
        def crash_and_restart(self, consumer: str) -> None:
            """The consumer's process dies without acking; it comes back under the same name."""
            run(self.consumers[consumer].aclose())
            self.consumers[consumer] = run(self._open(consumer))
            records = run(self.consumers[consumer].read_own_pending(None, 1000))
            assert self.observed(records) == self.model.read_own_pending(consumer)

        @invariant()
        def same_pending(self) -> None:
            pending = run(target.pending(self.backend, self.stream, self.group))
            if pending is None:
                return
            expected = {
                self.ids[entry]: (item.consumer, item.count)
                for entry, item in self.model.pending.items()
            }
            assert pending == expected

        @invariant()
        def same_dead_letters(self) -> None:
            letters = run(target.dead_letters(self.backend, f"{self.stream}:dlq"))
            assert letters == [self.ids[entry] for entry in self.model.dead_letters]

        def teardown(self) -> None:
            for consumer in self.consumers.values():
                run(consumer.aclose())
            run(target.cleanup(self.backend, self.stream))
            run(self.backend.aclose())

    ParityMachine.__name__ = f"Parity_{target.name}"
    return ParityMachine


def run_parity(
    target: ParityTarget,
    *,
    max_examples: int = 60,
    steps: int = 30,
    runtime: str = "asyncio",
    derandomize: bool = False,
) -> None:
    """Run the parity state machine on ``target``: ``max_examples`` random sequences of up to
    ``steps`` operations (send, read_new, ack, nack, touch, dead-letter, claim_idle, time passing,
    a consumer crashing and reading its own pending entries back), each compared with
    :class:`GroupModel` after every step. Blocking: call it from a plain (not async) test; the
    backend's coroutines run on an event loop of ``runtime`` (``"asyncio"`` or ``"trio"``).
    ``derandomize`` runs the same sequences every time (hypothesis's ``derandomize``), for a
    check that must find a known fault on every run.

    :raises AssertionError: the backend and the model disagree; hypothesis prints the shortest
        sequence of steps it found that shows it.
    :raises ImportError: ``hypothesis`` is not installed (``pip install hypothesis``).
    """
    try:
        from hypothesis import HealthCheck, settings
    except ImportError as exc:  # pragma: no cover - the suite installs it
        raise ImportError("run_parity needs hypothesis: pip install hypothesis") from exc
    from anyio.from_thread import start_blocking_portal

    with start_blocking_portal(runtime) as portal:

        def run(awaitable: Awaitable[T]) -> T:
            async def wait() -> T:
                return await awaitable

            return portal.call(wait)

        machine = _machine(target, run)
        machine.TestCase.settings = settings(
            max_examples=max_examples,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            database=None,
            derandomize=derandomize,
        )
        machine.TestCase().runTest()
