"""The red team's CLI findings, each as a class, run as real subprocesses against a FakeStripe.

A stdout that cannot be written at start (closed, read-only) starts nothing (exit 3); a
stderr that breaks mid-batch stops neither the work nor the results; a line is blank,
a comment or an id by one rule for bytes and text; a line that never ends stops the
batch; a bad key or URL is a usage error (2); nothing read from argv is echoed raw.
"""

from __future__ import annotations

import io
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stripe_sessions._cli import ids as _cli_ids
from stripe_sessions.testing import FakeStripe
from tests.helpers import cli_env, examples

KEY = "sk_test_cli_attack_0123456789"
PY = sys.executable
CLI = (PY, "-m", "stripe_sessions")


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe.running() as server:
        yield server


def shell(command: str, *, stdin: bytes | None = None, timeout: float = 60, **extra: str) -> Any:
    """``bash -c COMMAND``, where ``$CLI`` runs the command line."""
    return subprocess.run(
        ["bash", "-c", command],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        check=False,
        env=cli_env(KEY, CLI=f"{PY} -m stripe_sessions", **extra),
    )


def run(
    fake: FakeStripe, *args: str, stdin: bytes | None = None, timeout: float = 60, **extra: str
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [PY, "-m", "stripe_sessions", *args, "--base-url", fake.url],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        check=False,
        env=cli_env(KEY, **extra),
    )


# 1. A stdout that cannot be written: refused before anything is sent.


@pytest.mark.parametrize("redirect", [">&-", "1</dev/null"], ids=["closed", "read-only"])
@pytest.mark.parametrize("command", ["create --customer cus_9", "batch"])
def test_an_unusable_stdout_starts_nothing(fake: FakeStripe, redirect: str, command: str) -> None:
    out = shell(f"$CLI {command} --base-url {fake.url} {redirect}", stdin=b"cus_1\ncus_2\n")
    err = out.stderr.decode()
    assert out.returncode == 3, err
    assert "Traceback" not in err
    assert re.fullmatch(
        r"stripe-sessions (create|batch): error: cannot write to stdout \(.+\): "
        r"nothing was sent\n",
        err,
    ), err
    assert fake.requests == []


# 4. A stderr that breaks mid-batch: the work goes on, results keep flowing.


def _batch_with_stderr_closed_after_the_key(
    fake: FakeStripe, tmp_path: Path, n: int
) -> tuple[int, list[dict[str, Any]]]:
    out_path = tmp_path / "out.jsonl"
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(
            [PY, "-m", "stripe_sessions", "batch", "--rate", "1000", "--base-url", fake.url],
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.PIPE,
            env=cli_env(KEY),
        )
        assert proc.stdin is not None and proc.stderr is not None
        try:
            assert proc.stderr.readline().startswith(b"batch key: ")
            # The reader of stderr goes away (a `| tee` that died) before any id is read,
            # so every progress line, failure and summary meets EPIPE.
            proc.stderr.close()
            proc.stdin.write(b"".join(f"cus_{i}\n".encode() for i in range(n)))
            proc.stdin.close()
            code = proc.wait(timeout=120)
        finally:
            proc.kill()
            proc.wait()
    lines = [json.loads(line) for line in out_path.read_bytes().splitlines()]
    return code, lines


def test_a_stderr_that_breaks_mid_batch_stops_nothing(fake: FakeStripe, tmp_path: Path) -> None:
    code, lines = _batch_with_stderr_closed_after_the_key(fake, tmp_path, 100)
    assert code == 0
    assert fake.created == 100
    assert sorted(line["index"] for line in lines) == list(range(100))


def test_a_broken_stderr_leaves_the_exit_code_to_the_work(fake: FakeStripe, tmp_path: Path) -> None:
    fake.fail_next(404, body={"error": {"type": "invalid_request_error", "message": "no"}})
    code, lines = _batch_with_stderr_closed_after_the_key(fake, tmp_path, 30)
    assert code == 1  # one item failed: said on stdout and by the code
    assert fake.created == 29
    assert len(lines) == 30
    assert sum("error" in line for line in lines) == 1


# 5. One rule, for bytes and text, says whether a line is blank, a comment or an id.

# Every character str.strip() and str.split() treat as whitespace, ASCII or not.
SPACES = "".join(c for c in map(chr, range(0x3000 + 1)) if c.isspace())
line_text = st.text(
    st.one_of(
        st.sampled_from(SPACES + "#"), st.characters(blacklist_categories=("Cs",)), st.just("é")
    ),
    max_size=12,
).map(lambda t: t.replace("\n", "").replace("\r", ""))


def _holds_index(data: bytes) -> bool:
    """Whether the one line ``data`` takes an index of the batch (an id, or would be one)."""
    lines = list(_cli_ids.read_lines(io.BytesIO(data + b"\n")))
    return bool(lines) and lines[0].would_be_id


@settings(max_examples=examples(500))
@given(text=line_text, spoil=st.data())
def test_fixing_a_lines_encoding_never_changes_whether_it_holds_an_index(
    text: str, spoil: st.DataObject
) -> None:
    fixed = text.encode("utf-8")
    # Spoil it as a wrong encoding would: some non-ASCII characters written as bytes
    # that are not UTF-8 (ASCII is the same in every encoding these files come in).
    wide = [i for i, c in enumerate(text) if ord(c) > 0x7F]
    chosen = spoil.draw(st.sets(st.sampled_from(wide), min_size=1) if wide else st.just(set()))
    if not chosen:
        chosen = set()
        text = text + "é"  # nothing to spoil: add a character that can be
        fixed = text.encode("utf-8")
        chosen = {len(text) - 1}
    bad = b"".join((b"\xff" if i in chosen else c.encode("utf-8")) for i, c in enumerate(text))
    assert _holds_index(bad) == _holds_index(fixed), (bad, fixed)


def test_a_fixed_line_keeps_its_index_on_resume(fake: FakeStripe, tmp_path: Path) -> None:
    path = tmp_path / "ids.txt"
    path.write_bytes(b"cus_1\n\xc2\xa0# note caf\xe9\ncus_2\ncus_3\n")  # NBSP, then Latin-1
    first = run(fake, "batch", str(path), "--skip-invalid", "--batch-key", "k5")
    assert first.returncode == 0, first.stderr
    path.write_bytes("cus_1\n\u00a0# note caf\u00e9\ncus_2\ncus_3\n".encode())  # fixed
    again = run(fake, "batch", str(path), "--skip-invalid", "--batch-key", "k5")
    err = again.stderr.decode()
    assert again.returncode == 0, err
    # The line is still neither an id nor a comment: an NBSP in an id is refused,
    # by the same rule that gave the spoilt line its index.
    assert (
        "skipped line 2: not an id: it holds whitespace other than space and tab (U+00A0)" in err
    ), err
    assert fake.created == 3  # cus_2 and cus_3 replayed under their first indexes
    keys = {r.form["customer"]: r.idempotency_key for r in fake.requests}
    assert keys == {"cus_1": "k5-0", "cus_2": "k5-2", "cus_3": "k5-3"}


def test_an_id_holding_other_whitespace_stops_the_batch(fake: FakeStripe) -> None:
    out = run(fake, "batch", stdin="cus_1\ncus_\u20282\ncus_3\n".encode())
    err = out.stderr.decode()
    assert out.returncode == 2, err
    assert (
        "error: line 2 is not an id: it holds whitespace other than space and tab (U+2028): " in err
    ), err
    assert {s["customer"] for s in fake.sessions} == {"cus_1"}


# 6. A line that never ends.


@pytest.mark.timing
def test_a_line_that_never_ends_stops_the_batch(fake: FakeStripe) -> None:
    started = time.monotonic()
    out = run(fake, "batch", "/dev/zero", timeout=60)
    err = out.stderr.decode()
    assert out.returncode == 2, err
    assert "error: line 1 is longer than 32768 bytes: b'\\x00\\x00" in err, err
    assert time.monotonic() - started < 60
    assert fake.requests == []


def test_skipping_a_line_that_never_ends_gives_up_at_a_bound(fake: FakeStripe) -> None:
    with open("/dev/zero", "rb") as zero:
        out = subprocess.run(
            [PY, "-m", "stripe_sessions", "batch", "--skip-invalid", "--base-url", fake.url],
            stdin=zero,
            capture_output=True,
            timeout=120,
            check=False,
            env=cli_env(KEY),
        )
    err = out.stderr.decode()
    assert out.returncode == 2, err
    assert "error: line 1 is longer than 1 GiB: too long to skip: b'\\x00" in err, err
    assert "run again with --batch-key " in err


# 7. A bad key or URL is a usage error.


@pytest.mark.parametrize(
    ("args", "extra", "says"),
    [
        (["--api-key", "sk_test_SEC RET"], {}, "--api-key: must not contain spaces"),
        ([], {"STRIPE_API_KEY": "sk_test_\u00e9"}, "STRIPE_API_KEY: must be printable ASCII"),
        (["--base-url", "http://u:p@127.0.0.1:9"], {}, "--base-url: must not hold credentials"),
        (["--base-url", "ftp://x"], {}, "--base-url: must start with http"),
        (["--base-url", "http://h:99999"], {}, "--base-url: is not a valid URL"),
        ([], {"STRIPE_BASE_URL": "ftp://x"}, "STRIPE_BASE_URL: must start with http"),
    ],
)
@pytest.mark.parametrize("command", ["create", "batch"])
def test_a_bad_key_or_url_is_a_usage_error(
    command: str, args: list[str], extra: dict[str, str], says: str
) -> None:
    words = ["create", "--customer", "cus_1"] if command == "create" else ["batch"]
    out = subprocess.run(
        [PY, "-m", "stripe_sessions", *words, *args],
        input=b"cus_1\n",
        capture_output=True,
        timeout=60,
        check=False,
        env=cli_env(KEY, **{"STRIPE_BASE_URL": "http://127.0.0.1:9", **extra}),
    )
    err = out.stderr.decode()
    assert out.returncode == 2, err
    last = err.splitlines()[-1]
    assert last.startswith(f"stripe-sessions {command}: error: "), err
    assert says in last, err
    assert "SEC RET" not in err and "sk_test_\u00e9" not in err
    assert "Traceback" not in err


def test_create_without_a_customer_is_a_usage_error(fake: FakeStripe) -> None:
    out = run(fake, "create")
    assert out.returncode == 2, out.stderr
    assert out.stderr.decode() == (
        "stripe-sessions create: error: give --customer or --customer-account\n"
    )


# 9. Nothing from argv is echoed raw; an interrupted batch still sums up.


def test_an_unreadable_path_is_escaped(fake: FakeStripe, tmp_path: Path) -> None:
    path = str(tmp_path / "no\x1b[31mpe\u202e") + "x" * 3000
    for args in (["batch", path], ["create", "--customer", "c", "--api-key-file", path]):
        out = run(fake, *args)
        err = out.stderr.decode()
        assert out.returncode == 2, err
        assert "\x1b" not in err and "\u202e" not in err, err
        assert "\\x1b[31m" in err
        assert len(err) < 1000
    unknown = run(fake, "batch", "a", "b\x1b]0;title\x07")
    assert unknown.returncode == 2
    assert "\x1b" not in unknown.stderr.decode() and "\x07" not in unknown.stderr.decode()


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_batch_ends_with_its_summary(tmp_path: Path, signum: int, code: int) -> None:
    with FakeStripe.running(latency=0.05) as fake:
        path = tmp_path / "ids.txt"
        path.write_bytes(b"".join(f"cus_{i}\n".encode() for i in range(40)))
        proc = subprocess.Popen(
            [*CLI, "batch", str(path), "--rate", "20", "--base-url", fake.url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(KEY),
        )
        assert proc.stdout is not None
        proc.stdout.readline()
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert re.search(r"^created \d+, failed 0, retried \d+ in .*; batch key \w+$", err, re.M), err
    assert "Traceback" not in err
