"""Instructions per create when nothing observes, and when OpenTelemetry does (issue #21).

python benchmarks/observe.py                      # every variant (needs valgrind)
python benchmarks/observe.py absent api           # some of them

The method of ``instructions.py`` (callgrind, two runs of N1 and N2 creates, the
difference per create), its ``sdk`` harness (``customer_sessions.create``, gather,
32 at a time) or its ``create_many`` one, in an interpreter set up as the variant says:

- ``absent``: ``opentelemetry`` cannot be imported (as without the ``otel`` extra):
  today's cost, the yardstick;
- ``off``: the API installed, ``tracing=False``: no observer, the same path as ``absent``;
- ``api``: the API installed, no SDK configured (no provider set, the API never
  imported, by the application or by the client): at most 2% above ``absent``, the bound;
- ``off-imported``: the API imported but ``tracing=False``: what the API's modules on the
  heap cost a create (the garbage collector's full passes walk them), without a call;
- ``sdk``: the SDK's TracerProvider and MeterProvider with in-memory exporters
  (``SimpleSpanProcessor``, ``InMemoryMetricReader``): what tracing costs;
- ``sdk-batched``: the same with a ``BatchSpanProcessor`` (spans exported from its own
  thread, as a production set-up does; callgrind counts every thread);
- ``hooks``: no OpenTelemetry, one plain ``event_hooks`` callable per kind that does
  nothing: what events cost;
- ``batch-absent``, ``batch-api``, ``batch-sdk``: the same over ``create_many``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import instructions  # the harness: its _client runs N creates one way or another

VARIANTS = {
    "absent": "opentelemetry not importable (no otel extra): today's path",
    "off": "opentelemetry-api installed, tracing=False",
    "api": "opentelemetry-api installed, no SDK configured",
    "off-imported": "opentelemetry-api imported (its modules in the heap), tracing=False",
    "sdk": "OpenTelemetry SDK, in-memory span exporter and metric reader",
    "sdk-batched": "OpenTelemetry SDK, BatchSpanProcessor (as in production) to memory",
    "hooks": "no OpenTelemetry; a no-op hook for request, response and retry",
    "batch-absent": "create_many, opentelemetry not importable",
    "batch-api": "create_many, opentelemetry-api installed, no SDK configured",
    "batch-off-imported": "create_many, opentelemetry-api imported, tracing=False",
    "batch-sdk": "create_many, OpenTelemetry SDK with in-memory exporters",
}


def _set_up(variant: str) -> dict[str, Any]:
    """Make the interpreter what ``variant`` says; return the client's extra settings."""
    kind = variant.removeprefix("batch-")
    if kind in ("absent", "hooks"):
        sys.modules["opentelemetry"] = None  # type: ignore[assignment] - import fails
    if kind == "off":
        return {"tracing": False}
    if kind == "off-imported":  # the API's weight on the heap (GC), without its calls
        from opentelemetry import context, metrics, trace  # noqa: F401

        return {"tracing": False}
    if kind == "hooks":
        return {"event_hooks": {"request": id, "response": id, "retry": id}}
    if kind in ("sdk", "sdk-batched"):
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        provider = TracerProvider()
        processor = BatchSpanProcessor if kind == "sdk-batched" else SimpleSpanProcessor
        provider.add_span_processor(processor(InMemorySpanExporter()))
        trace.set_tracer_provider(provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    return {}


def _run(variant: str, url: str, n: int) -> None:
    settings = _set_up(variant)
    import stripe_sessions as ss

    original = ss.AsyncClient

    def client(**kwargs: Any) -> Any:  # the harness's client, with the variant's settings
        return original(**kwargs, **settings)

    ss.AsyncClient = client  # type: ignore[assignment, misc]
    harness = "create_many" if variant.startswith("batch-") else "sdk"
    asyncio.run(instructions._client(harness, url, n))


def main() -> None:
    if sys.argv[1:2] == ["--run"]:
        _run(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    instructions.table(__file__, VARIANTS, sys.argv[1:] or list(VARIANTS), digits=1)


if __name__ == "__main__":
    main()
