"""Reading a customer_session answer, pinned where mutation testing (``make mutate``) found
it unpinned: every field of the session on each way in (the common answer, an expanded
customer, the default and the strict converter), what each JSON type check says, timestamps
out of range, components read on first use, and fields named like the SDK's own attributes.
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import pytest

import stripe_sessions as ss
from stripe_sessions._wire.converter import (
    build_converter,
    get_converter,
    structure_components,
    structure_session,
)
from stripe_sessions.testing import FakeStripe
from tests.pin_builders import rebuild

SECRET = "cuss_secret_pin0123456789"
BASE: dict[str, Any] = {
    "object": "customer_session",
    "client_secret": SECRET,
    "created": 1_700_000_000,
    "expires_at": 1_700_001_800,
    "livemode": False,
    "customer": "cus_1",
    "customer_account": None,
    "components": {"pricing_table": {"enabled": True}},
}
CREATED = datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)
EXPIRES = datetime(2023, 11, 14, 22, 43, 20, tzinfo=timezone.utc)
PRICING = ss.Components(pricing_table=ss.PricingTable(enabled=True))
SESSION_PROBLEM = "Stripe answered with a customer_session this SDK could not read: "
CUSTOMER = {"id": "cus_1", "object": "customer"}


@pytest.fixture(autouse=True)
def _fresh_converter(monkeypatch: pytest.MonkeyPatch) -> None:
    rebuild(monkeypatch)  # each test builds the converter again: see tests/pin_builders.py


def _answer(**fields: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(fields)
    return data


def _components_problem(problem: str) -> str:
    return (
        f"Stripe answered with components this SDK could not read ({problem}); "
        "is stripe_version newer than the models? session.to_dict() has the JSON."
    )


# The ways in: the common answer (the default), the default converter named, the strict one.
WAYS = ["common", "default", "strict"]


def _read(
    data: dict[str, Any], way: str, request_id: str | None = "req_1", replayed: bool = False
) -> Any:
    conv = {"common": None, "default": get_converter}.get(way, lambda: build_converter(strict=True))
    return structure_session(data, request_id, replayed, conv=conv and conv())


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("replayed", [False, True])
def test_every_field_of_a_session_is_read(way: str, replayed: bool) -> None:
    data = _answer(livemode=True, customer_account="acct_1")
    session = _read(data, way, "req_9", replayed)
    assert type(session) is ss.CustomerSession
    assert session.client_secret == SECRET
    assert session.created == CREATED and session.created.tzinfo is timezone.utc
    assert session.expires_at == EXPIRES and session.expires_at.tzinfo is timezone.utc
    assert session.livemode is True
    assert session.customer == "cus_1" and session.customer_id == "cus_1"
    assert session.object == "customer_session"
    assert session.customer_account == "acct_1"
    assert session.components == PRICING
    assert session.request_id == "req_9"
    assert session.idempotent_replayed is replayed
    assert session.to_dict() == data
    assert _read(_answer(), way, None).request_id is None


@pytest.mark.parametrize("way", WAYS)
def test_an_expanded_customer_is_read_field_by_field(way: str) -> None:
    customer = {
        **CUSTOMER,
        "created": 0,
        "metadata": {"plan": "pro"},
        "preferred_locales": ["en", "fr"],
        "email": "jo@example.com",
        "balance": -5,
        "delinquent": False,
        "address": None,
        "invoice_settings": {"footer": None},
    }
    session = _read(_answer(customer=customer), way)
    assert session.customer == ss.Customer(
        id="cus_1",
        created=datetime(1970, 1, 1, tzinfo=timezone.utc),
        metadata={"plan": "pro"},
        preferred_locales=("en", "fr"),
        email="jo@example.com",
        balance=-5,
        delinquent=False,
        invoice_settings={"footer": None},
    )
    assert session.customer_id == "cus_1"
    assert type(session.customer.metadata) is dict
    assert type(session.customer.preferred_locales) is tuple
    assert session.components == PRICING
    # Stripe's JSON stays as sent: the customer's objects are copies
    session.customer.metadata["plan"] = "changed"
    assert session.to_dict()["customer"]["metadata"] == {"plan": "pro"}


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("email", 5, "expected a string, got an integer"),
        ("email", None, None),
        ("object", 3, "expected a string, got an integer"),
        ("balance", "5", "expected an integer, got a string"),
        ("balance", True, "expected an integer, got a boolean"),
        ("delinquent", "no", "expected a boolean, got a string"),
        ("delinquent", 0, "expected a boolean, got an integer"),
        ("created", "x", "expected a Unix timestamp (an integer), got a string"),
        ("created", 1.5, "expected a Unix timestamp (an integer), got a number"),
        ("created", True, "expected a Unix timestamp (an integer), got a boolean"),
        ("default_source", 5, "expected an object, got an integer"),
        ("default_source", None, None),
        ("created", 10**20, "expected a Unix timestamp, got an integer out of range"),
        ("created", 253_402_300_800, "expected a Unix timestamp, got an integer out of range"),
        ("metadata", [1], "expected an object, got an array"),
        ("metadata", "x", "expected an object, got a string"),
        ("preferred_locales", "en", "expected an array, got a string"),
        ("preferred_locales", {"0": "en"}, "expected an array, got an object"),
        ("preferred_locales", ["en", 1], "expected a string, got an integer"),
        ("id", None, "expected a string, got null"),
    ],
)
def test_a_customer_field_of_the_wrong_type_is_named(
    field: str, value: Any, problem: str | None
) -> None:
    data = _answer(customer={**CUSTOMER, field: value})
    if problem is None:
        assert getattr(_read(data, "common").customer, field) is None
        return
    with pytest.raises(ss.APIError) as info:
        _read(data, "common")
    assert info.value.message == SESSION_PROBLEM + problem
    assert info.value.http_status == 200
    assert info.value.request_id == "req_1"
    # raised outside the handler: no chained error holds the answer (and its secret)
    assert info.value.__cause__ is None and info.value.__context__ is None


def test_a_customer_without_an_id_is_named_by_the_error_type() -> None:
    with pytest.raises(ss.APIError) as info:
        _read(_answer(customer={"object": "customer"}), "common", "req_2")
    assert info.value.message == SESSION_PROBLEM + "KeyError"
    assert info.value.request_id == "req_2"
    assert info.value.__cause__ is None and info.value.__context__ is None


@pytest.mark.parametrize("field", ["created", "expires_at"])
@pytest.mark.parametrize("value", [10**20, 300 * 10**12, -62_135_596_801, 253_402_300_800])
def test_a_timestamp_no_datetime_can_hold_is_refused(field: str, value: int) -> None:
    for way in WAYS:
        with pytest.raises(ss.APIError) as info:
            _read(_answer(**{field: value}), way)
        if way != "strict":  # the strict converter names the cattrs error instead
            assert info.value.message == (
                SESSION_PROBLEM + "expected a Unix timestamp, got an integer out of range"
            )
        assert info.value.__cause__ is None and info.value.__context__ is None


@pytest.mark.parametrize("value", [-62_135_596_800, 0, 253_402_300_799])
def test_a_timestamp_at_the_edges_of_a_datetime_is_read(value: int) -> None:
    session = _read(_answer(created=value, expires_at=value), "common")
    assert session.created == datetime.fromtimestamp(value, timezone.utc)
    assert session.expires_at == session.created


FEATURES_PATH = ("payment_element", "features")


def _with_feature(name: str, value: Any) -> dict[str, Any]:
    return {"payment_element": {"enabled": True, "features": {name: value}}}


@pytest.mark.parametrize(
    ("components", "problem"),
    [
        ({"pricing_table": {"enabled": "true"}}, "expected a boolean, got a string"),
        ({"pricing_table": {"enabled": None}}, "expected a boolean, got null"),
        (_with_feature("payment_method_redisplay_limit", "3"), "expected an integer, got a string"),
        (
            _with_feature("payment_method_redisplay_limit", True),
            "expected an integer, got a boolean",
        ),
        (_with_feature("payment_method_redisplay_limit", 2.0), "expected an integer, got a number"),
        (_with_feature("payment_method_redisplay", 1), "expected a string, got an integer"),
        (
            _with_feature("payment_method_allow_redisplay_filters", "always"),
            "expected an array, got a string",
        ),
        (
            _with_feature("payment_method_allow_redisplay_filters", [1]),
            "expected a string, got an integer",
        ),
        ({"pricing_table": "x"}, "TypeError"),
    ],
)
@pytest.mark.parametrize("way", ["common", "default", "expanded"])
def test_unreadable_components_fail_on_first_read_only(
    components: dict[str, Any], problem: str, way: str
) -> None:
    data = _answer(components=components)
    if way == "expanded":
        data["customer"] = dict(CUSTOMER)
    session = _read(data, "default" if way == "default" else "common", "req_3")
    assert session.client_secret == SECRET  # the session is read: only components are not
    for _ in range(2):
        with pytest.raises(ss.APIError) as info:
            session.components  # noqa: B018 - the read is the test
        assert info.value.message == _components_problem(problem)
        assert info.value.http_status == 200
        assert info.value.request_id == "req_3"
    assert session.to_dict()["components"] == components


def test_the_strict_converter_reads_components_at_once() -> None:
    with pytest.raises(ss.APIError) as info:
        _read(_answer(components={"pricing_table": {"enabled": "true"}}), "strict")
    assert info.value.message.startswith(SESSION_PROBLEM)
    assert info.value.__context__ is None


@pytest.mark.parametrize("way", WAYS)
def test_components_are_read_on_first_use_as_sent(way: str) -> None:
    components = {
        "payment_element": {
            "enabled": False,
            "features": {
                "payment_method_allow_redisplay_filters": ["always", "a_new_one"],
                "payment_method_redisplay": "a_new_value",
                "payment_method_redisplay_limit": 3,
                "payment_method_save": None,
            },
        },
        "customer_sheet": {"enabled": True, "features": None},
    }
    data = _answer(components=components)
    session = _read(data, way)
    assert session.components == ss.Components(
        payment_element=ss.PaymentElement(
            enabled=False,
            features=ss.PaymentElementFeatures(
                payment_method_allow_redisplay_filters=("always", "a_new_one"),  # type: ignore[arg-type]
                payment_method_redisplay="a_new_value",  # type: ignore[arg-type]
                payment_method_redisplay_limit=3,
            ),
        ),
        customer_sheet=ss.CustomerSheet(enabled=True),
    )
    features = session.components.payment_element.features
    assert type(features.payment_method_allow_redisplay_filters) is tuple
    assert session.components is session.components  # read once


@pytest.mark.parametrize(
    ("way", "absent"),
    [("common", True), ("common", False), ("default", True), ("default", False), ("strict", True)],
)
def test_components_absent_or_null_read_as_empty(way: str, absent: bool) -> None:
    data = _answer()
    if absent:
        del data["components"]
    else:
        data["components"] = None
    session = _read(data, way)
    assert session.components == ss.Components()
    assert session.client_secret == SECRET and session.created == CREATED
    assert structure_components(None) == ss.Components()


@pytest.mark.parametrize("way", ["common", "default"])
def test_unknown_fields_are_kept_and_read_past(way: str) -> None:
    # Fields named like the session's own attributes: the response's values win.
    data = _answer(
        customer=dict(CUSTOMER, a_new_field=1),
        request_id=5,
        idempotent_replayed="x",
        raw=1,
        _raw=2,
        a_new_field={"x": 1},
        components={"pricing_table": {"enabled": True, "a_new_field": 1}, "new_one": {}},
    )
    session = _read(data, way, "req_4", True)
    assert session.request_id == "req_4"
    assert session.idempotent_replayed is True
    assert session.to_dict() == data
    assert session.customer == ss.Customer(id="cus_1")
    assert session.components == PRICING


@pytest.mark.parametrize(
    "data",
    [
        _answer(a_new_field=1),
        _answer(request_id="req_x"),
        _answer(components={"pricing_table": {"enabled": True, "a_new_field": 1}}),
        _answer(customer=dict(CUSTOMER, a_new_field=1)),
    ],
    ids=["top", "attribute-name", "component", "customer"],
)
def test_the_strict_converter_refuses_unknown_fields(data: dict[str, Any]) -> None:
    with pytest.raises(ss.APIError) as info:
        _read(data, "strict")
    # detailed validation: cattrs gathers every problem (the model-coverage tests print them)
    assert info.value.message == SESSION_PROBLEM + "ClassValidationError"
    # the default converter reads the same answer
    assert _read(data, "default").client_secret == SECRET


def test_structure_components_names_the_problem_and_the_request() -> None:
    assert structure_components({"pricing_table": {"enabled": True}}, "r") == PRICING
    for data, problem in [
        ({"pricing_table": {"enabled": 1}}, "expected a boolean, got an integer"),
        ({"pricing_table": 5}, "TypeError"),
    ]:
        with pytest.raises(ss.APIError) as info:
            structure_components(data, "req_5")
        assert info.value.message == _components_problem(problem)
        assert info.value.http_status == 200
        assert info.value.request_id == "req_5"
    with pytest.raises(ss.APIError) as info:
        structure_components({"pricing_table": 5})
    assert info.value.request_id is None


def test_the_converter_is_built_once_and_structures_components() -> None:
    conv = get_converter()
    assert get_converter() is conv
    assert conv.structure({"buy_button": {"enabled": False}}, ss.Components) == ss.Components(
        buy_button=ss.BuyButton(enabled=False)
    )
    # a session read through it explicitly is read lazily, like the common answer
    session = structure_session(_answer(components={"pricing_table": 1}), conv=conv)
    with pytest.raises(ss.APIError):
        session.components  # noqa: B018 - the read is the test


async def test_a_create_reads_every_field_of_the_answer(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    session = await client.customer_sessions.create(
        customer="cus_1", components={"pricing_table": {"enabled": True}}
    )
    assert session.client_secret.startswith("cuss_secret_")
    assert session.created.tzinfo is timezone.utc
    assert session.expires_at > session.created
    assert session.customer == "cus_1" and session.object == "customer_session"
    assert session.components.pricing_table == ss.PricingTable(enabled=True)
    assert session.request_id is not None and session.request_id.startswith("req_")
    assert session.idempotent_replayed is False


@pytest.mark.parametrize("source", ["card_1", {"id": "card_1", "object": "card"}])
def test_a_customer_source_is_an_id_or_an_object(source: Any) -> None:
    session = _read(_answer(customer={**CUSTOMER, "default_source": source}), "common")
    assert session.customer.default_source == source
    assert type(session.customer.default_source) is type(source)


def test_a_session_is_not_replayed_unless_said() -> None:
    assert structure_session(_answer()).idempotent_replayed is False
    assert structure_session(_answer(customer=dict(CUSTOMER))).idempotent_replayed is False
    assert structure_session(_answer(), "req_1").request_id == "req_1"
    assert structure_session(_answer()).request_id is None
