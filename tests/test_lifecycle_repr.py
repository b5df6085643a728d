"""A constructor's ValidationError renders with ``capture_locals``, and shows no secret.

The ``self`` of a constructor that raised is half-built, and error trackers (and
``traceback.TracebackException(..., capture_locals=True)``) ``repr`` it: on Python
3.10-3.12 a ``__repr__`` that raises loses the real error. For every constructor
argument made invalid (AsyncClient, Client, ``with_options``, Config), the rendering
works, names the error, and the SDK's frames hold neither the API key nor the proxy
password.
"""

from __future__ import annotations

import math
import re
import traceback
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stripe_sessions as ss
from tests.helpers import examples

#: One invalid value per constructor argument (each alone makes the constructor raise).
BAD_ARGUMENTS: dict[str, Any] = {
    "api_key": "sk_test_bad key\n",
    "base_url": "ftp://nowhere",
    "stripe_version": "2020\r\n",
    "stripe_account": "acct\r\n",
    "stripe_context": "",
    "timeout": math.nan,
    "connect_timeout": -1.0,
    "max_retries": 10**6,
    "max_connections": 0,
    "default_headers": {"Bad Name": "x"},
    "proxy": "gopher://proxy",
    "trust_env": "yes",
    "ssl": "verify",
    "rate_limiter": object(),
}
#: What ``with_options`` takes, invalid.
BAD_OPTIONS: dict[str, Any] = {
    "api_key": "sk_test_bad key\n",
    "stripe_version": "",
    "stripe_account": "acct\r\n",
    "stripe_context": "\x00",
    "timeout": math.inf,
    "max_retries": -1,
}

keys = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=16, max_size=30
)


def _frames(error: BaseException) -> list[str]:
    """The rendered traceback (with locals) of ``error``, one block per SDK frame."""
    text = "".join(traceback.TracebackException.from_exception(error, capture_locals=True).format())
    blocks = re.split(r"(?m)^(?=  File )", text)
    return [b for b in blocks if b.startswith("  File ") and "stripe_sessions" in b.split("\n")[0]]


def _raised(build: Callable[[], object]) -> ss.ValidationError:
    with pytest.raises(ss.StripeError) as info:
        build()
    assert isinstance(info.value, (ss.ValidationError, ss.AuthenticationError))
    return info.value  # type: ignore[return-value]


def _check(error: BaseException, secrets: tuple[str, ...], skip: str | None = None) -> None:
    text = "".join(traceback.TracebackException.from_exception(error, capture_locals=True).format())
    assert type(error).__name__ in text
    for block in _frames(error):
        if skip is not None and skip in block.split("\n")[0]:
            continue
        for secret in secrets:
            assert secret not in block, f"{secret!r} in a frame's locals:\n{block}"


@settings(max_examples=examples(60), deadline=None)
@given(argument=st.sampled_from(sorted(BAD_ARGUMENTS)), key=keys, password=keys)
def test_async_client_constructor_errors_render_with_locals_and_no_secret(
    argument: str, key: str, password: str
) -> None:
    api_key, proxy = f"sk_test_{key}", f"http://user:{password}@proxy.example:3128"
    kwargs: dict[str, Any] = {"api_key": api_key, "proxy": proxy, argument: BAD_ARGUMENTS[argument]}
    error = _raised(lambda: ss.AsyncClient(**kwargs))
    _check(error, (key, password))


@settings(max_examples=examples(40), deadline=None)
@given(option=st.sampled_from(sorted(BAD_OPTIONS)), key=keys, password=keys)
def test_with_options_errors_render_with_locals_and_no_secret(
    option: str, key: str, password: str
) -> None:
    client = ss.AsyncClient(
        api_key=f"sk_test_{key}", proxy=f"http://user:{password}@proxy.example:3128"
    )
    new_key = f"sk_live_{password}"
    kwargs: dict[str, Any] = {"api_key": new_key, option: BAD_OPTIONS[option]}
    error = _raised(lambda: client.with_options(**kwargs))
    _check(error, (key, password))
    sync = ss.Client(api_key=f"sk_test_{key}")
    try:
        kwargs = {option: BAD_OPTIONS[option]}
        _check(_raised(lambda: sync.with_options(**kwargs)), (key,))
    finally:
        sync.close()


@settings(max_examples=examples(40), deadline=None)
@given(argument=st.sampled_from(sorted(BAD_ARGUMENTS)), key=keys)
def test_client_constructor_errors_render_with_locals(argument: str, key: str) -> None:
    """The sync Client too (its generated ``__init__`` frame is checked separately below)."""
    kwargs: dict[str, Any] = {"api_key": f"sk_test_{key}", argument: BAD_ARGUMENTS[argument]}
    error = _raised(lambda: ss.Client(**kwargs))
    _check(error, (key,), skip="_sync/client.py")


def test_client_constructor_frame_holds_no_key() -> None:
    key = "SyncKeyInFrame0123456789"
    error = _raised(lambda: ss.Client(api_key=f"sk_test_{key}", timeout=math.nan))
    _check(error, (key,))


@pytest.mark.parametrize("argument", sorted(set(BAD_ARGUMENTS) - {"rate_limiter"}))
def test_config_errors_render_with_locals(argument: str) -> None:
    kwargs: dict[str, Any] = {
        "api_key": "sk_test_ConfigKey0123456789",
        argument: BAD_ARGUMENTS[argument],
    }
    with pytest.raises(ss.ValidationError) as info:
        ss.Config(**kwargs)
    text = "".join(
        traceback.TracebackException.from_exception(info.value, capture_locals=True).format()
    )
    assert "ValidationError" in text
    assert "Config(" in text  # the half-built self, rendered


def test_half_built_objects_repr() -> None:
    for cls in (ss.AsyncClient, ss.Client, ss.Config):
        shown = repr(object.__new__(cls))
        assert cls.__name__ in shown
    config = object.__new__(ss.Config)
    assert "<unset>" in repr(config)
    whole = ss.Config(api_key="sk_test_ConfigKey0123456789", proxy="http://u:pw1234@h:1")
    assert "ConfigKey" not in repr(whole) and "pw1234" not in repr(whole)
    assert "proxy='http://****@h:1'" in repr(whole)
