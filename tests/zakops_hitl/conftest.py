import pytest

from tests.servers import collect_static


@pytest.fixture(scope="session")
def static_root(tmp_path_factory):
    """What `collectstatic` writes for production, once per test run."""
    root = tmp_path_factory.mktemp("static")
    collect_static(root)
    return root


@pytest.fixture
def real_password_hashing(settings):
    """Passwords hashed as a production server checks them (the tests' MD5 is not one of its hashers)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
