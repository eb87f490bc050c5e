"""When a group's pending entries are looked at and claimed (``ClaimSchedule``, on a fake clock:
no real waiting), and who of a process's subscriptions of a group makes the claims
(``ClaimGroup``)."""

from __future__ import annotations

import math

import anyio
import pytest

from streamsink._consuming._claim_group import TAKE_WAIT, ClaimGroup, joined
from streamsink._consuming._claim_schedule import ALIGN, GROWTH, SLACK, ClaimSchedule
from streamsink.backend import PendingSummary
from streamsink.testing import FakeClock
from streamsink_memory import MemoryBackend, MemoryBroker

GRACE = 20.0
INTERVAL = 0.5
NOTHING = PendingSummary(0, None)


def schedule() -> tuple[ClaimSchedule, FakeClock]:
    clock = FakeClock(100.0)
    return ClaimSchedule(GRACE, INTERVAL, clock), clock


def test_the_first_look_is_due_at_once() -> None:
    rules, _ = schedule()
    assert rules.check_due()
    assert rules.delay() == 0
    assert not rules.claim_wanted


def test_nothing_pending_looks_again_less_and_less_often_up_to_the_grace_period() -> None:
    """Each look is brought forward to a grid of the clock (ALIGN, or a quarter of its period),
    so that idle groups look together: at most that much early, never late."""
    rules, clock = schedule()
    clock.advance(0.3)  # off the grid
    expected = [INTERVAL, INTERVAL * GROWTH, INTERVAL * GROWTH**2, GRACE, GRACE, GRACE]
    for period in expected:
        assert not rules.checked(NOTHING)
        step = min(ALIGN, period / 4)
        assert clock() + period - step <= rules.next_check <= clock() + period
        assert rules.next_check / step == pytest.approx(round(rules.next_check / step))
        clock.advance(rules.delay())
    assert not rules.claim_wanted


def test_idle_groups_opened_apart_look_at_the_same_moments() -> None:
    clock = FakeClock(100.0)
    groups = []
    for _ in range(5):
        groups.append(ClaimSchedule(GRACE, INTERVAL, clock))
        clock.advance(0.17)
    for _ in range(200):  # past the growing looks, into one per grace period
        for rules in groups:
            if rules.check_due():
                rules.checked(NOTHING)
        clock.advance(0.25)
    assert len({round(rules.next_check, 6) for rules in groups}) == 1


def test_an_entry_pending_is_looked_at_when_it_turns_idle_past_the_grace_period() -> None:
    rules, clock = schedule()
    rules.checked(NOTHING)
    clock.advance(INTERVAL)
    assert not rules.checked(PendingSummary(3, 4.0))  # the oldest was delivered 4 s ago
    assert rules.next_check == pytest.approx(clock() + GRACE - 4.0 + SLACK)
    clock.advance(GRACE - 4.0)
    assert not rules.check_due()  # a hair early: the backend counts in whole milliseconds
    clock.advance(SLACK)
    assert rules.check_due()
    assert rules.checked(PendingSummary(3, GRACE + SLACK))
    assert rules.take_claim()
    assert not rules.take_claim()  # one claim per want


def test_something_pending_resets_the_growth() -> None:
    rules, clock = schedule()
    for _ in range(4):
        rules.checked(NOTHING)
        clock.advance(rules.delay())
    rules.checked(PendingSummary(1, GRACE - 1.0))  # acked before the look it asked for
    clock.advance(rules.delay())
    rules.checked(NOTHING)
    assert INTERVAL - min(ALIGN, INTERVAL / 4) <= rules.delay() <= INTERVAL


def test_a_backend_that_cannot_tell_is_claimed_from_every_interval() -> None:
    rules, clock = schedule()
    assert rules.checked(PendingSummary(5000, None))
    assert rules.take_claim()
    rules.claimed(0, False)
    assert rules.delay() == INTERVAL
    clock.advance(INTERVAL)
    assert rules.checked(PendingSummary(5000, None))


def test_a_nack_wants_a_claim_at_once() -> None:
    rules, clock = schedule()
    rules.checked(NOTHING)
    clock.advance(0.1)
    rules.nacked()
    assert rules.claim_wanted
    assert rules.take_claim()


def test_claim_outcomes() -> None:
    rules, _ = schedule()
    rules.checked(PendingSummary(300, 30.0))
    assert rules.take_claim()
    rules.claimed(100, True)  # full: more may wait
    assert rules.take_claim()
    rules.claimed(40, False)  # took what it found: look at once whether more is idle
    assert not rules.claim_wanted
    assert rules.check_due()
    rules.checked(PendingSummary(1, 25.0))  # idle, yet not for us (a live pulse consumer's)
    assert rules.take_claim()
    rules.claimed(0, False)
    assert not rules.claim_wanted
    assert rules.delay() == INTERVAL  # as often as before the summaries, not in a loop
    rules.failed()
    assert rules.delay() == INTERVAL


@pytest.mark.parametrize(("grace", "interval"), [(0.0, 0.5), (1.0, math.inf), (math.nan, 1.0)])
def test_bad_periods_are_refused(grace: float, interval: float) -> None:
    with pytest.raises(ValueError, match="positive seconds"):
        ClaimSchedule(grace, interval, FakeClock())


class _Member:
    """A stand-in for a pump: whether it waits in a read, whether its application keeps up."""

    def __init__(self, *, reading: bool = True, hungry: bool = True) -> None:
        self.reading = reading
        self._hungry = hungry
        self.woken = 0

    @property
    def hungry(self) -> bool:
        return self._hungry

    def wake(self) -> None:
        self.woken += 1


async def _checks_until(claims: ClaimGroup, done: anyio.Event, summary: PendingSummary) -> int:
    asked = 0

    async def summarize() -> PendingSummary:
        nonlocal asked
        asked += 1
        return summary

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(claims.run_checks, summarize)
        with anyio.fail_after(5):
            await done.wait()
        tasks.cancel_scope.cancel()
    return asked


@pytest.mark.anyio
async def test_a_claim_wakes_a_hungry_reader_when_nobody_comes_back_for_it() -> None:
    """Every member waits in a read: after TAKE_WAIT the one whose application keeps up is
    woken (not the stuck checker), and takes the claim; the stuck one may not."""
    backend = MemoryBackend(MemoryBroker())
    stuck, keeping_up = _Member(hungry=False), _Member()
    clock = FakeClock()
    with (
        joined(stuck, backend, "s", "g", grace=1.0, interval=0.1, clock=clock) as (claims, first),
        joined(keeping_up, backend, "s", "g", grace=1.0, interval=0.1, clock=clock) as (same, _),
    ):
        assert same is claims
        assert first.is_set()  # the oldest member is the checker
        assert claims.is_checker(stuck)
        woke = anyio.Event()
        original = keeping_up.wake

        def wake() -> None:
            original()
            woke.set()

        keeping_up.wake = wake  # type: ignore[method-assign]
        started = anyio.current_time()
        assert await _checks_until(claims, woke, PendingSummary(1, 5.0)) == 1
        assert anyio.current_time() - started >= min(TAKE_WAIT, 0.1 / 4) * 0.9
        assert (stuck.woken, keeping_up.woken) == (0, 1)
        assert not claims.take_claim(stuck)  # the hungry one, woken, is to take it
        keeping_up.reading = False
        assert claims.take_claim(keeping_up)
        claims.claimed(1, False)
        assert not claims.schedule.claim_wanted


@pytest.mark.anyio
async def test_a_member_coming_back_to_its_read_takes_the_claim_without_a_wake() -> None:
    backend = MemoryBackend(MemoryBroker())
    busy = _Member(reading=False)
    with joined(busy, backend, "s", "g", grace=1.0, interval=0.1, clock=FakeClock()) as (
        claims,
        _,
    ):
        claims.nacked()
        assert claims.take_claim(busy)
        assert not claims.take_claim(busy)
        assert busy.woken == 0


def test_groups_are_shared_per_backend_stream_group_and_periods_and_dropped_when_left() -> None:
    one, two = MemoryBackend(MemoryBroker()), MemoryBackend(MemoryBroker())
    clock = FakeClock()
    a, b, c, d = _Member(), _Member(), _Member(), _Member()
    with (
        joined(a, one, "s", "g", grace=1.0, interval=0.1, clock=clock) as (first, _),
        joined(b, two, "s", "g", grace=1.0, interval=0.1, clock=clock) as (other_backend, _),
        joined(c, one, "s", "g", grace=2.0, interval=0.1, clock=clock) as (other_grace, _),
    ):
        assert len({id(first), id(other_backend), id(other_grace)}) == 3
        with joined(d, one, "s", "g", grace=1.0, interval=0.1, clock=clock) as (shared, elected):
            assert shared is first
            assert not elected.is_set()
            assert first.members == 2
        assert first.members == 1
    with joined(a, one, "s", "g", grace=1.0, interval=0.1, clock=clock) as (fresh, _):
        assert fresh is not first  # the last member's leaving dropped it


def test_the_checker_part_goes_to_the_next_oldest_member() -> None:
    backend = MemoryBackend(MemoryBroker())
    clock = FakeClock()
    a, b = _Member(), _Member()
    with (
        joined(b, backend, "s", "g", grace=1.0, interval=0.1, clock=clock) as (_, b_elected),
        joined(a, backend, "s", "g", grace=1.0, interval=0.1, clock=clock) as (_, a_elected),
    ):
        assert b_elected.is_set()
        assert not a_elected.is_set()
    with joined(a, backend, "s", "g", grace=1.0, interval=0.1, clock=clock) as (claims, a_first):
        assert a_first.is_set()
        with joined(b, backend, "s", "g", grace=1.0, interval=0.1, clock=clock) as (_, b_next):
            assert not b_next.is_set()
            claims._leave(a)  # a's subscription ends first
            assert b_next.is_set()
            assert claims.is_checker(b)
            claims._join(a)  # (the with block leaves it again)
