"""Celery (prefork): one sync Client in each pool process, made after the fork."""

import os
from typing import Any

from celery import Celery
from celery.signals import worker_process_init, worker_process_shutdown

import stripe_sessions as ss

# A filesystem broker and result store, for a dev setup without a server; in production
# e.g. CELERY_BROKER_URL=redis://... (and a result backend of your choice).
DATA = os.environ.get("CELERY_DATA", "/tmp/stripe-sessions-celery")
for folder in ("queue", "processed", "results"):
    os.makedirs(os.path.join(DATA, folder), exist_ok=True)
app = Celery(
    "tasks",
    broker=os.environ.get("CELERY_BROKER_URL", "filesystem://"),
    backend=os.environ.get("CELERY_RESULT_BACKEND", f"file://{DATA}/results"),
)
app.conf.broker_transport_options = {
    "data_folder_in": f"{DATA}/queue",
    "data_folder_out": f"{DATA}/queue",
    "processed_folder": f"{DATA}/processed",
}
stripe: ss.Client | None = None


@worker_process_init.connect
def open_client(**_: Any) -> None:
    """Each pool process gets its own client (and loop thread), after the fork."""
    global stripe  # noqa: PLW0603 - one per process, by design
    stripe = ss.Client()  # api_key from $STRIPE_API_KEY, base_url from $STRIPE_BASE_URL


@worker_process_shutdown.connect
def close_client(**_: Any) -> None:
    """Close it as the pool process ends (calls in flight get a grace period)."""
    if stripe is not None:
        stripe.close()


@app.task
def pricing_session(customer: str) -> str:
    """Create a session; return its request id (never the secret: results are stored)."""
    assert stripe is not None, "worker_process_init did not run"
    session = stripe.customer_sessions.create(
        customer=customer, components={"pricing_table": {"enabled": True}}, timeout=10
    )
    return session.request_id or ""


def send_and_wait(n: int) -> list[str]:
    """From a producer: send n tasks and wait for their results (used by ../run.sh)."""
    pending = [pricing_session.delay("cus_NffrFeUfNV2Hib") for _ in range(n)]
    return [r.get(timeout=60)[:8] + "…" for r in pending]
