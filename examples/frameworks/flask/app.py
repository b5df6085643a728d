"""Flask: one sync Client per process (gunicorn -k gthread or -k gevent app:app)."""

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

import stripe_sessions as ss

app = Flask(__name__)
# api_key from $STRIPE_API_KEY, base_url from $STRIPE_BASE_URL. Thread-safe, and safe
# across gunicorn's fork (a child gets a fresh loop and connections) and under gevent
# (its loop runs on a real OS thread; a waiting greenlet lets the others run).
stripe = ss.Client()


@app.post("/pricing-session")
def pricing_session() -> ResponseReturnValue:
    """A session for the signed-in user's customer (here: a query parameter)."""
    session = stripe.customer_sessions.create(
        customer=request.args["customer"],
        components={"pricing_table": {"enabled": True}},
        timeout=10,
    )
    return jsonify(client_secret=session.client_secret)
