"""Preview parameters: sent only when the ``Stripe-Version`` in effect is a preview one.

A field of ``params.Components`` whose metadata names ``params.PREVIEW`` (``tax_id_element``,
since ``2025-10-29.preview``) exists only in Stripe's preview versions: under a GA version
(``2026-10-28.endive``) Stripe refuses it as an unknown parameter. The SDK refuses it first,
with a ValidationError that says which version it needs, and sends nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import attrs

from .._errors import ValidationError
from .._safe_text import safe_repr
from .params import PREVIEW, Components

__all__ = ["check_preview", "preview_allows"]

#: A preview version as Stripe names them: ``YYYY-MM-DD.preview``, lower case, nothing
#: else (Stripe answers any other spelling with an invalid-version error).
_PREVIEW_VERSION: Final = re.compile(r"(\d{4}-\d{2}-\d{2})\.preview")

#: The preview components and the first preview version that has each.
_PREVIEW_FIELDS: Final = tuple(
    (f.name, f.metadata[PREVIEW]) for f in attrs.fields(Components) if PREVIEW in f.metadata
)


def preview_allows(version: Any, since: str) -> bool:
    """Whether the ``Stripe-Version`` ``version`` is a preview one at or after ``since``."""
    if not isinstance(version, str):
        return False
    given, first = _PREVIEW_VERSION.fullmatch(version), _PREVIEW_VERSION.fullmatch(since)
    # ISO dates of one width compare as strings.
    return given is not None and first is not None and given.group(1) >= first.group(1)


def check_preview(components: Any, version: Any) -> None:
    """Raise ValidationError if ``components`` sets a preview component ``version`` lacks.

    ``components`` has been walked already (a Components or a mapping of the same shape).
    """
    for name, since in _PREVIEW_FIELDS:
        if type(components) is dict or isinstance(components, Mapping):
            given = components.get(name)
        else:
            given = getattr(components, name, None)
        if given is None or preview_allows(version, since):
            continue
        path = f"components.{name}"
        raise ValidationError(
            f"{path}: is a preview component: it needs a preview Stripe-Version "
            f"({since} or later), and the version in effect is {safe_repr(version, 60)}; "
            "give stripe_version='...preview' to the client or to the call",
            param=path,
            type="validation_error",
        )
