"""``extra_params``: flattened as given, refused where it would collide with a named parameter."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._errors import ValidationError
from .form import EncodeError, flatten

__all__ = ["extra_pairs"]


def _fail(path: str, message: str) -> ValidationError:
    return ValidationError(f"{path}: {message}", param=path, type="validation_error")


def extra_pairs(
    extra_params: Mapping[str, Any], named: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The form pairs of ``extra_params``, checked to be encodable and to leave every
    named parameter (``named``: the checked pairs) alone; else a ValidationError."""
    extra: list[tuple[str, str]] = []
    try:
        flatten(extra_params, "", extra)
    except EncodeError as e:
        path = f"extra_params.{e.path}" if e.path else "extra_params"
        raise _fail(path, e.reason) from None
    _check_no_collision(named, extra)
    return extra


def _check_no_collision(named: list[tuple[str, str]], extra: list[tuple[str, str]]) -> None:
    """Refuse an ``extra_params`` key that a named parameter also gives (or nests under).

    Keys are form keys (``components[pricing_table][enabled]``); ``flatten`` refuses
    brackets inside a key's own parts, so cutting at ``[`` finds exactly its ancestors.
    Two keys collide when they are equal or one is the other's ancestor: the server
    would get two values for one field, or a value and an object.
    """
    given: set[str] = set()  # the named keys and every ancestor of one
    for key, _ in named:
        given.add(key)
        at = key.find("[")
        while at != -1:
            given.add(key[:at])
            at = key.find("[", at + 1)
    leaves = {key for key, _ in named}
    for key, _ in extra:
        hit = key if key in given else None
        at = key.find("[")
        while hit is None and at != -1:
            if key[:at] in leaves:
                hit = key[:at]
            at = key.find("[", at + 1)
        if hit is not None:
            named_key = next(k for k, _ in named if k == hit or k.startswith(hit + "["))
            raise _fail(
                f"extra_params.{_path_of(key)}",
                f"collides with the named parameter {_path_of(named_key)}: give each "
                "field once (extra_params is for fields this SDK does not know)",
            )


def _path_of(key: str) -> str:
    """A form key as the dotted path errors use: ``a[b][0]`` -> ``a.b[0]``."""
    head, *parts = key.split("[")
    path = head
    for part in parts:
        name = part[:-1]  # each part ends with its "]"
        path += f"[{name}]" if name.isdigit() else f".{name}"
    return path
