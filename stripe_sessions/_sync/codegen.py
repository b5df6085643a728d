"""Write ``_sync/client.py`` from ``_resource.py`` and ``_client.py``; ``--check``: is it stale?

    python -m stripe_sessions._sync.codegen           # regenerate
    python -m stripe_sessions._sync.codegen --check   # exit 1 with a diff if out of date

The sync module mirrors every public class and method of the async module: the same
parameters, defaults, annotations and docstrings (with ``await`` and ``async`` taken
out). Coroutine methods run on the client's private loop (``_sync.portal.Portal.call``);
async generators become generators (``Portal.iterate``). What cannot be derived
(lifecycle, context manager, repr) is written by hand in ``_sync.base.SyncClientBase``, the
generated ``Client``'s base class, so the output holds only delegating methods. The output is passed
through ``ruff format`` so that it is formatter-clean.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
#: The hand-written async API: the resource, then the client.
SOURCES = (HERE.parent / "_resource.py", HERE.parent / "_client.py")
TARGET = HERE / "client.py"

RENAMES = {"AsyncClient": "Client", "AsyncCustomerSessions": "CustomerSessions"}
#: Constructor parameters that may hold a secret (the key, a proxy's credentials, headers).
SECRET_ARGUMENTS = ("api_key", "proxy", "default_headers")
#: Constructor parameters the sync client leaves out, and why.
DROPPED = {
    # An aiohttp.ClientSession is bound to the loop it was made on; the sync client's
    # loop is private, so a caller's session could never be used there.
    "session",
}

SYNC_SUMMARY = "The blocking client for Stripe's Customer Sessions API, on a private loop."

BANNER = '''\
# GENERATED FILE: do not edit. Written by `python -m stripe_sessions._sync.codegen` from
# _resource.py and _client.py; change those and run the generator again (CI runs it with --check).
"""The synchronous client: the async client's API, blocking, on a private event loop."""
'''


def _text(node: ast.AST | None) -> str:
    return "" if node is None else _rename(ast.unparse(node))


def _rename(text: str) -> str:
    for old, new in RENAMES.items():
        text = re.sub(rf"\b{old}\b", new, text)
    # An async generator becomes a generator (it has close(), as the async one has aclose()).
    text = re.sub(r"\bAsyncGenerator\[(\w+), None\]", r"Generator[\1, None, None]", text)
    # A batch's stream (an async generator with its ``batch_key``) becomes a generator.
    text = re.sub(r"\bBatchStream\b", "Generator[BatchResult, None, None]", text)
    return text.replace("AsyncIterator[", "Iterator[")


def _doc(text: str | None) -> str:
    if not text:
        return ""
    # Paragraphs about parameters the sync client drops do not apply to it.
    paragraphs = text.split("\n\n")
    text = "\n\n".join(p for p in paragraphs if not any(f"``{d}``" in p for d in DROPPED))
    text = text.replace("The asyncio client for Stripe's Customer Sessions API.", SYNC_SUMMARY)
    text = _rename(text)
    text = text.replace("await ", "").replace("async with ", "with ").replace("async for ", "for ")
    text = text.replace("aclose()", "close()").replace(".aclose", ".close")
    text = text.replace("contextlib.aclosing", "contextlib.closing")
    return text


def _docstring(text: str | None, indent: str) -> list[str]:
    doc = _doc(text)
    if not doc:
        return []
    if "\n" in doc and not doc.rstrip(" ").endswith("\n"):
        doc += "\n" + indent
    return [f'{indent}"""{doc}"""']


def _is_async_gen(fn: ast.AsyncFunctionDef) -> bool:
    return any(
        isinstance(n, (ast.Yield, ast.YieldFrom))
        for n in ast.walk(fn)
        if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) or n is fn
    )


def _params(fn: ast.FunctionDef | ast.AsyncFunctionDef, drop: set[str]) -> tuple[str, str]:
    """The signature text (without self) and the call's keyword arguments."""
    args = fn.args
    sig: list[str] = []
    call: list[str] = []
    positional = args.posonlyargs + args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    for arg, default in zip(positional, defaults, strict=True):
        if arg.arg == "self":
            continue
        text = f"{arg.arg}: {_text(arg.annotation)}" if arg.annotation else arg.arg
        sig.append(text + (f" = {_text(default)}" if default is not None else ""))
        call.append(arg.arg)
    if args.kwonlyargs:
        sig.append("*")
    for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        if arg.arg in drop:
            continue
        text = f"{arg.arg}: {_text(arg.annotation)}" if arg.annotation else arg.arg
        sig.append(text + (f" = {_text(kw_default)}" if kw_default is not None else ""))
        call.append(f"{arg.arg}={arg.arg}")
    return ", ".join(["self", *sig]), ", ".join(call)


#: Methods of the async classes that the sync side has by hand (``_sync.base.SyncClientBase``).
BY_HAND = {"__aenter__", "__aexit__", "aclose", "__repr__", "closed"}


def _method(cls: str, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    is_client = cls == "AsyncClient"
    drop = DROPPED if (is_client and fn.name == "__init__") else set()
    sig, call = _params(fn, drop)
    returns = _text(fn.returns)
    out: list[str] = []
    out.extend(f"    @{_text(d)}" for d in fn.decorator_list)
    if fn.name == "__init__" and not is_client:  # a resource wraps its async twin
        out.append(f"    def __init__(self, resource: {cls}, portal: Portal) -> None:")
        out += ["        self._async = resource", "        self._portal = portal"]
        return out
    out.append(f"    def {fn.name}({sig}) -> {returns}:")
    out.extend(_docstring(ast.get_docstring(fn, clean=False), "        "))
    if fn.name == "__init__":
        # As AsyncClient.__init__ does: a bad setting is raised afresh from a frame that
        # no longer holds the key or the proxy's credentials (an error tracker renders
        # the locals of every frame on the traceback, this one included).
        secrets = ", ".join(a for a in SECRET_ARGUMENTS if f"{a}=" in call)
        out += [
            "        failure: StripeError",
            "        try:",
            f"            client = AsyncClient({call})",
            "        except StripeError as e:",
            "            failure = e",
            "        else:",
            "            super().__init__(client)",
            "            return",
            f"        del {secrets}",
            "        raise failure.with_traceback(None)",
        ]
    elif (isinstance(fn, ast.AsyncFunctionDef) and _is_async_gen(fn)) or returns.startswith(
        "Generator["  # a plain method that returns an async generator
    ):
        out.append(f"        return self._portal.iterate(self._async.{fn.name}({call}))")
    elif isinstance(fn, ast.AsyncFunctionDef):
        sep = ", " if call else ""
        out.append(f"        return self._portal.call(self._async.{fn.name}{sep}{call})")
    elif returns == "Client":
        out.append(f"        return self._derive(self._async.{fn.name}({call}))")
    else:
        out.append(f"        return self._async.{fn.name}")
    return out


def _bind(setup: ast.FunctionDef) -> list[str]:
    """``_bind``: each resource the async ``_setup`` builds, wrapped for the sync client."""
    out = ["    def _bind(self) -> None:"]
    for node in ast.walk(setup):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id in RENAMES
        ):
            (target,) = node.targets
            assert isinstance(target, ast.Attribute)
            resource = RENAMES[node.value.func.id]
            out.append(
                f"        self.{target.attr} = {resource}(self._async.{target.attr}, self._portal)"
            )
    return out


def generate() -> str:
    """Return the formatted text of the sync module."""
    trees = [ast.parse(source.read_text()) for source in SOURCES]
    tree = ast.Module(body=[node for t in trees for node in t.body], type_ignores=[])
    body: list[str] = []
    for node in tree.body:
        if not isinstance(node, ast.ClassDef) or node.name not in RENAMES:
            continue
        base = "(SyncClientBase)" if node.name == "AsyncClient" else ""
        body.append(f"class {RENAMES[node.name]}{base}:")
        body.extend(_docstring(ast.get_docstring(node, clean=False), "    "))
        for item in node.body:
            if not isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if item.name == "_setup" and isinstance(item, ast.FunctionDef):
                body += ["", *_bind(item)]
                continue
            if item.name in BY_HAND or (item.name.startswith("_") and item.name != "__init__"):
                continue
            body.append("")
            body.extend(_method(node.name, item))
        body.extend(["", ""])
    code = "\n".join(body)
    imports = _imports(tree, code)
    exports = '__all__ = ["Client", "CustomerSessions"]'
    text = f"{BANNER}\n{imports}\n\n{exports}\n\n\n{code}"
    return _format(text)


def _imports(tree: ast.Module, code: str) -> str:
    """The async module's imports that the generated code uses, plus the sync extras."""
    used = {n.id for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Name)}
    lines = ["from __future__ import annotations", ""]
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            names = [a for a in node.names if (a.asname or a.name) in used]
            if node.module == "collections.abc":
                names.extend(ast.alias(n) for n in ("Generator", "Iterator") if n in used)
            if names:
                names.sort(key=lambda a: a.name)
                # the source is one package up: a relative import gains a level
                level = node.level + 1 if node.level else 0
                module = "." * level + (node.module or "")
                lines.append(f"from {module} import {', '.join(a.name for a in names)}")
        elif isinstance(node, ast.Import):
            names = [a for a in node.names if (a.asname or a.name) in used]
            if names:
                lines.append(f"import {', '.join(a.name for a in names)}")
    lines.append("from .._client import AsyncClient")
    lines.append("from .portal import Portal")
    lines.append("from .base import SyncClientBase")
    return "\n".join(lines)


def _format(text: str) -> str:
    steps = (["check", "--fix", "--select", "I", "--quiet", "-"], ["format", "-"])
    for step in steps:
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *step, "--stdin-filename", str(TARGET)],
            input=text,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"ruff failed on the generated code:\n{done.stderr}{done.stdout}")
        text = done.stdout
    return text


def main(argv: list[str] | None = None) -> int:
    """Regenerate the sync client, or with ``--check`` report whether it is current."""
    parser = argparse.ArgumentParser(description="Generate stripe_sessions/_sync/client.py")
    parser.add_argument("--check", action="store_true", help="fail with a diff if stale")
    args = parser.parse_args(argv)
    new = generate()
    if args.check:
        old = TARGET.read_text() if TARGET.exists() else ""
        if old != new:
            diff = difflib.unified_diff(
                old.splitlines(keepends=True),
                new.splitlines(keepends=True),
                str(TARGET.name) + " (on disk)",
                str(TARGET.name) + " (generated)",
            )
            sys.stdout.writelines(diff)
            print(
                "\n_sync/client.py is stale: run `python -m stripe_sessions._sync.codegen`.",
                file=sys.stderr,
            )
            return 1
        print("_sync/client.py is current.")
        return 0
    TARGET.write_text(new)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
