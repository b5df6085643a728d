"""The fake's request log counts exactly what it keeps, through resets and cuts (R3)."""

from __future__ import annotations

import asyncio

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from stripe_sessions.testing import FakeStripe
from stripe_sessions.testing._recording import RecordedRequest, RequestLog
from tests.helpers import PATIENCE, examples, until


def _record(n: int) -> RecordedRequest:
    return RecordedRequest("POST", "/v1/customer_sessions", {"X-N": str(n)}, "", {}, f"req_{n}")


class LogMachine(RuleBasedStateMachine):
    """Requests arrive (head charged), complete (body charged again), and the list is
    reset or cut from outside, in any order; the count is always the list's."""

    def __init__(self) -> None:
        super().__init__()
        self.log = RequestLog()
        self.requests: list[RecordedRequest] = []
        self.in_flight: list[RecordedRequest] = []
        self.n = 0
        self.most = 6
        self.most_bytes = 4000

    @rule()
    def arrive(self) -> None:
        self.n += 1
        rec = _record(self.n)
        self.requests.append(rec)
        self.log.charge(self.requests, rec, self.most, self.most_bytes)
        self.in_flight.append(rec)

    @precondition(lambda self: self.in_flight)
    @rule(data=st.data(), body=st.integers(0, 3000))
    def complete(self, data: st.DataObject, body: int) -> None:
        rec = self.in_flight.pop(data.draw(st.integers(0, len(self.in_flight) - 1)))
        rec.body = "x" * body
        rec.size = body
        self.log.charge(self.requests, rec, self.most, self.most_bytes)

    @rule()
    def reset(self) -> None:  # as FakeStripe.reset()
        self.requests.clear()
        self.log.clear()

    @rule(data=st.data())
    def cut_from_outside(self, data: st.DataObject) -> None:  # a test's del fake.requests[...]
        start = data.draw(st.integers(0, len(self.requests)))
        stop = data.draw(st.integers(start, len(self.requests)))
        del self.requests[start:stop]

    @rule(most_bytes=st.integers(1000, 20000))
    def rebound(self, most_bytes: int) -> None:
        self.most_bytes = most_bytes

    @invariant()
    def counted_is_what_is_kept(self) -> None:
        # Checked after the next charge: a cut from outside is seen when it is charged.
        probe = _record(-1)
        self.requests.append(probe)
        self.log.charge(self.requests, probe, self.most, self.most_bytes)
        assert all(r._cost > 0 for r in self.requests)
        assert self.log.counted == sum(r._cost for r in self.requests)
        assert len(self.requests) <= self.most


LogMachine.TestCase.settings = settings(
    max_examples=examples(150), stateful_step_count=40, deadline=None
)
TestRequestLog = LogMachine.TestCase


async def _late_body(port: int, key: str, started: asyncio.Event, go: asyncio.Event) -> None:
    """A create whose head arrives at once and whose body arrives after ``go``."""
    body = b"customer=cus_1&components[pricing_table][enabled]=true" + b"&x=" + b"y" * 2000
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"POST /v1/customer_sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    writer.write(head.encode())
    await writer.drain()
    started.set()
    await go.wait()
    writer.write(body)
    await writer.drain()
    await asyncio.wait_for(reader.read(), PATIENCE)
    writer.close()
    await writer.wait_closed()


async def test_reset_with_requests_in_flight_keeps_the_byte_count_true() -> None:
    async with FakeStripe() as fake:
        log = fake._request_log
        for _ in range(5):
            go = asyncio.Event()
            started = [asyncio.Event() for _ in range(10)]
            tasks = [
                asyncio.create_task(_late_body(fake.port, fake.api_key, s, go)) for s in started
            ]
            for s in started:
                await asyncio.wait_for(s.wait(), PATIENCE)
            # every head is in (recorded) before the reset
            await until(lambda: len(fake.requests) >= 10, "every head recorded")
            fake.reset()
            go.set()
            await asyncio.wait_for(asyncio.gather(*tasks), PATIENCE)
            assert fake.requests == []
        assert log.counted == 0
