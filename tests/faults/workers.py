"""Producer and consumer processes for the fault suite, talking to a real server by URL.

Run from the repository root with the test interpreter::

    python -m tests.faults.workers producer --url URL --session S --producer 1 --count 10000 --out F
    python -m tests.faults.workers consumer --url URL --stream session/S --group G --out F --stats F

(``--group -`` makes the consumer a fan-out reader.) ``python -m tests.faults.workers pulse --url
URL --stream S --group G --out F --stats F`` runs an emulated Go pulse sink instead.

Both write one line per event to ``--out`` and flush it at once (a write to the OS, which keeps it
even if the process is SIGKILLed right after), so the test reads exactly what happened:

- producer: ``ok <seq> <entry id>`` for every ``send`` that **returned**; ``err <seq> <error>``
  for every ``send`` that raised (that event may or may not be written, and is never retried under
  the same sequence number: the retry is a new event with a new one); ``done <ok> <err>`` at the
  end.
- consumer: ``consumer <name> <pid>`` first, then ``<seq> <entry id> <delivery count>
  <unix time>`` for every event its handler finished, written *before* the event is acknowledged.
  On SIGTERM it closes its subscription cleanly and writes its statistics (JSON) to ``--stats``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import time
from collections import Counter
from typing import Any, TextIO

import anyio
import attrs

import streamsink
from streamsink import (
    BackendUnavailableError,
    Delivery,
    DurabilityError,
    StartPosition,
    StreamEvent,
    StreamsinkError,
    SubscriberOptions,
)

READY = "ready"


def _open_out(path: str) -> TextIO:
    # Line-buffered: every line reaches the OS as soon as it is written.
    return open(path, "a", buffering=1, encoding="utf-8")


# -- producer --------------------------------------------------------------------------------------


async def produce(args: argparse.Namespace) -> None:
    """Send ``--count`` events that *returned* (failed sends do not count), at about ``--rate``
    events per second from ``--concurrency`` tasks."""
    out = _open_out(args.out)
    sent = 0
    failed = 0
    next_seq = 0
    errors: Counter[str] = Counter()

    reserved = 0  # events handed to a sender task; each one retries until a send returns

    async with streamsink.connect(args.url) as streams:
        sink = streams.sink
        started = time.monotonic()

        async def sender() -> None:
            nonlocal sent, failed, next_seq, reserved
            while reserved < args.count:
                slot = reserved
                reserved += 1
                # Pace: event number n is not sent before start + n / rate.
                if (delay := started + slot / args.rate - time.monotonic()) > 0:
                    await anyio.sleep(delay)
                backoff = 0.05
                while True:  # each attempt is a new event with a new sequence number
                    seq = f"p{args.producer}-{next_seq}"
                    next_seq += 1
                    event = StreamEvent(
                        "tool_start",
                        f"run-{args.producer}",
                        args.session,
                        event_key=seq,
                        payload={"seq": seq, "producer": args.producer},
                    )
                    try:
                        published = await sink.send(event)
                    # A DurabilityError send is written but not yet on a replica: it counts as
                    # failed (may or may not survive) and is retried as a new event like the rest.
                    except (BackendUnavailableError, DurabilityError) as exc:
                        failed += 1
                        errors[type(exc).__name__] += 1
                        out.write(f"err {seq} {type(exc).__name__}\n")
                        await anyio.sleep(random.uniform(backoff / 2, backoff))
                        backoff = min(backoff * 2, 0.5)
                        continue
                    sent += 1
                    out.write(f"ok {seq} {published.entry_id}\n")
                    break

        async with anyio.create_task_group() as tg:
            for _ in range(args.concurrency):
                tg.start_soon(sender)
    out.write(f"done {sent} {failed} {json.dumps(dict(errors), separators=(',', ':'))}\n")
    out.close()


# -- consumer --------------------------------------------------------------------------------------


async def consume(args: argparse.Namespace) -> None:
    """Consume ``--stream`` in ``--group`` (manual mode: record, then ack) until SIGTERM."""
    out = _open_out(args.out)
    errors: Counter[str] = Counter()

    def on_error(error: StreamsinkError) -> None:
        errors[type(error).__name__] += 1

    options = SubscriberOptions(
        group=None if args.group == "-" else args.group,
        start=StartPosition.oldest(),
        buffer=args.buffer,
        ack_grace_period=args.grace,
        claim_interval=args.claim,
        reconnect_timeout=args.reconnect,
        max_deliveries=args.max_deliveries,
        on_error=on_error,
    )
    async with streamsink.connect(args.url) as streams:
        subscriber = streams.new_subscriber(options)
        subscription = subscriber.subscribe_manual(args.stream)
        async with anyio.create_task_group() as tg:

            async def stop_on_sigterm() -> None:
                with anyio.open_signal_receiver(signal.SIGTERM) as signals:
                    async for _ in signals:
                        await subscription.aclose()
                        return

            tg.start_soon(stop_on_sigterm)
            ended_by: str | None = None
            async with subscription as deliveries:
                out.write(f"consumer {subscription.consumer} {os.getpid()}\n")
                out.write(f"{READY}\n")
                try:
                    async for delivery in deliveries:
                        await handle(delivery, out, args.delay)
                except StreamsinkError as exc:
                    ended_by = f"{type(exc).__name__}: {exc}"
            tg.cancel_scope.cancel()
            stats = subscription.statistics()
    report: dict[str, Any] = {
        "consumer": subscription.consumer,
        "pid": os.getpid(),
        "statistics": attrs.asdict(stats),
        "errors": dict(errors),
        "dropped_errors": subscriber.dropped_errors,
        "ended_by": ended_by,
    }
    await anyio.Path(args.stats).write_text(json.dumps(report), encoding="utf-8")
    out.close()


async def handle(delivery: Delivery, out: TextIO, delay: float) -> None:
    """Process one delivery: record it, then acknowledge it (an undecodable one is nacked)."""
    if delivery.event is None:
        await delivery.nack()
        return
    if delay:
        await anyio.sleep(delay)
    payload = delivery.event.payload
    seq = payload.get("seq") if isinstance(payload, dict) else None
    out.write(f"{seq} {delivery.entry_id} {delivery.delivery_count} {time.time():.6f}\n")
    await delivery.ack()


# -- a pulse sink (the emulation of tests/support/pulse_sink.py) ----------------------------------


async def pulse(args: argparse.Namespace) -> None:
    """Run an emulated Go pulse sink on ``--stream`` in ``--group`` until SIGTERM. It writes
    ``consumer <name> <pid>`` and ``ready`` first, then ``<seq> <entry id> <count> <unix time>``
    per entry handled (count 1 for a read, 2 for an entry its idle check claimed: pulse keeps no
    delivery count) before acking it; on SIGTERM it closes and writes, to ``--stats``, every
    consumer its stale-consumer sweeps deleted and how many idle checks it won."""
    from tests.support.pulse_sink import PulseEvent, PulseSink

    out = _open_out(args.out)

    async def handler(sink: PulseSink, event: PulseEvent) -> None:
        payload = json.loads(event.payload or b"{}").get("payload")
        seq = payload.get("seq") if isinstance(payload, dict) else None
        count = 2 if event.claimed else 1
        out.write(f"{seq} {event.entry_id} {count} {time.time():.6f}\n")
        await sink.ack(event.entry_id)

    sink = PulseSink(
        args.url, args.stream, args.group, grace=args.grace, start="0", handler=handler
    )
    async with sink:
        out.write(f"consumer {sink.consumer} {os.getpid()}\n")
        out.write(f"{READY}\n")
        with anyio.open_signal_receiver(signal.SIGTERM) as signals:
            async for _ in signals:
                break
    report = {
        "consumers": sink.consumers,
        "deletions": [attrs.asdict(d) for d in sink.deletions],
        "sweeps": sink.sweeps,
        "handled": len(sink.events),
    }
    await anyio.Path(args.stats).write_text(json.dumps(report), encoding="utf-8")
    out.close()


# -- command line ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.workers")
    commands = parser.add_subparsers(dest="command", required=True)

    producer = commands.add_parser("producer")
    producer.add_argument("--url", required=True)
    producer.add_argument("--session", required=True)
    producer.add_argument("--producer", type=int, required=True)
    producer.add_argument("--count", type=int, required=True)
    producer.add_argument("--rate", type=float, default=1000.0)
    producer.add_argument("--concurrency", type=int, default=4)
    producer.add_argument("--out", required=True)

    consumer = commands.add_parser("consumer")
    consumer.add_argument("--url", required=True)
    consumer.add_argument("--stream", required=True)
    consumer.add_argument("--group", required=True, help="a group name, or - for a fan-out reader")
    consumer.add_argument("--out", required=True)
    consumer.add_argument("--stats", required=True)
    consumer.add_argument("--buffer", type=int, default=64)
    consumer.add_argument("--grace", type=float, default=1.0)
    consumer.add_argument("--claim", type=float, default=0.1)
    consumer.add_argument("--reconnect", type=float, default=60.0)
    consumer.add_argument("--max-deliveries", type=int, default=5)
    consumer.add_argument("--delay", type=float, default=0.0)

    sink = commands.add_parser("pulse")
    sink.add_argument("--url", required=True, help="a plain redis:// URL (no streamsink options)")
    sink.add_argument("--stream", required=True)
    sink.add_argument("--group", required=True)
    sink.add_argument("--out", required=True)
    sink.add_argument("--stats", required=True)
    sink.add_argument("--grace", type=float, default=1.0)

    args = parser.parse_args(argv)
    if args.command == "producer":
        anyio.run(produce, args)
    elif args.command == "pulse":
        anyio.run(pulse, args)
    else:
        anyio.run(consume, args)


if __name__ == "__main__":
    main(sys.argv[1:])
