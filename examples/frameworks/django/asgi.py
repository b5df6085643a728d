"""ASGI entry point: uvicorn asgi:application."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project")
application = get_asgi_application()
