"""The one walker that checks the parameters of a create and form-encodes them.

It walks a ``Components`` (or a dict of the same shape) by the fields of the classes in
``params``, checks every key, type and enum value, names the path of the first
problem (a :class:`ValidationError`), and returns the form body: nothing is sent
before it has said yes.
"""

from __future__ import annotations

import enum
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Literal, Union

import attrs

from .._errors import ValidationError
from .._safe_text import safe_repr
from .create_params import CreateParams
from .extra import extra_pairs
from .form import MAX_INT, is_text, join, quote_value
from .params import MAX_REDISPLAY_LIMIT, MAX_STRING, Components
from .preview import check_preview

__all__ = ["Kind", "encode_create", "params_of"]


class Kind(enum.Enum):
    """What a parameter is, for the walker that checks and encodes it."""

    BOOL = "bool"
    INT = "int"
    STR = "str"
    ENUM = "enum"  # argument: the allowed values
    LIST = "list"  # argument: the items' spec
    OBJECT = "object"  # argument: the attrs class


# Module-level names for the walker: ``Kind.BOOL`` is an attribute lookup through the
# enum's metaclass, about ten times a global's (measured: 110 vs 12 ns), on every value.
_BOOL, _INT, _STR, _ENUM, _LIST, _OBJECT = Kind
# A field spec: (name, required, kind, argument).
_Spec = tuple[Kind, Any]
_Field = tuple[str, bool, Kind, Any]


def _kind(hint: Any) -> _Spec:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Union or (origin is not None and type(None) in args):
        rest = [a for a in args if a is not type(None)]
        return _kind(rest[0])
    if hint is bool:
        return (Kind.BOOL, None)
    if hint is int:
        return (Kind.INT, None)
    if hint is str:
        return (Kind.STR, None)
    if origin is Literal:
        return (Kind.ENUM, args)
    if origin is Sequence or origin is list:
        return (Kind.LIST, _kind(args[0]))
    if attrs.has(hint):
        return (Kind.OBJECT, hint)
    raise TypeError(f"no parameter kind for {hint!r}")  # pragma: no cover - programming error


def _fields(cls: type) -> tuple[_Field, ...]:
    hints = typing.get_type_hints(cls)
    return tuple(
        (f.name, f.default is attrs.NOTHING, *_kind(hints[f.name])) for f in attrs.fields(cls)
    )


class _FieldTable(dict[type, tuple[_Field, ...]]):
    """Each parameter class's field specs, worked out on first use.

    ``typing.get_type_hints`` over the eleven classes costs milliseconds: done at import,
    every program importing the SDK would pay it; done here, only the first ``create``.
    """

    def __missing__(self, cls: type) -> tuple[_Field, ...]:
        fields = self[cls] = _fields(cls)
        return fields


class _NameTable(dict[type, frozenset[str]]):
    """Each parameter class's field names (for "unknown parameter"), on first use."""

    def __missing__(self, cls: type) -> frozenset[str]:
        names = self[cls] = frozenset(f[0] for f in _FIELDS[cls])
        return names


_FIELDS: Final = _FieldTable()
_NAMES: Final = _NameTable()


def _fail(path: str, message: str) -> ValidationError:
    return ValidationError(f"{path}: {message}", param=path, type="validation_error")


def _typename(value: Any) -> str:
    return type(value).__name__


def _encode_value(
    value: Any, kind: Kind, arg: Any, path: str, key: str, out: list[tuple[str, str]]
) -> None:
    if kind is _BOOL:
        if value is not True and value is not False:
            raise _fail(path, f"expected true or false, got {safe_repr(value)}")
        out.append((key, "true" if value else "false"))
    elif kind is _ENUM:
        if not isinstance(value, str) or value not in arg:
            allowed = ", ".join(repr(a) for a in arg)
            raise _fail(path, f"expected one of {allowed}, got {safe_repr(value)}")
        out.append((key, value))
    elif kind is _STR:
        if not isinstance(value, str):
            raise _fail(path, f"expected a string, got {_typename(value)}")
        if len(value) > MAX_STRING:
            raise _fail(path, f"is longer than {MAX_STRING} characters")
        if not value.isascii() and not is_text(value):
            raise _fail(path, "is not valid Unicode text (a lone surrogate?)")
        out.append((key, quote_value(value)))  # the caller's text: quoted here
    elif kind is _INT:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(path, f"expected a whole number, got {safe_repr(value)}")
        if not -MAX_INT <= value < MAX_INT:
            raise _fail(path, f"is out of range: {safe_repr(value)}")
        out.append((key, str(value)))
    elif kind is _LIST:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise _fail(path, f"expected a list, got {_typename(value)}")
        if not value:
            out.append((key, ""))
        item_kind, item_arg = arg
        for i, item in enumerate(value):
            _encode_value(item, item_kind, item_arg, f"{path}[{i}]", f"{key}[{i}]", out)
    else:
        _encode_object(value, arg, path, key, out)


def _encode_object(value: Any, cls: type, path: str, key: str, out: list[tuple[str, str]]) -> None:
    fields = _FIELDS[cls]
    get: Callable[[str], Any]
    if type(value) is dict or (not isinstance(value, cls) and isinstance(value, Mapping)):
        names = _NAMES[cls]
        if not names.issuperset(value):
            unknown = [k for k in value if k not in names]
            name = min(k if isinstance(k, str) and is_text(k) else safe_repr(k) for k in unknown)
            known = ", ".join(sorted(names))
            raise _fail(f"{path}.{name}", f"unknown parameter (known here: {known})")
        get = value.get
    elif isinstance(value, cls):
        get = value.__getattribute__
    else:
        raise _fail(path, f"expected a mapping or {cls.__name__}, got {_typename(value)}")
    for name, required, kind, arg in fields:
        sub = get(name)
        if sub is None:
            if required:
                raise _fail(f"{path}.{name}", "is required")
            continue
        if kind is _OBJECT:  # straight in: a component is an object on every create
            _encode_object(sub, arg, f"{path}.{name}", f"{key}[{name}]", out)
        else:
            _encode_value(sub, kind, arg, f"{path}.{name}", f"{key}[{name}]", out)


def _check_limits(components: Any) -> None:
    pe = components.get("payment_element") if type(components) is dict else None
    if pe is None:
        pe = _field_of(components, "payment_element")
        if pe is None:  # the common case: no payment element, no limit
            return
    limit = _field_of(_field_of(pe, "features"), "payment_method_redisplay_limit")
    if limit is not None and not 0 <= limit <= MAX_REDISPLAY_LIMIT:
        raise _fail(
            "components.payment_element.features.payment_method_redisplay_limit",
            f"must be between 0 and {MAX_REDISPLAY_LIMIT}, got {limit}",
        )


def _field_of(value: Any, name: str) -> Any:
    if value is None:
        return None
    if _is_mapping(value):
        return value.get(name)
    return getattr(value, name, None)


def _is_mapping(value: Any) -> bool:
    # A plain dict first: isinstance against the Mapping ABC costs a call into abc.
    return type(value) is dict or isinstance(value, Mapping)


def _any_enabled(pairs: list[tuple[str, str]]) -> bool:
    # The encoded components: "components[<name>][enabled]=true" for an enabled one.
    for k, v in pairs:  # noqa: SIM110 - a loop, not any(<generator>): it runs on every create
        if v == "true" and k.endswith("][enabled]") and k.count("[") == 2:
            return True
    return False


def encode_create(
    components: Any,
    customer: str | None = None,
    customer_account: str | None = None,
    expand: Sequence[str] | None = None,
    extra_params: Mapping[str, Any] | None = None,
    stripe_version: str | None = None,
) -> str:
    """Check the parameters of one create and return its form body.

    Raises :class:`ValidationError` (a ``ValueError``) naming the first bad path,
    whatever the input: a caller's object that fails while being read is reported
    too. ``extra_params`` is sent as given (only checked to be encodable) and merges
    with the checked parameters at any depth, but may not collide with one: a key that
    is also given by name (``customer``, ``components.pricing_table.enabled``), or that
    would replace or extend one (``components.pricing_table`` given a value), is a
    ValidationError naming the path. An empty string is sent as ``key=``, which is how
    Stripe clears a value. ``stripe_version`` is the version the request will carry
    (None: the pinned one): a preview component needs a ``.preview`` one.
    """
    try:
        out: list[tuple[str, str]] = []
        if components is None:
            raise _fail("components", "is required: enable at least one component")
        _encode_object(components, Components, "components", "components", out)
        if not _any_enabled(out):
            raise _fail("components", "at least one component must be enabled")
        check_preview(components, stripe_version)
        _check_limits(components)
        for name, given in (("customer", customer), ("customer_account", customer_account)):
            if given is not None:
                _encode_value(given, _STR, None, name, name, out)
        if customer is None and customer_account is None:
            raise _fail("customer", "give customer (cus_...) or customer_account (acct_...)")
        if expand is not None:
            _encode_value(expand, _LIST, (_STR, None), "expand", "expand", out)
        if extra_params is not None and not _is_mapping(extra_params):
            raise _fail("extra_params", f"expected a mapping, got {_typename(extra_params)}")
        if extra_params:
            extra = extra_pairs(extra_params, out)
            if out:
                return f"{'&'.join(map('='.join, out))}&{join(extra)}"
            return join(extra)
        # The walker's keys are field names and indexes, its values true/false, numbers,
        # enum values, or the caller's text quoted as it was added: all ready to send.
        return "&".join(map("=".join, out))
    except ValidationError:
        raise
    except (Exception, RecursionError) as e:  # a custom Mapping or Sequence that fails
        failure = _fail("params", f"could not be read: {type(e).__name__}")
    raise failure


def params_of(item: Any) -> dict[str, Any]:
    """The keyword arguments of ``create`` held by a batch item (a dict or CreateParams)."""
    if isinstance(item, CreateParams):
        return {
            "components": item.components,
            "customer": item.customer,
            "customer_account": item.customer_account,
            "expand": item.expand,
            "extra_params": item.extra_params,
        }
    if _is_mapping(item):
        return dict(item)
    raise _fail("params", f"expected a mapping or CreateParams, got {_typename(item)}")
