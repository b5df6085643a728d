"""The examples of the README and the docs run, as written, against a fake; the plugin works.

Which blocks run how: tests/doc_blocks.py (each fence says it).
"""

from __future__ import annotations

import ast
import asyncio
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import stripe_sessions
from stripe_sessions.testing import FakeStripe
from tests.doc_blocks import BLOCKS, KINDS, PAGES, ROOT, Block, classes, of_kind, titled

EXAMPLES = of_kind("run")
PYTEST_FILES = of_kind("pytest-file")
#: Worker-pool examples define hooks a framework calls: test_worker_pool_examples calls them.
WORKER_POOLS = {"celery": "from celery import", "arq": "from arq."}
POOL_BLOCKS = {
    name: b.code
    for name, mark in WORKER_POOLS.items()
    for b in of_kind("worker-pool")
    if mark in b.code
}


def ids(blocks: list[Block]) -> list[str]:
    return [b.id for b in blocks]


@pytest.fixture
def sdk_at_fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStripe]:
    """Clients an example makes without arguments go to the fake, as in a dev setup.

    Through the environment (``STRIPE_API_KEY``, ``STRIPE_BASE_URL``), as the docs tell
    users to point an app at ``stripe-sessions fake-server``: the example sees the real
    module and the real classes.
    """
    with FakeStripe.running() as fake:
        monkeypatch.setenv("STRIPE_API_KEY", fake.api_key)
        monkeypatch.setenv("STRIPE_BASE_URL", fake.url)
        yield fake


def test_readme_has_examples() -> None:
    assert len([b for b in EXAMPLES if b.page == "README.md"]) >= 3
    assert len(EXAMPLES) >= 25
    assert len(PYTEST_FILES) >= 2


def test_every_fence_names_a_known_kind() -> None:
    # A misspelt kind ({.typecheck_only}) would silently run, or silently not.
    for b in BLOCKS:
        for cls in classes(b.info):
            assert cls in KINDS, f"{b.id}: unknown block kind {cls!r} (known: {KINDS})"


def test_every_python_fence_is_collected() -> None:
    # A block the extractor misses is neither run nor type-checked: a misspelt key in it
    # would pass. Every fence that opens Python code (```python, ```py, ```python3, in any
    # case, indented or not) must be one of BLOCKS, spelt ```python.
    for page in PAGES:
        name = str(page.relative_to(ROOT))
        opened = [
            i + 1
            for i, line in enumerate(page.read_text(encoding="utf-8").splitlines())
            if re.match(r"[ \t]*(```+|~~~+)[ \t]*\{?[ \t]*\.?(py|python3?|pycon)\b", line, re.I)
        ]
        found = [b.line for b in BLOCKS if b.page == name]
        assert opened == found, f"{name}: Python fences at lines {opened}, collected {found}"


@pytest.mark.parametrize("block", EXAMPLES, ids=ids(EXAMPLES))
def test_readme_example_runs(block: Block, sdk_at_fake: FakeStripe) -> None:
    code = block.code
    compiled = compile(code, block.page, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    namespace: dict[str, object] = {}
    result = eval(compiled, namespace)
    if asyncio.iscoroutine(result):
        asyncio.run(result)
    calls = re.search(r"^[^#\n]*customer_sessions\.", code, flags=re.M)  # not in a comment
    if calls and "FakeStripe" not in code:
        assert sdk_at_fake.created >= 1


@pytest.mark.parametrize("block", PYTEST_FILES, ids=ids(PYTEST_FILES))
def test_the_docs_pytest_examples_pass_as_written(block: Block, pytester: pytest.Pytester) -> None:
    # pytest-asyncio's defaults (strict mode): only the example's own marks make it async.
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_docs_example=block.code)
    for module in titled(block.page):  # e.g. the page's app.py, which the test imports
        assert module.title is not None
        pytester.makepyfile(**{module.title.removesuffix(".py"): module.code})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=len(re.findall(r"^(?:async )?def test_", block.code, flags=re.M)))


def test_pytest_plugin_fixture_from_a_test_file(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(
        """
        import stripe_sessions as ss

        P = {"pricing_table": {"enabled": True}}

        def test_sync(fake_stripe):
            with ss.Client(api_key=fake_stripe.api_key, base_url=fake_stripe.url) as s:
                s.customer_sessions.create(customer="cus_1", components=P)
            assert fake_stripe.created == 1

        async def test_async(fake_stripe):
            async with ss.AsyncClient(api_key=fake_stripe.api_key, base_url=fake_stripe.url) as s:
                await s.customer_sessions.create(customer="cus_1", components=P)
            assert fake_stripe.created == 1

        def test_fresh_per_test(fake_stripe):
            assert fake_stripe.created == 0 and fake_stripe.requests == []
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_the_registered_plugin_imports_nothing_heavy() -> None:
    # pytest imports the plugin at every start-up of every run in the environment.
    code = (
        "import sys, stripe_sessions.testing.plugin, stripe_sessions, stripe_sessions.testing\n"
        "heavy = sorted(m for m in ('aiohttp', 'cattrs', 'tenacity', 'stripe_sessions._fake',"
        " 'stripe_sessions._client') if m in sys.modules)\n"
        "print(heavy)\n"
        "import stripe_sessions as ss; from stripe_sessions.testing import FakeStripe\n"
        "assert ss.AsyncClient.__name__ == 'AsyncClient' and FakeStripe.__name__ == 'FakeStripe'\n"
        "assert 'AsyncClient' in dir(ss) and 'FakeStripe' in dir(stripe_sessions.testing)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_a_misspelt_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="AsyncClinet"):
        _ = stripe_sessions.AsyncClinet  # type: ignore[attr-defined]
    with pytest.raises(ImportError):
        from stripe_sessions.testing import FakeStrip  # type: ignore[attr-defined]  # noqa: F401, PLC0415


def test_a_client_imports_only_what_its_first_call_needs() -> None:
    # Import time: retries (tenacity), answers (cattrs), batches, the fake and the CLI
    # load when first used, not with the client.
    code = (
        "import sys, stripe_sessions as ss; ss.AsyncClient; ss.Client\n"
        "print(sorted(m for m in ('tenacity', 'cattrs', 'stripe_sessions._batch.engine', "
        "'stripe_sessions.testing', 'stripe_sessions._cli.batch') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_every_worker_pool_example_is_found() -> None:
    assert set(POOL_BLOCKS) == set(WORKER_POOLS)


@pytest.mark.parametrize("pool", sorted(WORKER_POOLS))
def test_worker_pool_examples(pool: str, sdk_at_fake: FakeStripe, redis_server: Any) -> None:
    """Each worker-pool example, driven as its framework would, shares a real Redis budget."""
    pytest.importorskip(pool)
    code = POOL_BLOCKS[pool].replace("redis://localhost:6379/0", redis_server.url)
    namespace: dict[str, Any] = {}
    exec(compile(code, f"{pool} worker-pool example", "exec"), namespace)
    ids = [f"cus_{i}" for i in range(5)]
    if pool == "celery":
        try:  # the module-level client, as in a pool process after the import
            assert namespace["create_sessions"](ids) == 5  # a task called directly runs here
        finally:
            namespace["stripe"].close()  # at the pool process's exit
    else:

        async def worker() -> int:
            ctx: dict[str, Any] = {}
            await namespace["startup"](ctx)
            try:
                return int(await namespace["create_sessions"](ctx, ids))
            finally:
                await namespace["shutdown"](ctx)

        assert asyncio.run(worker()) == 5
    assert sorted(r.form["customer"] for r in sdk_at_fake.requests) == ids
