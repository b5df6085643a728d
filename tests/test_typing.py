"""`mypy --strict` over every code example of the README and the docs, as a user's code.

Each ```python block (tests/doc_blocks.py: README.md and docs/**/*.md, whatever its
fence says about running it) becomes the body of a coroutine in one module, so top-level
``await`` and ``async with`` type-check as they would inside a coroutine, and one mypy
run checks them all. An example that fails strict type-checking fails here.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from tests.doc_blocks import BLOCKS

mypy_api = pytest.importorskip("mypy.api")

PREAMBLE = "from __future__ import annotations\n"

#: Django ships no types (a user would add django-stubs): its names are Any here, as they
#: would be in a user's strict project without the stubs. Everything else is typed.
CONFIG = """\
[mypy]
strict = True
python_version = 3.10

[mypy-django.*]
ignore_missing_imports = True
"""


def docs_module() -> str:
    parts = [PREAMBLE]
    for block in BLOCKS:
        name = re.sub(r"\W", "_", block.id)
        parts.append(
            f"\n\n# {block.id} ({block.kind})\n"
            f"async def block_{name}() -> None:\n{textwrap.indent(block.code, '    ')}"
        )
    return "".join(parts)


def test_docs_examples_pass_mypy_strict(tmp_path: Path) -> None:
    module = tmp_path / "docs_examples.py"
    module.write_text(docs_module())
    config = tmp_path / "mypy.ini"
    config.write_text(CONFIG)
    out, err, status = mypy_api.run(
        [
            "--config-file",
            str(config),
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            str(module),
        ]
    )
    assert status == 0, f"{out}{err}\n--- checked module ---\n{module.read_text()}"
