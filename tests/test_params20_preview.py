"""tax_id_element, a preview component: sent only when a ``.preview`` Stripe-Version is in
effect (the call's, else the client's), for create and for batch items; with a GA version
a ValidationError that names the version it needs, and nothing is sent. The fake agrees
with the SDK on which versions are previews, and refuses the component under GA as Stripe
does."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import stripe_sessions as ss
from stripe_sessions._wire.encode import encode_create
from stripe_sessions._wire.preview import preview_allows
from stripe_sessions.testing import FakeStripe
from stripe_sessions.testing._schema import is_preview

PREVIEW = "2025-10-29.preview"
LATER_PREVIEW = "2026-01-28.preview"
TAX: dict[str, Any] = {
    "tax_id_element": {"enabled": True, "features": {"tax_id_save": "enabled"}},
}
BODY_TAX = "components[tax_id_element][enabled]=true"


def client(fake: FakeStripe, **kw: Any) -> ss.AsyncClient:
    return ss.AsyncClient(api_key=fake.api_key, base_url=fake.url, max_retries=0, **kw)


async def test_ga_version_refuses_it_and_sends_nothing(fake: FakeStripe) -> None:
    async with client(fake) as c:
        with pytest.raises(ss.ValidationError) as info:
            await c.customer_sessions.create(customer="cus_1", components=TAX)
    e = info.value
    assert e.param == "components.tax_id_element"
    assert "2025-10-29.preview or later" in str(e)
    assert repr(ss.STRIPE_API_VERSION) in str(e)  # the version in effect
    assert isinstance(e, ValueError)
    assert fake.requests == []


async def test_per_call_preview_sends_it_and_reads_it_back(fake: FakeStripe) -> None:
    async with client(fake) as c:
        s = await c.customer_sessions.create(
            customer="cus_1", components=TAX, stripe_version=PREVIEW
        )
    sent = fake.requests[-1]
    assert sent.headers["Stripe-Version"] == PREVIEW
    assert sent.form["components"]["tax_id_element"] == {
        "enabled": "true",
        "features": {"tax_id_save": "enabled"},
    }
    assert s.components.tax_id_element == ss.TaxIdElement(
        enabled=True,
        features=ss.TaxIdElementFeatures(tax_id_redisplay="disabled", tax_id_save="enabled"),
    )


async def test_per_client_preview_and_per_call_overrides_both_ways(fake: FakeStripe) -> None:
    components = ss.Components(tax_id_element=ss.TaxIdElement(enabled=True))  # the attrs form
    async with client(fake, stripe_version=LATER_PREVIEW) as c:
        await c.customer_sessions.create(customer="cus_1", components=components)
        assert fake.requests[-1].headers["Stripe-Version"] == LATER_PREVIEW
        with pytest.raises(ss.ValidationError, match=r"2026-10-28\.endive"):  # call: GA
            await c.customer_sessions.create(
                customer="cus_1", components=components, stripe_version="2026-10-28.endive"
            )
        ga = c.with_options(stripe_version="2026-10-28.endive")
        with pytest.raises(ss.ValidationError):
            await ga.customer_sessions.create(customer="cus_1", components=components)
        await ga.customer_sessions.create(  # call: preview, over the GA copy
            customer="cus_1", components=components, stripe_version=PREVIEW
        )
    assert [r.headers["Stripe-Version"] for r in fake.requests] == [LATER_PREVIEW, PREVIEW]


async def test_absent_or_none_needs_no_preview(fake: FakeStripe) -> None:
    async with client(fake) as c:
        await c.customer_sessions.create(
            customer="cus_1",
            components={"pricing_table": {"enabled": True}, "tax_id_element": None},
        )
    assert "tax_id_element" not in fake.requests[-1].form["components"]


async def test_batch_items_follow_the_batch_version(fake: FakeStripe) -> None:
    items = [{"customer": f"cus_{i}", "components": TAX} for i in range(3)]
    items.append({"customer": "cus_x", "components": {"pricing_table": {"enabled": True}}})
    async with client(fake) as c:
        ga = await c.customer_sessions.create_many(items, rate_limit=None)
        assert [r.ok for r in ga] == [False, False, False, True]
        assert all(isinstance(r.error, ss.ValidationError) for r in ga[:3])
        assert {r.error.param for r in ga[:3] if r.error} == {"components.tax_id_element"}
        assert len(fake.requests) == 1  # only the GA item was sent
        params = [ss.CreateParams(customer="cus_1", components=TAX)]
        done = await c.customer_sessions.create_many(
            params, stripe_version=PREVIEW, rate_limit=None
        )
        assert done[0].ok, done[0].error
    async with client(fake, stripe_version=PREVIEW) as c:
        refused = await c.customer_sessions.create_many(
            items[:1], stripe_version="2026-10-28.endive", rate_limit=None
        )
        assert isinstance(refused[0].error, ss.ValidationError)
        ok = await c.customer_sessions.create_many(items[:1], rate_limit=None)
        assert ok[0].ok, ok[0].error
    assert [r.headers["Stripe-Version"] for r in fake.requests[1:]] == [PREVIEW, PREVIEW]


@pytest.mark.parametrize(
    "version",
    [
        "2026-10-28.endive",
        "2025-09-30.preview",  # a preview from before the component
        "2025-10-29.PREVIEW",
        "2025-10-29.Preview",
        "2025-10-29-preview",
        "2025-10-29.preview.x",
        "preview",
        ".preview",
        "2025-10-29.previews",
        "2025-1-29.preview",
        "x2025-10-29.preview",
    ],
)
def test_versions_that_are_not_a_preview_with_it(version: str) -> None:
    with pytest.raises(ss.ValidationError, match="tax_id_element"):
        encode_create(TAX, "cus_1", stripe_version=version)
    assert not is_preview(version)  # and the fake refuses it too


@pytest.mark.parametrize("version", [PREVIEW, LATER_PREVIEW, "2099-12-31.preview"])
def test_previews_with_it(version: str) -> None:
    assert BODY_TAX in encode_create(TAX, "cus_1", stripe_version=version)
    assert is_preview(version)


@given(st.one_of(st.text(max_size=30), st.from_regex(r"\d{4}-\d{2}-\d{2}\.preview")))
@example("2025-10-28.preview")
@example("2025-10-29.preview")
@example("\u0662025-10-29.preview")  # a non-ASCII digit
def test_the_sdk_and_the_fake_agree_on_preview_versions(version: str) -> None:
    assert preview_allows(version, PREVIEW) == is_preview(version)


def test_bad_shapes_are_named_whatever_the_version() -> None:
    # A malformed component is a path error under any version; non-str keys too.
    at = "components.tax_id_element"
    cases: list[tuple[Any, str]] = [
        ({"enabled": True, "features": {"tax_id_sav": "enabled"}}, f"{at}.features.tax_id_sav"),
        ({"enabled": True, "features": {"tax_id_save": "on"}}, f"{at}.features.tax_id_save"),
        ({"enabled": True, 1: True}, f"{at}.1"),
        ({"features": {}}, f"{at}.enabled"),
    ]
    for element, param in cases:
        for version in (PREVIEW, "2026-10-28.endive"):
            with pytest.raises(ss.ValidationError) as info:
                encode_create({"tax_id_element": element}, "cus_1", stripe_version=version)
            assert info.value.param == param


def test_a_huge_nested_dict_is_refused_quickly() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(10_000):
        node["features"] = {}
        node = node["features"]
    huge = {"tax_id_element": {"enabled": True, **deep}}
    wide = {"tax_id_element": {"enabled": True, **{f"k{i}": i for i in range(100_000)}}}
    for components in (huge, wide):
        with pytest.raises(ss.ValidationError):
            encode_create(components, "cus_1", stripe_version=PREVIEW)


async def test_the_fake_refuses_it_under_ga_as_stripe_does(fake: FakeStripe) -> None:
    # Past the SDK's check (extra_params sends as given): the fake is the one to refuse.
    extra = {"components": {"tax_id_element": {"enabled": True}}}
    async with client(fake) as c:
        with pytest.raises(ss.InvalidRequestError) as info:
            await c.customer_sessions.create(
                customer="cus_1", components={"buy_button": {"enabled": True}}, extra_params=extra
            )
    assert info.value.param == "components[tax_id_element]"
    assert info.value.code == "parameter_unknown"
    bad = f"{BODY_TAX}&components[tax_id_element][features][tax_id_save]=on"
    cases = [  # (version, body, status, code)
        (None, BODY_TAX, 400, "parameter_unknown"),  # no header: the account's GA version
        ("2026-10-28.endive", BODY_TAX, 400, "parameter_unknown"),
        ("2025-09-30.preview", BODY_TAX, 400, "parameter_unknown"),
        (PREVIEW, bad, 400, "parameter_invalid"),  # known, and its enum checked
        (PREVIEW, BODY_TAX, 200, None),
    ]
    async with aiohttp.ClientSession() as http:
        for version, body, status, code in cases:
            headers = {
                "Authorization": f"Bearer {fake.api_key}",
                "Content-Type": "application/x-www-form-urlencoded",
            }
            if version is not None:
                headers["Stripe-Version"] = version
            async with http.post(
                fake.url + "/v1/customer_sessions", data=f"customer=cus_1&{body}", headers=headers
            ) as resp:
                answer = await resp.json()
            assert resp.status == status, (version, answer)
            if code is not None:
                assert answer["error"]["code"] == code, (version, answer)
            else:
                assert answer["components"]["tax_id_element"]["enabled"] is True
