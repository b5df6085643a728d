"""How the command line takes its API key: never advising argv, warning when it is used.

Run as real subprocesses against a FakeStripe served from a thread.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stripe_sessions.testing import FakeStripe

SECRET = "sk_test_keyfile_secret_5f3a9c"


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe.running() as server:
        yield server


def cli(
    fake: FakeStripe, *args: str, stdin: bytes | None = None, key_env: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRIPE_")}
    if key_env is not None:
        env["STRIPE_API_KEY"] = key_env
    out = subprocess.run(
        [sys.executable, "-m", "stripe_sessions", *args, "--base-url", fake.url],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
        env=env,
    )
    return subprocess.CompletedProcess(
        out.args, out.returncode, out.stdout.decode(), out.stderr.decode(errors="replace")
    )


def test_without_a_key_the_advice_keeps_it_out_of_argv(fake: FakeStripe) -> None:
    out = cli(fake, "create", "--customer", "cus_1")
    assert out.returncode == 2
    assert out.stderr == (
        "stripe-sessions create: error: no API key: set STRIPE_API_KEY or pass --api-key-file PATH "
        "(a file, or - for stdin)\n"
    )
    assert "--api-key " not in out.stderr and "sk_test" not in out.stderr


def test_api_key_in_argv_works_but_warns(fake: FakeStripe) -> None:
    out = cli(fake, "create", "--customer", "cus_1", "--api-key", SECRET)
    assert out.returncode == 0, out.stderr
    assert out.stderr.startswith("warning: --api-key puts the key in the process list (ps)")
    assert "STRIPE_API_KEY" in out.stderr and "--api-key-file" in out.stderr
    assert SECRET not in out.stderr
    assert fake.requests[0].headers["Authorization"] == f"Bearer {SECRET}"


@pytest.mark.parametrize("ending", [b"", b"\n", b"\r\n"])
def test_api_key_file_with_or_without_a_trailing_newline(
    fake: FakeStripe, tmp_path: Path, ending: bytes
) -> None:
    path = tmp_path / "key"
    path.write_bytes(SECRET.encode() + ending)
    out = cli(fake, "create", "--customer", "cus_1", "--api-key-file", str(path))
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    assert fake.requests[0].headers["Authorization"] == f"Bearer {SECRET}"


def test_api_key_file_from_stdin(fake: FakeStripe) -> None:
    out = cli(fake, "create", "--customer", "cus_1", "--api-key-file", "-", stdin=SECRET.encode())
    assert out.returncode == 0, out.stderr
    assert fake.requests[0].headers["Authorization"] == f"Bearer {SECRET}"


def test_api_key_file_beats_the_environment(fake: FakeStripe, tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text(SECRET + "\n")
    out = cli(
        fake, "create", "--customer", "cus_c", "--api-key-file", str(path), key_env="sk_test_env"
    )
    assert out.returncode == 0, out.stderr
    assert fake.requests[0].headers["Authorization"] == f"Bearer {SECRET}"


def test_batch_reading_ids_from_stdin_cannot_read_the_key_from_stdin(fake: FakeStripe) -> None:
    out = cli(fake, "batch", "--api-key-file", "-", stdin=b"cus_1\n")
    assert out.returncode == 2
    assert "--api-key-file -" in out.stderr and "FILE" in out.stderr
    assert fake.requests == []


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "is empty"),
        (b"\n", "is empty"),
        (b"sk_test_\xe9" + SECRET[8:].encode() + b"\n", "is not UTF-8 text"),
        (SECRET.encode() + b"\nsk_test_other\n", "holds more than one line"),
        (SECRET.encode() + b"\n\n", "holds more than one line"),
        (b"sk_test_ tab\tkey\n", "holds spaces or control characters"),
    ],
)
def test_a_bad_key_file_is_refused_naming_the_path_never_the_contents(
    fake: FakeStripe, tmp_path: Path, content: bytes, says: str
) -> None:
    path = tmp_path / "key"
    path.write_bytes(content)
    out = cli(fake, "create", "--customer", "cus_1", "--api-key-file", str(path))
    assert out.returncode == 2, out.stderr
    assert out.stderr == f"stripe-sessions create: error: --api-key-file {path}: {says}\n"
    assert fake.requests == []


def test_an_unreadable_key_file_is_refused(fake: FakeStripe, tmp_path: Path) -> None:
    for path in (tmp_path / "missing", tmp_path):
        out = cli(fake, "create", "--customer", "cus_1", "--api-key-file", str(path))
        assert out.returncode == 2, out.stderr
        assert out.stderr.startswith(
            f"stripe-sessions create: error: --api-key-file {path}: cannot read"
        )
        assert len(out.stderr.splitlines()) == 1


def test_a_huge_key_file_is_refused_without_reading_it_all(
    fake: FakeStripe, tmp_path: Path
) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"sk_test_" + b"k" * 50_000_000)
    out = cli(fake, "create", "--customer", "cus_1", "--api-key-file", str(path))
    assert out.returncode == 2
    assert (
        out.stderr == f"stripe-sessions create: error: --api-key-file {path}: is over 4096 bytes\n"
    )


def test_api_key_and_api_key_file_together_is_a_usage_error(
    fake: FakeStripe, tmp_path: Path
) -> None:
    out = cli(fake, "create", "--customer", "c", "--api-key", "sk_x", "--api-key-file", "k")
    assert out.returncode == 2
    assert "not allowed with argument" in out.stderr
