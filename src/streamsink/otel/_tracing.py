"""OpenTelemetry traces: a producer span per send, a consumer span per delivery, one trace
across processes through a trace context carried in the envelope."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

import orjson
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, TracerProvider

from .._instrument import ProcessObservation, SendObservation
from ..backend import Entry

__all__ = ["TRACE_CONTEXT_KEY", "Tracing", "trace_context_of"]

TRACE_CONTEXT_KEY: Final = "trace_context"
"""The envelope key holding the W3C trace context (``traceparent``, ``tracestate``, baggage):
an object of strings, which Go's envelope decoder (pulse, loom-mcp) ignores like any unknown key."""

_SESSION = re.compile(r"session/[^:]+(:dlq)?")
_TRACE_KEY_BYTES: Final = b',"' + TRACE_CONTEXT_KEY.encode() + b'":'


def _template(stream_id: str) -> str | None:
    """The low-cardinality name of ``stream_id``'s kind (one stream per session would make a
    span name per session), or None when the stream id is its own name."""
    match = _SESSION.fullmatch(stream_id)
    if match is None:
        return None
    return "session/{session_id}" + (match[1] or "")


def trace_context_of(envelope: bytes | None) -> dict[str, str] | None:
    """The trace context an envelope carries (None when it carries none, or is not JSON)."""
    if envelope is None or TRACE_CONTEXT_KEY.encode() not in envelope:
        return None
    try:
        doc = orjson.loads(envelope)
    except orjson.JSONDecodeError:
        return None
    carrier = doc.get(TRACE_CONTEXT_KEY) if isinstance(doc, dict) else None
    if not isinstance(carrier, dict):
        return None
    return {k: v for k, v in carrier.items() if isinstance(k, str) and isinstance(v, str)}


def _with_context(payload: bytes, carrier: dict[str, str]) -> bytes:
    # The envelope is a JSON object that the sink encoded: the key goes in before its end.
    if not carrier or len(payload) < 2 or payload[:1] != b"{" or payload[-1:] != b"}":
        return payload
    separator = b"" if payload == b"{}" else _TRACE_KEY_BYTES[:1]
    return payload[:-1] + separator + _TRACE_KEY_BYTES[1:] + orjson.dumps(carrier) + b"}"


class _Send:
    __slots__ = ("_span", "entries")

    def __init__(self, span: Span, entries: Sequence[Entry]) -> None:
        self._span = span
        self.entries = entries

    def end(self, entry_ids: Sequence[str] | None, error: BaseException | None) -> None:
        span = self._span
        if entry_ids is not None and len(entry_ids) == 1:
            span.set_attribute("messaging.message.id", entry_ids[0])
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
            span.set_attribute("error.type", type(error).__qualname__)
        span.end()


class _Process:
    __slots__ = ("_span",)

    def __init__(self, span: Span) -> None:
        self._span = span

    def end(self, outcome: str, error: BaseException | None = None) -> None:
        span = self._span
        span.set_attribute("streamsink.outcome", outcome)
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
            span.set_attribute("error.type", type(error).__qualname__)
        elif outcome == "term":
            span.set_status(Status(StatusCode.ERROR, "dead-lettered by the consumer"))
        span.end()


class Tracing:
    """Traces for ``SinkOptions(instrument=...)`` and ``SubscriberOptions(instrument=...)``,
    following OpenTelemetry's messaging semantic conventions.

    - A sink makes a ``send`` span (kind PRODUCER) per ``send``/``send_many``, and writes its
      trace context into each envelope under :data:`TRACE_CONTEXT_KEY`.
    - A subscription makes a ``process`` span (kind CONSUMER) per delivery, from hand-out until
      the application is done with it (auto mode: it asks for the next event or leaves the
      loop; manual mode: it settles the delivery). Its parent is the producer's span found in
      the envelope, and it links to it, so a producer and its consumers in other processes are
      one trace. Its ``streamsink.outcome`` is ``ack``, ``nack``, ``term``, ``left`` (left
      pending: an exception, a cancel, a close) or ``done`` (a fan-out reader moved on).

    Span names use the stream's kind (``send session/{session_id}``), attributes the stream
    itself (``messaging.destination.name``). ``tracer_provider`` and ``propagator`` default to
    OpenTelemetry's global ones; ``system`` is ``messaging.system`` (e.g. ``"redis"``).
    """

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        propagator: TextMapPropagator | None = None,
        system: str = "streamsink",
    ) -> None:
        provider = tracer_provider or trace.get_tracer_provider()
        self._tracer = provider.get_tracer("streamsink")
        self._propagator = propagator
        self._system = system

    # -- the sink's side -------------------------------------------------------------------

    def start_send(self, entries: Sequence[Entry]) -> SendObservation:
        first = entries[0].stream_id
        streams = {entry.stream_id for entry in entries}
        destination = first if len(streams) == 1 else None
        attributes: dict[str, Any] = {
            "messaging.system": self._system,
            "messaging.operation.name": "send",
            "messaging.operation.type": "send",
        }
        if destination is not None:
            attributes["messaging.destination.name"] = destination
            template = _template(destination)
            if template is not None:
                attributes["messaging.destination.template"] = template
            name = f"send {template or destination}"
        else:
            name = "send"
        if len(entries) > 1:
            attributes["messaging.batch.message_count"] = len(entries)
        else:
            attributes["messaging.message.body.size"] = len(entries[0].payload)
        span = self._tracer.start_span(name, kind=SpanKind.PRODUCER, attributes=attributes)
        carrier: dict[str, str] = {}
        self._inject(carrier, trace.set_span_in_context(span))
        traced = [
            Entry(e.stream_id, e.name, _with_context(e.payload, carrier), e.topic) for e in entries
        ]
        return _Send(span, traced)

    # -- the subscription's side -----------------------------------------------------------

    def start_process(
        self,
        *,
        stream_id: str,
        group: str | None,
        consumer: str | None,
        entry_id: str,
        delivery_count: int | None,
        envelope: bytes | None,
    ) -> ProcessObservation:
        template = _template(stream_id)
        attributes: dict[str, Any] = {
            "messaging.system": self._system,
            "messaging.operation.name": "process",
            "messaging.operation.type": "process",
            "messaging.destination.name": stream_id,
            "messaging.message.id": entry_id,
        }
        if template is not None:
            attributes["messaging.destination.template"] = template
        if group is not None:
            attributes["messaging.consumer.group.name"] = group
        if consumer is not None:
            attributes["messaging.client.id"] = consumer
        if delivery_count is not None:
            attributes["streamsink.delivery_count"] = delivery_count
        carrier = trace_context_of(envelope)
        parent: Context | None = None
        links: list[Link] = []
        if carrier:
            parent = self._extract(carrier)
            producer = trace.get_current_span(parent).get_span_context()
            if producer.is_valid:
                links.append(Link(producer))
            else:
                parent = None
        span = self._tracer.start_span(
            f"process {template or stream_id}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            links=links,
        )
        return _Process(span)

    def _inject(self, carrier: dict[str, str], context: Context) -> None:
        if self._propagator is None:
            propagate.inject(carrier, context=context)
        else:
            self._propagator.inject(carrier, context=context)

    def _extract(self, carrier: dict[str, str]) -> Context:
        if self._propagator is None:
            return propagate.extract(carrier)
        return self._propagator.extract(carrier)
