"""An answer is the answer to its request: never another customer's session.

A raw-TCP server writes what Stripe never would: an extra response on an idle
keep-alive connection, an answer for another idempotency key, another customer's
session. Each must be refused (or never read), the poisoned connection closed, and the
call retried on a fresh connection with the same key.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

import stripe_sessions as ss
from tests.helpers import PRICING
from tests.hostile import session_body
from tests.hostile_tcp import Conn, Request, ScriptedServer, form_of, response

KEY = "sk_test_integrity0123456789abc"
VICTIM_SECRET = "cuss_secret_VICTIMvictimVICTIM0123456789"


def secret_of(customer: str) -> str:
    return f"cuss_secret_{customer}_0123456789"


def answer(request: Request, **changes: Any) -> bytes:
    """Stripe's answer to ``request``: its customer's session, its key echoed."""
    form = form_of(request)
    customer = form.get("customer")
    body = session_body(customer=customer, client_secret=secret_of(str(customer)))
    if "customer_account" in form:
        body["customer_account"] = form["customer_account"]
    if form.get("expand[0]") == "customer":
        body["customer"] = {"id": customer, "object": "customer"}
    body.update(changes.pop("body", {}))
    headers = {
        "Request-Id": f"req_{customer}",
        "Idempotency-Key": request.header("Idempotency-Key"),
    }
    headers.update(changes.pop("headers", {}))
    return response(200, json.dumps(body), {k: v for k, v in headers.items() if v is not None})


def victim(key: str | None = "key_of_someone_else", **body: Any) -> bytes:
    """cus_VICTIM's session, as answered to someone else's request."""
    headers = {"Request-Id": "req_victim"}
    if key is not None:
        headers["Idempotency-Key"] = key
    content = session_body(customer="cus_VICTIM", client_secret=VICTIM_SECRET)
    content.update(body)
    return response(200, json.dumps(content), headers)


def assert_no_victim(*things: Any) -> None:
    for thing in things:
        assert VICTIM_SECRET not in repr(thing) + str(thing)


async def create(client: ss.AsyncClient, customer: str, **kwargs: Any) -> ss.CustomerSession:
    return await client.customer_sessions.create(customer=customer, components=PRICING, **kwargs)


async def pooled_has_unread(client: ss.AsyncClient) -> None:
    """Wait (bounded) until the client's idle pooled connection has parsed the extra answer.

    Test-only peek into aiohttp's pool, to make sure the extra bytes arrived while the
    connection was idle (and not after the next request was sent).
    """
    session = client._session.get()
    connector = session.connector
    assert connector is not None
    for _ in range(500):
        protos = [p for conns in connector._conns.values() for p, _ in conns]  # type: ignore[attr-defined]
        if protos and all(p.should_close for p in protos):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the extra answer never reached the pooled connection")


class ExtraAfter:
    """A script: answer every request; once ``idle`` is set after ``first``'s answer
    (the client has its answer and pooled the connection), also write ``extra``."""

    def __init__(self, first: str, extra: Callable[[Request], bytes]) -> None:
        self.first = first
        self.extra = extra
        self.idle = asyncio.Event()

    async def __call__(self, conn: Conn) -> None:
        while (request := await conn.read_request()) is not None:
            conn.write(answer(request))
            if form_of(request).get("customer") == self.first:
                await conn.drain()
                await self.idle.wait()
                conn.write(self.extra(request))


async def test_an_extra_response_on_an_idle_connection_is_never_an_answer() -> None:
    script = ExtraAfter("cus_A", lambda r: victim())
    async with ScriptedServer(script) as server:
        async with ss.AsyncClient(api_key=KEY, base_url=server.url) as client:
            first = await create(client, "cus_A")
            script.idle.set()
            await pooled_has_unread(client)
            # No retry: the pooled connection holding the extra answer is never used.
            second = await create(client, "cus_B", max_retries=0)
    assert first.customer == "cus_A"
    assert second.customer == "cus_B", "another customer's session was returned"
    assert second.client_secret == secret_of("cus_B")
    assert_no_victim(second)
    # The poisoned connection was not reused: B went out once, on a new connection.
    assert [(form_of(r)["customer"], r.connection) for r in server.requests] == [
        ("cus_A", 0),
        ("cus_B", 1),
    ]


async def test_an_extra_response_with_no_key_is_never_an_answer_either() -> None:
    script = ExtraAfter("cus_A", lambda r: victim(key=None))
    async with ScriptedServer(script) as server:
        async with ss.AsyncClient(api_key=KEY, base_url=server.url) as client:
            await create(client, "cus_A")
            script.idle.set()
            await pooled_has_unread(client)
            second = await create(client, "cus_B", max_retries=0)
    assert second.customer == "cus_B" and second.client_secret == secret_of("cus_B")


async def test_extra_responses_never_poison_later_calls() -> None:
    # Every answer is followed by a stray one: each call must still get its own.
    async def script(conn: Conn) -> None:
        while (request := await conn.read_request()) is not None:
            conn.write(answer(request) + victim())

    async with ScriptedServer(script) as server:
        async with ss.AsyncClient(api_key=KEY, base_url=server.url) as client:
            for i in range(6):
                got = await create(client, f"cus_{i}")
                assert got.customer == f"cus_{i}"
                assert got.client_secret == secret_of(f"cus_{i}")


def misanswer(wrong: Callable[[Request], bytes]) -> Callable[[Conn], Awaitable[None]]:
    """A script that answers each request's first attempt with ``wrong`` (then rightly)."""
    seen: set[str | None] = set()

    async def script(conn: Conn) -> None:
        while (request := await conn.read_request()) is not None:
            key = request.header("Idempotency-Key")
            if key in seen:
                conn.write(answer(request))
            else:
                seen.add(key)
                conn.write(wrong(request))

    return script


WRONG_ANSWERS: dict[str, Callable[[Request], bytes]] = {
    "another key, another customer": lambda r: victim(),
    "another key, same customer": lambda r: answer(r, headers={"Idempotency-Key": "nope"}),
    "no key, another customer": lambda r: victim(key=None),
    "own key, another customer": lambda r: victim(key=r.header("Idempotency-Key")),
}


@pytest.mark.parametrize("wrong", WRONG_ANSWERS.values(), ids=WRONG_ANSWERS.keys())
async def test_an_answer_to_another_request_is_refused_and_retried(
    wrong: Callable[[Request], bytes],
) -> None:
    async with ScriptedServer(misanswer(wrong)) as server:
        async with ss.AsyncClient(api_key=KEY, base_url=server.url) as client:
            got = await create(client, "cus_B")
    assert got.customer == "cus_B" and got.client_secret == secret_of("cus_B")
    keys = [r.header("Idempotency-Key") for r in server.requests]
    assert len(keys) == 2 and keys[0] == keys[1], "retried with the same key"
    # The connection that carried the wrong answer was closed, not reused.
    assert [r.connection for r in server.requests] == [0, 1]


@pytest.mark.parametrize("wrong", WRONG_ANSWERS.values(), ids=WRONG_ANSWERS.keys())
async def test_the_refusal_names_both_values_and_never_the_secret(
    wrong: Callable[[Request], bytes],
) -> None:
    async def script(conn: Conn) -> None:
        while (request := await conn.read_request()) is not None:
            conn.write(wrong(request))

    async with ScriptedServer(script) as server:
        async with ss.AsyncClient(api_key=KEY, base_url=server.url, max_retries=1) as client:
            with pytest.raises(ss.APIError) as info:
                await create(client, "cus_B", idempotency_key="key_B")
    error = info.value
    assert type(error) is ss.APIError and error.http_status == 200
    assert error.idempotency_key == "key_B"
    text = str(error)
    assert "answer to another request" in text
    if "cus_VICTIM" in wrong(server.requests[0]).decode():
        assert "'cus_B'" in text and "'cus_VICTIM'" in text
    else:
        assert "'key_B'" in text and "'nope'" in text
    assert_no_victim(error, error.body, error.json_body, dict(error.headers))
    assert secret_of("cus_B") not in text + repr(error) + str(error.body)
    assert len(server.requests) == 2 and server.accepted == 2


async def test_an_expanded_customer_must_be_the_one_asked_for() -> None:
    wrong = lambda r: answer(r, body={"customer": {"id": "cus_VICTIM", "object": "customer"}})  # noqa: E731
    async with ScriptedServer(misanswer(wrong)) as server:
        async with ss.AsyncClient(api_key=KEY, base_url=server.url) as client:
            got = await create(client, "cus_B", expand=["customer"])
    assert isinstance(got.customer, ss.Customer) and got.customer.id == "cus_B"
    assert len(server.requests) == 2


async def test_a_customer_account_must_be_the_one_asked_for() -> None:
    wrong = lambda r: answer(r, body={"customer_account": "acct_VICTIM"})  # noqa: E731
    async with ScriptedServer(misanswer(wrong)) as server:
        async with ss.AsyncClient(api_key=KEY, base_url=server.url) as client:
            got = await client.customer_sessions.create(
                customer_account="acct_B", components=PRICING
            )
    assert got.customer_account == "acct_B"
    assert len(server.requests) == 2


async def test_batch_items_refuse_wrong_answers_and_retry_with_their_key() -> None:
    async with ScriptedServer(misanswer(lambda r: victim())) as server:
        async with ss.AsyncClient(api_key=KEY, base_url=server.url) as client:
            results = await client.customer_sessions.create_many(
                [{"customer": f"cus_{i}", "components": PRICING} for i in range(8)],
                batch_key="integrity",
                rate_limit=None,
            )
    assert [r.session.customer if r.session else r.error for r in results] == [
        f"cus_{i}" for i in range(8)
    ]
    assert all(r.attempts == 2 for r in results)
    for r in results:
        sent = [
            q.header("Idempotency-Key")
            for q in server.requests
            if form_of(q)["customer"] == f"cus_{r.index}"
        ]
        assert sent == [f"integrity-{r.index}"] * 2
        assert_no_victim(r)


async def test_a_lent_session_is_protected_too() -> None:
    # The caller's own connector has no idle check: the echo and customer checks catch it.
    script = ExtraAfter("cus_A", lambda r: victim())
    async with ScriptedServer(script) as server:
        async with aiohttp.ClientSession() as own:
            client = ss.AsyncClient(api_key=KEY, base_url=server.url, session=own)
            await create(client, "cus_A")
            script.idle.set()
            await pooled_has_unread(client)
            second = await create(client, "cus_B")
            third = await create(client, "cus_C")
    assert second.customer == "cus_B" and second.client_secret == secret_of("cus_B")
    assert third.customer == "cus_C" and third.client_secret == secret_of("cus_C")


async def test_the_sync_client_refuses_too() -> None:
    async with ScriptedServer(misanswer(lambda r: victim())) as server:

        def run() -> ss.CustomerSession:
            with ss.Client(api_key=KEY, base_url=server.url) as client:
                return client.customer_sessions.create(customer="cus_B", components=PRICING)

        got = await asyncio.to_thread(run)
    assert got.customer == "cus_B"
