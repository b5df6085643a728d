"""Red team (#21): ``--trace`` writes spans even when a tracer provider is already set.

``opentelemetry-instrument stripe-sessions batch --trace`` sets the global provider
before the CLI runs; the API refuses a second one (a log line), and ``--trace`` wrote
nothing.
"""

from __future__ import annotations

import io
import json

from opentelemetry import trace

from stripe_sessions._observe.console import console_tracing
from tests.observe_support import installed


def test_trace_writes_spans_when_a_provider_is_already_set() -> None:
    out = io.StringIO()
    with installed() as otel:
        console_tracing(out)
        with trace.get_tracer("t").start_as_current_span("work"):
            pass
        assert [s.name for s in otel.spans()] == ["work"]  # the existing exporter still gets it
    (line,) = out.getvalue().splitlines()
    assert json.loads(line)["name"] == "work"
