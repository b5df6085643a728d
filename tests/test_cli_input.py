"""The batch command's input, output and key handling, run as real subprocesses.

Each test proves the CLI never reports success for work it did not do: the input is
read once as a stream of bytes, a bad line stops the batch after the ids before it are
sent (or is skipped with ``--skip-invalid``), every early end exits non-zero with the
resume command, and the batch key is on stderr before the first request.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stripe_sessions.testing import FakeStripe
from tests.helpers import cli_env

KEY = "sk_test_cli_input_0123456789"
RATE_5 = ("--rate", "5", "--base-url")
CLI = (sys.executable, "-m", "stripe_sessions")
LATIN1 = "# caf\u00e9 cr\u00e8me\n".encode("latin-1")  # one byte that is not UTF-8


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe.running() as server:
        yield server


def run(
    fake: FakeStripe, *args: str, stdin: bytes | None = None, stdout: int | None = None
) -> subprocess.CompletedProcess[bytes]:
    """``stripe-sessions ARGS --base-url FAKE`` with the key in the environment."""
    return subprocess.run(
        [sys.executable, "-m", "stripe_sessions", *args, "--base-url", fake.url],
        input=stdin,
        stdout=stdout if stdout is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=120,
        check=False,
        env=cli_env(KEY),
    )


def created(fake: FakeStripe) -> set[str]:
    return {str(s["customer"]) for s in fake.sessions}


def ids(n: int, prefix: str = "cus_") -> bytes:
    return b"".join(f"{prefix}{i}\n".encode() for i in range(n))


def resume_key(err: str) -> str:
    match = re.search(r"run again with --batch-key (\w+) to create nothing twice: (.*)", err)
    assert match, err
    assert f"--batch-key {match[1]}" in match[2]
    return match[1]


def test_the_batch_key_is_the_first_line_on_stderr(fake: FakeStripe, tmp_path: Path) -> None:
    path = tmp_path / "ids.txt"
    path.write_bytes(ids(3))
    out = run(fake, "batch", str(path), "--component", "buy_button")
    assert out.returncode == 0, out.stderr
    first = out.stderr.decode().splitlines()[0]
    match = re.fullmatch(
        r"batch key: (\w+)  \(resume with: stripe-sessions batch (\S+) --component buy_button "
        r"--base-url http://127\.0\.0\.1:\d+ --batch-key (\w+)\)",
        first,
    )
    assert match, first
    assert match[1] == match[3] and match[2] == str(path)


def test_a_latin1_comment_alone_is_an_error_not_an_empty_success(
    fake: FakeStripe, tmp_path: Path
) -> None:
    path = tmp_path / "ids.txt"
    path.write_bytes(LATIN1)
    out = run(fake, "batch", str(path))
    err = out.stderr.decode()
    assert out.returncode == 2, err
    assert "error: line 1 is not valid UTF-8: b'# caf\\xe9 cr\\xe8me'" in err
    assert "created 0" not in err or "stopped" in err
    resume_key(err)
    assert fake.created == 0


@pytest.mark.parametrize("bad_line", [1, 2, 17, 40])
def test_a_file_with_a_latin1_byte_at_line_n_sends_the_ids_before_it(
    fake: FakeStripe, tmp_path: Path, bad_line: int
) -> None:
    lines = ids(60).splitlines(keepends=True)
    lines.insert(bad_line - 1, b"cus_caf\xe9\n")
    path = tmp_path / "ids.txt"
    path.write_bytes(b"".join(lines))
    out = run(fake, "batch", str(path), "--rate", "1000", "--batch-key", "kfile")
    err = out.stderr.decode()
    assert out.returncode == 2, err
    assert f"error: line {bad_line} is not valid UTF-8: b'cus_caf\\xe9'" in err
    assert created(fake) == {f"cus_{i}" for i in range(bad_line - 1)}
    assert resume_key(err) == "kfile"
    assert "Traceback" not in err


def test_undecodable_stdin_mid_stream_sends_every_id_before_it(fake: FakeStripe) -> None:
    data = ids(2999) + b"\xff\xfe not utf-8\n" + ids(500, "cus_after_")
    out = run(fake, "batch", "--rate", "5000", "--concurrency", "32", stdin=data)
    err = out.stderr.decode()
    assert out.returncode == 2, err[-2000:]
    assert "error: line 3000 is not valid UTF-8: b'\\xff\\xfe not utf-8'" in err
    assert created(fake) == {f"cus_{i}" for i in range(2999)}
    assert fake.created == 2999  # each exactly once
    key = resume_key(err)
    # the resume replays the 2,999 and creates nothing twice
    again = run(fake, "batch", "--rate", "5000", "--batch-key", key, stdin=ids(2999))
    assert again.returncode == 0, again.stderr
    assert fake.created == 2999


def test_skip_invalid_skips_and_counts_and_keeps_the_later_indexes(
    fake: FakeStripe, tmp_path: Path
) -> None:
    path = tmp_path / "ids.txt"
    path.write_bytes(b"cus_0\n" + LATIN1 + b"cus_caf\xe9\ncus_2\n" + b"x" * 40_000 + b"\ncus_4\n")
    out = run(fake, "batch", str(path), "--skip-invalid", "--batch-key", "ks")
    err = out.stderr.decode()
    assert out.returncode == 0, err
    assert created(fake) == {"cus_0", "cus_2", "cus_4"}
    assert "skipped line 2: not valid UTF-8: b'# caf\\xe9 cr\\xe8me'" in err
    assert "skipped line 3: not valid UTF-8: b'cus_caf\\xe9'" in err
    assert "skipped line 5: longer than 32768 bytes: b'xxxxxxxx" in err
    assert "created 3, failed 0, skipped 3 invalid lines," in err
    # a skipped id keeps its index (a skipped comment does not), so fixing the lines
    # later and resuming with the same key shifts nothing
    keys = {r.form["customer"]: r.idempotency_key for r in fake.requests}
    assert keys == {"cus_0": "ks-0", "cus_2": "ks-2", "cus_4": "ks-4"}
    path.write_bytes(b"cus_0\n# cafe creme\ncus_1\ncus_2\ncus_3\ncus_4\n")
    again = run(fake, "batch", str(path), "--batch-key", "ks")
    assert again.returncode == 0, again.stderr
    assert created(fake) == {f"cus_{i}" for i in range(5)}
    assert fake.created == 5


@pytest.mark.parametrize("where", ["file", "stdin"])
def test_a_10_mb_line_is_never_echoed_and_stops_the_batch(
    fake: FakeStripe, tmp_path: Path, where: str
) -> None:
    data = b"cus_0\ncus_1\n" + b"cus_" + b"9" * 10_000_000 + b"\ncus_3\n"
    if where == "file":
        path = tmp_path / "ids.txt"
        path.write_bytes(data)
        out = run(fake, "batch", str(path))
    else:
        out = run(fake, "batch", stdin=data)
    err = out.stderr.decode()
    assert out.returncode == 2, err[:2000]
    assert len(out.stderr) < 2000 and len(out.stdout) < 2000
    assert "error: line 3 is longer than 32768 bytes: b'cus_999" in err
    assert created(fake) == {"cus_0", "cus_1"}


def test_a_long_failing_id_is_echoed_only_as_a_prefix(fake: FakeStripe) -> None:
    long_id = "cus_" + "\x1b[31m" + "7" * 6000  # valid UTF-8, too long for Stripe
    out = run(fake, "batch", stdin=long_id.encode() + b"\n")
    err = out.stderr.decode()
    assert out.returncode == 1, err
    assert "\x1b" not in err  # no terminal escape reaches the terminal
    assert len(err) < 2000
    assert fake.created == 0


def test_stdout_on_a_full_disk_stops_at_once_and_says_how_to_resume(
    fake: FakeStripe, tmp_path: Path
) -> None:
    path = tmp_path / "ids.txt"
    path.write_bytes(ids(200))
    with open("/dev/full", "wb") as full:
        out = run(fake, "batch", str(path), "--rate", "1000", stdout=full.fileno())
    err = out.stderr.decode()
    assert out.returncode == 3, err
    assert re.search(r"error: cannot write to stdout: .*No space left on device", err), err
    assert "Traceback" not in err
    key = resume_key(err)
    assert fake.created < 200  # it stopped sending
    again = run(fake, "batch", str(path), "--rate", "1000", "--batch-key", key)
    assert again.returncode == 0
    assert fake.created == 200


def test_after_sigkill_the_key_is_already_on_stderr(tmp_path: Path) -> None:
    with FakeStripe.running(latency=0.2) as fake:
        path = tmp_path / "ids.txt"
        path.write_bytes(ids(50))
        with open(tmp_path / "err", "wb") as err_file:
            proc = subprocess.Popen(
                [sys.executable, "-m", "stripe_sessions", "batch", str(path), *RATE_5, fake.url],
                stdout=subprocess.DEVNULL,
                stderr=err_file,
                env=cli_env(KEY),
            )
            try:
                deadline = time.monotonic() + 60
                while not fake.requests and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert fake.requests, "no request within a minute"
                proc.send_signal(signal.SIGKILL)
                assert proc.wait(timeout=30) == -signal.SIGKILL
            finally:
                proc.kill()
                proc.wait()
        err = (tmp_path / "err").read_text()
        first_key = fake.requests[0].idempotency_key
        assert first_key is not None
        match = re.match(r"batch key: (\w+)  \(resume with: ", err)
        assert match, err
        assert first_key.startswith(match[1] + "-")


def test_a_missing_or_unreadable_file_is_a_usage_error(fake: FakeStripe, tmp_path: Path) -> None:
    for path in (tmp_path / "missing.txt", tmp_path):
        out = run(fake, "batch", str(path))
        err = out.stderr.decode()
        assert out.returncode == 2, err
        assert err.startswith(f"stripe-sessions batch: error: cannot read {path}: "), err
        assert len(err.splitlines()) == 1


def test_closed_stdin_is_an_input_error(fake: FakeStripe) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "stripe_sessions", "batch", "--base-url", fake.url],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=False,
        env=cli_env(KEY),
    )
    assert out.returncode == 0  # empty input: nothing to do, nothing claimed
    assert b"created 0, failed 0" in out.stderr
    closed = subprocess.run(
        ["bash", "-c", f"{sys.executable} -m stripe_sessions batch --base-url {fake.url} <&-"],
        capture_output=True,
        timeout=60,
        check=False,
        env=cli_env(KEY),
    )
    assert closed.returncode == 2, closed.stderr
    assert b"stdin is closed" in closed.stderr


def test_a_utf8_bom_and_crlf_lines_are_read_as_plain_ids(fake: FakeStripe, tmp_path: Path) -> None:
    path = tmp_path / "ids.txt"
    path.write_bytes(b"\xef\xbb\xbfcus_a\r\n# comment\r\ncus_b\r\n")
    out = run(fake, "batch", str(path))
    assert out.returncode == 0, out.stderr
    assert created(fake) == {"cus_a", "cus_b"}


def test_a_fifo_as_file_is_read_once_and_loses_no_id(fake: FakeStripe, tmp_path: Path) -> None:
    # The progress total is counted aside only for a regular file: a second reader on
    # a pipe would take lines away from the batch.
    fifo = tmp_path / "ids.fifo"
    os.mkfifo(fifo)
    proc = subprocess.Popen(
        [*CLI, "batch", str(fifo), "--rate", "5000", "--base-url", fake.url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=cli_env(KEY),
    )
    with open(fifo, "wb") as writer:
        for i in range(0, 3000, 100):
            writer.write(b"".join(f"cus_{j}\n".encode() for j in range(i, i + 100)))
            writer.flush()
            time.sleep(0.01)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert created(fake) == {f"cus_{i}" for i in range(3000)}


def test_a_batch_key_that_cannot_be_used_is_a_usage_error(fake: FakeStripe) -> None:
    out = run(fake, "batch", "--batch-key", "caf\u00e9", stdin=b"cus_1\n")
    assert out.returncode == 2
    assert out.stderr.decode() == (
        "stripe-sessions batch: error: --batch-key: batch_key must be printable ASCII\n"
    )
    assert fake.requests == []


def test_a_closed_stderr_starts_nothing(fake: FakeStripe) -> None:
    # with nowhere to print the batch key, nothing could be resumed: nothing is sent
    out = subprocess.run(
        ["bash", "-c", f"{sys.executable} -m stripe_sessions batch --base-url {fake.url} 2>&-"],
        input=b"cus_1\n",
        capture_output=True,
        timeout=60,
        check=False,
        env=cli_env(KEY),
    )
    assert out.returncode == 3
    assert out.stdout == b""
    assert fake.requests == []


MEASURE = """
import os, resource, subprocess, sys, threading
proc = subprocess.Popen(
    [sys.executable, "-m", "stripe_sessions", "batch", "--base-url", sys.argv[1], "--skip-invalid"],
    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
)
def feed():
    proc.stdin.write(b"cus_0\\ncus_")
    for _ in range(100):
        proc.stdin.write(b"9" * 1_000_000)
    proc.stdin.write(b"\\ncus_2\\n")
    proc.stdin.close()
threading.Thread(target=feed).start()
err = proc.stderr.read()
print(proc.wait(), len(err), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
"""


def test_a_100_mb_line_on_stdin_costs_bounded_memory(fake: FakeStripe) -> None:
    # Measured in a process of its own, so that RUSAGE_CHILDREN holds only this batch.
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, fake.url],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=cli_env(KEY),
    )
    code, err_bytes, peak_mib = map(int, out.stdout.split())
    assert code == 0, out.stderr
    assert err_bytes < 2000
    assert peak_mib < 100  # 37 MiB measured; reading the line whole took 481 MiB
    assert created(fake) == {"cus_0", "cus_2"}


def test_create_on_a_full_disk_says_how_to_get_the_session_back(fake: FakeStripe) -> None:
    with open("/dev/full", "wb") as full:
        out = run(fake, "create", "--customer", "cus_1", stdout=full.fileno())
    err = out.stderr.decode()
    assert out.returncode == 3, err
    match = re.fullmatch(
        r"error: cannot write to stdout: .*No space left on device.*; the session was created: "
        r"run again with --idempotency-key (cli-\w+) to get it back without creating another\n",
        err,
    )
    assert match, err
    again = run(fake, "create", "--customer", "cus_1", "--idempotency-key", match[1])
    assert again.returncode == 0, again.stderr
    assert fake.created == 1  # replayed, not made again
    assert fake.requests[-1].idempotency_key == match[1]
