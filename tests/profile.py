"""Loaded by pytest before Django reads its settings (`-p tests.profile` in pyproject's
addopts): the test profile of zakops_hitl.settings, whatever the shell says."""

import os

os.environ["DJANGO_ENV"] = "test"
