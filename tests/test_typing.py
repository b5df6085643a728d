"""`mypy --strict` over every code example of the README and the docs, as a user's code.

Each ```python block (tests/doc_blocks.py: README.md and docs/**/*.md, whatever its
fence says about running it) becomes the body of a coroutine in one module, so top-level
``await`` and ``async with`` type-check as they would inside a coroutine, and one mypy
run checks them all. An example that fails strict type-checking fails here.

A block that imports a file the page names (``from app import app``, the page's
``title="app.py"`` block) gets that block's code in place of the import.

The same run proves the check has teeth: each ``typecheck-only`` block that passes
``{"pricing_table": ...}`` (the examples nothing runs) is also added with the key
misspelt, and mypy must report an error in every such copy, and nowhere else.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from tests.doc_blocks import BLOCKS, Block, titled

mypy_api = pytest.importorskip("mypy.api")

#: Static checks: what they find does not depend on the Python running them (mypy is
#: pinned to python_version 3.10 in pyproject.toml), so CI runs them on one Python.
pytestmark = pytest.mark.typecheck

PREAMBLE = "from __future__ import annotations\n"

#: Django and gevent ship no types (a user would add django-stubs, types-gevent): their
#: names are Any here, as they would be in a user's strict project without the stubs.
#: Everything else is typed.
CONFIG = """\
[mypy]
strict = True
python_version = 3.10

[mypy-django.*]
ignore_missing_imports = True

[mypy-gevent.*]
ignore_missing_imports = True
"""


GOOD_KEY = '"pricing_table": {'
BAD_KEY = '"pricing_tabel": {'


def _with_imports(block: Block) -> str:
    """The block's code, a page file it imports (``from app import app``) put in its place."""
    code = block.code
    for module in titled(block.page):
        assert module.title is not None
        name = re.escape(module.title.removesuffix(".py"))
        m = re.search(rf"^from {name} import .*$", code, flags=re.M)
        if m:
            code = code[: m.start()] + module.code + code[m.end() :]
    return code


def _name(block: Block) -> str:
    return re.sub(r"\W", "_", block.id)


def _function(name: str, comment: str, code: str) -> str:
    return f"\n\n# {comment}\nasync def {name}() -> None:\n{textwrap.indent(code, '    ')}"


def misspelt() -> list[Block]:
    """The unrun blocks that pass a pricing table: each is checked again with a typo."""
    return [b for b in BLOCKS if b.kind == "typecheck-only" and GOOD_KEY in b.code]


def docs_module() -> str:
    parts = [PREAMBLE]
    for block in BLOCKS:
        code = _with_imports(block)
        parts.append(_function(f"block_{_name(block)}", f"{block.id} ({block.kind})", code))
    for block in misspelt():
        code = _with_imports(block).replace(GOOD_KEY, BAD_KEY)
        parts.append(_function(f"misspelt_{_name(block)}", f"{block.id}, misspelt", code))
    return "".join(parts)


def _errors_by_function(module: str, out: str) -> dict[str, int]:
    """How many errors mypy reported in each generated function."""
    starts = [
        (i + 1, m[1])
        for i, line in enumerate(module.splitlines())
        if (m := re.match(r"async def (\w+)\(", line))
    ]
    counts: dict[str, int] = {}
    for m in re.finditer(r":(\d+): error:", out):
        line = int(m[1])
        owner = max((s for s in starts if s[0] <= line), default=(0, "<module>"))[1]
        counts[owner] = counts.get(owner, 0) + 1
    return counts


def test_docs_examples_pass_mypy_strict(tmp_path: Path) -> None:
    module = tmp_path / "docs_examples.py"
    module.write_text(docs_module())
    config = tmp_path / "mypy.ini"
    config.write_text(CONFIG)
    out, err, _status = mypy_api.run(
        [
            "--config-file",
            str(config),
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            str(module),
        ]
    )
    text = module.read_text()
    errors = _errors_by_function(text, out)
    expected = {f"misspelt_{_name(b)}" for b in misspelt()}
    assert misspelt(), "no unrun block passes a pricing table: the self-check checks nothing"
    wrong = {name: n for name, n in errors.items() if name not in expected}
    assert not wrong and not err, f"{out}{err}\n--- checked module ---\n{text}"
    missed = sorted(expected - set(errors))
    assert not missed, f"a misspelt key passed mypy in: {missed}\n{out}"
