"""Celery: one sync Client per worker process (prefork, gevent, threads or solo pools)."""

import os

from celery import Celery

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
# One client per worker process, for every pool: prefork (a forked child gets a fresh
# loop and connections on its first call), gevent (the loop runs on a real OS thread;
# a task waiting for Stripe lets the pool's other greenlets run), threads and solo.
# Closed at exit. (A client made in worker_process_init would exist under prefork only.)
stripe = ss.Client()  # api_key from $STRIPE_API_KEY, base_url from $STRIPE_BASE_URL


@app.task
def pricing_session(customer: str) -> str:
    """Create a session; return its request id (never the secret: results are stored)."""
    session = stripe.customer_sessions.create(
        customer=customer, components={"pricing_table": {"enabled": True}}, timeout=10
    )
    return session.request_id or ""


def send_and_wait(n: int) -> list[str]:
    """From a producer: send n tasks and wait for their results (used by ../run.sh)."""
    pending = [pricing_session.delay("cus_NffrFeUfNV2Hib") for _ in range(n)]
    return [r.get(timeout=60)[:8] + "…" for r in pending]
