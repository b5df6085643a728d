"""FastAPI: one AsyncClient opened and closed in the app's lifespan (uvicorn app:app)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

import stripe_sessions as ss


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """One client for the app's life, on the loop that serves its requests."""
    # api_key from $STRIPE_API_KEY, base_url from $STRIPE_BASE_URL (the fake, in dev)
    async with ss.AsyncClient() as stripe:
        app.state.stripe = stripe
        yield  # closed at shutdown, after a grace period for calls in flight


app = FastAPI(lifespan=lifespan)


@app.post("/pricing-session")
async def pricing_session(request: Request, customer: str) -> dict[str, str]:
    """A session for the signed-in user's customer (here: a query parameter)."""
    stripe: ss.AsyncClient = request.app.state.stripe
    session = await stripe.customer_sessions.create(
        customer=customer,
        components={"pricing_table": {"enabled": True}},
        timeout=10,
        max_retries=1,
    )
    return {"client_secret": session.client_secret}


@app.exception_handler(ss.StripeError)
async def stripe_error(request: Request, exc: ss.StripeError) -> JSONResponse:
    """Stripe refused (400: the request was wrong) or could not be reached (502)."""
    status = 400 if isinstance(exc, (ss.InvalidRequestError, ss.ValidationError)) else 502
    return JSONResponse({"error": exc.code or type(exc).__name__, "param": exc.param}, status)
