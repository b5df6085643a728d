"""OpenTelemetry loaded late: never imported for a client nobody traces, and a client
built before the application configures OpenTelemetry is traced all the same."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from stripe_sessions.testing import FakeStripe

# Run in a fresh interpreter: this one has imported OpenTelemetry for other tests.
SCRIPT = """
import sys
import stripe_sessions as ss

url, key = sys.argv[1], sys.argv[2]
components = {"pricing_table": {"enabled": True}}
client = ss.Client(api_key=key, base_url=url)
client.customer_sessions.create(customer="cus_1", components=components)
list(client.customer_sessions.create_many([{"customer": "cus_2", "components": components}]))
print("before:", sorted(m for m in sys.modules if m.startswith("opentelemetry")))

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
client.customer_sessions.create(customer="cus_3", components=components)
list(client.customer_sessions.create_many([{"customer": "cus_4", "components": components}]))
client.close()
print("after:", [span.name for span in exporter.get_finished_spans()])
"""


def test_otel_is_imported_only_by_the_application_and_traced_once_it_is(
    fake_stripe: FakeStripe,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "OTEL_"))}
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), fake_stripe.url, fake_stripe.api_key],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    assert out == [
        "before: []",
        "after: ['POST /v1/customer_sessions', 'customer_sessions.create',"
        " 'POST /v1/customer_sessions', 'customer_sessions.create', 'customer_sessions.batch']",
    ]


NAMED = """
import sys
import stripe_sessions as ss

url, key = sys.argv[1], sys.argv[2]
client = ss.Client(api_key=key, base_url=url)
print("loaded:", "opentelemetry.trace" in sys.modules)

from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))
client.customer_sessions.create(customer="cus_1", components={"pricing_table": {"enabled": True}})
client.close()
print("spans:", len(exporter.get_finished_spans()))
"""


def test_a_provider_named_by_the_environment_is_loaded_with_the_client(
    fake_stripe: FakeStripe,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "OTEL_"))}
    env["OTEL_PYTHON_TRACER_PROVIDER"] = "sdk_tracer_provider"
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(NAMED), fake_stripe.url, fake_stripe.api_key],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    assert out == ["loaded: True", "spans: 2"]
