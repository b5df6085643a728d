"""Parameters: every schema field is sendable, bad input is named by path and never sent."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import stripe_sessions as ss
from stripe_sessions._wire.encode import encode_create
from stripe_sessions._wire.form import EncodeError, encode, is_text
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING, as_form

FULL_DICT: dict[str, Any] = {
    "active_entitlements": {"enabled": True},
    "buy_button": {"enabled": False},
    "customer_portal": {"enabled": True},
    "pricing_table": {"enabled": True},
    "customer_sheet": {
        "enabled": True,
        "features": {
            "payment_method_allow_redisplay_filters": ["always", "limited"],
            "payment_method_remove": "enabled",
        },
    },
    "mobile_payment_element": {
        "enabled": True,
        "features": {
            "payment_method_allow_redisplay_filters": ["unspecified"],
            "payment_method_redisplay": "enabled",
            "payment_method_remove": "disabled",
            "payment_method_save": "enabled",
            "payment_method_save_allow_redisplay_override": "limited",
        },
    },
    "payment_element": {
        "enabled": True,
        "features": {
            "payment_method_allow_redisplay_filters": ["always"],
            "payment_method_redisplay": "enabled",
            "payment_method_redisplay_limit": 10,
            "payment_method_remove": "enabled",
            "payment_method_save": "disabled",
            "payment_method_save_usage": "off_session",
        },
    },
}

FULL_TYPED = ss.Components(
    active_entitlements=ss.ActiveEntitlements(enabled=True),
    buy_button=ss.BuyButton(enabled=False),
    customer_portal=ss.CustomerPortal(enabled=True),
    pricing_table=ss.PricingTable(enabled=True),
    customer_sheet=ss.CustomerSheet(
        enabled=True,
        features=ss.CustomerSheetFeatures(
            payment_method_allow_redisplay_filters=["always", "limited"],
            payment_method_remove="enabled",
        ),
    ),
    mobile_payment_element=ss.MobilePaymentElement(
        enabled=True,
        features=ss.MobilePaymentElementFeatures(
            payment_method_allow_redisplay_filters=["unspecified"],
            payment_method_redisplay="enabled",
            payment_method_remove="disabled",
            payment_method_save="enabled",
            payment_method_save_allow_redisplay_override="limited",
        ),
    ),
    payment_element=ss.PaymentElement(
        enabled=True,
        features=ss.PaymentElementFeatures(
            payment_method_allow_redisplay_filters=["always"],
            payment_method_redisplay="enabled",
            payment_method_redisplay_limit=10,
            payment_method_remove="enabled",
            payment_method_save="disabled",
            payment_method_save_usage="off_session",
        ),
    ),
)


async def test_every_parameter_reaches_the_server_from_a_dict(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    session = await client.customer_sessions.create(
        customer="cus_1", components=FULL_DICT, expand=["customer"]
    )
    form = fake.requests[-1].form
    assert form == {
        "components": as_form(FULL_DICT),
        "customer": "cus_1",
        "expand": ["customer"],
    }
    assert session.components is not None
    assert session.components.payment_element is not None
    assert session.components.payment_element.features is not None
    assert session.components.payment_element.features.payment_method_redisplay_limit == 10


async def test_typed_parameters_send_the_same_body_as_dicts(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    await client.customer_sessions.create(customer="cus_1", components=FULL_DICT)
    await client.customer_sessions.create(customer="cus_1", components=FULL_TYPED)
    assert fake.requests[0].body == fake.requests[1].body


async def test_customer_account_instead_of_customer(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    session = await client.customer_sessions.create(customer_account="acct_123", components=PRICING)
    assert fake.requests[-1].form == {
        "components": {"pricing_table": {"enabled": "true"}},
        "customer_account": "acct_123",
    }
    assert session.customer_account == "acct_123"
    assert session.customer is None


@pytest.mark.parametrize(
    ("kwargs", "path", "words"),
    [
        ({"components": {"bogus": {"enabled": True}}}, "components.bogus", "unknown parameter"),
        (
            {"components": {"payment_element": {"enabled": True, "features": {"nope": 1}}}},
            "components.payment_element.features.nope",
            "unknown parameter",
        ),
        (
            {
                "components": {
                    "payment_element": {
                        "enabled": True,
                        "features": {"payment_method_save": "on"},
                    }
                }
            },
            "components.payment_element.features.payment_method_save",
            "expected one of 'disabled', 'enabled'",
        ),
        (
            {"components": {"pricing_table": {"enabled": "true"}}},
            "components.pricing_table.enabled",
            "expected true or false",
        ),
        ({"components": {"pricing_table": {}}}, "components.pricing_table.enabled", "required"),
        ({"components": {"pricing_table": {"enabled": False}}}, "components", "at least one"),
        ({"components": {}}, "components", "at least one"),
        ({"components": None}, "components", "required"),
        ({"components": "pricing_table"}, "components", "expected a mapping"),
        (
            {
                "components": {
                    "customer_sheet": {
                        "enabled": True,
                        "features": {"payment_method_allow_redisplay_filters": "always"},
                    }
                }
            },
            "components.customer_sheet.features.payment_method_allow_redisplay_filters",
            "expected a list",
        ),
        (
            {
                "components": {
                    "customer_sheet": {
                        "enabled": True,
                        "features": {"payment_method_allow_redisplay_filters": ["sometimes"]},
                    }
                }
            },
            "components.customer_sheet.features.payment_method_allow_redisplay_filters[0]",
            "expected one of",
        ),
        (
            {
                "components": {
                    "payment_element": {
                        "enabled": True,
                        "features": {"payment_method_redisplay_limit": 11},
                    }
                }
            },
            "components.payment_element.features.payment_method_redisplay_limit",
            "between 0 and 10",
        ),
        (
            {
                "components": {
                    "payment_element": {
                        "enabled": True,
                        "features": {"payment_method_redisplay_limit": "3"},
                    }
                }
            },
            "components.payment_element.features.payment_method_redisplay_limit",
            "whole number",
        ),
        ({"components": PRICING, "customer": None}, "customer", "give customer"),
        ({"components": PRICING, "customer": 42}, "customer", "expected a string"),
        ({"components": PRICING, "customer": "x" * 5001}, "customer", "longer than 5000"),
        ({"components": PRICING, "customer": "c", "expand": "customer"}, "expand", "a list"),
        ({"components": PRICING, "customer": "c", "expand": [1]}, "expand[0]", "a string"),
    ],
)
async def test_bad_input_names_its_path_and_sends_nothing(
    client: ss.AsyncClient, fake: FakeStripe, kwargs: dict[str, Any], path: str, words: str
) -> None:
    kwargs.setdefault("customer", "cus_1")
    with pytest.raises(ss.ValidationError) as info:
        await client.customer_sessions.create(**kwargs)
    assert info.value.param == path
    assert str(info.value).startswith(path + ":")
    assert words in str(info.value)
    assert isinstance(info.value, ValueError)
    assert fake.requests == []


def test_typed_classes_are_checked_like_dicts() -> None:
    bad = ss.Components(pricing_table=ss.PricingTable(enabled="yes"))  # type: ignore[arg-type]
    with pytest.raises(ss.ValidationError, match=r"components\.pricing_table\.enabled"):
        encode_create(bad, customer="cus_1")


def test_a_wrong_class_in_a_slot_is_named() -> None:
    bad = ss.Components(pricing_table=ss.BuyButton(enabled=True))  # type: ignore[arg-type]
    with pytest.raises(ss.ValidationError, match="expected a mapping or PricingTable"):
        encode_create(bad, customer="cus_1")


async def test_extra_params_send_unknown_fields_unchecked(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    with pytest.raises(ss.InvalidRequestError) as info:
        await client.customer_sessions.create(
            customer="cus_1",
            components=PRICING,
            extra_params={"components": {"future_widget": {"enabled": True}}},
        )
    # The fake, like Stripe at this version, does not know the field: it was sent.
    assert info.value.param == "components[future_widget]"
    assert fake.requests[-1].form["components"]["future_widget"] == {"enabled": "true"}


def test_extra_params_may_not_replace_a_named_parameter() -> None:
    """Issue #17: ``extra_params={"customer": "cus_evil"}`` silently replaced ``customer=``."""
    with pytest.raises(ss.ValidationError) as info:
        encode_create(
            {"pricing_table": {"enabled": True}},
            customer="cus_1",
            extra_params={"customer": "cus_2"},
        )
    assert info.value.param == "extra_params.customer"
    assert "cus_2" not in str(info.value) or "customer" in str(info.value)


def test_extra_params_merge_beside_named_ones_at_any_depth() -> None:
    body = encode_create(
        {"pricing_table": {"enabled": True}},
        customer="cus_1",
        extra_params={"components": {"pricing_table": {"future": "on"}}, "metadata": {"a": 1}},
    )
    assert body == (
        "components[pricing_table][enabled]=true&customer=cus_1"
        "&components[pricing_table][future]=on&metadata[a]=1"
    )


async def test_bad_idempotency_key_is_refused_before_sending(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    for key in ("", "x" * 256, "bad\nkey"):
        with pytest.raises(ss.ValidationError, match="idempotency_key"):
            await client.customer_sessions.create(
                customer="cus_1", components=PRICING, idempotency_key=key
            )
    assert fake.requests == []


async def test_bad_per_call_timeout_and_retries_are_refused(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    with pytest.raises(ValueError, match="timeout"):
        await client.customer_sessions.create(customer="cus_1", components=PRICING, timeout=0)
    with pytest.raises(ValueError, match="max_retries"):
        await client.customer_sessions.create(customer="cus_1", components=PRICING, max_retries=-1)
    assert fake.requests == []


_TOGGLES = ["active_entitlements", "buy_button", "customer_portal", "pricing_table"]
_text = st.text(min_size=1, max_size=20)


@given(
    enabled=st.lists(st.sampled_from(_TOGGLES), min_size=1, unique=True),
    customer=_text,
    expand=st.lists(_text, max_size=3),
    # Any key but brackets, lone surrogates included: those both encoders refuse.
    metadata=st.dictionaries(
        st.text(st.characters(blacklist_characters="[]"), min_size=1, max_size=8),
        _text,
        max_size=3,
    ),
)
@example(enabled=["pricing_table"], customer="c", expand=[], metadata={"\ud800": "x"})
def test_the_checked_body_is_the_generic_encoding(
    enabled: list[str], customer: str, expand: list[str], metadata: dict[str, str]
) -> None:
    """The walker quotes the caller's text as it goes: same body as the generic encoder.

    A key that is not valid Unicode text (a lone surrogate: it has no UTF-8) is refused
    by both, the checked one with a ValidationError naming the mapping and the key.
    """
    order = [f.name for f in attrs.fields(ss.Components)]
    components = {name: {"enabled": True} for name in order if name in enabled}

    def checked() -> str:
        return encode_create(
            components,
            customer,
            None,
            expand or None,
            {"metadata": metadata} if metadata else None,
        )

    params = {
        "components": components,
        "customer": customer,
        "expand": expand or None,
        "metadata": metadata or None,
    }
    bad = [k for k in metadata if not is_text(k)]
    if not bad:
        assert checked() == encode(params)
        return
    with pytest.raises(ss.ValidationError) as refused:
        checked()
    assert refused.value.param == "extra_params.metadata"
    assert repr(bad[0]) in str(refused.value) or len(repr(bad[0])) > 57
    str(refused.value).encode("utf-8")  # the message itself can be logged as UTF-8
    with pytest.raises(EncodeError):
        encode(params)
