"""Red team (#20): the fake as a dev server, driven by a hostile client and operator.

- ``POST /_fake/faults`` queues at most ``MAX_QUEUED`` faults at once, however many
  posts ask (each fault is an object: a client posting ``count=10000`` in a loop grew
  a fake-server by 1.7 MB a post, without bound);
- ``POST /_fake/customers`` adds at most ``MAX_CUSTOMERS`` customers, ids of at most
  ``MAX_CUSTOMER_ID`` characters;
- ``fake-server --customer`` takes what the endpoint takes (a usage error otherwise),
  and an address it cannot listen on is a usage error naming ``--host/--port``, not
  a bare ``gaierror``/``OSError`` line with exit 1.

A real FakeStripe on 127.0.0.1, driven over HTTP.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stripe_sessions._cli.main import main
from stripe_sessions.testing import FakeStripe
from stripe_sessions.testing import _control as control
from tests.helpers import examples


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(http: aiohttp.ClientSession, fake: FakeStripe, path: str, body: Any) -> Any:
    async with http.post(f"{fake.url}/_fake/{path}", json=body) as answer:
        return answer.status, await answer.json()


@settings(
    max_examples=examples(20),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    posts=st.lists(
        st.tuples(
            st.sampled_from(["status", "reset_before", "slow", "malformed"]),
            st.integers(1, control.MAX_COUNT),
        ),
        min_size=1,
        max_size=8,
    )
)
async def test_queued_faults_never_pass_the_cap(
    http: aiohttp.ClientSession, posts: list[tuple[str, int]]
) -> None:
    async with FakeStripe() as fake:
        expected = 0
        for kind, count in posts:
            body: dict[str, Any] = {"kind": kind, "count": count}
            if kind == "status":
                body["status"] = 503
            if kind == "slow":
                body["seconds"] = 1
            status, answer = await post(http, fake, "faults", body)
            if expected + count <= control.MAX_QUEUED:
                assert status == 200, answer
                expected += count
            else:  # refused whole: nothing of it queued
                assert status == 400, answer
                assert answer["error"]["param"] == "count"
                assert "faults may wait at once" in answer["error"]["message"]
            assert fake.queued_faults == expected <= control.MAX_QUEUED
        assert (await post(http, fake, "reset", {}))[0] == 200
        assert fake.queued_faults == 0
        assert (await post(http, fake, "faults", {"kind": "conflict", "count": 5}))[0] == 200


async def test_customers_added_through_the_endpoint_are_capped(
    http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control, "MAX_CUSTOMERS", 3)
    async with FakeStripe() as fake:
        for i in range(3):
            assert (await post(http, fake, "customers", {"id": f"cus_{i}"}))[0] == 200
        assert (await post(http, fake, "customers", {"id": "cus_0"}))[0] == 200  # known: fine
        status, answer = await post(http, fake, "customers", {"id": "cus_4"})
        assert status == 400 and "at most 3 customers" in answer["error"]["message"]
        status, answer = await post(http, fake, "customers", {})
        assert status == 400
        assert fake.customers == {"cus_0", "cus_1", "cus_2"}


@pytest.mark.parametrize(
    ("customer", "ok"),
    [("cus_" + "a" * (control.MAX_CUSTOMER_ID - 4), True), ("cus_" + "a" * 5000, False)],
)
async def test_a_customer_id_is_at_most_so_long(
    http: aiohttp.ClientSession, customer: str, ok: bool
) -> None:
    async with FakeStripe() as fake:
        status, answer = await post(http, fake, "customers", {"id": customer})
        assert status == (200 if ok else 400), answer
        if not ok:
            assert (
                answer["error"]["param"] == "id" and "255 characters" in answer["error"]["message"]
            )


@pytest.mark.parametrize(
    "customer", ["x", "", "cus_", "cus_a b", "cus_\x1b[31m", "cus_" + "a" * 300]
)
def test_fake_server_refuses_a_customer_the_endpoint_refuses(
    customer: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["fake-server", "--port", "0", "--customer", customer])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argument --customer: must be cus_ and letters, digits or underscores" in err
    assert "\x1b" not in err


def test_an_address_it_cannot_listen_on_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["fake-server", "--host", "127.0.0.1", "--port", str(port)])
    assert code == 2
    err = capsys.readouterr().err
    assert f"error: --host/--port: cannot listen on 127.0.0.1 port {port}" in err
    assert "OSError" not in err and "Traceback" not in err


@settings(
    max_examples=examples(15),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(cut_sessions=st.integers(0, 4), cut_keys=st.integers(0, 4), limit=st.integers(1, 5))
async def test_listing_sessions_after_a_test_cut_the_lists_pairs_them_right(
    http: aiohttp.ClientSession, cut_sessions: int, cut_keys: int, limit: int
) -> None:
    # A test may cut fake.sessions or fake.session_keys (oldest first) as it reads them;
    # the listing paired them with a strict zip and answered a 500.
    async with FakeStripe() as fake:
        for i in range(4):
            headers = {"Authorization": f"Bearer {fake.api_key}", "Idempotency-Key": f"k{i}"}
            form = {"customer": f"cus_{i}", "components[pricing_table][enabled]": "true"}
            async with http.post(f"{fake.url}/v1/customer_sessions", data=form, headers=headers):
                pass
        del fake.sessions[:cut_sessions]
        del fake.session_keys[:cut_keys]
        async with http.get(f"{fake.url}/_fake/sessions?limit={limit}") as answer:
            assert answer.status == 200, await answer.text()
            listed = (await answer.json())["data"]
        assert len(listed) == min(limit, 4 - max(cut_sessions, cut_keys))
        for entry in listed:  # each session with its own key
            assert entry["idempotency_key"] == "k" + entry["session"]["customer"][4:]
