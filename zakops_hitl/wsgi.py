"""WSGI entry point (`zakops_hitl.wsgi:application`, served by `python -m zakops_hitl.serve`)."""
import os
import sys

from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zakops_hitl.settings")

try:
    import django

    django.setup(set_prefix=False)
    from zakops_hitl.engine import HitlWSGIHandler

    application = HitlWSGIHandler()
except ImproperlyConfigured as exc:
    sys.exit(f"zakops-hitl: configuration error: {exc}")
