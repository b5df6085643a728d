"""The sync client under gevent's monkey-patching: no warning; other greenlets run while it waits.

Each test runs a fresh interpreter that patches first (as gunicorn's gevent worker does),
with ``-W error``: any warning fails it. The fake answers through a relay that holds each
answer until a ticker greenlet has ticked ``HOLD`` times since the request arrived, so a
create can only finish if the ticker ran while the client waited: a client that blocked
the hub would hold the relay shut until its own timeout (ticks are counted, no clock).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from tests.helpers import dev_stderr

pytest.importorskip("gevent")

HOLD = 3  # ticks the relay waits for, after the request, before it forwards an answer

PRELUDE = """
from gevent import monkey

monkey.patch_all(thread=%(thread)s)

import asyncio, json, sys, threading
import gevent
import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe

HOLD = %(hold)d
ticks = [0]
held = [False]  # True: the relay holds every answer until it is False again
P = {"pricing_table": {"enabled": True}}


async def relay(reader, writer, upstream):
    # A TCP relay to the fake that holds each answer until the ticker ticked HOLD times
    # since the last request bytes arrived.
    up_reader, up_writer = await asyncio.open_connection(*upstream)
    arrived = [ticks[0]]

    async def to_fake():
        while data := await reader.read(65536):
            arrived[0] = ticks[0]
            up_writer.write(data)
            await up_writer.drain()
        up_writer.close()

    async def to_client():
        while data := await up_reader.read(65536):
            while held[0] or ticks[0] < arrived[0] + HOLD:
                await asyncio.sleep(0.001)
            writer.write(data)
            await writer.drain()
        writer.close()

    await asyncio.gather(to_fake(), to_client(), return_exceptions=True)


def serve(box, ready):
    # The fake and the relay, on a real OS thread of their own (not the client's).
    async def main():
        async with FakeStripe() as fake:
            server = await asyncio.start_server(
                lambda r, w: relay(r, w, (fake.host, fake.port)), "127.0.0.1", 0
            )
            stop, loop = asyncio.Event(), asyncio.get_running_loop()
            box.update(
                fake=fake,
                url="http://127.0.0.1:%%d" %% server.sockets[0].getsockname()[1],
                stop=lambda: loop.call_soon_threadsafe(stop.set),
            )
            ready.release()
            async with server:
                await stop.wait()
    asyncio.run(main())
    ready.release()


def ticker():
    while True:
        ticks[0] += 1
        gevent.sleep(0.001)


box = {}
ready = monkey.get_original("_thread", "allocate_lock")()
ready.acquire()
monkey.get_original("_thread", "start_new_thread")(serve, (box, ready))
ready.acquire()  # the fake serves (this blocks the hub once, before any greenlet runs)
"""

CONCURRENT = """
waits = []
with ss.Client(api_key=FakeStripe.api_key, base_url=box["url"], timeout=10, max_retries=0) as c:
    tick = gevent.spawn(ticker)

    def one(i):
        before = ticks[0]
        session = c.customer_sessions.create(customer="cus_%d" % i, components=P)
        waits.append(ticks[0] - before)
        return session.client_secret

    def batch():
        before = ticks[0]
        results = c.customer_sessions.create_many(
            ({"customer": "cus_b%d" % i, "components": P} for i in range(3)),
            concurrency=2,
            max_retries=0,
        )
        waits.append(ticks[0] - before)
        return [r.session.client_secret for r in results]

    jobs = [gevent.spawn(one, i) for i in range(4)] + [gevent.spawn(batch)]
    gevent.joinall(jobs, raise_error=True)
    tick.kill()
    loop_threads = [t.name for t in threading.enumerate() if "stripe" in t.name]

created = box["fake"].created
box["stop"]()
ready.acquire()
print(json.dumps({
    "secrets": sum(1 if isinstance(j.value, str) else len(j.value) for j in jobs),
    "created": created,
    "waits": waits,
    "loop_threads": loop_threads,
}))
"""


INTERRUPTED = """
import logging

out = {"log": []}
log = logging.getLogger("stripe_sessions")
log.addHandler(logging.Handler())
log.handlers[-1].emit = lambda record: out["log"].append(record.getMessage())
with ss.Client(api_key=FakeStripe.api_key, base_url=box["url"], timeout=60, max_retries=0) as c:
    tick = gevent.spawn(ticker)
    held[0] = True  # no answer comes: each call below waits until its gevent.Timeout
    try:
        with gevent.Timeout(0.2):
            c.customer_sessions.create(customer="cus_1", components=P)
    except gevent.Timeout as e:
        out["idempotency_key"] = getattr(e, "idempotency_key", None)
        out["notes"] = getattr(e, "__notes__", [])
    items = [{"customer": "cus_b%d" % i, "components": P} for i in range(4)]
    try:
        with gevent.Timeout(0.2):
            c.customer_sessions.create_many(items, concurrency=2, max_retries=0)
    except gevent.Timeout as e:
        out["batch_key"] = getattr(e, "batch_key", None)
    held[0] = False
    created = box["fake"].created  # the fake created what it was sent; answers were held
    # Retried with the keys the Timeouts carried: nothing is created twice.
    c.customer_sessions.create(
        customer="cus_1", components=P, idempotency_key=out["idempotency_key"]
    )
    results = c.customer_sessions.create_many(items, batch_key=out["batch_key"], max_retries=0)
    out["retried_ok"] = sum(r.ok for r in results) + 1
    out["errors"] = [repr(r.error) for r in results if not r.ok]
    out["created"] = [created, box["fake"].created]
    tick.kill()
box["stop"]()
ready.acquire()
print(json.dumps(out))
"""

LONE = """
# A lone script: no other greenlet, so the hub has nothing to run while the client waits.
with FakeStripe.running() as fake:
    with ss.Client(api_key=fake.api_key, base_url=fake.url, max_retries=0) as c:
        c.customer_sessions.create(customer="cus_1", components=P)
    created = fake.created
box["stop"]()
ready.acquire()
print(json.dumps({"created": created}))
"""


def _run(body: str, thread: bool = True) -> dict[str, Any]:
    script = textwrap.dedent(PRELUDE % {"hold": HOLD, "thread": thread}) + textwrap.dedent(body)
    proc = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    # Nothing on stderr: no warning, no "Unclosed", nothing at exit. Only -X dev's asyncio
    # debug lines for callbacks slower than 100 ms are left out (a busy machine's).
    assert dev_stderr(proc.stderr) == ""
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


@pytest.mark.parametrize("thread", [True, False], ids=["patch_all", "threads-unpatched"])
def test_sync_client_under_gevent_lets_other_greenlets_run_and_warns_nothing(thread: bool) -> None:
    # patch_all(thread=False) keeps real threads (the loop's is one anyway); the wait
    # must still yield to the hub, as the sockets the app's greenlets use are gevent's.
    out = _run(CONCURRENT, thread)
    assert out["secrets"] == 7 and out["created"] == 7
    # Every create (and the batch) waited while the ticker ticked: the hub ran meanwhile.
    assert len(out["waits"]) == 5 and min(out["waits"]) >= HOLD
    # Under monkey-patching threading.enumerate lists greenlet "threads": the client's
    # loop runs on a real OS thread, which is not among them.
    assert out["loop_threads"] == ([] if thread else ["stripe-sessions-loop"])


def test_a_gevent_timeout_cancels_the_call_and_carries_its_keys() -> None:
    # A greenlet's gevent.Timeout (or kill) ends its wait: the call is cancelled on the
    # loop, not left running unseen (a batch would go on creating), and the Timeout
    # carries what a retry needs, as a Ctrl-C does.
    out = _run(INTERRUPTED)
    assert out["idempotency_key"] and any(out["idempotency_key"] in n for n in out["notes"])
    assert out["batch_key"]
    assert any(out["batch_key"] in line and "ended early" in line for line in out["log"])
    assert out["retried_ok"] == 5, out["errors"]
    sent, after = out["created"]
    assert 1 <= sent <= 3  # the create, and what the batch sent before its Timeout
    assert after == 1 + 4  # one session per call and item: replays, nothing created twice


def test_a_lone_call_with_no_other_greenlet_waits_for_its_answer() -> None:
    # Nothing else keeps the hub busy: a wait that only gevent's unreferenced
    # thread-safe callbacks could end raised LoopExit ("would block forever").
    assert _run(LONE) == {"created": 1}
