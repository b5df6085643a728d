"""A one-file Django project: settings, views and URLs (uvicorn asgi:application, or wsgi)."""

from django.http import HttpRequest, JsonResponse
from django.urls import path

import stripe_sessions as ss

# --- settings (DJANGO_SETTINGS_MODULE=project) -----------------------------------------
DEBUG = False
SECRET_KEY = "dev-only"  # an example
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "project"
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, object] = {}
TIME_ZONE = "UTC"
USE_TZ = True

# --- clients, made at import time: api_key from $STRIPE_API_KEY, base_url from
# $STRIPE_BASE_URL. The AsyncClient keeps one connection pool per event loop it is used
# from, and each pool closes with its loop (nothing to close by hand under ASGI, which
# Django runs without a lifespan). The sync Client closes at interpreter exit.
astripe = ss.AsyncClient()
stripe = ss.Client()

PRICING: ss.ComponentsDict = {"pricing_table": {"enabled": True}}


async def pricing_session_async(request: HttpRequest) -> JsonResponse:
    """An async view (under ASGI): the AsyncClient."""
    session = await astripe.customer_sessions.create(
        customer=request.GET["customer"], components=PRICING, timeout=10
    )
    return JsonResponse({"client_secret": session.client_secret})


def pricing_session_sync(request: HttpRequest) -> JsonResponse:
    """A sync view (WSGI, or a sync view under ASGI, which Django runs in a thread)."""
    session = stripe.customer_sessions.create(
        customer=request.GET["customer"], components=PRICING, timeout=10
    )
    return JsonResponse({"client_secret": session.client_secret})


urlpatterns = [
    path("async", pricing_session_async),
    path("sync", pricing_session_sync),
]
