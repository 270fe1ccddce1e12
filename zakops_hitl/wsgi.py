"""WSGI entry point (gunicorn zakops_hitl.wsgi)."""
import os
import sys

from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zakops_hitl.settings")

try:
    from django.core.wsgi import get_wsgi_application

    application = get_wsgi_application()
except ImproperlyConfigured as exc:
    sys.exit(f"zakops-hitl: configuration error: {exc}")
