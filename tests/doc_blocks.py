"""The ```python blocks of README.md and docs/**/*.md, as the suite runs and type-checks them.

A block's fence says how it is checked (docs/development.md, "The docs"):

- ```` ```python ````: run against an embedded fake (tests/test_readme.py);
- ```` ```python {.pytest-file} ````: saved as a test file and run by pytest;
- ```` ```python {.worker-pool} ````: a Celery or arq recipe, driven as its pool would;
- ```` ```python {.typecheck-only} ````: not run (it needs a server, a framework's runner
  or api.stripe.com); the page says why.

A block may also have a title naming a file (```` ```python {.typecheck-only title="app.py"} ````,
shown above the block on the site): a ``.pytest-file`` block of the same page may import
it (``from app import app``), and the suite saves it beside that test file.

Every block, whatever its fence, is type-checked by one mypy run (tests/test_typing.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
KINDS = ("run", "pytest-file", "worker-pool", "typecheck-only")

#: A fenced block opening a line (indented inside an admonition or a tab, perhaps), up to
#: the closing fence at the same indent. Inline ```` ```python ```` in prose never matches.
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```python(?P<info>[^\n`]*)\n(?P<code>.*?)^(?P=indent)```[ \t]*$",
    flags=re.M | re.S,
)


@dataclass(frozen=True)
class Block:
    """One code example: where it is, how it is checked, and its code."""

    page: str
    line: int
    kind: str
    code: str
    info: str

    @property
    def title(self) -> str | None:
        """The file name the fence gives the block (``title="app.py"``), if any."""
        m = re.search(r'\btitle="([^"]+)"', self.info)
        return m[1] if m else None

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def classes(info: str) -> list[str]:
    """The ``.class`` names of a fence's attributes (not the ``.py`` of a ``title=``)."""
    return re.findall(r"(?:^|[\s{])\.([\w-]+)", re.sub(r'"[^"]*"', '""', info))


def blocks() -> list[Block]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            kinds = [c for c in classes(m["info"]) if c in KINDS]
            indent = m["indent"]
            code = "".join(
                line[len(indent) :] if line.startswith(indent) else line
                for line in m["code"].splitlines(keepends=True)
            )
            found.append(
                Block(
                    page=str(page.relative_to(ROOT)),
                    line=text.count("\n", 0, m.start()) + 1,
                    kind=kinds[0] if kinds else "run",
                    code=code,
                    info=m["info"].strip(),
                )
            )
    return found


BLOCKS = blocks()


def of_kind(kind: str) -> list[Block]:
    return [b for b in BLOCKS if b.kind == kind]


def titled(page: str) -> list[Block]:
    """The blocks of ``page`` that name a Python file (``title="app.py"``)."""
    return [b for b in BLOCKS if b.page == page and (b.title or "").endswith(".py")]
