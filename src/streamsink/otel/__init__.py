"""OpenTelemetry for streamsink (the ``otel`` extra: ``opentelemetry-api`` only).

- :class:`Tracing`: a producer span per send and a consumer span per delivery, linked across
  processes by a trace context carried in the envelope (``SinkOptions(instrument=Tracing())``,
  ``SubscriberOptions(instrument=Tracing())``);
- :func:`instrument_metrics`: the counters of :meth:`RuntimeStreams.statistics` as metrics
  (and so Prometheus, through an OpenTelemetry exporter).
"""

from __future__ import annotations

from ._metrics import MetricsRegistration, instrument_metrics
from ._tracing import TRACE_CONTEXT_KEY, Tracing, trace_context_of

__all__ = [
    "TRACE_CONTEXT_KEY",
    "MetricsRegistration",
    "Tracing",
    "instrument_metrics",
    "trace_context_of",
]
