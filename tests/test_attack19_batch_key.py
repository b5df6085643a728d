"""A batch key with a space at its start is refused before anything is sent (redteam19).

HTTP drops a header value's leading space, so item ``i`` of ``batch_key=" k"`` reached
Stripe as ``k-i`` while the SDK sent (and checked the echo against) ``" k-i"``: every
answer was refused as another request's, each item retried to the end of its budget,
and reported failed although Stripe had created its session under a key the result
did not name. A single create's ``idempotency_key`` already refused such a value.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING, cli_env

ITEMS = [{"customer": "cus_1", "components": PRICING}]


@pytest.mark.parametrize("batch_key", [" k", "k ", "  "])
@pytest.mark.parametrize("method", ["create_many", "stream_many"])
async def test_a_batch_key_with_an_edge_space_is_refused_unsent(
    fake: FakeStripe, client: ss.AsyncClient, batch_key: str, method: str
) -> None:
    with pytest.raises(ss.ValidationError) as info:
        if method == "create_many":
            await client.customer_sessions.create_many(ITEMS, batch_key=batch_key)
        else:
            client.customer_sessions.stream_many(ITEMS, batch_key=batch_key)
    assert info.value.param == "batch_key"
    assert fake.requests == [] and fake.created == 0


async def test_a_batch_key_with_an_inner_space_is_sent_as_given(
    fake: FakeStripe, client: ss.AsyncClient
) -> None:
    [result] = await client.customer_sessions.create_many(ITEMS, batch_key="k k")
    assert result.ok and result.attempts == 1
    assert [r.headers["Idempotency-Key"] for r in fake.requests] == ["k k-0"]


def test_the_cli_refuses_a_batch_key_with_a_leading_space(fake_stripe: FakeStripe) -> None:
    command = [sys.executable, "-m", "stripe_sessions", "batch", "-"]
    command += ["--component", "pricing_table", "--base-url", fake_stripe.url]
    command += ["--batch-key", " k", "--rate", "1000"]
    done = subprocess.run(
        command,
        check=False,
        input=b"cus_1\n",
        capture_output=True,
        env=cli_env(fake_stripe.api_key),
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert fake_stripe.requests == []
