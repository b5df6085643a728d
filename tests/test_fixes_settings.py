"""The classes behind redteam19's faults 3-6 (tests/test_attack19_settings.py has the examples).

- ``session=``: anything but an ``aiohttp.ClientSession`` is a ValidationError naming
  it, before anything reads it or is built.
- ``default_headers``: a name that frames the request or that the SDK owns (one list,
  ``_http/reserved.py``, shared with a lent session's default headers) is refused in
  any case, naming ``default_headers[<name>]`` and never quoting its value; every other
  valid name is sent exactly once, as given.
- ``concurrency``: at most ``MAX_CONCURRENCY`` (10,000), in the SDK and in the CLI alike.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stripe_sessions as ss
from stripe_sessions._batch.options import MAX_CONCURRENCY
from stripe_sessions._cli import args as cli_args
from stripe_sessions._http.reserved import NEVER, OWNED, owned_reason
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING, cli_env, examples, items
from tests.hostile_tcp import Conn, ScriptedServer, response
from tests.leaks import KEY, rendered

_TOKEN = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
#: What the redteam found sent as given, and what the brief names: all must be refused.
_MUST_REFUSE = (
    "Content-Length",
    "Transfer-Encoding",
    "Host",
    "Authorization",
    "Idempotency-Key",
    "Stripe-Version",
    "Stripe-Account",
    "Stripe-Context",
)
_SETTLE = settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _any_case(name: str) -> st.SearchStrategy[str]:
    """``name`` with each letter in either case."""
    flips = st.lists(st.booleans(), min_size=len(name), max_size=len(name))
    return flips.map(
        lambda up: "".join(c.upper() if u else c.lower() for c, u in zip(name, up, strict=True))
    )


reserved_names = st.sampled_from(sorted({*NEVER, *OWNED})).flatmap(_any_case)
#: A valid header name the SDK leaves to the caller (``X-Trace``, ``user-agent``, ``a``).
free_names = st.one_of(
    st.text(alphabet=_TOKEN, min_size=1, max_size=24),
    st.sampled_from(["User-Agent", "Accept", "X-Request-Id", "Stripe-Beta"]).flatmap(_any_case),
).filter(lambda n: owned_reason(n) is None)
#: A header value that arrives as sent: printable ASCII, no space at either end.
values = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).map(
    lambda v: f"v{v}v"
)


def test_the_names_the_brief_and_the_redteam_list_are_all_reserved() -> None:
    assert all(owned_reason(name) for name in _MUST_REFUSE)
    # User-Agent and Accept stay the caller's (test_client pins that they override).
    assert owned_reason("User-Agent") is None and owned_reason("accept") is None


# --- session= ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "session",
    [5, "http://127.0.0.1:1", object(), b"", aiohttp.ClientSession, aiohttp.TCPConnector, {}],
)
def test_anything_but_an_aiohttp_session_is_refused_by_name(session: Any) -> None:
    with pytest.raises(ss.ValidationError) as info:
        ss.AsyncClient(api_key=KEY, base_url="http://127.0.0.1:1", session=session)
    assert info.value.param == "session"
    assert "aiohttp.ClientSession" in str(info.value)
    assert KEY not in rendered(info.value)


def test_the_pool_checks_a_lent_session_itself() -> None:
    # check_lent (run again at first use: the app may change its session) checks the
    # type first too, so no path reads ``.auth`` of something else.
    from stripe_sessions._http.pool import ConnectionPool  # noqa: PLC0415

    with pytest.raises(ss.ValidationError) as info:
        ConnectionPool(1, 5)  # type: ignore[arg-type]
    assert info.value.param == "session"


def test_a_bad_session_is_named_before_a_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # Checked before the Config is built: the session is what is wrong, and named first.
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    with pytest.raises(ss.ValidationError) as info:
        ss.AsyncClient(session=5)  # type: ignore[arg-type]
    assert info.value.param == "session"


def test_the_sync_client_takes_no_session() -> None:
    # Its loop is private, so no caller's session could be used there (codegen leaves it out).
    with pytest.raises(TypeError, match="session"):
        ss.Client(api_key=KEY, session=object())  # type: ignore[call-arg]


# --- default_headers ---------------------------------------------------------------------


def _with_key_in_header(name: str, value: str) -> ss.AsyncClient:
    # The key built inline: no frame on the traceback holds it in a local of its own.
    return ss.AsyncClient(
        api_key=KEY, default_headers={"X-Fine": "1", name: f"Bearer {KEY}{value}"}
    )


@_SETTLE
@given(name=reserved_names, value=values)
def test_any_case_of_a_reserved_name_is_refused_without_its_value(name: str, value: str) -> None:
    with pytest.raises(ss.ValidationError) as info:
        _with_key_in_header(name, value)
    assert info.value.param == f"default_headers[{name}]"
    assert str(info.value).startswith(f"default_headers[{name}]: may not be set by the caller: ")
    assert KEY not in rendered(info.value)


@_SETTLE
@given(name=reserved_names)
def test_a_lent_session_refuses_the_names_that_frame_the_request(name: str) -> None:
    # The same list: a lent session's defaults of the SDK's own names are overridden on
    # every request instead (test_integrity_lent's test_harmless_defaults_are_kept).
    async def lend() -> None:
        async with aiohttp.ClientSession(headers={name: "x"}) as own:
            if name.lower() in NEVER or name.lower().startswith("stripe-"):
                with pytest.raises(ss.ValidationError, match=f"default headers {name}") as info:
                    ss.AsyncClient(api_key=KEY, session=own)
                assert info.value.param == "session"
            else:
                ss.AsyncClient(api_key=KEY, session=own)

    asyncio.run(lend())


def test_the_same_name_twice_in_two_cases_is_refused() -> None:
    with pytest.raises(ss.ValidationError) as info:
        ss.AsyncClient(api_key=KEY, default_headers={"X-Trace": "a", "x-trace": "b"})
    assert info.value.param == "default_headers[x-trace]"
    assert "'X-Trace'" in str(info.value)


def test_a_copy_checks_its_headers_again() -> None:
    # with_options takes no default_headers (a copy keeps the client's); attrs.evolve on
    # the client's Config runs the same check.
    import attrs  # noqa: PLC0415

    client = ss.AsyncClient(api_key=KEY, default_headers={"X-Trace": "t"})
    with pytest.raises(TypeError):
        client.with_options(default_headers={"Host": "evil.example"})  # type: ignore[call-arg]
    with pytest.raises(ss.ValidationError) as info:
        attrs.evolve(client.config, default_headers={"HOST": "evil.example"})
    assert info.value.param == "default_headers[HOST]"
    assert client.with_options(max_retries=0).config.default_headers == (("X-Trace", "t"),)


def _refusing(seen: list[list[tuple[str, str]]]) -> Any:
    async def script(conn: Conn) -> None:
        while (request := await conn.read_request()) is not None:
            seen.append(request.headers)
            conn.write(response(400, {"error": {"type": "invalid_request_error"}}))

    return script


@settings(max_examples=examples(25), deadline=None)
@given(headers=st.dictionaries(free_names, values, min_size=1, max_size=6), lent=st.booleans())
def test_every_other_valid_name_is_sent_once_as_given(headers: dict[str, str], lent: bool) -> None:
    lowered = [name.lower() for name in headers]
    if len(set(lowered)) < len(lowered):  # refused, as above; not this property
        return
    seen: list[list[tuple[str, str]]] = []

    async def send() -> None:
        async with ScriptedServer(_refusing(seen)) as server, aiohttp.ClientSession() as own:
            client = ss.AsyncClient(
                api_key=KEY,
                base_url=server.url,
                default_headers=headers,
                max_retries=0,
                session=own if lent else None,
            )
            async with client:
                with pytest.raises(ss.InvalidRequestError):
                    await client.customer_sessions.create(customer="cus_1", components=PRICING)

    asyncio.run(send())
    [sent] = seen
    for name, value in headers.items():
        assert [(k, v) for k, v in sent if k.lower() == name.lower()] == [(name, value)]
    # The SDK's own are still there, each once (the key's own Authorization included).
    for own in ("authorization", "idempotency-key", "stripe-version", "content-type", "host"):
        assert sum(k.lower() == own for k, _ in sent) == 1, (own, sent)


async def test_a_refused_header_sends_nothing(fake: FakeStripe) -> None:
    with pytest.raises(ss.ValidationError):
        ss.AsyncClient(api_key=fake.api_key, base_url=fake.url, default_headers={"TE": "trailers"})
    assert fake.requests == []


# --- concurrency -------------------------------------------------------------------------


# Only just beyond the bound: without it, this process would start that many workers
# (10**30 ran this test's process out of memory; test_attack19_settings runs that one in
# a child under RLIMIT_AS).
@pytest.mark.parametrize("concurrency", [MAX_CONCURRENCY + 1, 2 * MAX_CONCURRENCY])
async def test_concurrency_beyond_the_bound_is_refused_before_anything_is_read(
    fake: FakeStripe, concurrency: int
) -> None:
    read: list[int] = []

    def source() -> Any:
        for i, item in enumerate(items(3)):
            read.append(i)
            yield item

    async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url) as client:
        with pytest.raises(ss.ValidationError) as info:
            await client.customer_sessions.create_many(source(), concurrency=concurrency)
        assert info.value.param == "concurrency"
        assert "from 1 to 10000" in str(info.value)
        with pytest.raises(ss.ValidationError):
            client.customer_sessions.stream_many(source(), concurrency=concurrency)
    assert read == [] and fake.requests == []


async def test_the_bound_itself_runs(fake: FakeStripe) -> None:
    async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url) as client:
        results = await client.customer_sessions.create_many(
            items(2), concurrency=MAX_CONCURRENCY, rate_limit=None
        )
    assert [r.ok for r in results] == [True, True]


def test_the_clis_bound_is_the_sdks() -> None:
    assert cli_args.MAX_CONCURRENCY == MAX_CONCURRENCY


@pytest.mark.parametrize("command", ["batch", "demo"])
def test_the_cli_refuses_a_concurrency_beyond_the_bound_as_a_usage_error(
    fake: FakeStripe, command: str
) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "stripe_sessions", command, "--concurrency", "10001"],
        input="cus_1\n", capture_output=True, text=True, timeout=60, check=False,
        env=cli_env(fake.api_key, STRIPE_BASE_URL=fake.url),
    )  # fmt: skip
    assert out.returncode == 2
    assert out.stderr == (
        f"stripe-sessions {command}: error: argument --concurrency: must be at most 10,000, "
        "got 10001 (see --help)\n"
    )
    assert out.stdout == "" and fake.requests == []
