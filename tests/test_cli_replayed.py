"""The CLI tells new sessions from replayed ones: JSON lines, summaries, and every --help.

Real CLI subprocesses against a real FakeStripe on 127.0.0.1 (served from a thread),
which answers a reused idempotency key with ``Idempotent-Replayed: true`` as Stripe does.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stripe_sessions._cli import help_text
from stripe_sessions._cli.main import main
from stripe_sessions.testing import FakeStripe
from tests.helpers import cli_env

KEY = "sk_test_replayed_0123456789"


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe.running() as server:
        yield server


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stripe_sessions", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=cli_env(KEY, **env),
    )


def ids(tmp_path: Path, n: int) -> str:
    path = tmp_path / f"ids{n}.txt"
    path.write_text("".join(f"cus_{i}\n" for i in range(n)))
    return str(path)


def lines(out: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return sorted((json.loads(line) for line in out.stdout.splitlines()), key=lambda x: x["index"])


def summary(out: subprocess.CompletedProcess[str]) -> str:
    (line,) = [x for x in out.stderr.splitlines() if " in " in x and "; batch key " in x]
    return line


def test_a_resumed_batch_reports_its_replays_apart(tmp_path: Path, fake: FakeStripe) -> None:
    first = cli("batch", ids(tmp_path, 30), "--rate", "500", "--base-url", fake.url)
    assert first.returncode == 0, first.stderr
    assert [x["replayed"] for x in lines(first)] == [False] * 30
    assert summary(first).startswith("created 30, failed 0, retried 0 in "), first.stderr
    key = re.search(r"^batch key: (\S+)", first.stderr, re.M)
    assert key is not None and fake.created == 30

    # The same 30 and 10 more, under the same key, to the fake named by STRIPE_BASE_URL.
    again = cli(
        "batch", ids(tmp_path, 40), "--rate", "500", "--batch-key", key[1], STRIPE_BASE_URL=fake.url
    )
    assert again.returncode == 0, again.stderr
    assert fake.created == 40  # nothing made twice
    got = lines(again)
    assert [x["replayed"] for x in got] == [True] * 30 + [False] * 10
    assert [x["client_secret"] for x in got[:30]] == [x["client_secret"] for x in lines(first)]
    assert summary(again).startswith("created 10, replayed 30, failed 0, retried 0 in "), (
        again.stderr
    )
    assert "40/40 sessions  created 10  replayed 30  failed 0" in again.stderr

    # A third run creates nothing and says so.
    third = cli("batch", ids(tmp_path, 40), "--batch-key", key[1], "--base-url", fake.url)
    assert summary(third).startswith("created 0, replayed 40, failed 0"), third.stderr
    assert fake.created == 40


def test_replayed_is_what_stripe_said_even_for_this_runs_own_lost_answer(
    tmp_path: Path, fake: FakeStripe
) -> None:
    # The first answer is lost after the session was made: the retry is answered as a
    # replay and the line says so; the summary counts it as created, as this run (under
    # a fresh key: no earlier run) made it (redteam20).
    fake.reset_next(after_create=True)
    out = cli("batch", ids(tmp_path, 1), "--base-url", fake.url)
    assert out.returncode == 0, out.stderr
    (line,) = lines(out)
    assert line["replayed"] is True and fake.created == 1
    assert summary(out).startswith("created 1, failed 0, retried 1 in ")


def test_an_error_line_has_no_replayed(tmp_path: Path, fake: FakeStripe) -> None:
    fake.fail_next(400, code="resource_missing")
    out = cli("batch", ids(tmp_path, 1), "--base-url", fake.url)
    assert out.returncode == 1
    (line,) = lines(out)
    assert "replayed" not in line and line["error"]["code"] == "resource_missing"
    assert summary(out).startswith("created 0, failed 1, retried 0 in ")


def test_create_says_whether_stripe_replayed_it(fake: FakeStripe) -> None:
    args = ("create", "--customer", "cus_1", "--idempotency-key", "order-42")
    first = cli(*args, "--base-url", fake.url)
    again = cli(*args, STRIPE_BASE_URL=fake.url)
    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    one, two = json.loads(first.stdout), json.loads(again.stdout)
    assert one["replayed"] is False and two["replayed"] is True
    assert one["client_secret"] == two["client_secret"] and fake.created == 1


def test_a_bad_stripe_base_url_is_named_and_sends_nothing(fake: FakeStripe) -> None:
    out = cli("create", "--customer", "cus_1", STRIPE_BASE_URL="http://u:hunter22@127.0.0.1:9")
    assert out.returncode == 2
    assert out.stderr == (
        "stripe-sessions create: error: STRIPE_BASE_URL: must not hold credentials "
        "(user:password@)\n"
    )


@pytest.mark.parametrize("command", [[], ["demo"], ["create"], ["batch"]])
def test_help_has_a_description_and_examples(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    usage, description, *_ = text.split("\n\n")
    assert usage.startswith("usage: stripe-sessions") and len(description) > 60
    examples = text.split("\nexamples:\n", 1)[1]
    assert f"\n  stripe-sessions {' '.join(command) or 'demo'}" in "\n" + examples
    assert text.rstrip().splitlines()[-1].startswith("  ")  # the examples close it


def test_help_texts_keep_their_lines_short() -> None:
    for name in help_text.__all__:
        for line in getattr(help_text, name).splitlines():
            assert len(line) <= 88, (name, line)
