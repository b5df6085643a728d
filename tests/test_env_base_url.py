"""STRIPE_BASE_URL: both clients read it; an argument wins; a bad one is named."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe

PRICING: ss.ComponentsDict = {"pricing_table": {"enabled": True}}

#: An address nothing listens on: a client sent there would fail, not pass by chance.
DEAD = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STRIPE_BASE_URL", raising=False)
    monkeypatch.setenv("STRIPE_API_KEY", FakeStripe.api_key)


async def test_async_client_sends_to_stripe_base_url(
    fake: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRIPE_BASE_URL", fake.url + "/")
    async with ss.AsyncClient() as stripe:
        assert stripe.config.base_url == fake.url  # checked as base_url= is: no trailing /
        assert stripe.config.base_url_from == "STRIPE_BASE_URL"
        session = await stripe.customer_sessions.create(customer="cus_env", components=PRICING)
        copy = stripe.with_options(max_retries=0)  # a copy keeps the URL and its source
        await copy.customer_sessions.create(customer="cus_copy", components=PRICING)
        assert repr(copy) == repr(stripe)
    assert session.customer_id == "cus_env"
    assert [r.form["customer"] for r in fake.requests] == ["cus_env", "cus_copy"]


def test_sync_client_sends_to_stripe_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeStripe.running() as fake:
        monkeypatch.setenv("STRIPE_BASE_URL", fake.url)
        with ss.Client() as stripe:
            session = stripe.customer_sessions.create(customer="cus_sync", components=PRICING)
            assert repr(stripe) == (
                f"Client(base_url={fake.url!r} (from $STRIPE_BASE_URL), "
                f"api_key='sk_test_****cdef', stripe_version={ss.STRIPE_API_VERSION!r})"
            )
        assert session.customer_id == "cus_sync"
        assert [r.form["customer"] for r in fake.requests] == ["cus_sync"]


async def test_an_explicit_base_url_wins_over_the_environment(
    fake: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRIPE_BASE_URL", DEAD)
    async with ss.AsyncClient(base_url=fake.url, max_retries=0) as stripe:
        await stripe.customer_sessions.create(customer="cus_arg", components=PRICING)
        assert stripe.config.base_url_from is None
        assert "STRIPE_BASE_URL" not in repr(stripe) and fake.url in repr(stripe)
    assert len(fake.requests) == 1
    # An argument wins even over a variable that would be refused: it is not read.
    monkeypatch.setenv("STRIPE_BASE_URL", "ftp://not-used")
    assert ss.AsyncClient(base_url=fake.url).config.base_url == fake.url


def test_unset_or_empty_is_stripe(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ss.AsyncClient().config.base_url == "https://api.stripe.com"
    monkeypatch.setenv("STRIPE_BASE_URL", "")  # as an empty STRIPE_API_KEY: unset
    client = ss.AsyncClient()
    assert client.config.base_url == "https://api.stripe.com"
    assert client.config.base_url_from is None
    assert "from $" not in repr(client)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("ftp://x", "STRIPE_BASE_URL: must start with http:// or https://, got 'ftp://x'"),
        ("api.stripe.com", "STRIPE_BASE_URL: must start with http:// or https://"),
        ("http://", "STRIPE_BASE_URL: has no host"),
        ("http://h/?a=1", "STRIPE_BASE_URL: must not have a query string or fragment"),
        ("http://h:port", "STRIPE_BASE_URL: is not a valid URL"),
        (" http://h", "STRIPE_BASE_URL: must be printable ASCII without spaces"),
        ("http://h\udcff", "STRIPE_BASE_URL: must be printable ASCII without spaces"),
        ("http://user:hunter22@h", "STRIPE_BASE_URL: must not hold credentials (user:password@)"),
    ],
)
@pytest.mark.parametrize("client", [ss.AsyncClient, ss.Client])
def test_a_bad_value_is_a_validation_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, client: type[ss.AsyncClient | ss.Client], value: str, says: str
) -> None:
    monkeypatch.setenv("STRIPE_BASE_URL", value)
    with pytest.raises(ss.ValidationError) as info:
        client()
    assert info.value.param == "STRIPE_BASE_URL"
    assert info.value.message.startswith(says), info.value.message
    assert "hunter22" not in str(info.value) + repr(info.value)
    tb = info.value.__traceback__
    frames = []  # the SDK's frames on the traceback (this test's own holds `value`)
    while tb is not None:
        if tb.tb_frame.f_code.co_filename != __file__:
            frames.append(tb.tb_frame)
        tb = tb.tb_next
    assert frames, "the error is raised from the client's constructor"
    for frame in frames:  # an error tracker renders these locals: none holds the password
        assert all("hunter22" not in repr(v) for v in frame.f_locals.values()), frame


# Any text an environment can hold (no NUL; surrogates only as os.environ decodes bytes
# that are not UTF-8): a client, or a ValidationError naming the variable, nothing else.
_ENV_TEXT = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
    | st.sampled_from([chr(c) for c in range(0xDC80, 0xDD00)]),
    max_size=40,
)


@given(
    scheme=st.sampled_from(["http://", "https://", "", "HTTP://", "ftp://"]),
    password=st.text("abcdefghijklmnop", min_size=6, max_size=12),
    rest=_ENV_TEXT,
)
def test_any_value_gives_a_client_or_a_named_error_never_the_password(
    scheme: str, password: str, rest: str
) -> None:
    secret = f"Zq{password}"
    for value in (scheme + rest, f"{scheme}u:{secret}@{rest}", f"{scheme}{rest}:{secret}@h"):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("STRIPE_BASE_URL", value)
            try:
                client = ss.AsyncClient()
            except ss.ValidationError as e:
                assert e.param == "STRIPE_BASE_URL"
                assert secret not in str(e) + repr(e)
            else:
                config = client.config
                assert config.base_url_from == ("STRIPE_BASE_URL" if value else None)
                assert attrs.evolve(config).base_url == config.base_url  # a valid Config
                assert secret not in repr(client)
