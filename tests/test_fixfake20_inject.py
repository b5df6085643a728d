"""fail_next(headers=...) refuses at the call what aiohttp cannot send (R4)."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.http_writer import _safe_header
from hypothesis import given, settings
from hypothesis import strategies as st

from stripe_sessions.testing import FakeStripe
from tests.helpers import examples

#: Header names and values: printable text with control characters mixed in.
TEXT = st.text(
    st.one_of(st.characters(codec="utf-8"), st.sampled_from("\t\r\n\x00\x1b\x7f")),
    max_size=12,
)
NAMES = TEXT.filter(lambda n: n.strip() and ":" not in n and " " not in n)


def _aiohttp_sends(text: str) -> bool:
    try:
        _safe_header(text)
    except ValueError:
        return False
    return True


async def _post(port: int, key: str) -> bytes:
    """A create, as raw bytes; its answer's head (empty when the connection was cut)."""
    body = b"customer=cus_1&components[pricing_table][enabled]=true"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            f"POST /v1/customer_sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        + body
    )
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return answer


def test_a_control_character_is_refused_naming_the_header() -> None:
    fake = FakeStripe()
    with pytest.raises(ValueError, match=r"headers\[X-Odd\]"):
        fake.fail_next(429, headers={"X-Odd": "a\x1bb"})
    with pytest.raises(ValueError, match="X-\\\\nOdd"):
        fake.fail_next(429, headers={"X-\nOdd": "ok"})
    with pytest.raises(ValueError, match=r"headers\[X-Odd\]"):
        fake.fail_next(429, headers={"X-Odd": 5})  # type: ignore[dict-item]
    assert fake.queued_faults == 0
    fake.fail_next(429, headers={"X-Odd": "tab\tis fine"})
    assert fake.queued_faults == 1


@settings(max_examples=examples(60), deadline=None)
@given(name=NAMES, value=TEXT)
def test_a_header_is_refused_at_the_call_exactly_when_aiohttp_would_not_send_it(
    name: str, value: str
) -> None:
    async def run() -> None:
        async with FakeStripe() as fake:
            sendable = _aiohttp_sends(name) and _aiohttp_sends(value)
            try:
                fake.fail_next(503, headers={name: value})
            except ValueError:
                assert not sendable
                return
            assert sendable
            answer = await _post(fake.port, fake.api_key)
            assert answer.startswith(b"HTTP/1.1 503 "), answer

    asyncio.run(run())
