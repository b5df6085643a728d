"""The generated sync client: same surface, same behaviour, and a well-behaved private loop."""

from __future__ import annotations

import asyncio
import collections.abc
import inspect
import threading
from pathlib import Path
from typing import Any

import pytest

import stripe_sessions as ss
from stripe_sessions._sync import codegen as _codegen
from stripe_sessions.testing import FakeStripe
from tests.helpers import Api, dev_stderr, run_script

PRICING = {"pricing_table": {"enabled": True}}


def _public(cls: type) -> dict[str, Any]:
    return {
        name: member
        for name, member in vars(cls).items()
        if callable(member) and (not name.startswith("_") or name in ("__init__", "__repr__"))
    }


@pytest.mark.parametrize(
    ("async_cls", "sync_cls"),
    [(ss.AsyncClient, ss.Client), (ss.AsyncCustomerSessions, ss.CustomerSessions)],
)
def test_every_public_async_method_has_a_sync_twin(async_cls: type, sync_cls: type) -> None:
    renames = {"aclose": "close"}
    for name, method in _public(async_cls).items():
        if name == "__init__" and async_cls is ss.AsyncCustomerSessions:
            continue  # built by its client (from a transport; the sync one from its twin)
        twin = getattr(sync_cls, renames.get(name, name))  # generated, or by hand in the base
        a = inspect.signature(method).parameters
        s = inspect.signature(twin).parameters
        expected = [p for p in a if not (async_cls is ss.AsyncClient and p == "session")]
        assert list(s) == expected, name
        for p in expected:
            assert a[p].default == s[p].default, (name, p)
            assert a[p].kind == s[p].kind, (name, p)
        if method.__doc__:
            assert twin.__doc__, name
            assert "await " not in twin.__doc__
    assert hasattr(sync_cls, "__enter__") or sync_cls is ss.CustomerSessions


def test_stream_many_is_a_generator_with_close_in_sync() -> None:
    hints = inspect.signature(ss.CustomerSessions.stream_many).return_annotation
    assert "Generator[BatchResult, None, None]" in str(hints)
    hints = inspect.signature(ss.AsyncCustomerSessions.stream_many).return_annotation
    assert str(hints) == "BatchStream"  # an AsyncGenerator[BatchResult, None] with its key
    assert issubclass(ss.BatchStream, collections.abc.AsyncGenerator)


def test_generated_module_is_current() -> None:
    assert _codegen.generate() == _codegen.TARGET.read_text()
    assert _codegen.TARGET.read_text().startswith("# GENERATED FILE: do not edit.")


def test_check_reports_a_stale_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "_sync_client.py"
    stale.write_text(_codegen.TARGET.read_text() + "\n# a stale trailing line\n")
    monkeypatch.setattr(_codegen, "TARGET", stale)
    assert _codegen.main(["--check"]) == 1
    out = capsys.readouterr()
    assert "-# a stale trailing line" in out.out
    assert "stale" in out.err
    stale.write_text(_codegen.TARGET.read_text()[:-200])
    assert _codegen.main(["--check"]) == 1


# --- one behaviour suite, both clients ----------------------------------------------


async def test_both_create(api: Api) -> None:
    session = await api.call("create", customer="cus_1", components=PRICING, expand=["customer"])
    assert isinstance(session, ss.CustomerSession)
    assert isinstance(session.customer, ss.Customer)
    assert session.request_id == api.fake.requests[-1].request_id


async def test_both_validation_errors(api: Api) -> None:
    with pytest.raises(ss.ValidationError) as info:
        await api.call("create", customer="cus_1", components={"pricing_table": {}})
    assert info.value.param == "components.pricing_table.enabled"
    assert api.fake.requests == []


async def test_both_errors_keep_class_and_attributes(api: Api) -> None:
    api.fake.fail_next(
        404,
        body={
            "error": {
                "type": "invalid_request_error",
                "code": "resource_missing",
                "param": "customer",
                "message": "No such customer: 'cus_x'",
            }
        },
    )
    with pytest.raises(ss.InvalidRequestError) as info:
        await api.call("create", customer="cus_x", components=PRICING)
    err = info.value
    assert (err.http_status, err.code, err.param) == (404, "resource_missing", "customer")
    assert err.request_id == api.fake.requests[-1].request_id


async def test_both_retry_with_one_key(api: Api) -> None:
    api.fake.fail_next(503)
    api.fake.reset_next(after_create=True)
    session = await api.call("create", customer="cus_1", components=PRICING)
    assert len({r.idempotency_key for r in api.fake.requests}) == 1
    assert api.fake.created == 1
    assert session.idempotent_replayed


async def test_both_create_many_with_faults(api: Api) -> None:
    api.fake.faults = ss.testing.FaultMix(server_error=0.1, reset_after=0.03, rate_limit=0.02)
    items = [{"customer": f"cus_{i}", "components": PRICING} for i in range(200)]
    results = await api.call("create_many", items, concurrency=16, rate_limit=None, batch_key="b")
    assert [r.index for r in results] == list(range(200))
    assert all(r.ok for r in results)
    keys = api.fake.session_keys
    assert len(keys) == len(set(keys)) == 200
    created = api.fake.created
    await api.call("create_many", items, concurrency=16, rate_limit=None, batch_key="b")
    assert api.fake.created == created


async def test_both_stream_many(api: Api) -> None:
    items = ({"customer": f"cus_{i}", "components": PRICING} for i in range(25))
    results = await api.call("stream_many", items, rate_limit=None)
    assert sorted(r.index for r in results) == list(range(25))


async def test_both_with_options(api: Api) -> None:
    other = api.client.with_options(stripe_account="acct_9")
    assert type(other) is type(api.client)
    method = other.customer_sessions.create
    if api.kind == "async":
        await method(customer="cus_c", components=PRICING)
    else:
        await asyncio.to_thread(method, customer="cus_c", components=PRICING)
    assert api.fake.requests[-1].headers["Stripe-Account"] == "acct_9"


# --- the private loop ----------------------------------------------------------------


def test_eight_threads_share_one_client(fake_stripe: FakeStripe) -> None:
    with ss.Client(api_key=fake_stripe.api_key, base_url=fake_stripe.url) as client:
        secrets: list[str] = []

        def work() -> None:
            for _ in range(10):
                s = client.customer_sessions.create(customer="cus_t", components=PRICING)
                secrets.append(s.client_secret)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(secrets)) == 80
    assert fake_stripe.created == 80


def test_close_stops_the_thread(fake_stripe: FakeStripe) -> None:
    client = ss.Client(api_key=fake_stripe.api_key, base_url=fake_stripe.url)
    client.customer_sessions.create(customer="cus_c", components=PRICING)
    loops = [t for t in threading.enumerate() if t.name == "stripe-sessions-loop"]
    assert len(loops) == 1 and loops[0].is_alive()
    assert not client.closed
    client.close()
    assert client.closed
    assert not loops[0].is_alive()
    client.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        client.customer_sessions.create(customer="cus_c", components=PRICING)


def test_call_from_the_loops_own_thread_is_an_error(fake_stripe: FakeStripe) -> None:
    with ss.Client(api_key=fake_stripe.api_key, base_url=fake_stripe.url) as client:

        def progress(_: ss.BatchProgress) -> None:
            client.customer_sessions.create(customer="cus_c", components=PRICING)

        with pytest.raises(RuntimeError, match="deadlock"):
            client.customer_sessions.create_many(
                [{"customer": "cus_c", "components": PRICING}],
                on_progress=progress,
                rate_limit=None,
            )
        # Still usable afterwards.
        assert client.customer_sessions.create(customer="cus_c", components=PRICING).request_id


def test_exit_without_close_leaves_nothing_behind() -> None:
    out = run_script(
        """
        fake_cm = FakeStripe.running(); fake = fake_cm.__enter__()
        client = ss.Client(api_key=fake.api_key, base_url=fake.url)
        client.customer_sessions.create(customer="cus_c", components=P)
        print("ok")
        """,
        "-W",
        "error::ResourceWarning",
        "-X",
        "dev",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    assert dev_stderr(out.stderr) == ""  # no warning, no "Unclosed ...", nothing ignored


def test_fork_gives_the_child_a_fresh_loop() -> None:
    out = run_script(
        """
        with FakeStripe.running() as fake:
            client = ss.Client(api_key=fake.api_key, base_url=fake.url)
            client.customer_sessions.create(customer="cus_parent", components=P)
            pid = os.fork()
            if pid == 0:
                try:
                    s = client.customer_sessions.create(customer="cus_child", components=P)
                    client.close()
                    os._exit(0 if s.customer == "cus_child" else 3)
                except BaseException as e:
                    print("child failed:", repr(e), file=sys.stderr)
                    os._exit(4)
            _, status = os.waitpid(pid, 0)
            client.customer_sessions.create(customer="cus_parent_again", components=P)
            client.close()
            print("child", os.waitstatus_to_exitcode(status), "created", fake.created)
        """,
        "-W",
        "ignore::DeprecationWarning",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "child 0 created 3", out.stderr


def test_called_inside_a_running_loop_works_and_warns_once() -> None:
    out = run_script(
        """
        with FakeStripe.running() as fake:
            async def handler():
                with ss.Client(api_key=fake.api_key, base_url=fake.url) as client:
                    with warnings.catch_warnings(record=True) as seen:
                        warnings.simplefilter("always")
                        a = client.customer_sessions.create(customer="cus_c", components=P)
                        b = client.customer_sessions.create(customer="cus_c", components=P)
                    print(len([w for w in seen if issubclass(w.category, RuntimeWarning)]),
                          a.request_id != b.request_id)
            asyncio.run(handler())
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1 True"


def test_dropped_clients_stop_their_threads_and_close_their_connections() -> None:
    """20 clients dropped without close(): no thread, descriptor or warning is left."""
    out = run_script(
        """
        import gc
        with FakeStripe.running() as fake:
            threads, fds = threading.active_count(), len(os.listdir("/proc/self/fd"))
            for _ in range(20):
                c = ss.Client(api_key=fake.api_key, base_url=fake.url)
                c.customer_sessions.create(customer="cus_c", components=P)
                del c
            gc.collect()
            for _ in range(50):  # the fake's side of the last connection closes on its loop
                if len(os.listdir("/proc/self/fd")) == fds:
                    break
                time.sleep(0.02)
            print("threads", threading.active_count() - threads,
                  "fds", len(os.listdir("/proc/self/fd")) - fds)
            kept = ss.Client(api_key=fake.api_key, base_url=fake.url)  # closed at exit
            kept.with_options(stripe_account="acct_1").customer_sessions.create(
                customer="cus_c", components=P)
        print("ok")
        """,
        "-X",
        "dev",
        "-W",
        "error",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["threads", "0", "fds", "0", "ok"], out.stdout
    # Only -X dev's asyncio lines for callbacks over 100 ms (a busy machine's) are left out.
    assert dev_stderr(out.stderr) == "", out.stderr
