"""OpenTelemetry for streamsink (the ``otel`` extra: ``opentelemetry-api`` only).

- :func:`instrument_metrics`: the counters of :meth:`RuntimeStreams.statistics` as metrics
  (and so Prometheus, through an OpenTelemetry exporter).
"""

from __future__ import annotations

from ._metrics import MetricsRegistration, instrument_metrics

__all__ = ["MetricsRegistration", "instrument_metrics"]
