"""The lease rules of read-ahead, on a fake clock (no sleeping)."""

from __future__ import annotations

from streamsink._leases import EXPIRY_FRACTION, Lease, ReadAheadLeases

GRACE = 10.0


def test_a_lease_runs_out_just_before_the_grace_period() -> None:
    leases = ReadAheadLeases(GRACE, now=0.0)
    lease = Lease(["1-0"], 0.0)
    assert not leases.expired(lease, GRACE * EXPIRY_FRACTION - 0.001)
    assert leases.expired(lease, GRACE * EXPIRY_FRACTION)


def test_leases_half_a_grace_period_old_are_due_while_the_application_progresses() -> None:
    leases = ReadAheadLeases(GRACE, now=0.0)
    old, young = Lease(["1-0", "2-0"], 0.0), Lease(["3-0"], 4.0)
    leases.handed(old)
    leases.handed(young)
    assert leases.due(4.0, outstanding=3) == []  # nothing is half a grace period old yet
    assert leases.due(5.0, outstanding=2) == [old]  # the application took one event
    leases.renewed([old], 5.0)
    assert old.renewed_at == 5.0
    assert leases.due(9.0, outstanding=1) == [young]


def test_nothing_is_renewed_once_the_application_took_nothing_for_a_grace_period() -> None:
    leases = ReadAheadLeases(GRACE, now=0.0)
    lease = Lease(["1-0", "2-0"], 0.0)
    leases.handed(lease)
    assert leases.due(6.0, outstanding=2) == [lease]  # progress at 0: still renewing
    leases.renewed([lease], 6.0)
    assert leases.due(GRACE, outstanding=2) == []  # stuck for a whole grace period
    assert leases.due(GRACE + 4.0, outstanding=1) == [lease]  # it took one: renewing again


def test_a_lease_that_ran_out_is_never_renewed() -> None:
    """Its entries may be another consumer's by now; renewing would take them back."""
    leases = ReadAheadLeases(GRACE, now=0.0)
    lease, held = Lease(["1-0"], 0.0), Lease(["2-0"], 0.0)
    leases.handed(lease)
    late = GRACE * EXPIRY_FRACTION
    assert leases.due(late, outstanding=0, held=held) == []
    assert leases.due(late - 1, outstanding=0, held=held) == [held]  # taken: only the held one


def test_taken_ids_are_forgotten_oldest_first() -> None:
    leases = ReadAheadLeases(GRACE, now=0.0)
    leases.handed(Lease(["1-0", "2-0"], 0.0))
    leases.handed(Lease(["3-0", "4-0"], 0.0))
    assert list(leases.waiting_ids()) == ["1-0", "2-0", "3-0", "4-0"]
    leases.sync(outstanding=3)
    assert list(leases.waiting_ids()) == ["2-0", "3-0", "4-0"]
    leases.sync(outstanding=1)
    assert list(leases.waiting_ids()) == ["4-0"]
    leases.sync(outstanding=0)
    assert list(leases.waiting_ids()) == []
