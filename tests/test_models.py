"""Response models: structuring of Stripe's bodies, coverage of the schema, secrets kept out."""

from __future__ import annotations

import copy
import json
import pickle
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import stripe_sessions as ss
from stripe_sessions._wire.converter import build_converter, get_converter, structure_session
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING, fixture_json

STRICT = build_converter(strict=True)
SPEC = "customer_sessions.openapi.json"
SECRET = "cuss_secret_QXhWeUEtZoDV8FHnNbPiBHmAkXKnqYLGMGq7LLf8ODSQ8gL"


@pytest.mark.parametrize(
    "name", ["customer_session.json", "customer_session.expanded_customer.json"]
)
def test_models_cover_every_property_of_the_examples(name: str) -> None:
    """A converter that forbids unknown keys structures Stripe's bodies: nothing is unmodelled."""
    session = structure_session(fixture_json(name), "req_1", conv=STRICT)
    assert session.client_secret == SECRET


def test_models_cover_every_property_of_the_schema() -> None:
    """Each property in the OpenAPI schema of the session has a field of the same name."""
    spec = json.loads((Path(ss.__file__).parent / "testing" / SPEC).read_text())
    schemas = spec["components"]["schemas"]
    pairs = {
        "customer_session": ss.CustomerSession,
        "customer_session_resource_components": ss.Components,
    }
    prefix = "customer_session_resource_components_resource_"
    for name in ("active_entitlements", "buy_button", "customer_portal", "pricing_table"):
        pairs[prefix + name] = getattr(ss, "".join(p.title() for p in name.split("_")))
    for name in ("customer_sheet", "mobile_payment_element", "payment_element"):
        cls = getattr(ss, "".join(p.title() for p in name.split("_")))
        pairs[prefix + name] = cls
        pairs[prefix + name + "_resource_features"] = getattr(ss, cls.__name__ + "Features")
    assert len(pairs) == 12
    for schema_name, cls in pairs.items():
        fields = {f.name for f in attrs.fields(cls)}
        assert set(schemas[schema_name]["properties"]) <= fields, schema_name


def test_timestamps_are_aware_utc_datetimes() -> None:
    session = structure_session(fixture_json("customer_session.json"))
    assert session.created == datetime(2009, 2, 13, 23, 31, 30, tzinfo=timezone.utc)
    assert session.expires_at.tzinfo is timezone.utc


def test_expanded_customer_is_a_customer_object() -> None:
    session = structure_session(fixture_json("customer_session.expanded_customer.json"))
    assert isinstance(session.customer, ss.Customer)
    assert session.customer.id == "cus_QXg1o8vcGmoR32"
    assert session.customer_id == "cus_QXg1o8vcGmoR32"
    assert session.customer.invoice_settings is not None


def test_unexpanded_customer_is_its_id() -> None:
    session = structure_session(fixture_json("customer_session.json"))
    assert session.customer == "cus_QXg1o8vcGmoR32"
    assert session.customer_id == "cus_QXg1o8vcGmoR32"


def test_unknown_fields_and_enum_values_do_not_break_and_stay_reachable() -> None:
    body: dict[str, Any] = copy.deepcopy(fixture_json("customer_session.json"))
    body["brand_new_field"] = {"x": 1}
    body["components"]["hologram"] = {"enabled": True}
    features = body["components"]["payment_element"]["features"]
    features["payment_method_redisplay"] = "sometimes"
    features["payment_method_allow_redisplay_filters"] = ["always", "quantum"]
    features["payment_method_new_toggle"] = "enabled"
    session = structure_session(body)
    assert session.components is not None
    assert session.components.payment_element is not None
    pe = session.components.payment_element.features
    assert pe is not None
    assert pe.payment_method_redisplay == "sometimes"
    assert pe.payment_method_allow_redisplay_filters == ("always", "quantum")
    assert session.to_dict()["brand_new_field"] == {"x": 1}
    assert session.to_dict()["components"]["hologram"] == {"enabled": True}


def test_to_dict_gives_back_stripes_json_and_a_copy() -> None:
    body = fixture_json("customer_session.expanded_customer.json")
    session = structure_session(copy.deepcopy(body))
    out = session.to_dict()
    assert out == body
    out["customer"]["id"] = "changed"
    assert session.to_dict()["customer"]["id"] == "cus_QXg1o8vcGmoR32"


def test_client_secret_is_not_in_repr_or_str() -> None:
    session = structure_session(fixture_json("customer_session.json"), "req_1")
    assert SECRET not in repr(session)
    assert SECRET not in str(session)
    assert "req_1" in repr(session)
    assert repr(session).startswith("CustomerSession(created=datetime.datetime(2009, 2, 13")
    assert "components=Components(active_entitlements=ActiveEntitlements(enabled=False)" in repr(
        session
    )


async def test_a_body_of_the_wrong_shape_is_an_api_error(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    body = fixture_json("customer_session.json")
    body["created"] = "yesterday"
    fake.fail_next(200, body=body)
    with pytest.raises(ss.APIError, match="could not read") as info:
        await client.customer_sessions.create(customer=body["customer"], components=PRICING)
    assert info.value.request_id == fake.requests[-1].request_id
    assert SECRET not in str(info.value)


async def test_unreadable_components_do_not_cost_the_secret(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    # components is structured on first read: a shape this SDK cannot read fails
    # there, with Stripe's JSON still at hand, not in create().
    body = fixture_json("customer_session.json")
    body["components"]["pricing_table"] = ["not", "an", "object"]
    fake.fail_next(200, body=body)
    session = await client.customer_sessions.create(customer=body["customer"], components=PRICING)
    assert session.client_secret == SECRET
    with pytest.raises(ss.APIError, match="could not read") as info:
        _ = session.components
    assert info.value.request_id == session.request_id
    assert "components=<unreadable: see to_dict()>" in repr(session)  # a repr never raises
    assert SECRET not in repr(session)
    assert session.to_dict()["components"]["pricing_table"] == ["not", "an", "object"]


def test_a_session_with_unreadable_components_compares_copies_and_pickles() -> None:
    """Eq, repr, copy and pickle never read components: unreadable ones do not break them."""
    body = fixture_json("customer_session.json")
    body["components"]["pricing_table"] = ["not", "an", "object"]
    session = structure_session(body, "req_1")
    for twin in (copy.copy(session), copy.deepcopy(session), pickle.loads(pickle.dumps(session))):
        assert twin == session
        assert twin.client_secret == SECRET and twin.request_id == "req_1"
        assert "components=<unreadable: see to_dict()>" in repr(twin)
        with pytest.raises(ss.APIError, match="could not read"):
            _ = twin.components
    other = copy.deepcopy(body)
    other["components"]["pricing_table"] = ["other"]
    assert structure_session(other, "req_1") != session  # compared by what Stripe sent
    assert structure_session(fixture_json("customer_session.json"), "req_1") != session


@pytest.mark.parametrize(
    "name", ["customer_session.json", "customer_session.expanded_customer.json"]
)
def test_lazy_components_equal_eager_ones(name: str) -> None:
    lazy = structure_session(fixture_json(name), "req_1")
    eager = structure_session(fixture_json(name), "req_1", conv=STRICT)
    assert lazy == eager  # reading lazy.components (eq does) structures it
    assert lazy.components is lazy.components  # once, then kept
    assert pickle.loads(pickle.dumps(lazy)) == eager
    assert attrs.evolve(lazy, livemode=True).components == eager.components
    with pytest.raises(AttributeError, match="no attribute 'component'"):
        _ = lazy.component  # type: ignore[attr-defined]


_ids = st.none() | st.text(max_size=30)
_json = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
_bodies = st.fixed_dictionaries(
    {
        "object": st.just("customer_session"),
        # Often a plausible secret (Stripe's prefix, printable ASCII), else any text.
        "client_secret": st.text(max_size=80)
        | st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7F), max_size=20).map(
            "cuss_secret_".__add__
        ),
        # Expiring after creation, as Stripe's do; a change below may undo that.
        "created": st.integers(0, 2**32),
        "expires_at": st.integers(2**32, 2**33),
        "livemode": st.booleans(),
        "customer": _ids,
        "components": st.just(fixture_json("customer_session.json")["components"]),
    },
    optional={"customer_account": _ids, "new_field": st.integers()},
)
#: One field replaced by any JSON value (often of the wrong type), or removed.
_changes = (
    st.none()
    | st.tuples(
        st.sampled_from(
            [
                "object",
                "client_secret",
                "created",
                "expires_at",
                "livemode",
                "customer",
                "customer_account",
                "components",
            ]
        ),
        _json | st.lists(_json, max_size=2) | st.just(...) | st.integers(-(2**70), 2**70),
    )
    | st.tuples(st.sampled_from(["created", "expires_at"]), st.integers(0, 2**33))
)
# (the last: a timestamp in range, often putting expires_at before created)


@given(body=_bodies, change=_changes, request_id=_ids, replayed=st.booleans())
def test_the_fast_path_builds_what_the_converter_builds(
    body: dict[str, Any], change: tuple[str, Any] | None, request_id: str | None, replayed: bool
) -> None:
    """The common answer is built without cattrs' generic hooks: same session, same refusals."""
    if change is not None:
        name, value = change
        if value is ...:
            body.pop(name, None)
        else:
            body[name] = value
    try:
        fast = structure_session(body, request_id, replayed)
    except ss.APIError as e:
        with pytest.raises(ss.APIError) as generic_error:
            structure_session(body, request_id, replayed, conv=get_converter())
        assert str(generic_error.value) == str(e)
        return
    generic = structure_session(body, request_id, replayed, conv=get_converter())
    for field in attrs.fields(ss.CustomerSession):
        assert getattr(fast, field.name) == getattr(generic, field.name), field.name
    assert fast.to_dict() == body


@pytest.mark.parametrize("conv", [None, get_converter(), STRICT], ids=["fast", "generic", "strict"])
def test_a_session_that_expires_before_it_was_created_is_refused(conv: Any) -> None:
    body = fixture_json("customer_session.json")
    body["expires_at"] = body["created"] - 1
    with pytest.raises(ss.APIError) as info:
        structure_session(body, "req_1", conv=conv)
    message = str(info.value)
    assert f"expires_at ({body['expires_at']}) is earlier than created ({body['created']})" in (
        message
    )
    assert SECRET not in message and SECRET not in repr(info.value)
    assert info.value.request_id == "req_1"


@pytest.mark.parametrize("conv", [None, get_converter(), STRICT], ids=["fast", "generic", "strict"])
def test_a_session_with_an_empty_client_secret_is_refused(conv: Any) -> None:
    body = fixture_json("customer_session.json")
    body["client_secret"] = ""
    with pytest.raises(ss.APIError, match="client_secret: expected a non-empty string"):
        structure_session(body, conv=conv)


def test_a_session_that_expires_as_it_is_created_is_read() -> None:
    body = fixture_json("customer_session.json")
    body["expires_at"] = body["created"]
    assert structure_session(body).expires_at == structure_session(body).created


async def test_an_impossible_session_from_the_server_is_an_api_error(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    body = fixture_json("customer_session.json")
    body["expires_at"] = body["created"] - 3600
    fake.fail_next(200, body=body)
    with pytest.raises(ss.APIError, match="earlier than created") as info:
        await client.customer_sessions.create(customer=body["customer"], components=PRICING)
    assert info.value.idempotency_key == fake.requests[-1].idempotency_key
    assert SECRET not in str(info.value)


def test_sessions_are_frozen() -> None:
    session = structure_session(fixture_json("customer_session.json"))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        session.client_secret = "x"  # type: ignore[misc]


async def test_request_id_comes_from_the_response(client: ss.AsyncClient, fake: FakeStripe) -> None:
    session = await client.customer_sessions.create(customer="cus_1", components=PRICING)
    assert session.request_id == fake.requests[-1].request_id
    assert session.request_id is not None and session.request_id.startswith("req_")
    assert session.idempotent_replayed is False


async def test_expand_customer_end_to_end(client: ss.AsyncClient, fake: FakeStripe) -> None:
    session = await client.customer_sessions.create(
        customer="cus_9", components=PRICING, expand=["customer"]
    )
    assert isinstance(session.customer, ss.Customer)
    assert session.customer.id == "cus_9"
    assert fake.requests[-1].form is not None
    assert fake.requests[-1].form["expand"] == ["customer"]


def test_errors_survive_pickling() -> None:
    err = ss.InvalidRequestError("bad", http_status=400, code="x", request_id="req_1")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is ss.InvalidRequestError
    assert (back.http_status, back.code, back.request_id) == (400, "x", "req_1")


def test_a_pickled_session_reads_its_components_in_a_fresh_process() -> None:
    # The lazy components are read by the converter, which the models do not import:
    # a process that only unpickles a session must still be able to read them.
    session = structure_session(fixture_json("customer_session.json"), "req_1")
    code = (
        "import pickle, sys; s = pickle.loads(sys.stdin.buffer.read()); "
        "print(s.components.pricing_table.enabled, s.components.customer_sheet.enabled)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], input=pickle.dumps(session), capture_output=True, check=True
    )
    assert out.stdout.decode().split() == ["True", "True"]
