"""A read reply cut on its way (a TCP proxy between the consumer and Redis): Redis already made
the entries pending for the consumer, which never saw them. The consumer fetches its own pending
entries again once it has reconnected, instead of waiting a whole grace period for the group to
reclaim them; nothing is lost or handled twice."""

from __future__ import annotations

import uuid

import anyio
import pytest

import streamsink
from streamsink import StartPosition, StreamEvent, StreamsinkError
from tests.support.redis_server import RedisServer
from tests.support.subscriptions import take
from tests.support.tcp_proxy import TcpProxy

from .support import record_figures

pytestmark = [pytest.mark.anyio, pytest.mark.redis, pytest.mark.timeout(60)]

EVENTS = 200
GRACE = 30.0  # far longer than the test: a reclaim by the group would come too late
CUT_AT_BYTES = 16 * 1024  # only a read of many entries is that large


async def test_entries_of_a_cut_read_reply_come_back_at_once(own_server: RedisServer) -> None:
    session = f"cut-{uuid.uuid4().hex[:8]}"
    stream = f"session/{session}"
    errors: list[StreamsinkError] = []
    handled: list[int] = []
    with TcpProxy("127.0.0.1", own_server.port) as proxy:
        async with (
            streamsink.connect(f"{own_server.url}?maxlen=0") as direct,
            streamsink.connect(f"{proxy.url}?maxlen=0&socket_timeout=1") as proxied,
        ):
            subscriber = proxied.new_subscriber(
                group="cut",
                start=StartPosition.oldest(),
                ack_grace_period=GRACE,
                reconnect_timeout=20,
                on_error=errors.append,
            )
            async with subscriber.subscribe(stream) as events:
                await direct.sink.send(StreamEvent("tool_start", "r", session, payload=-1))
                (first,) = await take(events, 1)
                assert first.payload == -1
                proxy.cut_next_reply(min_bytes=CUT_AT_BYTES)
                await direct.sink.send_many(
                    [
                        StreamEvent("tool_start", "r", session, payload={"i": i, "pad": "x" * 500})
                        for i in range(EVENTS)
                    ]
                )
                started = anyio.current_time()
                handled += [event.payload["i"] for event in await take(events, EVENTS, 10)]
                took = anyio.current_time() - started
                stats = events.statistics()
        cuts = proxy.stats().cuts
    assert cuts == 1, "no read reply was cut"
    assert sorted(handled) == list(range(EVENTS))  # lost 0, duplicates 0
    assert stats.recovered > 0, stats
    assert took < GRACE / 3, took
    record_figures(
        "lost_read_reply",
        {
            "sent": EVENTS,
            "handled": len(handled),
            "duplicates": len(handled) - len(set(handled)),
            "lost": EVENTS - len(set(handled)),
            "replies_cut": cuts,
            "fetched_again": stats.recovered,
            "seconds_to_handle_all": round(took, 3),
            "grace_period": GRACE,
        },
    )
