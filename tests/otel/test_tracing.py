"""streamsink.otel.Tracing with the SDK's in-memory exporter: producer and consumer spans, the
trace context in the envelope (which Go's decoder and ours ignore), one trace across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import streamsink
from streamsink import SinkOptions, StartPosition, StreamEvent, SubscriberOptions, decode_envelope
from streamsink.otel import TRACE_CONTEXT_KEY, Tracing, trace_context_of
from streamsink.otel._tracing import _with_context

pytestmark = pytest.mark.anyio

DATA = Path(__file__).resolve().parents[1] / "data"
OLDEST = StartPosition.oldest()


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracing(exporter: InMemorySpanExporter) -> Tracing:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(tracer_provider=provider, system="memory")


def _connect(tracing: Tracing, **subscriber: Any) -> Any:
    return streamsink.connect(
        f"memory://otel-{uuid.uuid4().hex}",
        sink_options=SinkOptions(instrument=tracing),
        subscriber_options=SubscriberOptions(instrument=tracing, **subscriber),
    )


async def test_consumer_span_is_a_child_of_the_producer_span(
    tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    async with _connect(tracing, group="persist") as streams:
        published = await streams.sink.send(StreamEvent("tool_end", "run-1", "s-1", payload=1))
        async with streams.new_subscriber().subscribe("session/s-1", start=OLDEST) as events:
            event = await anext(aiter(events))
            assert event.payload == 1  # the envelope's extra key changes nothing decoded
    send, process = exporter.get_finished_spans()
    assert (send.name, send.kind) == ("send session/{session_id}", SpanKind.PRODUCER)
    assert (process.name, process.kind) == ("process session/{session_id}", SpanKind.CONSUMER)
    assert process.context.trace_id == send.context.trace_id
    assert process.parent is not None
    assert process.parent.span_id == send.context.span_id
    assert [link.context.span_id for link in process.links] == [send.context.span_id]
    assert send.attributes["messaging.destination.name"] == "session/s-1"
    assert send.attributes["messaging.message.id"] == published.entry_id
    assert send.attributes["messaging.system"] == "memory"
    assert process.attributes["messaging.consumer.group.name"] == "persist"
    assert process.attributes["messaging.message.id"] == published.entry_id
    assert process.attributes["streamsink.outcome"] == "ack"  # left the loop normally


async def test_manual_outcomes_and_an_exception(
    tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    async with _connect(tracing, group="g", ack_grace_period=0.2) as streams:
        await streams.sink.send_many(StreamEvent(t, "run-1", "s-1") for t in ("a", "b", "c"))
        subscriber = streams.new_subscriber()
        async with subscriber.subscribe_manual("session/s-1", start=OLDEST) as deliveries:
            items = aiter(deliveries)
            await (await anext(items)).ack()
            await (await anext(items)).term("bad input")
            third = await anext(items)
            assert third.delivery_count == 1

        async def failing_handler() -> None:
            async with subscriber.subscribe("session/s-1", start=OLDEST) as events:
                async for _ in events:
                    raise RuntimeError("handler failed")

        with pytest.raises(RuntimeError):
            await failing_handler()
    spans = exporter.get_finished_spans()
    (send,) = [s for s in spans if s.kind is SpanKind.PRODUCER and s.name != "send"]
    assert send.attributes["messaging.batch.message_count"] == 3
    outcomes = [
        (s.attributes["messaging.message.id"], s.attributes["streamsink.outcome"])
        for s in spans
        if s.kind is SpanKind.CONSUMER
        and s.attributes["messaging.destination.name"] == "session/s-1"
    ]
    assert [o for _, o in outcomes] == ["ack", "term", "left", "left"]
    termed = [s for s in spans if s.attributes.get("streamsink.outcome") == "term"]
    assert termed[0].status.status_code is StatusCode.ERROR
    failed = [s for s in spans if s.events and s.events[0].name == "exception"]
    assert failed
    assert failed[-1].status.status_code is StatusCode.ERROR
    assert all(s.context.trace_id == send.context.trace_id for s in spans if s.parent)


class _Refusing:
    """A backend whose appends all fail (a sink calls nothing else)."""

    async def append(self, entries: Any) -> list[str]:
        raise streamsink.PublishError("refused")


async def test_failed_send_records_the_error(
    tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    sink = streamsink.StreamSink(_Refusing(), SinkOptions(instrument=tracing))  # type: ignore[arg-type]
    with pytest.raises(streamsink.PublishError):
        await sink.send(StreamEvent("usage", "run-1", "s-1"))
    with pytest.raises(streamsink.PublishError):
        await sink.send_many([StreamEvent("usage", "run-1", "s-1")] * 2)
    assert sink.statistics() == streamsink.SinkStatistics(sent=0, failed=2)
    spans = exporter.get_finished_spans()
    assert [s.status.status_code for s in spans] == [StatusCode.ERROR] * 2
    assert {s.attributes["error.type"] for s in spans} == {"PublishError"}


async def test_fan_out_readers_and_untraced_envelopes(
    tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    async with _connect(tracing) as streams:
        plain = streamsink.StreamSink(streams.backend)  # a producer without tracing
        await plain.send(StreamEvent("usage", "run-1", "s-1"))
        reader = streams.new_subscriber(group=None)
        async with reader.subscribe("session/s-1", start=OLDEST) as events:
            await anext(aiter(events))
    (process,) = exporter.get_finished_spans()
    assert process.parent is None
    assert not process.links
    assert process.attributes["streamsink.outcome"] == "done"
    assert "messaging.consumer.group.name" not in process.attributes


async def test_golden_vectors_decode_the_same_with_a_trace_context() -> None:
    """Every golden envelope, as given (decode vectors) and as our encoder writes it (encode
    vectors), decodes to the same event with a trace context added."""
    vectors = json.loads((DATA / "envelopes.json").read_text())
    carrier = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    envelopes = [v["input"].encode() for v in vectors["decode"]]
    envelopes += [
        json.dumps(v["expected_json"]).encode()
        if not isinstance(v["expected_json"], str)
        else v["expected_json"].encode()
        for v in vectors["encode"]
    ]
    checked = 0
    for raw in envelopes:
        try:
            plain = decode_envelope(raw)
        except streamsink.DecodeError:
            continue
        traced = _with_context(raw, carrier)
        assert traced != raw
        assert trace_context_of(traced) == carrier
        again = decode_envelope(traced)
        for field in ("type", "run_id", "session_id", "event_key", "payload", "server_data"):
            assert getattr(again, field) == getattr(plain, field), (raw, field)
        assert again.timestamp == plain.timestamp
        checked += 1
    assert checked == len(envelopes)


async def test_go_decodes_an_envelope_with_a_trace_context() -> None:
    """The committed Go vectors (regenerated by tests/core/test_go_vectors.py) hold one."""
    results = json.loads((DATA / "go-decoded-envelopes.json").read_text())["results"]
    (found,) = [r for r in results if TRACE_CONTEXT_KEY in r.get("input_text", "")]
    assert found.get("error") is None
    assert found["has_payload"]


_PROCESS = textwrap.dedent(
    """
    import json, sys, anyio, streamsink
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from streamsink import SinkOptions, StartPosition, StreamEvent, SubscriberOptions
    from streamsink.otel import Tracing

    role, url, stream = sys.argv[1:4]
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = Tracing(tracer_provider=provider, system="redis")

    async def main():
        options = dict(sink_options=SinkOptions(instrument=tracing),
                       subscriber_options=SubscriberOptions(instrument=tracing, group="g"))
        async with streamsink.connect(url, **options) as streams:
            if role == "produce":
                await streams.sink.send(StreamEvent("tool_end", "run-1", stream, payload=1))
            else:
                sub = streams.new_subscriber()
                async with sub.subscribe("session/" + stream, start=StartPosition.oldest()) as events:
                    with anyio.fail_after(20):
                        await anext(aiter(events))

    anyio.run(main)
    print(json.dumps([
        {"name": s.name, "trace": s.context.trace_id, "span": s.context.span_id,
         "parent": s.parent.span_id if s.parent else None}
        for s in exporter.get_finished_spans()
    ]))
    """
)


def _run(role: str, url: str, stream: str, tmp_path: Path) -> list[dict[str, Any]]:
    script = tmp_path / "traced.py"
    script.write_text(_PROCESS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMSINK_")}
    result = subprocess.run(
        [sys.executable, str(script), role, url, stream],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    spans: list[dict[str, Any]] = json.loads(result.stdout.splitlines()[-1])
    return spans


async def test_one_trace_across_a_producer_and_a_consumer_process(
    redis_url: str, tmp_path: Path
) -> None:
    stream = f"otel-{uuid.uuid4().hex}"
    (sent,) = await anyio.to_thread.run_sync(_run, "produce", redis_url, stream, tmp_path)
    (processed,) = await anyio.to_thread.run_sync(_run, "consume", redis_url, stream, tmp_path)
    assert sent["name"] == processed["name"].replace("process", "send")
    assert processed["trace"] == sent["trace"]
    assert processed["parent"] == sent["span"]
