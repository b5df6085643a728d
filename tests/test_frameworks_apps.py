"""The framework examples (examples/frameworks/) run against the fake: Flask, FastAPI, Django.

Each example reads its key and base URL from the environment (``STRIPE_API_KEY``,
``STRIPE_BASE_URL``), as a dev setup pointed at ``stripe-sessions fake-server`` does.
The servers themselves (uvicorn, gunicorn, celery, a Jupyter kernel) are run by
``examples/frameworks/run.sh``, not here: these are the apps, through each
framework's own test client, in a few seconds.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from stripe_sessions.testing import FakeStripe
from tests.helpers import dev_stderr

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "frameworks"


@pytest.fixture
def env(fake_stripe: FakeStripe, monkeypatch: pytest.MonkeyPatch) -> FakeStripe:
    """The environment a dev setup gives an app pointed at the fake."""
    monkeypatch.setenv("STRIPE_API_KEY", fake_stripe.api_key)
    monkeypatch.setenv("STRIPE_BASE_URL", fake_stripe.url)
    return fake_stripe


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / name / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_flask_example_serves_sessions_with_its_module_level_client(env: FakeStripe) -> None:
    pytest.importorskip("flask")
    app = _load("flask")
    try:
        client = app.app.test_client()
        answer = client.post("/pricing-session?customer=cus_flask")
        assert answer.status_code == 200
        assert answer.json["client_secret"].startswith("cuss_secret_")
    finally:
        app.stripe.close()
    assert env.created == 1 and env.requests[-1].form["customer"] == "cus_flask"


def test_fastapi_example_opens_and_closes_its_client_in_the_lifespan(env: FakeStripe) -> None:
    pytest.importorskip("httpx")  # fastapi's TestClient
    testclient = pytest.importorskip("fastapi.testclient")
    app = _load("fastapi")
    with testclient.TestClient(app.app) as client:  # runs the lifespan, on its own loop
        answer = client.post("/pricing-session", params={"customer": "cus_fastapi"})
        assert answer.status_code == 200
        assert answer.json()["client_secret"].startswith("cuss_secret_")
        refused = client.post("/pricing-session", params={"customer": "not a customer"})
        assert refused.status_code == 400
        assert refused.json() == {"error": "resource_missing", "param": "customer"}
        stripe = app.app.state.stripe
        assert not stripe.closed
    assert stripe.closed  # closed by the lifespan at shutdown
    assert env.created == 1


DJANGO = """
import asyncio, json, os, sys

sys.path.insert(0, {example!r})
os.environ["DJANGO_SETTINGS_MODULE"] = "project"
import django

django.setup()
from django.test import AsyncClient, Client
from django.test.utils import setup_test_environment

setup_test_environment()


async def async_view():
    answer = await AsyncClient().get("/async", {{"customer": "cus_django"}})
    return answer.status_code, json.loads(answer.content)["client_secret"][:12]


# The import-time AsyncClient, from two event loops one after the other (as two ASGI
# server runs, or per-test loops); each loop's pool closes with its loop.
out = [asyncio.run(async_view()), asyncio.run(async_view())]
answer = Client().get("/sync", {{"customer": "cus_django"}})
out.append((answer.status_code, json.loads(answer.content)["client_secret"][:12]))
print(json.dumps(out))
"""


def test_django_example_import_time_clients_across_loops_and_sync(env: FakeStripe) -> None:
    pytest.importorskip("django")
    # A fresh interpreter: django.setup() configures the process for good. -X dev and
    # -W error: any warning, an "Unclosed client session" at exit included, fails it.
    proc = subprocess.run(
        [
            sys.executable,
            "-X",
            "dev",
            "-W",
            "error",
            "-c",
            textwrap.dedent(DJANGO).format(example=str(EXAMPLES / "django")),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Nothing on stderr: no warning, no "Unclosed", nothing at exit. Only -X dev's asyncio
    # debug lines for callbacks slower than 100 ms are left out (a busy machine's).
    assert dev_stderr(proc.stderr) == ""
    assert json.loads(proc.stdout) == [[200, "cuss_secret_"]] * 3
    assert env.created == 3
