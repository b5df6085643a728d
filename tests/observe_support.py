"""For tests/test_observe_*.py: OpenTelemetry's SDK set up with in-memory exporters, then undone.

The global tracer and meter providers can be set once per process: :func:`installed`
sets them for one test and puts the API back as it was (no provider: every client
built after it traces nothing), so the rest of the suite runs untraced, as it did.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import _internal as metrics_internal
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util import _once

__all__ = ["Otel", "installed", "tree"]


class Otel:
    """What the SDK saw: finished spans and the duration histogram's points."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def spans(self) -> list[ReadableSpan]:
        """The finished spans, in the order they ended."""
        return list(self.exporter.get_finished_spans())

    def points(self) -> list[Any]:
        """Every data point of ``http.client.request.duration`` (histograms)."""
        data = self.reader.get_metrics_data()
        found = []
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == "http.client.request.duration":
                        assert metric.unit == "s"
                        found.extend(metric.data.data_points)
        return found


def _reset() -> None:
    # What OpenTelemetry's own test utilities do (opentelemetry-test-utils' globals_test).
    trace._TRACER_PROVIDER_SET_ONCE = _once.Once()
    trace._TRACER_PROVIDER = None
    metrics_internal._METER_PROVIDER_SET_ONCE = _once.Once()
    metrics_internal._METER_PROVIDER = None
    metrics_internal._PROXY_METER_PROVIDER = metrics_internal._ProxyMeterProvider()


@contextmanager
def installed() -> Iterator[Otel]:
    """The SDK as the global providers, with in-memory exporters, for the ``with`` block."""
    otel = Otel()
    _reset()
    trace.set_tracer_provider(otel.tracer_provider)
    metrics.set_meter_provider(otel.meter_provider)
    try:
        yield otel
    finally:
        otel.tracer_provider.shutdown()
        otel.meter_provider.shutdown()
        _reset()


def tree(spans: list[ReadableSpan]) -> str:
    """The spans as an indented tree (children in start order), with their key attributes."""
    by_parent: dict[int | None, list[ReadableSpan]] = {}
    ids = {s.context.span_id for s in spans}
    for s in spans:
        parent = s.parent.span_id if s.parent is not None else None
        by_parent.setdefault(parent if parent in ids else None, []).append(s)
    shown = (
        "http.response.status_code",
        "error.type",
        "http.request.resend_count",
        "stripe.attempts",
        "stripe.batch.index",
        "stripe.batch.created",
        "stripe.batch.replayed",
        "stripe.batch.failed",
        "stripe.batch.retried",
    )
    lines: list[str] = []

    def walk(parent: int | None, depth: int) -> None:
        for s in sorted(by_parent.get(parent, []), key=lambda s: s.start_time or 0):
            attributes = s.attributes or {}
            said = " ".join(f"{k}={attributes[k]}" for k in shown if k in attributes)
            events = "".join(
                f" [event {e.name} attempt={(e.attributes or {}).get('stripe.attempt')}]"
                for e in s.events
            )
            lines.append(f"{'  ' * depth}{s.name} ({s.kind.name}) {said}{events}".rstrip())
            walk(s.context.span_id, depth + 1)

    walk(None, 0)
    return "\n".join(lines)
