"""The checked parameters of a create, pinned where mutation testing (``make mutate``)
found them unpinned: the redisplay limit's bounds on typed and plain components alike,
whole numbers at the 64-bit edges, and what each refusal names.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import pytest

import stripe_sessions as ss
from stripe_sessions._wire.encode import encode_create
from stripe_sessions.testing import FakeStripe
from tests.pin_builders import rebuild


@pytest.fixture(autouse=True)
def _fresh_field_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    rebuild(monkeypatch)  # each test works out the field specs again: see tests/pin_builders.py


LIMIT_PATH = "components.payment_element.features.payment_method_redisplay_limit"
LIMIT_KEY = "components[payment_element][features][payment_method_redisplay_limit]"


def _typed(limit: Any) -> ss.Components:
    return ss.Components(
        payment_element=ss.PaymentElement(
            enabled=True,
            features=ss.PaymentElementFeatures(payment_method_redisplay_limit=limit),
        )
    )


def _plain(limit: Any) -> dict[str, Any]:
    return {
        "payment_element": {
            "enabled": True,
            "features": {"payment_method_redisplay_limit": limit},
        }
    }


@pytest.fixture(params=["typed", "plain"])
def shape(request: pytest.FixtureRequest) -> Any:
    return _typed if request.param == "typed" else _plain


@pytest.mark.parametrize("limit", [0, 1, 3, 10])
async def test_a_redisplay_limit_from_0_to_10_is_sent(
    client: ss.AsyncClient, fake: FakeStripe, shape: Any, limit: int
) -> None:
    await client.customer_sessions.create(customer="cus_1", components=shape(limit))
    assert fake.requests[-1].body == (
        f"components[payment_element][enabled]=true&{LIMIT_KEY}={limit}&customer=cus_1"
    )


@pytest.mark.parametrize("limit", [11, -1, 2**63 - 1, -(2**63)])
async def test_a_redisplay_limit_outside_0_to_10_is_refused(
    client: ss.AsyncClient, fake: FakeStripe, shape: Any, limit: int
) -> None:
    with pytest.raises(ss.ValidationError) as info:
        await client.customer_sessions.create(customer="cus_1", components=shape(limit))
    assert info.value.param == LIMIT_PATH
    assert info.value.message == f"{LIMIT_PATH}: must be between 0 and 10, got {limit}"
    assert fake.requests == []


@pytest.mark.parametrize(
    ("limit", "shown"),
    [(2**63, str(2**63)), (-(2**63) - 1, str(-(2**63) - 1))],
)
async def test_a_whole_number_beyond_64_bits_is_out_of_range(
    client: ss.AsyncClient, fake: FakeStripe, shape: Any, limit: int, shown: str
) -> None:
    with pytest.raises(ss.ValidationError) as info:
        await client.customer_sessions.create(customer="cus_1", components=shape(limit))
    assert info.value.param == LIMIT_PATH
    assert info.value.message == f"{LIMIT_PATH}: is out of range: {shown}"
    assert fake.requests == []


@pytest.mark.parametrize(("limit", "shown"), [(True, "True"), (2.0, "2.0"), ("3", "'3'")])
async def test_a_redisplay_limit_that_is_not_a_whole_number_is_refused(
    client: ss.AsyncClient, fake: FakeStripe, shape: Any, limit: Any, shown: str
) -> None:
    with pytest.raises(ss.ValidationError) as info:
        await client.customer_sessions.create(customer="cus_1", components=shape(limit))
    assert info.value.param == LIMIT_PATH
    assert info.value.message == f"{LIMIT_PATH}: expected a whole number, got {shown}"
    assert fake.requests == []


class _NoRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (2**128, "an integer of about 39 digits"),  # 129 bits: summarised
        (10**50, "an integer of about 51 digits"),
        (2**128 - 1, str(2**128 - 1)),  # 128 bits: shown
    ],
)
async def test_a_huge_whole_number_is_named_by_its_size(
    client: ss.AsyncClient, fake: FakeStripe, value: int, shown: str
) -> None:
    with pytest.raises(ss.ValidationError) as info:
        await client.customer_sessions.create(customer="cus_1", components=_plain(value))
    assert info.value.message == f"{LIMIT_PATH}: is out of range: {shown}"


SAVE_PATH = "components.payment_element.features.payment_method_save"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("x" * 58, repr("x" * 58)),  # a repr of 60 characters: whole
        ("x" * 59, repr("x" * 59)[:57] + "..."),  # 61: cut to 60
        (_NoRepr(), "<_NoRepr object>"),  # a repr that fails does not hide the error
    ],
    ids=["60", "61", "no-repr"],
)
async def test_a_wrong_value_is_quoted_in_at_most_60_characters(
    client: ss.AsyncClient, fake: FakeStripe, value: Any, shown: str
) -> None:
    components = {"payment_element": {"enabled": True, "features": {"payment_method_save": value}}}
    with pytest.raises(ss.ValidationError) as info:
        await client.customer_sessions.create(customer="cus_1", components=components)
    assert info.value.message == (
        f"{SAVE_PATH}: expected one of 'disabled', 'enabled', got {shown}"
    )
    assert fake.requests == []


async def test_a_batch_of_create_params_sends_each_field(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    items = [
        ss.CreateParams(
            customer="cus_1", components={"pricing_table": {"enabled": True}}, expand=["customer"]
        ),
        ss.CreateParams(
            customer_account="acct_1", components=ss.Components(buy_button=ss.BuyButton(True))
        ),
    ]
    results = await client.customer_sessions.create_many(items, concurrency=1)
    assert [r.ok for r in results] == [True, True]
    bodies = sorted(r.body for r in fake.requests)
    assert bodies == [
        "components[buy_button][enabled]=true&customer_account=acct_1",
        "components[pricing_table][enabled]=true&customer=cus_1&expand[0]=customer",
    ]


async def test_a_collision_names_list_items_by_index(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    with pytest.raises(ss.ValidationError) as info:
        await client.customer_sessions.create(
            customer="cus_1",
            components={"pricing_table": {"enabled": True}},
            expand=["customer"],
            extra_params={"expand": ["x"]},
        )
    assert info.value.param == "extra_params.expand[0]"
    assert info.value.message.startswith(
        "extra_params.expand[0]: collides with the named parameter expand[0]"
    )
    assert fake.requests == []


@pytest.mark.parametrize(("item", "shown"), [(5, "int"), ("x", "str"), (None, "NoneType")])
async def test_a_batch_item_that_is_no_mapping_is_named_by_type(
    client: ss.AsyncClient, fake: FakeStripe, item: Any, shown: str
) -> None:
    results = await client.customer_sessions.create_many([item], concurrency=1)
    error = results[0].error
    assert isinstance(error, ss.ValidationError)
    assert error.param == "params"
    assert error.message == f"params: expected a mapping or CreateParams, got {shown}"
    assert error.type == "validation_error"
    assert fake.requests == []


@pytest.mark.parametrize(
    ("components", "param", "reason"),
    [
        (
            {"pricing_table": 5},
            "components.pricing_table",
            "expected a mapping or PricingTable, got int",
        ),
        (
            {"pricing_table": {"enabled": "yes"}},
            "components.pricing_table.enabled",
            "expected true or false, got 'yes'",
        ),
        ({"pricing_table": {}}, "components.pricing_table.enabled", "is required"),
        ("x", "components", "expected a mapping or Components, got str"),
    ],
)
def test_a_refusal_is_a_validation_error_naming_the_path(
    components: Any, param: str, reason: str
) -> None:
    with pytest.raises(ss.ValidationError) as info:
        encode_create(components, "cus_1")
    assert info.value.param == param
    assert info.value.message == f"{param}: {reason}"
    assert info.value.type == "validation_error"


@pytest.mark.parametrize(
    ("customer", "reason"),
    [
        (5, "expected a string, got int"),
        (b"cus_1", "expected a string, got bytes"),
        ("c" * 5001, "is longer than 5000 characters"),
        ("cus_\ud800", "is not valid Unicode text (a lone surrogate?)"),
        ("\udcff", "is not valid Unicode text (a lone surrogate?)"),
    ],
)
def test_a_bad_string_is_refused_by_name(customer: Any, reason: str) -> None:
    with pytest.raises(ss.ValidationError) as info:
        encode_create({"pricing_table": {"enabled": True}}, customer)
    assert info.value.param == "customer"
    assert info.value.message == f"customer: {reason}"


@pytest.mark.parametrize(
    ("customer", "sent"),
    [("c" * 5000, "c" * 5000), ("cus_é", "cus_%C3%A9"), ("a b&c", "a+b%26c")],
)
def test_a_string_up_to_5000_characters_is_sent_quoted(customer: str, sent: str) -> None:
    body = encode_create({"pricing_table": {"enabled": True}}, customer)
    assert body == f"components[pricing_table][enabled]=true&customer={sent}"


def test_any_mapping_is_read_like_a_dict() -> None:
    # a read-only mapping (not a dict) at each level: checked the same, limits included
    def frozen(limit: int) -> Any:
        features = MappingProxyType({"payment_method_redisplay_limit": limit})
        return MappingProxyType(
            {"payment_element": MappingProxyType({"enabled": True, "features": features})}
        )

    assert encode_create(frozen(10), "cus_1", extra_params=MappingProxyType({"a": 1})) == (
        f"components[payment_element][enabled]=true&{LIMIT_KEY}=10&customer=cus_1&a=1"
    )
    with pytest.raises(ss.ValidationError) as info:
        encode_create(frozen(11), "cus_1")
    assert info.value.message == f"{LIMIT_PATH}: must be between 0 and 10, got 11"


@pytest.mark.parametrize(
    ("extra_keys", "name"),
    [
        ({"zz": 1, "b": 2}, "b"),  # the first unknown key in sorted order
        ({1: True, "zz": 1}, "1"),  # keys of any type, compared by their repr
        ({"\ud800": 1}, "'\\ud800'"),  # text that cannot be sent: its repr
        ({None: 1}, "None"),
    ],
)
def test_an_unknown_key_is_named_with_the_known_ones(extra_keys: dict[Any, Any], name: str) -> None:
    components = {"customer_sheet": {"enabled": True, **extra_keys}}
    with pytest.raises(ss.ValidationError) as info:
        encode_create(components, "cus_1")
    assert info.value.param == f"components.customer_sheet.{name}"
    assert info.value.message == (
        f"components.customer_sheet.{name}: unknown parameter (known here: enabled, features)"
    )


@pytest.mark.parametrize(
    ("expand", "param", "reason"),
    [
        ("customer", "expand", "expected a list, got str"),
        ({"customer": 1}, "expand", "expected a list, got dict"),
        (["customer", 5], "expand[1]", "expected a string, got int"),
    ],
)
def test_expand_is_a_list_of_strings(expand: Any, param: str, reason: str) -> None:
    with pytest.raises(ss.ValidationError) as info:
        encode_create({"pricing_table": {"enabled": True}}, "cus_1", expand=expand)
    assert info.value.param == param
    assert info.value.message == f"{param}: {reason}"


class _FailingMapping(Mapping[str, Any]):
    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("the caller's mapping fails")

    def __iter__(self) -> Iterator[str]:
        return iter(["enabled"])

    def __len__(self) -> int:
        return 1


class _FailingSequence(Sequence[str]):
    def __getitem__(self, index: Any) -> Any:
        raise LookupError("the caller's sequence fails")

    def __len__(self) -> int:
        return 1


PRICING: Any = {"pricing_table": {"enabled": True}}


@pytest.mark.parametrize(
    ("components", "kwargs", "param", "reason"),
    [
        (None, {}, "components", "is required: enable at least one component"),
        (
            {"pricing_table": {"enabled": False}},
            {},
            "components",
            "at least one component must be enabled",
        ),
        ({}, {}, "components", "at least one component must be enabled"),
        (
            PRICING,
            {"customer": None},
            "customer",
            "give customer (cus_...) or customer_account (acct_...)",
        ),
        (PRICING, {"extra_params": [("a", 1)]}, "extra_params", "expected a mapping, got list"),
        (PRICING, {"extra_params": "a=1"}, "extra_params", "expected a mapping, got str"),
        ({"pricing_table": _FailingMapping()}, {}, "params", "could not be read: RuntimeError"),
        (PRICING, {"expand": _FailingSequence()}, "params", "could not be read: LookupError"),
    ],
    ids=["none", "disabled", "empty", "no-customer", "extra-list", "extra-str", "mapping", "seq"],
)
def test_a_create_is_refused_by_name(
    components: Any, kwargs: dict[str, Any], param: str, reason: str
) -> None:
    kwargs = {"customer": "cus_1", **kwargs}
    with pytest.raises(ss.ValidationError) as info:
        encode_create(components, **kwargs)
    assert info.value.param == param
    assert info.value.message == f"{param}: {reason}"
    assert info.value.type == "validation_error"
    # raised outside any handler: no chained error holds the caller's objects
    assert info.value.__context__ is None and info.value.__cause__ is None


def test_a_preview_component_needs_a_preview_version() -> None:
    tax_id = {"tax_id_element": {"enabled": True}}
    body = encode_create(tax_id, "cus_1", stripe_version="2025-10-29.preview")
    assert body == "components[tax_id_element][enabled]=true&customer=cus_1"
    for version in ["2026-10-28.endive", None]:
        with pytest.raises(ss.ValidationError) as info:
            encode_create(tax_id, "cus_1", stripe_version=version)
        assert info.value.param == "components.tax_id_element"
        assert "preview" in info.value.message
