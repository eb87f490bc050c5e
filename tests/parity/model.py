"""A small reference model of one consumer group, the yardstick for every backend's deliveries.

Entries are numbered 0, 1, 2… in append order. Each operation returns the deliveries it made as
``(entry number, delivery count)`` pairs, which is all an application can observe.
"""

from __future__ import annotations

import math

import attrs

Delivery = tuple[int, int]


@attrs.define
class Pending:
    consumer: str
    count: int
    idle: float


@attrs.define
class GroupModel:
    grace: float
    entries: int = 0
    last_delivered: int = -1
    pending: dict[int, Pending] = attrs.field(factory=dict)
    dead_letters: list[int] = attrs.field(factory=list)

    def send(self, count: int) -> list[int]:
        first = self.entries
        self.entries += count
        return list(range(first, self.entries))

    def read_new(self, consumer: str, count: int) -> list[Delivery]:
        start = self.last_delivered + 1
        taken = list(range(start, min(self.entries, start + count)))
        for entry in taken:
            self.pending[entry] = Pending(consumer, 1, 0.0)
        if taken:
            self.last_delivered = taken[-1]
        return [(entry, 1) for entry in taken]

    def read_own_pending(self, consumer: str) -> list[Delivery]:
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

    def nack(self, entry: int) -> None:
        if entry in self.pending:
            self.pending[entry].idle = math.inf

    def touch(self, consumer: str, entry: int) -> None:
        item = self.pending.get(entry)
        if item is not None and item.consumer == consumer:
            item.idle = 0.0

    def term(self, entry: int) -> None:
        if entry in self.pending:
            self.dead_letters.append(entry)
            self.ack(entry)

    def advance(self, seconds: float) -> None:
        for item in self.pending.values():
            item.idle += seconds

    def claim(self, consumer: str) -> list[Delivery]:
        result = []
        for entry in sorted(self.pending):
            item = self.pending[entry]
            if item.idle >= self.grace:
                item.consumer = consumer
                item.count += 1
                item.idle = 0.0
                result.append((entry, item.count))
        return result
