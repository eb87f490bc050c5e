"""Pending summaries asked at one moment by many group consumers go in one pipeline, each caller
getting its own reply or error (fakeredis and the real server)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
import redis.asyncio as aioredis
import redis.exceptions as rex

from streamsink.backend import GroupLostError, StartPosition
from streamsink_redis import RedisBackend
from streamsink_redis._connection import raw_client
from streamsink_redis._summaries import PendingSummaries

pytestmark = pytest.mark.anyio


def _counting(raw: aioredis.Redis, sent: list[int]) -> Any:
    client = raw_client(raw.connection_pool)  # raw replies, as the backend's

    def pipeline() -> Any:
        pipe = client.pipeline(transaction=False)
        execute = pipe.execute

        async def counted(raise_on_error: bool = True) -> Any:
            sent.append(len(pipe.command_stack))
            return await execute(raise_on_error=raise_on_error)

        pipe.execute = counted  # type: ignore[method-assign]
        return pipe

    return pipeline


async def test_concurrent_summaries_share_one_pipeline(raw: aioredis.Redis, stream_id: str) -> None:
    keys = [f"pulse:stream:{stream_id}-{i}" for i in range(20)]
    for key in keys[:-1]:
        await raw.xgroup_create(key, "g", "$", mkstream=True)
    sent: list[int] = []
    summaries = PendingSummaries(_counting(raw, sent))
    replies: dict[str, Any] = {}

    async def ask(key: str) -> None:
        try:
            replies[key] = await summaries.xpending(key, "g")
        except rex.ResponseError as exc:
            replies[key] = exc

    async with anyio.create_task_group() as tasks:
        for key in keys:
            tasks.start_soon(ask, key)
    assert sent == [20]
    assert all(int(replies[key][0]) == 0 for key in keys[:-1])
    assert "NOGROUP" in str(replies[keys[-1]])  # its own error, not the batch's
    assert int((await summaries.xpending(keys[0], "g"))[0]) == 0  # a batch of one
    assert sent == [20, 1]
    await raw.delete(*keys)


async def test_a_lost_group_is_reported_through_a_batched_summary(
    backend: RedisBackend, raw: aioredis.Redis, stream_id: str
) -> None:
    consumer = await backend.open_group_consumer(stream_id, "g", "c", StartPosition.oldest())
    assert (await consumer.pending_summary()).count == 0
    await raw.xgroup_destroy(f"pulse:stream:{stream_id}", "g")
    with pytest.raises(GroupLostError):
        await consumer.pending_summary()
    await consumer.aclose()
