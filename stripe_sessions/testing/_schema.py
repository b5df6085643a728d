"""Validate a decoded form against this endpoint's OpenAPI request schema, as Stripe does.

The schema ships with the package (``customer_sessions.openapi.json``, Stripe's
spec for API version 2026-09-30.endive, this endpoint only; the endpoint is the same
at 2026-10-28.endive, the version the SDK pins).
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["ParamError", "is_preview", "request_schema", "validate"]

#: A decimal integer as Stripe reads one: ASCII digits only (``str.isdigit`` also takes
#: "²" and "٣", which ``int()`` refuses or reads), at most 19 of them (64-bit).
_INTEGER = re.compile(r"-?[0-9]{1,19}").fullmatch
_INT64 = 2**63


class ParamError(Exception):
    """A parameter Stripe would reject: message, code and the param in bracket notation."""

    def __init__(self, message: str, code: str, param: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param


@cache
def spec() -> dict[str, Any]:
    """The OpenAPI document shipped with the package."""
    text = resources.files(__package__).joinpath("customer_sessions.openapi.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def request_schema(preview: bool = False) -> dict[str, Any]:
    """The form schema of ``POST /v1/customer_sessions`` (``preview``: with the preview
    components, which Stripe knows only under a ``.preview`` Stripe-Version)."""
    body = spec()["paths"]["/v1/customer_sessions"]["post"]["requestBody"]
    schema: dict[str, Any] = body["content"]["application/x-www-form-urlencoded"]["schema"]
    if preview:
        schema = json.loads(json.dumps(schema))  # a copy: the cached GA one stays as it is
        schema["properties"]["components"]["properties"].update(_PREVIEW_COMPONENTS)
    return schema


_TOGGLE: dict[str, Any] = {"type": "string", "enum": ["disabled", "enabled"]}
#: Components in public preview (not in the GA spec): ``tax_id_element`` since 2025-10-29.
_PREVIEW_COMPONENTS: dict[str, Any] = {
    "tax_id_element": {
        "type": "object",
        "properties": {
            "enabled": {"type": "boolean"},
            "features": {
                "type": "object",
                "properties": {"tax_id_redisplay": _TOGGLE, "tax_id_save": _TOGGLE},
            },
        },
        "required": ["enabled"],
    }
}
_PREVIEW_VERSION = re.compile(r"(\d{4}-\d{2}-\d{2})\.preview").fullmatch


def is_preview(stripe_version: str | None) -> bool:
    """Whether a ``Stripe-Version`` is a preview that has the preview components."""
    found = _PREVIEW_VERSION(stripe_version or "")
    return found is not None and found.group(1) >= "2025-10-29"


def _name(path: list[str]) -> str:
    return path[0] + "".join(f"[{p}]" for p in path[1:])


def _check(value: Any, schema: dict[str, Any], path: list[str]) -> None:
    param = _name(path)
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            raise ParamError(f"Invalid object: {param} must be a hash", "parameter_invalid", param)
        props: dict[str, Any] = schema.get("properties", {})
        for key in value:
            if key not in props:
                unknown = _name([*path, key])
                raise ParamError(
                    f"Received unknown parameter: {unknown}", "parameter_unknown", unknown
                )
        for key in schema.get("required", []):
            if key not in value:
                missing = _name([*path, key])
                raise ParamError(
                    f"Missing required param: {missing}.", "parameter_missing", missing
                )
        for key, sub in value.items():
            _check(sub, props[key], [*path, key])
    elif kind == "array":
        if value == "":
            return  # an empty string clears a list
        if not isinstance(value, list):
            raise ParamError(f"Invalid array: {param} must be a list", "parameter_invalid", param)
        for i, item in enumerate(value):
            _check(item, schema["items"], [*path, str(i)])
    elif kind == "boolean":
        if value not in ("true", "false"):
            raise ParamError(f"Invalid boolean: {value}", "parameter_invalid_boolean", param)
    elif kind == "integer":
        if not (isinstance(value, str) and _INTEGER(value) and -_INT64 <= int(value) < _INT64):
            raise ParamError(f"Invalid integer: {value}", "parameter_invalid_integer", param)
    elif kind == "string":
        if not isinstance(value, str):
            raise ParamError(
                f"Invalid string: {param} must be a string", "parameter_invalid", param
            )
        enum = schema.get("enum")
        if enum is not None and value not in enum:
            allowed = ", ".join(enum[:-1]) + f", or {enum[-1]}" if len(enum) > 1 else enum[0]
            raise ParamError(
                f"Invalid {param}: must be one of {allowed}", "parameter_invalid", param
            )
        max_length = schema.get("maxLength")
        if max_length is not None and len(value) > max_length:
            raise ParamError(
                f"Invalid {param}: must be at most {max_length} characters",
                "parameter_invalid",
                param,
            )


def validate(form: dict[str, Any], stripe_version: str | None = None) -> None:
    """Raise :class:`ParamError` for the first problem Stripe would report in ``form``
    (sent with ``stripe_version``: a preview one also knows the preview components)."""
    schema = request_schema(is_preview(stripe_version))
    props: dict[str, Any] = schema["properties"]
    for key in form:
        if key not in props:
            raise ParamError(f"Received unknown parameter: {key}", "parameter_unknown", key)
    for key in schema.get("required", []):
        if key not in form:
            raise ParamError(f"Missing required param: {key}.", "parameter_missing", key)
    for key, value in form.items():
        _check(value, props[key], [key])
    components = form["components"]
    if not any(isinstance(c, dict) and c.get("enabled") == "true" for c in components.values()):
        raise ParamError("At least 1 component must be enabled.", "parameter_invalid", "components")
    if "customer" not in form and "customer_account" not in form:
        raise ParamError(
            "You must provide either customer or customer_account.",
            "parameter_missing",
            "customer",
        )
