"""Named parameters win: an ``extra_params`` key that collides with one is refused.

A collision is a key given both ways, or one that would replace or extend a named
one (a value where a named object is, an object under a named value). Keys that do
not collide merge at any depth. ``create`` and ``create_many`` items share the rule.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stripe_sessions as ss
from stripe_sessions._wire.encode import encode_create
from stripe_sessions._wire.form import encode
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING, decode, examples

_NAMES = (
    "components",
    "pricing_table",
    "payment_element",
    "enabled",
    "features",
    "payment_method_save",
    "customer",
    "customer_account",
    "expand",
    "future",
)
_leaf = (
    st.booleans()
    | st.integers(-5, 5)
    | st.text("abc", max_size=2)
    | st.lists(st.text("ab", min_size=1, max_size=2), max_size=2)
    | st.just({})
)
_extra = st.recursive(
    _leaf,
    lambda inner: st.dictionaries(st.sampled_from(_NAMES), inner, min_size=1, max_size=3),
    max_leaves=6,
).filter(lambda v: isinstance(v, dict))
_components = st.fixed_dictionaries(
    {"pricing_table": st.fixed_dictionaries({"enabled": st.just(True)})},
    optional={
        "payment_element": st.fixed_dictionaries(
            {"enabled": st.booleans()},
            optional={
                "features": st.fixed_dictionaries(
                    {"payment_method_save": st.sampled_from(["enabled", "disabled"])}
                )
            },
        )
    },
)


def leaves(value: Any, path: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every path that carries a value once encoded (an empty container is one too)."""
    if isinstance(value, dict) and value:
        return set().union(*(leaves(v, (*path, k)) for k, v in value.items()))
    if isinstance(value, list) and value:
        return set().union(*(leaves(v, (*path, str(i))) for i, v in enumerate(value)))
    return {path}


def collides(named: dict[str, Any], extra: dict[str, Any]) -> bool:
    """The oracle: some path of one is equal to, or an ancestor of, a path of the other."""
    ours, theirs = leaves(named), leaves(extra) if extra else set()
    return any(a[: len(b)] == b or b[: len(a)] == a for a in ours for b in theirs)


def as_hash(value: Any) -> Any:
    """A list as the form sees it beside other keys: a hash of its indexes."""
    return {str(i): v for i, v in enumerate(value)} if isinstance(value, list) else value


def merged(named: Any, extra: Any) -> Any:
    named, extra = as_hash(named), as_hash(extra)
    if isinstance(named, dict) and isinstance(extra, dict):
        out = dict(named)
        for k, v in extra.items():
            out[k] = merged(out[k], v) if k in out else v
        return out
    raise AssertionError("a collision reached the merge")


@settings(max_examples=examples(500))
@given(
    components=_components,
    expand=st.none() | st.just(["customer"]) | st.just([]),
    extra=_extra,
)
def test_collisions_are_refused_and_the_rest_merges(
    components: dict[str, Any], expand: list[str] | None, extra: dict[str, Any]
) -> None:
    named: dict[str, Any] = {"components": components, "customer": "cus_1"}
    if expand is not None:
        named["expand"] = expand
    try:
        body = encode_create(components, "cus_1", None, expand, extra)
    except ss.ValidationError as e:
        assert collides(named, extra), str(e)
        assert e.param is not None and e.param.startswith("extra_params.")
        assert "collides with the named parameter" in str(e)
        return
    assert not collides(named, extra)
    assert decode(body) == decode(encode(merged(named, extra)))


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ({"customer": "cus_evil"}, "extra_params.customer"),
        (
            {"components": {"pricing_table": {"enabled": False}}},
            "extra_params.components.pricing_table.enabled",
        ),
        ({"components": {"pricing_table": "x"}}, "extra_params.components.pricing_table"),
        ({"components": {}}, "extra_params.components"),
        ({"customer": {"nested": "x"}}, "extra_params.customer.nested"),
    ],
)
async def test_create_sends_nothing_on_a_collision(
    client: ss.AsyncClient, fake: FakeStripe, extra: dict[str, Any], path: str
) -> None:
    with pytest.raises(ss.ValidationError) as info:
        await client.customer_sessions.create(
            customer="cus_1", components=PRICING, extra_params=extra
        )
    assert info.value.param == path
    assert fake.requests == []


async def test_create_many_items_follow_the_same_rule(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    items = [
        {"customer": "cus_1", "components": PRICING, "extra_params": {"customer": "cus_evil"}},
        {
            "customer": "cus_2",
            "components": PRICING,
            "extra_params": {"components": {"buy_button": {"enabled": True}}},
        },
    ]
    results = await client.customer_sessions.create_many(items, rate_limit=None)
    assert not results[0].ok and isinstance(results[0].error, ss.ValidationError)
    assert results[0].error.param == "extra_params.customer"
    assert results[1].ok
    assert [r.form["customer"] for r in fake.requests] == ["cus_2"]
    assert fake.requests[0].form["components"] == {
        "pricing_table": {"enabled": "true"},
        "buy_button": {"enabled": "true"},
    }
