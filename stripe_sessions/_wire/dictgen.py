"""Write ``_wire/dicts.py``, the TypedDicts of the dict forms, from the attrs classes in
``_wire/params.py`` and ``_wire/create_params.py``; ``--check``: is it stale?

    python -m stripe_sessions._wire.dictgen           # regenerate
    python -m stripe_sessions._wire.dictgen --check   # exit 1 with a diff if out of date

One source of truth: each attrs class ``X`` gets a ``XDict``
(``total=False``; the class's fields without a default are ``Required``), with the same
field names, the same enum ``Literal`` aliases (``Toggle``...), and, where the class
nests another class ``Y``, ``YDict | Y`` (the walker takes either at every level). An
optional field also takes ``None``, which the walker reads as absent. The tests run the
check, so a class changed without regenerating fails the suite.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Union

import attrs

from . import create_params, params

__all__ = ["TARGET", "generate", "main"]

TARGET = Path(__file__).parent / "dicts.py"

HEADER = '''\
# GENERATED FILE: do not edit. Written by `python -m stripe_sessions._wire.dictgen` from
# the attrs classes in _wire/params.py; change those and run it again (the tests run --check).
"""The dict forms of the create parameters, as TypedDicts that mypy and pyright check.

A dict literal given where one of these is expected is checked key by key: an unknown
key (``"pricing_tabel"``) or a value outside an enum (``"payment_method_save": "on"``) is a
type error. At run time a dict is a plain dict; ``create`` checks it as before.
"""

# No ``from __future__ import annotations``: evaluated here, ``Required`` is seen at run
# time too (``__required_keys__``), for libraries that read TypedDicts (pydantic...).
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from .params import (
{imports}
)

if sys.version_info >= (3, 11):
    from typing import Required, TypedDict
else:  # a dependency of cattrs and aiohttp on 3.10
    from typing_extensions import Required, TypedDict

__all__ = [
{names}
]
'''


def _classes() -> list[type]:
    """The attrs classes of ``params`` (in the order they are defined), then CreateParams."""
    found = [c for c in vars(params).values() if isinstance(c, type) and attrs.has(c)]
    return [*found, create_params.CreateParams]


def _aliases() -> dict[Any, str]:
    """The named ``Literal`` aliases of ``params`` (``Toggle``...), by their value."""
    return {
        value: name
        for name, value in vars(params).items()
        if typing.get_origin(value) is Literal and name in params.__all__
    }


def _render(hint: Any, aliases: dict[Any, str], used: set[str]) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Union or (origin is not None and type(None) in args):
        parts = [_render(a, aliases, used) for a in args if a is not type(None)]
        return " | ".join(dict.fromkeys(parts))
    if origin is Literal:
        name = aliases.get(hint)
        if name is None:
            raise TypeError(f"name the Literal {hint!r} in params (an alias in __all__)")
        used.add(name)
        return name
    if origin is Sequence:
        return f"Sequence[{_render(args[0], aliases, used)}]"
    if hint == Mapping[str, Any]:
        return "Mapping[str, Any]"
    if hint in (bool, int, str):
        return str(hint.__name__)
    if attrs.has(hint):
        used.add(hint.__name__)
        return f"{hint.__name__}Dict | {hint.__name__}"
    raise TypeError(f"no dict form for {hint!r}")  # a new kind of field: teach _render


def _typed_dict(cls: type, aliases: dict[Any, str], used: set[str]) -> str:
    # A hint naming a generated dict (``CreateParams.components: Components |
    # ComponentsDict``) stands for its class here: the class's dict is offered with it.
    local = {f"{c.__name__}Dict": c for c in _classes()}
    hints = typing.get_type_hints(cls, localns=local)
    name = cls.__name__
    lines = [
        "",
        "",
        f"class {name}Dict(TypedDict, total=False):",
        f'    """The dict form of :class:`{name}`."""',
        "",
    ]
    for field in attrs.fields(cls):
        rendered = _render(hints[field.name], aliases, used)
        if field.default is attrs.NOTHING:
            rendered = f"Required[{rendered}]"
        else:
            rendered = f"{rendered} | None"
        since = field.metadata.get(params.PREVIEW)
        if since is not None:
            lines.append(f"    #: Preview: only under a ``.preview`` Stripe-Version ({since} on).")
        lines.append(f"    {field.name}: {rendered}")
    return "\n".join(lines) + "\n"


def generate() -> str:
    """The text of ``dicts.py`` for the classes of ``params`` as they are now."""
    aliases = _aliases()
    used: set[str] = set()
    classes = _classes()
    bodies = [_typed_dict(cls, aliases, used) for cls in classes]
    names = sorted(f"{c.__name__}Dict" for c in classes)
    text = HEADER.format(
        imports="\n".join(f"    {n}," for n in sorted(used)),
        names="\n".join(f'    "{n}",' for n in names),
    )
    return text + "".join(bodies)


def main(argv: list[str] | None = None) -> int:
    """Regenerate ``dicts.py``, or with ``--check`` report whether it is current."""
    parser = argparse.ArgumentParser(description="Generate stripe_sessions/_wire/dicts.py")
    parser.add_argument("--check", action="store_true", help="fail with a diff if stale")
    args = parser.parse_args(argv)
    new = generate()
    old = TARGET.read_text() if TARGET.exists() else ""
    if args.check:
        if old == new:
            return 0
        diff = difflib.unified_diff(
            old.splitlines(True), new.splitlines(True), str(TARGET), "generated"
        )
        sys.stdout.writelines(diff)
        print(f"\n{TARGET} is stale: run python -m stripe_sessions._wire.dictgen")
        return 1
    if old != new:
        TARGET.write_text(new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
