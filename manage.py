#!/usr/bin/env python
"""Command-line entry point for ZakOps HITL."""
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zakops_hitl.settings")
    # Metrics files are for the app server's workers, which /metrics sums; a command (the sweep
    # every minute, runserver) keeps its figures in its own memory instead of leaving a
    # file per run in their folder.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    from django.core.exceptions import ImproperlyConfigured

    try:
        from django.conf import settings

        settings.INSTALLED_APPS  # loads and validates the environment
    except ImproperlyConfigured as exc:
        # One line naming the variable, not a traceback.
        sys.exit(f"zakops-hitl: configuration error: {exc}")

    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
