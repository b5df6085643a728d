"""The one cattrs converter: every structuring hook of the SDK is registered here."""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from types import UnionType
from typing import Any, Literal, Union

import cattrs
from cattrs.gen import make_dict_structure_fn, override
from cattrs.preconf.json import make_converter

from ._errors import APIError
from ._models import CustomerSession
from ._params import Components

__all__ = ["build_converter", "converter", "structure_components", "structure_session"]


def _is_literal(t: Any) -> bool:
    return typing.get_origin(t) is Literal


def _literal(value: Any, t: Any) -> Any:
    # Forward compatible: a value a newer API version added is kept as its string.
    if isinstance(value, str):
        return value
    raise ValueError(f"expected a string for {t}, got {value!r}")


def _datetime(value: Any, _: Any) -> datetime:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a Unix timestamp, got {value!r}")
    return datetime.fromtimestamp(value, tz=timezone.utc)


def _is_sequence(t: Any) -> bool:
    return typing.get_origin(t) is Sequence


def _is_mapping(t: Any) -> bool:
    return typing.get_origin(t) is Mapping


def _is_simple_optional(t: Any) -> bool:
    args = typing.get_args(t)
    return len(args) == 2 and type(None) in args and typing.get_origin(t) in (Union, UnionType)


def build_converter(*, strict: bool = False) -> cattrs.Converter:
    """Build the converter; ``strict=True`` rejects unknown keys (tests prove model coverage).

    The default converter leaves ``CustomerSession.components`` to be structured on
    first read (``structure_components``); the strict one structures it at once.
    """
    conv = make_converter(forbid_extra_keys=strict, detailed_validation=strict)
    conv.register_structure_hook_func(_is_literal, _literal)
    conv.register_structure_hook(datetime, _datetime)

    def sequence_hook(t: Any) -> Any:
        item = typing.get_args(t)[0]
        hook = conv.get_structure_hook(item)
        return lambda v, _: tuple([hook(x, item) for x in v])

    conv.register_structure_hook_factory(_is_sequence, sequence_hook)

    def optional_hook(t: Any) -> Any:
        # Resolve the inner hook once, instead of dispatching on every None check.
        inner = next(a for a in typing.get_args(t) if a is not type(None))
        hook = conv.get_structure_hook(inner)
        return lambda v, _: None if v is None else hook(v, inner)

    conv.register_structure_hook_factory(_is_simple_optional, optional_hook)
    conv.register_structure_hook_factory(
        _is_mapping, lambda t: lambda v, _: dict(v) if isinstance(v, Mapping) else _bad_map(v)
    )
    conv.register_structure_hook(
        CustomerSession,
        make_dict_structure_fn(
            CustomerSession,
            conv,
            _cattrs_forbid_extra_keys=strict,
            request_id=override(omit=True),
            idempotent_replayed=override(omit=True),
            _raw=override(omit=True),
            components=override(omit=not strict),
        ),
    )
    return conv


def _bad_map(value: Any) -> Any:
    raise ValueError(f"expected a JSON object, got {value!r}")


converter = build_converter()
_structure_session = converter.get_structure_hook(CustomerSession)
_structure_components = converter.get_structure_hook(Components)
_set = object.__setattr__
_unset = object.__delattr__


def structure_session(
    data: Mapping[str, Any],
    request_id: str | None = None,
    replayed: bool = False,
    conv: cattrs.Converter | None = None,
) -> CustomerSession:
    """Build a CustomerSession from Stripe's JSON, keeping the response's request id and body."""
    hook = _structure_session if conv is None else conv.get_structure_hook(CustomerSession)
    session: CustomerSession = hook(data, CustomerSession)
    # The model is frozen; these three come from the response, not the JSON body.
    _set(session, "request_id", request_id)
    _set(session, "idempotent_replayed", replayed)
    _set(session, "_raw", data)
    if conv is None and data.get("components") is not None:
        # Unset slot: CustomerSession.__getattr__ structures it on first read. This
        # keeps the common path (hand on client_secret) cheap: components is most
        # of the structuring work.
        _unset(session, "components")
    return session


def structure_components(data: Any, request_id: str | None = None) -> Components | None:
    """Structure a response's ``components`` object (None stays None)."""
    if data is None:
        return None
    try:
        components: Components = _structure_components(data, Components)
    except Exception as e:  # cattrs raises several kinds; the caller needs one
        raise APIError(
            f"Stripe answered with components this SDK could not read ({type(e).__name__}); "
            "is stripe_version newer than the models? session.to_dict() has the JSON.",
            http_status=200,
            request_id=request_id,
        ) from e
    return components
