"""event_hooks: what attempts and retry decisions tell, hooks that raise, where sync ones run."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import stripe_sessions as ss
from stripe_sessions._observe.events import RequestEvent, ResponseEvent, RetryEvent
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING


def _recorder() -> tuple[list[Any], dict[str, Any]]:
    seen: list[Any] = []

    async def on_response(event: ResponseEvent) -> None:  # an async hook, awaited
        seen.append(event)

    return seen, {"request": seen.append, "response": [on_response], "retry": seen.append}


async def test_a_retried_create_tells_each_attempt_and_the_retry(fake: FakeStripe) -> None:
    seen, hooks = _recorder()
    fake.fail_next(500)
    async with ss.AsyncClient(
        api_key=fake.api_key, base_url=fake.url, event_hooks=hooks, stripe_account="acct_1"
    ) as client:
        session = await client.customer_sessions.create(customer="cus_1", components=PRICING)
    kinds = [type(e) for e in seen]
    assert kinds == [RequestEvent, ResponseEvent, RetryEvent, RequestEvent, ResponseEvent]
    first, failed, retry, second, ok = seen
    assert {e.idempotency_key for e in seen} == {fake.requests[0].idempotency_key}
    assert [first.attempt, failed.attempt, retry.attempt, second.attempt, ok.attempt] == [
        1, 1, 1, 2, 2
    ]  # fmt: skip
    for e in seen:
        assert (e.method, e.path, e.stripe_account, e.batch) == (
            "POST", "/v1/customer_sessions", "acct_1", False
        )  # fmt: skip
        assert e.api_version == client.config.stripe_version
    assert (failed.status, failed.error_type, failed.error_code) == (500, "APIError", None)
    assert failed.request_id is not None and failed.elapsed > 0
    assert (retry.status, retry.error_type, retry.request_id) == (
        500,
        "APIError",
        failed.request_id,
    )
    assert 0 < retry.wait <= client.config.retry.max_wait
    assert (ok.status, ok.error_type, ok.idempotent_replayed) == (200, None, False)
    assert ok.request_id == session.request_id


async def test_a_rate_limit_429_tells_its_reason_and_a_replay_says_so(fake: FakeStripe) -> None:
    seen, hooks = _recorder()
    fake.fail_next(429, reason="endpoint-concurrency")
    async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url, event_hooks=hooks) as c:
        with pytest.raises(ss.RateLimitError):
            await c.customer_sessions.create(customer="cus_1", components=PRICING)
        await c.customer_sessions.create(customer="cus_1", components=PRICING, idempotency_key="k1")
        await c.customer_sessions.create(customer="cus_1", components=PRICING, idempotency_key="k1")
    ends = [e for e in seen if isinstance(e, ResponseEvent)]
    assert not any(isinstance(e, RetryEvent) for e in seen)  # a single create's 429 is raised
    assert (ends[0].status, ends[0].error_code, ends[0].rate_limit_reason) == (
        429, "rate_limit", "endpoint-concurrency"
    )  # fmt: skip
    assert [e.idempotent_replayed for e in ends[1:]] == [False, True]


async def test_a_hook_that_raises_is_logged_and_the_call_goes_on(
    fake: FakeStripe, caplog: pytest.LogCaptureFixture
) -> None:
    def sync_boom(event: Any) -> None:
        raise RuntimeError(f"boom with {fake.api_key}")

    async def async_boom(event: Any) -> None:
        raise ValueError("async boom")

    calls: list[str] = []
    hooks = {
        "request": [sync_boom, lambda e: calls.append("after")],
        "response": async_boom,
        "retry": sync_boom,
    }
    fake.fail_next(503)
    async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url, event_hooks=hooks) as c:
        with caplog.at_level(logging.WARNING, logger="stripe_sessions"):
            session = await c.customer_sessions.create(customer="cus_1", components=PRICING)
    assert session.client_secret and calls == ["after", "after"]  # the next hook still ran
    warned = [r.getMessage() for r in caplog.records if "hook" in r.getMessage()]
    assert len(warned) == 5  # 2 requests, 2 responses, 1 retry
    assert any("sync_boom raised RuntimeError" in m for m in warned)
    assert any("async_boom raised ValueError: async boom" in m for m in warned)
    assert not any(fake.api_key in m for m in warned)


@pytest.mark.parametrize(
    ("hooks", "message"),
    [
        ({"request": print, "sent": print}, "'sent'"),
        ({"request": "print"}, "callable"),
        ({"response": [print, 3]}, "callable"),
        ([print], "mapping"),
    ],
)
def test_event_hooks_are_checked(hooks: Any, message: str) -> None:
    with pytest.raises(ss.ValidationError, match=message) as caught:
        ss.AsyncClient(api_key="sk_test_123456789012", event_hooks=hooks)
    assert caught.value.param is not None and caught.value.param.startswith("event_hooks")


def test_nothing_observes_without_hooks_or_tracing() -> None:
    # The request path's one check: no observer at all (tracing off, no hooks).
    plain = ss.AsyncClient(api_key="sk_test_123456789012", tracing=False)
    assert plain._transport.observer is None
    hooked = ss.AsyncClient(api_key="sk_test_123456789012", tracing=False, event_hooks={})
    assert hooked._transport.observer is None
    assert ss.AsyncClient(api_key="sk_test_123456789012", event_hooks={"retry": print}).config
    with pytest.raises(ss.ValidationError, match="tracing"):
        ss.AsyncClient(api_key="sk_test_123456789012", tracing="no")  # type: ignore[arg-type]


def test_sync_hooks_run_on_the_client_loop_thread(fake_stripe: FakeStripe) -> None:
    threads: list[threading.Thread] = []
    seen: list[Any] = []

    def hook(event: Any) -> None:
        threads.append(threading.current_thread())
        seen.append(event)

    hooks = {"request": hook, "response": hook}
    fake_stripe.fail_next(500)
    with ss.Client(api_key=fake_stripe.api_key, base_url=fake_stripe.url, event_hooks=hooks) as c:
        with ThreadPoolExecutor(4) as pool:
            done = list(
                pool.map(
                    lambda _: c.customer_sessions.create(customer="cus_1", components=PRICING),
                    range(8),
                )
            )
        results = c.customer_sessions.create_many([{"customer": "cus_1", "components": PRICING}])
    assert len(done) == 8 and results[0].ok
    assert len(seen) == 2 * 10  # 9 calls, one retried once
    assert len(set(threads)) == 1  # all on one thread: the client's loop thread
    (loop_thread,) = set(threads)
    assert loop_thread is not threading.main_thread() and loop_thread.daemon
    assert {e.batch for e in seen} == {False, True}
