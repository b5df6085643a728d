"""Property tests of the batch command's input: random lines in, exactly the right ids out.

One property runs the line reader in-process against a reference model (many examples,
with a tiny line cap so the long-line path is hit); the other runs the real command as
a subprocess against a FakeStripe and checks what the fake created.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stripe_sessions._cli import ids as _cli_ids
from stripe_sessions.testing import FakeStripe
from tests.helpers import examples

CLI = (sys.executable, "-m", "stripe_sessions")
CAP = 16  # the line cap in the in-process property


def _invalid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


no_newline = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b""))
line_bytes = st.one_of(
    st.from_regex(rb"\A[ \t]*cus_[A-Za-z0-9]{0,20}[ \t\r]*\Z"),  # ids, some over the cap
    st.from_regex(rb"\A[ \t\r]*\Z"),  # blank
    st.from_regex(rb"\A[ \t]*#[^\n]{0,20}\Z"),  # comments, some not UTF-8
    no_newline.filter(_invalid_utf8),
    no_newline,
    st.just(b"\xef\xbb\xbfcus_bom"),
    st.text(max_size=10).map(lambda t: t.replace("\n", "").encode()),
    # whitespace only Unicode strips (NBSP, U+2028, U+0085, U+001C...), around an id or a #
    st.tuples(
        st.sampled_from(["\u00a0", "\u2028", "\u0085", "\x1c", "\u3000", ""]),
        st.sampled_from(["#x", "cus_1", "", "\xe9"]),
    ).map(lambda t: "".join(t).encode()),
)


def reference(data: bytes, cap: int) -> list[tuple[int, str | None, str | None, bool]]:
    """(number, id, problem, would be an id) for each line the reader must report."""
    pieces = data.split(b"\n")
    if pieces[-1] == b"":
        pieces.pop()
    out = []
    for number, content in enumerate(pieces, 1):
        head = content[:cap] if len(content) > cap else content
        if number == 1 and head.startswith(b"\xef\xbb\xbf"):
            head = head[3:]
        stripped = head.strip()
        would_be_id = bool(stripped) and not stripped.startswith(b"#")
        if len(content) > cap:
            out.append((number, None, f"longer than {cap} bytes", would_be_id))
            continue
        try:
            text = head.decode("utf-8").strip(" \t\r\n\x0b\x0c")  # ASCII whitespace only
        except UnicodeDecodeError:
            out.append((number, None, "not valid UTF-8", would_be_id))
            continue
        if not text or text.startswith("#"):
            continue
        odd = [c for c in text if c.isspace() and c not in " \t"]
        if odd:
            problem = (
                f"not an id: it holds whitespace other than space and tab (U+{ord(odd[0]):04X})"
            )
            out.append((number, None, problem, True))
        else:
            out.append((number, text, None, True))
    return out


@settings(max_examples=examples(400), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(line_bytes, max_size=30), final_newline=st.booleans())
def test_the_reader_reports_every_line_as_the_model_does(
    monkeypatch: pytest.MonkeyPatch, lines: list[bytes], final_newline: bool
) -> None:
    monkeypatch.setattr(_cli_ids, "MAX_LINE", CAP)
    monkeypatch.setattr(_cli_ids, "_CHUNK", 3)  # a long line is read past in pieces
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    got = [
        (x.number, x.id, x.problem, x.would_be_id) for x in _cli_ids.read_lines(io.BytesIO(data))
    ]
    assert got == reference(data, CAP)


GOOD, BLANK, COMMENT, BAD_ID, BAD_COMMENT = "good", "blank", "comment", "bad_id", "bad_comment"
LINES = {
    BLANK: b"  ",
    COMMENT: b"# a comment",
    BAD_ID: b"cus_caf\xe9",
    BAD_COMMENT: b"# caf\xe9 cr\xe8me",
}


@settings(max_examples=examples(15), deadline=None)
@given(
    kinds=st.lists(st.sampled_from([GOOD, GOOD, GOOD, BLANK, COMMENT, BAD_ID, BAD_COMMENT])),
    skip=st.booleans(),
)
def test_the_command_creates_exactly_the_valid_ids_before_the_first_bad_line(
    kinds: list[str], skip: bool
) -> None:
    data, expected, index, first_bad = b"", {}, 0, None
    for number, kind in enumerate(kinds, 1):
        if kind == GOOD:
            data += f"cus_{number}\n".encode()
        else:
            data += LINES[kind] + b"\n"
        bad = kind in (BAD_ID, BAD_COMMENT)
        if bad and first_bad is None:
            first_bad = number
        if first_bad is not None and not skip:
            break
        if kind == GOOD:
            expected[f"cus_{number}"] = f"kp-{index}"
        if kind in (GOOD, BAD_ID):  # a skipped line that would be an id keeps its index
            index += 1
    options = ["--skip-invalid"] if skip else []
    with FakeStripe.running() as fake:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STRIPE_")}
        out = subprocess.run(
            [
                *CLI,
                "batch",
                "--batch-key",
                "kp",
                *options,
                "--rate",
                "10000",
                "--base-url",
                fake.url,
            ],
            input=data,
            capture_output=True,
            timeout=120,
            check=False,
            env={**env, "STRIPE_API_KEY": "sk_test_prop"},
        )
        sent = {r.form["customer"]: r.idempotency_key for r in fake.requests}
    err = out.stderr.decode()
    assert sent == expected, err
    if first_bad is not None and not skip:
        assert out.returncode == 2, err
        assert re.search(rf"^error: line {first_bad} is not valid UTF-8: b'", err, re.M), err
        assert "run again with --batch-key kp to create nothing twice: " in err
    else:
        assert out.returncode == 0, err
        bad = sum(k in (BAD_ID, BAD_COMMENT) for k in kinds)
        assert f"created {len(expected)}, failed 0, " in err
        assert ("skipped" in err) == bool(bad)
