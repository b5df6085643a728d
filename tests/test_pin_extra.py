"""``extra_params``, pinned where mutation testing (``make mutate``) found it unpinned: what a
refusal names (the path, the named parameter it collides with), which keys collide (equal,
an ancestor, a descendant of a named key, at any depth) and which merge.
"""

from __future__ import annotations

from typing import Any

import pytest

import stripe_sessions as ss
from stripe_sessions._wire.encode import encode_create
from stripe_sessions.testing import FakeStripe
from tests.pin_builders import rebuild

PRICING: Any = {"pricing_table": {"enabled": True}}
NAMED = "components[pricing_table][enabled]=true&customer=cus_1&expand[0]=customer"
GIVE_ONCE = ": give each field once (extra_params is for fields this SDK does not know)"


@pytest.fixture(autouse=True)
def _fresh_field_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    rebuild(monkeypatch)  # each test works out the field specs again: see tests/pin_builders.py


def _refusal(extra: Any, components: Any = None) -> ss.ValidationError:
    with pytest.raises(ss.ValidationError) as info:
        encode_create(components or PRICING, "cus_1", None, ["customer"], extra)
    assert info.value.message.startswith(f"{info.value.param}: ")
    assert info.value.type == "validation_error"
    return info.value


@pytest.mark.parametrize(
    ("extra", "param", "reason"),
    [
        ({1: "x"}, "extra_params", "keys must be non-empty strings of valid Unicode text, got 1"),
        ({"": "x"}, "extra_params", "keys must be non-empty strings of valid Unicode text, got ''"),
        (
            {"a[b]": 1},
            "extra_params.a[b]",
            "keys must not contain '[' or ']' (the server reads them as nesting)",
        ),
        (
            {"metadata": {"x": float("nan")}},
            "extra_params.metadata.x",
            "must be a finite number, got nan",
        ),
        (
            {"metadata": [1, {"y": 2**63}]},
            "extra_params.metadata[1].y",
            "is out of range for a 64-bit integer",
        ),
    ],
    ids=["int-key", "empty-key", "bracket", "nan", "huge"],
)
def test_what_cannot_be_encoded_is_named_by_its_path(extra: Any, param: str, reason: str) -> None:
    error = _refusal(extra)
    assert error.param == param
    assert error.message == f"{param}: {reason}"
    assert error.__cause__ is None and error.__suppress_context__  # the form error stays inside


@pytest.mark.parametrize(
    ("extra", "param", "named"),
    [
        # the same key
        ({"customer": "cus_2"}, "extra_params.customer", "customer"),
        ({"expand": ["x"]}, "extra_params.expand[0]", "expand[0]"),
        # an ancestor of a named key: it would replace the object
        ({"components": "x"}, "extra_params.components", "components.pricing_table.enabled"),
        ({"expand": "x"}, "extra_params.expand", "expand[0]"),
        (
            {"components": {"pricing_table": "x"}},
            "extra_params.components.pricing_table",
            "components.pricing_table.enabled",
        ),
        # under a named key: it would make a value an object
        ({"customer": {"id": "x"}}, "extra_params.customer.id", "customer"),
        ({"customer": {"a": [{"b": 1}]}}, "extra_params.customer.a[0].b", "customer"),
        (
            {"components": {"pricing_table": {"enabled": {"x": 1}}}},
            "extra_params.components.pricing_table.enabled.x",
            "components.pricing_table.enabled",
        ),
        (
            {"expand": [{"deep": [0]}]},
            "extra_params.expand[0].deep[0]",
            "expand[0]",
        ),
    ],
    ids=[
        "same",
        "same-item",
        "root",
        "list-root",
        "parent",
        "child",
        "child-path",
        "grandchild",
        "item-child",
    ],
)
def test_a_collision_names_both_paths(extra: Any, param: str, named: str) -> None:
    error = _refusal(extra)
    assert error.param == param
    assert error.message == f"{param}: collides with the named parameter {named}{GIVE_ONCE}"


def test_an_ancestor_names_the_first_named_parameter_under_it() -> None:
    components = {"buy_button": {"enabled": True}, "pricing_table": {"enabled": True}}
    error = _refusal({"components": {"pricing_table": 1}}, components)
    assert error.message == (
        "extra_params.components.pricing_table: collides with the named parameter "
        f"components.pricing_table.enabled{GIVE_ONCE}"
    )
    error = _refusal({"components": 1}, components)
    assert error.message == (
        f"extra_params.components: collides with the named parameter {_first_enabled()}{GIVE_ONCE}"
    )


def _first_enabled() -> str:
    body = encode_create(
        {"buy_button": {"enabled": True}, "pricing_table": {"enabled": True}}, "cus_1"
    )
    first = body.split("&")[0].split("=")[0]  # components[<name>][enabled]
    return first.replace("][", ".").replace("[", ".").rstrip("]")


def test_the_customer_account_is_not_the_customer() -> None:
    # a named key is no ancestor of another that merely starts with it
    body = encode_create(PRICING, "cus_1", extra_params={"customer_account": "acct_1"})
    assert body == "components[pricing_table][enabled]=true&customer=cus_1&customer_account=acct_1"
    body = encode_create(PRICING, None, "acct_1", extra_params={"customer": "cus_1"})
    assert body == "components[pricing_table][enabled]=true&customer_account=acct_1&customer=cus_1"


@pytest.mark.parametrize(
    ("extra", "tail"),
    [
        (
            {"components": {"pricing_table": {"future": True}, "new": {"enabled": True}}},
            "components[pricing_table][future]=true&components[new][enabled]=true",
        ),
        (
            {"metadata": {"n": "a b&c", "e": {}, "l": []}},
            "metadata[n]=a+b%26c&metadata[e]=&metadata[l]=",
        ),
        ({"expand": [None, "x"]}, "expand[1]=x"),  # None is left out: no expand[0] from extra
        ({"customerx": 1, "component": {"s": 1}}, "customerx=1&component[s]=1"),
        (
            {"components": {"pricing_tablex": {"enabled": False}}},
            "components[pricing_tablex][enabled]=false",
        ),
    ],
    ids=["siblings", "quoted-and-empty", "none-skipped", "prefixes", "name-prefix"],
)
def test_extra_params_beside_named_ones_are_sent_after_them(extra: Any, tail: str) -> None:
    assert encode_create(PRICING, "cus_1", None, ["customer"], extra) == f"{NAMED}&{tail}"


async def test_the_merged_body_is_what_the_server_gets(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    with pytest.raises(ss.InvalidRequestError):  # sent: the fake knows no such field
        await client.customer_sessions.create(
            customer="cus_1",
            components=PRICING,
            expand=["customer"],
            extra_params={"components": {"pricing_table": {"x": "1"}}},
        )
    assert fake.requests[-1].body == f"{NAMED}&components[pricing_table][x]=1"
    with pytest.raises(ss.ValidationError) as info:
        await client.customer_sessions.create(
            customer="cus_1", components=PRICING, extra_params={"customer": "cus_2"}
        )
    assert info.value.param == "extra_params.customer"
    assert len(fake.requests) == 1  # the refused create sent nothing


def test_every_ancestor_of_a_deep_named_key_collides() -> None:
    # components[payment_element][features][payment_method_allow_redisplay_filters][0]
    components = {
        "payment_element": {
            "enabled": True,
            "features": {"payment_method_allow_redisplay_filters": ["always"]},
        }
    }
    named = "components.payment_element.features.payment_method_allow_redisplay_filters[0]"
    for extra, param in [
        (
            {"components": {"payment_element": {"features": "x"}}},
            "components.payment_element.features",
        ),
        (
            {
                "components": {
                    "payment_element": {"features": {"payment_method_allow_redisplay_filters": "x"}}
                }
            },
            "components.payment_element.features.payment_method_allow_redisplay_filters",
        ),
    ]:
        error = _refusal(extra, components)
        assert error.message == (
            f"extra_params.{param}: collides with the named parameter {named}{GIVE_ONCE}"
        )
