"""The parts of a subscription that do not need the event loop, wired to each other once: the
counters, the resilient backend calls, the acker, the settler of manual deliveries, the
decode-and-poison intake and the gap reports. :class:`~._subscription.Subscription` makes them
with :func:`wire_parts` and runs the lifecycle around them."""

from __future__ import annotations

import math
from collections.abc import Callable

import anyio
import attrs

from .._exceptions import StreamsinkError
from .._options import SubscriberOptions
from ..backend import Backend, StartPosition
from ._acking import Acker
from ._calls import BackendCalls
from ._claim_group_pump import ClaimGroupPump
from ._gaps import Gaps
from ._intake import Intake
from ._leases import ReadAheadLeases
from ._pump import Pump
from ._readahead import ReadAhead
from ._settings import Settings
from ._settling import GroupSettler
from ._statistics import Counters

__all__ = ["Parts", "loop_parts", "wire_parts"]


@attrs.frozen
class Parts:
    """What :func:`wire_parts` made, each already connected to the others it uses."""

    counters: Counters
    calls: BackendCalls
    acker: Acker
    settler: GroupSettler
    intake: Intake
    gaps: Gaps
    #: the backend (its shared claims are per backend, stream and group)
    backend: Backend


def wire_parts(
    report: Callable[[StreamsinkError], None],
    backend: Backend,
    options: SubscriberOptions,
    settings: Settings,
    start: StartPosition,
    on_nack: Callable[[], None],
) -> Parts:
    """The parts of one subscription on ``backend``: errors go to ``report``, ``on_nack`` runs
    after a manual nack (the subscription claims soon)."""
    counters = Counters()
    calls = BackendCalls(
        stream_id=settings.stream_id,
        group=settings.group,
        start=start,
        reconnect_timeout=options.reconnect_timeout,
        counters=counters,
        report=report,
    )
    acker = Acker(calls, counters)
    settler = GroupSettler(
        stream_id=settings.stream_id,
        acker=acker,
        calls=calls,
        grouped=settings.group is not None,
        dead_letter=lambda record, reason: intake.dead_letter(record, reason),
        on_nack=on_nack,
    )
    intake = Intake(
        settings,
        options,
        backend=backend,
        # Dead letters are settled through this acker: by term where the backend has one.
        acker=acker.for_dead_letters(native_term=backend.capabilities.term),
        settler=settler,
        counters=counters,
        report=report,
    )
    return Parts(
        counters,
        calls,
        acker,
        settler,
        intake,
        Gaps(counters, report, manual=settings.manual),
        backend,
    )


def loop_parts(
    settings: Settings,
    parts: Parts,
    now: Callable[[], float],
    *,
    scope: anyio.CancelScope,
    held: Callable[[], set[str]],
) -> tuple[ReadAheadLeases | None, ReadAhead, Pump]:
    """The parts made on entry, in the running event loop, on the clock ``now``: the read-ahead
    leases (a group's only), the read-ahead, and the pump (cancelled through ``scope``; ``held``
    gives the ids the application holds)."""
    # A group keeps the leases of its read-ahead (they also tell which ids it holds); they run
    # out, and are renewed, only where entries can be claimed by another consumer.
    leases = (
        None
        if settings.group is None
        else ReadAheadLeases(
            settings.ack_grace_period, now, renew_while_handling=settings.renew_while_handling
        )
    )
    readahead = ReadAhead(
        buffer=settings.buffer,
        buffer_bytes=settings.buffer_bytes,
        fetch_count=settings.fetch_count,
        poll=settings.claim_interval,
        clock=now,
        lease_limit=leases.limit if leases and settings.renews else math.inf,
    )
    # On a backend that summarizes its pending entries a group's subscriptions share claims.
    kind = ClaimGroupPump if settings.group is not None and settings.summaries else Pump
    pump = kind(
        settings,
        scope=scope,
        readahead=readahead,
        leases=leases,
        calls=parts.calls,
        intake=parts.intake,
        acker=parts.acker,
        gaps=parts.gaps,
        counters=parts.counters,
        clock=now,
        held=held,
        backend=parts.backend,
    )
    return leases, readahead, pump
