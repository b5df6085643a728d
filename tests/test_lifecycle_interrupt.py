"""Ctrl-C during a single sync create carries the call's idempotency key, as batches do.

A real SIGINT in a subprocess while the fake holds the answer: the KeyboardInterrupt
comes at once (the answer is still held), carries ``idempotency_key`` (the key the fake
received) and a note saying to retry with it; the client stays usable, and retrying
with the key creates nothing twice.
"""

from __future__ import annotations

from tests.helpers import run_script


def test_ctrl_c_during_a_create_carries_its_idempotency_key() -> None:
    out = run_script(
        """
        with FakeStripe.running() as fake:
            with ss.Client(api_key=fake.api_key, base_url=fake.url) as client:
                fake.slow_next(10)
                def interrupt():
                    while not fake.requests:
                        time.sleep(0.01)
                    os.kill(os.getpid(), signal.SIGINT)
                threading.Thread(target=interrupt, daemon=True).start()
                try:
                    client.customer_sessions.create(customer="cus_c", components=P)
                    print("not interrupted")
                except KeyboardInterrupt as e:
                    # At once: the fake still holds the answer (10 s), none was waited for.
                    print("unanswered", fake.requests[0].answered_at is None)
                    key = e.idempotency_key
                    print("sent", key == fake.requests[0].headers["Idempotency-Key"])
                    print("note", any(key in n for n in getattr(e, "__notes__", ())))
                    again = client.customer_sessions.create(
                        customer="cus_c", components=P, idempotency_key=key)
                    print("created", fake.created, again.customer)
                try:
                    fake.slow_next(10)
                    fake.requests.clear()
                    threading.Thread(target=interrupt, daemon=True).start()
                    client.customer_sessions.create(
                        customer="cus_c", components=P, idempotency_key="mine-1")
                except KeyboardInterrupt as e:
                    print("given", e.idempotency_key)
        """,
        "-W",
        "error::ResourceWarning",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:5] == [
        "unanswered True",
        "sent True",
        "note True",
        "created 1 cus_c",
        "given mine-1",
    ], out.stdout + out.stderr
