"""Every bad argument is a ValidationError naming it, and nothing is sent; what is sent, the
fake can read. Plus: errors and sessions survive pickling and copying."""

from __future__ import annotations

import copy
import math
import pickle
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import stripe_sessions as ss
from stripe_sessions._wire.converter import structure_session
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING, Exploding, examples, fixture_json

KEY = "sk_test_inputs0123456789"


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"base_url": ""}, "base_url"),
        ({"base_url": "ftp://x"}, "base_url"),
        ({"base_url": "http://"}, "base_url"),
        ({"base_url": "https://api.stripe.com/?a=1"}, "base_url"),
        ({"base_url": "https://api.stripe.com/#x"}, "base_url"),
        ({"base_url": "https://u:p@api.stripe.com"}, "base_url"),
        ({"base_url": "https://api.stripe.com\r\nX: 1"}, "base_url"),
        ({"base_url": "https://api.stripe.com:port"}, "base_url"),
        ({"stripe_account": "acct_1\r\nX-Evil: 1"}, "stripe_account"),
        ({"stripe_account": "acct_é"}, "stripe_account"),
        ({"stripe_account": ""}, "stripe_account"),
        ({"stripe_version": "2026\n"}, "stripe_version"),
        ({"stripe_context": "ctx\x00"}, "stripe_context"),
        ({"default_headers": {"X-A": "b\r\nc"}}, "default_headers[X-A]"),
        ({"default_headers": {"Bad Name": "v"}}, "default_headers"),
        ({"default_headers": ["x"]}, "default_headers"),
        ({"timeout": math.inf}, "timeout"),
        ({"timeout": math.nan}, "timeout"),
        ({"connect_timeout": math.inf}, "connect_timeout"),
        ({"max_retries": 10**5000}, "max_retries"),
        ({"api_key": "sk_test_ab cd"}, "api_key"),
        ({"api_key": "sk_test_abcé"}, "api_key"),
        ({"api_key": "sk_test_\nx"}, "api_key"),
    ],
)
def test_bad_constructor_arguments_are_named(kwargs: dict[str, Any], param: str) -> None:
    kwargs.setdefault("api_key", KEY)
    for cls in (ss.AsyncClient, ss.Client):
        with pytest.raises(ss.ValidationError) as info:
            cls(**kwargs)
        assert info.value.param == param
        assert param in str(info.value)
        assert isinstance(info.value, ValueError)


def test_base_url_keeps_a_path_and_drops_a_trailing_slash() -> None:
    client = ss.AsyncClient(api_key=KEY, base_url="http://127.0.0.1:9/stripe/")
    assert client.config.base_url == "http://127.0.0.1:9/stripe"


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"stripe_account": "a\r\nb"}, "stripe_account"),
        ({"timeout": math.inf}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"api_key": "has space"}, "api_key"),
    ],
)
def test_bad_with_options_are_named(kwargs: dict[str, Any], param: str) -> None:
    with pytest.raises(ss.ValidationError) as info:
        ss.AsyncClient(api_key=KEY).with_options(**kwargs)
    assert info.value.param == param


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"customer": "cus_\ud800"}, "customer"),
        ({"customer": "cus_1", "expand": ["\udfff"]}, "expand[0]"),
        (
            {
                "customer": "c",
                "components": {
                    "payment_element": {
                        "enabled": True,
                        "features": {"payment_method_redisplay_limit": 10**5000},
                    }
                },
            },
            "components.payment_element.features.payment_method_redisplay_limit",
        ),
        ({"customer": "c", "components": {"pricing_table": {"enabled": 10**5000}}}, None),
        ({"customer": "c", "components": {10**5000: 1}}, None),
        ({"customer": "c", "extra_params": {"a": math.nan}}, "extra_params.a"),
        ({"customer": "c", "extra_params": {"a": [math.inf]}}, "extra_params.a[0]"),
        ({"customer": "c", "extra_params": {"a": 10**5000}}, "extra_params.a"),
        ({"customer": "c", "extra_params": {"a": "\ud800"}}, "extra_params.a"),
        ({"customer": "c", "extra_params": {"\ud800": "x"}}, "extra_params"),
        ({"customer": "c", "extra_params": {1: "x"}}, "extra_params"),
        ({"customer": "c", "extra_params": {"a": b"bytes"}}, "extra_params.a"),
        ({"customer": "c", "extra_params": {"a": {1.5}}}, "extra_params.a"),
        ({"customer": "c", "stripe_account": "acct\r\n"}, "stripe_account"),
        ({"customer": "c", "stripe_version": "v\x7f"}, "stripe_version"),
        ({"customer": "c", "timeout": math.inf}, "timeout"),
    ],
)
async def test_bad_create_input_is_a_validation_error_and_sends_nothing(
    client: ss.AsyncClient, fake: FakeStripe, kwargs: dict[str, Any], param: str | None
) -> None:
    kwargs.setdefault("components", PRICING)
    with pytest.raises(ss.ValidationError) as info:
        await client.customer_sessions.create(**kwargs)
    if param is not None:
        assert info.value.param == param
    assert len(str(info.value)) < 400  # no 5,000-digit repr in a message
    assert fake.requests == []


def _deep(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


async def test_deep_and_self_referential_extra_params(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    looped: dict[str, Any] = {}
    looped["self"] = looped
    listed: list[Any] = []
    listed.append(listed)
    for extra in (_deep(100_000), looped, {"x": listed}):
        with pytest.raises(ss.ValidationError, match="nested more than 32 levels"):
            await client.customer_sessions.create(
                customer="c", components=PRICING, extra_params=extra
            )
    assert fake.requests == []


async def test_a_callers_failing_mapping_is_a_validation_error(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    with pytest.raises(ss.ValidationError, match="could not be read: RuntimeError"):
        await client.customer_sessions.create(customer="c", components=Exploding())
    assert fake.requests == []


async def test_empty_string_is_sent_as_key_equals(client: ss.AsyncClient, fake: FakeStripe) -> None:
    """CONTRACT.md: an empty string is sent as ``key=`` (how Stripe clears a value)."""
    await client.customer_sessions.create(customer="", components=PRICING)
    assert fake.requests[-1].form is not None
    assert fake.requests[-1].form["customer"] == ""
    body = fake.requests[-1].body
    assert "customer=&" in body or body.endswith("customer=")


# --- any input: a request the fake can read, or a ValidationError ----------------------

_text = st.text(st.characters(codec=None, categories=None), max_size=12)  # surrogates too
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.builds(lambda digits: 7 * 10**digits, st.integers(4300, 4500)),  # past int->str's limit
    st.floats(allow_nan=True, allow_infinity=True),
    _text,
    st.binary(max_size=4),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(_text, st.integers()), inner, max_size=3),
    ),
    max_leaves=12,
)
_components = st.one_of(
    st.just(PRICING),
    st.just({"payment_element": {"enabled": True, "features": {"payment_method_save": "enabled"}}}),
    st.dictionaries(
        st.sampled_from(["pricing_table", "buy_button", "payment_element", "nonsense"]),
        st.one_of(
            st.fixed_dictionaries({"enabled": _values}),
            st.fixed_dictionaries(
                {"enabled": st.just(True), "features": st.dictionaries(_text, _values, max_size=2)}
            ),
            _values,
        ),
        max_size=3,
    ),
    _values,
)
_calls = st.fixed_dictionaries(
    {
        "components": _components,
        "customer": st.one_of(st.just("cus_1"), _text, _values),
    },
    optional={
        "expand": st.one_of(st.just(["customer"]), _values),
        "extra_params": st.one_of(st.dictionaries(_text, _values, max_size=3), _values),
        "stripe_account": st.one_of(st.just("acct_1"), _text),
    },
)

EXAMPLES = examples(1000)


@pytest.fixture(scope="module")
def module_fake() -> Iterator[FakeStripe]:
    with FakeStripe.running(record=True) as fake:
        yield fake


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(call=_calls)
def test_any_input_is_sent_readably_or_refused(
    module_fake: FakeStripe, call: dict[str, Any]
) -> None:
    with ss.Client(api_key=module_fake.api_key, base_url=module_fake.url, max_retries=0) as c:
        before = len(module_fake.requests)
        try:
            session = c.customer_sessions.create(**call)
        except ss.ValidationError:
            assert len(module_fake.requests) == before, "refused, yet something was sent"
            event("refused: ValidationError")
            return
        except ss.InvalidRequestError as e:
            # Sent, and the fake read it and said what Stripe would (unknown parameter...).
            assert e.http_status == 400 and e.param, e
            assert module_fake.requests[-1].form is not None
            event("sent: the fake answered 400")
            return
        assert session.client_secret
        event("sent: created")


def test_errors_from_http_answers_pickle_and_deep_copy(fake_stripe: FakeStripe) -> None:
    fake_stripe.fail_next(400, code="parameter_unknown")
    with ss.Client(api_key=fake_stripe.api_key, base_url=fake_stripe.url) as c:
        with pytest.raises(ss.InvalidRequestError) as info:
            c.customer_sessions.create(customer="c", components=PRICING)
    err = info.value
    for other in (pickle.loads(pickle.dumps(err)), copy.deepcopy(err), copy.copy(err)):
        assert type(other) is type(err)
        assert other.__dict__.keys() == err.__dict__.keys()
        for name in ("message", "http_status", "code", "param", "request_id", "body", "json_body"):
            assert getattr(other, name) == getattr(err, name)
        assert other.idempotency_key == err.idempotency_key
        assert dict(other.headers) == dict(err.headers)
        assert other.headers["request-id"] == err.request_id  # still case-insensitive
        assert str(other) == str(err)


def test_sessions_copy_pickle_and_compare_even_with_unreadable_components() -> None:
    good = structure_session(fixture_json("customer_session.json"), "req_1")
    expanded = structure_session(fixture_json("customer_session.expanded_customer.json"))
    body = fixture_json("customer_session.json")
    body["components"]["pricing_table"] = ["not", "an", "object"]
    bad = structure_session(body, "req_2")
    for session in (good, expanded, bad):
        for other in (
            pickle.loads(pickle.dumps(session)),
            copy.deepcopy(session),
            copy.copy(session),
        ):
            assert other == session
            assert other.client_secret == session.client_secret
            assert other.request_id == session.request_id
        with pytest.raises(TypeError, match=r"not hashable: .*client_secret as a key"):
            hash(session)
    assert bad != good
    with pytest.raises(ss.APIError):
        _ = bad.components
