"""SPI checks of settling entries in a group: ack, claims of idle entries, nack, touch, and
the entries of a closed consumer."""

from __future__ import annotations

from .._exceptions import StreamsinkError
from ..backend import DeliveryKey
from ._spi import CLAIMS, CLAIMS_OWN, OWN, SpiHarness, counts, ids, keys, raises, spi_check

__all__: list[str] = []


@spi_check("ack", "read_own_pending", "claim_idle", requires=CLAIMS_OWN)
async def ack_is_idempotent(h: SpiHarness) -> None:
    """Acked entries leave the pending list; acking again, an id the group never delivered, or
    nothing is no error (and acks nothing else)."""
    backend = await h.backend()
    stream = h.stream()
    (consumer,) = await h.consumers(backend, stream, "c")
    sent = await h.append(backend, stream, 4)
    await consumer.read_new(3, 0)
    undelivered = sent[3]
    await consumer.ack(sent[:2])
    await consumer.ack([*sent[:2], sent[0], undelivered])
    await consumer.ack([])
    assert ids(await consumer.read_own_pending(None, 10)) == sent[2:3]
    assert ids(await consumer.claim_idle(0, 10)) == sent[2:3]
    await consumer.ack(sent[:3])
    assert await consumer.read_own_pending(None, 10) == []
    assert await consumer.claim_idle(0, 10) == []
    assert counts(await consumer.read_new(10, 0)) == [(undelivered, 1)], "ack took an unread entry"


@spi_check("ack", requires=OWN)
async def ack_of_a_malformed_id_acks_nothing(h: SpiHarness) -> None:
    """An ack naming an id that is not an entry id raises a StreamsinkError, and acks none of
    the call's ids."""
    backend = await h.backend()
    stream = h.stream()
    (consumer,) = await h.consumers(backend, stream, "c")
    (sent,) = await h.append(backend, stream, 1)
    await consumer.read_new(1, 0)
    await raises(StreamsinkError, lambda: consumer.ack([sent, "not-an-id"]), "ack(['not-an-id'])")
    assert ids(await consumer.read_own_pending(None, 10)) == [sent], "a failed ack acked entries"


@spi_check("ack", "claim_idle", requires=CLAIMS_OWN)
async def ack_acts_on_the_group(h: SpiHarness) -> None:
    """The consumer that read an entry can ack it after another consumer claimed it."""
    backend = await h.backend()
    stream = h.stream()
    a, b = await h.consumers(backend, stream, "a", "b")
    (sent,) = await h.append(backend, stream, 1)
    await a.read_new(1, 0)
    assert ids(await b.claim_idle(0, 10)) == [sent]
    await a.ack([sent])
    assert await b.read_own_pending(None, 10) == [], "the claimed entry is still pending"


@spi_check("claim_idle", "read_own_pending", requires=CLAIMS_OWN)
async def claim_takes_idle_entries_with_counts(h: SpiHarness) -> None:
    """``claim_idle`` takes only entries idle for ``min_idle``, any consumer's, moves them to the
    claimer and raises their delivery counts."""
    backend = await h.backend()
    stream = h.stream()
    a, b = await h.consumers(backend, stream, "a", "b")
    sent = await h.append(backend, stream, 3)
    await a.read_new(10, 0)
    assert await b.claim_idle(h.timing.long_grace, 10) == [], "claimed entries not idle enough"
    await h.settle_idle()
    claimed = await b.claim_idle(h.timing.grace, 10)
    assert [(r.entry_id, r.delivery_count, r.payload) for r in claimed] == [
        (sent[0], 2, b"0"),
        (sent[1], 2, b"1"),
        (sent[2], 2, b"2"),
    ], claimed
    assert ids(await b.read_own_pending(None, 10)) == sent
    assert await a.read_own_pending(None, 10) == [], "claimed entries are still the reader's"
    assert await a.claim_idle(h.timing.grace, 10) == [], "a claim did not reset the idle time"


@spi_check("claim_idle", requires=CLAIMS)
async def claim_includes_the_claimers_own_entries(h: SpiHarness) -> None:
    """A consumer reclaims its own idle entries, with the delivery count raised."""
    backend = await h.backend()
    stream = h.stream()
    (consumer,) = await h.consumers(backend, stream, "c")
    (sent,) = await h.append(backend, stream, 1)
    await consumer.read_new(1, 0)
    await h.settle_idle()
    assert counts(await consumer.claim_idle(h.timing.grace, 10)) == [(sent, 2)]


@spi_check("claim_idle", requires=CLAIMS)
async def claims_page_through_the_pending_list(h: SpiHarness) -> None:
    """Successive ``claim_idle`` calls return at most ``count`` entries each and, together,
    every claimable entry once before any comes again."""
    backend = await h.backend()
    stream = h.stream()
    a, b = await h.consumers(backend, stream, "a", "b")
    sent = await h.append(backend, stream, 5)
    await a.read_new(10, 0)
    seen: list[str] = []
    for _ in range(20):
        page = await b.claim_idle(0, 2)
        assert len(page) <= 2, f"claim_idle(count=2) returned {len(page)} records"
        assert not set(ids(page)) & set(seen), f"{ids(page)} claimed again before {sent}"
        seen += ids(page)
        if len(seen) == len(sent):
            break
    assert sorted(seen) == sorted(sent), f"claims reached {seen}, not all of {sent}"
    again: list[str] = []
    for _ in range(20):  # the next sweep starts over
        again += ids(await b.claim_idle(0, 10))
        if again:
            break
    assert again, "no claim returned anything after a full sweep"


@spi_check("nack", "claim_idle", requires=CLAIMS)
async def nack_makes_entries_claimable_at_once(h: SpiHarness) -> None:
    """A nacked entry is claimable under any ``min_idle``; others are not; nacking an id the
    group never delivered is no error (and delivers nothing)."""
    backend = await h.backend()
    stream = h.stream()
    a, b = await h.consumers(backend, stream, "a", "b")
    sent = await h.append(backend, stream, 3)
    read = await a.read_new(2, 0)
    await a.nack([*keys(read[1:]), DeliveryKey(sent[2], 1)])  # sent[2] was never delivered
    claimed = await b.claim_idle(h.timing.long_grace, 10)
    assert counts(claimed) == [(sent[1], 2)], counts(claimed)
    assert counts(await b.read_new(10, 0)) == [(sent[2], 1)], "nack delivered an unread entry"


@spi_check("touch", "claim_idle", requires=CLAIMS_OWN)
async def touch_restarts_the_idle_time_of_own_entries(h: SpiHarness) -> None:
    """``touch`` restarts the idle time of this consumer's entries (their count unchanged) and
    leaves other consumers' entries alone."""
    backend = await h.backend()
    stream = h.stream()
    a, b = await h.consumers(backend, stream, "a", "b")
    mine, theirs = await h.append(backend, stream, 2)
    read = [*await a.read_new(1, 0), *await b.read_new(1, 0)]
    assert ids(read) == [mine, theirs]
    await h.settle_idle()
    await a.touch(keys(read))
    claimed = await a.claim_idle(h.timing.grace, 10)
    assert counts(claimed) == [(theirs, 2)], f"claimed {counts(claimed)} after touch"
    assert counts(await a.read_own_pending(None, 10)) == [(mine, 2), (theirs, 3)]


@spi_check("touch", "claim_idle", requires=CLAIMS_OWN)
async def touch_leaves_entries_another_consumer_claimed(h: SpiHarness) -> None:
    """``touch`` of an entry another consumer claimed meanwhile does not take it back."""
    backend = await h.backend()
    stream = h.stream()
    a, b = await h.consumers(backend, stream, "a", "b")
    sent = await h.append(backend, stream, 2)
    read = await a.read_new(10, 0)
    await a.nack(keys(read[:1]))
    assert ids(await b.claim_idle(0, 1)) == sent[:1]
    await a.touch(keys(read))
    assert ids(await b.read_own_pending(None, 10)) == sent[:1], "touch took the entry back"
    assert ids(await a.read_own_pending(None, 10)) == sent[1:]


@spi_check("aclose", "claim_idle", requires=CLAIMS)
async def a_closed_consumers_entries_stay_claimable(h: SpiHarness) -> None:
    """A consumer closed with pending entries leaves them pending for others to claim."""
    backend = await h.backend()
    stream = h.stream()
    a, b = await h.consumers(backend, stream, "a", "b")
    (sent,) = await h.append(backend, stream, 1)
    await a.read_new(1, 0)
    await a.aclose()
    await a.aclose()
    assert counts(await b.claim_idle(0, 10)) == [(sent, 2)]
