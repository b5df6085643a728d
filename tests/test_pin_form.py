"""Form encoding, pinned where mutation testing (``make mutate``) found it unpinned.

What goes on the wire for ``extra_params`` (which is form-encoded as given, only
checked to be encodable) and what is refused, with the path and reason a caller sees.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

import stripe_sessions as ss
from stripe_sessions._wire.form import EncodeError, encode
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING

NAMED = "components[pricing_table][enabled]=true&customer=cus_1"


async def _sent(client: ss.AsyncClient, fake: FakeStripe, extra: Any) -> str:
    """The body the server got for a create with ``extra_params=extra``, minus the named part."""
    # The fake refuses fields it does not know: what matters is what was sent.
    with contextlib.suppress(ss.InvalidRequestError):
        await client.customer_sessions.create(
            customer="cus_1", components=PRICING, extra_params=extra
        )
    body = fake.requests[-1].body
    assert body.startswith(NAMED + "&")
    return body[len(NAMED) + 1 :]


async def _refused(client: ss.AsyncClient, extra: Any) -> ss.ValidationError:
    with pytest.raises(ss.ValidationError) as info:
        await client.customer_sessions.create(
            customer="cus_1", components=PRICING, extra_params=extra
        )
    return info.value


@pytest.mark.parametrize(
    ("value", "sent"),
    [(0.5, "0.5"), (-2.25, "-2.25"), (1e-7, "1e-07"), (0.0, "0.0"), (3.0, "3.0")],
)
async def test_a_finite_float_is_sent_as_its_repr(
    client: ss.AsyncClient, fake: FakeStripe, value: float, sent: str
) -> None:
    assert await _sent(client, fake, {"metadata": {"x": value}}) == f"metadata[x]={sent}"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
async def test_a_float_that_is_not_finite_is_refused_by_path(
    client: ss.AsyncClient, fake: FakeStripe, value: float
) -> None:
    error = await _refused(client, {"metadata": {"x": value}})
    assert error.param == "extra_params.metadata.x"
    assert str(error).startswith(f"extra_params.metadata.x: must be a finite number, got {value}")
    assert fake.requests == []


@pytest.mark.parametrize("value", [2**63 - 1, -(2**63), 0, -1, 1])
async def test_every_64_bit_integer_is_sent(
    client: ss.AsyncClient, fake: FakeStripe, value: int
) -> None:
    assert await _sent(client, fake, {"n": value}) == f"n={value}"


@pytest.mark.parametrize(
    "value", [2**63, -(2**63) - 1, 2**64, 10**5000], ids=["2**63", "-2**63-1", "2**64", "10**5000"]
)
async def test_an_integer_beyond_64_bits_is_refused_by_path(
    client: ss.AsyncClient, fake: FakeStripe, value: int
) -> None:
    error = await _refused(client, {"a": [{"n": value}]})
    assert error.param == "extra_params.a[0].n"
    assert str(error).startswith("extra_params.a[0].n: is out of range for a 64-bit integer")
    assert fake.requests == []


async def test_booleans_are_true_and_false_not_1_and_0(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    assert await _sent(client, fake, {"t": True, "f": False}) == "t=true&f=false"


@pytest.mark.parametrize(
    ("extra", "sent"),
    [
        ({"metadata": {}}, "metadata="),
        ({"tags": []}, "tags="),
        ({"tags": ()}, "tags="),
        ({"a": {"b": {}}}, "a[b]="),
        ({"a": [[], {}]}, "a[0]=&a[1]="),
        ({"a": {"b": None, "c": 1}}, "a[c]=1"),
    ],
)
async def test_an_empty_mapping_or_list_is_sent_as_key_equals_nothing(
    client: ss.AsyncClient, fake: FakeStripe, extra: Any, sent: str
) -> None:
    """``key=`` is how Stripe clears a field; None leaves the key out."""
    assert await _sent(client, fake, extra) == sent


async def test_an_empty_extra_params_adds_nothing(client: ss.AsyncClient, fake: FakeStripe) -> None:
    await client.customer_sessions.create(customer="cus_1", components=PRICING, extra_params={})
    assert fake.requests[-1].body == NAMED


async def test_text_is_percent_encoded_keys_keep_their_brackets(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    sent = await _sent(client, fake, {"m": {"k y": "a b&c", "é": "ü", "ok_.~-": "A-z_0.9~"}})
    assert sent == "m[k+y]=a+b%26c&m[%C3%A9]=%C3%BC&m[ok_.~-]=A-z_0.9~"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"a": {1: "x"}}, "extra_params.a"),
        ({"a": {"": "x"}}, "extra_params.a"),
        ({"a": {"\ud800": "x"}}, "extra_params.a"),
        ({"": "x"}, "extra_params"),
    ],
)
async def test_a_key_that_is_not_nonempty_text_is_refused(
    client: ss.AsyncClient, fake: FakeStripe, extra: Any, param: str
) -> None:
    error = await _refused(client, extra)
    assert error.param == param
    assert error.message.startswith(
        f"{param}: keys must be non-empty strings of valid Unicode text"
    )
    assert fake.requests == []


async def test_a_key_with_a_bracket_is_refused_with_its_own_path(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    error = await _refused(client, {"a": {"b[c]": 1}})
    assert error.param == "extra_params.a.b[c]"
    assert error.message == (
        "extra_params.a.b[c]: keys must not contain '[' or ']' (the server reads them as nesting)"
    )
    top = await _refused(client, {"x]": 1})
    assert top.param == "extra_params.x]"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("\ud800", "is not valid Unicode text (a lone surrogate?)"),
        (b"bytes", "cannot form-encode a value of type bytes"),
        ({1, 2}, "cannot form-encode a value of type set"),
    ],
)
async def test_a_value_that_cannot_be_sent_is_refused_by_path(
    client: ss.AsyncClient, fake: FakeStripe, value: Any, message: str
) -> None:
    error = await _refused(client, {"a": {"b": [0, value]}})
    assert error.param == "extra_params.a.b[1]"
    assert str(error).startswith(f"extra_params.a.b[1]: {message}")


def _nested(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = {"a": value}
    return value


async def test_nesting_is_sent_to_32_levels_and_refused_beyond(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    sent = await _sent(client, fake, _nested(32))
    assert sent == "a" + "[a]" * 31 + "=x"
    error = await _refused(client, _nested(33))
    assert error.param == "extra_params" + ".a" * 33
    assert "is nested more than 32 levels deep (does it contain itself?)" in str(error)


async def test_a_mapping_that_contains_itself_is_refused_not_a_recursion_error(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    loop: dict[str, Any] = {}
    loop["a"] = loop
    error = await _refused(client, loop)
    assert "is nested more than 32 levels deep" in str(error)


def _listed(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


async def test_lists_count_towards_the_32_levels_too(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    sent = await _sent(client, fake, {"a": _listed(31)})
    assert sent == "a" + "[0]" * 31 + "=x"
    error = await _refused(client, {"a": _listed(32)})
    assert error.param == "extra_params.a" + "[0]" * 32
    assert error.message == (
        f"{error.param}: is nested more than 32 levels deep (does it contain itself?)"
    )
    loop: list[Any] = []
    loop.append(loop)
    assert "is nested more than 32 levels deep" in str(await _refused(client, {"a": loop}))


def test_an_encode_error_names_its_path_when_it_has_one() -> None:
    """EncodeError is the form module's own (extra_params turns it into a ValidationError)."""
    with pytest.raises(EncodeError) as info:
        encode({"a": [float("nan")]})
    assert str(info.value) == "a[0]: must be a finite number, got nan"
    assert (info.value.path, info.value.reason) == ("a[0]", "must be a finite number, got nan")
    assert str(EncodeError("", "is bad")) == "is bad"
