"""Redis commands per second of idle group subscriptions, with pulse's keep-alive on and off:
``python -m benchmarks.keepalive [--url URL] [--subscriptions N] [--seconds S] [--grace G]``.

Opens N idle group subscriptions (one group, one consumer each) for each setting, lets them
settle, resets the server's ``INFO commandstats`` and counts the commands they run over the
interval. Without ``--url`` it starts a private redis-server (the tests' helper).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import uuid
from collections import Counter

import anyio
import redis.asyncio as aioredis

import streamsink
from streamsink import SubscriberOptions

from ._server import redis_url

__all__ = ["main"]


def _calls(stats: dict[str, dict[str, int]]) -> Counter[str]:
    return Counter({name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()})


async def measure(url: str, keepalive: bool, n: int, seconds: float, grace: float) -> Counter[str]:
    """Commands run by ``n`` idle subscriptions over ``seconds``, by command name."""
    stream = f"bench/keepalive-{uuid.uuid4().hex[:8]}"
    sep = "&" if "?" in url else "?"
    options = SubscriberOptions(group="bench", ack_grace_period=grace)
    async with contextlib.AsyncExitStack() as stack:
        streams = await stack.enter_async_context(
            streamsink.connect(f"{url}{sep}pulse_keepalive={str(keepalive).lower()}")
        )
        subscriber = streams.new_subscriber(options)
        for _ in range(n):
            await stack.enter_async_context(subscriber.subscribe_manual(stream))
        await anyio.sleep(max(1.0, grace))  # past the first claims and keep-alive refreshes
        async with aioredis.Redis.from_url(url, protocol=2) as admin:
            await admin.config_resetstat()
            await anyio.sleep(seconds)
            calls = _calls(await admin.info("commandstats"))
        calls -= Counter({"info": 1, "config|resetstat": 1})
    return calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.keepalive")
    parser.add_argument("--url", help="a real Redis (default: a private redis-server)")
    parser.add_argument("--subscriptions", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--grace", type=float, default=30.0, help="ack_grace_period (s)")
    args = parser.parse_args(argv)
    with redis_url(args.url) as url:
        results = {
            on: anyio.run(measure, url, on, args.subscriptions, args.seconds, args.grace)
            for on in (False, True)
        }
    per = args.subscriptions * args.seconds
    print(
        f"{args.subscriptions} idle group subscriptions, {args.seconds:g} s, "
        f"ack_grace_period {args.grace:g} s"
    )
    for on, calls in results.items():
        total = sum(calls.values())
        detail = ", ".join(f"{name} {count / per:.3f}" for name, count in calls.most_common())
        print(f"pulse_keepalive={str(on).lower():5}: {total / per:.3f} commands/s per subscription")
        print(f"    {detail}")
    extra = sum(results[True].values()) - sum(results[False].values())
    print(f"keep-alive cost: {extra / per:+.3f} commands/s per subscription")
    return 0


if __name__ == "__main__":
    sys.exit(main())
