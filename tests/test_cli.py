"""The command line, run as subprocesses: output, exit codes, no tracebacks, no leaked keys."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stripe_sessions.testing import FakeStripe


def cli(
    *args: str, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stripe_sessions", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe.running() as server:
        yield server


def test_help_for_every_command() -> None:
    for command in ([], ["demo"], ["create"], ["batch"], ["fake-server"]):
        out = cli(*command, "--help")
        assert out.returncode == 0, out.stderr
        assert "usage:" in out.stdout


def test_demo_runs_against_the_embedded_fake() -> None:
    out = cli("demo", "--count", "60", "--rate", "500")
    assert out.returncode == 0, out.stderr
    assert "created 60, failed 0" in out.stdout
    assert "0 duplicates" in out.stdout
    assert "cuss_secret_" not in out.stdout + out.stderr


def test_create_prints_the_session_as_json(fake: FakeStripe) -> None:
    out = cli(
        "create",
        "--customer",
        "cus_1",
        "--component",
        "buy_button",
        "--expand",
        "customer",
        "--base-url",
        fake.url,
        "--api-key",
        fake.api_key,
    )
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["client_secret"].startswith("cuss_secret_")
    assert body["customer"]["id"] == "cus_1"
    assert body["components"]["buy_button"]["enabled"] is True


def test_create_error_is_one_line_without_traceback_or_key(fake: FakeStripe) -> None:
    key = "sk_live_secret_should_never_print_1234"
    out = cli("create", "--customer", "cus_1", "--base-url", fake.url, "--api-key", key)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert out.stderr.startswith("error: AuthenticationError")
    assert len(out.stderr.strip().splitlines()) == 1
    assert key not in out.stderr + out.stdout


def test_debug_flag_shows_the_traceback(fake: FakeStripe) -> None:
    out = cli(
        "--debug", "create", "--customer", "c", "--base-url", fake.url, "--api-key", "sk_live_x" * 3
    )
    assert out.returncode == 1
    assert "Traceback" in out.stderr


def test_create_without_a_key_says_how_to_give_one(fake: FakeStripe) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "stripe_sessions",
            "create",
            "--customer",
            "c",
            "--base-url",
            fake.url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "STRIPE_API_KEY"},
    )
    assert out.returncode == 1
    assert "STRIPE_API_KEY" in out.stderr


def test_batch_reads_stdin_and_writes_json_lines(fake: FakeStripe) -> None:
    ids = "cus_a\n\n# a comment\ncus_b\ncus_c\n"
    out = cli(
        "batch", "--base-url", fake.url, "--api-key", fake.api_key, "--rate", "100", stdin=ids
    )
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert sorted(line["customer"] for line in lines) == ["cus_a", "cus_b", "cus_c"]
    assert all(line["client_secret"].startswith("cuss_secret_") for line in lines)
    assert fake.created == 3


def test_batch_from_file_with_failures_exits_1_and_lists_them(
    fake: FakeStripe, tmp_path: Path
) -> None:
    path = tmp_path / "ids.txt"
    path.write_text("cus_1\ncus_2\n")
    fake.fail_next(
        404,
        body={
            "error": {
                "type": "invalid_request_error",
                "message": "No such customer: 'cus_x'",
                "code": "resource_missing",
            }
        },
    )
    out = cli(
        "batch",
        str(path),
        "--concurrency",
        "1",
        "--batch-key",
        "b1",
        "--base-url",
        fake.url,
        "--api-key",
        fake.api_key,
    )
    assert out.returncode == 1
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [("error" in line) for line in sorted(lines, key=lambda x: x["index"])] == [True, False]
    assert "failed: #0 cus_1" in out.stderr
    assert "Traceback" not in out.stderr


def test_bad_option_is_a_usage_error() -> None:
    out = cli("batch", "--component", "hologram")
    assert out.returncode == 2
    assert "invalid choice" in out.stderr


def test_fake_server_serves_until_interrupted() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "stripe_sessions", "fake-server", "--port", str(port)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        assert "listening on" in proc.stderr.readline()
        out = cli(
            "create",
            "--customer",
            "cus_1",
            "--base-url",
            f"http://127.0.0.1:{port}",
            "--api-key",
            "sk_test_anything_123",
        )
        assert out.returncode == 0, out.stderr
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
    finally:
        proc.kill()
        proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
