"""WSGI entry point: gunicorn wsgi:application."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project")
application = get_wsgi_application()
