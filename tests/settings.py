"""Settings for the test session: the lab's own settings with development defaults.

pytest-django imports this before any conftest runs, so the environment defaults live here.
"""
import os

os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("OMP_NUM_THREADS", "1")
if "LAB_DATA_DIR" not in os.environ:
    import tempfile

    os.environ["LAB_DATA_DIR"] = tempfile.mkdtemp(prefix="r1lab-test-data-")

from lab.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
