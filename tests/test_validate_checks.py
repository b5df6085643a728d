"""Every argument check takes exactly its documented range, names the argument when it
refuses, and what it takes works later: a client built with it sends, a limiter paces.

Each setting is drawn broadly (the bounds and their float neighbours, huge and negative
ints, NaN and the infinities, bools, strings, None) and the answer compared with the
range the docstrings state, written here a second time as the oracle. And a class of
leak: whatever the shape of a proxy's or a Redis URL, its password is never shown.
"""

from __future__ import annotations

import asyncio
import math
import ssl
import string
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING, examples

KEY = "sk_test_validate0123456789"
INF = math.inf
#: A Redis URL that is never connected to (constructing a limiter makes no connection).
NO_REDIS = "redis://127.0.0.1:1/0"


@attrs.frozen
class Range:
    """A documented range: ``lo..hi`` (each end in or out), whole numbers or any."""

    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False
    whole: bool = False
    #: A further rule (e.g. a share that leaves the rate one request an hour).
    also: Callable[[float], bool] | None = None
    #: Further values at the edge of ``also``.
    edges: tuple[float, ...] = ()
    #: None is taken too (it means "the default").
    optional: bool = False

    def admits(self, value: Any) -> bool:
        """What the docstrings promise: a finite real (not a bool), in range; a whole
        number when asked (``2.0`` is not one); an int too large for a float is refused
        where the setting is used as a float."""
        if value is None:
            return self.optional
        if isinstance(value, bool) or not isinstance(value, int if self.whole else (int, float)):
            return False
        if not self.whole:
            try:
                if not math.isfinite(float(value)):
                    return False
            except OverflowError:
                return False
        above = self.lo < value if self.lo_open else self.lo <= value
        below = value < self.hi if self.hi_open else value <= self.hi
        return above and below and (self.also is None or self.also(value))

    def values(self) -> st.SearchStrategy[Any]:
        """The bounds, their neighbours, and everything else a caller might pass."""
        edges: list[Any] = []
        for bound in (self.lo, self.hi, *self.edges):
            if math.isfinite(bound):
                edges += [bound, math.nextafter(bound, INF), math.nextafter(bound, -INF)]
                edges += [int(bound), int(bound) + 1, int(bound) - 1]
        low, high = (b if math.isfinite(b) else None for b in (self.lo, self.hi))
        return st.one_of(
            st.sampled_from(edges),
            st.floats(low, high),  # inside (or on) the bounds
            st.integers(
                None if low is None else math.ceil(low), None if high is None else math.floor(high)
            ),
            st.integers(),
            st.floats(),
            st.sampled_from([10**5000, -(10**5000), 10**400, 2**63, -(2**63), True, False]),
            st.sampled_from([None, "1", b"1", [1], 1j, INF, -INF, math.nan]),
        )


async def _create(fake: FakeStripe, **settings_: Any) -> None:
    """A create with these client settings: a session, or a StripeError (never another)."""
    async with ss.AsyncClient(api_key=KEY, base_url=fake.url, **settings_) as client:
        try:
            await client.customer_sessions.create(customer="cus_1", components=PRICING)
        except ss.StripeError as e:
            event(f"create failed: {type(e).__name__}")


async def _pace(limiter: ss.LocalRateLimiter) -> None:
    await limiter.acquire(batch=False, timeout=0.0)
    await limiter.rate_limited(None)
    await limiter.acquire(batch=False, timeout=0.0)


#: Each numeric setting: its name, its documented range, how to build with a value, and
#: what to do with what was built (None: building it is the whole use).
NUMBERS: dict[str, tuple[Range, Callable[[Any], Any], Callable[[Any, FakeStripe], Any] | None]] = {
    "timeout": (
        Range(0, INF, lo_open=True),
        lambda v: ss.Config(api_key=KEY, timeout=v),
        lambda c, fake: _create(fake, timeout=c.timeout, max_retries=0),
    ),
    "connect_timeout": (
        Range(0, INF, lo_open=True),
        lambda v: ss.Config(api_key=KEY, connect_timeout=v),
        lambda c, fake: _create(fake, connect_timeout=c.connect_timeout, max_retries=0),
    ),
    "max_retries": (
        Range(0, 100, whole=True),
        lambda v: ss.Config(api_key=KEY, max_retries=v),
        lambda c, fake: _create(fake, max_retries=c.max_retries),
    ),
    "max_connections": (
        Range(1, INF, whole=True),
        lambda v: ss.Config(api_key=KEY, max_connections=v),
        lambda c, fake: _create(fake, max_connections=c.max_connections),
    ),
    "rate": (  # (with the whole rate for batches: the share's own rule is tested below)
        Range(1 / 3600, 1e6),
        lambda v: ss.LocalRateLimiter(v, batch_share=1),
        lambda lim, _: _pace(lim),
    ),
    "recovery": (
        Range(0, 3600, lo_open=True),
        lambda v: ss.LocalRateLimiter(25, recovery=v),
        lambda lim, _: _pace(lim),
    ),
    "pause": (
        Range(0, 60),
        lambda v: ss.LocalRateLimiter(25, pause=v),
        lambda lim, _: _pace(lim),
    ),
    "batch_share": (
        # (0, 1], and 25/s x batch_share at least one request an hour
        Range(0, 1, lo_open=True, also=lambda v: 25 * v >= 1 / 3600, edges=(1 / 3600 / 25,)),
        lambda v: ss.LocalRateLimiter(25, batch_share=v),
        lambda lim, _: _pace(lim),
    ),
    "redis_timeout": (
        Range(0.001, 60),
        lambda v: ss.RedisRateLimiter(NO_REDIS, rate=25, redis_timeout=v),
        None,
    ),
    "processes": (
        # the fallback rate is 25/s / processes, its batch share (half) one an hour or more
        Range(1, 10**10, whole=True, also=lambda p: 25 / p * 0.5 >= 1 / 3600, edges=(45_000,)),
        lambda v: ss.RedisRateLimiter(NO_REDIS, rate=25, processes=v),
        None,
    ),
    "fallback_rate": (
        # and the fallback's batch share (half) at least one request an hour
        Range(1 / 3600, 1e6, also=lambda v: v * 0.5 >= 1 / 3600, edges=(2 / 3600,), optional=True),
        lambda v: ss.RedisRateLimiter(NO_REDIS, rate=25, fallback_rate=v),
        None,
    ),
}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeStripe]:
    with FakeStripe.running() as server:
        yield server


def _refusal(e: ss.ValidationError, param: str) -> None:
    assert isinstance(e, ValueError)
    assert e.param == param, (e.param, param)
    assert str(e).startswith(f"{param}: "), str(e)
    assert len(str(e)) < 400  # never a 5,000-digit repr


@pytest.mark.parametrize("param", sorted(NUMBERS))
@settings(
    max_examples=examples(120),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_numeric_setting_takes_exactly_its_documented_range(
    fake: FakeStripe, param: str, data: st.DataObject
) -> None:
    expected, build, use = NUMBERS[param]
    value = data.draw(expected.values(), label=param)
    try:
        built = build(value)
    except ss.ValidationError as e:
        assert not expected.admits(value), f"{param}={value!r} refused: {e}"
        _refusal(e, param)
        event("refused")
        return
    assert expected.admits(value), f"{param}={value!r} accepted"
    event("accepted")
    stored = getattr(built, param, None)
    if stored is not None:  # kept as a float, or a whole number as an int
        assert type(stored) is (int if expected.whole else float)
        assert stored == (value if expected.whole else float(value))
    if use is not None:
        asyncio.run(use(built, fake))


# --- header values: non-empty printable ASCII ------------------------------------------


def _header_ok(value: Any, *, spaces: bool = True, longest: int | None = None) -> bool:
    return (
        isinstance(value, str)
        and bool(value)
        and value.isascii()
        and value.isprintable()
        and value.strip(" ") == value  # HTTP trims a header value's ends
        and (spaces or " " not in value)
        and (longest is None or len(value) <= longest)
    )


header_values = st.one_of(
    st.text(max_size=6),
    st.text(string.printable, min_size=1, max_size=6),
    st.sampled_from(["", " ", "a b", " a", "a ", "a\r\nX-Evil: 1", "caf\u00e9", "a\x7f", "a\x00"]),
    st.sampled_from(["k" * 255, "k" * 256, 7, b"acct_1", ["acct_1"]]),
)

#: Each header setting: its name, the oracle, the client settings or create arguments it
#: is given as, and the request header it must arrive as.
HEADERS: dict[str, tuple[Callable[[Any], bool], str, str]] = {
    "stripe_account": (_header_ok, "client", "Stripe-Account"),
    "stripe_context": (_header_ok, "client", "Stripe-Context"),
    "stripe_version": (_header_ok, "call", "Stripe-Version"),
    "idempotency_key": (lambda v: _header_ok(v, longest=255), "call", "Idempotency-Key"),
    "api_key": (lambda v: _header_ok(v, spaces=False), "client", "Authorization"),
}


@pytest.mark.parametrize("param", sorted(HEADERS))
@settings(
    max_examples=examples(80),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(value=header_values)
def test_a_header_setting_takes_printable_ascii_and_sends_it_as_given(
    fake: FakeStripe, param: str, value: Any
) -> None:
    admits, where, header = HEADERS[param]

    async def main() -> None:
        client_kwargs: dict[str, Any] = {"api_key": KEY, "base_url": fake.url, "max_retries": 0}
        call_kwargs: dict[str, Any] = {"customer": "cus_1", "components": PRICING}
        (client_kwargs if where == "client" else call_kwargs)[param] = value
        before = len(fake.requests)
        try:
            async with ss.AsyncClient(**client_kwargs) as client:
                await client.customer_sessions.create(**call_kwargs)
        except ss.ValidationError as e:
            assert not admits(value), f"{param}={value!r} refused: {e}"
            _refusal(e, param)
            assert len(fake.requests) == before  # nothing sent
            if param == "api_key" and isinstance(value, str) and len(value) > 4:
                assert value not in str(e) + repr(e)
            return
        except ss.StripeError as e:
            if isinstance(e, ss.AuthenticationError) and e.http_status is None:
                assert (param, value) == ("api_key", ""), e  # no key: says where to set one
                return
            event(f"sent, refused by the fake: {type(e).__name__}")  # a key or version
        assert admits(value), f"{param}={value!r} accepted"
        sent = fake.requests[-1].headers.get(header)
        assert sent == (f"Bearer {value}" if param == "api_key" else value)

    asyncio.run(main())


# --- URLs: the password is never shown, whatever the URL's shape -----------------------

MARK = "S3cr"


def _with_locals(e: BaseException) -> str:
    """The SDK's frames of ``e``'s traceback with their locals, as a crash reporter shows
    them (this file's frames left out: the test wrote the URL in plain text)."""
    stack = traceback.TracebackException.from_exception(e, capture_locals=True).stack
    return "\n".join(f"{f.name} {f.locals}" for f in stack if f.filename != __file__)


passwords = st.builds(lambda middle: f"{MARK}{middle}Zq", st.text("/?#@:%&=+ab", max_size=6))
shapes = st.tuples(
    st.sampled_from(["http", "https", "socks5", "redis", "rediss", "unix", ""]),
    st.sampled_from(["://", ":/", "//", ":", ""]),
    st.sampled_from(["u:", ":", "user:", "a@b:"]),  # the user info before the password
    st.sampled_from(["@proxy.example:3128", "@127.0.0.1:1/0", "@h", "@h/x?db=1#f", "@"]),
)


@settings(max_examples=examples(300), deadline=None)
@given(shape=shapes, password=passwords)
def test_a_proxy_password_is_never_shown_in_an_error_or_a_repr(
    shape: tuple[str, str, str, str], password: str
) -> None:
    scheme, sep, user, tail = shape
    url = f"{scheme}{sep}{user}{password}{tail}"
    with pytest.raises(ss.ValidationError) as as_bytes:  # not a str: not quoted either
        ss.AsyncClient(api_key=KEY, proxy=url.encode())  # type: ignore[arg-type]
    assert MARK not in str(as_bytes.value) + _with_locals(as_bytes.value)
    try:
        client = ss.AsyncClient(api_key=KEY, proxy=url)
    except ss.ValidationError as e:
        event("refused")
        assert e.param == "proxy"
        assert MARK not in str(e) + repr(e) + _with_locals(e), (url, str(e))
        return
    event("accepted")
    config = ss.Config(api_key=KEY, proxy=url)
    shown = repr(config) + repr(client) + repr(client.config)
    assert MARK not in shown, (url, shown)
    # and every message is redacted of it: the client knows it for a secret
    assert any(MARK in s for s in config.secrets), (url, config.secrets)


@settings(max_examples=examples(300), deadline=None)
@given(shape=shapes, password=passwords)
def test_a_redis_password_is_never_shown_in_an_error_or_a_repr(
    shape: tuple[str, str, str, str], password: str
) -> None:
    scheme, sep, user, tail = shape
    url = f"{scheme}{sep}{user}{password}{tail}"
    try:
        limiter = ss.RedisRateLimiter(url, rate=25)
    except ss.ValidationError as e:
        event("refused")
        assert e.param == "url"
        assert MARK not in str(e) + repr(e) + _with_locals(e), (url, str(e))
        return
    event("accepted")
    assert MARK not in repr(limiter) + repr(vars(limiter)), url


# --- the rest: a flag is a bool, a TLS context is one, a budget's name is a hash tag -----

OTHERS: dict[str, tuple[Callable[[Any], bool], Callable[[Any], Any]]] = {
    "trust_env": (lambda v: isinstance(v, bool), lambda v: ss.Config(api_key=KEY, trust_env=v)),
    "ssl": (
        lambda v: v is None or isinstance(v, ssl.SSLContext),
        lambda v: ss.Config(api_key=KEY, ssl=v),
    ),
    "cluster": (
        lambda v: isinstance(v, bool),
        lambda v: ss.RedisRateLimiter(NO_REDIS, rate=25, cluster=v),
    ),
    "name": (
        lambda v: (
            isinstance(v, str)
            and 1 <= len(v) <= 200
            and v.isprintable()
            and not {"{", "}"} & set(v)
        ),
        lambda v: ss.RedisRateLimiter(NO_REDIS, rate=25, name=v),
    ),
}
others = st.one_of(
    st.booleans(),
    st.integers(-1, 2),
    st.sampled_from([None, "", "yes", "a{b}", "x" * 200, "x" * 201, b"x", 1.0]),
    st.text(max_size=4),
    st.builds(ssl.create_default_context),
)


@pytest.mark.parametrize("param", sorted(OTHERS))
@settings(max_examples=examples(60), deadline=None)
@given(value=others)
def test_a_flag_a_tls_context_and_a_budget_name_take_only_what_they_say(
    param: str, value: Any
) -> None:
    admits, build = OTHERS[param]
    try:
        built = build(value)
    except ss.ValidationError as e:
        assert not admits(value), f"{param}={value!r} refused: {e}"
        _refusal(e, param)
        return
    assert admits(value), f"{param}={value!r} accepted"
    assert getattr(built, param) is value or getattr(built, param) == value
