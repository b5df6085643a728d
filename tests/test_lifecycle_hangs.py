"""Nothing waits on itself: cleanup on the loop's own thread, on other threads, at exit.

Each scenario runs in a fresh interpreter with a deadline: the assertion is "it
finished" (and the client still answers); on a hang, faulthandler prints every
thread's stack and exits, and the test shows them.
"""

from __future__ import annotations

import subprocess
import textwrap

import pytest

from tests.helpers import run_script

#: Generous: each scenario takes well under a second when nothing hangs.
DEADLINE = 30

HANG_GUARD = f"""
import faulthandler, gc
faulthandler.dump_traceback_later({DEADLINE}, exit=True)
ITEMS = [{{"customer": "cus_1", "components": P}}] * 6
def loops():
    return [t for t in threading.enumerate() if t.name == "stripe-sessions-loop"]
def loops_left():
    # A close scheduled from the loop thread ends it just after the caller is told:
    # the thread must end, soon (the hang guard above bounds "soon").
    for t in loops():
        t.join()
    return loops()
"""


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        out = run_script(
            HANG_GUARD + textwrap.dedent(code), "-W", "error", *args, timeout=DEADLINE + 30
        )
    except subprocess.TimeoutExpired as e:  # pragma: no cover - faulthandler exits first
        pytest.fail(f"hung (no faulthandler output either): {e}")
    assert "Timeout (0:" not in out.stderr, "hung; stacks:\n" + out.stderr
    assert out.returncode == 0, out.stderr
    return out


def test_stream_dropped_in_a_cycle_and_collected_on_the_loop_thread() -> None:
    """Issue #17 (2): gc.collect() in on_progress (the loop thread) finalizes the stream."""
    out = _run(
        """
        with FakeStripe.running() as fake:
            client = ss.Client(api_key=fake.api_key, base_url=fake.url)
            def progress(_):
                gc.collect()
            class Holder: pass
            for _ in range(3):
                h = Holder(); h.cycle = h
                h.it = client.customer_sessions.stream_many(ITEMS, rate_limit=None)
                next(h.it)
                del h
                gc.disable()  # only the collection inside on_progress finds the cycle
                client.customer_sessions.create_many(
                    ITEMS[:2], rate_limit=None, on_progress=progress)
                gc.enable()
            s = client.customer_sessions.create(customer="cus_2", components=P)
            client.close()
            print("answered", s.customer, "loops", len(loops()))
        """
    )
    assert out.stdout.split() == ["answered", "cus_2", "loops", "0"]


def test_streams_dropped_in_cycles_while_the_collector_runs_anywhere() -> None:
    """The unprompted case: a collection may start on any thread, the loop's included."""
    out = _run(
        """
        gc.set_threshold(50, 2, 2)  # collections start often, on whichever thread allocates
        with FakeStripe.running() as fake:
            client = ss.Client(api_key=fake.api_key, base_url=fake.url)
            class Holder: pass
            def drop():
                for _ in range(15):
                    h = Holder(); h.cycle = h
                    h.it = client.customer_sessions.stream_many(ITEMS, rate_limit=None)
                    next(h.it)
                    del h
            workers = [threading.Thread(target=drop) for _ in range(3)]
            for w in workers: w.start()
            drop()
            for w in workers: w.join()
            gc.collect()
            s = client.customer_sessions.create(customer="cus_2", components=P)
            client.close()
            print("answered", s.customer)
        """
    )
    assert out.stdout.split() == ["answered", "cus_2"]
    assert "already running" not in out.stderr and "never retrieved" not in out.stderr


def test_stream_closed_from_another_thread() -> None:
    out = _run(
        """
        with FakeStripe.running() as fake:
            client = ss.Client(api_key=fake.api_key, base_url=fake.url)
            it = client.customer_sessions.stream_many(ITEMS, rate_limit=None)
            next(it)
            t = threading.Thread(target=it.close); t.start(); t.join()
            collector = threading.Thread(target=gc.collect)
            h = type("Holder", (), {})(); h.cycle = h
            h.it = client.customer_sessions.stream_many(ITEMS, rate_limit=None)
            next(h.it); del h
            collector.start(); collector.join()   # collected on a third thread
            s = client.customer_sessions.create(customer="cus_2", components=P)
            client.close()
            print("answered", s.customer, "loops", len(loops()))
        """
    )
    assert out.stdout.split() == ["answered", "cus_2", "loops", "0"]


def test_stream_closed_from_on_progress() -> None:
    out = _run(
        """
        with FakeStripe.running() as fake:
            client = ss.Client(api_key=fake.api_key, base_url=fake.url)
            it = client.customer_sessions.stream_many(ITEMS, rate_limit=None)
            next(it)
            client.customer_sessions.create_many(
                ITEMS[:1], rate_limit=None, on_progress=lambda _: it.close())
            s = client.customer_sessions.create(customer="cus_2", components=P)
            client.close()
            print("answered", s.customer)
        """
    )
    assert out.stdout.split() == ["answered", "cus_2"]


def test_client_closed_from_on_progress() -> None:
    """close() on the loop thread schedules the close; the batch ends with its key."""
    out = _run(
        """
        from stripe_sessions import ClientClosedError
        with FakeStripe.running() as fake:
            client = ss.Client(api_key=fake.api_key, base_url=fake.url)
            try:
                client.customer_sessions.create_many(
                    ({"customer": "cus_1", "components": P} for _ in range(10**6)),
                    rate_limit=None, batch_key="from-progress",
                    on_progress=lambda _: client.close())
                print("no error")
            except ClientClosedError as e:
                print("closed", e.batch_key)
            print("loops", len(loops_left()), "closed", client.closed)
            try:
                client.customer_sessions.create(customer="cus_2", components=P)
            except ClientClosedError as e:
                print("refused", e.in_flight)
        """
    )
    assert out.stdout.split() == [
        "closed", "from-progress", "loops", "0", "closed", "True", "refused", "False",
    ]  # fmt: skip


def test_exit_with_a_stream_open_and_a_call_in_flight() -> None:
    """At exit the finalizer closes the client: the call in flight is cut, nothing leaks."""
    out = _run(
        """
        fake_cm = FakeStripe.running(); fake = fake_cm.__enter__()
        client = ss.Client(api_key=fake.api_key, base_url=fake.url)
        it = client.customer_sessions.stream_many(ITEMS, rate_limit=None)
        next(it)
        fake.slow_next(60)
        def call():
            client.customer_sessions.create(customer="cus_2", components=P)
        threading.Thread(target=call, daemon=True).start()
        while not any(r.fault == "slow" for r in fake.requests):
            time.sleep(0.01)
        print("exiting")
        """,
        "-X",
        "dev",
    )
    assert out.stdout.split() == ["exiting"]
    assert "Unclosed" not in out.stderr and "destroyed" not in out.stderr, out.stderr


def test_stream_inherited_by_a_forked_child() -> None:
    """A child closing (or dropping) its parent's stream waits for no loop of the parent."""
    out = _run(
        """
        with FakeStripe.running() as fake:
            client = ss.Client(api_key=fake.api_key, base_url=fake.url)
            it = client.customer_sessions.stream_many(ITEMS, rate_limit=None)
            next(it)
            pid = os.fork()
            if pid == 0:
                try:
                    it.close()
                    s = client.customer_sessions.create(customer="cus_child", components=P)
                    client.close()
                    os._exit(0 if s.customer == "cus_child" else 3)
                except BaseException as e:
                    print("child failed:", repr(e), file=sys.stderr)
                    os._exit(4)
            _, status = os.waitpid(pid, 0)
            it.close()
            s = client.customer_sessions.create(customer="cus_parent", components=P)
            client.close()
            print("child", os.waitstatus_to_exitcode(status), "parent", s.customer)
        """,
        "-W",
        "ignore::DeprecationWarning",
    )
    assert out.stdout.split() == ["child", "0", "parent", "cus_parent"]


def test_streams_left_open_when_the_client_closes_are_closed_once() -> None:
    """Closing the loop closes a stream and its batch one after the other, with no error."""
    out = _run(
        """
        import logging
        logging.basicConfig(level=logging.ERROR)
        with FakeStripe.running() as fake:
            client = ss.Client(api_key=fake.api_key, base_url=fake.url)
            streams = []
            for n in range(3):
                stream = client.customer_sessions.stream_many(
                    [{"customer": f"cus_{i}", "components": P} for i in range(7)],
                    concurrency=3, rate_limit=None)
                for _ in range(n * 3):
                    next(stream)
                streams.append(stream)
            client.close(grace=0)
            del stream, streams
            gc.collect()
            print("closed", client.closed, "loops", len(loops_left()))
        """
    )
    assert out.stdout.split() == ["closed", "True", "loops", "0"]
    assert "ERROR" not in out.stderr and "already running" not in out.stderr, out.stderr


def test_asyncio_run_ending_with_a_stream_open_closes_it_quietly() -> None:
    """Stateful finding 4: asyncio closes every open async generator at the end of
    ``asyncio.run()``, all at once; a stream that wrapped another generator then closed it
    a second time ("aclose(): asynchronous generator is already running", logged as an
    ERROR). ``stream_many`` is now one generator, closed once."""
    out = _run(
        """
        kept = []
        async def main():
            fake = FakeStripe(); await fake.start()
            client = ss.AsyncClient(api_key=fake.api_key, base_url=fake.url)
            items = [{"customer": f"cus_{i}", "components": P} for i in range(7)]
            stream = client.customer_sessions.stream_many(items, concurrency=3, rate_limit=None)
            await stream.__anext__()
            kept.append(stream)  # still referenced when asyncio.run() ends
            await client.aclose(); await fake.stop()
        asyncio.run(main())
        print("done")
        """
    )
    assert out.stdout.split() == ["done"]
    assert "already running" not in out.stderr and "ERROR" not in out.stderr, out.stderr
