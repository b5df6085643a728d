"""`stripe-sessions fake-server` as a dev server, driven from this process over HTTP."""

from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

import stripe_sessions as ss

KEY = "sk_test_dev_server_0123"
P = {"pricing_table": {"enabled": True}}
#: Waits that only end a test that would otherwise hang; never met by a passing run.
HANG_GUARD = 60.0


class Server:
    """A ``fake-server`` subprocess on a free port, its stderr read line by line."""

    def __init__(self, *options: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stripe_sessions", "fake-server", "--port", "0", *options],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.said: list[str] = []
        first = self.line()
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", first)
        assert found, first
        self.url = found.group(1)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line)
        self.lines.put("")

    def line(self) -> str:
        text = self.lines.get(timeout=HANG_GUARD)
        self.said.append(text)
        return text

    def control(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + "/_fake/" + path, data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=HANG_GUARD) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            with e:
                return e.code, json.loads(e.read())

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=HANG_GUARD)
        finally:
            self.proc.kill()
            self.proc.wait()
            assert self.proc.stderr is not None
            self.proc.stderr.close()


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    options = getattr(request, "param", ())
    running = Server(*options)
    try:
        yield running
    finally:
        running.stop()


def create(server: Server, customer: str = "cus_1", **kwargs: Any) -> ss.CustomerSession:
    with ss.Client(api_key=KEY, base_url=server.url, **kwargs) as client:
        return client.customer_sessions.create(customer=customer, components=P)


def test_help_describes_the_server_its_knobs_and_the_control_endpoint() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "stripe_sessions", "fake-server", "--help"],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=True,
    )
    for words in (
        "Serve the embedded fake Stripe",
        "example:",
        "--fault-rate",
        "--fault-kinds",
        "--latency",
        "--jitter",
        "--customer",
        "--strict-customers",
        "--rate-limit",
        "--rate-limit-reason",
        "--max-records",
        "POST /_fake/faults",
        "POST /_fake/reset",
        "GET  /_fake/sessions",
        '{"kind": "status", "status": 503, "count": 2}',
    ):
        assert words in out.stdout, words


def test_another_process_queues_faults_reads_sessions_and_resets(server: Server) -> None:
    assert server.control("GET", "health") == (
        200,
        {
            "ok": True,
            "created": 0,
            "queued_faults": 0,
            "recorded_requests": 0,
            "strict_customers": False,
        },
    )
    status, body = server.control("POST", "faults", {"kind": "status", "status": 503, "count": 2})
    assert status == 200 and body["queued_faults"] == 2
    session = create(server)  # the SDK retries both 503s, with one idempotency key
    status, listed = server.control("GET", "sessions")
    assert status == 200 and listed["created"] == 1
    assert listed["data"][0]["session"]["client_secret"] == session.client_secret
    _, requests = server.control("GET", "requests")
    assert [r["status"] for r in requests["data"]] == [503, 503, 200]
    assert len({r["idempotency_key"] for r in requests["data"]}) == 1

    server.control("POST", "faults", {"kind": "rate_limit", "reason": "endpoint-rate"})
    with pytest.raises(ss.RateLimitError) as caught:
        create(server)
    assert caught.value.headers["Stripe-Rate-Limited-Reason"] == "endpoint-rate"

    status, body = server.control("POST", "faults", {"kind": "slow", "seconds": "3"})
    assert status == 400 and body["error"]["param"] == "seconds"
    status, body = server.control("POST", "reset")
    assert status == 200 and (body["created"], body["recorded_requests"]) == (0, 0)
    assert server.stop() == 130


@pytest.mark.parametrize("server", [("--customer", "cus_alice")], indirect=True)
def test_strict_customers_from_the_command_line_and_the_endpoint(server: Server) -> None:
    assert "strict customers: 1 exist" in "".join(server.line() for _ in range(3))
    assert create(server, "cus_alice").customer_id == "cus_alice"
    with pytest.raises(ss.InvalidRequestError, match="No such customer: 'cus_bob'"):
        create(server, "cus_bob")
    assert server.control("POST", "customers", {"id": "cus_bob"})[0] == 200
    assert create(server, "cus_bob").customer_id == "cus_bob"


@pytest.mark.parametrize(
    "server",
    [("--fault-rate", "1", "--fault-kinds", "server_error", "--seed", "1")],
    indirect=True,
)
def test_random_faults_from_the_command_line(server: Server) -> None:
    with pytest.raises(ss.APIError) as caught:
        create(server, max_retries=1)
    assert caught.value.http_status in (500, 502, 503)
    _, requests = server.control("GET", "requests")
    assert [r["fault"] for r in requests["data"]] == [str(r["status"]) for r in requests["data"]]
    assert len(requests["data"]) == 2


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--fault-rate", "2"], "must be from 0 to 1"),
        (["--fault-kinds", "server_error,explode"], "explode: not a fault kind"),
        (["--latency", "-1"], "must be from 0 to 3600"),
        (["--jitter", "nan"], "must be from 0 to 3600"),
        (["--rate-limit-reason", "bogus"], "invalid choice"),
        (["--max-records", "0"], "must be greater than 0"),
        (["--port", "70000"], "must be a port from 0 to 65535"),
    ],
)
def test_bad_options_are_usage_errors(options: list[str], words: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "stripe_sessions", "fake-server", *options],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )
    assert out.returncode == 2 and words in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
