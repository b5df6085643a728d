"""Argument checks: small combinators that build attrs-converter-ready callables.

Each builder takes the argument's name and returns a ``check(value) -> value``: the
value (normalised) when acceptable, else a :class:`ValidationError` (a ``ValueError``)
with ``param`` set and a message starting ``"<name>: "``. Build a check once, then call
it, or make it an attrs field's converter: ``timeout: float = checked(TIMEOUT, 80.0)``
with ``TIMEOUT = seconds("timeout")``. A check never shows a value it refuses unless it
is a number (``got 1e309``) or asked to (``show=True``): a key is never quoted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

import attrs

from ._errors import ValidationError
from ._safe_text import safe_repr
from ._urls import AMBIGUOUS, masked

__all__ = [
    "Check",
    "checked",
    "flag",
    "header",
    "header_name",
    "instance",
    "number",
    "one_of",
    "optional",
    "refuse",
    "seconds",
    "text",
    "url",
    "whole",
]

T = TypeVar("T")
#: A check: the value, normalised, or a ValidationError naming the argument.
Check = Callable[[Any], T]

_INF: Final = math.inf


def refuse(name: str, must: str, value: Any = ..., *, shown: bool = True) -> ValidationError:
    """The error for ``name``: ``"name: must ..., got <value>"`` (no ``got`` when
    ``value`` is left out or ``shown`` is False)."""
    got = f", got {safe_repr(value)}" if shown and value is not ... else ""
    return ValidationError(f"{name}: {must}{got}", param=name)


def _range(lo: float, hi: float, lo_open: bool, hi_open: bool) -> str:
    """``lo..hi`` in words: ``from 0 to 60``, ``in (0, 1]``, ``>= 1``, ``> 0``."""
    if hi == _INF and lo == -_INF:
        return ""
    if hi == _INF:
        return f"{'>' if lo_open else '>='} {lo:g}"
    if lo == -_INF:
        return f"{'<' if hi_open else '<='} {hi:g}"
    if not lo_open and not hi_open:
        return f"from {lo:g} to {hi:g}"
    return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"


def number(
    name: str,
    lo: float = -_INF,
    hi: float = _INF,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    noun: str = "number",
    shown: str | None = None,
) -> Check[float]:
    """A finite real number (int or float, not bool) in ``lo..hi``, returned as a float.

    ``lo_open``/``hi_open`` leave the bound itself out. ``noun`` names what it is
    (``"number of seconds"``); ``shown`` replaces the range in the message.
    NaN and the infinities are always refused; so is an int too large for a float
    (``10**400``), which could not be used as one.
    """
    bounds = _range(lo, hi, lo_open, hi_open) if shown is None else shown
    must = " ".join(filter(None, ("must be a", noun, bounds)))

    def check(value: Any) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not (lo < value if lo_open else lo <= value)  # NaN fails both
            or not (value < hi if hi_open else value <= hi)
            or value in (_INF, -_INF)
        ):
            raise refuse(name, must, value)
        try:
            return float(value)
        except OverflowError:  # an int beyond a float's range with an infinite bound
            raise refuse(name, must, value) from None

    return check


def seconds(name: str, hi: float = _INF, *, zero: bool = False) -> Check[float]:
    """A finite number of seconds, > 0 (``zero``: >= 0), at most ``hi``."""
    if hi == _INF and not zero:
        return number(name, 0, noun="positive, finite number of seconds", shown="", lo_open=True)
    return number(name, 0, hi, lo_open=not zero, noun="number of seconds")


def whole(name: str, lo: int | None = None, hi: int | None = None) -> Check[int]:
    """An int (not bool, not a float such as ``2.0``) in ``lo..hi`` (None: unbounded)."""
    low = -_INF if lo is None else lo
    high = _INF if hi is None else hi
    must = " ".join(filter(None, ("must be a whole number", _range(low, high, False, False))))

    def check(value: Any) -> int:
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or (lo is not None and value < lo)
            or (hi is not None and value > hi)
        ):
            raise refuse(name, must, value)
        return int(value)  # an int subclass (IntEnum, numpy-like) as a plain int

    return check


def flag(name: str) -> Check[bool]:
    """``True`` or ``False`` exactly (not 1, not ``"yes"``)."""

    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise refuse(name, "must be True or False", value)
        return value

    return check


def one_of(name: str, choices: Collection[T]) -> Check[T]:
    """One of ``choices`` (compared with ``==``; bools are not taken for 0 and 1)."""
    must = f"must be one of {', '.join(map(repr, choices))}"

    def same(value: Any, choice: T) -> bool:
        if type(value) is not type(choice) and (
            isinstance(value, bool) or not isinstance(value, type(choice))
        ):
            return False  # True is not 1, 1 is not True
        try:
            return bool(value == choice)
        except Exception:  # a caller's __eq__ that raises or is ambiguous
            return False

    def check(value: Any) -> T:
        if not any(same(value, c) for c in choices):
            raise refuse(name, must, value)
        return value  # type: ignore[no-any-return]

    return check


def instance(name: str, kind: type[T], must: str) -> Check[T]:
    """An instance of ``kind``; the message says ``must`` and the type given."""

    def check(value: Any) -> T:
        if not isinstance(value, kind):
            raise ValidationError(f"{name}: {must}, got {type(value).__name__}", param=name)
        return value

    return check


def text(
    name: str,
    *,
    max_len: int | None = None,
    ascii: bool = True,
    forbid: str = "",
    why: str = "",
    must: str | None = None,
    show: bool = False,
    edges: bool = False,
) -> Check[str]:
    """A non-empty ``str`` of printable characters (``ascii``: printable ASCII), at
    most ``max_len`` long, with none of ``forbid``; ``why`` ends the printable
    message (`` (it is sent as an HTTP header)``). ``must`` (a phrase starting
    "must") replaces every message after the type check; ``show`` quotes the refused
    value (never for a secret). ``edges``: no space at either end (a header value's
    ends are trimmed by HTTP parsers, so it would arrive as another value).
    """
    kind = "printable ASCII" if ascii else "printable characters"

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise ValidationError(
                f"{name}: must be a string, got {type(value).__name__}", param=name
            )
        problem = None
        if not value:
            problem = "must not be empty"
        elif max_len is not None and len(value) > max_len:
            problem = f"must be at most {max_len} characters, got {len(value)}"
        elif not value.isprintable() or (ascii and not value.isascii()):
            problem = f"must be {kind}{why}"
        elif edges and (value[0] == " " or value[-1] == " "):
            problem = "must not start or end with a space (HTTP drops it: another value arrives)"
        elif forbid and any(c in value for c in forbid):
            problem = f"must not contain any of {' '.join(forbid)}"
        if problem is not None:
            raise refuse(name, must or problem, value, shown=show)
        return value

    return check


def header(name: str, max_len: int | None = None) -> Check[str]:
    """A value that arrives as sent in an HTTP header: non-empty printable ASCII (a CR
    or LF would split the request; anything else outside ASCII each server reads its
    way), no space at either end (trimmed by every HTTP parser)."""
    return text(name, max_len=max_len, why=" (it is sent as an HTTP header)", edges=True)


# The characters of an HTTP header name (RFC 9110 "token").
_TOKEN: Final = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def header_name(name: str, reserved: Callable[[str], str | None]) -> Check[str]:
    """A header name for the mapping ``name``: an RFC 9110 token (a non-empty ``str`` of
    ``_TOKEN``), for which ``reserved(value)`` gives no reason to refuse it (it frames the
    request, or the SDK sends it). A reserved one is refused as ``name[value]``, with the
    reason, and never with the header's value (it may be a key: ``Authorization``)."""

    def check(value: Any) -> str:
        if not isinstance(value, str) or not value or not all(c in _TOKEN for c in value):
            raise refuse(name, f"{safe_repr(value)} is not a valid header name")
        why = reserved(value)
        if why is not None:
            raise refuse(f"{name}[{value}]", f"may not be set by the caller: {why}")
        return value

    return check


def optional(check: Check[T]) -> Check[T | None]:
    """``check``, letting ``None`` through (as ``None``)."""

    def optional_check(value: Any) -> T | None:
        return None if value is None else check(value)

    return optional_check


def checked(check: Check[Any], default: Any = attrs.NOTHING, **kwargs: Any) -> Any:
    """An ``attrs.field`` whose converter is ``check``: ``timeout: float = checked(T, 80.0)``.

    Why not ``attrs.field(converter=check)``: mypy's attrs plugin refuses a converter
    that is not a named function; this way it types ``__init__`` from the annotation.
    """
    return attrs.field(default=default, converter=check, **kwargs)


def url(name: str, *, example: str, credentials: bool, base: bool = False) -> Check[str]:
    """An absolute ``http(s)://`` URL with a host, in printable ASCII without spaces;
    with user info (``user:pass@``) only if ``credentials``; for a ``base`` URL (one
    that paths are added to) no ``?`` or ``#``, and returned without a trailing ``/``.
    Messages show the URL masked (``http://****@proxy:3128``), never a credential."""

    def check(value: Any) -> str:
        if not isinstance(value, str):  # its type only: bytes may hold a password
            raise refuse(name, f"must be a URL such as {example!r}, got {type(value).__name__}")
        if not value:
            raise refuse(name, f"must be a URL such as {example!r}", value)
        shown = masked(value)
        if not (value.isascii() and value.isprintable()) or " " in value:
            raise refuse(name, "must be printable ASCII without spaces")
        if shown.ambiguous:
            raise refuse(name, AMBIGUOUS)
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError as e:  # the detail quotes the port: not where credentials may be
            raise refuse(name, "is not a valid URL" + ("" if credentials else f" ({e})")) from None
        if parts.scheme not in ("http", "https"):
            raise refuse(name, "must start with http:// or https://", shown.text)
        if not parts.hostname:
            raise refuse(name, "has no host", shown.text)
        if not credentials and (parts.username is not None or parts.password is not None):
            raise refuse(name, "must not hold credentials (user:password@)")
        if base and ("?" in value or "#" in value):
            raise refuse(name, "must not have a query string or fragment (? or #)")
        return value.rstrip("/") if base else value

    return check
