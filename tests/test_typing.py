"""`mypy --strict` over the README's examples, as a user would write them in their own code.

Each ```python block of the README becomes the body of a function in one module (so
top-level ``await`` and ``async with`` type-check as they would inside a coroutine).
A README example that fails strict type-checking fails here.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"

PREAMBLE = "from __future__ import annotations\n"


def readme_module() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    parts = [PREAMBLE]
    for i, block in enumerate(blocks):
        parts.append(f"\n\nasync def block_{i}() -> None:\n{textwrap.indent(block, '    ')}")
    return "".join(parts)


def test_readme_examples_pass_mypy_strict(tmp_path: Path) -> None:
    module = tmp_path / "readme_examples.py"
    module.write_text(readme_module())
    out, err, status = mypy_api.run(
        [
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            "--python-version",
            "3.10",
            str(module),
        ]
    )
    assert status == 0, f"{out}{err}\n--- checked module ---\n{module.read_text()}"
