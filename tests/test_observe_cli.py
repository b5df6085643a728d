"""``--trace``: the CLI's spans on stderr, one JSON object a line; stdout keeps only results."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from stripe_sessions.testing import FakeStripe


def test_batch_with_trace_writes_its_spans_to_stderr(fake_stripe: FakeStripe) -> None:
    fake_stripe.fail_next(500)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "OTEL_"))}
    out = subprocess.run(
        [sys.executable, "-m", "stripe_sessions", "batch", "--trace", "--base-url",
         fake_stripe.url, "--api-key", fake_stripe.api_key, "--rate", "100"],
        input="cus_a\ncus_b\ncus_c\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    results = [json.loads(line) for line in out.stdout.splitlines()]
    assert sorted(r["customer"] for r in results) == ["cus_a", "cus_b", "cus_c"]
    spans = [json.loads(line) for line in out.stderr.splitlines() if line.startswith("{")]
    names = sorted(s["name"] for s in spans)
    assert (
        names
        == ["POST /v1/customer_sessions"] * 4
        + ["customer_sessions.batch"]
        + ["customer_sessions.create"] * 3
    )
    (batch,) = (s for s in spans if s["name"] == "customer_sessions.batch")
    assert batch["attributes"]["stripe.batch.created"] == 3
    assert batch["attributes"]["stripe.batch.retried"] == 1
    assert fake_stripe.api_key not in out.stderr
    assert not any(r["client_secret"] in out.stderr for r in results)
