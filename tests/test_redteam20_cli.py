"""Red team (#20): the CLI's counts of new and replayed sessions, its resume command and
its Ctrl-C, against a FakeStripe that loses answers and fails.

- A run under a fresh random key has no earlier run: a session Stripe replays there is
  one this run made (an attempt whose answer was lost, retried with its key). The
  summary counts it as created; it said ``created 0, replayed 1`` for a run that made
  the one session. A resumed run (``--batch-key``) counts Stripe's replays apart.
  Whatever the faults, the summary never claims more sessions than the server made
  in the run, nor more successes than the JSON lines show.
- The resume command names the base URL the batch sent to when it came from
  ``$STRIPE_BASE_URL``: run from a shell without the variable, it would have gone to
  Stripe itself, where the batch key replays nothing.
- A Ctrl-C that lands while the key line is being written ends with the summary and
  the resume command (exit 130), not a bare ``interrupted`` from a KeyboardInterrupt.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stripe_sessions._cli.main import main
from stripe_sessions.testing import FakeStripe, FaultMix
from tests.helpers import cli_env, examples

KEY = "sk_test_redteam20_0123456789"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeStripe]:
    with FakeStripe.running() as server:
        yield server


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, Any]], str]:
    code = main(["batch", *args, "--rate", "1000", "--concurrency", "4"])
    out, err = capsys.readouterr()
    return code, [json.loads(x) for x in out.splitlines()], err


def _summary(err: str) -> dict[str, int]:
    (line,) = [x for x in err.splitlines() if "; batch key " in x and " in " in x]
    return {k: int(v) for k, v in re.findall(r"(created|replayed|failed) (\d+)", line)}


@settings(
    max_examples=examples(6),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    seed=st.integers(0, 2**16),
    lost=st.sampled_from([0.0, 0.2, 0.5]),
    errors=st.sampled_from([0.0, 0.2]),
    n=st.integers(1, 12),
)
def test_counts_never_claim_what_the_server_did_not_make(
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    seed: int,
    lost: float,
    errors: float,
    n: int,
) -> None:
    monkeypatch.setenv("STRIPE_API_KEY", KEY)
    monkeypatch.delenv("STRIPE_BASE_URL", raising=False)
    path = tmp_path_factory.mktemp("ids") / "ids.txt"
    path.write_text("".join(f"cus_{i}\n" for i in range(n)))
    faults = FaultMix(reset_after=lost, server_error=errors)
    with FakeStripe.running(faults=faults, seed=seed) as fake:
        code, lines, err = _run(capsys, str(path), "--base-url", fake.url)
        made = fake.created
        ok = [x for x in lines if "client_secret" in x]
        counts = _summary(err)
        # A fresh key: every session the lines show was made by this run.
        assert counts["created"] == len(ok) <= made, err
        assert "replayed" not in counts, err
        assert counts["failed"] == len(lines) - len(ok) and (code == 0) == (len(ok) == n)

        key = re.search(r"^batch key: (\S+)", err, re.M)
        assert key is not None
        code, again, err = _run(capsys, str(path), "--base-url", fake.url, "--batch-key", key[1])
        made = fake.created - made
        ok = [x for x in again if "client_secret" in x]
        counts = _summary(err)
        # Resumed: Stripe's replays apart; what is called created was made now.
        assert counts["created"] + counts.get("replayed", 0) == len(ok), err
        assert counts["created"] <= made, err
        assert counts.get("replayed", 0) == sum(1 for x in ok if x["replayed"])
        assert counts["failed"] == len(again) - len(ok)


def test_a_fresh_runs_own_lost_answer_counts_as_created(
    fake: FakeStripe,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STRIPE_API_KEY", KEY)
    path = tmp_path / "ids.txt"
    path.write_text("cus_1\ncus_2\n")
    before = fake.created
    fake.reset_next(after_create=True)
    code, lines, err = _run(capsys, str(path), "--base-url", fake.url)
    assert code == 0 and fake.created - before == 2
    assert sorted(x["replayed"] for x in lines) == [False, True]  # what Stripe said
    assert _summary(err) == {"created": 2, "failed": 0}, err


def test_the_resume_command_names_a_base_url_from_the_environment(
    fake: FakeStripe,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STRIPE_API_KEY", KEY)
    monkeypatch.setenv("STRIPE_BASE_URL", fake.url + "/")
    path = tmp_path / "ids.txt"
    path.write_text("cus_1\n")
    code, _, err = _run(capsys, str(path))
    assert code == 0, err
    resume = re.search(r"^batch key: \S+  \(resume with: (.*)\)$", err, re.M)
    assert resume is not None and f"--base-url {fake.url} " in resume[1], err


def _full_pipe() -> tuple[int, int]:
    """A pipe whose buffer is full: the first write to it blocks until it is read."""
    read, write = os.pipe()
    os.set_blocking(write, False)
    try:
        while True:
            os.write(write, b"." * 65536)
    except BlockingIOError:
        pass
    os.set_blocking(write, True)
    return read, write


def _blocked_writing(pid: int) -> bool:
    with open(f"/proc/{pid}/wchan") as f:
        return "pipe_write" in f.read()


@pytest.mark.skipif(not os.path.exists("/proc/self/wchan"), reason="needs Linux /proc wchan")
def test_ctrl_c_while_the_key_is_written_ends_with_the_resume_command(
    fake: FakeStripe, tmp_path: Path
) -> None:
    path = tmp_path / "ids.txt"
    path.write_text("".join(f"cus_{i}\n" for i in range(5)))
    read, write = _full_pipe()
    cli = subprocess.Popen(
        [sys.executable, "-m", "stripe_sessions", "batch", str(path), "--base-url", fake.url],
        stdout=subprocess.PIPE,
        stderr=write,
        env=cli_env(KEY),
    )
    os.close(write)
    chunks: list[bytes] = []
    try:
        # Its first line on stderr is the key line: it blocks there, in write().
        deadline = time.monotonic() + 60
        while not _blocked_writing(cli.pid):
            assert cli.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        before = fake.created
        cli.send_signal(signal.SIGINT)
        drain = threading.Thread(
            target=lambda: chunks.extend(iter(lambda: os.read(read, 65536), b""))
        )
        drain.start()
        out, _ = cli.communicate(timeout=60)
        drain.join(60)
    finally:
        os.close(read)
        if cli.poll() is None:
            cli.kill()
    err = b"".join(chunks).lstrip(b".").decode()
    assert cli.returncode == 130, err
    assert err.startswith("batch key: "), err
    assert re.search(r"^interrupted after 0 of 5; run again with --batch-key \S+ ", err, re.M), err
    assert out == b"" and fake.created == before
