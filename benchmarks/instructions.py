"""Instructions per create, by callgrind: where the client's time goes, without the noise.

python benchmarks/instructions.py                 # every variant (needs valgrind)
python benchmarks/instructions.py sdk floor       # some of them

Each variant runs twice under ``valgrind --tool=callgrind`` (all threads counted),
with N1 and N2 creates against the Stripe-like ``server.py`` (which runs outside
valgrind); the difference divided by N2 - N1 is the cost of one create, start-up and
warm-up excluded. Instruction counts are the same from run to run whatever else the
machine is doing, unlike CPU time. Valgrind slows the client about fifty times, so the
server always has an answer ready: event-loop dynamics differ from a real run (more
answers per loop iteration), which matters for comparing harnesses, not for the cost
of the code on the path of one create.

``python benchmarks/instructions.py --run VARIANT URL N`` is one such client run.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from clients import BODY, FLOOR_HEADERS, KEY, PARAMS  # the benchmark's requests

HERE = Path(__file__).parent
N1, N2 = 300, 1300
VARIANTS = {
    "floor": "raw aiohttp: 3 headers, pre-built body, json.loads (gather, 32 at a time)",
    "floor-as-sdk": "raw aiohttp used as the SDK uses it: its headers, options and an "
    "os.urandom idempotency key",
    "sdk": "customer_sessions.create (gather, 32 at a time)",
    "sdk-workers": "customer_sessions.create from 32 worker tasks, sessions kept",
    "create_many": "customer_sessions.create_many over a list, concurrency 32",
    "create_many-gen": "customer_sessions.create_many over a generator (the input thread)",
    "piece:encode": "checking and encoding the parameters (encode_create)",
    "piece:options": "the call's RequestOptions, with a fresh idempotency key",
    "piece:structure": "building the CustomerSession from the answer's JSON",
}


def _piece(variant: str, n: int) -> None:
    from stripe_sessions._http.options import RequestOptions
    from stripe_sessions._wire.converter import structure_session
    from stripe_sessions._wire.encode import encode_create

    example = json.loads((HERE.parent / "tests/fixtures/customer_session.json").read_text())
    components = PARAMS["components"]
    calls = {
        "piece:encode": lambda: encode_create(components, "cus_bench", None, None, None),
        "piece:options": lambda: RequestOptions.checked(None, None, None, None, None),
        "piece:structure": lambda: structure_session(example, "req_1", False),
    }
    call = calls[variant]
    for _ in range(n):
        call()


async def _client(variant: str, url: str, n: int) -> None:
    import aiohttp

    import stripe_sessions as ss

    if variant.startswith("piece:"):
        _piece(variant, n)
        return
    if variant in ("sdk", "sdk-workers", "create_many", "create_many-gen"):
        client = ss.AsyncClient(api_key=KEY, base_url=url)
        if variant.startswith("create_many"):
            items = [PARAMS] * n
            results = await client.customer_sessions.create_many(
                items if variant == "create_many" else (p for p in items),
                concurrency=32,
                rate_limit=None,
            )
            assert all(r.ok for r in results)
        elif variant == "sdk-workers":
            todo, kept = iter(range(n)), []

            async def worker() -> None:
                for _ in todo:
                    kept.append(await client.customer_sessions.create(**PARAMS))

            await asyncio.gather(*(worker() for _ in range(32)))
        else:
            gate = asyncio.Semaphore(32)

            async def one() -> str:
                async with gate:
                    return (await client.customer_sessions.create(**PARAMS)).client_secret

            await asyncio.gather(*(one() for _ in range(n)))
        await client.aclose()
        return
    headers = dict(FLOOR_HEADERS)
    options: dict[str, Any] = {}
    session_options: dict[str, Any] = {}
    as_sdk = variant == "floor-as-sdk"
    if as_sdk:
        headers |= {
            "User-Agent": f"stripe-sessions aiohttp/{aiohttp.__version__}",
            "Accept": "application/json",
            "Accept-Encoding": "identity",
        }
        options = {
            "timeout": aiohttp.ClientTimeout(total=80, connect=30),
            "allow_redirects": False,
            "auto_decompress": False,
            "proxy": None,
            "ssl": True,
        }
        session_options = {"cookie_jar": aiohttp.DummyCookieJar(), "auto_decompress": False}
    session = aiohttp.ClientSession(**session_options)
    endpoint = url + "/v1/customer_sessions"
    gate = asyncio.Semaphore(32)

    async def raw() -> str:
        sent = headers
        if as_sdk:
            sent = headers.copy()
            sent["Idempotency-Key"] = os.urandom(16).hex()
        async with gate, session.post(endpoint, data=BODY, headers=sent, **options) as resp:
            secret: str = json.loads(await resp.read())["client_secret"]
            return secret

    await asyncio.gather(*(raw() for _ in range(n)))
    await session.close()


def instructions(script: str, variant: str, url: str, n: int) -> int:
    """Instructions of one ``script --run variant url n`` under callgrind (all threads)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                script,
                "--run",
                variant,
                url,
                str(n),
            ],
            check=True,
            capture_output=True,
        )
        found = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
        assert found, "no total in callgrind's output"
        return int(found.group(1))


def table(script: str, variants: dict[str, str], chosen: list[str], digits: int = 0) -> None:
    """Print instructions per create of each chosen variant (``script`` runs one), against
    the Stripe-like server: (I(N2) - I(N1)) / (N2 - N1), start-up and warm-up excluded."""
    server = subprocess.Popen(
        [sys.executable, str(HERE / "server.py")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{server.stdout.readline().strip()}"
        print("| variant | instructions per create | what |")
        print("|---|---|---|")
        for variant in chosen:
            low = instructions(script, variant, url, N1)
            high = instructions(script, variant, url, N2)
            per = (high - low) / (N2 - N1)
            print(f"| {variant} | {per / 1000:.{digits}f} K | {variants[variant]} |", flush=True)
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    if sys.argv[1:2] == ["--run"]:
        variant, url, n = sys.argv[2], sys.argv[3], int(sys.argv[4])
        asyncio.run(_client(variant, url, n))
        return
    table(__file__, VARIANTS, sys.argv[1:] or list(VARIANTS))


if __name__ == "__main__":
    main()
