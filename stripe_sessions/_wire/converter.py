"""The one cattrs converter: every structuring hook is registered here, in ``build_converter``.

``structure_session`` is the way in: it checks an answer against ``shape`` (the one table
of a session's JSON types), builds the common answer directly and hands any other to
the converter.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from types import UnionType
from typing import TYPE_CHECKING, Any, Final, Literal, Union

from .._errors import APIError
from .models import CustomerSession, Unread
from .params import Components
from .shape import check_shape, json_type

if TYPE_CHECKING:  # cattrs loads with the first answer that needs it: see _hooks
    import cattrs

__all__ = ["build_converter", "get_converter", "structure_components", "structure_session"]


class _Unreadable(ValueError):
    """A JSON value of the wrong type, raised by the hooks below. Its message names the
    type, never the value (the value may be a client secret)."""


def _strict(kind: type, words: str) -> Any:
    # The JSON preconf converter would coerce: str(None) == "None", bool("false") is True.
    def hook(value: Any, _: Any) -> Any:
        if type(value) is kind:
            return value
        raise _Unreadable(f"expected {words}, got {json_type(value)}")

    return hook


def _is_literal(t: Any) -> bool:
    return typing.get_origin(t) is Literal


def _literal(value: Any, t: Any) -> Any:
    # Forward compatible: a value a newer API version added is kept as its string.
    if isinstance(value, str):
        return value
    raise _Unreadable(f"expected a string, got {json_type(value)}")


def _datetime(value: Any, _: Any) -> datetime:
    if type(value) is not int:
        raise _Unreadable(f"expected a Unix timestamp (an integer), got {json_type(value)}")
    try:
        return datetime.fromtimestamp(value, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise _Unreadable("expected a Unix timestamp, got an integer out of range") from None


def _is_sequence(t: Any) -> bool:
    return typing.get_origin(t) is Sequence


def _is_mapping(t: Any) -> bool:
    return typing.get_origin(t) is Mapping


def _is_simple_optional(t: Any) -> bool:
    args = typing.get_args(t)
    return len(args) == 2 and type(None) in args and typing.get_origin(t) in (Union, UnionType)


def build_converter(*, strict: bool = False) -> cattrs.Converter:
    """Build the converter; ``strict=True`` rejects unknown keys (tests prove model coverage).

    The default converter leaves ``CustomerSession.components`` out (``structure_session``
    has it read on first use); the strict one structures it at once.
    """
    from cattrs.gen import make_dict_structure_fn, override  # noqa: PLC0415 - see _hooks
    from cattrs.preconf.json import make_converter  # noqa: PLC0415

    conv = make_converter(forbid_extra_keys=strict, detailed_validation=strict)
    conv.register_structure_hook_func(_is_literal, _literal)
    conv.register_structure_hook(datetime, _datetime)
    conv.register_structure_hook(str, _strict(str, "a string"))
    conv.register_structure_hook(bool, _strict(bool, "a boolean"))
    conv.register_structure_hook(int, _strict(int, "an integer"))

    def sequence_hook(t: Any) -> Any:
        item = typing.get_args(t)[0]
        hook = conv.get_structure_hook(item)

        def structure(v: Any, _: Any) -> Any:
            if not isinstance(v, list):
                raise _Unreadable(f"expected an array, got {json_type(v)}")
            return tuple([hook(x, item) for x in v])

        return structure

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
    raise _Unreadable(f"expected an object, got {json_type(value)}")


@functools.cache
def _hooks() -> tuple[cattrs.Converter, Any, Any]:
    """The converter and its two hooks, built on first use, once.

    Importing cattrs and generating the structuring code costs about 15 ms: built at
    import, every program importing the SDK would pay it, most before any answer.
    """
    conv = build_converter()
    return conv, conv.get_structure_hook(CustomerSession), conv.get_structure_hook(Components)


def get_converter() -> cattrs.Converter:
    """The one converter (built on first use)."""
    return _hooks()[0]


def structure_session(
    data: Mapping[str, Any],
    request_id: str | None = None,
    replayed: bool = False,
    conv: cattrs.Converter | None = None,
) -> CustomerSession:
    """Build a CustomerSession from Stripe's JSON, keeping the response's request id and body.

    Raises :class:`APIError` (naming the field and type, never a value) when a known
    field has the wrong JSON type; unknown fields and enum values are kept. With the
    default converter (``conv=None``), ``components`` is structured on first read; the
    strict one (``build_converter(strict=True)``) structures it at once.
    """
    problem = check_shape(data)
    if problem is None and conv is None:
        built = _common_session(data, request_id, replayed)
        if built is not None:
            return built
    if problem is None:
        try:
            hook = _hooks()[1] if conv is None else conv.get_structure_hook(CustomerSession)
            session: CustomerSession = hook(data, CustomerSession)
        except _Unreadable as e:
            problem = str(e)
        except Exception as e:  # cattrs raises several kinds; the caller needs one
            problem = type(e).__name__
    if problem is not None:  # raised outside the except: no chained error holding `data`
        raise APIError(
            f"Stripe answered with a customer_session this SDK could not read: {problem}",
            http_status=200,
            request_id=request_id,
        )
    # The model is frozen; these come from the response, not from the fields of its JSON.
    object.__setattr__(session, "request_id", request_id)
    object.__setattr__(session, "idempotent_replayed", replayed)
    object.__setattr__(session, "_raw", data)
    if (conv is None or conv is _hooks()[0]) and data.get("components") is not None:
        object.__setattr__(session, "components", _UNREAD)
    return session


def _common_session(
    data: Mapping[str, Any], request_id: str | None, replayed: bool
) -> CustomerSession | None:
    """The common answer, built without the generic hooks; None for any other.

    The common answer is what Stripe sends for a create: of the shape ``check_shape``
    asks for (the caller has checked), ``customer`` an id (not expanded), ``components``
    an object, timestamps a datetime can hold. It is built directly, in a third of the
    time of the generic path, which handles (and explains) everything else;
    ``tests/test_models.py`` checks both give equal sessions and equal refusals.
    """
    customer, components = data.get("customer"), data.get("components")
    if type(customer) is dict or components is None:
        return None
    try:
        created = datetime.fromtimestamp(data["created"], _UTC)
        expires_at = datetime.fromtimestamp(data["expires_at"], _UTC)
    except (OverflowError, OSError, ValueError):
        return None  # the generic path says which
    return CustomerSession(
        data["client_secret"],
        created,
        expires_at,
        data["livemode"],
        customer,
        "customer_session",
        data.get("customer_account"),
        _UNREAD,  # type: ignore[arg-type]  # read on first use: see models._ReadOnFirstUse
        request_id,
        replayed,
        data,
    )


_UTC: Final = timezone.utc


def structure_components(data: Any, request_id: str | None = None) -> Components:
    """Structure a response's ``components`` object (absent or null: an empty one)."""
    if data is None:
        return Components()
    try:
        components: Components = _hooks()[2](data, Components)
    except Exception as e:  # cattrs raises several kinds; the caller needs one
        problem = str(e) if isinstance(e, _Unreadable) else type(e).__name__
        raise APIError(
            f"Stripe answered with components this SDK could not read ({problem}); "
            "is stripe_version newer than the models? session.to_dict() has the JSON.",
            http_status=200,
            request_id=request_id,
        ) from e
    return components


#: What a session's ``components`` holds until first read (see ``models.Unread``).
_UNREAD: Final = Unread(structure_components)
