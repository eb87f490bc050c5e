"""The lease rules of read-ahead, on a fake clock (no sleeping)."""

from __future__ import annotations

from streamsink._consuming._leases import EXPIRY_FRACTION, Lease, ReadAheadLeases
from streamsink.backend import DeliveryKey, Record
from tests.support.clock import FakeClock

GRACE = 10.0


def test_a_lease_runs_out_just_before_the_grace_period() -> None:
    clock = FakeClock()
    leases = ReadAheadLeases(GRACE, clock)
    lease = Lease(["1-0"], clock())
    clock.advance(GRACE * EXPIRY_FRACTION - 0.001)
    assert not leases.expired(lease)
    clock.advance(0.001)
    assert leases.expired(lease)


def test_leases_half_a_grace_period_old_are_due_while_the_application_progresses() -> None:
    clock = FakeClock()
    leases = ReadAheadLeases(GRACE, clock)
    old, young = Lease(["1-0", "2-0"], 0.0), Lease(["3-0"], 4.0)
    leases.handed(old)
    leases.handed(young)
    clock.advance(4.0)
    assert leases.due(outstanding=3) is None  # nothing is half a grace period old yet
    clock.advance(1.0)
    renewal = leases.due(outstanding=2)  # the application took one event
    assert renewal is not None
    assert renewal.leases == (old,)
    assert renewal.ids == ["2-0"]  # the one taken is no longer renewed
    leases.renewed(renewal)
    assert old.renewed_at == 5.0
    clock.advance(4.0)
    renewal = leases.due(outstanding=1)
    assert renewal is not None
    assert renewal.leases == (young,)


def test_a_renewal_counts_from_when_it_was_found_due() -> None:
    """The backend call in between takes time: the lease is as old as the renewal's start."""
    clock = FakeClock()
    leases = ReadAheadLeases(GRACE, clock)
    lease = Lease(["1-0"], 0.0)
    leases.handed(lease)
    clock.advance(6.0)
    renewal = leases.due(outstanding=1)
    assert renewal is not None
    clock.advance(1.0)  # the touch round trip
    leases.renewed(renewal)
    assert lease.renewed_at == 6.0


def test_nothing_is_renewed_once_the_application_took_nothing_for_a_grace_period() -> None:
    clock = FakeClock()
    leases = ReadAheadLeases(GRACE, clock)
    lease = Lease(["1-0", "2-0"], 0.0)
    leases.handed(lease)
    clock.advance(6.0)
    renewal = leases.due(outstanding=2)  # progress at 0: still renewing
    assert renewal is not None
    assert renewal.leases == (lease,)
    leases.renewed(renewal)
    clock.advance(GRACE - 6.0)
    assert leases.due(outstanding=2) is None  # stuck for a whole grace period
    clock.advance(4.0)
    renewal = leases.due(outstanding=1)  # it took one: renewing again
    assert renewal is not None
    assert renewal.leases == (lease,)


def test_a_lease_that_ran_out_is_never_renewed() -> None:
    """Its entries may be another consumer's by now; renewing would take them back."""
    clock = FakeClock()
    leases = ReadAheadLeases(GRACE, clock)
    lease, held = Lease(["1-0"], 0.0), Lease(["2-0"], 0.0)
    leases.handed(lease)
    clock.advance(GRACE * EXPIRY_FRACTION - 1)
    renewal = leases.due(outstanding=0, held=held)
    assert renewal is not None
    assert renewal.leases == (held,)  # taken: only the held one
    clock.advance(1)
    assert leases.due(outstanding=0, held=held) is None


def test_taken_ids_are_forgotten_oldest_first() -> None:
    leases = ReadAheadLeases(GRACE, FakeClock())
    leases.handed(Lease(["1-0", "2-0"], 0.0))
    leases.handed(Lease(["3-0", "4-0"], 0.0))
    assert list(leases.waiting_ids()) == ["1-0", "2-0", "3-0", "4-0"]
    leases.sync(outstanding=3)
    assert list(leases.waiting_ids()) == ["2-0", "3-0", "4-0"]
    leases.sync(outstanding=1)
    assert list(leases.waiting_ids()) == ["4-0"]
    leases.sync(outstanding=0)
    assert list(leases.waiting_ids()) == []


def test_a_renewal_names_the_deliveries_it_renews() -> None:
    """``touch`` names deliveries: a renewal gives each waiting entry's delivery count, from
    the records its batch was read as, for what is still waiting only."""
    clock = FakeClock()
    leases = ReadAheadLeases(GRACE, clock)
    records = [Record("3-0", "n", b"{}", None, 1), Record("4-0", "n", b"{}", None, 3)]
    first, claimed = Lease(["1-0", "2-0"], 0.0), Lease(["3-0", "4-0"], 0.0, records)
    leases.handed(first)
    leases.handed(claimed)
    clock.advance(GRACE / 2)
    renewal = leases.due(outstanding=3)  # "1-0" was taken
    assert renewal is not None
    keys = renewal.delivery_keys()
    assert keys == ["2-0", "3-0", "4-0"]
    assert [key.delivery_count for key in keys] == [1, 1, 3]
    assert all(isinstance(key, DeliveryKey) for key in keys)
    clock.advance(GRACE / 2)
    assert claimed.delivery_keys()[-1].delivery_count == 3  # still, once the records are let go
