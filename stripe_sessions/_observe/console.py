"""The CLI's ``--trace``: every span, one JSON object a line, on stderr (OpenTelemetry's SDK).

stderr, not stdout: stdout carries the command's results (a session, a batch's lines)
for the next program in a pipe, and spans mixed in would break it. One line a span
(the console exporter's JSON without its indentation) so ``grep`` and ``jq -c`` read
it. Needs ``opentelemetry-sdk`` (the ``otel`` extra installs only the API).
"""

from __future__ import annotations

from typing import IO, Any

__all__ = ["MISSING", "console_tracing"]

#: What ``--trace`` says when the SDK is not installed.
MISSING = "--trace needs OpenTelemetry's SDK: pip install 'stripe-sessions[otel]' opentelemetry-sdk"


def _line(span: Any) -> str:
    return str(span.to_json(indent=None)) + "\n"


def console_tracing(out: IO[str]) -> Any:
    """Write each finished span to ``out``: through the SDK provider already set, else one set now.

    Returns the provider (``shutdown()`` flushes it); raises ImportError with
    :data:`MISSING` when the SDK is not installed.
    """
    try:
        from opentelemetry import trace  # noqa: PLC0415 - only --trace needs it
        from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
            ConsoleSpanExporter,
            SimpleSpanProcessor,
        )
    except ImportError:
        raise ImportError(MISSING) from None
    processor = SimpleSpanProcessor(ConsoleSpanExporter(out=out, formatter=_line))
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        # One is set already (``opentelemetry-instrument stripe-sessions ... --trace``, or
        # ``OTEL_PYTHON_TRACER_PROVIDER``): the API refuses a second one with a log line
        # nobody sees, and --trace would write nothing. Its spans go to stderr too.
        current.add_span_processor(processor)
        return current
    provider = TracerProvider(resource=Resource.create({"service.name": "stripe-sessions-cli"}))
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    return provider
