"""Stripe form encoding: the contract's examples and a round-trip property."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stripe_sessions._wire.form import EncodeError, encode, join
from tests.helpers import as_form, decode


def test_nested_objects_use_brackets() -> None:
    body = encode(
        {"components": {"payment_element": {"features": {"payment_method_save": "enabled"}}}}
    )
    assert body == "components[payment_element][features][payment_method_save]=enabled"


def test_lists_are_indexed() -> None:
    assert encode({"expand": ["customer", "x"]}) == "expand[0]=customer&expand[1]=x"


def test_list_of_objects() -> None:
    assert encode({"a": [{"k": "v"}, {"k": "w"}]}) == "a[0][k]=v&a[1][k]=w"


def test_booleans_and_integers() -> None:
    assert encode({"t": True, "f": False, "n": 10}) == "t=true&f=false&n=10"


def test_none_is_left_out_and_empty_string_is_sent() -> None:
    assert encode({"a": None, "b": "", "c": "x"}) == "b=&c=x"


def test_values_are_percent_encoded_and_brackets_kept() -> None:
    assert encode({"m": {"note": "a&b=c d/é"}}) == "m[note]=a%26b%3Dc+d%2F%C3%A9"


def test_decode_accepts_empty_bracket_lists() -> None:
    assert decode("expand[]=customer&expand[]=x") == {"expand": ["customer", "x"]}


def test_decode_rejects_value_and_hash_at_once() -> None:
    with pytest.raises(ValueError, match="both as a value and a hash"):
        decode("a=1&a[b]=2")


_key = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
_scalar = st.one_of(st.booleans(), st.integers(-(10**12), 10**12), st.text(min_size=1, max_size=20))
_value = st.recursive(
    _scalar,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=4),
        st.dictionaries(_key, inner, min_size=1, max_size=4),
    ),
    max_leaves=20,
)


@given(st.dictionaries(_key, _value, min_size=1, max_size=5))
def test_decode_inverts_encode(params: dict[str, Any]) -> None:
    assert decode(encode(params)) == as_form(params)


@given(st.lists(st.tuples(st.text(max_size=12), st.text(max_size=12)), max_size=4))
def test_join_quotes_exactly_as_quote_plus(pairs: list[tuple[str, str]]) -> None:
    # join skips quote_plus for text that needs no quoting: the output must not change.
    expected = "&".join(f"{quote_plus(k, safe='[]')}={quote_plus(v)}" for k, v in pairs)
    assert join(pairs) == expected


@given(st.text(max_size=6), st.sampled_from("[]"), st.text(max_size=6))
def test_a_key_with_a_bracket_is_refused_not_sent_as_nesting(
    head: str, bracket: str, tail: str
) -> None:
    key = head + bracket + tail
    with pytest.raises(EncodeError, match=r"must not contain '\['") as e:
        encode({"metadata": {key: "x"}})
    assert e.value.path == f"metadata.{key}"


@pytest.mark.parametrize("key", ["00", "01", "\u0660", "1"])
def test_decode_makes_lists_of_canonical_indexes_only(key: str) -> None:
    # A key like "00" is a hash key, not list index 0 (the fake answered 500 to it).
    got = decode(encode({"metadata": {key: "x"}}))
    assert got == {"metadata": {key: "x"}}
